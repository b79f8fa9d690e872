"""The Tables page (scope ``read``): every table as a tree (source > schema > table), and a
table's page: its columns (meterql and source types, nullable, key), its row count and a
preview of its rows, paged, sorted by a column and filtered by a column's value, read with
``ws.query`` like any query (the value bound as a parameter, the names quoted by
:mod:`meterql.sql_text`)."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from meterql.catalog import Column, Table
from meterql.encoders import type_name
from meterql.errors import AmbiguousNameError, CatalogError, MeterqlError
from meterql.server.catalog_routes import table_json
from meterql.server.navigator.render import page
from meterql.sql_text import quote_ident, quote_ident_if_needed, quote_qualified, sql_type

NAV = ("Tables", "/tables", "read")
#: Tables listed on one page of the tree, and rows on one page of a preview.
TREE_PAGE = 200
PREVIEW_PAGE = 50


@dataclass(frozen=True)
class Preview:
    """What a table's preview shows: a page of rows sorted by ``sort`` (``desc``), of those
    whose ``column`` holds ``value`` (no filter when ``column`` is None)."""

    sort: str | None = None
    desc: bool = False
    column: str | None = None
    value: str = ""
    page: int = 0


def preview_sql(table: Table, preview: Preview, *, count: bool = False) -> str:
    """The SELECT of a preview (or of its row count): names quoted, the filter's value bound
    as ``:value``, cast to the column's type.

    >>> from meterql.catalog import Column, Table
    >>> t = Table("crm", "main", "people", (Column('a"b', "BIGINT", "INTEGER"),),
    ...           primary_key=('a"b',))
    >>> sql = preview_sql(t, Preview(sort='a"b', desc=True, column='a"b', value="7", page=2))
    >>> for part in sql.split(" ORDER BY "): print(part)
    SELECT * FROM "crm"."main"."people" WHERE "a""b" = CAST(:value AS BIGINT)
    "a""b" DESC NULLS LAST, "a""b" LIMIT 51 OFFSET 100
    """
    sql = f"SELECT {'count(*) AS n' if count else '*'} FROM {_table_ident(table)}"
    filtered = table.column(preview.column) if preview.column else None
    if filtered is not None:
        sql += f" WHERE {_filter(filtered)}"
    if count:
        return sql
    order = []
    sorted_by = table.column(preview.sort) if preview.sort else None
    if sorted_by is not None:
        direction = "DESC NULLS LAST" if preview.desc else "ASC NULLS FIRST"
        order.append(f"{quote_ident(sorted_by.name)} {direction}")
    # Then the key (or every column): the same rows on the same page each time.
    ties = list(table.primary_key) or [c.name for c in table.columns]
    order += [quote_ident(name) for name in ties]
    sql += f" ORDER BY {', '.join(order)}"
    return sql + f" LIMIT {int(PREVIEW_PAGE) + 1} OFFSET {int(preview.page) * int(PREVIEW_PAGE)}"


def _table_ident(table: Table) -> str:
    return quote_qualified(table.source, table.schema, table.name)


def _filter(column: Column) -> str:
    """``column = :value`` with the value cast to the column's type (compared as text when
    the type cannot be written in SQL)."""
    try:
        return f"{quote_ident(column.name)} = CAST(:value AS {sql_type(column.type)})"
    except ValueError:
        return f"CAST({quote_ident(column.name)} AS VARCHAR) = :value"


def workbench_sql(table: Table) -> str:
    """The query "query this table" opens the workbench with."""
    name = ".".join(quote_ident_if_needed(p) for p in (table.source, table.schema, table.name))
    return f"SELECT *\nFROM {name}\nLIMIT 100"


def tree(tables: list[Table]) -> list[tuple[str, list[tuple[str, list[Table]]]]]:
    """Tables grouped by source, then schema (in the order given)."""
    return [(source, [(schema, list(in_schema)) for schema, in_schema
                      in itertools.groupby(in_source, key=lambda t: t.schema)])
            for source, in_source in itertools.groupby(tables, key=lambda t: t.source)]


def router(ctx: Any) -> APIRouter:
    api = APIRouter(include_in_schema=False)
    ws = ctx.ws

    @api.get("/tables", dependencies=[ctx.read])
    def tables(request: Request, source: str | None = None, page_no: int = 0) -> HTMLResponse:
        try:
            every = sorted(ws.tables(source or None), key=lambda t: (t.source, t.schema, t.name))
        except CatalogError as exc:
            return _not_found(request, exc)
        pages = max(1, -(-len(every) // TREE_PAGE))
        page_no = min(max(page_no, 0), pages - 1)
        shown = every[page_no * TREE_PAGE:(page_no + 1) * TREE_PAGE]
        return page(request, "tables.html", tree=tree(shown), total=len(every), source=source,
                    page_no=page_no, pages=pages, sources=[s.name for s in ws.sources()])

    @api.get("/tables/{name:path}", dependencies=[ctx.read])
    def table(request: Request, name: str, sort: str | None = None, desc: bool = False,
              column: str | None = None, value: str = "", page_no: int = 0) -> HTMLResponse:
        try:
            entry = ws.tables.get(name)
        except CatalogError as exc:
            return _not_found(request, exc)
        preview = Preview(sort if sort and entry.column(sort) else None, desc,
                          column if column and entry.column(column) else None, value,
                          max(page_no, 0))
        params = {"value": preview.value} if preview.column else None
        rows: list[dict[str, Any]] = []
        count: int | None = None
        error: MeterqlError | None = None
        started = time.perf_counter()
        try:
            result = ws.query(preview_sql(entry, preview), params, timeout=ctx.timeout,
                              max_rows=PREVIEW_PAGE + 1)
            rows = result.to_pylist()
            count = ws.query(preview_sql(entry, preview, count=True), params,
                             timeout=ctx.timeout).to_pylist()[0]["n"]
        except MeterqlError as exc:
            error = exc
        shown = table_json(entry)
        for shown_column in shown["columns"]:  # (named as query headers name them)
            shown_column["type"] = type_name(shown_column["type"])
        return page(request, "table.html", table=shown, entry=entry,
                    preview=preview, rows=rows[:PREVIEW_PAGE], more=len(rows) > PREVIEW_PAGE,
                    count=count, error=error, seconds=time.perf_counter() - started,
                    first=preview.page * PREVIEW_PAGE, page_size=PREVIEW_PAGE,
                    link=lambda **change: _link(entry, preview, **change),
                    workbench="/workbench?" + urlencode({"sql": workbench_sql(entry)}),
                    freshness=ws.tables.freshness(entry.full_name))

    return api


def _not_found(request: Request, error: CatalogError) -> HTMLResponse:
    status = 400 if isinstance(error, AmbiguousNameError) else 404
    return page(request, "catalog_error.html", status_code=status, heading="Tables",
                back="/tables", error=error)


def _link(table: Table, preview: Preview, **change: Any) -> str:
    """The table page's address with the preview's state, some of it changed."""
    state = {"sort": preview.sort, "desc": preview.desc, "column": preview.column,
             "value": preview.value if preview.column else None, "page_no": preview.page}
    state.update(change)
    query = {k: ("1" if v is True else v) for k, v in state.items()
             if v not in (None, False, "", 0)}
    path = "/tables/" + quote(table.full_name)
    return path + ("?" + urlencode(query) if query else "")
