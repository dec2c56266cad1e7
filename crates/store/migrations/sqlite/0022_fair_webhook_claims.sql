-- The webhook claim caps the deliveries in flight per endpoint (the statement lives in the
-- store; PostgreSQL runs it as a function). Nothing to change on SQLite.
SELECT 1;
