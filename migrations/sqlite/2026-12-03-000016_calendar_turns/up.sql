-- How far the calendar's own changes have reached the audit trail and the change feed: every record whose view
-- changes by the date alone (a permit past valid_to reads expired; a rectification, a fee or a case deadline
-- becomes overdue) has had its change recorded for every day before `through`. One row. It starts on the day of
-- this migration: what turned before it is as exports show it today (a platform loads a fresh export once).
CREATE TABLE calendar_turns (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    through DATE
);
INSERT INTO calendar_turns (id, through) VALUES (1, CURRENT_DATE);
