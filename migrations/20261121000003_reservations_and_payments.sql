-- Holds (reservations), the seats they cover, payments, and the idempotency records that make
-- client retries safe.

CREATE TABLE reservations (
    id          uuid        PRIMARY KEY,
    user_id     uuid        NOT NULL,
    schedule_id uuid        NOT NULL,
    status      text        NOT NULL DEFAULT 'held',
    -- Sum of the seat prices at hold time, in points.
    amount      bigint      NOT NULL,
    -- A held reservation is dead from this instant on, whether or not a worker expired it yet.
    expires_at  timestamptz NOT NULL,
    -- Issued when the payment worker confirms the reservation.
    ticket_code text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reservations_user_fkey FOREIGN KEY (user_id) REFERENCES users (id),
    CONSTRAINT reservations_schedule_fkey FOREIGN KEY (schedule_id) REFERENCES schedules (id),
    CONSTRAINT reservations_status_check CHECK (status IN ('held', 'paid', 'confirmed', 'expired', 'cancelled')),
    CONSTRAINT reservations_amount_check CHECK (amount >= 0),
    CONSTRAINT reservations_ticket_code_key UNIQUE (ticket_code),
    CONSTRAINT reservations_ticket_check CHECK ((status = 'confirmed') = (ticket_code IS NOT NULL)),
    -- Target of reservation_seats' composite foreign key below.
    CONSTRAINT reservations_id_status_key UNIQUE (id, status)
);

-- The expiry sweep scans held reservations by due time.
CREATE INDEX reservations_status_expires_idx ON reservations (status, expires_at);
CREATE INDEX reservations_user_idx ON reservations (user_id, created_at);

-- The database-level guard of invariant I1 (a seat belongs to at most one live reservation).
-- Each row mirrors its reservation's status through a composite foreign key with
-- ON UPDATE CASCADE, so the copy can never disagree with the reservation, and a partial
-- unique index allows one live (held/paid/confirmed) row per seat. Whatever the application
-- code does, a second live reservation of a seat fails with reservation_seats_live_seat_key.
CREATE TABLE reservation_seats (
    reservation_id     uuid NOT NULL,
    seat_id            uuid NOT NULL,
    reservation_status text NOT NULL,
    CONSTRAINT reservation_seats_pkey PRIMARY KEY (reservation_id, seat_id),
    CONSTRAINT reservation_seats_reservation_fkey FOREIGN KEY (reservation_id, reservation_status)
        REFERENCES reservations (id, status) ON UPDATE CASCADE ON DELETE CASCADE,
    CONSTRAINT reservation_seats_seat_fkey FOREIGN KEY (seat_id) REFERENCES seats (id) ON DELETE CASCADE
);

CREATE UNIQUE INDEX reservation_seats_live_seat_key ON reservation_seats (seat_id)
    WHERE reservation_status IN ('held', 'paid', 'confirmed');

CREATE TABLE payments (
    id              uuid        PRIMARY KEY,
    reservation_id  uuid        NOT NULL,
    user_id         uuid        NOT NULL,
    amount          bigint      NOT NULL,
    status          text        NOT NULL DEFAULT 'completed',
    -- The client's Idempotency-Key of the request that made this payment.
    idempotency_key text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payments_reservation_fkey FOREIGN KEY (reservation_id) REFERENCES reservations (id),
    CONSTRAINT payments_user_fkey FOREIGN KEY (user_id) REFERENCES users (id),
    -- One payment per reservation: never charged twice for one hold.
    CONSTRAINT payments_reservation_key UNIQUE (reservation_id),
    CONSTRAINT payments_amount_check CHECK (amount >= 0),
    CONSTRAINT payments_status_check CHECK (status IN ('completed', 'refunded'))
);

-- I4: one Idempotency-Key per user has at most one effect, and a replay gets the same answer.
-- The record is written in the transaction of the effect it guards.
CREATE TABLE idempotency_keys (
    user_id         uuid        NOT NULL,
    idempotency_key text        NOT NULL,
    -- Which operation the key was used for and a hash of its request, so reusing a key for a
    -- different request is detected (409) instead of silently answered with the old result.
    scope           text        NOT NULL,
    request_hash    text        NOT NULL,
    response_status smallint    NOT NULL,
    response_body   jsonb       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (user_id, idempotency_key),
    CONSTRAINT idempotency_keys_user_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT idempotency_keys_key_check CHECK (length(idempotency_key) BETWEEN 1 AND 255)
);

-- Retention pruning deletes old records by age.
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
