-- A hold tells its readers (docs/architecture.md, "Fan-out groups"): `reservation.created` goes
-- to the outbox in the hold's own statement, so the one-round-trip hold stays one round trip.
--
-- `hold_seats_told` runs `hold_seats` (migration 20261123000004) and, when the seats are
-- held, writes the event's outbox row. The caller builds the event (its id, stream, type,
-- version and payload, `amount` included as a placeholder): only the seats' total is known
-- here, and it is set into the payload's `amount`. Returns hold_seats's answer and the outbox
-- row's id (NULL unless held), which the caller publishes after the commit.
CREATE FUNCTION hold_seats_told(
    p_id uuid,
    p_user uuid,
    p_schedule uuid,
    p_seats uuid[],
    p_cap integer,
    p_expires_at timestamptz,
    p_event_id uuid,
    p_stream text,
    p_event_type text,
    p_version integer,
    p_payload jsonb,
    p_trace_id text
) RETURNS TABLE (outcome text, live bigint, amount bigint, outbox_id bigint)
LANGUAGE plpgsql
-- As hold_seats: plan each statement once per connection.
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
    v_outcome text;
    v_live bigint;
    v_amount bigint;
    v_outbox bigint;
BEGIN
    SELECT h.outcome, h.live, h.amount INTO v_outcome, v_live, v_amount
    FROM hold_seats(p_id, p_user, p_schedule, p_seats, p_cap, p_expires_at) AS h;
    IF v_outcome = 'held' THEN
        INSERT INTO outbox (event_id, stream, event_type, version, payload, trace_id)
        VALUES (p_event_id, p_stream, p_event_type, p_version,
                jsonb_set(p_payload, '{amount}', to_jsonb(v_amount)), p_trace_id)
        RETURNING id INTO v_outbox;
    END IF;
    RETURN QUERY SELECT v_outcome, v_live, v_amount, v_outbox;
END
$$;
