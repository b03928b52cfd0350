-- An admin may pause a concert's admission (POST /admin/concerts/{id}/queue/pause): the
-- promoter admits nobody and joiners wait in line until it resumes. PostgreSQL keeps the
-- decision (who, since when), so a Redis that lost its copy gets it back from the promoter's
-- next refresh; Redis keeps the flag the admission script reads.
ALTER TABLE concerts
    ADD COLUMN admission_paused_at timestamptz,
    ADD COLUMN admission_paused_by uuid;
