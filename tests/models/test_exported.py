"""Exported programs (torch.export .pt2, TorchScript .pt) as model descriptions: loaded
without the prover's weights and without unpickling, counted, built, timed."""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from inspectorate.errors import InputError  # noqa: E402
from inspectorate.models import read_model_file, resolve_model  # noqa: E402
from inspectorate.models._exported import ExportedSpec, file_sha256  # noqa: E402

VOCAB, D = 65, 32


class TinyLM(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(VOCAB, D)
        self.norm = torch.nn.LayerNorm(D)
        self.mix = torch.nn.Linear(D, 4 * D)
        self.head = torch.nn.Linear(4 * D, VOCAB)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.head(torch.nn.functional.gelu(self.mix(self.norm(self.emb(idx)))))


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> tuple[TinyLM, Path, Path]:
    torch.manual_seed(1)
    model = TinyLM().eval()
    d = tmp_path_factory.mktemp("exported")
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq", max=128)
    ep = torch.export.export(model, (torch.randint(0, VOCAB, (2, 8)),), dynamic_shapes=({0: batch, 1: seq},))
    torch.export.save(ep, str(d / "lm.pt2"))
    torch.jit.save(torch.jit.script(model), str(d / "lm.pt"))
    return model, d / "lm.pt2", d / "lm.pt"


def _n(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("which", [1, 2])
def test_program_loads_counts_and_runs_with_fresh_weights(archives, which):
    model, *paths = archives
    spec = read_model_file(paths[which - 1])
    assert isinstance(spec, ExportedSpec) and spec.n_params() == _n(model)
    assert spec.vocab == VOCAB and spec.depth == 1
    built = spec.build()
    x = spec.make_inputs(3, 17)[0]
    assert x.shape == (3, 17) and x.dtype == torch.int64
    out = built(x)
    assert out.shape == (3, 17, VOCAB) and torch.isfinite(out).all()
    mine = [t for t in model.state_dict().values() if t.is_floating_point()]
    theirs = [t for t in built.state_dict().values() if t.is_floating_point()]
    assert len(theirs) == len(mine) == 7
    for t in theirs:  # every weight re-drawn: none equals any of the prover's tensors
        assert not any(m.shape == t.shape and torch.equal(t, m) for m in mine)
    assert not torch.allclose(out, model(x))
    logits, state = built.decode(x[:, :4], None)  # serving API the spot-check uses
    assert logits.shape == (3, VOCAB) and state.shape == (3, 4)


def test_export_records_its_sequence_bound(archives):
    spec = read_model_file(archives[1])
    assert spec.context == 128 and spec.input_specs() == (("int64", "batch", "seq"),)


def test_spot_check_times_forward_and_training_at_the_claimed_shape(archives):
    from inspectorate.verify._spotcheck import Work, _measure

    spec = read_model_file(archives[1])
    infer = _measure(Work("eval", "lm", 4, 32, spec), 0.3)
    train = _measure(Work("training", "lm", 4, 32, spec), 0.3)
    assert infer.tokens >= 128 and train.tokens >= 128
    assert train.cpu_s_per_token > infer.cpu_s_per_token > 0  # backward costs more than forward


def test_description_points_at_the_archive_and_binds_its_hash(archives, tmp_path):
    _, pt2, pt = archives
    run = tmp_path / "run"
    (run / "models").mkdir(parents=True)
    (run / "models" / "lm.pt2").write_bytes(pt2.read_bytes())
    (run / "models" / "ts.pt").write_bytes(pt.read_bytes())
    desc = {"format": "inspectorate.model", "version": 1, "family": "exported"}
    good = desc | {"config": {"file": "ts.pt", "sha256": file_sha256(pt), "vocab_size": VOCAB}}
    (run / "models" / "chat.json").write_text(json.dumps(good))
    spec = resolve_model("chat", run)
    assert isinstance(spec, ExportedSpec) and Path(spec.file) == run / "models" / "ts.pt"
    assert resolve_model("lm", run).n_params() == spec.n_params()  # a bare archive resolves too
    bad = {
        "hash": ({"file": "ts.pt", "sha256": "0" * 64}, "sha256"),
        "escape": ({"file": "../lm.pt2"}, "beside the description"),
        "missing": ({"file": "nope.pt2"}, "no such exported archive"),
        "dtype": ({"file": "ts.pt", "inputs": [["int8", "batch"]]}, "dtype one of"),
        "nofile": ({}, "'file'"),
    }
    for name, (config, words) in bad.items():
        (run / "models" / f"{name}.json").write_text(json.dumps(desc | {"config": config}))
        with pytest.raises(InputError, match=words) as err:
            resolve_model(name, run)
        assert "\n" not in str(err.value)


class _Evil:
    def __reduce__(self):  # what a hostile pickle does: run code at load
        return (os.system, (f"touch {os.environ['EVIL_MARK']}",))


def test_hostile_archives_are_refused_without_running_their_code(archives, tmp_path, monkeypatch):
    _, pt2, _ = archives
    mark = tmp_path / "pwned"
    monkeypatch.setenv("EVIL_MARK", str(mark))
    # 1. a pickled module saved as .pt: not TorchScript, never unpickled
    evil_pt = tmp_path / "evil.pt"
    torch.save({"x": _Evil()}, evil_pt)
    # 2. a torch.export archive whose weight blob is declared a pickle and holds one
    evil_pt2 = tmp_path / "evil.pt2"
    with zipfile.ZipFile(pt2) as src, zipfile.ZipFile(evil_pt2, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("model_weights_config.json"):
                data = data.replace(b'"use_pickle": false', b'"use_pickle": true', 1)
            elif item.filename.endswith("weights/weight_0"):
                data = pickle.dumps(_Evil())
            dst.writestr(item, data)
    # 3. an opaque constant (torch.export unpickles those with pickle.loads)
    opaque = tmp_path / "opaque.pt2"
    with zipfile.ZipFile(pt2) as src, zipfile.ZipFile(opaque, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item))
        dst.writestr("m/data/constants/opaque_obj_0", pickle.dumps(_Evil()))
    junk = tmp_path / "junk.pt2"
    junk.write_bytes(b"not a zip")
    for path, words in (
        (evil_pt, "neither torch.export"),
        (evil_pt2, "cannot load the torch.export archive"),
        (opaque, "will not load"),
        (junk, "not a torch.export or TorchScript archive"),
    ):
        with pytest.raises(InputError, match=words) as err:
            read_model_file(path).build()
        assert "\n" not in str(err.value)
    assert not mark.exists()


def test_a_static_program_at_another_shape_is_one_clear_error(tmp_path):
    model = TinyLM().eval()
    ep = torch.export.export(model, (torch.randint(0, VOCAB, (2, 8)),))  # no dynamic dims
    torch.export.save(ep, str(tmp_path / "static.pt2"))
    spec = read_model_file(tmp_path / "static.pt2")
    assert spec.input_specs() == (("int64", 2, 8),)  # the program's own fixed shape
    built = spec.build()
    assert built(*spec.make_inputs(5, 99)).shape == (2, 8, VOCAB)  # fixed dims stay fixed
    with pytest.raises(InputError, match="does not run on inputs") as err:
        built(torch.randint(0, VOCAB, (3, 8)))
    assert "\n" not in str(err.value)
