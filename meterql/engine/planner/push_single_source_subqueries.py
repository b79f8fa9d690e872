"""Rule: push each derived table and CTE that reads one source whole into that source.

In a query across sources, a subquery such as ``(SELECT customer_id, sum(qty) FROM pg.events
GROUP BY 1) AS u`` or ``WITH u AS (...)`` that touches only one source is sent to it as one
fragment when its capability profile accepts every construct in it: joins within the source,
GROUP BY, HAVING, DISTINCT, ORDER BY + LIMIT and windows run there, and only the subquery's rows
travel. Subqueries in expressions (``IN (SELECT ...)``, scalar, ``EXISTS``) stay in DuckDB: they
may refer to the outer query.
"""

from __future__ import annotations

from dataclasses import replace

from sqlglot import exp
from sqlglot.optimizer.pushdown_projections import pushdown_projections

from meterql.catalog import Table
from meterql.engine.bind import REF, SUBQUERY, TABLE
from meterql.engine.planner.context import PlanContext
from meterql.engine.planner.fragments import single_source_fragment
from meterql.engine.planner.plan import PartialPlan, QueryFragment, fragment_table


def push_single_source_subqueries(ctx: PlanContext, partial: PartialPlan) -> PartialPlan:
    """Each derived table or CTE of ``partial``'s residual that one source can run whole ->
    one more fragment, read by the residual in its place.

    >>> from meterql.engine.planner.examples import example_context
    >>> ctx = example_context(
    ...     "SELECT u.n FROM (SELECT customer_id, count(*) AS n FROM pg.public.events"
    ...     " GROUP BY customer_id) AS u JOIN lite.main.customers AS c ON c.id = u.customer_id")
    >>> partial = push_single_source_subqueries(ctx, PartialPlan(ctx.bound.tree))
    >>> print(partial.fragments[0].sql)
    SELECT customer_id, COUNT(*) AS n FROM public.events AS events GROUP BY customer_id
    >>> print(partial.residual.sql("duckdb"))
    SELECT u.n FROM __fragment_f1 AS u JOIN lite.main.customers AS c ON c.id = u.customer_id
    >>> [ctx.bound.tables[ref][1].full_name for ref in partial.read]
    ['pg.public.events']
    """
    residual = partial.residual.copy()
    qualified = {
        n.meta[SUBQUERY]: n for n in ctx.bound.qualified.find_all(exp.Subquery, exp.CTE)
        if SUBQUERY in n.meta
    }
    # (the same, without the columns nobody reads in the whole statement)
    pruned = {
        n.meta[SUBQUERY]: n
        for n in pushdown_projections(ctx.bound.qualified.copy()).find_all(exp.Subquery, exp.CTE)
        if SUBQUERY in n.meta
    }
    fragments, read, notes = list(partial.fragments), set(partial.read), list(partial.notes)
    for node in list(residual.find_all(exp.Subquery, exp.CTE)):  # outermost first
        if node.root() is not residual or SUBQUERY not in node.meta:
            continue  # inside a subquery already pushed
        if isinstance(node, exp.Subquery) and not isinstance(node.parent, (exp.From, exp.Join)):
            continue
        query, twin = node.this, qualified.get(node.meta[SUBQUERY])
        if twin is None or not isinstance(query, exp.Query):
            continue
        refs = _catalog_tables(query)
        if refs is None or len({t.source for _, t in refs}) != 1 or _correlated(twin.this):
            continue
        if any(ctx.reads_replica(t.full_name, t.source) for _, t in refs):
            continue  # read from the replica by the residual itself
        frag = single_source_fragment(
            f"f{len(fragments) + 1}", query, twin.this, refs, ctx.catalog, refs[0][1].source,
            pruned[node.meta[SUBQUERY]].this if node.meta[SUBQUERY] in pruned else None,
        )
        if not isinstance(frag, QueryFragment):
            notes.append(f"subquery {node.alias_or_name} stays local: {frag}")
            continue
        frag = replace(frag, subquery=node.alias_or_name)
        fragments.append(frag)
        read.update(n.meta[REF] for n, _ in refs)
        table = exp.Table(this=exp.to_identifier(fragment_table(frag.id)))
        if isinstance(node, exp.CTE):
            node.set("this", exp.select("*").from_(table))
        else:
            alias = node.args.get("alias")
            table.set("alias", alias.copy() if alias is not None else None)
            node.replace(table)
    if len(fragments) == len(partial.fragments):
        return partial  # (nothing pushed: its notes on subqueries that stay local are dropped)
    return PartialPlan(residual, tuple(fragments), frozenset(read), tuple(notes))


def _catalog_tables(query: exp.Expr) -> list[tuple[exp.Table, Table]] | None:
    """The catalog tables a subquery reads, or ``None`` if it reads anything else (a CTE of
    the outer query, a table function)."""
    refs: list[tuple[exp.Table, Table]] = []
    inner_ctes = {c.alias_or_name.lower() for c in query.find_all(exp.CTE)}
    for table in query.find_all(exp.Table):
        entry = table.meta.get(TABLE)
        if entry is not None:
            refs.append((table, entry))
        elif not (isinstance(table.this, exp.Identifier) and table.name.lower() in inner_ctes):
            return None
    return refs or None


def _correlated(qualified: exp.Expression) -> bool:
    """Whether a qualified subquery names a table alias it does not define itself."""
    defined = {
        node.alias_or_name
        for node in qualified.find_all(exp.Table, exp.Subquery, exp.CTE)
    }
    return any(c.table and c.table not in defined for c in qualified.find_all(exp.Column))
