"""A query (or a subquery) on one source as one fragment of that source, and how DuckDB types
its result: shared by the whole-query and the subquery rules, and by ``Engine.output_schema``.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.errors import ErrorLevel, UnsupportedError
from sqlglot.optimizer.annotate_types import annotate_types

from meterql.catalog import Catalog, Table
from meterql.dialects import SourceDialect, dialect_for
from meterql.engine.bind import REF, TABLE
from meterql.engine.planner.markers import column_types, compared_types, mark_params
from meterql.engine.planner.plan import QueryFragment, ResultTyping
from meterql.engine.planner.pushdown import whole_query_blocker


def single_source_fragment(
    frag_id: str,
    tree: exp.Expr,
    qualified: exp.Expression,
    refs: list[tuple[exp.Table, Table]],
    catalog: Catalog,
    source: str,
    pruned: exp.Expression | None = None,
) -> QueryFragment | str:
    """A query (or subquery) on one source as one fragment, or why it cannot be one.

    ``tree`` is the query as bound, ``qualified`` the same query qualified by sqlglot (types are
    annotated from it), ``refs`` its table references. ``pruned`` is ``qualified`` without the
    columns nobody reads (sqlglot's pushdown_projections over the whole statement): another
    engine is sent that one when it differs, since DuckDB never computes those columns, so
    their errors (a cast out of range) never happen there and must not at the source either.
    """
    dialect = dialect_for(catalog.source(source).kind)
    compared = None
    as_text: list[_Output] = []
    if not dialect.capabilities.same_engine:
        shorthand = _duckdb_shorthand(tree)
        if shorthand is not None:
            return f"{shorthand} is DuckDB syntax that {dialect.kind} lacks"
        annotated = annotate_types(qualified.copy(), schema=catalog.schema, dialect="duckdb")
        blocker = whole_query_blocker(annotated, dialect)
        if blocker is not None:
            return blocker
        if dialect.capabilities.typed_parameters:
            compared = compared_types(annotated)
        as_text = _outputs_as_text(annotated, refs, dialect)
        local = {c.name.lower(): reason for _, t in refs for c in t.columns
                 if (reason := dialect.computes_differently(c.source_type)) is not None}
        if local:
            used = {c.name.lower() for c in qualified.find_all(exp.Column)}
            for name, reason in local.items():
                if name in used:
                    return f"{name} is {reason}"
    # the query without the columns nobody reads, when it differs
    chosen, shape = tree, qualified
    if pruned is not None and pruned.sql("duckdb") != qualified.sql("duckdb"):
        chosen = shape = pruned
        if as_text:  # (its outputs are fewer: each is read as the pruned query gives it)
            as_text = _outputs_as_text(
                annotate_types(pruned.copy(), schema=catalog.schema, dialect="duckdb"), refs,
                dialect)
    sent = chosen.copy()
    for table in sent.find_all(exp.Table):
        if TABLE in table.meta:
            table.set("catalog", None)
    if not dialect.capabilities.same_engine:
        _explicit_cross_joins(sent)
    _exact_column_spelling(sent, [t for _, t in refs])
    if any(text for text, _ in as_text):
        sent = _fetch_outputs_as_text(sent, shape, as_text, dialect)
    param_types: list[str | None] = []
    params = mark_params(sent, dialect, column_types(refs), param_types, compared)
    sent = dialect.translate(sent)  # (its functions as the source computes DuckDB's values)
    try:
        text = sent.sql(dialect=dialect.sqlglot_dialect, unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as exc:
        return f"{dialect.kind} cannot express the query exactly ({exc})"
    typing = None if dialect.capabilities.same_engine else result_typing(chosen)
    return QueryFragment(frag_id, source, dialect.kind, text, params, param_types, typing,
                         tree=sent)


#: Per output column of a query sent whole: whether it is read as the source's text form, and
#: its type at the source when it is a stored column (else ``None``).
_Output = tuple[bool, str | None]


def _outputs_as_text(
    annotated: exp.Expr, refs: list[tuple[exp.Table, Table]], dialect: SourceDialect
) -> list[_Output]:
    """How each output column of a query sent whole is read: as text where a scan would read a
    column of its type as text (``SourceDialect.fetches_as_text`` decides both)."""
    if isinstance(annotated, exp.SetOperation):
        left = _outputs_as_text(annotated.left, refs, dialect)
        right = _outputs_as_text(annotated.right, refs, dialect)
        return [(a or b, ta if ta == tb else None)
                for (a, ta), (b, tb) in zip(left, right, strict=False)]
    if not isinstance(annotated, exp.Select):
        return []
    by_alias = {t.alias_or_name: entry for t, entry in refs}
    outputs: list[_Output] = []
    for projection in annotated.selects:
        value = projection.unalias()
        source_type = None
        if isinstance(value, exp.Column) and value.table in by_alias:
            stored = {c.name.lower(): c for c in by_alias[value.table].columns}
            column = stored.get(value.name.lower())
            source_type = column.source_type if column is not None else None
        typ = value.type
        if typ is None or typ.is_type(exp.DType.UNKNOWN, exp.DType.NULL):
            outputs.append((False, source_type))
        else:
            outputs.append((dialect.fetches_as_text(typ.sql("duckdb"), source_type), source_type))
    return outputs


def _fetch_outputs_as_text(
    sent: exp.Expr, qualified: exp.Expression, outputs: list[_Output], dialect: SourceDialect
) -> exp.Expr:
    """``sent`` inside a SELECT that reads the columns marked in ``outputs`` as the source
    prints them and the others as they are, keeping their names and order (the query itself,
    its ORDER BY and DISTINCT, is untouched: it still compares the source's own values).

    >>> import sqlglot
    >>> from meterql.dialects import dialect_for
    >>> tree = sqlglot.parse_one("SELECT id, u FROM t ORDER BY u", read="postgres")
    >>> outputs = [(False, "integer"), (True, "uuid")]
    >>> sent = _fetch_outputs_as_text(tree, tree, outputs, dialect_for("postgres"))
    >>> print(sent.sql("postgres", pretty=True))
    SELECT
      q.c1 AS "id",
      CAST(q.c2 AS TEXT) AS "u"
    FROM (
      SELECT
        id,
        u
      FROM t
      ORDER BY
        u
    ) AS q(c1, c2)
    """
    names = _output_names(sent, qualified)
    if len(names) != len(outputs) or not all(names):
        return sent  # (columns not known one by one: the driver's forms are conformed as read)
    positions = [f"c{i}" for i in range(1, len(names) + 1)]
    inner = exp.Subquery(
        this=sent,
        alias=exp.TableAlias(this=exp.to_identifier("q"),
                             columns=[exp.to_identifier(p) for p in positions]),
    )
    projections = []
    for name, position, (text, source_type) in zip(names, positions, outputs, strict=True):
        value: exp.Expr = exp.column(position, table="q")
        if text:
            value = dialect.text_form(value, source_type)
        projections.append(exp.alias_(value, name, quoted=True))
    return exp.select(*projections).from_(inner)


def _output_names(sent: exp.Expr, qualified: exp.Expression) -> list[str]:
    """The names the source gives the columns of ``sent``: as the query spells them where it
    names them, else (a ``*``, an expression without an alias) as qualify names them."""
    names = qualified.named_selects if isinstance(qualified, exp.Query) else []
    if not isinstance(sent, exp.Query) or any(
        isinstance(s, exp.Star) or isinstance(s, exp.Column) and isinstance(s.this, exp.Star)
        for s in sent.selects
    ):
        return names
    spelled = sent.named_selects
    if len(spelled) != len(names):
        return names
    return [own or name for own, name in zip(spelled, names, strict=True)]


def _explicit_cross_joins(tree: exp.Expr) -> None:
    """``FROM a, b JOIN c ON a.x = c.y`` as ``FROM a CROSS JOIN b JOIN c ON ...``: DuckDB
    reads the commas as cross joins, left to right, but PostgreSQL scopes an ON to the tables
    after the last comma (and refuses ``a.x`` there).

    >>> import sqlglot
    >>> tree = sqlglot.parse_one("SELECT * FROM a, b JOIN c ON a.x = c.y")
    >>> _explicit_cross_joins(tree); tree.sql("postgres")
    'SELECT * FROM a CROSS JOIN b JOIN c ON a.x = c.y'
    """
    for select in tree.find_all(exp.Select):
        joins = select.args.get("joins") or []
        commas = [j for j in joins if set(k for k, v in j.args.items() if v) <= {"this"}]
        if commas and len(commas) < len(joins):
            for join in commas:
                join.set("kind", "CROSS")


def _duckdb_shorthand(tree: exp.Expr) -> str | None:
    """DuckDB-only syntax the qualified tree hides (qualify expands it; the SQL sent keeps it)."""
    for node in tree.find_all(exp.Group, exp.Order):
        if node.args.get("all") or (
            isinstance(node, exp.Order)
            and any(isinstance(o.this, exp.Column) and o.this.name.upper() == "ALL"
                    and not o.this.table for o in node.expressions)
        ):
            return f"{node.key.upper()} BY ALL"
    return None


def _exact_column_spelling(tree: exp.Expr, tables: list[Table]) -> None:
    """Quote columns whose source spelling has capitals, so the source does not fold them."""
    spelling = {
        c.name.lower(): c.name for t in tables for c in t.columns if c.name != c.name.lower()
    }
    if not spelling:
        return
    for column in tree.find_all(exp.Column):
        exact = spelling.get(column.name.lower())
        if exact is not None and not column.this.quoted:
            column.set("this", exp.to_identifier(exact, quoted=True))


def result_typing(query: exp.Expr) -> ResultTyping:
    """The query over empty stand-ins of its tables, for DuckDB to type its result."""
    tree = query.copy()
    tables = []
    for node in list(tree.find_all(exp.Table)):
        table = node.meta.get(TABLE)
        if table is None:
            continue
        name = f"__types_{node.meta[REF]}"
        tables.append((name, [(c.name, c.type) for c in table.columns]))
        node.replace(
            exp.Table(
                this=exp.to_identifier(name, quoted=True),
                alias=exp.TableAlias(this=exp.to_identifier(node.alias)),
            )
        )
    return ResultTyping(tree.sql(dialect="duckdb"), tables)
