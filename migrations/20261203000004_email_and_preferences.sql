-- Email notices, fans' notification preferences, and reminders that wait for their time
-- (docs/architecture.md, "Notifications").

-- What a fan wants to be told, and how. No row: everything, by every channel.
CREATE TABLE notification_preferences (
    user_id    uuid        NOT NULL,
    -- Channels: email to the account's address; webhooks to the organiser's endpoints (which
    -- may pass the notice on to the fan by text or push).
    email      boolean     NOT NULL DEFAULT true,
    webhook    boolean     NOT NULL DEFAULT true,
    -- Notice types the fan turned off (`reservation.expiring`, …).
    muted      text[]      NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT notification_preferences_pkey PRIMARY KEY (user_id),
    CONSTRAINT notification_preferences_user_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);

-- One mail per notice: the id is the dedupe key (`<event id>:<notice type>`), so an event the
-- group sees again, or a reminder enqueued twice, sends one mail. Rows stay pending through an
-- SMTP outage and are retried until sent: mail is delayed, never lost. `failed` only when the
-- server refused the message for good (5xx: no such mailbox).
CREATE TABLE email_deliveries (
    id              text        NOT NULL,
    user_id         uuid        NOT NULL,
    notice          text        NOT NULL,
    recipient       text        NOT NULL,
    -- What the templates are given (concert, seats, times, ticket code).
    context         jsonb       NOT NULL,
    -- A reminder is sent only while this reservation is still held (unpaid, not expired).
    while_held      uuid,
    status          text        NOT NULL DEFAULT 'pending',
    attempts        integer     NOT NULL DEFAULT 0,
    -- When the next attempt is due (pending), or leased until (being sent).
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    sent_at         timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT email_deliveries_pkey PRIMARY KEY (id),
    CONSTRAINT email_deliveries_user_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT email_deliveries_status_check CHECK (status IN ('pending', 'sent', 'skipped', 'failed'))
);
CREATE INDEX email_deliveries_due_idx ON email_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX email_deliveries_user_idx ON email_deliveries (user_id, created_at);

-- Webhook reminders wait the same way; `skipped` is a reminder whose hold was settled first.
ALTER TABLE webhook_deliveries ADD COLUMN while_held uuid;
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_status_check;
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_status_check
    CHECK (status IN ('pending', 'delivered', 'failed', 'skipped'));
