"""The random differential SQL suite (tests/support/random_sql.py) at a fixed seed, in CI.

The run asserts that no query gets a wrong answer or a crash (an error outside meterql's tree)
where DuckDB answers: ``KNOWN_BUGS`` (tests/support/known_bugs.py) holds no wrong-answer
signature any more, so any such failure is new and fails with its shrunk repro. Refusals of
valid SQL (meterql errors, saying why, where DuckDB answers) are reported, not asserted; the
kinds left are documented limits (docs/testing.md).

Any other seed or count runs on demand::

    python -m tests.support.random_sql --seed 1 2 3 --count 2000
"""

from __future__ import annotations

import re

import pytest

from tests.support.known_bugs import Failure, columns_read, known_bug
from tests.support.minimize import minimize
from tests.support.random_data import build_random_data
from tests.support.random_queries import generate_query
from tests.support.random_sql import run, summary

#: The CI run: about a minute on one of two shared cores, shrinking included.
SEED = 15
COUNT = 1200


@pytest.fixture(scope="module")
def report(random_env):
    return run(random_env, [SEED], COUNT, minimize_policy="first", budget_s=15)


@pytest.mark.postgres
def test_no_wrong_answer_beyond_the_known_bugs(report, capsys):
    with capsys.disabled():
        print("\n" + summary(report))
    new = report.new()
    assert not new, "new wrong answers or crashes:\n" + "\n".join(
        f"[{c.mode}] {c.sql}\n  params: {c.query.params}\n  {c.detail}" for c in new)


@pytest.mark.postgres
def test_the_run_means_something(report):
    """Most queries are valid DuckDB and most answers agree: the suite tests something."""
    for mode in report.modes:
        counts = report.counts[mode]
        assert sum(counts.values()) == COUNT
        assert counts["same"] >= 0.6 * COUNT, counts
        assert counts["both error"] + counts["duckdb error"] <= 0.2 * COUNT, counts


def test_the_generator_is_deterministic():
    data = build_random_data()
    first = [generate_query(data, 7, i) for i in range(50)]
    assert first == [generate_query(data, 7, i) for i in range(50)]
    assert first != [generate_query(data, 8, i) for i in range(50)]


#: Every shape the generator must be able to write, as a pattern over its SQL.
SHAPES = {
    "inner join": r"\) \w+ JOIN|\w+ t\d+ JOIN ",
    "left join": r"LEFT JOIN", "right join": r"RIGHT JOIN", "full join": r"FULL JOIN",
    "semi join": r"SEMI JOIN", "anti join": r"ANTI JOIN",
    "non-equi ON": r"ON t\d+\.\w+ (<|<=|>|<>) t\d+\.\w+",
    "comma join mixed with JOIN ON": r"FROM [\w.]+ t\d+, [\w.]+ t\d+ JOIN ",
    "EXISTS": r"(?<!NOT )EXISTS \(", "NOT EXISTS": r"NOT EXISTS \(",
    "IN subquery": r"(?<!NOT) IN \(SELECT", "NOT IN subquery": r"NOT IN \(SELECT",
    "scalar subquery": r"\(SELECT (min|max|sum|avg|count)\(",
    "subquery in GROUP BY": r"GROUP BY [^;]*\(SELECT",
    "CTE": r"^WITH ", "CTE column nobody reads": r"AS unread",
    "GROUP BY": r"GROUP BY", "HAVING": r"HAVING",
    "sum": r"sum\(", "avg": r"avg\(", "min": r"min\(", "max": r"max\(", "count": r"count\(",
    "count distinct": r"count\(DISTINCT", "window": r"\) OVER \(",
    "ORDER BY LIMIT": r"ORDER BY [^;]* LIMIT \d+", "OFFSET": r"OFFSET \d+",
    "UNION": r"\) UNION \(", "INTERSECT": r"\) INTERSECT", "EXCEPT": r"\) EXCEPT",
    "CASE": r"CASE WHEN", "COALESCE": r"COALESCE\(", "CAST": r"(?<!TRY_)CAST\(",
    "TRY_CAST": r"TRY_CAST\(", "real vs decimal literal": r"\.(score|tax) [=<>]+ \d+\.\d",
    "char and text mixed": r"COALESCE\(t\d+\.country, t\d+\.\w+\)",
    "integer division": r" // ", "modulo": r" % ",
    "date_trunc over timestamptz": r"date_trunc\('\w+', t\d+\.(seen|started)\)",
    "parameter first": r"^(WITH .*\) )?SELECT (DISTINCT )?:p\d+ AS c0",
    "parameter in WHERE": r"WHERE [^;]*:p\d", "parameter in HAVING": r"HAVING [^;]*:p\d",
    "parameter in IN list": r"IN \([^()]*:p\d",
}


def test_the_generator_writes_every_shape():
    data = build_random_data()
    queries = [generate_query(data, seed, i) for seed in (1, 2) for i in range(3000)]
    missing = [name for name, pattern in SHAPES.items()
               if not any(re.search(pattern, q.sql) for q in queries)]
    assert not missing
    assert any(None in q.params.values() for q in queries), "a parameter bound to NULL"
    assert any(q.ordered for q in queries) and not all(q.ordered for q in queries)
    unused = [q for q in queries if q.sql.startswith("WITH w1")
              and not re.search(r"\bw1 t\d", q.sql)]
    assert unused, "a CTE nobody reads"


def test_minimize_keeps_what_fails():
    sql = ("WITH w1 AS (SELECT 1 AS a) SELECT t1.a AS c0, t1.b AS c1 FROM x t1 "
           "JOIN y t2 ON t1.k = t2.k WHERE t1.a > 1 AND t2.c = 'FR ' ORDER BY 1, 2 LIMIT 3")
    assert minimize(sql, lambda s: "t2.c = 'FR '" in s and "JOIN y" in s) == (
        "SELECT t1.b AS c1 FROM x AS t1 JOIN y AS t2 ON t1.k = t2.k WHERE t2.c = 'FR '")
    assert minimize("SELECT broken(", lambda s: True) == "SELECT broken("


def test_known_bug_signatures():
    def bug(outcome, sql, error="", flag=False):
        found = known_bug(Failure(outcome, sql, error, flag))
        return found.id if found else None

    # no wrong answer is known: every one is new, whatever it reads
    assert bug("wrong", "SELECT a.country FROM pg.public.accounts a") is None
    assert bug("wrong", "SELECT 1 FROM lite.main.payments p ANTI JOIN lite.main.tags t "
                        "ON p.customer_id = t.customer_id", flag=True) is None
    assert bug("crash", "SELECT 1", "FatalException: database has been invalidated") is None
    # refusals by evaluation order are known; other refusals are reported as new kinds
    assert bug("refused", "SELECT 1", "QueryError: the query failed at source 'duck': Invalid "
               "Input Error: Division by zero in expression") == "order"
    assert bug("refused", "SELECT :p1 AS c0 FROM pg.public.accounts",
               "SqlParseError: cannot parse the SQL: incomplete ALIAS") is None
    assert columns_read("WITH w1 AS (SELECT t1.code FROM pg.public.invoices t1) "
                        "SELECT t2.code FROM w1 t2") == {"pg.public.invoices.code"}
