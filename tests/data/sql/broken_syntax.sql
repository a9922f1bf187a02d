CREATE TABLE fine_so_far_too (id integer);
-- a typo Postgres finds while parsing, with its position
CREATE TABEL typo (id integer);
