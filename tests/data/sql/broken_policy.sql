-- a policy on a table that was never created: Postgres gives no position for this one
CREATE TABLE fine_so_far (id integer);

CREATE POLICY read_sales ON affiliate_sales FOR SELECT USING (true);
CREATE TABLE never_reached (id integer);
