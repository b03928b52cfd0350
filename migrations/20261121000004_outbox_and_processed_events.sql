-- The transactional outbox (events written with the state change that caused them) and the
-- processed-events record that makes every stream handler's effect happen once.

CREATE TABLE outbox (
    -- Insertion order for the relay; never used as a "highest id seen" cursor, because
    -- sequences commit out of order. Unpublished rows are claimed with SKIP LOCKED instead.
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id     uuid        NOT NULL,
    -- Target Redis stream (logical name, without any deployment key prefix).
    stream       text        NOT NULL,
    event_type   text        NOT NULL,
    version      integer     NOT NULL DEFAULT 1,
    payload      jsonb       NOT NULL,
    trace_id     text,
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    -- NULL until XADD succeeded; then the stream entry id.
    published_at timestamptz,
    stream_id    text,
    attempts     integer     NOT NULL DEFAULT 0,
    CONSTRAINT outbox_event_id_key UNIQUE (event_id),
    CONSTRAINT outbox_published_check CHECK ((published_at IS NULL) = (stream_id IS NULL))
);

-- The relay's claim query and the "unpublished count / oldest age" metrics.
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;
-- Retention pruning of published rows.
CREATE INDEX outbox_published_at_idx ON outbox (published_at) WHERE published_at IS NOT NULL;

CREATE TABLE processed_events (
    event_id       uuid        NOT NULL,
    consumer_group text        NOT NULL,
    processed_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT processed_events_pkey PRIMARY KEY (event_id, consumer_group)
);

CREATE INDEX processed_events_processed_at_idx ON processed_events (processed_at);
