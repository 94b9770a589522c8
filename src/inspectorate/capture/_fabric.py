"""``inspectorate capture-fabric --hosts N -- CMD``: one data-parallel job across N "hosts"
on this machine, each host with its own namespace, cgroup, sensor and signing key.

Layout written under ``--out`` (FABRIC):

* ``hosts/h<i>/``: host ``i``'s run directory, as ``inspectorate capture`` writes one
  (``sensor.jsonl`` by that host's verifier-owned sensor, ``workload_labels.jsonl`` and
  ``windows.jsonl`` from the claims, the job's own ``steps.jsonl``/``collectives.jsonl``);
* ``ledger/h<i>/``: host ``i``'s transparency log: its sensor signs the chain head every
  ``--sign-every`` seconds with the host key, a witness cosigns the log at the end;
* ``verifier/``: what the verifier keeps and the prover cannot rewrite in deployment: the
  keyring (public halves of every host, log and witness key), the witness's state and the
  challenge it issued (each host's sensor answers ``CHALLENGE:h<i>``);
* ``fabric.json``: the fabric manifest (the prover's claim: hosts, links, world size).

The private keys live in a scratch directory that is deleted when the run ends: like a
TEE's attestation key, no file the prover keeps holds them (docs/fabric.md).

Order of events: the mesh and every host's cgroup come first, then each host's command
is forked gated (it has joined its cgroup and namespace and waits), each host's sensor is
started and waited for, and only then are all ranks released together. A ``sleep`` holder
in every host keeps the namespace sampled after its rank exits, so every sensor's last
NIC reading comes after the last byte of the job crossed the links.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inspectorate.capture._capture import Claims, _drive, _samples, load_claims, stop_sensor
from inspectorate.capture._channel import RUN_DIR_ENV, SOCKET_ENV, Channel, ChannelServer
from inspectorate.capture._fabric_net import MAX_HOSTS, Mesh, link_name
from inspectorate.capture._isolate import Cgroup, GatedChild, Netns, missing_rights, spawn_gated
from inspectorate.errors import InputError

FABRIC_SCHEMA = "inspectorate.fabric/1"
MANIFEST = "fabric.json"
HOSTS_DIR, LEDGER_DIR, VERIFIER_DIR = "hosts", "ledger", "verifier"
KEYRING, CHALLENGE_FILE, WITNESS_STATE = "ring.json", "challenge.txt", "witness.json"
GRACE_S = 30.0  # how long peers of a failed rank may take to notice before they are stopped


def host_challenge(challenge: str, index: int) -> str:
    """The nonce host ``index``'s sensor puts in its start record (one per host, so a copy
    of one host's stream cannot stand in for another's)."""
    return f"{challenge}:h{index}"


@dataclass
class FabricResult:
    out: Path
    exit_codes: list[int]
    samples: list[int]
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return next((c for c in self.exit_codes if c != 0), 0)


@dataclass
class _Host:
    index: int
    run_dir: Path
    cgroup: Cgroup
    channel: Channel
    server: ChannelServer
    child: GatedChild | None = None
    holder: GatedChild | None = None
    sensor: subprocess.Popen[bytes] | None = None


def capture_fabric(
    cmd: Sequence[str],
    claims_path: Path | str,
    out: Path | str,
    *,
    hosts: int = 2,
    hz: float = 10.0,
    sign_every: float = 1.0,
    challenge: str | None = None,
    port: int = 29500,
    force: bool = False,
    grace_s: float = GRACE_S,
) -> FabricResult:
    """Run ``cmd`` once per host (rank = host index) across a namespace mesh, each host
    sensed and signing on its own; write the fabric layout above."""
    if not cmd:
        raise InputError("no command given (inspectorate capture-fabric ... -- CMD ARGS)")
    if not 2 <= hosts <= MAX_HOSTS:
        raise InputError(f"--hosts must be 2..{MAX_HOSTS}")
    claims = load_claims(Path(claims_path))
    out = _prepare_out(Path(out), force)
    missing = missing_rights()
    if missing:
        raise InputError("cannot build the fabric: missing " + "; ".join(missing))
    tag = secrets.token_hex(3)
    challenge = challenge or secrets.token_hex(16)
    scratch = Path(tempfile.mkdtemp(prefix="insp-fabric-"))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, scratch, True)
        mesh = Mesh.create(tag, hosts)
        stack.callback(mesh.remove)
        _keys(out, scratch, tag, hosts, challenge)
        members = [_open_host(out, scratch, tag, i, claims, stack) for i in range(hosts)]
        for h in members:
            env = _rank_env(h, mesh, hosts, port)
            netns = Netns(mesh.ns(h.index), "", "")
            h.holder = spawn_gated(["sleep", "86400"], env, h.cgroup, netns)
            h.holder.release()
            h.child = spawn_gated(list(cmd), env, h.cgroup, netns)
            stack.callback(_abort_unreleased, h)
        for h in members:  # all started first, then waited for: start-up is mostly imports
            h.sensor = _start_sensor(h, out, scratch, hz, sign_every, challenge)
            stack.callback(stop_sensor, h.sensor)
        for h in members:
            _await_sensor(h)
        codes = _run_all(members, claims, grace_s)
        ended = time.time()
        # every sensor samples the links after the last byte moved; one that never does
        # (starved past the timeout) is named in the manifest and verify reads it
        late = [h.index for h in members if not _await_sample_after(h, ended + 1.0 / hz)]
        if late:
            print(
                f"capture fabric: sensors of hosts {late} wrote no sample after the ranks ended",
                file=sys.stderr,
            )
        for h in members:
            h.channel.end_all()
            h.cgroup.kill_all()
        time.sleep(2.0 / hz)
        for h in members:
            assert h.sensor is not None
            stop_sensor(h.sensor)
        _witness(out, scratch, tag, hosts)
        manifest = {
            **_manifest(out, mesh, cmd, claims, codes, tag, port),
            "ranks_ended": ended,
            "late_sensors": late,
        }
        _write_json(out / MANIFEST, manifest)
    return FabricResult(out, codes, [_samples(h.run_dir) for h in members], manifest)


def _prepare_out(out: Path, force: bool) -> Path:
    if out.exists() and not out.is_dir():
        raise InputError("--out exists and is not a directory", out)
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise InputError("--out is not empty (evidence is never overwritten without --force)", out)
        if not (out / MANIFEST).is_file():
            raise InputError("--out holds no earlier fabric (no fabric.json); choose a new directory", out)
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _keys(out: Path, scratch: Path, tag: str, n: int, challenge: str) -> None:
    """Generate every host, log and witness key; enrol the public halves in the verifier's
    keyring; start one log per host (one writer per log: the operator keeps its frontier
    in memory)."""
    from inspectorate.ledger import enrol, generate_key, init_log, save_key

    ver = out / VERIFIER_DIR
    ver.mkdir(parents=True)
    (ver / CHALLENGE_FILE).write_text(challenge + "\n")
    wanted = [(f"fabric-{tag}-witness", "witness", "witness")]
    for i in range(n):
        wanted += [(f"fabric-{tag}-h{i}", "host", f"h{i}"), (f"fabric-{tag}-log{i}", "log", f"log{i}")]
    for key_id, role, file in wanted:
        key = generate_key(key_id, role)
        save_key(key, scratch / f"{file}.key")
        enrol(ver / KEYRING, key.id, role, key.public_hex)
    for i in range(n):
        init_log(out / LEDGER_DIR / f"h{i}", f"fabric-{tag}-log{i}")


def _open_host(
    out: Path, scratch: Path, tag: str, i: int, claims: Claims, stack: contextlib.ExitStack
) -> _Host:
    run_dir = out / HOSTS_DIR / f"h{i}"
    run_dir.mkdir(parents=True)
    for name, file in claims.models.items():
        (run_dir / "models").mkdir(exist_ok=True)
        (run_dir / "models" / f"{name}.json").write_bytes(file.read_bytes())
    cgroup = Cgroup.create(f"inspectorate-{tag}-h{i}")
    stack.callback(cgroup.remove)
    stack.callback(cgroup.kill_all)
    channel = Channel(run_dir, window_s=claims.window_s, chip=f"h{i}")
    stack.callback(channel.close)
    server = ChannelServer(channel, scratch / f"h{i}.sock")
    stack.callback(server.close)
    return _Host(i, run_dir, cgroup, channel, server)


def _rank_env(h: _Host, mesh: Mesh, world: int, port: int) -> dict[str, str]:
    return {
        **os.environ,
        SOCKET_ENV: str(h.server.path),
        RUN_DIR_ENV: str(h.run_dir),
        "RANK": str(h.index),
        "LOCAL_RANK": "0",
        "WORLD_SIZE": str(world),
        "MASTER_ADDR": mesh.address(0),
        "MASTER_PORT": str(port),
        # any link carries the host's address; gloo binds to it
        "GLOO_SOCKET_IFNAME": link_name(1 if h.index == 0 else 0),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        "OMP_WAIT_POLICY": "PASSIVE",
    }


def _abort_unreleased(h: _Host) -> None:
    if h.child is not None and h.child.go_w >= 0:
        with contextlib.suppress(OSError):
            h.child.abort()


def _start_sensor(
    h: _Host, out: Path, scratch: Path, hz: float, sign_every: float, challenge: str
) -> subprocess.Popen[bytes]:
    """The host's sensor, outside its namespace and cgroup, signing into the host's log."""
    i = h.index
    cmd = [sys.executable, "-m", "inspectorate.cli", "sensor", "--cgroup", str(h.cgroup.sensor_path)]
    cmd += ["--out", str(h.run_dir), "--hz", str(hz), "--sign-every", str(sign_every)]
    cmd += ["--key", str(scratch / f"h{i}.key"), "--log", str(out / LEDGER_DIR / f"h{i}")]
    cmd += ["--log-key", str(scratch / f"log{i}.key"), "--challenge", host_challenge(challenge, i)]
    with open(h.run_dir / "capture.log", "ab") as log:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)


def _await_sensor(h: _Host, timeout_s: float = 60.0) -> None:
    """Return once the host's sensor has its first sample on disk (the rank may start)."""
    proc, path = h.sensor, h.run_dir / "sensor.jsonl"
    assert proc is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists() and path.read_bytes().count(b"\n") >= 2:
            return
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    raise InputError(f"host h{h.index}'s sensor did not start (see capture.log)", h.run_dir)


def _await_sample_after(h: _Host, t: float, timeout_s: float = 30.0) -> bool:
    """Wait until the host's sensor has written a sample taken at or after ``t`` (wall
    clock): a sensor starved by a loaded host may otherwise end on counters from before
    the last bytes moved, and its links would read as carrying nothing. False: it had
    not after ``timeout_s``."""
    path = h.run_dir / "sensor.jsonl"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _last_sample_t(path) >= t:
            return True
        time.sleep(0.02)
    return False


def _last_sample_t(path: Path) -> float:
    """The ``t`` of the last complete line of a sensor stream (0.0: none yet)."""
    try:
        with path.open("rb") as fh:
            fh.seek(max(fh.seek(0, 2) - 65536, 0))
            lines = fh.read().splitlines()
    except OSError:
        return 0.0
    for raw in reversed(lines[:-1] if lines and not lines[-1].endswith(b"}") else lines):
        try:
            return float(json.loads(raw).get("t", 0.0))
        except (ValueError, AttributeError, TypeError):
            continue
    return 0.0


def _run_all(members: list[_Host], claims: Claims, grace_s: float) -> list[int]:
    """Release every rank at once, drive each host's claim schedule, wait for all."""
    t0, done = time.time(), threading.Event()
    drivers = [
        threading.Thread(target=_drive, args=(h.channel, claims.schedule, t0, done), daemon=True)
        for h in members
    ]
    for h in members:
        assert h.child is not None
        h.child.release()
        h.child.go_w = -1  # released: nothing left to abort
    for t in drivers:
        t.start()
    try:
        return _wait_all([h.child for h in members if h.child is not None], grace_s)
    finally:
        done.set()
        for t in drivers:
            t.join(timeout=5)


def _wait_all(children: list[GatedChild], grace_s: float = GRACE_S) -> list[int]:
    """Every rank's exit code. A rank that fails leaves its peers blocked in a collective
    until their own timeout: once one exits non-zero, the rest get ``grace_s`` seconds,
    then SIGTERM (and SIGKILL 5 s later) to their process groups."""
    codes: dict[int, int] = {}
    deadline: float | None = None
    while len(codes) < len(children):
        for c in children:
            if c.pid in codes:
                continue
            pid, status = os.waitpid(c.pid, os.WNOHANG)
            if pid:
                codes[c.pid] = os.waitstatus_to_exitcode(status)
                if codes[c.pid] != 0 and deadline is None:
                    deadline = time.monotonic() + grace_s
        if deadline is not None and time.monotonic() > deadline:
            sig = signal.SIGKILL if time.monotonic() > deadline + 5 else signal.SIGTERM
            for c in children:
                if c.pid not in codes:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(c.pid, sig)
        time.sleep(0.05)
    return [codes[c.pid] for c in children]


def _witness(out: Path, scratch: Path, tag: str, n: int) -> None:
    from inspectorate.ledger._witness import witness_log

    ver = out / VERIFIER_DIR
    for i in range(n):
        answer = witness_log(
            out / LEDGER_DIR / f"h{i}", scratch / "witness.key", ver / KEYRING, ver / WITNESS_STATE
        )
        if answer.cosig is None:
            raise InputError(f"the witness refused host h{i}'s log: {answer.refusal}", out / LEDGER_DIR)


def _manifest(
    out: Path, mesh: Mesh, cmd: Sequence[str], claims: Claims, codes: list[int], tag: str, port: int
) -> dict[str, Any]:
    hosts = [
        {
            "index": i,
            "rank": i,
            "dir": f"{HOSTS_DIR}/h{i}",
            "log": f"{LEDGER_DIR}/h{i}",
            "host_key": f"fabric-{tag}-h{i}",
            "netns": mesh.ns(i),
            "address": mesh.address(i),
            "exit_code": codes[i],
        }
        for i in range(mesh.n)
    ]
    links = [{"a": i, "a_if": link_name(j), "b": j, "b_if": link_name(i)} for i, j in mesh.links()]
    return {
        "schema": FABRIC_SCHEMA,
        "tag": tag,
        "world_size": mesh.n,
        "master_addr": mesh.address(0),
        "master_port": port,
        "command": list(cmd),
        "claims_file": {"path": str(claims.path), "sha256": claims.sha256},
        "hosts": hosts,
        "links": links,
        "start_time": min((_first_t(out / HOSTS_DIR / f"h{i}") for i in range(mesh.n)), default=None),
        "end_time": time.time(),
    }


def _first_t(run_dir: Path) -> float:
    try:
        with open(run_dir / "sensor.jsonl", encoding="utf-8") as f:
            return float(json.loads(f.readline()).get("t", 0.0))
    except (OSError, ValueError):
        return 0.0


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")
