-- Webhook endpoints and their deliveries (docs/architecture.md, "Notifications"). The
-- `notifications` role turns each event into one delivery per endpoint subscribed to its type
-- (in the transaction that records the event as processed), then a dispatcher sends the due
-- ones, leasing them so several processes share the work.

CREATE TABLE webhook_endpoints (
    id             uuid        NOT NULL,
    url            text        NOT NULL,
    -- Event types it wants (`reservation.created`, …), or `*` for all.
    event_types    text[]      NOT NULL,
    description    text        NOT NULL DEFAULT '',
    secret         text        NOT NULL,
    -- The secret before the last rotation, signing too until previous_valid_until.
    previous_secret      text,
    previous_valid_until timestamptz,
    -- Set when the endpoint answered 410 Gone: no more deliveries.
    disabled_at     timestamptz,
    disabled_reason text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_endpoints_pkey PRIMARY KEY (id),
    CONSTRAINT webhook_endpoints_event_types_check CHECK (cardinality(event_types) BETWEEN 1 AND 20)
);

CREATE TABLE webhook_deliveries (
    -- The message id (`webhook-id`), the same on every attempt.
    id              text        NOT NULL,
    endpoint_id     uuid        NOT NULL,
    event_id        uuid        NOT NULL,
    event_type      text        NOT NULL,
    -- The body sent: {type, timestamp, data}.
    body            jsonb       NOT NULL,
    status          text        NOT NULL DEFAULT 'pending',
    attempts        integer     NOT NULL DEFAULT 0,
    -- When the next attempt is due (pending), or leased until (being sent).
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_status     integer,
    last_error      text,
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_deliveries_pkey PRIMARY KEY (id),
    CONSTRAINT webhook_deliveries_endpoint_fkey FOREIGN KEY (endpoint_id) REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    -- One delivery per event and endpoint, however often the event is delivered to the group.
    CONSTRAINT webhook_deliveries_event_key UNIQUE (endpoint_id, event_id),
    CONSTRAINT webhook_deliveries_status_check CHECK (status IN ('pending', 'delivered', 'failed'))
);
-- The dispatcher's claim: due pending deliveries, oldest first.
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';

-- Every attempt: the delivery log an admin reads.
CREATE TABLE webhook_attempts (
    delivery_id text        NOT NULL,
    attempt     integer     NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    status_code integer,
    latency_ms  integer     NOT NULL,
    error       text,
    CONSTRAINT webhook_attempts_pkey PRIMARY KEY (delivery_id, attempt),
    CONSTRAINT webhook_attempts_delivery_fkey FOREIGN KEY (delivery_id) REFERENCES webhook_deliveries (id) ON DELETE CASCADE
);
