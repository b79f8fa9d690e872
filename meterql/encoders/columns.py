"""Whole Arrow columns as text by the rule of :mod:`meterql.encoders.values`, fast.

Integers, doubles, decimals, booleans, dates, times, timestamps and strings are written with
Arrow compute functions over the whole column, then corrected where Arrow's own text differs
from the rule (``1`` for the double 1.0, ``0E-12`` for a decimal zero, a space and ``Z`` in a
timestamp); bytes, lists, structs, maps, intervals and any other type go value by value through
:func:`~meterql.encoders.values.value_text`. The tests check the two ways agree, value for value.

Example:
    >>> import pyarrow as pa
    >>> from decimal import Decimal
    >>> amounts = pa.array([Decimal("0E-6"), Decimal("-0.5"), None], pa.decimal128(18, 6))
    >>> column_text(amounts).to_pylist()
    ['0.000000', '-0.500000', None]
"""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc

from meterql.encoders.values import json_text, value_text

#: The same bytes read as a whole number: a decimal of this type, scale 0, per byte width.
_UNSCALED = {4: pa.decimal32(9, 0), 8: pa.decimal64(18, 0), 16: pa.decimal128(38, 0),
             32: pa.decimal256(76, 0)}


def column_text(column: pa.Array) -> pa.Array:
    """Each value's :func:`~meterql.encoders.values.value_text`, as a string array; NULL
    stays null.

    Example:
        >>> import pyarrow as pa
        >>> column_text(pa.array([1.0, 1e-05, 1e20, float("nan"), None])).to_pylist()
        ['1.0', '1e-05', '1e+20', 'nan', None]
        >>> column_text(pa.array([True, False])).to_pylist()
        ['true', 'false']
    """
    typ = column.type
    if pa.types.is_dictionary(typ):
        return column_text(column.dictionary_decode())
    if (pa.types.is_boolean(typ) or pa.types.is_integer(typ) or pa.types.is_date(typ)
            or _is_string(typ)):
        return pc.cast(column, pa.string())
    if pa.types.is_floating(typ):
        return _float_text(column)
    if pa.types.is_decimal(typ):
        return _decimal_text(column)
    if pa.types.is_timestamp(typ) or pa.types.is_time(typ):
        return _clock_text(column)
    if _is_bytes(typ):
        return pa.array([None if v is None else v.hex() for v in column.to_pylist()], pa.string())
    return pa.array([value_text(v) for v in column.to_pylist()], pa.string())


def csv_column(column: pa.Array) -> pa.Array:
    """Each value as a CSV field: its text, in double quotes (a quote doubled) when it holds a
    comma, a quote or a line break, or is empty, so that an empty string (``""``) and NULL
    (nothing) differ.

    Example:
        >>> import pyarrow as pa
        >>> csv_column(pa.array(["a", "a,b", 'x"y', "", None, "two\\nlines"])).to_pylist()
        ['a', '"a,b"', '"x""y"', '""', '', '"two\\nlines"']
    """
    text = column_text(column)
    if _is_plain(column.type):  # numbers, decimals, times: never empty, never a comma
        return pc.fill_null(text, "")
    quote = pc.or_(pc.match_substring_regex(text, '[",\r\n]'),
                   pc.equal(pc.binary_length(text), 0))
    if pc.any(quote).as_py():
        quoted = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
        text = pc.if_else(quote, quoted, text)
    return pc.fill_null(text, "")


def json_column(column: pa.Array) -> pa.Array:
    """Each value as JSON text (:func:`~meterql.encoders.values.json_text`): numbers and
    booleans bare, everything else that is not a list or struct a JSON string, NULL ``null``.

    Example:
        >>> import pyarrow as pa
        >>> json_column(pa.array([1.5, float("inf"), None])).to_pylist()
        ['1.5', '"inf"', 'null']
        >>> json_column(pa.array(['say "hi"', "Zoë"])).to_pylist()
        ['"say \\\\"hi\\\\""', '"Zoë"']
    """
    typ = column.type
    if pa.types.is_dictionary(typ):
        return json_column(column.dictionary_decode())
    if pa.types.is_boolean(typ) or pa.types.is_integer(typ):
        text = pc.cast(column, pa.string())
    elif pa.types.is_floating(typ):
        text = column_text(column)
        text = pc.if_else(pc.is_finite(column), text, _quoted(text))  # "nan", "inf"
    elif _is_plain(typ):  # decimals and times: strings that need no escape
        text = _quoted(column_text(column))
    elif _is_string(typ) or _is_bytes(typ):
        text = column_text(column)
        escape = pc.fill_null(pc.match_substring_regex(text, r'[\x00-\x1f"\\]'), False)
        quoted = _quoted(text)
        if pc.any(escape).as_py():
            escaped = [json.dumps(v, ensure_ascii=False) for v in pc.filter(text, escape)
                       .to_pylist()]
            quoted = pc.replace_with_mask(quoted, escape, pa.array(escaped, pa.string()))
        text = quoted
    else:
        text = pa.array([json_text(v) for v in column.to_pylist()], pa.string())
    return pc.fill_null(text, "null")


def _quoted(text: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise('"', text, '"', "")


def _is_string(typ: pa.DataType) -> bool:
    return (pa.types.is_string(typ) or pa.types.is_large_string(typ)
            or pa.types.is_string_view(typ))


def _is_bytes(typ: pa.DataType) -> bool:
    return (pa.types.is_binary(typ) or pa.types.is_large_binary(typ)
            or pa.types.is_fixed_size_binary(typ) or pa.types.is_binary_view(typ))


def _is_plain(typ: pa.DataType) -> bool:
    """Types whose text is never empty and never holds a comma, a quote or a line break."""
    return (pa.types.is_boolean(typ) or pa.types.is_integer(typ) or pa.types.is_floating(typ)
            or pa.types.is_decimal(typ) or pa.types.is_date(typ) or pa.types.is_time(typ)
            or pa.types.is_timestamp(typ))


def _float_text(column: pa.Array) -> pa.Array:
    # Arrow and Python's repr both write the shortest digits that read back as the same double;
    # they differ in layout: Arrow writes an exponent outside [1e-6, 1e10), repr outside
    # [1e-4, 1e16) and with two exponent digits (1e-07), and Arrow writes 1 for 1.0.
    values = pc.cast(column, pa.float64())  # a float32 shows as the double it is, like repr
    text = pc.cast(values, pa.string())
    size = pc.abs(values)
    between = pc.fill_null(pc.or_(
        pc.and_(pc.greater_equal(size, 1e-6), pc.less(size, 1e-4)),
        pc.and_(pc.greater_equal(size, 1e10), pc.less(size, 1e16))), False)
    if pc.any(between).as_py():  # where one writes an exponent and the other not: repr itself
        texts = [repr(v) for v in pc.filter(values, between).to_pylist()]
        text = pc.replace_with_mask(text, between, pa.array(texts, pa.string()))
    whole = pc.and_(pc.is_finite(values), pc.less(size, 1e10))
    whole = pc.and_(whole, pc.equal(values, pc.trunc(values)))
    text = pc.if_else(whole, pc.binary_join_element_wise(text, ".0", ""), text)
    if pc.any(pc.and_(pc.less(size, 1e-6), pc.greater(size, 0))).as_py():
        text = pc.replace_substring_regex(text, pattern=r"e-(\d)$", replacement=r"e-0\1")
    return text


def _decimal_text(column: pa.Array) -> pa.Array:
    # Arrow writes 0E-12 and 1.23456E-7 for small decimals; the unscaled whole number (the same
    # bytes read with scale 0) is always plain digits, and the point goes in by position.
    typ = column.type
    whole = pa.Array.from_buffers(_UNSCALED[typ.byte_width], len(column), column.buffers(),
                                  offset=column.offset)
    digits = pc.cast(whole, pa.string())
    scale = typ.scale
    if scale == 0:
        return digits
    if scale < 0:  # 1E+3 is 1000, 0E+3 is 0
        return pc.if_else(pc.equal(digits, "0"), digits,
                          pc.binary_join_element_wise(digits, "0" * -scale, ""))
    negative = pc.starts_with(digits, "-")
    digits = pc.utf8_lpad(pc.utf8_ltrim(digits, characters="-"), width=scale + 1, padding="0")
    text = pc.binary_join_element_wise(pc.utf8_slice_codeunits(digits, 0, -scale),
                                       pc.utf8_slice_codeunits(digits, -scale), ".")
    return pc.if_else(negative, pc.binary_join_element_wise("-", text, ""), text)


def _clock_text(column: pa.Array) -> pa.Array:
    # As isoformat: '2026-10-05T12:00:00+02:00', the local time and its offset with a colon, no
    # fraction when it is zero, else six digits (nine for nanoseconds that need them). Arrow
    # writes '2026-10-05 12:00:00.000000+0200', and slowly (it looks up the zone per value):
    # the local times are cast as naive ones and the offsets of the few distinct shifts added.
    typ = column.type
    zoned = pa.types.is_timestamp(typ) and typ.tz is not None
    local = pc.local_timestamp(column) if zoned else column
    text = pc.cast(local, pa.string())
    if pa.types.is_timestamp(typ):
        text = pc.replace_substring(text, " ", "T", max_replacements=1)
    if typ.unit == "ms":
        text = pc.replace_substring_regex(text, pattern=r"\.(\d{3})$", replacement=r".\1000")
    if typ.unit == "ns":
        text = pc.replace_substring_regex(text, pattern=r"\.(\d{6})000$", replacement=r".\1")
        text = pc.replace_substring_regex(text, pattern=r"\.000000$", replacement="")
    elif typ.unit != "s":
        text = pc.replace_substring(text, ".000000", "")
    if zoned:
        shift = pc.subtract(local.view(pa.int64()), column.view(pa.int64()))
        shifts = pc.unique(shift)
        per_second = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[typ.unit]
        offsets = pa.array([None if v is None else utc_offset(v // per_second)
                            for v in shifts.to_pylist()], pa.string())
        text = pc.binary_join_element_wise(text, pc.take(offsets, pc.index_in(shift, shifts)), "")
    return text


def utc_offset(seconds: int) -> str:
    """A UTC offset as isoformat writes it: hours and minutes, seconds only when there are.

    Example:
        >>> utc_offset(0), utc_offset(-9000), utc_offset(1172)
        ('+00:00', '-02:30', '+00:19:32')
    """
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{'-' if seconds < 0 else '+'}{hours:02d}:{minutes:02d}"
    return text + f":{secs:02d}" if secs else text
