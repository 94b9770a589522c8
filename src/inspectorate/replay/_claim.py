"""A claimed training run: code, config, data, seed, steps, metric, checkpoints.

``claim.json`` sits next to its checkpoint files (paths are relative to it)::

    {"format": "inspectorate.replay.claim", "version": 1, "code_commit": "...",
     "config": {TrainSpec fields}, "data": {"split": "pretrain", "fingerprint": "sha256:..."},
     "metric": {"name": "val_loss", "value": 1.93},
     "checkpoints": [{"step": 0, "file": "ckpt_0000.pt", "weights_sha256": "...",
                      "file_sha256": "..."}, ...]}

``code_commit`` names the training code (by default its :func:`code_fingerprint`); a
replay runs only when the verifier's code is the one named.

Checkpoints hold the weights *and* the AdamW state (a segment replay resumes exactly),
at step 0, every ``checkpoint_every`` steps and at the last step.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inspectorate.errors import InputError
from inspectorate.models._checkpoint import file_sha256, save_checkpoint, weights_sha256
from inspectorate.models._corpus import Corpus
from inspectorate.replay._code import code_fingerprint
from inspectorate.replay._train import TrainSpec, evaluate, init_model, make_optimizer, train_steps

FORMAT = "inspectorate.replay.claim"
VERSION = 1


@dataclass(frozen=True)
class CheckpointRef:
    step: int
    file: str
    weights_sha256: str
    file_sha256: str


@dataclass
class TrainingClaim:
    spec: TrainSpec
    data: dict[str, str]
    metric: dict[str, Any] | None  # None: no metric claimed (nothing to recompute)
    checkpoints: list[CheckpointRef]
    code_commit: str = "unknown"
    base: Path = field(default=Path("."), repr=False)
    # The weights step 0 starts from: None for the seed's initialisation (pretraining),
    # else ``{"name", "weights_sha256"}`` of the model a fine-tune starts from.
    start: dict[str, str] | None = None
    nonce_key: str | None = None  # the seed is derive_seed(verifier's nonce, nonce_key)

    def summary(self) -> dict[str, Any]:
        """What the claim says was trained, for binding a replay to a phase's claim."""
        s = self.spec
        return {
            "n_params": s.n_params,
            "start": "seed_init" if self.start is None else "model",
            "start_weights_sha256": None if self.start is None else self.start["weights_sha256"],
            "final_weights_sha256": self.checkpoints[-1].weights_sha256,
            "steps": s.steps,
            "world_size": s.world_size,
            "tokens": s.steps * s.scored_tokens * s.world_size,
            "family": None if s.family is None else s.family.family,
            "split": self.data["split"],
            "freeze_embeddings": s.freeze_embeddings,
            "seed": s.seed,
            "nonce_key": self.nonce_key,
            # what the verifier's checkpoint watcher must have seen this host write
            "checkpoints": [
                {"step": c.step, "file": c.file, "weights_sha256": c.weights_sha256} for c in self.checkpoints
            ],
        }

    def path_of(self, ref: CheckpointRef) -> Path:
        return self.base / ref.file

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "code_commit": self.code_commit,
            "config": self.spec.to_dict(),
            "data": self.data,
            "metric": self.metric,
            "checkpoints": [asdict(c) for c in self.checkpoints],
            "start": self.start,
            "nonce_key": self.nonce_key,
        }

    def write(self, path: Path | str | None = None) -> Path:
        path = Path(path) if path else self.base / "claim.json"
        path.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
        return path


def read_claim(path: Path | str) -> TrainingClaim:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read claim ({exc})", path) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != VERSION:
        raise InputError(f"not an {FORMAT} v{VERSION} file", path)
    try:
        claim = TrainingClaim(
            spec=TrainSpec.from_dict(dict(data["config"])),
            data={"split": str(data["data"]["split"]), "fingerprint": str(data["data"]["fingerprint"])},
            metric=_metric(data.get("metric")),
            checkpoints=[CheckpointRef(**c) for c in data["checkpoints"]],
            code_commit=str(data.get("code_commit", "unknown")),
            base=path.parent,
            start=_start(data.get("start")),
            nonce_key=None if data.get("nonce_key") is None else str(data["nonce_key"]),
        )
    except InputError as exc:
        raise InputError(exc.reason, path) from None
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"malformed claim ({exc})", path) from None
    steps = [c.step for c in claim.checkpoints]
    if len(steps) < 2 or steps[0] != 0 or steps != sorted(set(steps)) or steps[-1] != claim.spec.steps:
        raise InputError("checkpoints must start at step 0, increase, and end at the claimed steps", path)
    return claim


def _metric(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    return {"name": str(raw["name"]), "value": float(raw["value"])}


def _start(raw: Any) -> dict[str, str] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("weights_sha256"), str):
        raise InputError("start must be null (seed initialisation) or an object with weights_sha256")
    return {"name": str(raw.get("name", "")), "weights_sha256": raw["weights_sha256"]}


def checkpoint_steps(spec: TrainSpec) -> list[int]:
    return sorted({*range(0, spec.steps, spec.checkpoint_every), spec.steps})


def record_run(
    spec: TrainSpec,
    corpus: Corpus,
    out: Path | str,
    *,
    code_commit: str | None = None,
    train_tokens: np.ndarray | None = None,
    segment_steps: dict[int, int] | None = None,
) -> TrainingClaim:
    """Train as ``spec`` says, checkpoint, evaluate, and write ``out/claim.json``.

    ``code_commit`` defaults to :func:`code_fingerprint` of the code that trained.

    ``train_tokens`` and ``segment_steps`` (segment index -> steps actually run) exist to
    build dishonest runs for the benchmark: the claim written still says the declared
    split and step counts, as a lying prover's would.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokens = corpus.split(spec.split) if train_tokens is None else train_tokens
    model = init_model(spec)
    opt = make_optimizer(model, spec)
    stops = checkpoint_steps(spec)
    refs = [_save(out, spec, model, opt, corpus, 0)]
    for k, (lo, hi) in enumerate(zip(stops[:-1], stops[1:], strict=True)):
        done = (segment_steps or {}).get(k, hi - lo)
        train_steps(model, opt, tokens, spec, lo, lo + done)
        refs.append(_save(out, spec, model, opt, corpus, hi))
    metric = evaluate(model, corpus.split(spec.eval_split), spec)
    claim = TrainingClaim(
        spec=spec,
        data={"split": spec.split, "fingerprint": corpus.fingerprint(spec.split)},
        metric={"name": f"{spec.eval_split}_loss", "value": metric},
        checkpoints=refs,
        code_commit=code_commit if code_commit is not None else code_fingerprint(),
        base=out,
    )
    claim.write()
    return claim


def _save(out: Path, spec: TrainSpec, model: Any, opt: Any, corpus: Corpus, step: int) -> CheckpointRef:
    path = save_checkpoint(
        out / f"ckpt_{step:06d}.pt", model, corpus.vocab.chars, {"step": step}, optimizer=opt.state_dict()
    )
    return CheckpointRef(step, path.name, weights_sha256(model.state_dict()), file_sha256(path))
