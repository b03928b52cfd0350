-- A hold in one round trip (docs/decisions.md, "Booking"; numbers in docs/PERFORMANCE.md).
--
-- The common hold was six round trips between the API and PostgreSQL on the same two cores:
-- BEGIN, the user's advisory lock, the user's live seats, the seat UPDATE, the INSERT, COMMIT.
-- `hold_seats` does the same four statements server-side, so a hold without an
-- Idempotency-Key is one statement in its own (implicit) transaction, and a keyed one is one
-- statement inside the key's transaction. Each statement of a PL/pgSQL function takes a fresh
-- snapshot (READ COMMITTED), so the count after the lock sees every committed hold of the
-- user, exactly as the statements sent one by one did.
--
-- Outcomes (nothing else changes unless `held`):
--   held   the seats are held by reservation p_id; `amount` is their price;
--   limit  the user's live seats + the new ones would pass p_cap; `live` says how many;
--   short  not every seat was available (taken, due but not yet expired, or not a seat of the
--          schedule). The seats it did take are put back in the same statement, and the caller
--          runs the general path (app::holds), which expires due holds and tells a taken seat
--          from an unknown one. The Redis gates make this rare.
-- A seat in another live reservation still fails the INSERT with
-- reservation_seats_live_seat_key (the last guard).
--
-- The advisory lock name is the one app::holds takes on the general path
-- (`hold:<user>:<schedule>`, hashed by hashtextextended), so both paths serialize a user's
-- holds of a schedule; the count slot is the backend's, as in catalog::add_available.
CREATE FUNCTION hold_seats(
    p_id uuid,
    p_user uuid,
    p_schedule uuid,
    p_seats uuid[],
    p_cap integer,
    p_expires_at timestamptz
) RETURNS TABLE (outcome text, live bigint, amount bigint)
LANGUAGE plpgsql
-- Plan each statement once per connection. Left to choose, PL/pgSQL re-planned the seat UPDATE
-- on every call (an `unnest` of a parameter is estimated at 100 rows in a generic plan, more
-- than the custom plan's 1): 13% of PostgreSQL's CPU in a hold storm went to planning. The
-- generic plans look the seats up by primary key (`unnest` join) like the custom ones.
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
    v_live bigint;
    v_taken uuid[];
    v_amount bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('hold:' || p_user::text || ':' || p_schedule::text, 0));

    -- Live = held and not due, paid or confirmed, said with conditions no status index can
    -- serve, so the plan goes through the user's own reservations (reservations_user_idx),
    -- never through every paid reservation of the database (a BitmapOr a generic plan chose).
    SELECT count(*) INTO v_live
    FROM reservation_seats rs JOIN reservations r ON r.id = rs.reservation_id
    WHERE r.user_id = p_user AND r.schedule_id = p_schedule
      AND r.status NOT IN ('expired', 'cancelled') AND (r.status <> 'held' OR r.expires_at > now());
    IF v_live + cardinality(p_seats) > p_cap THEN
        RETURN QUERY SELECT 'limit'::text, v_live, NULL::bigint;
        RETURN;
    END IF;

    WITH taken AS (
        UPDATE seats s SET status = 'held' FROM unnest(p_seats) AS wanted(id)
        WHERE s.id = wanted.id AND s.schedule_id = p_schedule AND s.status = 'available'
        RETURNING s.id, s.price
    )
    SELECT coalesce(array_agg(taken.id), '{}'), coalesce(sum(taken.price), 0)::bigint
    INTO v_taken, v_amount FROM taken;
    IF cardinality(v_taken) <> cardinality(p_seats) THEN
        UPDATE seats s SET status = 'available' FROM unnest(v_taken) AS back(id) WHERE s.id = back.id;
        RETURN QUERY SELECT 'short'::text, v_live, NULL::bigint;
        RETURN;
    END IF;

    INSERT INTO reservations (id, user_id, schedule_id, status, amount, expires_at)
    VALUES (p_id, p_user, p_schedule, 'held', v_amount, p_expires_at);
    INSERT INTO reservation_seats (reservation_id, seat_id, reservation_status)
    SELECT p_id, wanted.id, 'held' FROM unnest(p_seats) AS wanted(id);
    INSERT INTO schedule_inventory_slots (schedule_id, slot, available_delta)
    VALUES (p_schedule, (pg_backend_pid() % 64)::smallint, -cardinality(p_seats))
    ON CONFLICT (schedule_id, slot)
    DO UPDATE SET available_delta = schedule_inventory_slots.available_delta + EXCLUDED.available_delta;

    RETURN QUERY SELECT 'held'::text, v_live, v_amount;
END
$$;
