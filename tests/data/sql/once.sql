-- not idempotent on purpose: run twice in one database, CREATE TABLE fails (42P07)
CREATE TABLE setup_runs (n integer);
INSERT INTO setup_runs VALUES (1);
