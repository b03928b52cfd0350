-- A keyed payment in one round trip (#24): `pay_once` is the whole usual payment of
-- `POST /reservations/{id}/payments` as one statement in its own implicit transaction:
--
--   1. the Idempotency-Key's lock (the same advisory lock as the general path's, named by the
--      caller: `idempotency:<user>:<scope>:<key>`), held until the statement's transaction ends;
--   2. the stored answer of the key, if any: returned as `stored` and nothing else done (the
--      caller compares the request hash: a replay, or 409 idempotency_key_reused);
--   3. the payment of a held reservation (what `reservations::pay_held` did in the caller's
--      transaction before: the reservation locked and checked — the caller's, of the pass's
--      concert, `held`, not due at p_now — the debit that never goes below zero, the ledger row,
--      the payment, `paid`, the `payment.completed` outbox row);
--   4. the answer (201 and its body) stored under the key, committed with the payment.
--
-- Outcomes: `stored` (status, body, request_hash of the earlier request), `paid` (status 201,
-- body, balance, amount, outbox_id) or `unsettled`: a check failed, nothing was written, the
-- lock is gone with the statement, and the caller takes the general path, which says why.
--
-- The function is VOLATILE (the default), so each statement in it takes a fresh snapshot in
-- READ COMMITTED: the lookup of step 2 sees an answer committed by a concurrent request with the
-- same key while this one waited for the lock in step 1. One statement with the lock and the
-- lookup in it could not (its snapshot would precede the wait).
CREATE FUNCTION pay_once(
    p_lock text,
    p_user uuid,
    p_scope text,
    p_key text,
    p_request_hash text,
    p_reservation uuid,
    p_concert uuid,
    p_payment uuid,
    p_ledger uuid,
    p_now timestamptz,
    p_event_id uuid,
    p_trace_id text
) RETURNS TABLE (
    outcome text,
    status smallint,
    body jsonb,
    request_hash text,
    balance bigint,
    amount bigint,
    outbox_id bigint
)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
    v_hash text;
    v_status smallint;
    v_body jsonb;
    v_balance bigint;
    v_amount bigint;
    v_outbox bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_lock, 0));
    SELECT k.request_hash, k.response_status, k.response_body INTO v_hash, v_status, v_body
    FROM idempotency_keys k
    WHERE k.user_id = p_user AND k.scope = p_scope AND k.idempotency_key = p_key;
    IF FOUND THEN
        RETURN QUERY SELECT 'stored'::text, v_status, v_body, v_hash, NULL::bigint, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;

    WITH r AS (
        SELECT res.id, res.amount FROM reservations res
        WHERE res.id = p_reservation AND res.user_id = p_user AND res.status = 'held'
          AND res.expires_at > p_now
          AND res.schedule_id IN (SELECT s.id FROM schedules s WHERE s.concert_id = p_concert)
        FOR UPDATE
    ), w AS (
        UPDATE wallets SET balance = wallets.balance - r.amount, updated_at = now() FROM r
        WHERE wallets.user_id = p_user AND wallets.balance >= r.amount
        RETURNING wallets.balance AS balance, r.id AS id, r.amount AS amount
    ), ledger AS (
        INSERT INTO point_transactions (id, user_id, amount, kind, reservation_id)
        SELECT p_ledger, p_user, -w.amount, 'payment', w.id FROM w WHERE w.amount > 0
    ), marked AS (
        UPDATE reservations SET status = 'paid', updated_at = now() FROM w WHERE reservations.id = w.id
    ), payment AS (
        INSERT INTO payments (id, reservation_id, user_id, amount, idempotency_key)
        SELECT p_payment, w.id, p_user, w.amount, p_key FROM w
    ), event AS (
        INSERT INTO outbox (event_id, stream, event_type, version, payload, trace_id, occurred_at)
        SELECT p_event_id, 'payments', 'payment.completed', 1,
               jsonb_build_object('payment_id', p_payment, 'reservation_id', w.id, 'user_id', p_user,
                                  'amount', w.amount),
               p_trace_id, p_now
        FROM w
        RETURNING outbox.id AS id
    )
    SELECT w.balance, w.amount, event.id INTO v_balance, v_amount, v_outbox FROM w, event;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'unsettled'::text, NULL::smallint, NULL::jsonb, NULL::text, NULL::bigint, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;

    v_body := jsonb_build_object('payment_id', p_payment, 'reservation_id', p_reservation, 'amount', v_amount,
                                 'status', 'completed', 'balance', v_balance);
    INSERT INTO idempotency_keys (user_id, idempotency_key, scope, request_hash, response_status, response_body)
    VALUES (p_user, p_key, p_scope, p_request_hash, 201, v_body);
    RETURN QUERY SELECT 'paid'::text, 201::smallint, v_body, p_request_hash, v_balance, v_amount, v_outbox;
END
$$;
