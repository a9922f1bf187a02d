-- A Supabase-style table under row-level security: each user sees only their own rows.
-- Roles belong to the whole cluster, not to the run's database: create them only when missing,
-- so that a second run on a shared server finds the role and goes on.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticated') THEN
    CREATE ROLE authenticated NOLOGIN;
  END IF;
END
$$;

CREATE TABLE user_wishlists (
  id      integer PRIMARY KEY,
  user_id text NOT NULL,
  item    text NOT NULL
);
ALTER TABLE user_wishlists ENABLE ROW LEVEL SECURITY;
GRANT SELECT, INSERT ON user_wishlists TO authenticated;

CREATE POLICY wishlists_select_own ON user_wishlists FOR SELECT TO authenticated
  USING (user_id = current_setting('request.jwt.claim.sub', true));
CREATE POLICY wishlists_insert_own ON user_wishlists FOR INSERT TO authenticated
  WITH CHECK (user_id = current_setting('request.jwt.claim.sub', true));

INSERT INTO user_wishlists VALUES
  (1, 'user-1', 'tent'),
  (2, 'user-1', 'camp stove'),
  (3, 'user-2', 'kayak');

-- no grant to authenticated: reading it is "permission denied" (42501)
CREATE TABLE private_notes (id integer PRIMARY KEY, note text);
