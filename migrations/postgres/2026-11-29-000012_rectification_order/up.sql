-- Rectification lists read in due order: walking this index from the earliest deadline finds a page of overdue
-- ones at once, also "as of" a past day, where a finding counts as open if it was rectified only later.
CREATE INDEX rectifications_due_order ON rectifications (rectification_due, id);
