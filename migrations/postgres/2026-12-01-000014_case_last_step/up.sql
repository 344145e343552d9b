-- Clues escalated before cases had stages of their own carry no last step: the clue itself is the last step, so
-- that a filing's effective date is checked against it as for any later clue.
UPDATE cases SET last_step_on = clue_on WHERE last_step_on IS NULL;
