-- When a concert's sale opens, for the waiting room's pre-queue (api.md "Waiting room"), and
-- the index its sold-out check needs.

-- NULL means "on sale now". A time in the past means the same; the admin may set one.
ALTER TABLE concerts ADD COLUMN sale_opens_at timestamptz;

-- The sold-out check (app::availability), which the waiting room calls while fans wait, asks
-- "does any schedule of this concert still have a live hold?". Without this index that is a
-- scan of all held reservations (reservations_status_expires_idx leads with status, so it
-- cannot narrow by schedule). Partial on status = 'held': only live-or-about-to-expire rows are
-- indexed, so the index stays as small as the number of open holds while paid, confirmed and
-- expired reservations pile up.
CREATE INDEX reservations_schedule_held_idx ON reservations (schedule_id, expires_at)
    WHERE status = 'held';
