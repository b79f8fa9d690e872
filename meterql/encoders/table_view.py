"""A result as text for people: a box table (:func:`boxes`) or one column-value pair a line
(:func:`expanded`). Each cell is the text the CSV has
(:func:`~meterql.encoders.columns.column_text`), NULL shows as ``NULL`` (dim), the SQL type
names (:func:`~meterql.dialects.arrow_types.sql_type_name`) stand under the column names, and
numbers are aligned to the right.

Nothing is ever cut: a column is as wide as its widest value and a value with line breaks takes
as many lines. The only rows left out are those a ``limit`` leaves out: the first and last
``limit // 2`` rows are drawn with a ``⋮`` row between them, as the DuckDB shell does, and the
view says how many rows it shows (:func:`row_count`). Control characters other than a line break
show escaped (``\\t``, ``\\x1b``), so a value cannot move the cursor of the terminal.

Lines are built column by column with Arrow's string functions, so 10,000 rows take
milliseconds; only cells with line breaks, control characters or non-ASCII letters (whose width
on a terminal is not their length) are laid out value by value.

Example:
    >>> import pyarrow as pa
    >>> print(boxes(pa.table({"n": [1, None], "who": ["ann", "Zoë"]})).text(), end="")
    ┏━━━━━━━━┳━━━━━━━━━┓
    ┃      n ┃ who     ┃
    ┃ BIGINT ┃ VARCHAR ┃
    ┡━━━━━━━━╇━━━━━━━━━┩
    │      1 │ ann     │
    │   NULL │ Zoë     │
    └────────┴─────────┘
    >>> print(expanded(pa.table({"n": [1], "who": ["ann"]})).text(), end="")
    -[ RECORD 1 ]
    n   | 1
    who | ann
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from meterql.dialects.arrow_types import sql_type_name
from meterql.encoders.columns import column_text
from meterql.wording import count

if TYPE_CHECKING:
    from rich.text import Text

BOLD, DIM, RESET = "\x1b[1m", "\x1b[2m", "\x1b[0m"
NULL = "NULL"
#: Rows per chunk of a view's text.
CHUNK_ROWS = 65536

#: (top, header, header rule, body, bottom): left, fill, between, right of each.
_Chars = tuple[str, str, str, str]
_UNICODE: tuple[_Chars, ...] = tuple(
    (a, b, c, d) for a, b, c, d in ("┏━┳┓", "┃ ┃┃", "┡━╇┩", "│ ││", "└─┴┘"))
_ASCII: tuple[_Chars, ...] = tuple(
    (a, b, c, d) for a, b, c, d in ("+-++", "| ||", "+=++", "| ||", "+-++"))
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")
_ESCAPES = {"\t": "\\t", "\r": "\\r"}


@dataclass(frozen=True)
class View:
    """Text ready to print: its size on a terminal, how many rows it draws, then its chunks
    (each a run of whole lines, ``\\n`` after each)."""

    width: int
    height: int
    rows: int
    shown: int
    _chunks: Callable[[], Iterator[str]]

    def chunks(self) -> Iterator[str]:
        return self._chunks()

    def text(self) -> str:
        return "".join(self._chunks())


def row_count(rows: int, shown: int | None = None) -> str:
    """``1 row``, ``2 rows``; with the rows a view shows when it shows fewer.

    Example:
        >>> row_count(1), row_count(0), row_count(400000, 40)
        ('1 row', '0 rows', '400,000 rows (40 shown)')
    """
    text = count(rows, "row")
    return text if shown is None or shown >= rows else f"{text} ({shown} shown)"


def boxes(table: pa.Table, *, limit: int | None = None, styled: bool = False,
          ascii: bool = False) -> View:
    """``table`` in a box, the column names and their SQL types above a rule; ``limit`` rows
    at most (the first and last halves, a ``⋮`` row between); ``styled`` adds terminal
    styles (bold names, dim types and NULLs); ``ascii`` draws with ``+-|`` only."""
    if table.num_columns == 0:
        return View(0, 0, table.num_rows, 0, lambda: iter(()))
    shown, gap = _shown(table, limit)
    top, head, rule, body, bottom = _ASCII if ascii else _UNICODE
    columns = [_Column.of(field, shown.column(i), styled)
               for i, field in enumerate(shown.schema)]
    widths = [c.width for c in columns]
    rights = [c.right for c in columns]

    def line(chars: _Chars, cells: list[str]) -> str:
        left, _, between, right = chars
        return f"{left} " + f" {between} ".join(cells) + f" {right}\n"

    def border(chars: _Chars) -> str:
        left, fill, between, right = chars
        return left + between.join(fill * (w + 2) for w in widths) + right + "\n"

    header = (border(top)
              + _lines(head, [_Cell(c.name, BOLD) for c in columns], widths, rights, styled)
              + _lines(head, [_Cell(c.type, DIM) for c in columns], widths, rights, styled)
              + border(rule))
    special = _special_rows(columns, shown.num_rows)
    laid = {i: _lines(body, [c.cell(i) for c in columns], widths, rights, styled)
            for i in special}
    mark = ":" if ascii else "⋮"
    gap_line = line(body, [_pad(mark, w, r) for w, r in zip(widths, rights, strict=True)])

    def chunks() -> Iterator[str]:
        yield header
        for start in range(0, shown.num_rows, CHUNK_ROWS):
            stop = min(start + CHUNK_ROWS, shown.num_rows)
            if gap is not None and start <= gap < stop:
                yield _body(columns, body, start, gap, laid)
                yield gap_line
                yield _body(columns, body, gap, stop, laid)
            else:
                yield _body(columns, body, start, stop, laid)
        if gap is not None and gap == shown.num_rows:
            yield gap_line
        yield border(bottom)

    height = (header.count("\n") + shown.num_rows + (gap is not None) + 1
              + sum(text.count("\n") - 1 for text in laid.values()))
    width = sum(widths) + 3 * len(widths) + 1
    return View(width, height, table.num_rows, shown.num_rows, chunks)


def expanded(table: pa.Table, *, limit: int | None = None, styled: bool = False) -> View:
    """``table`` as psql's expanded display (``\\x``): each row under a ``-[ RECORD n ]-`` line
    as wide as the widest line, then one ``column | value`` line per field (NULL written as
    ``NULL``, as a table cell shows it, so that it differs from an empty string; a value's
    further lines continue under its first); ``limit`` as for :func:`boxes`.

    Example:
        >>> import pyarrow as pa
        >>> print(expanded(pa.table({"id": [1, 2], "name": ["a", None]})).text(), end="")
        -[ RECORD 1 ]
        id   | 1
        name | a
        -[ RECORD 2 ]
        id   | 2
        name | NULL
    """
    shown, gap = _shown(table, limit)
    names = [_display(name) for name in table.column_names]
    key_width = max((_cells_width(n) for n in names), default=0)
    texts = [column_text(c.combine_chunks()).to_pylist() for c in shown.columns]
    skipped = table.num_rows - shown.num_rows
    lines: list[str | int] = []  # (an int: the number of a record, whose line comes last)
    widest = 0
    for i in range(shown.num_rows):
        if i == gap:
            lines.append(f"{DIM if styled else ''}⋮ ({row_count(skipped)} not shown)"
                         f"{RESET if styled else ''}")
        lines.append(i + 1 + (skipped if gap is not None and i >= gap else 0))
        for name, column in zip(names, texts, strict=True):
            value = column[i]
            pieces = [NULL] if value is None else _display(value).split("\n")
            widest = max([widest, *(_cells_width(piece) for piece in pieces)])
            first = _styled(pieces[0], DIM, styled) if value is None else pieces[0]
            lines.append(f"{_pad(name.split(chr(10))[0], key_width, False)} | {first}".rstrip())
            lines.extend(f"{' ' * key_width} | {piece}".rstrip() for piece in pieces[1:])
    width = key_width + 3 + widest
    texts_out = [_record(line, width, styled) if isinstance(line, int) else line
                 for line in lines]
    width = max((_cells_width(_plain(line)) for line in texts_out), default=0)
    text = "".join(line + "\n" for line in texts_out)
    return View(width, len(texts_out), table.num_rows, shown.num_rows, lambda: iter((text,)))


def _record(number: int, width: int, styled: bool) -> str:
    head = f"-[ RECORD {number} ]"
    return _styled(head + "-" * (width - len(head)), DIM, styled)


def render_table(table: pa.Table, title: str | None = None) -> Text:
    """``table`` in a box (:func:`boxes`) as rich text, under ``title`` if given: for the
    short tables of other commands, printed on a rich console."""
    from rich.text import Text

    text = boxes(table, styled=True).text().rstrip("\n")
    return Text.from_ansi(f"{title}\n{text}" if title else text)


def row_texts(table: pa.Table) -> Iterator[tuple[str | None, ...]]:
    """Each row's values as text (None for NULL), as a table cell or an expanded row shows
    them.

    Example:
        >>> import pyarrow as pa
        >>> list(row_texts(pa.table({"n": [1, None], "ok": [True, False]})))
        [('1', 'true'), (None, 'false')]
    """
    for batch in table.to_batches():
        yield from zip(*[column_text(c).to_pylist() for c in batch.columns], strict=True)


# -- layout --------------------------------------------------------------------------------


@dataclass
class _Cell:
    text: str | None  # None: NULL
    style: str = ""


@dataclass
class _Column:
    name: str
    type: str
    right: bool
    text: pa.Array  # each shown value's text, null for NULL
    special: pa.Array  # bool: laid out value by value
    width: int
    padded: pa.Array  # each text padded to the width (NULL styled); wrong where special

    @classmethod
    def of(cls, field: pa.Field, values: pa.ChunkedArray, styled: bool) -> _Column:
        typ = values.type
        right = pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ)
        text = column_text(values.combine_chunks())
        special = pc.fill_null(pc.or_(pc.invert(pc.string_is_ascii(text)),
                                      pc.match_substring_regex(text, r"[\x00-\x1f\x7f]")), False)
        plain = pc.if_else(special, pa.scalar(None, pa.string()), text)
        width = max(len(NULL) if text.null_count else 0,
                    pc.max(pc.utf8_length(plain)).as_py() or 0)
        for value in pc.filter(text, special).to_pylist():
            width = max(width, _cells_width(_display(value)))
        name, type_name = _display(field.name), sql_type_name(field)
        width = max(width, _cells_width(name), _cells_width(type_name))
        pad = pc.utf8_lpad if right else pc.utf8_rpad
        null = _pad(_styled(NULL, DIM, styled), width + (len(DIM + RESET) if styled else 0), right)
        padded = pc.fill_null(pad(text, width=width, padding=" "), null)
        return cls(name, type_name, right, text, special, width, padded)

    def cell(self, row: int) -> _Cell:
        value = self.text[row].as_py()
        return _Cell(None) if value is None else _Cell(value)


def _shown(table: pa.Table, limit: int | None) -> tuple[pa.Table, int | None]:
    """The rows drawn, and the index among them before which the ``⋮`` row goes (None when
    every row is drawn)."""
    if limit is None or table.num_rows <= limit:
        return table, None
    first = limit - limit // 2
    shown = pa.concat_tables([table.slice(0, first), table.slice(table.num_rows - limit // 2)])
    return shown, first


def _special_rows(columns: list[_Column], rows: int) -> list[int]:
    if rows == 0:
        return []
    any_special = columns[0].special
    for column in columns[1:]:
        any_special = pc.or_(any_special, column.special)
    return pc.indices_nonzero(any_special).to_pylist()


def _body(columns: list[_Column], chars: _Chars, start: int, stop: int,
          laid: dict[int, str]) -> str:
    """Rows ``start`` to ``stop`` as lines, the special rows as laid out before."""
    if stop <= start:
        return ""
    left, _, between, right = chars
    pieces: list[pa.Array | pa.Scalar] = []
    for i, column in enumerate(columns):
        pieces.append(pa.scalar(f"{left} " if i == 0 else f" {between} ", pa.string()))
        pieces.append(column.padded.slice(start, stop - start))
    pieces.append(pa.scalar(f" {right}\n", pa.string()))
    rows = pc.binary_join_element_wise(*pieces, "")
    own = [i - start for i in laid if start <= i < stop]
    if own:
        mask = [False] * (stop - start)
        for i in own:
            mask[i] = True
        rows = pc.replace_with_mask(rows, pa.array(mask),
                                    pa.array([laid[start + i] for i in sorted(own)], pa.string()))
    return _joined(rows)


def _joined(rows: pa.Array) -> str:
    """A string array's values end to end (its data between its first and last offset)."""
    _, offsets, data = rows.buffers()
    if data is None:
        return ""
    ends = pa.Array.from_buffers(pa.int32(), len(rows) + 1, [None, offsets], offset=rows.offset)
    return data[ends[0].as_py():ends[-1].as_py()].to_pybytes().decode()


def _lines(chars: _Chars, cells: list[_Cell], widths: list[int], rights: list[bool],
           styled: bool) -> str:
    """One row laid out value by value: a value with line breaks takes as many lines."""
    left, _, between, right = chars
    pieces = [[NULL] if c.text is None else _display(c.text).split("\n") for c in cells]
    height = max((len(p) for p in pieces), default=1)
    out = []
    for n in range(height):
        texts = []
        for cell, piece, width, at_right in zip(cells, pieces, widths, rights, strict=True):
            text = piece[n] if n < len(piece) else ""
            padded = _pad(text, width, at_right)
            style = DIM if cell.text is None else cell.style
            if styled and style and text:
                padded = padded.replace(text, _styled(text, style, True), 1)
            texts.append(padded)
        out.append(f"{left} " + f" {between} ".join(texts) + f" {right}\n")
    return "".join(out)


def _display(text: str) -> str:
    """A value as a cell shows it: control characters but the line break escaped."""
    if not _CONTROL.search(text):
        return text
    return _CONTROL.sub(lambda m: _ESCAPES.get(m.group(), f"\\x{ord(m.group()):02x}"), text)


def _cells_width(text: str) -> int:
    """The widest line of ``text`` in terminal cells (a wide letter takes two)."""
    if text.isascii():
        return max(len(line) for line in text.split("\n"))
    from rich.cells import cell_len

    return max(cell_len(line) for line in text.split("\n"))


def _pad(text: str, width: int, right: bool) -> str:
    room = width - (len(text) if text.isascii() else _cells_width(text))
    return " " * room + text if right else text + " " * room


def _styled(text: str, style: str, styled: bool) -> str:
    return f"{style}{text}{RESET}" if styled and style else text


def _plain(text: str) -> str:
    return text.replace(BOLD, "").replace(DIM, "").replace(RESET, "")
