"""ChainWriter: chained appends, reopen/continue, torn tails, threads, and a real SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from inspectorate.capture import ChainWriter
from inspectorate.errors import InputError
from inspectorate.trace import GENESIS, chain_head, record_hash, verify_chain
from inspectorate.trace.streams import read_chain_file


def test_append_chains_label_job_time_attacksnd_returns_what_was_stored(tmp_path: Path) -> None:
    with ChainWriter(tmp_path / "c.jsonl") as writer:
        first = writer.append({"x": 1})
        second = writer.append({"x": 2}, id_prefix="r_")
    assert first["prev_record_hash"] == GENESIS
    assert second["prev_record_hash"] == record_hash(first)
    assert second["record_id"] == "r_00000001"
    records, torn = read_chain_file(tmp_path / "c.jsonl")
    assert records == [first, second] and not torn
    assert (tmp_path / "c.jsonl").read_bytes().count(b"\n") == 2


def test_reopen_continues_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    with ChainWriter(path) as writer:
        for i in range(3):
            writer.append({"i": i}, id_prefix="a")
    with ChainWriter(path) as writer:
        assert writer.count == 3
        stored = writer.append({"i": 3}, id_prefix="a")
    records, _ = read_chain_file(path)
    assert stored["record_id"] == "a00000003"
    assert len(records) == 4 and verify_chain(records) == []
    assert chain_head(records) == record_hash(stored)


def test_reopen_truncates_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    with ChainWriter(path) as writer:
        writer.append({"i": 0})
        writer.append({"i": 1})
    with open(path, "ab") as handle:
        handle.write(b'{"i":2,"prev_record_ha')  # what a write cut mid-record leaves
    records, torn = read_chain_file(path)
    assert torn and len(records) == 2
    with ChainWriter(path) as writer:
        assert writer.torn_tail_repaired
        writer.append({"i": 2})
    records, torn = read_chain_file(path)
    assert not torn and [r["i"] for r in records] == [0, 1, 2]
    assert verify_chain(records) == []


def test_last_line_without_newline_is_kept_when_complete(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    with ChainWriter(path) as writer:
        writer.append({"i": 0})
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    records, torn = read_chain_file(path)
    assert len(records) == 1 and not torn
    with ChainWriter(path) as writer:
        assert not writer.torn_tail_repaired
        writer.append({"i": 1})
    records, _ = read_chain_file(path)
    assert len(records) == 2 and verify_chain(records) == []


def test_corrupt_middle_line_is_an_input_error_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text('{"a":1}\nnot json\n{"a":2}\n')
    with pytest.raises(InputError) as info:
        read_chain_file(path)
    assert info.value.line == 2


def test_concurrent_appends_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    with ChainWriter(path) as writer:

        def work(k: int) -> None:
            for i in range(200):
                writer.append({"thread": k, "i": i}, id_prefix="t")

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    records, torn = read_chain_file(path)
    assert not torn and len(records) == 800
    assert verify_chain(records) == []
    assert len({r["record_id"] for r in records}) == 800


def test_append_after_close_fails(tmp_path: Path) -> None:
    writer = ChainWriter(tmp_path / "c.jsonl")
    writer.close()
    writer.close()  # idempotent
    with pytest.raises(ValueError):
        writer.append({"x": 1})


_CHILD = textwrap.dedent("""
    import sys
    from inspectorate.capture import StepRecorder
    rec = StepRecorder(sys.argv[1], phase="crash", fingerprint_every=0)
    i = 0
    while True:
        rec.event("tick", step=i, payload="x" * 2000)
        i += 1
""")


def test_sigkill_leaves_a_chain_that_verifies(tmp_path: Path) -> None:
    """A real process killed mid-run: every complete record verifies; the writer resumes."""
    path = tmp_path / "steps.jsonl"
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(path)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if child.poll() is not None:
                pytest.fail(f"writer exited on its own ({child.returncode}): {child.stderr.read()[-2000:]}")
            if path.exists() and path.read_bytes().count(b"\n") >= 510:  # records, not bytes
                break
            time.sleep(0.02)
        else:
            pytest.fail("child wrote too little in 60 s")
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    records, _torn = read_chain_file(path)
    assert len(records) >= 500
    assert verify_chain(records) == []
    assert [r["step"] for r in records] == list(range(len(records)))
    with ChainWriter(path) as writer:
        writer.append({"kind": "resumed"})
    records, torn = read_chain_file(path)
    assert not torn and verify_chain(records) == [] and records[-1]["kind"] == "resumed"
