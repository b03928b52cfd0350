-- Seat counts without one hot row per schedule.
--
-- In an on-sale every hold hits the same schedule. Updating schedule_inventory's one row in
-- every hold's transaction would make each hold wait for the previous one's commit. Holds,
-- releases and sales instead add their change to one of 16 slots of the schedule, picked at
-- random per transaction, so concurrent holds rarely touch the same row; a count is the base
-- row plus the sum of the slots (16 rows at most, one index range). Seat creation keeps adding
-- to the base row. docs/decisions.md ("Booking") has the reasoning and the numbers.

CREATE TABLE schedule_inventory_slots (
    schedule_id     uuid     NOT NULL,
    slot            smallint NOT NULL,
    -- Seats made available (+) or taken (−) through this slot since the schedule was created.
    available_delta integer  NOT NULL DEFAULT 0,
    CONSTRAINT schedule_inventory_slots_pkey PRIMARY KEY (schedule_id, slot),
    CONSTRAINT schedule_inventory_slots_schedule_fkey FOREIGN KEY (schedule_id) REFERENCES schedules (id) ON DELETE CASCADE,
    CONSTRAINT schedule_inventory_slots_slot_check CHECK (slot >= 0 AND slot < 16)
);
