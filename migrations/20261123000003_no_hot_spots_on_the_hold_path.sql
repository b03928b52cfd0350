-- The hold path without hot spots (measured in docs/PERFORMANCE.md, "Booking"):
--
-- 1. `seats.status` is no longer indexed. Every hold, release and sale changes it, so with
--    `seats_schedule_status_idx (schedule_id, status)` every such update was a non-HOT update
--    adding entries to three indexes, and in an on-sale all of them went to the same few leaf
--    pages of that index ((schedule, 'held'), new tuple ids growing): holds on one 50,000-seat
--    schedule ran at 340/s with PostgreSQL's CPU in that UPDATE; without the index, 1,146/s
--    on the same machine. Nothing needs the index any more: counts come from
--    schedule_inventory(_slots), seat maps read a schedule's seats through seats_position_key
--    (schedule_id first), holds find seats by primary key.
-- 2. Seats pages keep 20% free, so a status change can stay on its page (a HOT update: no
--    index entry at all).
-- 3. Up to 64 counter slots per schedule instead of 16; a transaction uses the slot of its
--    PostgreSQL backend (pid mod 64), so two of the pool's connections share a slot only if
--    their pids do, instead of colliding on 16 random slots when more than 16 holds run at once.
DROP INDEX IF EXISTS seats_schedule_status_idx;

ALTER TABLE seats SET (fillfactor = 80);

ALTER TABLE schedule_inventory_slots
    DROP CONSTRAINT schedule_inventory_slots_slot_check,
    ADD CONSTRAINT schedule_inventory_slots_slot_check CHECK (slot >= 0 AND slot < 64);
