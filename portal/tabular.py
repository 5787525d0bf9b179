"""Reading uploaded tables and writing safe CSV exports.

One reader for every import of the product (rosters, administrative data,
paper consent forms): CSV in UTF-8 (with or without BOM) or CP932, or XLSX
(first sheet), with the fixed dialect of the import contract
(``../shared/admin-data-formats.md``): comma separated, first line a header.

The encoding is detected strictly, never guessed: the bytes are decoded as
UTF-8, else as CP932, else the file is rejected. Headers are matched by
their Japanese name or English key (after NFKC, ignoring spaces and case).
A missing required column rejects the whole file naming it; unknown columns
are reported once (:attr:`Table.unknown_columns`).

Whole-file problems raise :class:`TabularError`; problems of one row are
:class:`TabularIssue` objects on :attr:`Row.issues`, so a caller can refuse
the row and go on. Both carry a message built with ``lazy_gettext`` (shown in
the reader's language when rendered) plus a stable ``code``, the line and the
column.

Usage::

    COLUMNS = [Column("student_no", "児童生徒番号", required=True), Column("name", "氏名")]
    table = read_table(data, COLUMNS, filename="roster.csv")   # may raise TabularError
    for row in table:                                          # may raise TabularError (bad CSV)
        if row.issues: ...
        row.values["student_no"], row.number, row.line

Exports: :class:`SafeCsvWriter`, the one CSV writer of the application, and
:func:`write_csv` / :func:`csv_text` / :func:`csv_response` built on it,
neutralise spreadsheet formulas (a text cell starting with ``= + - @``, tab or
CR gets a leading apostrophe), so a name like ``=HYPERLINK(...)`` typed into
a form cannot run in the spreadsheet of the staff member who opens the file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from flask_babel import lazy_gettext as _l

__all__ = [
    "DEFAULT_MAX_BYTES",
    "Column",
    "Row",
    "Table",
    "TabularError",
    "SafeCsvWriter",
    "TabularIssue",
    "csv_response",
    "csv_text",
    "dict_rows",
    "neutralise",
    "read_table",
    "render_message",
    "safe_csv_rows",
    "unneutralise",
    "write_csv",
]

#: Largest accepted upload, in bytes (a whole-year file of a large city is far
#: below this). Callers may pass another limit.
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
#: An XLSX is a zip: refuse one that would inflate past this many bytes.
MAX_XLSX_INFLATED = 512 * 1024 * 1024

ENCODING_UTF8 = "utf-8"
ENCODING_UTF8_BOM = "utf-8-sig"
ENCODING_CP932 = "cp932"

_UTF8_BOM = b"\xef\xbb\xbf"
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_NOT_SJIS = re.compile("[\u0080\uf8f0-\uf8f3]")

#: First characters that make a spreadsheet treat a text cell as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


# -- results and errors ---------------------------------------------------------


class TabularError(Exception):
    """The file as a whole is refused.

    ``code`` is stable (for tests and reports), ``message`` is a lazy
    translatable string (``str()`` renders it in the current locale).
    """

    def __init__(self, code: str, message: Any, *, line: int | None = None, column: str | None = None):
        super().__init__(code)
        self.code = code
        self.message = message
        self.line = line
        self.column = column

    def __str__(self) -> str:
        return render_message(self.message)


def render_message(message: Any) -> str:
    """Render a lazy message: in a request, in the reader's language; in a
    command (application context, no request), in the default locale."""
    from flask import current_app, has_app_context, has_request_context
    from flask_babel import force_locale

    if has_request_context() or not has_app_context():
        return str(message)
    with force_locale(current_app.config.get("BABEL_DEFAULT_LOCALE", "ja")):
        return str(message)


@dataclass(frozen=True)
class TabularIssue:
    """A problem with one row (or one cell) that does not refuse the file."""

    code: str
    message: Any
    line: int
    column: str | None = None

    def __str__(self) -> str:
        return render_message(self.message)


@dataclass(frozen=True)
class Column:
    """A column of an import contract.

    ``key`` is the English key (an accepted header alias and the key of
    :attr:`Row.values`); ``header`` the Japanese header; ``aliases`` further
    accepted headers.
    """

    key: str
    header: str
    required: bool = False
    aliases: tuple[str, ...] = ()

    def names(self) -> tuple[str, ...]:
        return (self.header, self.key, *self.aliases)


@dataclass
class Row:
    """One data row: ``number`` is the 1-based data row (header excluded,
    blank rows skipped), ``line`` the 1-based line in the file where the row
    starts (for XLSX, the sheet's row number)."""

    number: int
    line: int
    values: dict[str, str]
    issues: list[TabularIssue] = field(default_factory=list)

    def __getitem__(self, key: str) -> str:
        return self.values.get(key, "")

    def get(self, key: str, default: str = "") -> str:
        return self.values.get(key, default)


@dataclass
class Table:
    """A parsed header plus a one-shot iterator over the data rows."""

    format: str  # "csv" | "xlsx"
    encoding: str | None  # ENCODING_* for CSV, None for XLSX
    sha256: str
    size: int
    columns: dict[str, str]  # key -> header as written in the file
    unknown_columns: list[str]
    header_line: int
    _rows: Iterator[Row] = field(repr=False, default=iter(()))

    def __iter__(self) -> Iterator[Row]:
        return self._rows

    def rows(self) -> Iterator[Row]:
        return self._rows


# -- reading --------------------------------------------------------------------


def _header_key(text: str) -> str:
    text = unicodedata.normalize("NFKC", text or "")
    return "".join(text.split()).casefold()


def _clean(value: str) -> str:
    # Outer ASCII and full-width spaces; the rest is the domain's business.
    return value.strip(" \t\r\n\u3000")


def _read_bytes(source: bytes | bytearray | str | os.PathLike | IO[bytes], max_bytes: int) -> tuple[bytes, str | None]:
    if isinstance(source, bytes | bytearray):
        data = bytes(source)
        if len(data) > max_bytes:
            raise _too_large(max_bytes)
        return data, None
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if path.stat().st_size > max_bytes:
            raise _too_large(max_bytes)
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise _too_large(max_bytes)
        return data, path.name
    data = source.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    return data, getattr(source, "filename", None) or None


def _too_large(max_bytes: int) -> TabularError:
    return TabularError(
        "too_large",
        _l("The file is larger than %(size)s MB and was not read.", size=max(1, max_bytes // (1024 * 1024))),
    )


def detect_encoding(data: bytes) -> tuple[str, str]:
    """Decode CSV bytes strictly: UTF-8 (BOM or not), else CP932, else refuse.

    Returns ``(text, encoding)``; raises :class:`TabularError` code ``encoding``.
    """
    if data.startswith(_UTF16_BOMS) or b"\x00" in data:
        raise _encoding_error()
    if data.startswith(_UTF8_BOM):
        try:
            return data[len(_UTF8_BOM):].decode("utf-8", errors="strict"), ENCODING_UTF8_BOM
        except UnicodeDecodeError:
            raise _encoding_error() from None
    try:
        return data.decode("utf-8", errors="strict"), ENCODING_UTF8
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("cp932", errors="strict")
    except UnicodeDecodeError:
        raise _encoding_error() from None
    # Python's cp932 maps the single bytes 0x80, 0xA0 and 0xFD-0xFF, which
    # are not Shift_JIS at all, to U+0080 and U+F8F0-U+F8F3: such a file is
    # some other encoding, not CP932.
    if _NOT_SJIS.search(text):
        raise _encoding_error()
    return text, ENCODING_CP932


def _encoding_error() -> TabularError:
    return TabularError(
        "encoding",
        _l("The file is neither UTF-8 nor Shift_JIS (CP932) text. Save it as CSV (UTF-8) or as an Excel workbook (.xlsx) and try again."),
    )


def read_table(
    source: bytes | bytearray | str | os.PathLike | IO[bytes],
    columns: Sequence[Column],
    *,
    filename: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    reject_formulas: bool = True,
) -> Table:
    """Read a CSV or XLSX upload against ``columns``.

    ``source`` is the file's bytes, a path, or a binary file object (a
    Werkzeug ``FileStorage`` works). The format is recognised by content (an
    XLSX is a zip), not by name. Raises :class:`TabularError` for a file
    refused as a whole: too large, empty, not text in a known encoding,
    legacy .xls, broken workbook, no header, duplicate or missing required
    column, header only. Rows are read lazily; a CSV broken half-way raises
    :class:`TabularError` (code ``malformed``) from the iterator.

    With ``reject_formulas`` a cell that looks like a spreadsheet formula
    (``=…``, ``@…``, ``+``/``-`` not followed by a number) is reported as an
    issue of its row (code ``formula``).
    """
    data, name = _read_bytes(source, max_bytes)
    filename = filename or name
    digest = hashlib.sha256(data).hexdigest()
    if not data.strip(b" \t\r\n" + _UTF8_BOM):
        raise TabularError("empty", _l("The file is empty."))
    if data.startswith(_OLE_MAGIC):
        raise TabularError("xls", _l("Old Excel files (.xls) are not accepted. Save the sheet as .xlsx or CSV."))
    if data.startswith(_ZIP_MAGIC):
        raw_rows, encoding, fmt = _xlsx_rows(data), None, "xlsx"
    else:
        text, encoding = detect_encoding(data)
        raw_rows, fmt = _csv_rows(text), "csv"

    # Header: the first non-blank row.
    header: list[str] | None = None
    header_line = 0
    for line, cells in raw_rows:
        if any(_clean(c) for c in cells):
            header, header_line = cells, line
            break
    if header is None:
        raise TabularError("empty", _l("The file is empty."))

    lookup: dict[str, Column] = {}
    for col in columns:
        for n in col.names():
            lookup[_header_key(n)] = col
    positions: dict[str, int] = {}
    found: dict[str, str] = {}
    unknown: list[str] = []
    for i, cell in enumerate(header):
        title = _clean(cell)
        if not title:
            continue
        col = lookup.get(_header_key(title))
        if col is None:
            if title not in unknown:
                unknown.append(title)
            continue
        if col.key in positions:
            raise TabularError(
                "duplicate_column",
                _l("The column “%(column)s” appears more than once in the header.", column=col.header),
                line=header_line,
                column=col.header,
            )
        positions[col.key] = i
        found[col.key] = title
    missing = [c for c in columns if c.required and c.key not in positions]
    if missing:
        raise TabularError(
            "missing_column",
            _l("The required column “%(column)s” is missing from the header (line %(line)s).",
               column=missing[0].header, line=header_line),
            line=header_line,
            column=missing[0].header,
        )

    width = len(header)
    keys = [c.key for c in columns]

    def rows() -> Iterator[Row]:
        number = 0
        for line, cells in raw_rows:
            if not any(_clean(c) for c in cells):
                continue
            number += 1
            values = {k: (_clean(cells[positions[k]]) if k in positions and positions[k] < len(cells) else "") for k in keys}
            row = Row(number=number, line=line, values=values)
            if len(cells) > width and any(_clean(c) for c in cells[width:]):
                row.issues.append(TabularIssue(
                    "extra_fields",
                    _l("Line %(line)s has more fields (%(found)s) than the header (%(expected)s).",
                       line=line, found=len(cells), expected=width),
                    line,
                ))
            if reject_formulas:
                for k, pos in positions.items():
                    if pos < len(cells) and looks_like_formula(cells[pos]):
                        header_name = next(c.header for c in columns if c.key == k)
                        row.issues.append(TabularIssue(
                            "formula",
                            _l("Line %(line)s, column “%(column)s”: the cell holds a spreadsheet formula, which is not accepted.",
                               line=line, column=header_name),
                            line,
                            header_name,
                        ))
            yield row

    body = rows()
    first = next(body, None)
    if first is None:
        raise TabularError("header_only", _l("The file has a header but no data rows."), line=header_line)

    def chained() -> Iterator[Row]:
        yield first
        yield from body

    return Table(
        format=fmt,
        encoding=encoding,
        sha256=digest,
        size=len(data),
        columns=found,
        unknown_columns=unknown,
        header_line=header_line,
        _rows=chained(),
    )


def looks_like_formula(value: str) -> bool:
    """True for a cell a spreadsheet would evaluate: ``=…``, ``@…``, or
    ``+``/``-`` followed by something that is not a plain number (so ``-3``
    and ``+81 3 1234`` style numbers pass)."""
    v = value.lstrip(" \u3000")
    if not v:
        return False
    if value[:1] in ("\t", "\r"):
        return len(value.strip()) > 0 and looks_like_formula(value.strip())
    if v[0] in "=@＝＠":
        return True
    if v[0] in "+-＋－":
        rest = unicodedata.normalize("NFKC", v[1:]).replace(" ", "").replace("-", "").replace(".", "")
        return not rest.isdigit() and rest != ""
    return False


def _csv_rows(text: str) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=",", quotechar='"', doublequote=True, strict=False)
    previous_end = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            line = reader.line_num
            raise TabularError(
                "malformed",
                _l("Line %(line)s cannot be read as CSV (check the quotes).", line=line),
                line=line,
            ) from exc
        start = previous_end + 1
        previous_end = reader.line_num
        yield start, cells


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        if value.time() == time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def _xlsx_rows(data: bytes) -> Iterator[tuple[int, list[str]]]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            inflated = sum(i.file_size for i in zf.infolist())
            names = set(zf.namelist())
    except zipfile.BadZipFile:
        raise _bad_xlsx() from None
    if "xl/workbook.xml" not in names:
        raise _bad_xlsx()
    if inflated > MAX_XLSX_INFLATED:
        raise TabularError("too_large", _l("The workbook is too large once unpacked and was not read."))

    import openpyxl  # imported here: only uploads of workbooks need it

    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Exception as exc:  # openpyxl raises many kinds for a broken file
        raise _bad_xlsx() from exc
    if not wb.worksheets:
        wb.close()
        raise TabularError("empty", _l("The file is empty."))
    ws = wb.worksheets[0]

    def gen() -> Iterator[tuple[int, list[str]]]:
        try:
            for index, values in enumerate(ws.iter_rows(values_only=True), start=1):
                yield index, [_cell_text(v) for v in values]
        finally:
            wb.close()

    return gen()


def _bad_xlsx() -> TabularError:
    return TabularError("xlsx", _l("The file looks like an Excel workbook but cannot be opened."))


# -- writing --------------------------------------------------------------------


def neutralise(value: Any) -> Any:
    """A cell safe to open in a spreadsheet.

    Text starting with ``= + - @``, tab or CR gets a leading apostrophe;
    ``None`` becomes ``""``; numbers (int, float, Decimal) are kept as they
    are (a negative number is not a formula); dates become ISO text.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float | Decimal):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    text = str(value)
    if _formula_like(text):
        return "'" + text
    return text


def _formula_like(text: str) -> bool:
    """Text a spreadsheet may read as a formula: a formula prefix, also after
    leading spaces or in its full-width form (＝, ＋, －, ＠: Japanese input)."""
    if text.startswith(FORMULA_PREFIXES):
        return True
    probe = unicodedata.normalize("NFKC", text).lstrip(" \u3000")
    return probe.startswith(FORMULA_PREFIXES)


def safe_csv_rows(rows: Iterable[Iterable[Any]]) -> Iterator[list[Any]]:
    """Each row with every cell passed through :func:`neutralise`."""
    for row in rows:
        yield [neutralise(v) for v in row]


class SafeCsvWriter:
    """The one CSV writer of the application: comma, CRLF, every cell passed
    through :func:`neutralise`. Every CSV the application writes (downloads,
    exports, the HSDS tables) goes through it; a test fails on any other use
    of ``csv.writer`` / ``csv.DictWriter`` in the application packages."""

    def __init__(self, fh: IO[str]):
        self._w = csv.writer(fh, delimiter=",", quotechar='"', lineterminator="\r\n")

    def writerow(self, row: Iterable[Any]) -> None:
        self._w.writerow([neutralise(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> int:
        n = 0
        for row in rows:
            self.writerow(row)
            n += 1
        return n


def dict_rows(columns: Sequence[str], rows: Iterable[dict]) -> Iterator[list[Any]]:
    """Dicts as rows in ``columns`` order (missing keys empty, extra keys ignored),
    as ``csv.DictWriter(extrasaction="ignore")`` would write them."""
    for row in rows:
        yield [row.get(c) for c in columns]


def csv_text(header: Sequence[str] | None, rows: Iterable[Iterable[Any]], *, bom: bool = False) -> str:
    """A whole CSV export as text (neutralised; see :class:`SafeCsvWriter`)."""
    buf = io.StringIO()
    if bom:
        buf.write("\ufeff")
    _write(buf, header, rows)
    return buf.getvalue()


def unneutralise(value: str) -> str:
    """A cell read back from one of our exports: the apostrophe :func:`neutralise`
    put before a formula-like text is taken off again (for round trips such as
    the HSDS tables)."""
    if value.startswith("'") and _formula_like(value[1:]):
        return value[1:]
    return value


def write_csv(
    target: str | os.PathLike | IO[str],
    header: Sequence[str] | None,
    rows: Iterable[Iterable[Any]],
    *,
    bom: bool = True,
) -> int:
    """Write a CSV export (comma, CRLF, UTF-8; with a BOM by default so
    spreadsheet programs read the Japanese correctly). Cells are neutralised.
    Returns the number of data rows written. ``target`` is a path or a text
    stream (open it with ``newline=""``)."""
    if isinstance(target, str | os.PathLike):
        # An export may hold personal data: readable by its owner only.
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as fh:
            return _write(fh, header, rows)
    if bom:
        target.write("\ufeff")
    return _write(target, header, rows)


def _write(fh: IO[str], header: Sequence[str] | None, rows: Iterable[Iterable[Any]]) -> int:
    writer = SafeCsvWriter(fh)
    if header is not None:
        writer.writerow(header)
    return writer.writerows(rows)


def csv_response(filename: str, header: Sequence[str] | None, rows: Iterable[Iterable[Any]]):
    """A Flask download response for a (neutralised) CSV export, streamed."""
    from urllib.parse import quote

    from flask import Response

    def generate() -> Iterator[str]:
        buf = io.StringIO()
        writer = SafeCsvWriter(buf)
        buf.write("\ufeff")
        if header is not None:
            writer.writerow(header)
        for row in rows:
            writer.writerow(row)
            if buf.tell() > 65536:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()

    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    return Response(
        generate(),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}",
            "X-Content-Type-Options": "nosniff",
        },
    )
