DROP TABLE planned_usage;
DROP TABLE plans;
DROP TABLE planned_users;
