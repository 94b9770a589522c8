"""The sensor's cheap reads (kept-open files, PSS carried between smaps_rollup reads)
give the same numbers as fresh reads, and its sensor/2 fields (faults, allocator) are
there and move with the workload."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from inspectorate.capture import _proc_table
from inspectorate.capture._proc_sensor import SCHEMA, ProcSensor, read_proc
from inspectorate.capture._proc_table import PSS_SLACK_B, ProcTable
from inspectorate.capture._procfs import Pread, pss_b, read_once
from inspectorate.trace.streams import read_sensor

MIB = 1 << 20
# a child that holds N MiB of private memory, touched page by page, until stdin closes
HOLDER = "import sys\nbufs=[]\nfor line in sys.stdin:\n    bufs.append(bytearray(int(line) << 20))\n    print('ok', flush=True)\n"


def _holder() -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


def _grow(child: subprocess.Popen[str], mib: int) -> None:
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(f"{mib}\n")
    child.stdin.flush()
    assert child.stdout.readline().strip() == "ok"


def test_a_kept_open_file_rereads_fresh_values_and_dies_with_its_process():
    child = _holder()
    try:
        f = Pread(f"/proc/{child.pid}/stat")
        before = read_proc(child.pid, pss=False)
        _grow(child, 48)
        text = f.read()
        assert text is not None
        rss_now = int(text[text.rfind(b")") + 2 :].split()[21]) * os.sysconf("SC_PAGE_SIZE")
        assert before is not None and rss_now - before.rss_b >= 40 * MIB  # the same fd, new numbers
    finally:
        child.kill()
        child.wait()
    assert f.read() in (None, b"")  # bound to the exited process, never to a reused PID
    f.close()


def test_pss_is_carried_by_rss_and_reread_when_rss_moves(monkeypatch):
    reads: list[str] = []
    real = _proc_table.read_once

    def counted(path: str) -> bytes | None:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(_proc_table, "read_once", counted)
    child = _holder()
    table = ProcTable()
    try:
        files = table.get(child.pid)
        assert files is not None
        rss = lambda: read_proc(child.pid, pss=False).rss_b  # noqa: E731
        t = 1000.0
        first = files.pss_now(rss(), t)
        assert len(reads) == 1 and first is not None
        _grow(child, 4)  # small private growth: carried, not re-read, and exact within slack
        carried = files.pss_now(rss(), t + 5)
        truth = pss_b(read_once(f"/proc/{child.pid}/smaps_rollup"))
        assert len(reads) == 1 and truth is not None
        assert abs(carried - truth) < PSS_SLACK_B  # type: ignore[operator]
        assert carried - first >= 3 * MIB  # type: ignore[operator]
        files.pss_now(rss(), t + _proc_table.PSS_MAX_AGE_S)  # a re-read by age ...
        assert len(reads) == 2
        _grow(child, 64)  # ... then RSS moves past the slack: re-read, but not within a second
        files.pss_now(rss(), t + _proc_table.PSS_MAX_AGE_S + 0.5)
        assert len(reads) == 2
        files.pss_now(rss(), t + _proc_table.PSS_MAX_AGE_S + 1.1)
        assert len(reads) == 3
    finally:
        table.close()
        child.kill()
        child.wait()


def test_sensor2_records_carry_faults_and_memory_by_kind(tmp_path: Path):
    child = _holder()
    sensor = ProcSensor(tmp_path, pid=child.pid, hz=20, gpu=False)
    stop = threading.Event()
    runner = threading.Thread(target=sensor.run, args=(stop,))
    runner.start()
    try:
        time.sleep(0.3)
        _grow(child, 32)
        time.sleep(0.4)
    finally:
        stop.set()
        runner.join()
        child.kill()
        child.wait()
    log = read_sensor(tmp_path / "sensor.jsonl")
    assert log.intact
    s = log.records
    assert all(r["schema"] == SCHEMA for r in s) and len(s) >= 4
    first, last = s[0], s[-1]
    assert last["anon_rss_b"] - first["anon_rss_b"] >= 30 * MIB  # the bytearray is anonymous memory
    assert last["file_rss_b"] > 0  # the interpreter's mapped files
    assert last["minflt"] - first["minflt"] >= 30 * MIB // os.sysconf("SC_PAGE_SIZE") // 2
    pid, _cpu, _rss, _threads, minflt, majflt = last["per_proc"][0]
    assert pid == child.pid and minflt >= last["minflt"] - first["minflt"] and majflt >= 0
    assert last["pss_b"] <= last["rss_b"]


def test_cgroup_memory_stat_gives_faults_and_anon(tmp_path: Path):
    from inspectorate.capture._isolate import Cgroup, missing_rights

    if missing_rights():
        pytest.skip("no rights to create a cgroup here: " + "; ".join(missing_rights()))
    child = _holder()
    group = Cgroup.create(f"insp-test-{child.pid}")
    try:
        group.join(child.pid)
        sensor = ProcSensor(tmp_path, cgroup=group.sensor_path, hz=10, gpu=False)
        before = sensor.sample()
        _grow(child, 40)
        after = sensor.sample()
        sensor.close()
    finally:
        child.kill()
        child.wait()
        group.kill_all()
        group.remove()
    cg0, cg1 = before["cg"], after["cg"]
    assert {"pgfault", "pgmajfault", "anon_b", "file_b"} <= set(cg1)
    assert cg1["pgfault"] - cg0["pgfault"] >= 40 * MIB // os.sysconf("SC_PAGE_SIZE") // 2
    assert cg1["anon_b"] - cg0["anon_b"] >= 32 * MIB
    assert cg1["cpu_s"] > cg0["cpu_s"] and cg1["mem_b"] - cg0["mem_b"] >= 32 * MIB  # kept-open, fresh
    assert after["procs"] == 1 and after["per_proc"][0][0] == child.pid


def test_readers_take_sensor1_records_and_expose_sensor2_fields(tmp_path: Path):
    from inspectorate.verify._sensor_features import SensorRun, window

    old = Path(__file__).parents[2] / "src/inspectorate/data/bench/public-v1/runs/r03/sensor.jsonl"
    log = read_sensor(old)
    assert log.records[0]["schema"] == "inspectorate.sensor/1" and log.frame.height > 10
    assert log.frame["cg_pgfault"].null_count() == log.frame.height
    t = log.frame["t"]
    feats = window(SensorRun(log, 0.0), float(t[0]), float(t[-1]))
    assert feats["cg_pgfault"] is None and feats["anon_rss_max_b"] is None and feats["cores"] >= 0
    child = _holder()  # a sensor/2 stream: the same reader, the new fields filled in
    try:
        ProcSensor(tmp_path, pid=child.pid, hz=20, gpu=False).run(duration=0.3)
    finally:
        child.kill()
        child.wait()
    new = read_sensor(tmp_path / "sensor.jsonl")
    t = new.frame["t"]
    feats = window(SensorRun(new, 0.0), float(t[0]), float(t[-1]))
    assert feats["anon_rss_max_b"] > 0 and feats["cg_pgfault"] is None  # no cgroup: pid mode


def test_a_process_that_comes_or_goes_triggers_a_pss_reread(monkeypatch):
    reads: list[str] = []
    real = _proc_table.read_once
    monkeypatch.setattr(_proc_table, "read_once", lambda p: reads.append(p) or real(p))
    child = _holder()
    table = ProcTable()
    try:
        files = table.get(child.pid)
        assert files is not None
        rss = read_proc(child.pid, pss=False).rss_b  # type: ignore[union-attr]
        files.pss_now(rss, 100.0)
        files.pss_now(rss, 102.0)  # nothing moved: carried
        assert len(reads) == 1
        files.pss_now(rss, 102.5, others_changed=True)  # a sharer exited: re-read ...
        assert len(reads) == 2
        files.pss_now(rss, 103.0, others_changed=True)  # ... but not twice within a second
        assert len(reads) == 2
    finally:
        table.close()
        child.kill()
        child.wait()


def test_steady_ticks_open_no_files(monkeypatch, tmp_path: Path):
    """The cost guard: once a process is known, a tick re-reads kept-open descriptors
    (pread) and opens nothing, unless PSS is due (shared memory moved, a process came or
    went, its age)."""
    from inspectorate.capture import _procfs

    child = _holder()
    try:
        sensor = ProcSensor(tmp_path, pid=child.pid, hz=10, gpu=False)
        for _ in range(3):
            sensor.sample()  # first sight: files opened, PSS read
        opened: list[str] = []
        real_open = _procfs.os.open
        monkeypatch.setattr(_procfs.os, "open", lambda p, *a: opened.append(p) or real_open(p, *a))
        for _ in range(20):
            record = sensor.sample()
        monkeypatch.undo()
        assert opened == [] and record["procs"] == 1 and record["pss_b"] is not None
        _grow(child, 48)  # private memory moved past the slack: the workload's only
        time.sleep(_proc_table.PSS_MIN_AGE_S)  # process carries it exactly, no smaps read
        monkeypatch.setattr(_procfs.os, "open", lambda p, *a: opened.append(p) or real_open(p, *a))
        after = sensor.sample()
        monkeypatch.undo()
        assert opened == []
        assert after["pss_b"] - record["pss_b"] >= 40 * MIB
        truth = pss_b(read_once(f"/proc/{child.pid}/smaps_rollup"))
        assert truth is not None and abs(after["pss_b"] - truth) < PSS_SLACK_B
        sensor.close()
    finally:
        child.kill()
        child.wait()


def test_a_process_that_joins_the_cgroup_later_is_seen_at_the_next_tick(tmp_path: Path):
    """v1 serves a kept-open cgroup.procs its cached pid list again: the sensor must not
    keep that file open (a rank that joins after the sensor started would stay unseen)."""
    from inspectorate.capture._isolate import Cgroup, missing_rights

    if missing_rights():
        pytest.skip("no rights to create a cgroup here: " + "; ".join(missing_rights()))
    first, second = _holder(), _holder()
    group = Cgroup.create(f"insp-test-join-{first.pid}")
    try:
        group.join(first.pid)
        sensor = ProcSensor(tmp_path, cgroup=group.sensor_path, hz=10, gpu=False)
        assert [p[0] for p in sensor.sample()["per_proc"]] == [first.pid]
        group.join(second.pid)  # joins within the second that v1 would cache the list for
        seen = {p[0] for p in sensor.sample()["per_proc"]}
        sensor.close()
    finally:
        for child in (first, second):
            child.kill()
            child.wait()
        group.kill_all()
        group.remove()
    assert seen == {first.pid, second.pid}


def test_the_only_process_carries_private_growth_and_rereads_on_shared_memory(monkeypatch, tmp_path):
    reads: list[str] = []
    real = _proc_table.read_once

    def counted(path: str) -> bytes | None:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(_proc_table, "read_once", counted)
    child = _holder()
    table = ProcTable()
    try:
        files = table.get(child.pid)
        assert files is not None

        def now_read() -> tuple[int, int]:
            r = read_proc(child.pid, pss=False)
            assert r is not None
            return r.rss_b, r.file_b

        rss, file_b = now_read()
        files.pss_now(rss, 0.0, file_b=file_b, alone=True)
        assert len(reads) == 1
        _grow(child, 96)  # private, anonymous: PSS moves exactly as RSS, no re-read needed
        rss, file_b = now_read()
        carried = files.pss_now(rss, 5.0, file_b=file_b, alone=True)
        truth = pss_b(read_once(f"/proc/{child.pid}/smaps_rollup"))
        assert len(reads) == 1 and carried is not None and truth is not None
        # exact for the anonymous 96 MiB; library pages faulted in meanwhile (shared with
        # the host's other interpreters) count whole in RSS: off by less than the slack
        assert abs(carried - truth) < PSS_SLACK_B and carried - truth > -MIB
        files.pss_now(rss, 5.0 + _proc_table.PSS_MAX_AGE_S, file_b=file_b, alone=True)
        assert len(reads) == 1  # the longer age of a lone process
        # a file mapping (what other processes may share) moves: re-read
        files.pss_now(rss, 20.0, file_b=file_b + PSS_SLACK_B + MIB, alone=True)
        assert len(reads) == 2
        files.pss_now(rss, 21.0 + _proc_table.PSS_MAX_AGE_ALONE_S, file_b=file_b, alone=True)
        assert len(reads) == 3
    finally:
        table.close()
        child.kill()
        child.wait()
