-- A reservation's status change costs the same with 100 or 100,000 live seats (#24;
-- docs/decisions.md, "Status changes with generic plans").
--
-- Changing `reservations.status` cascades to the reservation's `reservation_seats` rows
-- (their foreign key on (id, status), ON UPDATE CASCADE). PostgreSQL runs the cascade as
-- `UPDATE ONLY reservation_seats … WHERE $3 = reservation_id AND $4 = reservation_status`, a
-- cached plan per connection. With `plan_cache_mode` left to choose, it plans that statement
-- with the values (a custom plan), and with the old status known ('paid', 'held') the partial
-- unique index of live seats (reservation_seats_live_seat_key, on seat_id, WHERE the status is
-- live) qualifies: on a table without statistics yet (a new deployment's first on-sale, until
-- autovacuum analyzes it) the planner expects ~1/200 of the table per reservation and ANDs the
-- primary key's bitmap with a scan of that whole index. Measured in the booking bench's flow:
-- 16,336 index entries read per confirmation, 1.5 ms each, 3.0 of the flow's 8.5 s of
-- PostgreSQL time, and growing with every live seat. A generic plan cannot prove the index's
-- condition and looks the rows up by the primary key.
--
-- So the two status changes a sale runs at volume are functions with generic plans, as
-- hold_seats and pay_once already are (the cascade fires inside the function, under its
-- setting); each also takes its seats along in the same round trip.

-- `paid` → `confirmed` with the ticket code, and the reservation's seats `sold`; false (and
-- nothing changed) if it was not paid.
CREATE FUNCTION confirm_paid(p_id uuid, p_ticket_code text) RETURNS boolean
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    UPDATE reservations SET status = 'confirmed', ticket_code = p_ticket_code, updated_at = now()
    WHERE id = p_id AND status = 'paid';
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE seats SET status = 'sold'
    WHERE id IN (SELECT seat_id FROM reservation_seats WHERE reservation_id = p_id);
    RETURN true;
END
$$;

-- `held` → p_to (expired or cancelled), and the reservation's held seats `available`; returns
-- how many seats were freed, 0 (and nothing changed) if it was not held.
CREATE FUNCTION release_held(p_id uuid, p_to text) RETURNS bigint
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_freed bigint;
BEGIN
    UPDATE reservations SET status = p_to, updated_at = now() WHERE id = p_id AND status = 'held';
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    UPDATE seats SET status = 'available'
    WHERE status = 'held' AND id IN (SELECT seat_id FROM reservation_seats WHERE reservation_id = p_id);
    GET DIAGNOSTICS v_freed = ROW_COUNT;
    RETURN v_freed;
END
$$;
