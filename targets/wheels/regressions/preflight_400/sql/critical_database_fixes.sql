-- critical_database_fixes.sql: the seed's database repair (Supabase-style), runnable again and
-- again: "All missing tables (affiliate_sales, user_wishlists) created", "Proper indexes and
-- non-recursive RLS policies", "No more infinite recursion errors".
--
-- Supabase gives every signed-in request the role `authenticated` and the user's id in the
-- setting request.jwt.claim.sub; auth.uid() reads it. A plain Postgres has neither, so both are
-- made here (roles are cluster-wide: creating one that exists is caught, not an error).
-- Every policy compares the row's owner with auth.uid() and reads no table: a policy that
-- queries its own table (the "before": "users see public wishlists" as a subquery on
-- user_wishlists) makes Postgres fail every query with 42P17, infinite recursion.

DO $$
BEGIN
    CREATE ROLE authenticated NOLOGIN;
EXCEPTION WHEN duplicate_object THEN
    NULL;
END
$$;

CREATE SCHEMA IF NOT EXISTS auth;

CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid
    LANGUAGE sql STABLE
AS $$
    SELECT nullif(current_setting('request.jwt.claim.sub', true), '')::uuid
$$;

GRANT USAGE ON SCHEMA auth TO authenticated;
GRANT EXECUTE ON FUNCTION auth.uid() TO authenticated;

-- user_wishlists ------------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS public.user_wishlists (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL,
    item_name text NOT NULL,
    item_url text,
    price numeric(10, 2),
    priority smallint NOT NULL DEFAULT 3 CHECK (priority BETWEEN 1 AND 5),
    is_public boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS idx_user_wishlists_user_id ON public.user_wishlists (user_id);
CREATE INDEX IF NOT EXISTS idx_user_wishlists_created_at ON public.user_wishlists (created_at);

ALTER TABLE public.user_wishlists ENABLE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS "Users can view their own wishlists" ON public.user_wishlists;
CREATE POLICY "Users can view their own wishlists" ON public.user_wishlists
    FOR SELECT TO authenticated
    USING (user_id = auth.uid());

DROP POLICY IF EXISTS "Users can add to their own wishlists" ON public.user_wishlists;
CREATE POLICY "Users can add to their own wishlists" ON public.user_wishlists
    FOR INSERT TO authenticated
    WITH CHECK (user_id = auth.uid());

DROP POLICY IF EXISTS "Users can update their own wishlists" ON public.user_wishlists;
CREATE POLICY "Users can update their own wishlists" ON public.user_wishlists
    FOR UPDATE TO authenticated
    USING (user_id = auth.uid())
    WITH CHECK (user_id = auth.uid());

DROP POLICY IF EXISTS "Users can delete from their own wishlists" ON public.user_wishlists;
CREATE POLICY "Users can delete from their own wishlists" ON public.user_wishlists
    FOR DELETE TO authenticated
    USING (user_id = auth.uid());

GRANT SELECT, INSERT, UPDATE, DELETE ON public.user_wishlists TO authenticated;

-- affiliate_sales -----------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS public.affiliate_sales (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL,
    product_id text NOT NULL,
    platform text NOT NULL DEFAULT 'amazon',
    sale_amount numeric(10, 2) NOT NULL CHECK (sale_amount >= 0),
    commission_amount numeric(10, 2) NOT NULL DEFAULT 0 CHECK (commission_amount >= 0),
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'confirmed', 'paid', 'cancelled')),
    sale_date timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS idx_affiliate_sales_user_id ON public.affiliate_sales (user_id);
CREATE INDEX IF NOT EXISTS idx_affiliate_sales_sale_date ON public.affiliate_sales (sale_date);
CREATE INDEX IF NOT EXISTS idx_affiliate_sales_status ON public.affiliate_sales (status);

ALTER TABLE public.affiliate_sales ENABLE ROW LEVEL SECURITY;

-- sales are written by the backend (the table's owner); a user reads their own
DROP POLICY IF EXISTS "Users can view their own affiliate sales" ON public.affiliate_sales;
CREATE POLICY "Users can view their own affiliate sales" ON public.affiliate_sales
    FOR SELECT TO authenticated
    USING (user_id = auth.uid());

GRANT SELECT ON public.affiliate_sales TO authenticated;

-- seed rows: two users, with fixed ids so that running the file again adds nothing ----------

INSERT INTO public.user_wishlists (id, user_id, item_name, item_url, price, priority)
VALUES
    ('a0000000-0000-4000-8000-000000000001', '11111111-1111-4111-8111-111111111111',
     'Portable solar panel 200W', 'https://example.com/solar-200w', 449.00, 1),
    ('a0000000-0000-4000-8000-000000000002', '11111111-1111-4111-8111-111111111111',
     'Diesel heater', 'https://example.com/diesel-heater', 189.50, 2),
    ('a0000000-0000-4000-8000-000000000003', '11111111-1111-4111-8111-111111111111',
     '12V fridge 45L', 'https://example.com/fridge-45l', 799.00, 3),
    ('a0000000-0000-4000-8000-000000000004', '22222222-2222-4222-8222-222222222222',
     'Awning 2.5m', 'https://example.com/awning', 310.00, 2),
    ('a0000000-0000-4000-8000-000000000005', '22222222-2222-4222-8222-222222222222',
     'Water filter', 'https://example.com/water-filter', 59.95, 4)
ON CONFLICT (id) DO NOTHING;

INSERT INTO public.affiliate_sales (id, user_id, product_id, sale_amount, commission_amount, status)
VALUES
    ('b0000000-0000-4000-8000-000000000001', '11111111-1111-4111-8111-111111111111',
     'B07SOLAR200', 449.00, 17.96, 'confirmed'),
    ('b0000000-0000-4000-8000-000000000002', '11111111-1111-4111-8111-111111111111',
     'B08HEATER', 189.50, 7.58, 'pending'),
    ('b0000000-0000-4000-8000-000000000003', '22222222-2222-4222-8222-222222222222',
     'B09AWNING', 310.00, 12.40, 'paid')
ON CONFLICT (id) DO NOTHING;
