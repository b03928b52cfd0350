-- The Redis servers the outbox has published to, as the relays saw them. Redis keeps its data
-- with AOF `appendfsync everysec`, so a Redis killed mid-run may come back without its last
-- second of writes, and with no data at all if its files are lost. A relay that finds a Redis
-- whose run_id is not the latest one here publishes again every published event that its
-- consumer group has not recorded as processed (processed_events): what the old Redis lost is
-- delivered; what it kept is delivered twice and absorbed by the handlers' processed-events check.
CREATE TABLE redis_epochs (
    run_id        text        NOT NULL,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT redis_epochs_pkey PRIMARY KEY (run_id)
);

CREATE INDEX redis_epochs_last_seen_idx ON redis_epochs (last_seen_at);
