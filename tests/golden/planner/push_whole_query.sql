-- title: a selective aggregate on one PostgreSQL source is sent whole, parameters as markers
SELECT meter, count(*) AS n, sum(quantity) AS qty FROM pg.public.events
WHERE customer_id = :c AND ts >= :start AND ts < :end GROUP BY meter
-- plan:
Plan: the whole query runs on one source
- fragment f1 on source 'pg' (postgres): whole query
    sql: SELECT q.c1 AS "meter", q.c2 AS "n", CAST(q.c3 AS TEXT) AS "qty" FROM (SELECT meter, COUNT(*) AS n, SUM(quantity) AS qty FROM public.events AS events WHERE customer_id = $1 AND ts >= $2 AND ts < $3 GROUP BY meter) AS q(c1, c2, c3)
    params: :c, :start, :end

-- ====
-- title: a join within one source, ordered and limited, runs there
SELECT e.customer_id, p.name, sum(e.quantity * p.price) AS amount
FROM pg.public.events e JOIN pg.public.plans p ON p.id = e.customer_id
GROUP BY e.customer_id, p.name ORDER BY amount DESC NULLS LAST, e.customer_id LIMIT 10
-- plan:
Plan: the whole query runs on one source
- fragment f1 on source 'pg' (postgres): whole query
    sql: SELECT q.c1 AS "customer_id", q.c2 AS "name", CAST(q.c3 AS TEXT) AS "amount" FROM (SELECT e.customer_id, p.name, SUM(e.quantity * p.price) AS amount FROM public.events AS e JOIN public.plans AS p ON p.id = e.customer_id GROUP BY e.customer_id, p.name ORDER BY amount DESC NULLS LAST, e.customer_id LIMIT 10) AS q(c1, c2, c3)

-- ====
-- title: window functions and CTEs go down too
WITH monthly AS (SELECT customer_id, count(*) AS n FROM pg.public.events GROUP BY customer_id)
SELECT customer_id, n, rank() OVER (ORDER BY n DESC, customer_id) AS r FROM monthly
-- plan:
Plan: the whole query runs on one source
- fragment f1 on source 'pg' (postgres): whole query
    sql: WITH monthly AS (SELECT customer_id, COUNT(*) AS n FROM public.events AS events GROUP BY customer_id) SELECT customer_id, n, RANK() OVER (ORDER BY n DESC NULLS LAST, customer_id) AS r FROM monthly

-- ====
-- title: division of decimals stays local (DuckDB divides in DOUBLE)
SELECT quantity / 2 AS half FROM pg.public.events WHERE customer_id = 7
-- plan:
Plan: 1 fragment(s), run locally in DuckDB
  note: not sent whole to 'pg': division of DECIMAL, INT: DuckDB divides in DOUBLE (and gives inf at zero), postgres keeps the type or raises
- fragment f1 on source 'pg' (postgres): scan pg.public.events
    sql: SELECT "customer_id", CAST("quantity" AS TEXT) AS "quantity" FROM "public"."events" WHERE "customer_id" = 7
    pushed: columns customer_id, quantity
    pushed: filter events.customer_id = 7 (from WHERE)
- residual in DuckDB:
    sql: SELECT quantity / 2 AS half FROM __fragment_f1 AS events WHERE customer_id = 7

-- ====
-- title: ordering text depends on PostgreSQL's collation: not sent whole
SELECT name FROM pg.public.plans ORDER BY name
-- plan:
Plan: 1 fragment(s), run locally in DuckDB
  note: not sent whole to 'pg': ordering or comparing text depends on the source's collation
- fragment f1 on source 'pg' (postgres): scan pg.public.plans
    sql: SELECT "name" FROM "public"."plans"
    pushed: columns name
- residual in DuckDB:
    sql: SELECT name FROM __fragment_f1 AS plans ORDER BY name

-- ====
-- title: GROUP BY ALL is DuckDB syntax
SELECT meter, count(*) AS n FROM pg.public.events GROUP BY ALL
-- plan:
Plan: 1 fragment(s), run locally in DuckDB
  note: not sent whole to 'pg': GROUP BY ALL is DuckDB syntax that postgres lacks
- fragment f1 on source 'pg' (postgres): scan pg.public.events
    sql: SELECT "meter" FROM "public"."events"
    pushed: columns meter
- residual in DuckDB:
    sql: SELECT meter, COUNT(*) AS n FROM __fragment_f1 AS events GROUP BY ALL

-- ====
-- title: a DuckDB file runs anything DuckDB runs
SELECT meter, max(price) AS p FROM dk.main.prices GROUP BY ALL ORDER BY ALL
-- plan:
Plan: the whole query runs on one source
- fragment f1 on source 'dk' (duckdb): whole query
    sql: SELECT meter, MAX(price) AS p FROM main.prices AS prices GROUP BY ALL ORDER BY ALL

-- ====
-- title: SQLite only receives scans (weak typing)
SELECT plan, count(*) AS n FROM lite.main.customers WHERE id < 100 GROUP BY plan
-- plan:
Plan: 1 fragment(s), run locally in DuckDB
  note: not sent whole to 'lite': sqlite sources do not run whole queries (weak typing); scans only
- fragment f1 on source 'lite' (sqlite): scan lite.main.customers
    sql: SELECT "id", "plan" FROM "main"."customers" WHERE "id" < 100
    pushed: columns id, plan
    pushed: filter customers.id < 100 (from WHERE)
- residual in DuckDB:
    sql: SELECT plan, COUNT(*) AS n FROM __fragment_f1 AS customers WHERE id < 100 GROUP BY plan
