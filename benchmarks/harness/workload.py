"""The queries, each written once in DuckDB dialect with {events}, {customers}, {plans},
{prices} and {dim_customers} standing for the tables; PostgreSQL gets sqlglot's transpile."""

from __future__ import annotations

import sqlglot

MONTH = ("TIMESTAMPTZ '2026-03-01 00:00:00+00'", "TIMESTAMPTZ '2026-04-01 00:00:00+00'")
IN_MONTH = f"ts >= {MONTH[0]} AND ts < {MONTH[1]}"
E_IN_MONTH = f"e.ts >= {MONTH[0]} AND e.ts < {MONTH[1]}"
CUSTOMER = 7

QUERIES: dict[str, dict] = {
    "customer_month": {
        "what": "one customer, one month: quantity per meter",
        "tables": ["events"],
        "sql": f"SELECT meter, count(*) AS n, sum(quantity) AS qty FROM {{events}} "
        f"WHERE customer_id = {CUSTOMER} AND {IN_MONTH} GROUP BY meter",
    },
    "invoice_run": {
        "what": "all customers, one month: quantity per customer and meter",
        "tables": ["events"],
        "sql": f"SELECT customer_id, meter, count(*) AS n, sum(quantity) AS qty FROM {{events}} "
        f"WHERE {IN_MONTH} GROUP BY customer_id, meter",
    },
    "top10": {
        "what": "top 10 customers by quantity in a month",
        "tables": ["events"],
        "sql": f"SELECT customer_id, sum(quantity) AS qty FROM {{events}} WHERE {IN_MONTH} "
        "GROUP BY customer_id ORDER BY qty DESC, customer_id LIMIT 10",
    },
    "daily_windows": {
        "what": "one customer's days in a month with a running total",
        "tables": ["events"],
        "sql": "SELECT day, qty, sum(qty) OVER (ORDER BY day) AS running FROM ("
        "SELECT date_trunc('day', ts AT TIME ZONE 'UTC') AS day, sum(quantity) AS qty "
        f"FROM {{events}} WHERE customer_id = {CUSTOMER} AND {IN_MONTH} GROUP BY 1) AS d",
    },
    "monthly_berlin": {
        "what": "all customers, a month of usage by calendar month in Europe/Berlin "
        "(date_trunc over AT TIME ZONE: the last two hours of March UTC are April in Berlin)",
        "tables": ["events"],
        "sql": "SELECT customer_id, date_trunc('month', ts AT TIME ZONE 'Europe/Berlin') AS month, "
        f"count(*) AS n, sum(quantity) AS qty FROM {{events}} WHERE {IN_MONTH} GROUP BY 1, 2",
    },
    "join_plans": {
        "what": "events x customers x plans: amount per plan and country for a month",
        "tables": ["events", "customers", "plans"],
        "sql": "SELECT p.code AS plan, c.country, sum(e.quantity * p.unit_price) AS amount "
        "FROM {events} AS e JOIN {customers} AS c ON c.id = e.customer_id "
        f"JOIN {{plans}} AS p ON p.code = c.plan_code WHERE {E_IN_MONTH} GROUP BY 1, 2",
    },
    "price_list": {
        "what": "events x the uploaded price-list CSV: amount per meter for a month",
        "tables": ["events", "prices"],
        "sql": "SELECT e.meter, sum(e.quantity) AS qty, sum(e.quantity * pr.unit_price) AS "
        "amount FROM {events} AS e JOIN {prices} AS pr ON pr.meter = e.meter "
        f"WHERE {E_IN_MONTH} GROUP BY 1",
    },
    "cross_source": {
        "what": "events (PostgreSQL) x enterprise customers (SQLite): per country, a month",
        "tables": ["events", "dim_customers"],
        "sql": "SELECT c.country, count(*) AS n, sum(e.quantity) AS qty FROM {events} AS e "
        "JOIN {dim_customers} AS c ON c.id = e.customer_id WHERE c.plan_code = 'enterprise' "
        f"AND {E_IN_MONTH} GROUP BY 1",
    },
}

MEANINGS = {
    # mode -> table placeholder -> name
    "meterql": {"events": "pg.public.events", "customers": "pg.public.customers",
                "plans": "pg.public.plans", "prices": "local.uploads.prices",
                "dim_customers": "dim.main.customers"},
    # native DuckDB: replica attached read-only as r; prices and dim loaded into temp tables
    "duckdb": {"events": "r.public.events", "customers": "r.public.customers",
               "plans": "r.public.plans", "prices": "prices", "dim_customers": "dim_customers"},
    # PostgreSQL: prices loaded into public.prices; the SQLite side is PostgreSQL's customers
    "postgres": {"events": "public.events", "customers": "public.customers",
                 "plans": "public.plans", "prices": "public.prices",
                 "dim_customers": "public.customers"},
    # DuckDB's postgres extension: pg attached; prices and dim as temp tables
    "duckdb_pg_ext": {"events": "pg.public.events", "customers": "pg.public.customers",
                      "plans": "pg.public.plans", "prices": "prices",
                      "dim_customers": "dim_customers"},
    # naive: whole tables pulled into Arrow, registered under these names
    "naive": {"events": "events", "customers": "customers", "plans": "plans",
              "prices": "prices", "dim_customers": "dim_customers"},
}


def sql_for(name: str, mode: str) -> str:
    sql = QUERIES[name]["sql"].format(**MEANINGS[mode])
    if mode == "postgres":
        return sqlglot.transpile(sql, read="duckdb", write="postgres")[0]
    return sql
