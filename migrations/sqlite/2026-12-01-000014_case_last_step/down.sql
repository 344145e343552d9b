-- Nothing to undo: the dates filled in are those the clues were taken on.
SELECT 1;
