CREATE TABLE before_the_block (id integer);
DO $$
BEGIN
  PERFORM 1;
  RAISE EXCEPTION 'the fix was not applied';
END
$$;
