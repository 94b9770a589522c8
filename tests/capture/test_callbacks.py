"""Lightning and Hugging Face callbacks, driven like their loops drive them, against
stand-ins of the base classes (neither package is installed; the hooks follow their
documented signatures), through a real label channel."""

from __future__ import annotations

import json
import sys
import types

import pytest

from inspectorate.capture import _client
from inspectorate.capture._callbacks import hf_callback, lightning_callback
from inspectorate.capture._channel import SOCKET_ENV, Channel, ChannelServer
from inspectorate.errors import InputError


class _Tensor:
    def __init__(self, n: int) -> None:
        self.n = n

    def numel(self) -> int:
        return self.n


@pytest.fixture
def channel(tmp_path, monkeypatch):
    ch = Channel(tmp_path, window_s=60.0)
    server = ChannelServer(ch, tmp_path / "s.sock")
    monkeypatch.setenv(SOCKET_ENV, str(server.path))
    monkeypatch.setattr(_client, "_conn", {"sock": None, "pid": None})
    yield ch
    server.close()
    ch.close()


def _labels(path):
    return [
        (e["event"], e["phase"], e.get("claimed_op")) for e in map(json.loads, path.read_text().splitlines())
    ]


def test_lightning_fit_with_validation_is_segmented(channel, tmp_path, monkeypatch):
    pkg = types.ModuleType("lightning")
    mod = types.ModuleType("lightning.pytorch")
    mod.Callback = type("Callback", (), {})
    monkeypatch.setitem(sys.modules, "lightning", pkg)
    monkeypatch.setitem(sys.modules, "lightning.pytorch", mod)
    cb = lightning_callback(model="my-gru", n_params=1000, batch_size=4, sequence_length=8)
    trainer = types.SimpleNamespace(
        global_rank=0, state=types.SimpleNamespace(fn="fit"), sanity_checking=False
    )
    cb.on_train_start(trainer, None)
    for i in range(3):
        cb.on_train_batch_end(trainer, None, None, (_Tensor(32), _Tensor(32)), i)
    cb.on_validation_start(trainer, None)
    cb.on_validation_batch_end(trainer, None, None, (_Tensor(32),), 0, 0)
    cb.on_validation_end(trainer, None)
    cb.on_train_batch_end(trainer, None, None, (_Tensor(32),), 3)
    cb.on_train_end(trainer, None)
    channel.end_all()
    assert _labels(tmp_path / "workload_labels.jsonl") == [
        ("start", "train.0", "training"),
        ("end", "train.0", "training"),
        ("start", "val.0", "eval"),
        ("end", "val.0", "eval"),
        ("start", "train.1", "training"),
        ("end", "train.1", "training"),
    ]
    from inspectorate.trace import read_trace

    frame = read_trace(tmp_path / "windows.jsonl").frame
    assert frame["tokens_processed"].sum() == 5 * 32


def test_hf_trainer_run_counts_tokens_per_step(channel, tmp_path, monkeypatch):
    mod = types.ModuleType("transformers")
    mod.TrainerCallback = type("TrainerCallback", (), {})
    monkeypatch.setitem(sys.modules, "transformers", mod)
    cb = hf_callback(sequence_length=128, model="my-llama", n_params=10**6)
    args = types.SimpleNamespace(per_device_train_batch_size=4, gradient_accumulation_steps=2, world_size=2)
    state = types.SimpleNamespace(is_world_process_zero=True)
    cb.on_train_begin(args, state, None)
    for _ in range(5):
        cb.on_step_end(args, state, None)
    cb.on_train_end(args, state, None)
    channel.end_all()
    assert _labels(tmp_path / "workload_labels.jsonl") == [
        ("start", "train.0", "training"),
        ("end", "train.0", "training"),
    ]
    from inspectorate.trace import read_trace

    assert read_trace(tmp_path / "windows.jsonl").frame["tokens_processed"].sum() == 5 * 4 * 2 * 2 * 128


def test_missing_library_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(InputError, match=r"\[hf\] extra"):
        hf_callback(sequence_length=8)
