-- title: price list: the month's events grouped by meter at PostgreSQL, finished over the prices
SELECT e.meter, sum(e.quantity) AS qty, sum(e.quantity * p.price) AS amount
FROM pg.public.events AS e JOIN dk.main.prices AS p ON p.meter = e.meter
WHERE e.ts >= TIMESTAMPTZ '2026-03-01 00:00:00+00' AND e.ts < TIMESTAMPTZ '2026-04-01 00:00:00+00'
GROUP BY 1
-- plan:
Plan: 2 fragment(s), run locally in DuckDB
- fragment f1 on source 'pg' (postgres): partial aggregate of pg.public.events
    sql: SELECT q.c1 AS "meter", CAST(q.c2 AS TEXT) AS "__p1", CAST(q.c3 AS TEXT) AS "__p2", CAST(q.c4 AS TEXT) AS "__p3" FROM (SELECT e.meter AS meter, SUM(e.quantity) AS __p1, MIN(e.quantity) AS __p2, MAX(e.quantity) AS __p3 FROM public.events AS e WHERE e.ts >= CAST('2026-03-01 00:00:00+00' AS TIMESTAMPTZ) AND e.ts < CAST('2026-04-01 00:00:00+00' AS TIMESTAMPTZ) GROUP BY e.meter) AS q(c1, c2, c3, c4)
    pushed: partial aggregate: group by meter; sum(quantity), min(quantity), max(quantity) (eager aggregation: ~12 groups from ~1.1M rows)
    pushed: filter e.ts >= CAST('2026-03-01 00:00:00+00' AS TIMESTAMPTZ) (from WHERE)
    pushed: filter e.ts < CAST('2026-04-01 00:00:00+00' AS TIMESTAMPTZ) (from WHERE)
    no dynamic filter: meter from f2.meter: ~32 keys among ~12 distinct meter values would keep ~100% of the rows (prunes too little)
- fragment f2 on source 'dk' (duckdb): scan dk.main.prices
    sql: SELECT "meter", "price" FROM "main"."prices"
    pushed: columns meter, price
    kept local: filter p.meter = e.meter: refers to other tables
- residual in DuckDB:
    sql: SELECT e.meter AS meter, SUM(e.__p1) AS qty, SUM(e.__p1 * p.price + 0 * (e.__p2 * p.price) + 0 * (e.__p3 * p.price)) AS amount FROM __fragment_f1 AS e JOIN __fragment_f2 AS p ON p.meter = e.meter GROUP BY e.meter

-- ====
-- title: counts are sums of partial counts; the small side's columns group and min/max as written
SELECT p.price, count(*) AS n, count(e.customer_id) AS with_customer, max(p.meter) AS m
FROM pg.public.events AS e JOIN dk.main.prices AS p ON p.meter = e.meter
GROUP BY 1 HAVING count(*) > 10 ORDER BY n DESC LIMIT 5
-- plan:
Plan: 2 fragment(s), run locally in DuckDB
- fragment f1 on source 'pg' (postgres): partial aggregate of pg.public.events
    sql: SELECT e.meter AS meter, COUNT(*) AS __p1, COUNT(e.customer_id) AS __p2 FROM public.events AS e GROUP BY e.meter
    pushed: partial aggregate: group by meter; count(*), count(customer_id) (eager aggregation: ~12 groups from ~10M rows)
    no dynamic filter: meter from f2.meter: ~32 keys among ~12 distinct meter values would keep ~100% of the rows (prunes too little)
- fragment f2 on source 'dk' (duckdb): scan dk.main.prices
    sql: SELECT "meter", "price" FROM "main"."prices"
    pushed: columns meter, price
    kept local: filter p.meter = e.meter: refers to other tables
- residual in DuckDB:
    sql: SELECT p.price AS price, CAST(COALESCE(SUM(e.__p1), 0) AS BIGINT) AS n, CAST(COALESCE(SUM(e.__p2), 0) AS BIGINT) AS with_customer, MAX(p.meter) AS m FROM __fragment_f1 AS e JOIN __fragment_f2 AS p ON p.meter = e.meter GROUP BY p.price HAVING CAST(COALESCE(SUM(e.__p1), 0) AS BIGINT) > 10 ORDER BY n DESC LIMIT 5

-- ====
-- title: the preserved side of a LEFT JOIN may be aggregated early
SELECT e.meter, sum(e.quantity) AS q, count(*) AS n
FROM pg.public.events AS e LEFT JOIN dk.main.prices AS p ON p.meter = e.meter
WHERE p.price IS NULL GROUP BY 1
-- plan:
Plan: 2 fragment(s), run locally in DuckDB
- fragment f1 on source 'pg' (postgres): partial aggregate of pg.public.events
    sql: SELECT q.c1 AS "meter", CAST(q.c2 AS TEXT) AS "__p1", q.c3 AS "__p2" FROM (SELECT e.meter AS meter, SUM(e.quantity) AS __p1, COUNT(*) AS __p2 FROM public.events AS e GROUP BY e.meter) AS q(c1, c2, c3)
    pushed: partial aggregate: group by meter; sum(quantity), count(*) (eager aggregation: ~12 groups from ~10M rows)
- fragment f2 on source 'dk' (duckdb): scan dk.main.prices
    sql: SELECT "meter", "price" FROM "main"."prices"
    pushed: columns meter, price
    kept local: filter p.meter = e.meter: refers to other tables
- residual in DuckDB:
    sql: SELECT e.meter AS meter, SUM(e.__p1) AS q, CAST(COALESCE(SUM(e.__p2), 0) AS BIGINT) AS n FROM __fragment_f1 AS e LEFT JOIN __fragment_f2 AS p ON p.meter = e.meter WHERE p.price IS NULL GROUP BY e.meter

-- ====
-- title: not on the null-supplying side of a LEFT JOIN
SELECT p.meter, count(*) AS n FROM dk.main.prices AS p
LEFT JOIN pg.public.events AS e ON e.meter = p.meter GROUP BY 1
-- plan:
Plan: 2 fragment(s), run locally in DuckDB
  note: no eager aggregation: pg.public.events is on the null-supplying side of an outer join: its unmatched groups would count differently
- fragment f1 on source 'dk' (duckdb): scan dk.main.prices
    sql: SELECT "meter" FROM "main"."prices"
    pushed: columns meter
- fragment f2 on source 'pg' (postgres): scan pg.public.events
    sql: SELECT "meter" FROM "public"."events"
    pushed: columns meter
    no dynamic filter: meter from f1.meter: ~32 keys among ~12 distinct meter values would keep ~100% of the rows (prunes too little)
    kept local: filter e.meter = p.meter: refers to other tables
- residual in DuckDB:
    sql: SELECT p.meter, COUNT(*) AS n FROM __fragment_f1 AS p LEFT JOIN __fragment_f2 AS e ON e.meter = p.meter GROUP BY 1

-- ====
-- title: avg does not decompose
SELECT e.meter, avg(e.quantity) AS a FROM pg.public.events AS e
JOIN dk.main.prices AS p ON p.meter = e.meter GROUP BY 1
-- plan:
Plan: 2 fragment(s), run locally in DuckDB
  note: no eager aggregation: AVG(e.quantity): DuckDB divides in extended precision; a sum over a count of partial sums is not proven to give its DOUBLE bit for bit
- fragment f1 on source 'pg' (postgres): scan pg.public.events
    sql: SELECT "meter", CAST("quantity" AS TEXT) AS "quantity" FROM "public"."events"
    pushed: columns meter, quantity
    no dynamic filter: meter from f2.meter: ~32 keys among ~12 distinct meter values would keep ~100% of the rows (prunes too little)
- fragment f2 on source 'dk' (duckdb): scan dk.main.prices
    sql: SELECT "meter" FROM "main"."prices"
    pushed: columns meter
    kept local: filter p.meter = e.meter: refers to other tables
- residual in DuckDB:
    sql: SELECT e.meter, AVG(e.quantity) AS a FROM __fragment_f1 AS e JOIN __fragment_f2 AS p ON p.meter = e.meter GROUP BY 1

-- ====
-- title: min and max of text stay local (PostgreSQL compares by its collation)
SELECT p.price, min(e.meter) AS first_meter FROM pg.public.events AS e
JOIN dk.main.prices AS p ON p.meter = e.meter GROUP BY 1
-- plan:
Plan: 2 fragment(s), run locally in DuckDB
  note: no eager aggregation: MIN(e.meter): the source compares text by its collation
- fragment f1 on source 'pg' (postgres): scan pg.public.events
    sql: SELECT "meter" FROM "public"."events"
    pushed: columns meter
    no dynamic filter: meter from f2.meter: ~32 keys among ~12 distinct meter values would keep ~100% of the rows (prunes too little)
- fragment f2 on source 'dk' (duckdb): scan dk.main.prices
    sql: SELECT "meter", "price" FROM "main"."prices"
    pushed: columns meter, price
    kept local: filter p.meter = e.meter: refers to other tables
- residual in DuckDB:
    sql: SELECT p.price, MIN(e.meter) AS first_meter FROM __fragment_f1 AS e JOIN __fragment_f2 AS p ON p.meter = e.meter GROUP BY 1

-- ====
-- title: without statistics on the key, nothing is aggregated early
SELECT c.plan, sum(e.quantity) AS q FROM pg.public.events AS e
JOIN lite.main.customers AS c ON c.id = e.customer_id GROUP BY 1
-- plan:
Plan: 2 fragment(s), run locally in DuckDB
  note: no eager aggregation: no statistics on the distinct values of pg.public.events.customer_id (read them with 'meterql source refresh pg')
- fragment f1 on source 'pg' (postgres): scan pg.public.events
    sql: SELECT "customer_id", CAST("quantity" AS TEXT) AS "quantity" FROM "public"."events"
    pushed: columns customer_id, quantity
    dynamic filter: customer_id in the keys of f2.id (read first; up to 10000 keys as a set, else their min/max range): the smallest build side (~1,000 rows; no statistics on the probe's keys)
- fragment f2 on source 'lite' (sqlite): scan lite.main.customers
    sql: SELECT "id", "plan" FROM "main"."customers"
    pushed: columns id, plan
    kept local: filter c.id = e.customer_id: refers to other tables
- residual in DuckDB:
    sql: SELECT c.plan, SUM(e.quantity) AS q FROM __fragment_f1 AS e JOIN __fragment_f2 AS c ON c.id = e.customer_id GROUP BY 1
