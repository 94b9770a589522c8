"""``inspectorate capture -- CMD``: run any command isolated, sensed, and labelled.

Order of events (why each matters):

1. refuse early: a bad claims file, a non-empty ``--out`` (without ``--force``) or
   missing rights (root, cgroups, ``ip``) exit 2 before anything runs; without rights
   the capture fails closed unless ``--shared-host`` (then traffic is never attributable);
2. create the workload's cgroup and network namespace (``_isolate``);
3. fork the child, which joins both and blocks on a pipe;
4. start the verifier-owned sensor (a separate process, ``inspectorate sensor --cgroup``)
   and wait for its first sample on disk;
5. release the child, which execs the command; the claims file's schedule and the
   workload's own ``capture.phase`` calls become labels and window records (``_channel``);
6. on exit: close open phases, kill what is left in the cgroup, stop the sensor, remove
   the cgroup and the namespace, and finish ``provenance.json``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import re
import secrets
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

from inspectorate.capture._channel import (
    RUN_DIR_ENV,
    SOCKET_ENV,
    Channel,
    ChannelServer,
    ClaimError,
    PhaseClaim,
)
from inspectorate.capture._isolate import Cgroup, Netns, missing_rights, spawn_gated
from inspectorate.capture._sensor_control import ask_sample
from inspectorate.capture._user import Account, resolve_user, share_run_dir
from inspectorate.errors import InputError

PROVENANCE_SCHEMA = "inspectorate.provenance/1"
MODEL_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
RUN_FILES = (
    "workload_labels.jsonl",
    "windows.jsonl",
    "sensor.jsonl",
    "sensor_ckpt.jsonl",
    "sensor_escape.jsonl",
    "provenance.json",
    "steps.jsonl",
    "capture.log",
)
ROOT_FILES = tuple(n for n in RUN_FILES if n != "steps.jsonl")  # the workload writes steps.jsonl


def _user_entry(account: Account | None) -> dict[str, Any]:
    """Who the workload ran as; root is named, since a root workload can kill the sensor
    and re-chain what it wrote (detected in part: docs/capture.md)."""
    if account is not None:
        return {"uid": account.uid, "gid": account.gid, "name": account.name}
    uid = os.geteuid()
    return {"uid": uid, "root": uid == 0}


@dataclass
class ScheduledPhase:
    claim: PhaseClaim
    start_s: float
    end_s: float


@dataclass
class Claims:
    """The claims file: a phase schedule (offsets from the command's start) and defaults."""

    path: Path
    sha256: str
    window_s: float = 5.0
    schedule: list[ScheduledPhase] = field(default_factory=list)
    models: dict[str, Path] = field(default_factory=dict)  # name -> model description handed over


def load_claims(path: Path) -> Claims:
    """YAML or JSON: ``{window_s, defaults: {...}, phases: [{name, op, start, end |
    duration, model, n_params, ...}]}``; InputError naming the file and the problem."""
    import yaml

    try:
        raw = path.read_bytes()
        doc = yaml.safe_load(raw) if raw.strip() else {}
    except OSError as exc:
        raise InputError(f"cannot read the claims file ({exc.strerror})", path) from None
    except yaml.YAMLError as exc:
        raise InputError(f"not YAML/JSON ({str(exc).splitlines()[0]})", path) from None
    if not isinstance(doc, dict):
        raise InputError("the claims file must be a mapping (phases:, defaults:, window_s:)", path)
    defaults = doc.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise InputError("'defaults' must be a mapping", path)
    window_s = doc.get("window_s", 5.0)
    if not isinstance(window_s, (int, float)) or window_s <= 0:
        raise InputError("'window_s' must be a positive number", path)
    claims = Claims(path, hashlib.sha256(raw).hexdigest(), float(window_s))
    phases = doc.get("phases") or []
    if not isinstance(phases, list):
        raise InputError("'phases' must be a list", path)
    for i, entry in enumerate(phases):
        claims.schedule.append(_scheduled(entry, defaults, path, i))
    claims.models = _models(doc.get("models") or {}, path)
    return claims


def _models(listed: Any, path: Path) -> dict[str, Path]:
    """``models: {NAME: FILE}``: the description of each declared model (``inspectorate.models``
    format), handed over with the run as ``RUN/models/NAME.json`` so the verifier can build
    it. Paths are relative to the claims file; the files are checked by the verifier."""
    if not isinstance(listed, dict):
        raise InputError("'models' must map model names to description files", path)
    out = {}
    for name, file in listed.items():
        if not isinstance(name, str) or not MODEL_NAME.fullmatch(name):
            raise InputError(f"model name {name!r} must be letters, digits, '.', '_' or '-'", path)
        where = path.parent / str(file)
        if not where.is_file():
            raise InputError(f"model {name!r}: no description file {where}", path)
        out[name] = where
    return out


def _model_files(name: str, file: Path) -> list[tuple[Path, str]]:
    """What goes to RUN/models/ for one declared model: an exported archive (.pt2, .pt)
    as NAME.pt2/.pt; a JSON description as NAME.json plus the archive it names beside it."""
    if file.suffix in (".pt2", ".pt"):
        return [(file, f"{name}{file.suffix}")]
    out = [(file, f"{name}.json")]
    try:
        linked = json.loads(file.read_text(encoding="utf-8")).get("config", {}).get("file")
    except (OSError, ValueError, AttributeError):
        return out  # the verifier reports a bad description
    if isinstance(linked, str) and "/" not in linked and (file.parent / linked).is_file():
        out.append((file.parent / linked, linked))
    return out


def _scheduled(entry: Any, defaults: dict[str, Any], path: Path, i: int) -> ScheduledPhase:
    if not isinstance(entry, dict):
        raise InputError(f"phase #{i + 1} must be a mapping", path)
    try:
        claim = PhaseClaim.parse(entry, defaults)
    except ClaimError as exc:
        raise InputError(str(exc), path) from None
    start = entry.get("start", 0.0)
    end = entry.get("end")
    if end is None and entry.get("duration") is not None:
        end = start + entry["duration"] if isinstance(start, (int, float)) else None
    if not isinstance(start, (int, float)) or not isinstance(end, (int, float)) or not 0 <= start < end:
        raise InputError(f"phase {claim.name!r} needs 0 <= start < end (or a duration), in seconds", path)
    return ScheduledPhase(claim, float(start), float(end))


@dataclass
class CaptureResult:
    exit_code: int
    run_dir: Path
    isolated: bool
    sensor_samples: int = 0
    channel_errors: list[str] = field(default_factory=list)


def capture(
    cmd: Sequence[str],
    claims_path: Path | str,
    out: Path | str,
    *,
    shared_host: bool = False,
    hz: float = 10.0,
    force: bool = False,
    user: str | None = None,
) -> CaptureResult:
    """Run ``cmd`` isolated (or, with ``shared_host``, as a plain child tree) under the
    sensor, labelled by the claims file's schedule and the workload's own phase calls;
    as ``user`` where given (``_user``)."""
    if not cmd:
        raise InputError("no command given (inspectorate capture ... -- CMD ARGS)")
    account = resolve_user(user)
    claims = load_claims(Path(claims_path))
    out = _prepare_out(Path(out), force)
    missing = [] if shared_host else missing_rights()
    if missing:
        raise InputError(
            "cannot isolate the workload: missing "
            + "; ".join(missing)
            + " (--shared-host runs it unisolated,"
            " and then no traffic is attributable)"
        )
    for name, file in claims.models.items():  # the declared models go with the run
        (out / "models").mkdir(exist_ok=True)
        for src, dst in _model_files(name, file):
            (out / "models" / dst).write_bytes(src.read_bytes())
    tag = secrets.token_hex(3)
    cgroup = netns = None
    scratch = Path(tempfile.mkdtemp(prefix="insp-cap-"))
    channel = Channel(out, window_s=claims.window_s, chip=platform.node() or "host0")
    server = ChannelServer(channel, scratch / "labels.sock")
    prov = _provenance(cmd, claims, shared_host)
    prov["workload_user"] = _user_entry(account)
    if account is not None:  # it may add its evidence, never touch the verifier's
        share_run_dir(out, account, ROOT_FILES, ("claims",))
        os.chmod(scratch, 0o711)
        os.chmod(server.path, 0o666)
    try:
        if not shared_host:
            cgroup = Cgroup.create(f"inspectorate-{tag}")
            netns = Netns.create(tag)
            prov["isolation"] = {
                "cgroup_version": cgroup.version,
                "cgroups": [str(d) for d in cgroup.dirs],
                "netns": netns.name,
                "veth": {
                    "host": f"{netns.host_if} {netns.host_ip}/30",
                    "workload": f"{netns.ns_if} {netns.ns_ip}/30",
                },
            }
        _write_json(out / "provenance.json", prov)
        env = {**os.environ, SOCKET_ENV: str(server.path), RUN_DIR_ENV: str(out)}
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # spinning waits burn CPU that measures nothing
        env = account.env(env) if account is not None else env
        child = spawn_gated(list(cmd), env, cgroup, netns, account)
        try:
            target = (
                ["--cgroup", str(cgroup.sensor_path)] if cgroup is not None else ["--pid", str(child.pid)]
            )
            ctl = scratch / "sensor" / "control.sock"  # root's alone: the workload may not reach it
            ctl.parent.mkdir(mode=0o700)
            sensor = start_sensor(out, target, hz, control=ctl)
        except BaseException:
            child.abort()
            raise
        channel.edge = functools.partial(ask_sample, ctl)  # a sample at every phase edge
        sensor_cpu_at_release = _proc_cpu_s(sensor.pid)
        code = _run(child, channel, claims)
        channel.end_all()
        if cgroup is not None:
            cgroup.kill_all()
        time.sleep(2.0 / hz)  # the sensor's last samples cover the last phase's end
        sensor_cpu = _proc_cpu_s(sensor.pid)
        prov["overhead"] = {  # the sensor's CPU while the command ran (its start-up excluded)
            "sensor_cpu_s": None
            if sensor_cpu is None or sensor_cpu_at_release is None
            else sensor_cpu - sensor_cpu_at_release,
            "sensor_startup_cpu_s": sensor_cpu_at_release,
            "wrapper_cpu_s": _self_cpu_s(),
        }
        stop_sensor(sensor)
    finally:
        server.close()
        channel.close()
        if cgroup is not None:
            cgroup.kill_all()
            cgroup.remove()
        if netns is not None:
            netns.remove()
        _rmtree(scratch)
    prov["end_time"] = time.time()
    prov["exit_code"] = code
    prov["channel_errors"] = channel.errors[:50]
    _write_json(out / "provenance.json", prov)
    return CaptureResult(code, out, not shared_host, _samples(out), channel.errors)


def _run(child: Any, channel: Channel, claims: Claims) -> int:
    """Release the child, drive the schedule, forward SIGINT/SIGTERM; the exit code."""
    t0 = time.time()
    done = threading.Event()
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def forward(sig: int, _frame: Any) -> None:
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            pass

    on_main = threading.current_thread() is threading.main_thread()
    if on_main:
        for s in previous:
            signal.signal(s, forward)
    schedule = threading.Thread(target=_drive, args=(channel, claims.schedule, t0, done), daemon=True)
    child.release()
    schedule.start()
    try:
        return int(child.wait())
    finally:
        done.set()
        schedule.join(timeout=5)
        if on_main:
            for s, h in previous.items():
                signal.signal(s, h)


def _drive(channel: Channel, schedule: list[ScheduledPhase], t0: float, done: threading.Event) -> None:
    """Start and end scheduled phases at their offsets; stop (ending open ones) when the
    command exits."""
    events = sorted(
        [(p.start_s, 1, p) for p in schedule] + [(p.end_s, 0, p) for p in schedule],
        key=lambda e: (e[0], e[1]),
    )
    for offset, is_start, p in events:
        if done.wait(max(0.0, t0 + offset - time.time())):
            return
        if is_start:
            channel.start(p.claim)
        else:
            channel.end(p.claim.name)


def start_sensor(
    out: Path, target: list[str], hz: float, timeout_s: float = 30.0, control: Path | None = None
) -> subprocess.Popen[bytes]:
    """``inspectorate sensor`` as a separate process outside the workload's cgroup and
    namespace; returns once its first sample is on disk. ``control``: the socket on which
    it takes requests for a sample at each phase edge (``capture._sensor_control``)."""
    cmd = [sys.executable, "-m", "inspectorate.cli", "sensor", *target, "--out", str(out), "--hz", str(hz)]
    if control is not None:
        cmd += ["--control", str(control)]
    if sys.platform.startswith("linux"):  # the checkpoint watcher (RUN/sensor_ckpt.jsonl)
        cmd += ["--watch", str(out / "claims")]
    if "--cgroup" in target:  # processes leaving the cgroup or namespace (RUN/sensor_escape.jsonl)
        cmd.append("--escapes")
    log = open(out / "capture.log", "ab")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    log.close()
    path, deadline = out / "sensor.jsonl", time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists() and path.read_bytes().count(b"\n") >= 2:
            return proc
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    raise InputError(f"the sensor did not start (exit code {proc.poll()}; see capture.log)", out)


def stop_sensor(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _prepare_out(out: Path, force: bool) -> Path:
    if out.exists() and not out.is_dir():
        raise InputError("--out exists and is not a directory", out)
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise InputError("--out is not empty (evidence is never overwritten without --force)", out)
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
        _rmtree(out / "models")
        _rmtree(out / "claims")
        if any(out.iterdir()):
            raise InputError("--out holds files capture did not write; choose a new directory", out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _provenance(cmd: Sequence[str], claims: Claims, shared_host: bool) -> dict[str, Any]:
    return {
        "schema": PROVENANCE_SCHEMA,
        "tool": "inspectorate capture",
        "hostname": platform.node(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "cpu_count_logical": os.cpu_count(),
        "command": list(cmd),
        "claims_file": {"path": str(claims.path), "sha256": claims.sha256},
        "shared_host": shared_host,
        "isolation": None,
        "start_time": time.time(),
    }


def _proc_cpu_s(pid: int) -> float | None:
    """CPU-seconds a process has used (what the sensor costs the host)."""
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def _self_cpu_s() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _samples(out: Path) -> int:
    path = out / "sensor.jsonl"
    return (
        sum(1 for line in path.read_text().splitlines() if '"kind":"sample"' in line) if path.exists() else 0
    )


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
