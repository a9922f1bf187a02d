-- The seed's bug: a policy that reads its own table, so every read recurses (42P17).
CREATE TABLE group_members (group_id integer NOT NULL, user_id text NOT NULL);
ALTER TABLE group_members ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON group_members TO authenticated;
CREATE POLICY members_see_their_groups ON group_members FOR SELECT TO authenticated
  USING (group_id IN (SELECT group_id FROM group_members
                      WHERE user_id = current_setting('request.jwt.claim.sub', true)));
INSERT INTO group_members VALUES (1, 'user-1'), (1, 'user-2');
