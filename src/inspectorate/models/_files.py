"""Model descriptions as files: what a prover hands over with a claim, and how a claim's
model name resolves to a spec the verifier can build (``RUN_DIR/models/<name>.json``
first, then a well-known name)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from inspectorate.errors import InputError
from inspectorate.models._exported import SUFFIXES, ExportedSpec, exported_spec
from inspectorate.models._families import NAMED
from inspectorate.models._spec import ARCHITECTURES, FORMAT, VERSION, WEIGHT_DTYPES, ModelSpec


def spec_from_dict(data: Any, where: str | Path = "<model>") -> ModelSpec:
    """A ModelSpec from its JSON form; any problem is an InputError naming the field."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(f"not a model description (format {FORMAT!r} expected)", where)
    if data.get("version") != VERSION:
        raise InputError(f"model description version {data.get('version')!r}; this reads {VERSION}", where)
    try:
        cls = ARCHITECTURES.get(str(data.get("family")))
    except InputError as exc:
        raise InputError(exc.reason, where) from None
    config = data.get("config")
    if not isinstance(config, dict):
        raise InputError("model description needs a 'config' object", where)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(config) - set(fields))
    if unknown:
        raise InputError(
            f"{cls.family} config has unknown field(s) {unknown}; known: {', '.join(fields)}", where
        )
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
    if values.get("weights_dtype", "fp32") not in WEIGHT_DTYPES:
        raise InputError(
            f"config field 'weights_dtype' must be one of {', '.join(WEIGHT_DTYPES)}, got {values['weights_dtype']!r}",
            where,
        )
    try:
        spec = cls(**values)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{cls.family} config: {exc}", where) from None
    problem = _check(spec)
    if problem:
        raise InputError(f"{cls.family} config: {problem}", where)
    return spec


def _check(spec: ModelSpec) -> str | None:
    """Every numeric field a positive number of the declared kind (bools excepted)."""
    for f in dataclasses.fields(spec):
        value = getattr(spec, f.name)
        items = value if isinstance(value, tuple) else (value,)
        for v in items:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            if not v > 0 and f.name not in ("dropout",):
                return f"{f.name} must be positive, got {v!r}"
            if isinstance(f.default, int) and not isinstance(f.default, bool) and not isinstance(v, int):
                return f"{f.name} must be an integer, got {v!r}"
    return None


def read_model_file(path: str | Path) -> ModelSpec:
    """Read a model description handed over with a claim: a JSON description, or an
    exported program itself (``.pt2`` torch.export, ``.pt`` TorchScript)."""
    path = Path(path)
    if path.suffix in SUFFIXES:
        return exported_spec(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read a model description ({exc})", path) from None
    spec = spec_from_dict(data, path)
    if isinstance(spec, ExportedSpec):  # the archive sits beside its description
        if not _safe_name(spec.file):
            raise InputError(
                f"exported config: 'file' must name a file beside the description, got {spec.file!r}", path
            )
        config = {k: v for k, v in dataclasses.asdict(spec).items() if k != "file"}
        return exported_spec(path.parent / spec.file, config)
    return spec


def write_model_file(spec: ModelSpec, path: str | Path) -> Path:
    """Write ``spec`` as a model description (what ``read_model_file`` reads back)."""
    path = Path(path)
    spec_from_dict(spec.to_dict(), path)  # a writer never writes what its reader refuses
    path.write_text(json.dumps(spec.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def named_spec(name: str) -> ModelSpec | None:
    """A well-known config by name (the testbed presets, GPT-2 sizes), or None."""
    ARCHITECTURES.load()
    make = NAMED.get(name)
    return None if make is None else make()


MODELS_DIR = "models"


def _safe_name(name: str) -> bool:
    """A file name inside RUN/models/, never a path out of it."""
    return "/" not in name and "\\" not in name and not name.startswith(".")


def resolve_model(name: str | None, run_dir: str | Path | None = None) -> ModelSpec | None:
    """The spec a claim's ``model`` names: ``RUN/models/<name>.json`` handed over with the
    run first (it may point at an exported archive beside it), then a bare archive
    ``RUN/models/<name>.pt2`` or ``.pt``, then a well-known name; None when the verifier
    cannot build it."""
    if not name:
        return None
    if run_dir is not None and _safe_name(name):
        for suffix in (".json", *SUFFIXES):  # a description first, then a bare archive
            path = Path(run_dir) / MODELS_DIR / f"{name}{suffix}"
            if path.is_file():
                return read_model_file(path)
    return named_spec(name)
