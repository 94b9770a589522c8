"""Relay peers (``capture._peers``): the other end of the workload's sockets and pipes,
found from the kernel's tables on this box, and their CPU sampled."""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inspectorate.capture._peer_tables import (
    connected,
    held_by,
    host_ends,
    open_diag,
    parse_unix_dump,
    unix_dump,
)
from inspectorate.capture._peers import PeerAudit

ROOT = os.geteuid() == 0
CLONE_NEWNET = 0x40000000


def _diag_missing() -> str:
    try:
        unix_dump(open_diag(None))
    except OSError as exc:
        return f"this kernel has no unix sock_diag ({exc})"
    return ""


DIAG = _diag_missing()
needs_diag = pytest.mark.skipif(bool(DIAG), reason=DIAG)


def _ino(sock: socket.socket) -> int:
    return os.fstat(sock.fileno()).st_ino


@needs_diag
def test_unix_diag_names_the_peer_of_a_socketpair_and_of_an_accepted_pathname_socket(tmp_path):
    a, b = socket.socketpair()
    path = str(tmp_path / "x.sock")
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen()
    cli = socket.socket(socket.AF_UNIX)
    cli.connect(path)
    acc, _ = srv.accept()
    try:
        dump = {s.ino: s for s in unix_dump(open_diag(None))}
        assert dump[_ino(a)].peer == _ino(b) and dump[_ino(b)].peer == _ino(a)
        assert dump[_ino(cli)].peer == _ino(acc) and dump[_ino(acc)].peer == _ino(cli)
        assert dump[_ino(srv)].name == path and dump[_ino(acc)].name == path  # accepted: the listener's path
        assert dump[_ino(srv)].peer == 0 and dump[_ino(cli)].name == ""
    finally:
        for s in (a, b, srv, cli, acc):
            s.close()


def test_a_netlink_error_is_raised_not_read_as_an_empty_dump():
    head = (20).to_bytes(4, "little") + (2).to_bytes(2, "little") + bytes(10)
    with pytest.raises(OSError):
        parse_unix_dump(head + (-22).to_bytes(4, "little", signed=True))


@needs_diag
@pytest.mark.skipif(not ROOT, reason="needs root (CAP_SYS_ADMIN) for a network namespace and setns")
def test_the_accepted_end_of_a_cross_namespace_connection_lives_in_the_clients_namespace(tmp_path):
    """Why the audit dumps the workload's namespace: a client in another namespace
    connecting to a host path gets a server-side socket created in *its* namespace."""
    path = str(tmp_path / "h.sock")
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the client: its own namespace, then connect to the host's path
        code = 1
        try:
            if ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWNET) == 0:
                c = socket.socket(socket.AF_UNIX)
                c.connect(path)
                os.write(w, str(_ino(c)).encode())
                time.sleep(5)
                code = 0
        finally:
            os._exit(code)
    os.close(w)
    try:
        client_ino = int(os.read(r, 64))
        acc, _ = srv.accept()
        ns_dump = {s.ino: s for s in unix_dump(open_diag(f"/proc/{pid}/ns/net"))}
        host_dump = {s.ino for s in unix_dump(open_diag(None))}
        assert ns_dump[client_ino].peer == _ino(acc) and ns_dump[_ino(acc)].peer == client_ino
        assert _ino(acc) not in host_dump and _ino(srv) in host_dump
        acc.close()
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        srv.close()


def test_host_ends_match_the_reversed_tuple_and_leave_loopback_inside():
    ns_ip, host_ip = "0107FEA9", "0207FEA9"  # 169.254.7.1 / .2 as /proc/net prints them
    mine = {
        11: ("tcp", f"{ns_ip}:C350", f"{host_ip}:1F90", 1),
        12: ("tcp", "0100007F:C351", "0100007F:1F90", 1),  # loopback: the namespace's own
        13: ("udp", f"{ns_ip}:C352", f"{host_ip}:0035", 1),
        14: ("udp", f"{ns_ip}:C353", "00000000:0000", 7),  # unconnected
    }
    host = {
        21: ("tcp", f"{host_ip}:1F90", f"{ns_ip}:C350", 1),
        22: ("tcp", "0100007F:1F90", "0100007F:C351", 1),
        23: ("udp", "00000000:0035", "00000000:0000", 7),
    }
    assert host_ends(mine, host) == {21: (11, "tcp", "169.254.7.2:8080"), 23: (13, "udp", "169.254.7.2:53")}
    assert [connected(mine[i]) for i in (11, 12, 13, 14)] == [True, False, True, None]
    assert connected(("tcp", f"{ns_ip}:1F90", "00000000:0000", 10)) is False  # a listener


def _records() -> tuple[list[dict], object]:
    out: list[dict] = []

    def record(kind: str, **fields: object) -> None:
        out.append({"kind": kind, **fields})

    return out, record


BURN = (
    "import socket, sys, time\n"
    "s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen()\n"
    "c, _ = s.accept(); c.recv(16)\n"
    "t = time.process_time()\n"
    "while time.process_time() - t < float(sys.argv[2]): pass\n"
    "c.send(b'done'); c.recv(16)\n"
)


@needs_diag
def test_a_helper_outside_the_tracked_processes_is_a_relay_peer_and_its_cpu_is_sampled(tmp_path):
    """The audit without a capture: 'the workload' is this test's process, the helper a
    child it does not track. Its CPU rises while it works for us."""
    path = str(tmp_path / "w.sock")
    helper = subprocess.Popen([sys.executable, "-c", BURN, path, "0.6"])
    try:
        while not os.path.exists(path):
            time.sleep(0.02)
        c = socket.socket(socket.AF_UNIX)
        c.connect(path)
        recs, record = _records()
        audit = PeerAudit(record, verifier=set())
        me, ns = os.getpid(), os.readlink("/proc/self/ns/net")
        audit.audit({me}, ns)
        c.send(b"work")
        c.recv(16)
        audit.audit({me}, ns)
        c.send(b"bye")
        helper.wait(timeout=10)
        audit.audit({me}, ns)
        audit.close()
    finally:
        helper.kill()
    peers = [r for r in recs if r["kind"] == "relay_peer" and r["via"] == "unix"]  # not pytest's stdio pipes
    assert [(p["pid"], p["via"], p["address"], p["workload_pid"]) for p in peers] == [
        (helper.pid, "unix", path, me)
    ]
    cpu = [r["cpu_s"] for r in recs if r["kind"] == "relay_cpu" and r["pid"] == helper.pid]
    assert len(cpu) >= 2 and cpu[-1] - cpu[0] >= 0.4, recs
    assert {"kind": "relay_gone", "pid": helper.pid} in recs
    assert audit.audits == 3 and audit.cpu_s > 0


@needs_diag
def test_the_workloads_own_processes_over_a_socketpair_and_a_pipe_are_no_relay(tmp_path):
    a, b = socket.socketpair()
    r, w = os.pipe()
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    child = subprocess.Popen(
        [sys.executable, "-c", f"import time, os; f = os.open({str(fifo)!r}, os.O_RDONLY); time.sleep(30)"],
        pass_fds=(b.fileno(), r),
    )
    fd = os.open(fifo, os.O_WRONLY)  # blocks until the child has its end open
    try:
        me = os.getpid()
        held = held_by({me, child.pid})
        assert _ino(a) in held.sockets and _ino(b) in held.sockets and len(held.pipes) >= 2
        recs, record = _records()
        audit = PeerAudit(record, verifier=set())
        audit.audit({me, child.pid}, os.readlink("/proc/self/ns/net"))
        relays = [x for x in recs if x["kind"] == "relay_peer" and x["via"] in ("unix", "fifo")]
        # this test's own stdio may be a pipe to pytest's parent: those are not our channels
        ours = {"", str(fifo), f"pipe:[{os.fstat(r).st_ino}]"}
        assert not [x for x in relays if x["address"] in ours or x["via"] == "unix"], recs
        audit.close()
    finally:
        child.kill()
        child.wait()
        os.close(fd)
        a.close()
        b.close()
        os.close(r)
        os.close(w)


@needs_diag
def test_a_fifo_held_by_a_process_outside_is_a_relay_peer(tmp_path):
    fifo = tmp_path / "q"
    os.mkfifo(fifo)
    helper = subprocess.Popen(
        [sys.executable, "-c", f"import os, time; os.open({str(fifo)!r}, os.O_RDONLY); time.sleep(30)"]
    )
    fd = os.open(fifo, os.O_WRONLY)
    try:
        recs, record = _records()
        audit = PeerAudit(record, verifier=set())
        audit.audit({os.getpid()}, os.readlink("/proc/self/ns/net"))
        audit.close()
        assert [
            (x["pid"], x["via"], x["address"])
            for x in recs
            if x["kind"] == "relay_peer" and x["address"] == str(fifo)
        ] == [(helper.pid, "fifo", str(fifo))]
    finally:
        helper.kill()
        helper.wait()
        os.close(fd)


def test_read_escapes_and_verify_count_only_the_cpu_inside_the_phase(tmp_path):
    from inspectorate.capture._chain_writer import ChainWriter
    from inspectorate.capture._escape import SCHEMA, STREAM, read_escapes
    from inspectorate.verify._relay import relayed

    writer = ChainWriter(Path(tmp_path) / STREAM)
    rows = [
        {"kind": "start", "t": 0.0, "relay_audit": True},
        {
            "kind": "relay_peer",
            "t": 1.0,
            "pid": 7,
            "comm": "py",
            "via": "unix",
            "address": "/x",
            "verifier": False,
        },
        {
            "kind": "relay_peer",
            "t": 1.0,
            "pid": 8,
            "comm": "cap",
            "via": "unix",
            "address": "/c",
            "verifier": True,
        },
        {"kind": "relay_cpu", "t": 1.0, "pid": 7, "cpu_s": 5.0},
        {"kind": "relay_cpu", "t": 12.0, "pid": 7, "cpu_s": 8.0},
        {"kind": "relay_cpu", "t": 25.0, "pid": 7, "cpu_s": 9.5},
        {"kind": "relay_gone", "t": 26.0, "pid": 7},
        {"kind": "stop", "t": 30.0},
    ]
    for row in rows:
        writer.append({"schema": SCHEMA, **row})
    writer.close()
    watch = read_escapes(tmp_path)
    assert watch is not None and list(watch["relays"]) == [7] and watch["relay_audit"]
    assert [p["cpu_s"] for p in relayed(watch, 10.0, 20.0)] == [3.0]
    assert [p["cpu_s"] for p in relayed(watch, 0.0, 30.0)] == [4.5]
    assert relayed(watch, 27.0, 30.0) == []  # gone before the phase
    assert relayed(watch, 0.0, 0.5) == []  # not yet connected
