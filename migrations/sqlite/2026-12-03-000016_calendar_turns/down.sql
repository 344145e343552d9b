DROP TABLE calendar_turns;
