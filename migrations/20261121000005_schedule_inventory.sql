-- Per-schedule seat counts, kept in the same transactions that change seats (creation,
-- hold, release, sale), so "how many seats are available" is a primary-key lookup instead of
-- a count over up to a million seat rows. `imticket-admin audit` compares them with the seats.

CREATE TABLE schedule_inventory (
    schedule_id     uuid    PRIMARY KEY,
    total_seats     integer NOT NULL DEFAULT 0,
    available_seats integer NOT NULL DEFAULT 0,
    CONSTRAINT schedule_inventory_schedule_fkey FOREIGN KEY (schedule_id) REFERENCES schedules (id) ON DELETE CASCADE,
    CONSTRAINT schedule_inventory_counts_check CHECK (available_seats >= 0 AND available_seats <= total_seats)
);

-- Jobs are looked up by schedule for operators, newest first.
CREATE INDEX jobs_schedule_idx ON jobs (schedule_id, created_at);
