"""Read and write traces: ``.jsonl``, ``.jsonl.gz``, ``.parquet``, or a run directory.

Readers fail with one ``InputError`` naming file, line and problem; they never let a
JSON or Arrow exception escape. Writers emit canonical JSON lines (so a written file
hashes line by line) and a ``<file>.head.json`` sidecar pinning the chain's last hash.
"""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any, Iterable, Iterator

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from inspectorate.errors import InputError
from inspectorate.trace._canonical import GENESIS, canonical_json, record_hash
from inspectorate.trace._frame import FRAME_SCHEMA, frame_from_records, records_from_frame, with_derived
from inspectorate.trace._schema import FIELDS, SCHEMA_NAME, SCHEMA_VERSION, RecordError, parse_time, validate_record
from inspectorate.trace._trace import Trace

RUN_DIR_TRACE = "windows.jsonl"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed (NaN/Infinity are not JSON numbers)")


def _open_text(path: Path):
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


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
    sidecar = path.with_name(path.name + ".head.json")
    if not sidecar.exists():
        return None
    try:
        head = json.loads(sidecar.read_text())["head"]
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise InputError(f"unreadable head sidecar ({_short(exc)})", sidecar) from None
    if not (isinstance(head, str) and len(head) == 64):
        raise InputError("head must be a 64-character hex string", sidecar)
    return head


def read_trace(path: str | Path, head: str | None = None) -> Trace:
    """Read a trace file or run directory; ``head`` overrides any sidecar."""
    path = Path(path)
    if path.is_dir():
        candidate = path / RUN_DIR_TRACE
        if not candidate.exists():
            raise InputError(f"run directory has no {RUN_DIR_TRACE}", path)
        path = candidate
    if not path.exists():
        raise InputError("no such file", path)
    head = head if head is not None else read_head(path)
    if path.suffix == ".parquet":
        trace = _read_parquet(path)
    else:
        trace = _read_jsonl(path)
    trace.head = head
    return trace


def _read_jsonl(path: Path) -> Trace:
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


def _read_parquet(path: Path) -> Trace:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"not a readable Parquet file ({_short(exc)})", path) from None
    missing = [name for name in FIELDS if name not in table.column_names]
    if missing:
        raise InputError(f"missing column(s): {', '.join(missing)}", path)
    if table.num_rows == 0:
        raise InputError("empty trace (no records)", path)
    frame = pl.from_arrow(table)
    if "_extra" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Utf8).alias("_extra"))
    try:
        frame = frame.select([pl.col(n).cast(t, strict=True) for n, t in FRAME_SCHEMA.items()])
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"wrong column type ({_short(exc)})", path) from None
    return Trace(_checked(frame, path), None, str(path))


def _checked(frame: pl.DataFrame, path: Path) -> pl.DataFrame:
    """Column-wise version of validate_record: nulls, NaN/inf, negatives, bad times."""
    nulls = frame.select([pl.col(n).is_null().arg_max().alias(n) for n in FIELDS]).row(0)
    for name, first in zip(FIELDS, nulls):
        if frame[name][first] is None:
            raise InputError(f"row {first}: field {name!r} is null", path)
    bad = frame.select(pl.col("flops").is_finite().not_().arg_max()).item()
    if not math.isfinite(frame["flops"][bad]):
        raise InputError(f"row {bad}: field 'flops' is not finite", path)
    for name in ("flops", "tokens_processed", "batch_size", "sequence_length"):
        first = frame.select((pl.col(name) < 0).arg_max()).item()
        if frame[name][first] < 0:
            raise InputError(f"row {first}: field {name!r} must be >= 0", path)
    derived = with_derived(frame)
    for name, col in (("window_start", "ws"), ("window_end", "we")):
        first = derived.select(pl.col(col).is_null().arg_max()).item()
        if derived[col][first] is None:
            raise InputError(f"row {first}: not an ISO 8601 timestamp: {frame[name][first]!r}", path)
    first = derived.select((pl.col("we") < pl.col("ws")).arg_max()).item()
    if derived["we"][first] < derived["ws"][first]:
        raise InputError(f"row {first}: window_end is before window_start", path)
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
        head = record_hash(_last_record(trace)) if len(trace) else GENESIS
        sidecar = path.with_name(path.name + ".head.json")
        sidecar.write_text(json.dumps({"head": head, "records": len(trace), "schema": f"{SCHEMA_NAME}/{SCHEMA_VERSION}"}) + "\n")
    return path


def _last_record(trace: Trace) -> dict[str, Any]:
    if trace._records is not None:
        return trace._records[-1]
    return records_from_frame(trace.frame.tail(1))[0]


def _write_parquet(trace: Trace, path: Path) -> None:
    frame = trace.frame.select([pl.col(n).cast(t) for n, t in FRAME_SCHEMA.items()])
    table = frame.to_arrow()
    meta = {b"inspectorate.schema": f"{SCHEMA_NAME}/{SCHEMA_VERSION}".encode()}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})
    pq.write_table(table, path, compression="zstd")
