-- Venues, their halls, and each hall's seat plan versions (docs/venues.md). A plan version is
-- a list of seats with a position for drawing, a category and flags; once a schedule is made
-- from it (used_at set, under the plan row's lock) it never changes again: editing makes a
-- new version.

CREATE TABLE venues (
    id         uuid        PRIMARY KEY,
    name       text        NOT NULL,
    address    text        NOT NULL DEFAULT '',
    -- An IANA zone name (Europe/Berlin), checked by the API.
    time_zone  text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT venues_name_check CHECK (btrim(name) <> '')
);

CREATE INDEX venues_listing_idx ON venues (created_at, id);

CREATE TABLE halls (
    id         uuid        PRIMARY KEY,
    venue_id   uuid        NOT NULL,
    name       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT halls_venue_fkey FOREIGN KEY (venue_id) REFERENCES venues (id) ON DELETE CASCADE,
    CONSTRAINT halls_name_key UNIQUE (venue_id, name),
    CONSTRAINT halls_name_check CHECK (btrim(name) <> '')
);

CREATE TABLE hall_plans (
    hall_id     uuid        NOT NULL,
    version     integer     NOT NULL,
    seats       integer     NOT NULL,
    -- Seats for sale (the others are drawn but never become seats of a schedule).
    for_sale    integer     NOT NULL,
    categories  text[]      NOT NULL,
    -- SHA-256 of the plan's JSON export: the ETag of its exports and picture.
    digest      text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    -- When the first schedule was made from this version; from then on it is immutable.
    used_at     timestamptz,
    PRIMARY KEY (hall_id, version),
    CONSTRAINT hall_plans_hall_fkey FOREIGN KEY (hall_id) REFERENCES halls (id) ON DELETE CASCADE,
    CONSTRAINT hall_plans_version_check CHECK (version > 0),
    CONSTRAINT hall_plans_seats_check CHECK (seats > 0 AND for_sale BETWEEN 0 AND seats)
);

CREATE TABLE plan_seats (
    hall_id      uuid     NOT NULL,
    version      integer  NOT NULL,
    -- 0-based order in the plan (its export order).
    ordinal      integer  NOT NULL,
    -- 0-based order among the seats for sale: the seat-creation job's progress counts these.
    sale_ordinal integer,
    section      text     NOT NULL,
    row_label    text     NOT NULL,
    -- 1-based, per section, in the order rows first appear: a schedule seat's "row".
    row_number   integer  NOT NULL,
    seat_number  integer  NOT NULL,
    label        text     NOT NULL,
    x            double precision NOT NULL,
    y            double precision NOT NULL,
    category     text     NOT NULL,
    accessible   boolean  NOT NULL DEFAULT false,
    companion    boolean  NOT NULL DEFAULT false,
    for_sale     boolean  NOT NULL DEFAULT true,
    PRIMARY KEY (hall_id, version, ordinal),
    CONSTRAINT plan_seats_plan_fkey FOREIGN KEY (hall_id, version) REFERENCES hall_plans (hall_id, version) ON DELETE CASCADE,
    CONSTRAINT plan_seats_position_key UNIQUE (hall_id, version, section, row_number, seat_number),
    CONSTRAINT plan_seats_sale_check CHECK ((sale_ordinal IS NOT NULL) = for_sale)
);

CREATE UNIQUE INDEX plan_seats_sale_idx ON plan_seats (hall_id, version, sale_ordinal) WHERE sale_ordinal IS NOT NULL;

-- A schedule may be made from a plan version; the version cannot be deleted while it is.
ALTER TABLE schedules
    ADD COLUMN hall_id uuid,
    ADD COLUMN plan_version integer,
    ADD CONSTRAINT schedules_plan_fkey FOREIGN KEY (hall_id, plan_version) REFERENCES hall_plans (hall_id, version) ON DELETE RESTRICT;

CREATE INDEX schedules_plan_idx ON schedules (hall_id, plan_version) WHERE hall_id IS NOT NULL;
