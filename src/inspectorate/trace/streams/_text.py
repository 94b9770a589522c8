"""Shared reading helpers for tool output: text and gzip lines, wall-clock times, numeric
cells with units and ``[N/A]``, JSON-object lines. Errors name the file and line."""

from __future__ import annotations

import gzip
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from inspectorate.errors import InputError
from inspectorate.trace._io import iter_jsonl

NA = frozenset({"", "n/a", "[n/a]", "na", "[not supported]", "not supported", "[unknown error]", "-"})
_UNIT = re.compile(r"\s*(%|mib|mb|gib|w|mhz|c|kb/s|b/s)$", re.IGNORECASE)
_HEADER_UNIT = re.compile(r"\s*\[[^\]]*\]\s*$")


def _open_text(path: Path) -> io.TextIOBase:
    """Text handle on a plain or gzip file; unreadable input is an InputError."""
    try:
        if path.name.endswith(".gz"):
            return gzip.open(path, "rt", encoding="utf-8", errors="replace")
        return open(path, encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", path) from None


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line without newline); a broken gzip is an InputError."""
    with _open_text(Path(path)) as handle:
        try:
            for number, line in enumerate(handle, 1):
                yield number, line.rstrip("\r\n")
        except (OSError, EOFError) as exc:
            raise InputError(f"cannot read ({exc})", path) from None


def parse_wallclock(text: str, tz_offset_s: float = 0.0) -> float | None:
    """Epoch seconds from an epoch number or a date-time string; None if neither.

    Accepts ``1745912420.99``, ``2026/04/29 07:20:20.991`` (nvidia-smi),
    ``2026-04-29 07:20:20``, ``2026-04-29T07:20:20.123456Z`` and explicit offsets.
    """
    text = text.strip().strip("[]").strip()
    if re.fullmatch(r"\d{9,11}(\.\d+)?", text):
        return float(text)
    norm = text.replace("/", "-", 2).replace("Z", "+00:00")
    frac = re.search(r"\.(\d+)", norm)
    if frac and len(frac.group(1)) != 6:  # fromisoformat wants 3 or 6 digits on 3.11
        norm = norm.replace(frac.group(0), "." + (frac.group(1) + "000000")[:6], 1)
    try:
        moment = datetime.fromisoformat(norm)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC).timestamp() - tz_offset_s
    return moment.timestamp()


def _number(cell: str, path: Path, line: int, column: str) -> float | None:
    """A numeric cell with optional unit; N/A-like cells are null."""
    text = cell.strip()
    if text.lower() in NA:
        return None
    try:
        return float(_UNIT.sub("", text))
    except ValueError:
        raise InputError(f"column {column!r}: not a number: {cell.strip()!r}", path, line) from None


def _time(cell: str, path: Path, line: int, tz_offset_s: float) -> float:
    t = parse_wallclock(cell, tz_offset_s)
    if t is None:
        raise InputError(f"not a timestamp: {cell.strip()!r}", path, line)
    return t


@dataclass
class ToolCsv:
    """A tool's CSV read column-wise: every cell a string (Polars), the header lower-cased
    with ``[unit]`` suffixes removed, and each row's 1-based line number for error messages."""

    path: Path
    header: list[str]
    header_line: int
    cells: pl.DataFrame
    lines: pl.Series

    def floats(self, column: str, name: str | None = None) -> pl.Series:
        """The column as Float64: units stripped, N/A-like cells null, anything else an error."""
        raw = self.cells[column].str.strip_chars()
        missing = raw.is_null() | raw.str.to_lowercase().is_in(list(NA))
        values = raw.str.replace(f"(?i){_UNIT.pattern}", "").cast(pl.Float64, strict=False)
        self._first_bad(~missing & values.is_null(), column, "not a number")
        return values.set(missing, None).alias(name or column)

    def times(self, column: str, tz_offset_s: float = 0.0) -> pl.Series:
        """Epoch seconds from epoch numbers or wall-clock strings (see ``parse_wallclock``)."""
        raw = self.cells[column].str.strip_chars().fill_null("")
        epoch = raw.cast(pl.Float64, strict=False)
        if epoch.null_count():  # wall-clock text: parse each distinct value once
            parsed = {v: parse_wallclock(v, tz_offset_s) for v in raw.unique().to_list()}
            epoch = raw.replace_strict(parsed, return_dtype=pl.Float64)
        self._first_bad(epoch.is_null(), column, "not a timestamp")
        return epoch.alias("t")

    def _first_bad(self, bad: pl.Series, column: str, what: str) -> None:
        if bad.any():
            row = int(bad.arg_true()[0])
            cell = (self.cells[column][row] or "").strip()
            raise InputError(f"column {column!r}: {what}: {cell!r}", self.path, int(self.lines[row]))


def read_tool_csv(path: Path) -> ToolCsv:
    """Parse a tool's CSV with Polars. Blank lines, ``#`` comments and headers repeated by a
    restarted logger are skipped; a row with the wrong number of cells is an InputError
    naming its line."""
    header_text: str | None = None
    header_line, kept, numbers = 0, list[str](), list[int]()
    for number, text in _lines(path):
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if header_text is None:
            header_text, header_line = stripped, number
        elif stripped.lower() != header_text.lower():
            kept.append(text)
            numbers.append(number)
    if header_text is None:
        raise InputError("empty file: no header", path)
    header = [_HEADER_UNIT.sub("", h.strip()).lower() for h in _split_header(header_text)]
    lines = pl.Series("line", numbers, dtype=pl.Int64)
    rows = pl.Series("text", kept, dtype=pl.Utf8)
    # tool output never quotes a comma; a quoted row is left to the CSV parser (which refuses extra cells)
    width = rows.str.count_matches(",") + 1
    wrong = (width != len(header)) & ~rows.str.contains('"', literal=True)
    if wrong.any():
        row = int(wrong.arg_true()[0])
        raise InputError(f"expected {len(header)} columns, found {width[row]}", path, int(lines[row]))
    if not kept:
        return ToolCsv(path, header, header_line, pl.DataFrame(schema=dict.fromkeys(header, pl.Utf8)), lines)
    try:
        cells = pl.read_csv(
            io.StringIO("\n".join(kept) + "\n"), has_header=False, new_columns=header, infer_schema=False
        )
    except (pl.exceptions.PolarsError, ValueError) as exc:
        raise InputError(f"not a CSV table ({str(exc).splitlines()[0][:120]})", path) from None
    return ToolCsv(path, header, header_line, cells, lines)


def _split_header(text: str) -> list[str]:
    return [
        str(cell or "")
        for cell in pl.read_csv(io.StringIO(text + "\n"), has_header=False, infer_schema=False).row(0)
    ]


def _frame(columns: dict[str, list[Any]], schema: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(columns, schema=schema, strict=False)


def _objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if not path.exists():
        raise InputError("no such file", path)
    for number, obj in iter_jsonl(path):
        if not isinstance(obj, dict):
            raise InputError("each line must be a JSON object", path, number)
        yield number, obj
