"""Serving a testbed GPT under the shared sampler and writing the serving log.

Sequences are decoded in batches with a KV cache (what a server does); the verifier
re-computes them with one teacher-forced pass. The difference between the two paths,
batch composition, thread count and precision is the honest non-determinism that
calibration measures. Prompts in a batch must have equal length (no padding, so a
sequence's numbers never depend on a pad mask).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from inspectorate.difr._log import LogHeader, ProjectionSpec, SamplingConfig, SequenceRecord, write_log
from inspectorate.difr._projection import capture_layer, project, projection_matrix
from inspectorate.difr._sampling import choose, gumbel_noise
from inspectorate.errors import InputError
from inspectorate.models._checkpoint import Checkpoint, config_of, model_hash


@dataclass(frozen=True)
class ServeOptions:
    """How a server runs: the sampling it declares and the knobs that perturb numerics."""

    sampling: SamplingConfig
    max_new: int = 128
    batch_size: int = 16
    precision: str = "float32"
    projection: ProjectionSpec | None = None
    order_seed: int | None = None  # shuffle batch composition (None: prompts in file order)


@dataclass
class Generated:
    record: SequenceRecord
    logits: np.ndarray | None = None  # (max_new, vocab) as served; calibration only


def precision_context(precision: str) -> contextlib.AbstractContextManager[object]:
    if precision == "bfloat16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    if precision == "float32":
        return contextlib.nullcontext()
    raise InputError(f"unknown precision {precision!r} (float32 or bfloat16)")


def generate(
    model: torch.nn.Module, prompts: Sequence[Sequence[int]], options: ServeOptions, keep_logits: bool = False
) -> list[Generated]:
    """Serve every prompt; sequence ``i`` gets index ``i`` (its noise stream)."""
    block = config_of(model).block_size
    if any(len(p) + options.max_new > block for p in prompts):
        raise InputError(f"prompt + {options.max_new} new tokens exceeds the model context {block}")
    secret_seed = secrets.randbits(63)  # undeclared seed: noise the verifier cannot regenerate
    out: dict[int, Generated] = {}
    for batch in _batches(prompts, options):
        for index, gen in zip(batch, _serve_batch(model, prompts, batch, options, secret_seed), strict=True):
            out[index] = gen if keep_logits else Generated(gen.record)
    return [out[i] for i in range(len(prompts))]


def _batches(prompts: Sequence[Sequence[int]], options: ServeOptions) -> Iterator[list[int]]:
    order = list(range(len(prompts)))
    if options.order_seed is not None:
        np.random.default_rng(options.order_seed).shuffle(order)
    by_length: dict[int, list[int]] = {}
    for i in order:
        by_length.setdefault(len(prompts[i]), []).append(i)
    for group in by_length.values():
        for lo in range(0, len(group), options.batch_size):
            yield group[lo : lo + options.batch_size]


@torch.no_grad()
def _serve_batch(
    model: torch.nn.Module,
    prompts: Sequence[Sequence[int]],
    batch: list[int],
    options: ServeOptions,
    secret_seed: int,
) -> list[Generated]:
    sampling, n_new, spec = options.sampling, options.max_new, options.projection
    seed = sampling.seed if sampling.seed is not None else secret_seed
    vocab = config_of(model).vocab_size
    noise = np.stack([gumbel_noise(seed, i, n_new, vocab) for i in batch])  # (b, n_new, V)
    tokens = np.zeros((len(batch), n_new), dtype=np.int64)
    logits_seen = np.zeros((len(batch), n_new, vocab), dtype=np.float64)
    hidden = []
    layer = spec.layer if spec is not None else 0
    with capture_layer(model, layer) as seen, precision_context(options.precision):
        idx = torch.tensor([list(prompts[i]) for i in batch], dtype=torch.long)
        logits, _, cache = model(idx)
        for j in range(n_new):
            row = logits[:, -1, :].float().numpy().astype(np.float64)
            logits_seen[:, j] = row
            hidden.append(seen[-1][:, -1, :].numpy())
            tokens[:, j] = choose(row, noise[:, j], sampling)
            if j + 1 < n_new:
                logits, _, cache = model(torch.from_numpy(tokens[:, j : j + 1]), cache=cache)
    projections = _projections(np.stack(hidden, axis=1), spec)
    return [
        Generated(
            SequenceRecord(
                index=i,
                prompt=tuple(int(t) for t in prompts[i]),
                tokens=tuple(int(t) for t in tokens[k]),
                projections=projections[k] if projections is not None else None,
            ),
            logits_seen[k],
        )
        for k, i in enumerate(batch)
    ]


def _projections(
    hidden: np.ndarray, spec: ProjectionSpec | None
) -> list[tuple[tuple[float, ...], ...]] | None:
    """(b, n_new, width) activations -> per sequence, per token, ``spec.dim`` floats."""
    if spec is None:
        return None
    proj = project(hidden, projection_matrix(spec.seed, hidden.shape[-1], spec.dim))
    # 7 significant digits is float32's precision: half the JSON of a float64 repr, and
    # calibration sees the same rounding, so it is part of the honest noise.
    return [tuple(tuple(float(f"{v:.7g}") for v in row) for row in seq) for seq in proj]


def serve(
    model: torch.nn.Module,
    prompts: Sequence[Sequence[int]],
    options: ServeOptions,
    out: Path | str,
    *,
    vocab: str,
    claimed_hash: str | None = None,
    server: dict[str, object] | None = None,
) -> Path:
    """Generate and write a serving log; ``claimed_hash`` defaults to the model's own."""
    records = [g.record for g in generate(model, prompts, options)]
    header = LogHeader(
        model_hash=claimed_hash or model_hash(model),
        vocab=vocab,
        vocab_size=config_of(model).vocab_size,
        sampling=options.sampling,
        precision=options.precision,
        projection=options.projection,
        server={"batch_size": options.batch_size, "threads": torch.get_num_threads(), **(server or {})},
    )
    return write_log(out, header, records)


def read_prompts(path: Path | str, vocab: str, length: int | None = None) -> list[list[int]]:
    """One prompt per non-empty line of a UTF-8 text file, encoded with the model's vocab;
    with ``length`` each line is cut to its last ``length`` characters (equal lengths batch)."""
    path = Path(path)
    try:
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read prompts ({exc})", path) from None
    lookup = {ch: i for i, ch in enumerate(vocab)}
    prompts = []
    for number, line in enumerate(lines, start=1):
        text = line[-length:] if length else line
        missing = sorted({ch for ch in text if ch not in lookup})
        if missing:
            raise InputError(
                f"characters {''.join(missing)!r} are not in the model's vocabulary", path, number
            )
        prompts.append([lookup[ch] for ch in text])
    if not prompts:
        raise InputError("no prompts in file", path)
    return prompts


def corpus_prompts(tokens: np.ndarray, n: int, length: int, seed: int) -> list[list[int]]:
    """``n`` prompts of ``length`` tokens cut at random offsets of a token array."""
    rng = np.random.default_rng([seed, 0xD1F])
    starts = rng.integers(0, len(tokens) - length, size=n)
    return [[int(t) for t in tokens[s : s + length]] for s in starts]


def serve_checkpoint(
    ckpt: Checkpoint, prompts: Sequence[Sequence[int]], options: ServeOptions, out: Path
) -> Path:
    return serve(ckpt.model, prompts, options, out, vocab=ckpt.vocab)
