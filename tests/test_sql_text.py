"""Nothing from a request is spliced into SQL: names, paths and types go through
meterql/sql_text.py, and that is checked over the code itself.

- sql_type parses a user's type and renders it again: text after the type, a second statement,
  a comment trick or a type DuckDB does not know is refused, never passed on;
- no module but sql_text.py quotes by hand (``replace('"', '""')``, ``chr(39)``);
- every f-string handed to DuckDB (``execute``/``sql``) interpolates only what sql_text made,
  constants, or values built from those in the same function (followed through assignments);
  the few inputs that are neither are listed in REVIEWED with the reason they are safe. A new
  interpolation of anything else fails this test until it is quoted or reviewed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import duckdb
import pytest

from meterql.errors import InvalidSourceError
from meterql.sql_text import (
    check_name,
    quote_ident,
    quote_ident_if_needed,
    quote_literal,
    quote_qualified,
    sql_type,
)

PACKAGE = Path(__file__).resolve().parent.parent / "meterql"


@pytest.mark.parametrize("text", [
    "INTEGER); COPY (SELECT 'x') TO '/tmp/pwn.csv'; CREATE TABLE j (q INTEGER",
    "INTEGER) ; DROP TABLE x",
    "VARCHAR COLLATE nocase",
    "INTEGER NOT NULL",
    "INTEGER DEFAULT 1",
    "DECIMAL(40, 2)",
    "NOSUCHTYPE",
    "5",
    "",
    "   ",
    "INT)",
    "x" * 2000,
])
def test_a_type_that_is_not_exactly_one_type_is_refused(text):
    with pytest.raises(ValueError, match="is not a column type"):
        sql_type(text)


@pytest.mark.parametrize(("text", "rendered"), [
    ("int", "INTEGER"),
    ("int4", "INTEGER"),
    ("bigint", "BIGINT"),
    ("decimal(18,2)", "DECIMAL(18,2)"),
    ("numeric(38, 9)", "DECIMAL(38,9)"),
    ("varchar(10)", "VARCHAR"),
    ("text", "VARCHAR"),
    ("timestamptz", "TIMESTAMP WITH TIME ZONE"),
    ("double", "DOUBLE"),
    ("real", "FLOAT"),
    ("hugeint", "HUGEINT"),
    ("json", "JSON"),
    ("INTEGER[]", "INTEGER[]"),
    ('STRUCT(a INTEGER, "b ""c" VARCHAR)', 'STRUCT(a INTEGER, "b ""c" VARCHAR)'),
    ("ENUM('a', 'it''s')", "ENUM('a', 'it''s')"),
])
def test_a_type_is_rendered_in_duckdbs_spelling_and_duckdb_takes_it(text, rendered):
    assert sql_type(text) == rendered
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t (c {sql_type(text)})")
    assert con.execute("SELECT data_type FROM duckdb_columns() WHERE table_name = 't'"
                       ).fetchone()[0] == rendered


@pytest.mark.parametrize("name", ['a"b', "it's", "x; DROP TABLE t; --", "Ümlaut", "", "\\"])
def test_quoted_names_and_literals_name_exactly_themselves(name):
    con = duckdb.connect()
    con.execute(f"CREATE TABLE {quote_ident(name or 'x')} AS SELECT {quote_literal(name)} AS v")
    assert con.execute(f"SELECT v FROM {quote_ident(name or 'x')}").fetchone() == (name,)
    con.execute(f"CREATE SCHEMA {quote_ident(name or 's')}")
    assert quote_qualified("a", name) == f'"a".{quote_ident(name)}'


def test_quote_literal_refuses_nul_and_names_are_checked():
    with pytest.raises(ValueError):
        quote_literal("a\x00b")
    assert quote_ident_if_needed("usage") == "usage"
    assert quote_ident_if_needed("select") == '"select"'
    with pytest.raises(InvalidSourceError, match="'Bad-Name' is not a valid stream name"):
        check_name("Bad-Name", "stream", InvalidSourceError)
    with pytest.raises(InvalidSourceError, match="not a valid table name"):
        check_name(None, "table", InvalidSourceError)


# -- the code ----------------------------------------------------------------------------------

#: Functions elsewhere that build SQL text; their returns are checked like an execute's SQL.
BUILDERS = {("local/event_values.py", "fingerprint_sql"),
            ("local/events/fields.py", "fingerprint_of"), ("local/events/schemas.py", "staged"),
            ("engine/planner/plan.py", "fragment_table"), ("local/exact.py", "text_check"),
            ("sync/cdc.py", "final_sql"), ("engine/spark/lake.py", "_day_number_sql")}

#: Calls whose result is SQL text made safely (or a number).
SAFE_CALLS = {"quote_ident", "quote_qualified", "quote_literal", "quote_ident_if_needed",
              "sql_type", "int", "len"} | {name for _, name in BUILDERS}

#: Inputs that are neither made by sql_text nor constants, each with why they are safe.
REVIEWED = {
    # SQL the planner generated (sqlglot, from the bound tree), handed to a connector to run
    ("connectors/adbc.py", "sql"): "a fragment's SQL from the planner (PostgreSQL, SQLite)",
    ("connectors/duckdb_file.py", "sql"): "a fragment's SQL from the planner",
    ("engine/engine.py", "typing.sql"): "the planner's typing query (sqlglot)",
    ("engine/execute.py", "typing.sql"): "the planner's typing query (sqlglot)",
    ("engine/execute.py", "plan.residual_sql"): "the planner's residual (sqlglot)",
    ("engine/spark/lake.py", "day_sql"):
        "a day-number expression: _day_number_sql (a builder checked here) or a number",
    ("engine/spark/executor.py", "plan.residual_sql or ''"):
        "the planner's residual (sqlglot), typed over no rows",
    ("connectors/spark_connect.py", "sql"):
        "the residual in Spark SQL, generated by sqlglot from the planner's tree "
        "(engine/spark/executor.py spark_sql); values are bound as Spark arguments",
    ("engine/execute.py", "overlay.sql"):
        "a hybrid table's overlay, built by sync/delta.py and sync/cdc.py from quote_ident "
        "names and replica types (itself checked here)",
    ("sync/cdc.py", "base"): "the replica table: quote_qualified, or a SELECT of it",
    ("sync/cdc.py", "duckdb_type"): "a catalog column type (_from_text)",
    ("sync/cdc.py", "expr"): "c. + quote_ident(column) (_from_text)",
    # types from the catalog: rendered by the dialects' map_type, never a request's text
    ("engine/engine.py", "t"): "catalog column types",
    ("engine/execute.py", "t"): "catalog column types",
    ("sync/runner.py", "c.type"): "catalog column types",
    ("sync/delta.py", "duckdb_type"): "a catalog column type",
    ("sync/delta.py", "dict(((c.lower(), t) for c, t in columns))"):
        "the replica column's type as DuckDB's own catalog (duckdb_columns) spells it",
    # names built by the callers from quote_ident / quote_qualified
    ("local/events/insert.py", "target"): "local.events. + quote_ident(stream), or staged()",
    ("local/manual.py", "target"): "local.manual. + quote_ident(table), from _table",
    ("local/manual.py", "sql"): "the statements insert/update/delete built with quote_ident",
    ("sync/runner.py", "target"): "_target(table): quote_qualified, from the caller",
    ("connectors/lockdown.py", "name"): "_setting: a member of the closed set _SETTINGS",
    ("local/uploads.py", "staged"): "the temporary table _read made: upload_ + a hex tag",
    ("engine/planner/plan.py", "fragment_id"): "the planner's fragment number (f1, f2, ...)",
    ("local/uploads.py", "reason"): "text_check's SQL for a column (a builder, checked)",
    ("local/exact.py", "scale"): "an int, the scale exact_scale read off a rendered type",
    ("aggregates/store.py", "where"): "built from constant conditions, values bound",
}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "sql_text.py")


def test_no_module_quotes_by_hand():
    hand = ["replace('\"', '\"\"')", 'replace(\'"\', \'""\')', "chr(39)", "chr(34)",
            """replace("'", "''")"""]
    found = [f"{p.relative_to(PACKAGE)}: {pattern}" for p in _modules()
             for pattern in hand if pattern in p.read_text()]
    assert not found, found


class _Checker:
    """Whether an expression in a function is SQL text made only of safe parts: constants,
    sql_text's results, and values built from those (followed through assignments, appends,
    loops over constants and the module's own functions' returns)."""

    def __init__(self, module: str, tree: ast.Module) -> None:
        self.module = module
        self.used: set[tuple[str, str]] = set()
        self.functions = {node.name: node for node in ast.walk(tree)
                          if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
        self.attributes: dict[str, list[ast.expr]] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
                        self.attributes.setdefault(target.attr, []).append(node.value)

    def unsafe(self, expr: ast.expr, scope: ast.AST, seen: frozenset = frozenset()) -> list[str]:
        """The parts of ``expr`` that are not safe (empty: safe)."""
        text = ast.unparse(expr)
        if (self.module, text) in REVIEWED:
            self.used.add((self.module, text))
            return []
        if text in seen:
            return []
        seen = seen | {text}
        if isinstance(expr, ast.Constant):
            return []
        if isinstance(expr, ast.JoinedStr):
            return [bad for v in expr.values if isinstance(v, ast.FormattedValue)
                    for bad in self.unsafe(v.value, scope, seen)]
        if isinstance(expr, ast.BinOp):
            return self.unsafe(expr.left, scope, seen) + self.unsafe(expr.right, scope, seen)
        if isinstance(expr, ast.IfExp):
            return self.unsafe(expr.body, scope, seen) + self.unsafe(expr.orelse, scope, seen)
        if isinstance(expr, ast.Starred):
            return self.unsafe(expr.value, scope, seen)
        if isinstance(expr, ast.List | ast.Tuple):
            return [bad for e in expr.elts for bad in self.unsafe(e, scope, seen)]
        if isinstance(expr, ast.GeneratorExp | ast.ListComp):
            return self.unsafe(expr.elt, scope, seen)  # (loop variables: unsafe unless reviewed)
        if isinstance(expr, ast.DictComp):
            return self.unsafe(expr.value, scope, seen)
        if isinstance(expr, ast.Subscript):  # a part of something safe is safe
            return self.unsafe(expr.value, scope, seen)
        if isinstance(expr, ast.Call):
            func = expr.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name in SAFE_CALLS:
                return []
            if name == "join" and isinstance(func, ast.Attribute) and isinstance(
                    func.value, ast.Constant) and expr.args:
                return self.unsafe(expr.args[0], scope, seen)
            if isinstance(func, ast.Name) and func.id in self.functions:
                callee = self.functions[func.id]
                returns = [r.value for r in ast.walk(callee)
                           if isinstance(r, ast.Return) and r.value is not None]
                return [bad for r in returns for bad in self.unsafe(r, callee, seen)]
            return [text]
        if isinstance(expr, ast.Name) and expr.id.lstrip("_").isupper():
            return []  # a module constant
        if isinstance(expr, ast.Name | ast.Attribute):
            values = self.assigned(expr, scope)
            if not values:
                return [text]
            return [bad for v in values for bad in self.unsafe(v, scope, seen)]
        return [text]

    def assigned(self, expr: ast.Name | ast.Attribute, scope: ast.AST) -> list[ast.expr]:
        """Every value the name takes in the function (or the attribute anywhere)."""
        if isinstance(expr, ast.Attribute):
            return self.attributes.get(expr.attr, [])
        values: list[ast.expr] = []
        for node in ast.walk(scope):
            if isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == expr.id for t in node.targets):
                values.append(node.value)
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Tuple):
                for target in node.targets:  # a, b = x, y
                    if isinstance(target, ast.Tuple):
                        values += [v for t, v in zip(target.elts, node.value.elts, strict=False)
                                   if isinstance(t, ast.Name) and t.id == expr.id]
            elif isinstance(node, ast.AugAssign | ast.AnnAssign) and isinstance(
                    node.target, ast.Name) and node.target.id == expr.id and node.value:
                values.append(node.value)
            elif isinstance(node, ast.For) and isinstance(node.target, ast.Name) and (
                    node.target.id == expr.id):
                values.append(node.iter)  # a tuple of constants passes, anything else not
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr in ("append", "extend", "insert")
                  and isinstance(node.func.value, ast.Name) and node.func.value.id == expr.id):
                values.extend(node.args[-1:])
        return values


def _sql_calls():
    for path in _modules():
        module = str(path.relative_to(PACKAGE))
        tree = ast.parse(path.read_text())
        checker = _Checker(module, tree)
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(func):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr in ("execute", "sql", "executemany") and node.args
                        and not isinstance(node.args[0], ast.Constant)):
                    yield module, node, checker, func


def _builder_returns():
    for module, name in sorted(BUILDERS):
        tree = ast.parse((PACKAGE / module).read_text())
        checker = _Checker(module, tree)
        func = checker.functions[name]
        returns = [r.value for r in ast.walk(func) if isinstance(r, ast.Return) and r.value]
        assert returns, (module, name)
        for value in returns:
            yield f"{module}:{name}", value, checker, func


def test_every_sql_string_is_built_from_quoted_parts_only():
    """Every execute's SQL, and every builder's return; each REVIEWED entry is still needed."""
    problems, used = [], set()
    checks = [*_builder_returns(), *((f"{module}:{call.lineno}", call.args[0], checker, func)
                                     for module, call, checker, func in _sql_calls())]
    for where, sql, checker, func in checks:
        problems += [f"{where} interpolates {bad}" for bad in checker.unsafe(sql, func)]
        used |= checker.used
    assert not problems, "\n".join(sorted(set(problems)))
    assert set(REVIEWED) == used, f"reviewed but no longer used: {set(REVIEWED) - used}"


def test_the_check_finds_a_splice():
    """The checker itself: a request's text interpolated into SQL is found."""
    tree = ast.parse("def create(cur, name, typ):\n"
                     "    cols = f'{quote_ident(name)} {typ}'\n"
                     "    cur.execute(f'CREATE TABLE t ({cols})')\n")
    checker = _Checker("x.py", tree)
    func = tree.body[0]
    call = next(n for n in ast.walk(func) if isinstance(n, ast.Call)
                and getattr(n.func, "attr", "") == "execute")
    assert checker.unsafe(call.args[0], func) == ["typ"]
