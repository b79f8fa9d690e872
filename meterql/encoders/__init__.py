"""Results as text and bytes: one text per value type, written once, for the CLI, the REPL and
the HTTP API alike.

====================  =========================================================
value                 text (CSV field, table cell; JSON string unless a number)
====================  =========================================================
NULL                  an empty CSV field; ``null`` in JSON
string                itself; in CSV quoted when it holds ``,`` ``"`` or a line
                      break, or is empty
integer, double       ``12``, ``1.0``, ``1e-05``, ``1e+20`` (as JSON writes them);
                      ``nan``, ``inf``, ``-inf`` (strings in JSON)
boolean               ``true``, ``false``
decimal               exact, positional, its own scale: ``0.000000123456``
date, time, timestamp ISO 8601: ``2026-10-05T10:00:00+00:00``, a fraction only when
                      not zero
interval              as SQL writes it: ``1 year 2 months 3 days 04:05:06.5``,
                      ``1 day 02:00:00``, ``-01:30:00``
bytes                 hex: ``00ff``
list, struct, map     JSON text: ``[1, 2]``, ``{"a": 1}``
====================  =========================================================

:mod:`~meterql.encoders.values` holds the rule for one value, :mod:`~meterql.encoders.columns`
the same rule over whole Arrow columns, :mod:`~meterql.encoders.formats` the byte chunks of each
format, :mod:`~meterql.encoders.table_view` the box table and the expanded rows for people,
:mod:`~meterql.encoders.pager` long text through the user's pager.
"""

from meterql.dialects.arrow_types import type_name
from meterql.encoders.columns import column_text, csv_column, json_column
from meterql.encoders.formats import (
    BATCH_ROWS,
    BINARY_FORMATS,
    FORMATS,
    FileFormat,
    Format,
    encode,
    json_envelope,
    save,
)
from meterql.encoders.pager import pager_command, show_text
from meterql.encoders.table_view import (
    RESET,
    View,
    boxes,
    expanded,
    render_table,
    row_count,
    row_texts,
)
from meterql.encoders.values import decimal_text, interval_text, json_text, json_value, value_text

__all__ = [
    "type_name",
    "BATCH_ROWS", "BINARY_FORMATS", "FORMATS", "RESET", "FileFormat", "Format", "View", "boxes",
    "column_text", "csv_column", "decimal_text", "encode", "expanded", "interval_text",
    "json_column", "json_envelope", "json_text", "json_value", "pager_command", "render_table",
    "row_count", "row_texts", "save", "show_text", "value_text",
]
