"""Issue 15's wrong answers and refusals, one query each, over the random dataset
(tests/support/random_data.py), plus the ones the random suite found since (R1-R4).

Each test asserts DuckDB's answer (the reference over the same rows). The bugs are open, so each
is ``xfail(strict=True)``: it passes today because meterql is wrong, and fails (XPASS) the
moment a fix lands, so the fixer deletes the mark. Sync mode answers these in DuckDB and is
right: those runs are plain tests that keep it so (except the parse error 15.5 and R1, whose
source cannot be synced).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.compare import reference_rows, rows_difference

pytestmark = pytest.mark.postgres


def bug(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=reason)


B1 = bug("issue 15.1: the dynamic filter of an ANTI JOIN keeps the keys it must drop")
B2 = bug("issue 15.2: char(n) is read padded but PostgreSQL compares it pad-insensitively")
B3 = bug("issue 15.3: PostgreSQL compares real with a decimal as numeric, sums it as float4")
B4 = bug("issue 15.4: HUGEINT from a DuckDB file is DECIMAL(38,0) once scanned")
B5 = bug("issue 15.5: :name right after SELECT or '(' does not parse")
B6 = bug("issue 15.6: FROM a, b JOIN c ON a.x = c.y is sent whole to PostgreSQL")
B7 = bug("issue 15.7: a CTE column nobody reads, or a CTE nobody uses, is computed")
B8 = bug("issue 15.8: TRY_CAST is sent to PostgreSQL as CAST")
B9 = bug("issue 15.9: GROUP BY an expression holding a subquery fails to bind")
B10 = bug("issue 15.10: FULL JOIN with a non-equality ON is sent to PostgreSQL")
B11 = bug("issue 15.11: a text parameter compared with an expression reaches PostgreSQL as text")
R1 = bug("random suite R1: UHUGEINT from a DuckDB file is read through Arrow's DECIMAL(38,0) "
         "(2^127 and up come back negative) or as VARCHAR when scanned; its source cannot sync")
R2 = bug("random suite R2: an INTERNAL error of the engine's DuckDB invalidates it for every "
         "later query (FatalException, outside the error tree)")
R3 = bug("random suite R3: dynamic filter keys of a UBIGINT column past 2^63 are bound to a "
         "PostgreSQL bigint")
R4 = bug("random suite R4: SEMI JOIN then RIGHT JOIN sent whole to PostgreSQL becomes "
         "RIGHT JOIN ... WHERE EXISTS (...): the filter drops the rows the outer join adds")

#: (id, SQL, parameters, ordered, DuckDB's answer where it is short, xfail mark in direct mode)
CASES: list[tuple[str, str, dict[str, Any], bool, list | None, pytest.MarkDecorator | None]] = [
    ("15.1_anti_join",
     "SELECT count(*) AS n FROM lite.main.payments t1 ANTI JOIN lite.main.tags t2 "
     "ON t1.customer_id = t2.customer_id", {}, False, [(171,)], B1),
    ("15.1_anti_join_two_sources",
     "SELECT count(*) AS n FROM pg.public.accounts t1 ANTI JOIN duck.main.devices t2 "
     "ON t1.customer_id = t2.customer_id", {}, False, [(202,)], B1),
    ("15.2_char_not_equal",
     "SELECT count(*) AS n FROM pg.public.accounts WHERE country <> 'FR'", {}, False,
     [(215,)], B2),
    ("15.2_char_in_empty_string",
     "SELECT count(*) AS n FROM pg.public.invoices WHERE code IN ('')", {}, False, [(0,)], B2),
    ("15.2_char_joins_varchar",
     "SELECT count(*) AS n FROM pg.public.accounts a JOIN pg.public.invoices i "
     "ON a.country = i.status", {}, False, [(0,)], B2),
    ("15.2_coalesce_char_text",
     "SELECT COALESCE(a.country, a.region) AS c, count(*) AS n FROM pg.public.accounts a "
     "GROUP BY 1", {}, False, None, B2),
    ("15.2_case_char_text",
     "SELECT a.id, CASE WHEN a.active THEN a.country ELSE a.region END AS c "
     "FROM pg.public.accounts a", {}, False, None, B2),
    ("15.2_union_char_text",
     "SELECT country FROM pg.public.accounts UNION SELECT region FROM pg.public.accounts",
     {}, False, None, B2),
    ("15.3_real_equals_decimal",
     "SELECT count(*) AS n FROM pg.public.accounts WHERE score = 0.1", {}, False, [(15,)], B3),
    ("15.3_real_past_float4_integers",
     "SELECT count(*) AS n FROM pg.public.accounts WHERE score = 16777217.0", {}, False,
     [(35,)], B3),
    ("15.3_sum_real",
     "SELECT sum(score) AS s FROM pg.public.accounts", {}, False, None, B3),
    ("15.3_real_times_real",
     "SELECT max(score * score) AS m FROM pg.public.accounts", {}, False, None, B3),
    ("15.3_window_sum_real",
     "SELECT id, sum(score) OVER (PARTITION BY customer_id) AS s FROM pg.public.accounts",
     {}, False, None, B3),
    ("15.4_hugeint_integer_division",
     "SELECT t2.customer_id // t2.bytes AS q FROM lite.main.payments t1 "
     "JOIN duck.main.sessions t2 ON t1.customer_id = t2.customer_id WHERE t2.bytes = 123",
     {}, False, None, B4),
    ("15.4_hugeint_in_case_with_decimal",
     "SELECT CASE WHEN p.ok THEN s.customer_id ELSE p.amount END AS c "
     "FROM lite.main.payments p JOIN duck.main.sessions s ON p.customer_id = s.customer_id",
     {}, False, None, B4),
    ("15.5_parameter_first",
     "SELECT :p1 AS c0 FROM pg.public.invoices WHERE id <= 3", {"p1": 1}, False,
     [(1,), (1,), (1,)], B5),
    ("15.5_parameter_after_parenthesis",
     "SELECT (:p1 - id) AS c0 FROM pg.public.invoices WHERE id <= 2", {"p1": 5}, False,
     [(4,), (3,)], B5),
    ("15.6_comma_then_join",
     "SELECT count(*) AS n FROM pg.public.accounts a, pg.public.invoices i "
     "JOIN pg.public.accounts b ON a.id = i.account_id WHERE b.id = a.id", {}, False, None, B6),
    ("15.7_unread_cte_column",
     "WITH c AS (SELECT id, customer_id, CAST(ratio AS BIGINT) AS r FROM pg.public.accounts) "
     "SELECT count(*) AS n FROM c JOIN lite.main.tags t ON c.customer_id = t.customer_id",
     {}, False, None, B7),
    ("15.7_unused_cte",
     "WITH u AS (SELECT CAST(ratio AS BIGINT) AS r FROM pg.public.accounts) "
     "SELECT count(*) AS n FROM lite.main.tags", {}, False, [(70,)], B7),
    ("15.8_try_cast_at_postgres",
     "SELECT TRY_CAST(tax AS SMALLINT) AS t FROM pg.public.invoices", {}, False, None, B8),
    ("15.9_group_by_subquery",
     "SELECT t1.customer_id IN (SELECT customer_id FROM lite.main.tags) AS g, count(*) AS n "
     "FROM pg.public.accounts t1 GROUP BY t1.customer_id IN "
     "(SELECT customer_id FROM lite.main.tags)", {}, False, None, B9),
    ("15.10_full_join_non_equi",
     "SELECT count(*) AS n FROM pg.public.accounts a FULL JOIN pg.public.invoices i "
     "ON a.customer_id < i.customer_id", {}, False, None, B10),
    ("15.11_text_parameter_vs_expression",
     "SELECT customer_id FROM pg.public.accounts GROUP BY customer_id "
     "HAVING max(seen) <= :p", {"p": "2025-01-01 03:00:00+02"}, False, None, B11),
    ("R1_uhugeint_read",
     "SELECT id, hits FROM ducku.main.counters", {}, False, None, R1),
    ("R1_uhugeint_scanned",
     "SELECT c.id FROM ducku.main.counters c JOIN lite.main.tags t "
     "ON c.customer_id = t.customer_id WHERE c.hits > 1", {}, False, None, R1),
    ("R4_semi_join_then_right_join",
     "SELECT count(*) AS n FROM pg.public.accounts t1 SEMI JOIN pg.public.invoices t2 "
     "ON t1.customer_id = t2.account_id RIGHT JOIN pg.public.invoices t3 "
     "ON t1.customer_id = t3.account_id", {}, False, [(256,)], R4),
    ("R3_ubigint_dynamic_filter_keys",
     "SELECT count(*) AS n FROM duck.main.devices t1 JOIN pg.public.invoices t2 "
     "ON t1.serial = t2.account_id", {}, False, None, R3),
]


def _params() -> list:
    out = []
    for case_id, sql, params, ordered, expected, mark in CASES:
        for mode in ("direct", "sync"):
            # A parse error and a source that cannot sync fail in both modes.
            failing = mark is not None and (
                mode == "direct" or case_id.startswith(("R1", "15.5")))
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
    random_env.direct.set_setting("dynamic_filter", False)
    try:
        assert random_env.direct.query(sql).rows() == [(171,)]
    finally:
        random_env.direct.set_setting("dynamic_filter", None)


@R1
def test_a_uhugeint_source_syncs(random_env):
    assert random_env.unsynced == {}


@R2
def test_an_internal_duckdb_error_leaves_the_engine_usable(random_env, tmp_path):
    """The residual's filter over a scanned HUGEINT trips DuckDB's "not marked as fallible"
    INTERNAL error; the next query across sources must still run."""
    import meterql
    from meterql.errors import MeterqlError

    with meterql.connect(tmp_path / "home") as ws:  # not the shared workspaces: it breaks
        ws.add_source("duck", f"duckdb://{random_env.folder / 'sessions.duckdb'}")
        ws.add_source("lite", f"sqlite://{random_env.folder / 'payments.sqlite'}")
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
