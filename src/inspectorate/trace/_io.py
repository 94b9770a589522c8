"""Read and write traces: ``.jsonl``, ``.jsonl.gz``, ``.parquet``, or a run directory.

Readers fail with one ``InputError`` naming file, line and problem; they never let a
JSON or Arrow exception escape. Writers emit canonical JSON lines (so a written file
hashes line by line) and a ``<file>.head.json`` sidecar pinning the chain's last hash.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from inspectorate.errors import InputError
from inspectorate.trace._canonical import GENESIS, canonical_json, record_hash
from inspectorate.trace._frame import (
    CATEGORICAL,
    FRAME_SCHEMA,
    epoch_seconds,
    fast_epoch,
    frame_from_records,
    with_derived,
)
from inspectorate.trace._layouts import LAYOUTS

if TYPE_CHECKING:
    import pyarrow.parquet as pq  # imported where Parquet is read or written: half of
    # pyarrow's import cost (its file systems, ssl), which a JSONL check does not need
from inspectorate.trace._schema import (
    FIELDS,
    INT_FIELDS,
    LIST_FIELDS,
    SCHEMA_NAME,
    SCHEMA_VERSION,
    RecordError,
    parse_time,
    validate_record,
)
from inspectorate.trace._trace import Trace

RUN_DIR_TRACE = "windows.jsonl"
PARTITIONED_MANIFEST = "manifest.json"  # a partitioned layout (inspectorate.scale)
LAYOUTS.register_lazy("partitioned", PARTITIONED_MANIFEST, "inspectorate.scale._layout")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed (NaN/Infinity are not JSON numbers)")


def _open_text(path: Path):
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig")
    return open(path, encoding="utf-8-sig")  # tolerate a byte-order mark before the first record


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; InputError on the first bad one."""
    try:
        with _open_text(path) as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line, parse_constant=_reject_constant)
                except ValueError as exc:
                    raise InputError(f"not valid JSON ({_short(exc)})", path, number) from None
                yield number, obj
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read ({_short(exc)})", path) from None


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__


def read_head(path: Path) -> str | None:
    """The published chain head from ``<path>.head.json`` if present."""
    return read_head_sidecar(path)[0]


def read_head_sidecar(path: Path) -> tuple[str | None, int | None]:
    """(head, records it covers) from ``<path>.head.json``; (None, None) without one.
    The count is optional (a head published out of band has none)."""
    sidecar = path.with_name(path.name + ".head.json")
    if not sidecar.exists():
        return None, None
    try:
        data = json.loads(sidecar.read_text())
        head, count = data["head"], data.get("records")
    except (ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise InputError(f"unreadable head sidecar ({_short(exc)})", sidecar) from None
    if not (isinstance(head, str) and len(head) == 64 and all(c in HEX for c in head)):
        raise InputError("head must be 64 hex digits (a SHA-256)", sidecar)
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        raise InputError(f"records must be a count >= 0, got {count!r}", sidecar)
    return head.lower(), count


HEX = frozenset("0123456789abcdefABCDEF")


def read_trace(path: str | Path, head: str | None = None) -> Trace:
    """Read a trace file, a run directory or a partitioned layout; ``head`` overrides any
    sidecar (a layout's own roots are checked by ``trace verify-chain``)."""
    path = Path(path)
    layout = LAYOUTS.match(path)
    if layout is not None:  # a layout a higher layer owns (registered, not imported here)
        trace = LAYOUTS.reader(layout.name)(path)
        trace.head = head
        return trace
    if path.is_dir():
        candidate = path / RUN_DIR_TRACE
        if not candidate.exists():
            raise InputError(f"run directory has no {RUN_DIR_TRACE}", path)
        path = candidate
    if not path.exists():
        raise InputError("no such file", path)
    published, covers = read_head_sidecar(path) if head is None else (head, None)
    if path.suffix == ".parquet":
        trace = _read_parquet(path)
    else:
        trace = _read_jsonl(path)
    trace.head, trace.head_records = published, covers
    return trace


def _read_jsonl(path: Path) -> Trace:
    from inspectorate.trace._jsonl import read_jsonl_columns

    fast = read_jsonl_columns(path)
    return fast if fast is not None else _read_jsonl_lines(path)


def _read_jsonl_lines(path: Path) -> Trace:
    """Line by line with json: the reference behaviour, and the one that names bad lines."""
    records, times = [], []
    for number, record in iter_jsonl(path):
        try:
            validate_record(record)
            times.append((parse_time(record["window_start"]), parse_time(record["window_end"])))
        except RecordError as exc:
            raise InputError(str(exc), path, number) from None
        records.append(record)
    if not records:
        raise InputError("empty trace (no records)", path)
    return Trace(frame_from_records(records, times), records, str(path))


LEAN_ABOVE = 1_000_000  # rows; smaller traces keep every column in memory


def _open_parquet(path: Path, stream: bool = False) -> pq.ParquetFile:
    """Open and vet a Parquet trace. ``stream``: read column chunks through a 1 MiB buffer
    instead of pre-buffering whole row groups (the streamed chain's peak at 10^7 records:
    2.13 -> 1.70 GB, same speed)."""
    import pyarrow.parquet as pq

    try:
        handle = pq.ParquetFile(path, pre_buffer=not stream, buffer_size=(1 << 20) if stream else 0)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"not a readable Parquet file ({_short(exc)})", path) from None
    missing = [name for name in FIELDS if name not in handle.schema_arrow.names]
    if missing:
        raise InputError(f"missing column(s): {', '.join(missing)}", path)
    if handle.metadata.num_rows == 0:
        raise InputError("empty trace (no records)", path)
    for name in [n for n in (*FIELDS, "_extra") if n in handle.schema_arrow.names]:
        stored = handle.schema_arrow.field(name).type
        if not _storable(name, stored):
            raise InputError(f"wrong column type: {name!r} is stored as {stored}", path)
    return handle


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)


def _storable(name: str, kind: pa.DataType) -> bool:
    """Whether a column's storage type holds the field's JSON type (text is not a number:
    a cast would accept "1e15" where the line reader rejects a string)."""
    if pa.types.is_null(kind):  # all null: the null check names the row
        return True
    if name in INT_FIELDS:
        return pa.types.is_integer(kind)
    if name == "flops":
        return pa.types.is_integer(kind) or pa.types.is_floating(kind)
    if name in LIST_FIELDS:
        listed = pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_list_view(kind)
        return listed and (_is_text(kind.value_type) or pa.types.is_null(kind.value_type))
    return _is_text(kind)


def _typed(batch: pa.Table | pa.RecordBatch, path: Path, columns: list[str]) -> pl.DataFrame:
    frame = pl.DataFrame(pl.from_arrow(batch))
    if "_extra" in columns and "_extra" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Utf8).alias("_extra"))
    try:
        return frame.select([pl.col(n).cast(FRAME_SCHEMA[n], strict=True) for n in columns])
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"wrong column type ({_short(exc)})", path) from None


def stored_columns(handle: pq.ParquetFile, wanted=FRAME_SCHEMA) -> list[str]:
    """The wanted columns the file has (``_extra`` is optional on disk)."""
    return [n for n in wanted if n in handle.schema_arrow.names]


def iter_parquet_chunks(path: Path, rows: int = 50_000) -> Iterator[pl.DataFrame]:
    """Every schema column, in file order, ``rows`` at a time (for the chain)."""
    yield from iter_parquet_columns(path, list(FRAME_SCHEMA), rows)


def iter_parquet_columns(path: Path, columns: list[str], rows: int = 500_000) -> Iterator[pl.DataFrame]:
    """Some schema columns, typed, in file order, ``rows`` at a time."""
    handle = _open_parquet(path, stream=True)
    for batch in handle.iter_batches(batch_size=rows, columns=stored_columns(handle, columns)):
        yield _typed(batch, path, columns)


def read_parquet_frame(path: Path, last_only: bool = False) -> pl.DataFrame:
    """The full typed frame (every column), or just its last row."""
    handle = _open_parquet(path)
    names = stored_columns(handle)
    if last_only:  # the last row group holds the last row: no need to read the rest
        table = handle.read_row_group(handle.num_row_groups - 1, columns=names)
        return _checked(_typed(table.slice(table.num_rows - 1), path, list(FRAME_SCHEMA)), path)
    # Polars' own reader: Arrow's would leave its decoded pages in its allocator
    # (0.9 GB resident for a 0.25 GB frame at 10^6 records).
    lazy = _scan_typed(path, names)
    if "_extra" not in names:
        lazy = lazy.with_columns(pl.lit(None, dtype=pl.Utf8).alias("_extra"))
    return _checked(_collect(lazy, path), path)


def _scan_typed(path: Path, names: list[str]) -> pl.LazyFrame:
    """Polars' streaming scan of some stored columns, cast to the frame's types."""
    return pl.scan_parquet(path).select([pl.col(n).cast(FRAME_SCHEMA[n], strict=True) for n in names])


def _collect(lazy: pl.LazyFrame, path: Path) -> pl.DataFrame:
    try:
        return lazy.collect(engine="streaming")
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"wrong column type ({_short(exc)})", path) from None


def _read_parquet(path: Path) -> Trace:
    """Small files: every column in memory. Large files: the rule columns only (lean)."""
    handle = _open_parquet(path)
    if handle.metadata.num_rows <= LEAN_ABOVE:
        return Trace(read_parquet_frame(path), None, str(path), backing=path)
    return Trace(_read_lean(path, handle), None, str(path), backing=path)


# What a lean frame leaves on disk: the chain's and the rebuild's columns (prev hashes,
# ``_extra``), the timestamp strings (``ws``/``we`` stay) and the refs (the DAG rule
# streams them; ``n_refs`` stays).
_LEAN_DROPPED = ("prev_record_hash", "_extra", "window_start", "window_end", "upstream_refs")


def _read_lean(path: Path, handle: pq.ParquetFile) -> pl.DataFrame:
    """The rule columns of a large file in one streaming Polars scan: typed, validated
    by columns (the first bad row is re-read and explained exactly as the full reader
    would), categorical identities, ``n_refs`` for the refs."""
    names = stored_columns(handle, [n for n in FRAME_SCHEMA if n != "_extra"])
    lazy = (
        _scan_typed(path, names)
        .with_row_index("row")
        .with_columns(
            fast_epoch(pl.col("window_start")).alias("ws"),
            fast_epoch(pl.col("window_end")).alias("we"),
            _bad_values().alias("_bad"),
            pl.col("upstream_refs").list.len().alias("n_refs"),
            pl.col("data_source_tags").cast(pl.List(pl.Categorical)),
            *[pl.col(name).cast(pl.Categorical) for name in CATEGORICAL],
        )
        .drop([n for n in _LEAN_DROPPED if n in names])
    )
    frame = _slow_times(path, _collect(lazy, path))
    bad = frame["_bad"] | frame["ws"].is_null() | frame["we"].is_null() | (frame["we"] < frame["ws"])
    if bad.any():
        _explain_row(path, int(bad.arg_max()))  # type: ignore[arg-type]
    return frame.drop("_bad")


def _bad_values() -> pl.Expr:
    """What ``_checked`` rejects besides times: nulls, non-finite flops, negatives."""
    nulls = pl.any_horizontal([pl.col(n).is_null() for n in FIELDS])
    negative = pl.any_horizontal(
        [pl.col(n) < 0 for n in ("flops", "tokens_processed", "batch_size", "sequence_length")]
    )
    return nulls | pl.col("flops").is_finite().not_() | negative


def _slow_times(path: Path, frame: pl.DataFrame) -> pl.DataFrame:
    """Parse the timestamps the fast path left null (other ISO spellings) with parse_time."""
    slow = frame.filter(pl.col("ws").is_null() | pl.col("we").is_null())["row"]
    if slow.len() == 0:
        return frame
    strings = (
        pl.scan_parquet(path)
        .with_row_index("row")
        .filter(pl.col("row").is_in(slow.implode()))
        .select("row", "window_start", "window_end")
        .collect()
    )
    fixed = strings.select(
        "row",
        epoch_seconds(strings["window_start"]).alias("_ws"),
        epoch_seconds(strings["window_end"]).alias("_we"),
    )
    joined = frame.join(fixed, on="row", how="left", maintain_order="left")
    return joined.with_columns(
        pl.col("ws").fill_null(pl.col("_ws")), pl.col("we").fill_null(pl.col("_we"))
    ).drop("_ws", "_we")


def _explain_row(path: Path, row: int) -> None:
    """Raise the full reader's one-line error for ``row`` (it failed a column check)."""
    one = pl.scan_parquet(path).slice(row, 1).collect()
    _checked(_typed(one.to_arrow(), path, list(FRAME_SCHEMA)), path, row)
    raise InputError(f"row {row}: invalid record", path)


def _checked(frame: pl.DataFrame, path: Path, offset: int = 0) -> pl.DataFrame:
    """Column-wise version of validate_record: nulls, NaN/inf, negatives, bad times."""
    present = [n for n in FIELDS if n in frame.columns]
    nulls = frame.select([pl.col(n).is_null().arg_max().alias(n) for n in present]).row(0)
    for name, first in zip(present, nulls):
        if frame[name][first] is None:
            raise InputError(f"row {offset + first}: field {name!r} is null", path)
    bad = frame.select(pl.col("flops").is_finite().not_().arg_max()).item()
    if not math.isfinite(frame["flops"][bad]):
        raise InputError(f"row {offset + bad}: field 'flops' is not finite", path)
    for name in ("flops", "tokens_processed", "batch_size", "sequence_length"):
        first = frame.select((pl.col(name) < 0).arg_max()).item()
        if frame[name][first] < 0:
            raise InputError(f"row {offset + first}: field {name!r} must be >= 0", path)
    derived = with_derived(frame)
    for name, col in (("window_start", "ws"), ("window_end", "we")):
        first = derived.select(pl.col(col).is_null().arg_max()).item()
        if derived[col][first] is None:
            raise InputError(f"row {offset + first}: not an ISO 8601 timestamp: {frame[name][first]!r}", path)
    first = derived.select((pl.col("we") < pl.col("ws")).arg_max()).item()
    if derived["we"][first] < derived["ws"][first]:
        raise InputError(f"row {offset + first}: window_end is before window_start", path)
    return derived


def write_trace(trace: Trace | Iterable[dict[str, Any]], path: str | Path, head_sidecar: bool = True) -> Path:
    """Write records as canonical JSONL (``.jsonl``/``.jsonl.gz``) or Parquet.

    Records are written as they are (their ``prev_record_hash`` untouched); call
    ``rechain`` first if they were mutated. The sidecar records the chain head.
    """
    path = Path(path)
    trace = trace if isinstance(trace, Trace) else Trace.from_records(list(trace))
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        _write_parquet(trace, path)
    else:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "wt", encoding="utf-8") as handle:
            for record in trace.records:
                handle.write(canonical_json(record) + "\n")
    if head_sidecar:
        head = record_hash(trace.last_record()) if len(trace) else GENESIS
        sidecar = path.with_name(path.name + ".head.json")
        sidecar.write_text(
            json.dumps({"head": head, "records": len(trace), "schema": f"{SCHEMA_NAME}/{SCHEMA_VERSION}"})
            + "\n"
        )
    return path


def _write_parquet(trace: Trace, path: Path) -> None:
    frame = trace.full_frame().select([pl.col(n).cast(t) for n, t in FRAME_SCHEMA.items()])
    table = frame.to_arrow()
    meta = {b"inspectorate.schema": f"{SCHEMA_NAME}/{SCHEMA_VERSION}".encode()}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})
    import pyarrow.parquet as pq

    pq.write_table(table, path, compression="zstd")
