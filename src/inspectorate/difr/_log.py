"""The serving log: what a server claims it generated, in a form a verifier can re-compute.

JSON Lines, no pickles. Line 1 is the header; every further line is one sequence::

    {"format": "inspectorate.difr.serving-log", "version": 1,
     "model_hash": "sha256:<16 hex>", "vocab": "<chars>", "vocab_size": 65, "precision": "float32",
     "sampling": {"temperature": 0.8, "top_k": 40, "top_p": null, "seed": 1234},
     "projection": {"seed": 7, "seed_commitment": "sha256:<64 hex>", "layer": 1, "dim": 8} | null,
     "server": {...free-form, never trusted...}}
    {"index": 0, "prompt": [ids], "tokens": [ids], "projections": [[dim floats] per token] | null}

``seed`` is the sampling seed when the server declares one: Token-DiFR regenerates the
Gumbel noise of sequence ``index``, position ``j`` from it. The projection seed is the
verifier's: it publishes ``seed_commitment`` (SHA-256 of the seed's decimal string) before
serving and hands the seed to the server, so neither side can pick it after the fact.
Any server can write a log with :class:`LogWriter`; :func:`read_log` validates every line.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from inspectorate.errors import InputError

FORMAT = "inspectorate.difr.serving-log"
VERSION = 1
PRECISIONS = ("float32", "bfloat16")


@dataclass(frozen=True)
class SamplingConfig:
    """Temperature (0 = greedy), optional top-k / top-p filters, and the declared seed."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise InputError(f"temperature must be finite and >= 0, got {self.temperature!r}")
        if self.top_k is not None and self.top_k < 1:
            raise InputError(f"top_k must be >= 1, got {self.top_k!r}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise InputError(f"top_p must be in (0, 1], got {self.top_p!r}")


@dataclass(frozen=True)
class ProjectionSpec:
    """Which activations are projected, how many dimensions, from which verifier seed."""

    seed: int
    layer: int
    dim: int
    seed_commitment: str = ""

    def __post_init__(self) -> None:
        if self.dim < 1 or self.layer < 0:
            raise InputError("projection dim must be >= 1 and layer >= 0")
        if not self.seed_commitment:
            object.__setattr__(self, "seed_commitment", commit_seed(self.seed))
        elif self.seed_commitment != commit_seed(self.seed):
            raise InputError("projection seed does not match its commitment")


def commit_seed(seed: int) -> str:
    """The verifier's published commitment to a projection seed."""
    return "sha256:" + hashlib.sha256(str(int(seed)).encode()).hexdigest()


@dataclass(frozen=True)
class LogHeader:
    model_hash: str
    vocab: str
    sampling: SamplingConfig
    precision: str = "float32"
    projection: ProjectionSpec | None = None
    server: dict[str, Any] = field(default_factory=dict)
    vocab_size: int = 0  # the model's output width (>= len(vocab)); 0 means len(vocab)

    def __post_init__(self) -> None:
        if not self.vocab_size:
            object.__setattr__(self, "vocab_size", len(self.vocab))
        if self.vocab_size < len(self.vocab):
            raise InputError("vocab_size is smaller than the vocabulary")

    @property
    def n_ids(self) -> int:
        return self.vocab_size

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "model_hash": self.model_hash,
            "vocab": self.vocab,
            "vocab_size": self.n_ids,
            "precision": self.precision,
            "sampling": asdict(self.sampling),
            "projection": asdict(self.projection) if self.projection else None,
            "server": self.server,
        }


@dataclass(frozen=True)
class SequenceRecord:
    """One served sequence: prompt ids, generated ids and (optionally) projections."""

    index: int
    prompt: tuple[int, ...]
    tokens: tuple[int, ...]
    projections: tuple[tuple[float, ...], ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "prompt": list(self.prompt),
            "tokens": list(self.tokens),
            "projections": [list(p) for p in self.projections] if self.projections is not None else None,
        }


@dataclass(frozen=True)
class ServingLog:
    header: LogHeader
    sequences: tuple[SequenceRecord, ...]


class LogWriter:
    """Append sequences to a serving log; usable from any server (no torch needed)."""

    def __init__(self, path: Path | str, header: LogHeader) -> None:
        self.path = Path(path)
        self.header = header
        self._seen: set[int] = set()
        # what read_log would refuse in a header is refused before the file is opened
        if header.precision not in PRECISIONS:
            raise InputError(f"precision must be one of {PRECISIONS}", self.path)
        first = _dumps(header.to_dict(), self.path)
        self._fh: IO[str] = open(self.path, "w", encoding="utf-8")
        self._fh.write(first)

    def write(self, record: SequenceRecord) -> None:
        _check_sequence(record, self.header, self.path, None)
        if record.projections is not None and not all(
            math.isfinite(v) for row in record.projections for v in row
        ):
            raise InputError(f"sequence {record.index}: projections must be finite", self.path)
        if record.index in self._seen:
            raise InputError(f"sequence index {record.index} written twice", self.path)
        self._seen.add(record.index)
        self._line(record.to_dict())

    def _line(self, obj: dict[str, Any]) -> None:
        self._fh.write(_dumps(obj, self.path))

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _dumps(obj: dict[str, Any], path: Path) -> str:
    try:
        return json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n"
    except (TypeError, ValueError) as exc:  # a non-JSON server field, NaN
        raise InputError(f"cannot write a serving-log line ({exc})", path) from None


def write_log(path: Path | str, header: LogHeader, sequences: list[SequenceRecord]) -> Path:
    if not sequences:  # read_log refuses a log without sequences
        raise InputError("a serving log needs at least one sequence", path)
    with LogWriter(path, header) as writer:
        for record in sequences:
            writer.write(record)
    return Path(path)


def read_log(path: Path | str) -> ServingLog:
    """Parse and validate a serving log; every problem names the file and line."""
    path = Path(path)
    lines = list(_json_lines(path))
    if not lines:
        raise InputError("empty serving log", path)
    header = _parse_header(lines[0][1], path)
    sequences, seen = [], set()
    for number, obj in lines[1:]:
        record = _parse_sequence(obj, path, number)
        _check_sequence(record, header, path, number)
        if record.index in seen:
            raise InputError(f"duplicate sequence index {record.index}", path, number)
        seen.add(record.index)
        sequences.append(record)
    if not sequences:
        raise InputError("serving log holds no sequences", path)
    return ServingLog(header, tuple(sequences))


def _json_lines(path: Path) -> Iterator[tuple[int, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read serving log ({exc})", path) from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON ({exc.msg})", path, number) from None


def _parse_header(obj: Any, path: Path) -> LogHeader:
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise InputError(f"first line is not a {FORMAT} header", path, 1)
    if obj.get("version") != VERSION:
        raise InputError(f"unsupported serving-log version {obj.get('version')!r}", path, 1)
    try:
        sampling = SamplingConfig(**obj["sampling"])
        proj = obj.get("projection")
        projection = ProjectionSpec(**proj) if proj is not None else None
        header = LogHeader(
            model_hash=str(obj["model_hash"]),
            vocab=str(obj["vocab"]),
            sampling=sampling,
            precision=str(obj.get("precision", "float32")),
            projection=projection,
            server=dict(obj.get("server") or {}),
            vocab_size=_int(obj.get("vocab_size", 0)),
        )
    except InputError as exc:
        raise InputError(exc.reason, path, 1) from None
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"malformed header ({exc})", path, 1) from None
    if header.precision not in PRECISIONS:
        raise InputError(f"precision must be one of {PRECISIONS}", path, 1)
    return header


def _parse_sequence(obj: Any, path: Path, line: int) -> SequenceRecord:
    if not isinstance(obj, dict):
        raise InputError("sequence line is not an object", path, line)
    try:
        projections = obj.get("projections")
        return SequenceRecord(
            index=_int(obj["index"]),
            prompt=tuple(_int(t) for t in obj["prompt"]),
            tokens=tuple(_int(t) for t in obj["tokens"]),
            projections=None
            if projections is None
            else tuple(tuple(_float(v) for v in row) for row in projections),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"malformed sequence ({exc})", path, line) from None


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    return value


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value!r}")
    return float(value)


def _check_sequence(record: SequenceRecord, header: LogHeader, path: Path, line: int | None) -> None:
    vocab = header.n_ids
    if record.index < 0:
        raise InputError("sequence index must be >= 0", path, line)
    if not record.prompt or not record.tokens:
        raise InputError(f"sequence {record.index}: empty prompt or no generated tokens", path, line)
    if any(not 0 <= t < vocab for t in record.prompt + record.tokens):
        raise InputError(f"sequence {record.index}: token id outside the vocabulary", path, line)
    spec = header.projection
    if (record.projections is None) != (spec is None):
        raise InputError(f"sequence {record.index}: projections do not match the header", path, line)
    if spec is not None and record.projections is not None:
        if len(record.projections) != len(record.tokens):
            raise InputError(f"sequence {record.index}: one projection per token expected", path, line)
        if any(len(row) != spec.dim for row in record.projections):
            raise InputError(
                f"sequence {record.index}: projection rows must have {spec.dim} values", path, line
            )
