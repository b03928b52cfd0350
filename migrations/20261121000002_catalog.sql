-- Concerts, their schedules (performances), the seats of each schedule, and the background
-- jobs that create seats in bulk.

CREATE TABLE concerts (
    id          uuid        PRIMARY KEY,
    title       text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT concerts_title_check CHECK (btrim(title) <> '')
);

-- Listing pages are ordered by (created_at, id): stable even when two rows share a timestamp.
CREATE INDEX concerts_listing_idx ON concerts (created_at, id);

CREATE TABLE schedules (
    id         uuid        PRIMARY KEY,
    concert_id uuid        NOT NULL,
    starts_at  timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT schedules_concert_fkey FOREIGN KEY (concert_id) REFERENCES concerts (id) ON DELETE CASCADE
);

CREATE INDEX schedules_concert_idx ON schedules (concert_id, starts_at);
-- Cache warm-up reads the schedules that start soon.
CREATE INDEX schedules_starts_at_idx ON schedules (starts_at);

CREATE TABLE seats (
    id          uuid        PRIMARY KEY,
    schedule_id uuid        NOT NULL,
    section     text        NOT NULL,
    -- 1-based row and seat numbers; "row" and "number" in the API.
    row_number  integer     NOT NULL,
    seat_number integer     NOT NULL,
    price       bigint      NOT NULL,
    -- Denormalised availability for fast seat maps and counts. The arbiter of who owns a seat
    -- is reservation_seats (see reservations migration), not this column.
    status      text        NOT NULL DEFAULT 'available',
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT seats_schedule_fkey FOREIGN KEY (schedule_id) REFERENCES schedules (id) ON DELETE CASCADE,
    -- One seat per position: repeating a creation request adds nothing.
    CONSTRAINT seats_position_key UNIQUE (schedule_id, section, row_number, seat_number),
    CONSTRAINT seats_section_check CHECK (btrim(section) <> ''),
    CONSTRAINT seats_row_check CHECK (row_number > 0),
    CONSTRAINT seats_number_check CHECK (seat_number > 0),
    CONSTRAINT seats_price_check CHECK (price > 0),
    CONSTRAINT seats_status_check CHECK (status IN ('available', 'held', 'sold'))
);

-- Seat maps filtered by status and available counts per schedule.
CREATE INDEX seats_schedule_status_idx ON seats (schedule_id, status);

CREATE TABLE jobs (
    id          uuid        PRIMARY KEY,
    kind        text        NOT NULL,
    -- How the job runs: 'stream' (a worker consumes its event) or 'inline' (tokio::spawn in
    -- the API process: the comparison mode that does not survive a crash).
    mode        text        NOT NULL,
    schedule_id uuid,
    status      text        NOT NULL DEFAULT 'pending',
    -- The validated request the job executes, so any worker can resume it.
    request     jsonb       NOT NULL,
    total       integer     NOT NULL,
    done        integer     NOT NULL DEFAULT 0,
    error       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT jobs_schedule_fkey FOREIGN KEY (schedule_id) REFERENCES schedules (id) ON DELETE CASCADE,
    CONSTRAINT jobs_kind_check CHECK (kind IN ('seat_creation')),
    CONSTRAINT jobs_mode_check CHECK (mode IN ('stream', 'inline')),
    CONSTRAINT jobs_status_check CHECK (status IN ('pending', 'running', 'done', 'failed')),
    CONSTRAINT jobs_progress_check CHECK (total >= 0 AND done >= 0 AND done <= total),
    CONSTRAINT jobs_error_check CHECK ((status = 'failed') = (error IS NOT NULL))
);
