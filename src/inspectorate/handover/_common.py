"""What every handover needs: the run directory, the sensor's challenge, the declared
model's description, and the workload's own module mapped onto it by position."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from inspectorate.capture._nonce import derive_seed
from inspectorate.errors import InputError

RUN_ENV = "INSPECTORATE_RUN_DIR"  # set by ``inspectorate capture`` for the workload
CLAIMS = "claims"


def run_dir(path: Path | str | None = None) -> Path:
    """The run directory: ``path``, else ``$INSPECTORATE_RUN_DIR`` (set by ``capture``)."""
    raw = path if path is not None else os.environ.get(RUN_ENV)
    if not raw:
        raise InputError(
            f"no run directory: run under `inspectorate capture` (it sets {RUN_ENV}) or pass run_dir"
        )
    out = Path(raw)
    if not out.is_dir():
        raise InputError("run directory does not exist", out)
    return out


def sensor_nonce(run: Path) -> str:
    """The challenge the sensor issued in its start record (it starts before the workload)."""
    path = run / "sensor.jsonl"
    try:
        with path.open(encoding="utf-8") as fh:
            first = json.loads(fh.readline())
    except (OSError, UnicodeDecodeError, ValueError):
        raise InputError(
            "no sensor start record to read the challenge from (is the sensor running?)", path
        ) from None
    if not isinstance(first, dict) or not isinstance(first.get("nonce"), str) or not first["nonce"]:
        raise InputError("the sensor's start record carries no nonce", path)
    return str(first["nonce"])


def challenge_seed(key: str, run: Path | str | None = None) -> int:
    """``derive_seed(nonce, key)`` under the sensor's challenge of this run: 48 bits no one
    could know before the run began. Serving uses ``key = "serve:<phase>"``, a training
    phase its own name."""
    return derive_seed(sensor_nonce(run_dir(run)), key)


def description(model: str | dict[str, Any], run: Path) -> dict[str, Any]:
    """The declared model: a description dict, or the name of ``RUN/models/<name>.json``
    (what the claims file's ``models:`` copied there)."""
    if isinstance(model, dict):
        return {"format": "inspectorate.model", "version": 1, **model}
    path = run / "models" / f"{model}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"cannot read the declared model {model!r} ({exc})", path) from None
    if not isinstance(data, dict):
        raise InputError("a model description must be a JSON object", path)
    return data


def spec_of(desc: dict[str, Any]) -> Any:
    from inspectorate.models import spec_from_dict

    return spec_from_dict(desc, "declared model")


def renamed(spec: Any, module: Any, where: str) -> dict[str, Any]:
    """The module's tensors under the verifier's names of ``spec``, by position, without
    a copy (a copy would show the sensor a larger resident set than the model's)."""
    import torch

    with torch.device("meta"):  # names and shapes only: no memory, no initialisation
        names = [(k, tuple(v.shape)) for k, v in spec.build().state_dict().items()]
    own = [t.detach() for t in module.state_dict().values()]
    if len(own) != len(names):
        raise InputError(
            f"{where}: the module has {len(own)} tensors, the declared {spec.family} model {len(names)}"
        )
    for i, (t, (name, shape)) in enumerate(zip(own, names, strict=True)):
        if tuple(t.shape) != shape:
            raise InputError(
                f"{where}: tensor {i} of the module has shape {tuple(t.shape)},"
                f" the declared model's {name} {shape}"
            )
    return {name: t for (name, _), t in zip(names, own, strict=True)}
