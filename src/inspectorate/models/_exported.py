"""Exported programs as model descriptions: a ``torch.export`` archive (``.pt2``,
``torch.export.save``) or a TorchScript archive (``.pt``, ``torch.jit.save``).

Why these formats: they carry the model's graph, not Python. A pickle (``torch.save`` of
a module) runs the prover's code when loaded; a TorchScript archive is executed by
TorchScript's interpreter, and a ``torch.export`` archive is a JSON graph of ATen ops.
Loading still needs care, and the loader here takes it:

* ``torch.export.load`` falls back to ``torch.load(weights_only=False)`` when a weights
  blob is not plain tensors, and unpickles "opaque" constants with ``pickle.loads``:
  both run arbitrary Python. The archive's members are listed first and any opaque or
  custom-object constant, AOTInductor or ExecuTorch payload is refused; the load runs
  with ``TORCH_FORCE_WEIGHTS_ONLY_LOAD=1``, so every ``torch.load`` inside is
  weights-only whatever the call site asks.
* the prover's weights are never used: every floating parameter and buffer is
  overwritten with random values of the same shape (``randomize``) before the module is
  returned, so what the spot-check times is the architecture, not a tuned artefact.

A program's inputs: a ``torch.export`` graph records each input's dtype and shape, with
the dimensions exported as dynamic standing for the batch (dim 0) and the sequence
(dim 1); a TorchScript archive records none, so its description lists them
(``inputs: [["int64", "batch", "seq"]]``, the default for a bare ``.pt``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from inspectorate.errors import InputError
from inspectorate.models._spec import ModelSpec, architecture

EXPORT = "torch.export"
TORCHSCRIPT = "torchscript"
SUFFIXES = {".pt2": EXPORT, ".pt": TORCHSCRIPT}
SYMBOLS = ("batch", "seq")  # a shape entry that the claimed batch shape fills in
DTYPES = ("int64", "int32", "float32", "float16", "bfloat16", "float64")
# archive members that deserialize through pickle or load native code: refused
_REFUSED = ("custom_obj_", "opaque_obj_", "data/aotinductor/", "data/executorch/")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sniff(path: Path) -> str:
    """Which archive ``path`` is, from its members (never from its name alone)."""
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (OSError, zipfile.BadZipFile) as exc:
        raise InputError(f"not a torch.export or TorchScript archive ({exc})", path) from None
    if any(n.endswith("/models/model.json") or n.endswith("/archive_format") for n in names):
        bad = sorted({r for n in names for r in _REFUSED if r in n})
        if bad:
            raise InputError(
                f"torch.export archive holds members the verifier will not load ({', '.join(bad)}:"
                " they unpickle Python or load native code)",
                path,
            )
        return EXPORT
    if any("/code/" in n for n in names) and any(n.endswith("/constants.pkl") for n in names):
        return TORCHSCRIPT
    raise InputError("a zip archive, but neither torch.export (.pt2) nor TorchScript (.pt)", path)


@contextlib.contextmanager
def _weights_only() -> Iterator[None]:
    """Every ``torch.load`` inside is weights-only (no unpickling of Python objects)."""
    old = os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD")
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TORCH_FORCE_WEIGHTS_ONLY_LOAD", None)
        else:
            os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = old


@dataclasses.dataclass
class Program:
    """A loaded program: its module (prover's weights still in it), input specs, and
    what the graph says about vocabulary and context."""

    kind: str
    module: Any
    inputs: tuple[tuple[Any, ...], ...] | None  # (dtype, dim, dim, ...); dims int or symbol
    vocab: int | None
    context: int | None


def load_program(path: Path) -> Program:
    """Load an archive without trusting it (see the module doc); InputError if it fails."""
    import torch

    kind = sniff(path)
    try:
        with _weights_only():
            if kind == EXPORT:
                return _from_export(torch.export.load(str(path)))
            return _from_script(torch.jit.load(str(path), map_location="cpu"))
    except InputError:
        raise
    except Exception as exc:  # torch raises many kinds on a corrupt or hostile archive
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot load the {kind} archive ({first})", path) from None


def _from_export(ep: Any) -> Program:
    user = set(ep.graph_signature.user_inputs)
    inputs, context = [], None
    for node in ep.graph.nodes:
        if node.op != "placeholder" or node.name not in user:
            continue
        val = node.meta.get("val")
        if val is None or not hasattr(val, "shape"):
            raise InputError(f"exported input {node.name!r} is not a tensor")
        dims: list[Any] = []
        for i, d in enumerate(val.shape):
            if isinstance(d, int):
                dims.append(d)
                continue
            dims.append(SYMBOLS[i] if i < len(SYMBOLS) else int(d.node.hint or 1))
            if i == 1:
                upper = ep.range_constraints.get(d.node.expr)
                hi = getattr(upper, "upper", None)
                context = int(hi) if hi is not None and str(hi) != "int_oo" else context
        inputs.append((str(val.dtype).removeprefix("torch."), *dims))
    vocab = None
    for node in ep.graph.nodes:  # an embedding's table rows: the token range
        if node.op == "call_function" and "embedding" in str(node.target):
            table = node.args[0].meta.get("val")
            vocab = int(table.shape[0]) if table is not None else vocab
            break
    return Program(EXPORT, ep.module(), tuple(inputs), vocab, context)


def _from_script(module: Any) -> Program:
    vocab = None
    for _, sub in module.named_modules():
        if getattr(sub, "original_name", "") == "Embedding":
            vocab = int(sub.weight.shape[0])
            break
    return Program(TORCHSCRIPT, module, None, vocab, None)


def randomize(module: Any, seed: int = 0) -> int:
    """Overwrite every floating parameter and buffer with random values of its shape:
    N(0, 1/fan_in) for matrices and larger, U[0.5, 1.5) for vectors and scalars (positive,
    so norms' scales and running variances stay valid). Returns how many were replaced."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    n = 0
    with torch.no_grad():
        for _, t in [*module.named_parameters(), *module.named_buffers()]:
            if not t.is_floating_point():
                continue
            if t.dim() >= 2:
                fresh = torch.randn(t.shape, generator=gen) / max(t.shape[-1], 1) ** 0.5
            else:
                fresh = torch.rand(t.shape, generator=gen) + 0.5
            t.copy_(fresh.to(t.dtype))
            n += 1
    return n


@functools.lru_cache(maxsize=8)
def _counted(path: str, digest: str) -> tuple[int, int | None, int | None, tuple[Any, ...] | None]:
    """(parameters, vocab, context, inputs) of one archive version (cached by its hash)."""
    prog = load_program(Path(path))
    n = sum(int(p.numel()) for p in prog.module.parameters())
    return n, prog.vocab, prog.context, prog.inputs


@architecture("exported")
@dataclasses.dataclass(frozen=True)
class ExportedSpec(ModelSpec):
    """A program the prover exported (``torch.export`` .pt2 or TorchScript .pt); built with
    random weights, never the prover's, and never through a pickle."""

    file: str = ""  # the archive, relative to the description (absolute once read)
    sha256: str | None = None  # the archive's hash: binds the description to one file
    inputs: tuple[tuple[Any, ...], ...] | None = None  # [[dtype, dim, ...]]; dims int or batch/seq
    vocab_size: int | None = None  # range of integer inputs (else: the embedding's rows)
    context_len: int | None = None  # longest sequence (else: the export's bound on seq)

    def __post_init__(self) -> None:
        if not self.file:
            raise ValueError("'file' (the exported archive) is required")
        if self.inputs is not None:
            rows = tuple(tuple(r) for r in self.inputs)
            for r in rows:
                if not r or r[0] not in DTYPES:
                    raise ValueError(f"each input is [dtype, dims...] with dtype one of {DTYPES}")
                if any(not (d in SYMBOLS or (isinstance(d, int) and d > 0)) for d in r[1:]):
                    raise ValueError(f"input dims are positive integers or {SYMBOLS}, got {list(r)}")
            object.__setattr__(self, "inputs", rows)

    @property
    def path(self) -> Path:
        return Path(self.file)

    def _facts(self) -> tuple[int, int | None, int | None, tuple[Any, ...] | None]:
        return _counted(str(self.path), self.sha256 or file_sha256(self.path))

    def n_params(self) -> int:
        return self._facts()[0]

    @property
    def depth(self) -> int:
        return 1  # a program is timed whole: no slices of a graph the verifier did not write

    @property
    def context(self) -> int | None:
        return self.context_len or self._facts()[2]

    @property
    def vocab(self) -> int:
        v = self.vocab_size or self._facts()[1]
        if v is None:
            raise InputError("integer inputs need 'vocab_size' (no embedding found)", self.path)
        return v

    def input_specs(self) -> tuple[tuple[Any, ...], ...]:
        return self.inputs or self._facts()[3] or (("int64", "batch", "seq"),)

    def make_inputs(self, batch: int, seq: int, gen: Any = None) -> tuple[Any, ...]:
        """Random inputs at the claimed batch shape (``batch``/``seq`` fill the symbols)."""
        import torch

        out = []
        for dtype, *dims in self.input_specs():
            shape = [batch if d == "batch" else seq if d == "seq" else int(d) for d in dims]
            dt = getattr(torch, dtype)
            if dt.is_floating_point:
                out.append(torch.randn(shape, generator=gen).to(dt))
            else:
                out.append(torch.randint(0, self.vocab, shape, generator=gen, dtype=dt))
        return tuple(out)

    def build(self) -> Any:
        prog = load_program(self.path)
        randomize(prog.module)
        return program_module(prog.module, self.context)

    def with_layers(self, k: int) -> ModelSpec:
        raise InputError("an exported program is timed whole, not by slices", self.path)


def program_module(program: Any, context: int | None) -> Any:
    """The program behind the model API the spot-check uses: ``forward(*inputs)`` (the
    first tensor of the program's output) and ``decode(idx, state)``. An exported program
    carries no decoding cache, so decoding runs it over the whole window (the last
    ``context`` tokens): what serving with the handed-over program costs."""
    import torch

    class _Program(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.program = program

        def forward(self, *inputs: Any) -> Any:
            try:
                out = self.program(*inputs)
            except Exception as exc:  # a static program at another shape, a wrong dtype
                shapes = ", ".join(f"{tuple(t.shape)} {t.dtype}" for t in inputs)
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
                raise InputError(f"the exported program does not run on inputs {shapes} ({first})") from None
            while isinstance(out, (tuple, list)):
                out = out[0]
            return out

        def decode(self, idx: Any, state: Any) -> tuple[Any, Any]:
            window = idx if state is None else torch.cat([state, idx], dim=1)
            if context is not None:
                window = window[:, -context:]
            return self.forward(window)[:, -1, :], window

    return _Program()


def exported_spec(path: Path, config: dict[str, Any] | None = None) -> ExportedSpec:
    """The spec of an archive ``path`` (a bare file or the one a description names);
    checks the description's hash against the file."""
    config = dict(config or {})
    if not path.is_file():
        raise InputError("no such exported archive", path)
    digest = file_sha256(path)
    if config.get("sha256") not in (None, digest):
        raise InputError(f"sha256 {config['sha256']} in the description, the file has {digest}", path)
    config.update(file=str(path), sha256=digest)
    try:
        spec = ExportedSpec(**config)
    except (TypeError, ValueError) as exc:
        raise InputError(f"exported config: {exc}", path) from None
    sniff(path)
    return spec
