-- title: the small SQLite side's keys restrict the big PostgreSQL scan
SELECT c.name, sum(e.quantity) AS qty FROM pg.public.events e
JOIN lite.main.customers c ON c.id = e.customer_id WHERE c.plan = 'enterprise' GROUP BY c.name
-- plan:
Plan: 2 fragment(s), run locally in DuckDB
  note: no eager aggregation: no statistics on the distinct values of pg.public.events.customer_id (read them with 'meterql source refresh pg')
- fragment f1 on source 'pg' (postgres): scan pg.public.events
    sql: SELECT "customer_id", CAST("quantity" AS TEXT) AS "quantity" FROM "public"."events"
    pushed: columns customer_id, quantity
    dynamic filter: customer_id in the keys of f2.id (read first; up to 10000 keys as a set, else their min/max range)
- fragment f2 on source 'lite' (sqlite): scan lite.main.customers
    sql: SELECT "id", "name", "plan" FROM "main"."customers" WHERE "plan" COLLATE BINARY = 'enterprise'
    pushed: columns id, name, plan
    pushed: filter c.plan = 'enterprise' (from WHERE)
    kept local: filter c.id = e.customer_id: refers to other tables
- residual in DuckDB:
    sql: SELECT c.name, SUM(e.quantity) AS qty FROM __fragment_f1 AS e JOIN __fragment_f2 AS c ON c.id = e.customer_id WHERE c.plan = 'enterprise' GROUP BY c.name

-- ====
-- title: text keys into a DuckDB file
SELECT e.meter, p.price FROM pg.public.events e JOIN dk.main.prices p ON p.meter = e.meter
WHERE e.customer_id = 7
-- plan:
Plan: 2 fragment(s), run locally in DuckDB
- fragment f1 on source 'pg' (postgres): scan pg.public.events
    sql: SELECT "customer_id", "meter" FROM "public"."events" WHERE "customer_id" = 7
    pushed: columns customer_id, meter
    pushed: filter e.customer_id = 7 (from WHERE)
    dynamic filter: meter in the keys of f2.meter (read first; up to 10000 keys as a set, else their min/max range)
- fragment f2 on source 'dk' (duckdb): scan dk.main.prices
    sql: SELECT "meter", "price" FROM "main"."prices"
    pushed: columns meter, price
    kept local: filter p.meter = e.meter: refers to other tables
- residual in DuckDB:
    sql: SELECT e.meter, p.price FROM __fragment_f1 AS e JOIN __fragment_f2 AS p ON p.meter = e.meter WHERE e.customer_id = 7

-- ====
-- title: the preserved side of a LEFT JOIN is never filtered
SELECT e.id, c.name FROM pg.public.events e LEFT JOIN lite.main.customers c ON c.id = e.customer_id
-- plan:
Plan: 2 fragment(s), run locally in DuckDB
- fragment f1 on source 'pg' (postgres): scan pg.public.events
    sql: SELECT "id", "customer_id" FROM "public"."events"
    pushed: columns id, customer_id
- fragment f2 on source 'lite' (sqlite): scan lite.main.customers
    sql: SELECT "id", "name" FROM "main"."customers"
    pushed: columns id, name
    kept local: filter c.id = e.customer_id: refers to other tables
- residual in DuckDB:
    sql: SELECT e.id, c.name FROM __fragment_f1 AS e LEFT JOIN __fragment_f2 AS c ON c.id = e.customer_id
