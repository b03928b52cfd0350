-- The operator console (/console, docs/console.md). A viewer may read every console page and
-- act on nothing; an admin reads and acts (the console's "operator"). In the REST API a viewer
-- is an ordinary account.
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ('user', 'admin', 'viewer'));

-- Console sessions: the cookie carries a random secret, only its SHA-256 is kept here, so a
-- copy of this table opens no session. `csrf_token` is sent back with every action (a hidden
-- form field) and compared in constant time.
CREATE TABLE console_sessions (
    secret_hash bytea       NOT NULL,
    user_id     uuid        NOT NULL,
    csrf_token  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    CONSTRAINT console_sessions_pkey PRIMARY KEY (secret_hash),
    CONSTRAINT console_sessions_user_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);
CREATE INDEX console_sessions_expires_idx ON console_sessions (expires_at);

-- Every action taken from the console (replay, purge, pause, resume, log-in), by whom, on
-- what, with what outcome: the console's audit log page. Never updated.
CREATE TABLE console_actions (
    id         uuid        NOT NULL,
    at         timestamptz NOT NULL DEFAULT now(),
    admin_id   uuid        NOT NULL,
    action     text        NOT NULL,
    target     text        NOT NULL,
    outcome    text        NOT NULL,
    detail     jsonb       NOT NULL DEFAULT '{}',
    CONSTRAINT console_actions_pkey PRIMARY KEY (id)
);
CREATE INDEX console_actions_at_idx ON console_actions (at DESC, id DESC);
