-- Sales statistics and settlement (docs/architecture.md, "Statistics and settlement"), kept by
-- the `statistics` worker role from the events: the `statistics` group (reservations, expiry,
-- queue streams) and the `settlement` group (payments stream). Each handler changes these
-- tables in the transaction that records the events in processed_events, so a redelivered
-- event changes nothing twice.

-- Per schedule: what the holds, confirmations and expiries added up to.
CREATE TABLE sales_schedule_totals (
    schedule_id      uuid   NOT NULL,
    concert_id       uuid   NOT NULL,
    holds_placed     bigint NOT NULL DEFAULT 0,
    seats_held       bigint NOT NULL DEFAULT 0,  -- seats ever held (a seat held twice counts twice)
    holds_confirmed  bigint NOT NULL DEFAULT 0,
    seats_sold       bigint NOT NULL DEFAULT 0,
    revenue_points   bigint NOT NULL DEFAULT 0,
    holds_expired    bigint NOT NULL DEFAULT 0,
    seats_expired    bigint NOT NULL DEFAULT 0,
    CONSTRAINT sales_schedule_totals_pkey PRIMARY KEY (schedule_id),
    CONSTRAINT sales_schedule_totals_schedule_fkey FOREIGN KEY (schedule_id) REFERENCES schedules (id) ON DELETE CASCADE
);
CREATE INDEX sales_schedule_totals_concert_idx ON sales_schedule_totals (concert_id);

-- Per concert and fan: when the fan first reached each step of the funnel. A set, so the
-- counts are of distinct fans and an event seen twice changes nothing.
CREATE TABLE sales_funnel (
    concert_id  uuid        NOT NULL,
    user_id     uuid        NOT NULL,
    joined_at   timestamptz,
    admitted_at timestamptz,
    held_at     timestamptz,
    paid_at     timestamptz,
    CONSTRAINT sales_funnel_pkey PRIMARY KEY (concert_id, user_id)
);

-- Settlement: the points charged per UTC day (the day of the ledger row) and concert.
CREATE TABLE settlement_days (
    day        date   NOT NULL,
    concert_id uuid   NOT NULL,
    payments   bigint NOT NULL DEFAULT 0,
    points     bigint NOT NULL DEFAULT 0,
    CONSTRAINT settlement_days_pkey PRIMARY KEY (day, concert_id)
);

-- Payments refused, by concert and error code (they commit nothing and publish no event):
-- counted by the API after answering.
CREATE TABLE sales_payment_failures (
    concert_id uuid   NOT NULL,
    code       text   NOT NULL,
    failures   bigint NOT NULL DEFAULT 0,
    CONSTRAINT sales_payment_failures_pkey PRIMARY KEY (concert_id, code)
);
