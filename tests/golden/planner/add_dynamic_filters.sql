-- title: the small SQLite side's keys restrict the big PostgreSQL scan
SELECT c.name, sum(e.quantity) AS qty FROM pg.public.events e
JOIN lite.main.customers c ON c.id = e.customer_id WHERE c.plan = 'enterprise' GROUP BY c.name
-- plan:
Plan: 2 fragment(s), run locally in DuckDB
  note: no eager aggregation: no statistics on the distinct values of pg.public.events.customer_id (read them with 'meterql source refresh pg')
- fragment f1 on source 'pg' (postgres): scan pg.public.events
    sql: SELECT "customer_id", CAST("quantity" AS TEXT) AS "quantity" FROM "public"."events"
    pushed: columns customer_id, quantity
    dynamic filter: customer_id in the keys of f2.id (read first; up to 10000 keys as a set, else their min/max range): the smallest build side (~300 rows; no statistics on the probe's keys)
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
    no dynamic filter: meter from f2.meter: ~32 keys among ~12 distinct meter values would keep ~100% of the rows (prunes too little)
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

-- ====
-- title: five tables: the 100 selected accounts' ids cut the events; the 3 meters prune nothing
SELECT r.name AS region, p.name AS plan, m.unit, sum(u.quantity) AS qty
FROM pg.public.usage_events u
JOIN lite.main.accounts a ON a.id = u.customer_id
JOIN dk.main.meters m ON m.meter = u.meter
JOIN pg.public.plans p ON p.id = a.plan_id
JOIN dk.main.regions r ON r.code = a.region
WHERE a.segment = 'enterprise'
GROUP BY ALL
-- plan:
Plan: 5 fragment(s), run locally in DuckDB
- fragment f1 on source 'pg' (postgres): partial aggregate of pg.public.usage_events
    sql: SELECT q.c1 AS "customer_id", q.c2 AS "meter", CAST(q.c3 AS TEXT) AS "__p1" FROM (SELECT u.customer_id AS customer_id, u.meter AS meter, SUM(u.quantity) AS __p1 FROM public.usage_events AS u GROUP BY u.customer_id, u.meter) AS q(c1, c2, c3)
    pushed: partial aggregate: group by customer_id, meter; sum(quantity) (eager aggregation: ~150k groups from ~5M rows)
    dynamic filter: customer_id in the keys of f2.id (read first; up to 10000 keys as a set, else their min/max range): ~100 keys among ~50.0k distinct customer_id values keep ~0.2% of the rows
    no dynamic filter: meter from f3.meter: ~3 keys among ~3 distinct meter values would keep ~100% of the rows (prunes too little)
- fragment f2 on source 'lite' (sqlite): scan lite.main.accounts
    sql: SELECT "id", "segment", "plan_id", "region" FROM "main"."accounts" WHERE "segment" COLLATE BINARY = 'enterprise'
    pushed: columns id, segment, plan_id, region
    pushed: filter a.segment = 'enterprise' (from WHERE)
    no dynamic filter: plan_id from f4.id: ~4 keys among ~4 distinct plan_id values would keep ~100% of the rows (prunes too little)
    kept local: filter a.id = u.customer_id: refers to other tables
- fragment f3 on source 'dk' (duckdb): scan dk.main.meters
    sql: SELECT "meter", "unit" FROM "main"."meters"
    pushed: columns meter, unit
    kept local: filter m.meter = u.meter: refers to other tables
- fragment f4 on source 'pg' (postgres): scan pg.public.plans
    sql: SELECT "id", "name" FROM "public"."plans"
    pushed: columns id, name
    kept local: filter p.id = a.plan_id: refers to other tables
- fragment f5 on source 'dk' (duckdb): scan dk.main.regions
    sql: SELECT "code", "name" FROM "main"."regions"
    pushed: columns code, name
    kept local: filter r.code = a.region: refers to other tables
- residual in DuckDB:
    sql: SELECT r.name AS region, p.name AS plan, m.unit AS unit, SUM(u.__p1) AS qty FROM __fragment_f1 AS u JOIN __fragment_f2 AS a ON a.id = u.customer_id JOIN __fragment_f3 AS m ON m.meter = u.meter JOIN __fragment_f4 AS p ON p.id = a.plan_id JOIN __fragment_f5 AS r ON r.code = a.region WHERE a.segment = 'enterprise' GROUP BY ALL
