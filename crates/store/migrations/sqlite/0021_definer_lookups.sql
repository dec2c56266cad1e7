-- PostgreSQL moves its pre-tenant look-ups and the delivery worker's claim into SECURITY
-- DEFINER functions (see the PostgreSQL migration of the same number). SQLite has no
-- row-level security and no roles: nothing changes here.
SELECT 1;
