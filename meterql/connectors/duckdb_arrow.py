"""DuckDB results as Arrow, exactly, 128-bit integers included.

Arrow has no 128-bit integer. DuckDB hands a HUGEINT to Arrow as DECIMAL(38,0) with its 128 bits
intact, which another DuckDB then reads as a decimal (so ``//`` divides as decimals do), and a
UHUGEINT the same way, so a value past 2^127 comes back negative. So:

- between meterql's DuckDBs (a DuckDB-file source's rows on their way to the residual or a
  replica), such columns cross as their text, marked with their DuckDB type
  (``arrow_types.DUCKDB_TYPE``), and are cast back where DuckDB reads them
  (``engine.execute.register_typed``);
- in an answer handed to a caller, a HUGEINT is DuckDB's own DECIMAL(38,0) and a UHUGEINT a
  DECIMAL(39,0) (``decimal256``), which holds every one of its values.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from meterql.dialects.arrow_types import DUCKDB_TYPE, carried_types
from meterql.sql_text import quote_ident, sql_type

#: The DuckDB types Arrow cannot hold as they are.
WIDE = ("HUGEINT", "UHUGEINT")
#: How an answer holds a UHUGEINT (every value up to 2^128 - 1).
UHUGEINT_ANSWER = pa.decimal256(39, 0)


def carried_reader(cur: duckdb.DuckDBPyConnection, relation: duckdb.DuckDBPyRelation,
                   batch_rows: int) -> pa.RecordBatchReader:
    """``relation``'s rows as Arrow, its 128-bit integer columns carried as marked text."""
    wide = {name: str(typ) for name, typ in zip(relation.columns, relation.types, strict=True)
            if str(typ) in WIDE}
    if not wide:
        return relation.to_arrow_reader(batch_rows)
    exprs = ", ".join(f"CAST({quote_ident(c)} AS VARCHAR) AS {quote_ident(c)}" for c in wide)
    reader = relation.select(f"* REPLACE ({exprs})").to_arrow_reader(batch_rows)
    schema = pa.schema([f.with_metadata({DUCKDB_TYPE: wide[f.name].encode()})
                        if f.name in wide else f for f in reader.schema])
    return pa.RecordBatchReader.from_batches(
        schema, (pa.RecordBatch.from_arrays(b.columns, schema=schema) for b in reader))


def answer_table(cur: duckdb.DuckDBPyConnection, table: pa.Table) -> pa.Table:
    """A table with carried columns as a caller gets it: a HUGEINT as DuckDB hands it out, a
    UHUGEINT as a DECIMAL(39,0)."""
    carried = carried_types(table.schema)
    if not carried:
        return table
    columns, fields = [], []
    for field, column in zip(table.schema, table.columns, strict=True):
        typ = carried.get(field.name)
        if typ == "UHUGEINT":
            columns.append(pc.cast(column, UHUGEINT_ANSWER))
            fields.append(pa.field(field.name, UHUGEINT_ANSWER))
        elif typ is not None:  # (DuckDB's own DECIMAL(38,0), the 128 bits intact)
            columns.append(_through_duckdb(cur, column, typ))
            fields.append(pa.field(field.name, columns[-1].type))
        else:
            columns.append(column)
            fields.append(field.remove_metadata())
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def _through_duckdb(cur: duckdb.DuckDBPyConnection, column: pa.ChunkedArray,
                    typ: str) -> pa.ChunkedArray:
    carried = pa.table({"v": column})
    cur.register("__carried", carried)
    try:
        return cur.sql(f"SELECT CAST(v AS {sql_type(typ)}) AS v FROM __carried"
                       ).to_arrow_table()["v"]
    finally:
        cur.unregister("__carried")
