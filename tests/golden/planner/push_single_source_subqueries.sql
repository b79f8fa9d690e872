-- title: an aggregating derived table of one source is sent whole inside a cross-source query
SELECT c.name, u.qty FROM (
  SELECT customer_id, sum(quantity) AS qty FROM pg.public.events
  WHERE ts >= TIMESTAMPTZ '2026-10-01' AND ts < TIMESTAMPTZ '2026-11-01' GROUP BY customer_id
) AS u JOIN lite.main.customers c ON c.id = u.customer_id
-- plan:
Plan: 2 fragment(s), run locally in DuckDB
- fragment f1 on source 'pg' (postgres): subquery
    sql: SELECT q.c1 AS "customer_id", CAST(q.c2 AS TEXT) AS "qty" FROM (SELECT customer_id, SUM(quantity) AS qty FROM public.events AS events WHERE ts >= CAST('2026-10-01' AS TIMESTAMPTZ) AND ts < CAST('2026-11-01' AS TIMESTAMPTZ) GROUP BY customer_id) AS q(c1, c2)
    pushed: the whole subquery u
- fragment f2 on source 'lite' (sqlite): scan lite.main.customers
    sql: SELECT "id", "name" FROM "main"."customers"
    pushed: columns id, name
    kept local: filter c.id = u.customer_id: refers to other tables
- residual in DuckDB:
    sql: SELECT c.name, u.qty FROM __fragment_f1 AS u JOIN __fragment_f2 AS c ON c.id = u.customer_id

-- ====
-- title: a CTE with a join inside one source becomes one fragment
WITH usage AS (
  SELECT e.customer_id, p.name AS plan_name, count(*) AS n
  FROM pg.public.events e JOIN pg.public.plans p ON p.id = e.customer_id
  GROUP BY e.customer_id, p.name
)
SELECT c.name, usage.plan_name, usage.n FROM usage JOIN lite.main.customers c ON c.id = usage.customer_id
-- plan:
Plan: 2 fragment(s), run locally in DuckDB
- fragment f1 on source 'pg' (postgres): subquery
    sql: SELECT e.customer_id, p.name AS plan_name, COUNT(*) AS n FROM public.events AS e JOIN public.plans AS p ON p.id = e.customer_id GROUP BY e.customer_id, p.name
    pushed: the whole subquery usage
- fragment f2 on source 'lite' (sqlite): scan lite.main.customers
    sql: SELECT "id", "name" FROM "main"."customers"
    pushed: columns id, name
    kept local: filter c.id = usage.customer_id: refers to other tables
- residual in DuckDB:
    sql: WITH usage AS (SELECT * FROM __fragment_f1) SELECT c.name, usage.plan_name, usage.n FROM usage JOIN __fragment_f2 AS c ON c.id = usage.customer_id

-- ====
-- title: a subquery in an expression stays in DuckDB (it may refer to the outer query)
SELECT c.name FROM lite.main.customers c
WHERE c.id IN (SELECT customer_id FROM pg.public.events WHERE quantity > 100)
-- plan:
Plan: 2 fragment(s), run locally in DuckDB
- fragment f1 on source 'lite' (sqlite): scan lite.main.customers
    sql: SELECT "id", "name" FROM "main"."customers"
    pushed: columns id, name
    kept local: filter c.id IN (SELECT events.customer_id AS customer_id FROM pg.public.events AS events WHERE events.quantity > 100): refers to other tables
- fragment f2 on source 'pg' (postgres): scan pg.public.events
    sql: SELECT "customer_id", CAST("quantity" AS TEXT) AS "quantity" FROM "public"."events" WHERE "quantity" > 100
    pushed: columns customer_id, quantity
    pushed: filter events.quantity > 100 (from WHERE)
- residual in DuckDB:
    sql: SELECT c.name FROM __fragment_f1 AS c WHERE c.id IN (SELECT customer_id FROM __fragment_f2 AS events WHERE quantity > 100)
