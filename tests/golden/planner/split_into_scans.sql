-- title: each table of a cross-source join becomes a scan with its own filters and columns
SELECT c.plan, count(*) AS n, sum(e.quantity) AS qty
FROM pg.public.events e JOIN lite.main.customers c ON c.id = e.customer_id
WHERE e.ts >= TIMESTAMPTZ '2026-03-01' AND c.plan = 'enterprise' AND e.meter = 'api'
GROUP BY c.plan
-- plan:
Plan: 2 fragment(s), run locally in DuckDB
  note: no eager aggregation: no statistics on the distinct values of pg.public.events.customer_id (read them with 'meterql source refresh pg')
- fragment f1 on source 'pg' (postgres): scan pg.public.events
    sql: SELECT "customer_id", "meter", "ts", CAST("quantity" AS TEXT) AS "quantity" FROM "public"."events" WHERE "ts" >= CAST('2026-03-01' AS TIMESTAMPTZ) AND "meter" = 'api'
    pushed: columns customer_id, meter, ts, quantity
    pushed: filter e.ts >= CAST('2026-03-01' AS TIMESTAMPTZ) (from WHERE)
    pushed: filter e.meter = 'api' (from WHERE)
    dynamic filter: customer_id in the keys of f2.id (read first; up to 10000 keys as a set, else their min/max range): the smallest build side (~300 rows; no statistics on the probe's keys)
- fragment f2 on source 'lite' (sqlite): scan lite.main.customers
    sql: SELECT "id", "plan" FROM "main"."customers" WHERE "plan" COLLATE BINARY = 'enterprise'
    pushed: columns id, plan
    pushed: filter c.plan = 'enterprise' (from WHERE)
    kept local: filter c.id = e.customer_id: refers to other tables
- residual in DuckDB:
    sql: SELECT c.plan, COUNT(*) AS n, SUM(e.quantity) AS qty FROM __fragment_f1 AS e JOIN __fragment_f2 AS c ON c.id = e.customer_id WHERE e.ts >= CAST('2026-03-01' AS TIMESTAMPTZ) AND c.plan = 'enterprise' AND e.meter = 'api' GROUP BY c.plan

-- ====
-- title: the null-supplying side of a LEFT JOIN only takes its ON filters
SELECT c.name, count(e.id) AS n FROM lite.main.customers c
LEFT JOIN pg.public.events e ON e.customer_id = c.id AND e.meter = 'api'
WHERE e.id IS NULL GROUP BY c.name
-- plan:
Plan: 2 fragment(s), run locally in DuckDB
  note: no eager aggregation: pg.public.events is on the null-supplying side of an outer join: its unmatched groups would count differently
- fragment f1 on source 'lite' (sqlite): scan lite.main.customers
    sql: SELECT "id", "name" FROM "main"."customers"
    pushed: columns id, name
- fragment f2 on source 'pg' (postgres): scan pg.public.events
    sql: SELECT "id", "customer_id", "meter" FROM "public"."events" WHERE "meter" = 'api'
    pushed: columns id, customer_id, meter
    pushed: filter e.meter = 'api' (from ON)
    dynamic filter: customer_id in the keys of f1.id (read first; up to 10000 keys as a set, else their min/max range): the smallest build side (~1,000 rows; no statistics on the probe's keys)
    kept local: filter e.customer_id = c.id: refers to other tables
- residual in DuckDB:
    sql: SELECT c.name, COUNT(e.id) AS n FROM __fragment_f1 AS c LEFT JOIN __fragment_f2 AS e ON e.customer_id = c.id AND e.meter = 'api' WHERE e.id IS NULL GROUP BY c.name

-- ====
-- title: text ranges stay local for PostgreSQL but go to SQLite bytewise
SELECT c.name, p.name AS plan_name FROM lite.main.customers c JOIN pg.public.plans p ON p.name = c.plan
WHERE c.name >= 'M' AND p.name >= 'M'
-- plan:
Plan: 2 fragment(s), run locally in DuckDB
- fragment f1 on source 'lite' (sqlite): scan lite.main.customers
    sql: SELECT "name", "plan" FROM "main"."customers" WHERE "name" COLLATE BINARY >= 'M'
    pushed: columns name, plan
    pushed: filter c.name >= 'M' (from WHERE)
    dynamic filter: plan in the keys of f2.name (read first; up to 10000 keys as a set, else their min/max range): the smallest build side (~4 rows; no statistics on the probe's keys)
- fragment f2 on source 'pg' (postgres): scan pg.public.plans
    sql: SELECT "name" FROM "public"."plans"
    pushed: columns name
    kept local: filter p.name = c.plan: refers to other tables
    kept local: filter p.name >= 'M': text ranges depend on the source's collation
- residual in DuckDB:
    sql: SELECT c.name, p.name AS plan_name FROM __fragment_f1 AS c JOIN __fragment_f2 AS p ON p.name = c.plan WHERE c.name >= 'M' AND p.name >= 'M'

-- ====
-- title: parameters stay local for SQLite, travel to PostgreSQL
SELECT c.name, e.quantity FROM lite.main.customers c JOIN pg.public.events e ON e.customer_id = c.id
WHERE c.id = :c AND e.customer_id = :c
-- plan:
Plan: 2 fragment(s), run locally in DuckDB
- fragment f1 on source 'lite' (sqlite): scan lite.main.customers
    sql: SELECT "id", "name" FROM "main"."customers"
    pushed: columns id, name
    kept local: filter c.id = $c: sqlite compares bound values by their own type, not the column's
- fragment f2 on source 'pg' (postgres): scan pg.public.events
    sql: SELECT "customer_id", CAST("quantity" AS TEXT) AS "quantity" FROM "public"."events" WHERE "customer_id" = $1
    params: :c
    pushed: columns customer_id, quantity
    pushed: filter e.customer_id = $c (from WHERE)
    dynamic filter: customer_id in the keys of f1.id (read first; up to 10000 keys as a set, else their min/max range): the smallest build side (~1,000 rows; no statistics on the probe's keys)
    kept local: filter e.customer_id = c.id: refers to other tables
- residual in DuckDB:
    sql: SELECT c.name, e.quantity FROM __fragment_f1 AS c JOIN __fragment_f2 AS e ON e.customer_id = c.id WHERE c.id = $c AND e.customer_id = $c
