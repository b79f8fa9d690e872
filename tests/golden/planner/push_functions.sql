-- title: the monthly billing grouping in Berlin's calendar is sent whole
SELECT customer_id, date_trunc('month', ts AT TIME ZONE 'Europe/Berlin') AS m, sum(quantity) AS q
FROM pg.public.events GROUP BY 1, 2
-- plan:
Plan: the whole query runs on one source
- fragment f1 on source 'pg' (postgres): whole query
    sql: SELECT q.c1 AS "customer_id", q.c2 AS "m", CAST(q.c3 AS TEXT) AS "q" FROM (SELECT customer_id, DATE_TRUNC('MONTH', ts AT TIME ZONE 'Europe/Berlin') AS m, SUM(quantity) AS q FROM public.events AS events GROUP BY 1, 2) AS q(c1, c2, c3)

-- ====
-- title: DuckDB's timezone(zone, ts) is PostgreSQL's too
SELECT date_trunc('day', timezone('Asia/Kolkata', ts)) AS d, count(*) AS n FROM pg.public.events GROUP BY 1
-- plan:
Plan: the whole query runs on one source
- fragment f1 on source 'pg' (postgres): whole query
    sql: SELECT DATE_TRUNC('DAY', TIMEZONE('Asia/Kolkata', ts)) AS d, COUNT(*) AS n FROM public.events AS events GROUP BY 1

-- ====
-- title: extract and date_part: PostgreSQL's numeric as DuckDB's BIGINT, seconds without fractions, epoch as DOUBLE
SELECT extract(hour FROM ts) AS h, date_part('dow', ts) AS d, extract(second FROM ts) AS s,
date_part('epoch', ts) AS e FROM pg.public.events
-- plan:
Plan: the whole query runs on one source
- fragment f1 on source 'pg' (postgres): whole query
    sql: SELECT CAST(EXTRACT(HOUR FROM ts) AS BIGINT) AS h, CAST(EXTRACT(DOW FROM ts) AS BIGINT) AS d, CAST(FLOOR(EXTRACT(SECOND FROM ts)) AS BIGINT) AS s, CAST(EXTRACT(EPOCH FROM ts) AS DOUBLE PRECISION) AS e FROM public.events AS events

-- ====
-- title: interval arithmetic and casts to DATE
SELECT CAST(ts AS DATE) AS d, count(*) AS n FROM pg.public.events
WHERE ts >= TIMESTAMPTZ '2024-03-01 00:00:00+00' - INTERVAL 1 DAY AND ts < TIMESTAMPTZ '2024-03-01 00:00:00+00' + INTERVAL 1 MONTH
GROUP BY 1
-- plan:
Plan: the whole query runs on one source
- fragment f1 on source 'pg' (postgres): whole query
    sql: SELECT CAST(ts AS DATE) AS d, COUNT(*) AS n FROM public.events AS events WHERE ts >= CAST('2024-03-01 00:00:00+00' AS TIMESTAMPTZ) - INTERVAL '1 DAY' AND ts < CAST('2024-03-01 00:00:00+00' AS TIMESTAMPTZ) + INTERVAL '1 MONTH' GROUP BY 1

-- ====
-- title: nullif, coalesce, CASE and an aggregate FILTER
SELECT coalesce(nullif(meter, ''), '?') AS m, sum(quantity) FILTER (WHERE customer_id > 10) AS q,
CASE WHEN count(*) > 1 THEN 'many' ELSE 'one' END AS k FROM pg.public.events GROUP BY 1
-- plan:
Plan: the whole query runs on one source
- fragment f1 on source 'pg' (postgres): whole query
    sql: SELECT q.c1 AS "m", CAST(q.c2 AS TEXT) AS "q", q.c3 AS "k" FROM (SELECT COALESCE(NULLIF(meter, ''), '?') AS m, SUM(quantity) FILTER(WHERE customer_id > 10) AS q, CASE WHEN COUNT(*) > 1 THEN 'many' ELSE 'one' END AS k FROM public.events AS events GROUP BY 1) AS q(c1, c2, c3)

-- ====
-- title: integer division: DuckDB's DOUBLE quotient (infinite at zero), // and % truncate in both
SELECT id / customer_id AS q, id // customer_id AS iq, id % customer_id AS r FROM pg.public.events
-- plan:
Plan: the whole query runs on one source
- fragment f1 on source 'pg' (postgres): whole query
    sql: SELECT CASE WHEN customer_id = 0 THEN CAST(id AS DOUBLE PRECISION) * CAST('Infinity' AS DOUBLE PRECISION) ELSE CAST(id AS DOUBLE PRECISION) / customer_id END AS q, (id / customer_id) AS iq, id % customer_id AS r FROM public.events AS events

-- ====
-- title: substring from a positive start, concat and || of text and integers
SELECT substring(meter, 2, 3) AS s, concat(meter, '-', customer_id) AS c, meter || '!' AS p
FROM pg.public.events
-- plan:
Plan: the whole query runs on one source
- fragment f1 on source 'pg' (postgres): whole query
    sql: SELECT SUBSTRING(meter FROM 2 FOR 3) AS s, CONCAT(meter, '-', customer_id) AS c, meter || '!' AS p FROM public.events AS events

-- ====
-- title: LIKE without ESCAPE: PostgreSQL is told to take the backslash as it is
SELECT count(*) AS n FROM pg.public.events WHERE meter LIKE 'api\_%' OR meter NOT LIKE '%!%' ESCAPE '!'
-- plan:
Plan: the whole query runs on one source
- fragment f1 on source 'pg' (postgres): whole query
    sql: SELECT COUNT(*) AS n FROM public.events AS events WHERE meter LIKE 'api\_%' ESCAPE '' OR meter NOT LIKE '%!%' ESCAPE '!'

-- ====
-- title: a date_trunc filter and a LIKE go into the scan of a query across sources
SELECT e.id, c.name FROM pg.public.events e JOIN lite.main.customers c ON c.id = e.customer_id
WHERE date_trunc('month', e.ts) = TIMESTAMPTZ '2024-02-01 00:00:00+00' AND e.meter LIKE 'a%'
-- plan:
Plan: 2 fragment(s), run locally in DuckDB
- fragment f1 on source 'pg' (postgres): scan pg.public.events
    sql: SELECT "id", "customer_id", "meter", "ts" FROM "public"."events" WHERE DATE_TRUNC('MONTH', "ts") = CAST('2024-02-01 00:00:00+00' AS TIMESTAMPTZ) AND "meter" LIKE 'a%' ESCAPE ''
    pushed: columns id, customer_id, meter, ts
    pushed: filter DATE_TRUNC('MONTH', e.ts) = CAST('2024-02-01 00:00:00+00' AS TIMESTAMPTZ) (from WHERE)
    pushed: filter e.meter LIKE 'a%' (from WHERE)
    dynamic filter: customer_id in the keys of f2.id (read first; up to 10000 keys as a set, else their min/max range): the smallest build side (~1,000 rows; no statistics on the probe's keys)
- fragment f2 on source 'lite' (sqlite): scan lite.main.customers
    sql: SELECT "id", "name" FROM "main"."customers"
    pushed: columns id, name
    kept local: filter c.id = e.customer_id: refers to other tables
- residual in DuckDB:
    sql: SELECT e.id, c.name FROM __fragment_f1 AS e JOIN __fragment_f2 AS c ON c.id = e.customer_id WHERE DATE_TRUNC('MONTH', e.ts) = CAST('2024-02-01 00:00:00+00' AS TIMESTAMPTZ) AND e.meter LIKE 'a%'

-- ====
-- title: lower() stays local: case folding of non-ASCII text differs
SELECT lower(meter) AS m, count(*) AS n FROM pg.public.events GROUP BY 1
-- plan:
Plan: 1 fragment(s), run locally in DuckDB
  note: not sent whole to 'pg': lower() folds the case of non-ASCII text by the database's ctype on postgres, by DuckDB's own Unicode tables in DuckDB (upper('ß') is 'ẞ' there)
- fragment f1 on source 'pg' (postgres): scan pg.public.events
    sql: SELECT "meter" FROM "public"."events"
    pushed: columns meter
- residual in DuckDB:
    sql: SELECT LOWER(meter) AS m, COUNT(*) AS n FROM __fragment_f1 AS events GROUP BY 1

-- ====
-- title: lower() in a scan filter stays in DuckDB, with the reason
SELECT e.id, c.name FROM pg.public.events e JOIN lite.main.customers c ON c.id = e.customer_id
WHERE lower(e.meter) = 'seats'
-- plan:
Plan: 2 fragment(s), run locally in DuckDB
- fragment f1 on source 'pg' (postgres): scan pg.public.events
    sql: SELECT "id", "customer_id", "meter" FROM "public"."events"
    pushed: columns id, customer_id, meter
    dynamic filter: customer_id in the keys of f2.id (read first; up to 10000 keys as a set, else their min/max range): the smallest build side (~1,000 rows; no statistics on the probe's keys)
    kept local: filter LOWER(e.meter) = 'seats': lower() folds the case of non-ASCII text by the database's ctype on postgres, by DuckDB's own Unicode tables in DuckDB (upper('ß') is 'ẞ' there)
- fragment f2 on source 'lite' (sqlite): scan lite.main.customers
    sql: SELECT "id", "name" FROM "main"."customers"
    pushed: columns id, name
    kept local: filter c.id = e.customer_id: refers to other tables
- residual in DuckDB:
    sql: SELECT e.id, c.name FROM __fragment_f1 AS e JOIN __fragment_f2 AS c ON c.id = e.customer_id WHERE LOWER(e.meter) = 'seats'

-- ====
-- title: ILIKE stays local
SELECT count(*) AS n FROM pg.public.events WHERE meter ILIKE 'API%'
-- plan:
Plan: 1 fragment(s), run locally in DuckDB
  note: not sent whole to 'pg': ILIKE folds the case of non-ASCII text by the database's ctype on postgres, by DuckDB's own Unicode tables in DuckDB (upper('ß') is 'ẞ' there)
- fragment f1 on source 'pg' (postgres): scan pg.public.events
    sql: SELECT "meter" FROM "public"."events"
    pushed: columns meter
    kept local: filter events.meter ILIKE 'API%': ILIKE folds the case of non-ASCII text by the database's ctype on postgres, by DuckDB's own Unicode tables in DuckDB (upper('ß') is 'ẞ' there)
- residual in DuckDB:
    sql: SELECT COUNT(*) AS n FROM __fragment_f1 AS events WHERE meter ILIKE 'API%'

-- ====
-- title: substring from a start that is not positive stays local
SELECT substring(meter, -2, 2) AS s FROM pg.public.events
-- plan:
Plan: 1 fragment(s), run locally in DuckDB
  note: not sent whole to 'pg': substring from a start that is not a positive literal: DuckDB counts a negative start from the end, postgres before the first character
- fragment f1 on source 'pg' (postgres): scan pg.public.events
    sql: SELECT "meter" FROM "public"."events"
    pushed: columns meter
- residual in DuckDB:
    sql: SELECT SUBSTRING(meter, -2, 2) AS s FROM __fragment_f1 AS events

-- ====
-- title: division of decimals stays local
SELECT sum(quantity) / count(*) AS avg_q FROM pg.public.events
-- plan:
Plan: 1 fragment(s), run locally in DuckDB
  note: not sent whole to 'pg': division of BIGINT, DECIMAL: DuckDB divides in DOUBLE (and gives inf at zero), postgres keeps the type or raises
- fragment f1 on source 'pg' (postgres): scan pg.public.events
    sql: SELECT CAST("quantity" AS TEXT) AS "quantity" FROM "public"."events"
    pushed: columns quantity
- residual in DuckDB:
    sql: SELECT SUM(quantity) / COUNT(*) AS avg_q FROM __fragment_f1 AS events

-- ====
-- title: a wall-clock timestamp AT TIME ZONE stays local (daylight-saving gaps and overlaps by each engine's rule)
SELECT CAST(ts AS TIMESTAMP) AT TIME ZONE 'Europe/Berlin' AS i FROM pg.public.events
-- plan:
Plan: 1 fragment(s), run locally in DuckDB
  note: not sent whole to 'pg': AT TIME ZONE of a wall-clock timestamp: a time in a daylight-saving gap or overlap resolves by each engine's own rule, not known to agree in every zone
- fragment f1 on source 'pg' (postgres): scan pg.public.events
    sql: SELECT "ts" FROM "public"."events"
    pushed: columns ts
- residual in DuckDB:
    sql: SELECT CAST(ts AS TIMESTAMP) AT TIME ZONE 'Europe/Berlin' AS i FROM __fragment_f1 AS events

-- ====
-- title: a zone that is not an IANA name stays local
SELECT ts AT TIME ZONE 'EST' AS e FROM pg.public.events
-- plan:
Plan: 1 fragment(s), run locally in DuckDB
  note: not sent whole to 'pg': AT TIME ZONE takes a literal IANA zone name (e.g. 'Europe/Berlin') to be pushed
- fragment f1 on source 'pg' (postgres): scan pg.public.events
    sql: SELECT "ts" FROM "public"."events"
    pushed: columns ts
- residual in DuckDB:
    sql: SELECT ts AT TIME ZONE 'EST' AS e FROM __fragment_f1 AS events
