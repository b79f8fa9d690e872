"""Make a driver's Arrow match the types the catalog promised, exactly or not at all.

Drivers hand some types back in forms DuckDB would misread: PostgreSQL NUMERIC arrives as an
opaque string-backed extension type (its typmod in the field metadata), SQLite decimals and dates
as text. Each batch is cast here; a value that would lose digits raises instead of rounding.
A decimal the scan reads as a scaled integer (field metadata ``SCALED_INTEGER``) is rebuilt from
the integer's bits: ``123456789`` with scale 6 is ``123.456789``, no arithmetic on the way.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc

from meterql.dialects.arrow_types import DUCKDB_TYPE, SCALED_INTEGER, sql_type_name
from meterql.dialects.base import UNCONSTRAINED_DECIMAL
from meterql.errors import SourceQueryError

_TYPMOD_KEYS = (b"POSTGRESQL:typmod",)


def numeric_type_from_field(
    field: pa.Field, unconstrained: tuple[int, int] = UNCONSTRAINED_DECIMAL
) -> pa.DataType:
    """The decimal a PostgreSQL NUMERIC field stands for, read from its typmod metadata."""
    meta = field.metadata or {}
    for key in _TYPMOD_KEYS:
        if key in meta:
            typmod = int(meta[key])
            if typmod >= 4:
                packed = typmod - 4
                precision, scale = (packed >> 16) & 0xFFFF, packed & 0xFFFF
                return pa.decimal128(min(precision, 38), scale)
    return pa.decimal128(*unconstrained)


def _is_pg_numeric(typ: pa.DataType) -> bool:
    return isinstance(typ, pa.BaseExtensionType) and getattr(typ, "type_name", "") == "numeric"


def _plain(array: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Drop an extension wrapper (arrow.json, arrow.opaque) and keep its storage."""
    if isinstance(array.type, pa.BaseExtensionType):
        if isinstance(array, pa.ChunkedArray):
            return pa.chunked_array([c.storage for c in array.chunks], array.type.storage_type)
        return array.storage
    return array


def target_schema(
    raw: pa.Schema,
    wanted: pa.Schema | None,
    unconstrained: tuple[int, int] = UNCONSTRAINED_DECIMAL,
) -> pa.Schema:
    """The schema a raw driver result is cast to: ``wanted`` where given, else the driver's
    types with its quirks fixed."""
    fields = []
    for i, field in enumerate(raw):
        want = wanted.field(i) if wanted is not None and i < len(wanted) else None
        target = want.type if want is not None else None
        if target is None:
            if _is_pg_numeric(field.type):
                target = numeric_type_from_field(field, unconstrained)
            elif isinstance(field.type, pa.BaseExtensionType):
                target = field.type.storage_type
            else:
                target = field.type
        # (the metadata of a column carried as text says what it is: arrow_types.DUCKDB_TYPE)
        carried = {DUCKDB_TYPE: field.metadata[DUCKDB_TYPE]} if (
            field.metadata and DUCKDB_TYPE in field.metadata) else None
        metadata = want.metadata if want is not None else carried
        if metadata and SCALED_INTEGER in metadata:  # (how it was read, not what it is)
            metadata = {k: v for k, v in metadata.items() if k != SCALED_INTEGER} or None
        fields.append(pa.field(field.name, target, nullable=True, metadata=metadata))
    return pa.schema(fields)


def scaled_columns(wanted: pa.Schema | None) -> dict[int, int]:
    """Column position -> scale, for the columns of ``wanted`` read as scaled integers."""
    if wanted is None:
        return {}
    return {i: int(f.metadata[SCALED_INTEGER]) for i, f in enumerate(wanted)
            if f.metadata and SCALED_INTEGER in f.metadata}


def from_scaled_integer(column: pa.Array, scale: int, target: pa.DataType) -> pa.Array:
    """The decimals whose unscaled values are ``column``'s integers (NULLs stay NULL).

    A decimal is its unscaled integer plus a scale, so an int64 array *is* a decimal64 array
    of that scale (a view of the same buffers); the widening cast to ``target`` checks its
    precision and raises, never rounds.

    Example:
        >>> ints = pa.array([123456789, -1, None, 999999999999999999])
        >>> from_scaled_integer(ints, 6, pa.decimal128(18, 6)).to_pylist()
        [Decimal('123.456789'), Decimal('-0.000001'), None, Decimal('999999999999.999999')]
    """
    if column.type != pa.int64():
        raise pa.ArrowInvalid(f"a scaled integer arrived as {column.type}, not int64")
    decimals = column.view(pa.decimal64(18, scale))
    return decimals if decimals.type == target else pc.cast(decimals, target, safe=True)


def conform_batch(batch: pa.RecordBatch, schema: pa.Schema, source: str,
                  scaled: dict[int, int] | None = None) -> pa.RecordBatch:
    """``batch`` cast to ``schema``; ``scaled`` maps the positions of the columns read as
    scaled integers to their scale (:func:`scaled_columns`)."""
    columns = []
    for i, (column, field) in enumerate(zip(batch.columns, schema, strict=True)):
        plain = _plain(column)
        if scaled and i in scaled:
            try:
                columns.append(from_scaled_integer(plain, scaled[i], field.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise SourceQueryError(
                    f"column '{field.name}' from source '{source}' does not fit "
                    f"{sql_type_name(field)}: {exc}", source=source, hint=_hint(field.type),
                    field=field.name) from exc
            continue
        if plain.type == field.type:
            columns.append(plain)
            continue
        if pa.types.is_null(field.type) and plain.null_count == len(plain):
            columns.append(pa.nulls(len(plain)))  # an always-NULL expression, typed by DuckDB
            continue
        try:
            columns.append(pc.cast(plain, field.type, safe=True))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            value = _first_unfit(plain, field.type)
            shown = "" if value is None else f" (value {value})"
            raise SourceQueryError(
                f"column '{field.name}' from source '{source}' does not fit "
                f"{sql_type_name(field)}{shown}: {exc}",
                source=source,
                hint=_hint(field.type),
                field=field.name, value=value,
            ) from exc
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _first_unfit(column: pa.Array, target: pa.DataType) -> str | None:
    """The first value of ``column`` that does not cast to ``target`` safely, as text (found by
    halving: a few casts, on the error path only)."""

    def fits(part: pa.Array) -> bool:
        try:
            pc.cast(part, target, safe=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return False
        return True

    low, high = 0, len(column)  # the first unfit value is in column[low:high]
    if fits(column):
        return None
    while high - low > 1:
        middle = (low + high) // 2
        if fits(column.slice(low, middle - low)):
            low = middle
        else:
            high = middle
    return str(column[low].as_py())


def _hint(target: pa.DataType) -> str:
    if pa.types.is_decimal(target):
        return (
            "values have more digits than the column's decimal type; for PostgreSQL NUMERIC "
            "without precision set the source option numeric_scale, or declare the column with "
            "a precision"
        )
    return "check the column's declared type at the source"


def conform_reader(
    raw: pa.RecordBatchReader,
    wanted: pa.Schema | None,
    source: str,
    unconstrained: tuple[int, int] = UNCONSTRAINED_DECIMAL,
) -> pa.RecordBatchReader:
    """A reader whose batches have the target schema (lazy: nothing is read ahead)."""
    if wanted is not None and len(wanted) != len(raw.schema):
        raise SourceQueryError(
            f"source '{source}' returned {len(raw.schema)} columns where {len(wanted)} were "
            "expected",
            source=source,
            hint="the source's tables may have changed since meterql read them; refresh the source",
        )
    schema = target_schema(raw.schema, wanted, unconstrained)
    plain = not any(isinstance(f.type, pa.BaseExtensionType) for f in raw.schema)
    scaled = scaled_columns(wanted)
    if schema.equals(raw.schema, check_metadata=True) and plain and not scaled:
        return raw

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in raw:
            yield conform_batch(batch, schema, source, scaled)

    return pa.RecordBatchReader.from_batches(schema, batches())
