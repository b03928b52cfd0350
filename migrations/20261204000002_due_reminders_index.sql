-- The dispatchers skip due reminders whose hold was settled first, every round. Without an
-- index of their own, that statement joined every due delivery (tens of thousands while an
-- endpoint or the SMTP server is slow) with reservations on each round, for seconds at a time
-- (found by scripts/bench-booking.sh NOTIFY=healthy). Reminders are a small part of the
-- deliveries: these partial indexes hold only them.
CREATE INDEX webhook_deliveries_due_reminders_idx ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending' AND while_held IS NOT NULL;
CREATE INDEX email_deliveries_due_reminders_idx ON email_deliveries (next_attempt_at)
    WHERE status = 'pending' AND while_held IS NOT NULL;
