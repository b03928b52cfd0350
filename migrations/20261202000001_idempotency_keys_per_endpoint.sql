-- An Idempotency-Key is scoped to the user AND the endpoint (the REST contract): the same key
-- sent to two endpoints is two keys, each with its own effect and stored answer. Until now the
-- key was unique per user only, so reusing it on another endpoint answered 409.
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys
    ADD CONSTRAINT idempotency_keys_pkey PRIMARY KEY (user_id, scope, idempotency_key);
