"""What every handover needs: the run directory, the sensor's challenge, the declared
model's description, and the workload's own module mapped onto it by position."""

from __future__ import annotations

import json
import os
import time
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


def still_missing(paths: list[Path], timeout_s: float) -> list[int]:
    """Wait (polling) until every one of ``paths`` exists, up to ``timeout_s``; the
    positions of those still missing then (empty: all there). What rank 0 waits on for
    the parts the other ranks write when they close."""
    deadline = time.monotonic() + timeout_s
    while True:
        missing = [i for i, p in enumerate(paths) if not p.is_file()]
        if not missing or time.monotonic() > deadline:
            return missing
        time.sleep(0.05)


def module_state(module: Any, where: str) -> dict[str, Any]:
    """The workload's tensors by its own names: a module's ``state_dict()`` (no copy) or
    a mapping of tensors as given."""
    if hasattr(module, "state_dict"):
        return dict(module.state_dict())
    if isinstance(module, dict):
        return dict(module)
    raise InputError(f"{where}: hand over a torch module or a dict of tensors, not {type(module).__name__}")


def renamed(spec: Any, module: Any, where: str, names: dict[str, str] | None = None) -> dict[str, Any]:
    """The module's tensors under the verifier's names of ``spec``, without a copy (a
    copy would show the sensor a larger resident set than the model's): by ``names``
    (verifier name -> the module's name) when given, as they are when the module already
    uses the verifier's names, else by position."""
    import torch

    with torch.device("meta"):  # names and shapes only: no memory, no initialisation
        wanted = [(k, tuple(v.shape)) for k, v in spec.build().state_dict().items()]
    state = {k: v for k, v in module_state(module, where).items() if isinstance(v, torch.Tensor)}
    hint = " (pass names={verifier name: your name} to map them)"
    if names is not None:
        own = _by_name(wanted, state, names, where)
    elif set(state) == {name for name, _ in wanted}:
        own = [state[name].detach() for name, _ in wanted]
    else:
        own = [t.detach() for t in state.values()]
    if len(own) != len(wanted):
        raise InputError(
            f"{where}: the module has {len(own)} tensors, the declared {spec.family} model {len(wanted)}{hint}"
        )
    for i, (t, (name, shape)) in enumerate(zip(own, wanted, strict=True)):
        if tuple(t.shape) != shape:
            raise InputError(
                f"{where}: tensor {i} of the module has shape {tuple(t.shape)},"
                f" the declared model's {name} {shape}{hint if names is None else ''}"
            )
    return {name: t for (name, _), t in zip(wanted, own, strict=True)}


def _by_name(
    wanted: list[tuple[str, Any]], state: dict[str, Any], names: dict[str, str], where: str
) -> list[Any]:
    """``names[verifier name]`` is the module's name, or that name + ``.T`` for a matrix
    the module stores transposed (Hugging Face's ``Conv1D``: ``(in, out)``), taken as a
    transposed view, not a copy."""
    missing = [name for name, _ in wanted if name not in names]
    if missing:
        raise InputError(f"{where}: names= maps no tensor to the declared model's {missing[0]}")
    out = []
    for name, _ in wanted:
        theirs = names[name]
        flip = theirs not in state and theirs.endswith(".T") and theirs[:-2] in state
        t = state.get(theirs[:-2] if flip else theirs)
        if t is None:
            raise InputError(f"{where}: names= names {theirs!r}, which the module does not have")
        if flip and t.dim() != 2:
            raise InputError(f"{where}: names= transposes {theirs[:-2]!r}, which is not a matrix")
        out.append(t.detach().t() if flip else t.detach())
    return out


def check_module(spec: Any, state: dict[str, Any], module: Any, where: str) -> str:
    """Does the declared model built from ``state`` (the renamed tensors, shared, not
    copied) compute what the workload's ``module`` computes? Both run one probe batch;
    a mismatch is an ``InputError`` now rather than an honest phase read as inconsistent
    later (tensors mapped to the wrong names, or an architecture variant the description
    does not declare). Returns ``"matched"`` or ``"not run: <why>"`` when the module
    cannot be called as ``module(ids)`` returning logits."""
    import torch

    if not isinstance(module, torch.nn.Module):
        return "not run: a dict of tensors, no module to call"
    first = next(iter(state.values()))
    with torch.device("meta"):
        ref = spec.build()
    ref.load_state_dict(state, strict=True, assign=True)  # the workload's own tensors
    ref.eval()
    length = min(8, spec.context or 8)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, int(spec.vocab), (2, length), generator=gen).to(first.device)
    was = module.training
    try:
        module.eval()  # no dropout; no running statistics move
        with torch.no_grad():
            want = ref(ids).float()
            try:
                got = _logits(module(ids))
            except Exception as exc:  # the module needs other arguments: nothing to compare
                return f"not run: module(ids) raised {type(exc).__name__}"
    finally:
        module.train(was)
    if got is None:
        return "not run: module(ids) returned no logits tensor"
    got = got.float()
    if got.dim() == 2:
        got = got[:, None]
    if got.shape == want.shape:
        pass
    elif got.shape == (want.shape[0], 1, want.shape[2]):
        want = want[:, -1:]
    else:
        return f"not run: module(ids) returned shape {tuple(got.shape)}, not {tuple(want.shape)}"
    # log-probabilities: sampling and the loss do not see a constant added to a row
    got, want = got.log_softmax(-1), want.log_softmax(-1)
    worst = float((got - want).abs().max())
    scale = 1.0 + float(want.abs().max())
    tol = _tolerance(first)
    if not worst <= tol * scale:
        raise InputError(
            f"{where}: the declared {spec.family} model built from the module's tensors computes other"
            f" logits than the module (max difference {worst:.3g} of {scale:.3g}): tensors under the wrong"
            " names (pass names=), or a variant the description does not declare (see docs/capture.md)"
        )
    return "matched"


def _tolerance(t: Any) -> float:
    """Relative agreement two implementations of one model reach: float32 re-orderings
    ~1e-6 (2e-5 keeps GELU's tanh form, 6e-4 away, apart), TF32 matmuls ~1e-3, half
    types ~1e-2."""
    import torch

    if t.dtype not in (torch.float32, torch.float64):
        return 3e-2
    if t.device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32:
        return 1e-3
    return 2e-5


def _logits(out: Any) -> Any:
    """The logits in what a module returned: a tensor, the first tensor of a tuple or
    list (nanoGPT returns ``(logits, loss)``), or an object's ``.logits``."""
    import torch

    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)):
        return next((x for x in out if isinstance(x, torch.Tensor)), None)
    found = getattr(out, "logits", None)
    return found if isinstance(found, torch.Tensor) else None
