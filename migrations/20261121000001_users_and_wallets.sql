-- Accounts, their point wallets and the ledger that explains every wallet balance.
--
-- I3 (architecture.md): a balance is never negative and equals the sum of its point
-- transactions. The CHECK makes the first half impossible to break; the ledger rows are
-- written in the same transaction as every balance change, which `imticket-admin audit` checks.

CREATE TABLE users (
    id            uuid        PRIMARY KEY,
    -- Stored lower-cased and trimmed, so uniqueness is case-insensitive without citext.
    email         text        NOT NULL,
    -- PHC string (argon2id, parameters and salt included).
    password_hash text        NOT NULL,
    name          text        NOT NULL,
    role          text        NOT NULL DEFAULT 'user',
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_email_normalised_check CHECK (email = lower(btrim(email)) AND email <> ''),
    CONSTRAINT users_name_check CHECK (btrim(name) <> ''),
    CONSTRAINT users_role_check CHECK (role IN ('user', 'admin'))
);

CREATE TABLE wallets (
    user_id    uuid        PRIMARY KEY,
    balance    bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT wallets_user_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT wallets_balance_check CHECK (balance >= 0)
);

CREATE TABLE point_transactions (
    id             uuid        PRIMARY KEY,
    user_id        uuid        NOT NULL,
    -- Signed: a charge is positive, a payment negative, a refund positive.
    amount         bigint      NOT NULL,
    kind           text        NOT NULL,
    -- The reservation a payment or refund belongs to; NULL for charges.
    reservation_id uuid,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT point_transactions_wallet_fkey FOREIGN KEY (user_id) REFERENCES wallets (user_id) ON DELETE CASCADE,
    CONSTRAINT point_transactions_amount_check CHECK (amount <> 0),
    CONSTRAINT point_transactions_kind_check CHECK (
        (kind = 'charge'  AND amount > 0 AND reservation_id IS NULL) OR
        (kind = 'payment' AND amount < 0 AND reservation_id IS NOT NULL) OR
        (kind = 'refund'  AND amount > 0 AND reservation_id IS NOT NULL)
    )
);

CREATE INDEX point_transactions_user_idx ON point_transactions (user_id, created_at);
