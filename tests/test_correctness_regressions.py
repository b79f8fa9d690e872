"""Issue 15's wrong answers and refusals, one query each, over the random dataset
(tests/support/random_data.py), plus the ones the random suite found since (R1-R4).

Each test asserts DuckDB's answer (the reference over the same rows), in direct and in sync
mode. A bug still open is ``xfail(strict=True)``: it fails (XPASS) the moment a fix lands, so
the fixer deletes the mark; the fixed ones are plain tests that keep them fixed.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.compare import reference_rows, rows_difference

pytestmark = pytest.mark.postgres


def bug(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=reason)


#: (id, SQL, parameters, ordered, DuckDB's answer where it is short, xfail mark in direct mode)
CASES: list[tuple[str, str, dict[str, Any], bool, list | None, pytest.MarkDecorator | None]] = [
    ("15.1_anti_join",
     "SELECT count(*) AS n FROM lite.main.payments t1 ANTI JOIN lite.main.tags t2 "
     "ON t1.customer_id = t2.customer_id", {}, False, [(171,)], None),
    ("15.1_anti_join_two_sources",
     "SELECT count(*) AS n FROM pg.public.accounts t1 ANTI JOIN duck.main.devices t2 "
     "ON t1.customer_id = t2.customer_id", {}, False, [(202,)], None),
    ("15.2_char_not_equal",
     "SELECT count(*) AS n FROM pg.public.accounts WHERE country <> 'FR'", {}, False,
     [(215,)], None),
    ("15.2_char_in_empty_string",
     "SELECT count(*) AS n FROM pg.public.invoices WHERE code IN ('')", {}, False, [(0,)], None),
    ("15.2_char_joins_varchar",
     "SELECT count(*) AS n FROM pg.public.accounts a JOIN pg.public.invoices i "
     "ON a.country = i.status", {}, False, [(0,)], None),
    ("15.2_coalesce_char_text",
     "SELECT COALESCE(a.country, a.region) AS c, count(*) AS n FROM pg.public.accounts a "
     "GROUP BY 1", {}, False, None, None),
    ("15.2_case_char_text",
     "SELECT a.id, CASE WHEN a.active THEN a.country ELSE a.region END AS c "
     "FROM pg.public.accounts a", {}, False, None, None),
    ("15.2_union_char_text",
     "SELECT country FROM pg.public.accounts UNION SELECT region FROM pg.public.accounts",
     {}, False, None, None),
    ("15.3_real_equals_decimal",
     "SELECT count(*) AS n FROM pg.public.accounts WHERE score = 0.1", {}, False, [(15,)], None),
    ("15.3_real_past_float4_integers",
     "SELECT count(*) AS n FROM pg.public.accounts WHERE score = 16777217.0", {}, False,
     [(35,)], None),
    ("15.3_sum_real",
     "SELECT sum(score) AS s FROM pg.public.accounts", {}, False, None, None),
    ("15.3_real_times_real",
     "SELECT max(score * score) AS m FROM pg.public.accounts", {}, False, None, None),
    ("15.3_window_sum_real",
     "SELECT id, sum(score) OVER (PARTITION BY customer_id) AS s FROM pg.public.accounts",
     {}, False, None, None),
    ("15.4_hugeint_integer_division",
     "SELECT t2.customer_id // t2.bytes AS q FROM lite.main.payments t1 "
     "JOIN duck.main.sessions t2 ON t1.customer_id = t2.customer_id WHERE t2.bytes = 123",
     {}, False, None, None),
    ("15.4_hugeint_in_case_with_decimal",
     "SELECT CASE WHEN p.ok THEN s.customer_id ELSE p.amount END AS c "
     "FROM lite.main.payments p JOIN duck.main.sessions s ON p.customer_id = s.customer_id",
     {}, False, None, None),
    ("15.5_parameter_first",
     "SELECT :p1 AS c0 FROM pg.public.invoices WHERE id <= 3", {"p1": 1}, False,
     [(1,), (1,), (1,)], None),
    ("15.5_parameter_after_parenthesis",
     "SELECT (:p1 - id) AS c0 FROM pg.public.invoices WHERE id <= 2", {"p1": 5}, False,
     [(4,), (3,)], None),
    ("15.6_comma_then_join",
     "SELECT count(*) AS n FROM pg.public.accounts a, pg.public.invoices i "
     "JOIN pg.public.accounts b ON a.id = i.account_id WHERE b.id = a.id", {}, False, None, None),
    ("15.7_unread_cte_column",
     "WITH c AS (SELECT id, customer_id, CAST(ratio AS BIGINT) AS r FROM pg.public.accounts) "
     "SELECT count(*) AS n FROM c JOIN lite.main.tags t ON c.customer_id = t.customer_id",
     {}, False, None, None),
    ("15.7_unused_cte",
     "WITH u AS (SELECT CAST(ratio AS BIGINT) AS r FROM pg.public.accounts) "
     "SELECT count(*) AS n FROM lite.main.tags", {}, False, [(70,)], None),
    ("15.8_try_cast_at_postgres",
     "SELECT TRY_CAST(tax AS SMALLINT) AS t FROM pg.public.invoices", {}, False, None, None),
    ("15.9_group_by_subquery",
     "SELECT t1.customer_id IN (SELECT customer_id FROM lite.main.tags) AS g, count(*) AS n "
     "FROM pg.public.accounts t1 GROUP BY t1.customer_id IN "
     "(SELECT customer_id FROM lite.main.tags)", {}, False, None, None),
    ("15.10_full_join_non_equi",
     "SELECT count(*) AS n FROM pg.public.accounts a FULL JOIN pg.public.invoices i "
     "ON a.customer_id < i.customer_id", {}, False, None, None),
    ("15.11_text_parameter_vs_expression",
     "SELECT customer_id FROM pg.public.accounts GROUP BY customer_id "
     "HAVING max(seen) <= :p", {"p": "2025-01-01 03:00:00+02"}, False, None, None),
    ("R1_uhugeint_read",
     "SELECT id, hits FROM ducku.main.counters", {}, False, None, None),
    ("R1_uhugeint_scanned",
     "SELECT c.id FROM ducku.main.counters c JOIN lite.main.tags t "
     "ON c.customer_id = t.customer_id WHERE c.hits > 1", {}, False, None, None),
    ("R4_semi_join_then_right_join",
     "SELECT count(*) AS n FROM pg.public.accounts t1 SEMI JOIN pg.public.invoices t2 "
     "ON t1.customer_id = t2.account_id RIGHT JOIN pg.public.invoices t3 "
     "ON t1.customer_id = t3.account_id", {}, False, [(256,)], None),
    ("R3_ubigint_dynamic_filter_keys",
     "SELECT count(*) AS n FROM duck.main.devices t1 JOIN pg.public.invoices t2 "
     "ON t1.serial = t2.account_id", {}, False, None, None),
    # a subquery sent whole, whose numeric outputs are read as text, once its unread columns
    # are pruned: the text reading follows the pruned outputs, not the written ones
    ("R5_pruned_subquery_read_as_text",
     "WITH w1 AS (SELECT t1.amount, t1.ratio, t1.customer_id FROM pg.public.accounts AS t1) "
     "SELECT t6.note, t9.ratio FROM lite.main.payments AS t6 JOIN w1 AS t9 "
     "ON t6.customer_id = t9.customer_id", {}, False, None, None),
    # a query sent whole whose unread CTE (and with it its parameter) is pruned: its result
    # types come from DuckDB over the sent query, with only the parameters that query binds
    ("R6_pruned_parameter_keeps_decimal_types",
     "WITH w1 AS (SELECT t1.account_id FROM pg.public.invoices AS t1 WHERE t1.account_id > :p1) "
     "SELECT t2.total AS c3 FROM pg.public.invoices AS t2", {"p1": 123}, False, None, None),
    ("R6_pruned_timestamp_parameter_keeps_decimal_types",
     "WITH w1 AS (SELECT t1.country AS unread FROM duck.main.sessions AS t1 "
     "WHERE t1.started >= :p1) SELECT t3.amount AS c0 FROM pg.public.accounts AS t3",
     {"p1": "2024-03-10 01:59:59-05"}, False, None, None),
]


def _params() -> list:
    out = []
    for case_id, sql, params, ordered, expected, mark in CASES:
        for mode in ("direct", "sync"):
            failing = mark is not None and mode == "direct"
            out.append(pytest.param(mode, sql, params, ordered, expected,
                                    id=f"{case_id}-{mode}", marks=[mark] if failing else []))
    return out


@pytest.mark.parametrize(("mode", "sql", "params", "ordered", "expected"), _params())
def test_duckdbs_answer(random_env, mode, sql, params, ordered, expected):
    want = reference_rows(random_env.ref, sql, params)
    if expected is not None:  # the dataset still holds what the bug needs
        assert want.rows == expected
    got = random_env.workspace(mode).query(sql, params, max_rows=None)
    difference = rows_difference(got.table, want, ordered)
    assert difference is None, difference


def test_anti_join_is_right_without_dynamic_filtering(random_env):
    """Issue 15.1's workaround: with ``dynamic_filter`` off, the ANTI JOIN is right."""
    sql = CASES[0][1]
    random_env.direct.settings.set("dynamic_filter", False)
    try:
        assert random_env.direct.query(sql).rows() == [(171,)]
    finally:
        random_env.direct.settings.set("dynamic_filter", None)


def test_a_uhugeint_source_syncs(random_env):
    assert random_env.unsynced == {}


def test_an_internal_duckdb_error_leaves_the_engine_usable(random_env, tmp_path):
    """The residual's filter over a scanned HUGEINT trips DuckDB's "not marked as fallible"
    INTERNAL error; the next query across sources must still run."""
    import meterql
    from meterql.errors import MeterqlError

    with meterql.connect(tmp_path / "home") as ws:  # not the shared workspaces: it breaks
        ws.sources.add("duck", f"duckdb://{random_env.folder / 'sessions.duckdb'}")
        ws.sources.add("lite", f"sqlite://{random_env.folder / 'payments.sqlite'}")
        try:  # DuckDB errors too (an overflow): how meterql reports it does not matter here
            ws.query("SELECT t1.id FROM duck.main.sessions t1 JOIN lite.main.tags t2 "
                     "ON t1.id = t2.customer_id WHERE t1.id <> -(t1.bytes)")
        except MeterqlError:
            pass
        after = ws.query("SELECT count(*) AS n FROM duck.main.devices d "
                         "JOIN lite.main.tags t ON d.customer_id = t.customer_id")
        assert after.rows() == reference_rows(
            random_env.ref, "SELECT count(*) AS n FROM duck.main.devices d "
            "JOIN lite.main.tags t ON d.customer_id = t.customer_id", {}).rows
