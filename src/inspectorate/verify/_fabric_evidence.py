"""What a fabric directory holds, read once for the cross-host checks (``_fabric``).

Two kinds of input, kept apart because the checks weigh them differently:

* the verifier's own (``--keyring``, ``--challenge``, ``--ledger``: in deployment these
  never pass through the prover's hands; by default they are read from ``FABRIC/verifier``
  and ``FABRIC/ledger``, which is what ``capture-fabric`` stands in for);
* the prover's claims: ``fabric.json`` (hosts, links, world size) and each host's
  ``workload_labels.jsonl`` and ``steps.jsonl``.

Each host's ``sensor.jsonl`` is the host's sensor's, and its worth comes from the signed
heads: the NIC counters read from it count only once ``host_signatures`` has tied the
stream to an enrolled host key and this fabric's challenge.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inspectorate.errors import InputError

MANIFEST = "fabric.json"
FABRIC_SCHEMA = "inspectorate.fabric/1"
STEP_KINDS = ("train_step", "step")  # StepRecorder's, and a bare job's own
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}


@dataclass
class HostEvidence:
    """One manifest host: its files and what the checks read from them."""

    index: int
    entry: dict[str, Any]
    dir: Path
    log: Path
    net: dict[str, tuple[int, int]] = field(default_factory=dict)  # iface -> (rx, tx) bytes over the run
    sensor_ok: bool = False
    last_t: float | None = None  # wall time of the sensor's last namespace reading
    steps: int | None = None
    step_world: set[int] = field(default_factory=set)
    label_world: set[int] = field(default_factory=set)
    n_params: set[int] = field(default_factory=set)
    grad_dtype: str = "float32"

    @property
    def name(self) -> str:
        return f"h{self.index}"


@dataclass
class FabricEvidence:
    root: Path
    manifest: dict[str, Any]
    keyring: Path
    ledger: Path
    challenge: str | None
    hosts: list[HostEvidence]

    @property
    def claimed_world(self) -> int | None:
        w = self.manifest.get("world_size")
        return w if isinstance(w, int) and not isinstance(w, bool) else None

    def links(self) -> list[tuple[int, str, int, str]]:
        out = []
        for row in self.manifest.get("links") or []:
            try:
                out.append((int(row["a"]), str(row["a_if"]), int(row["b"]), str(row["b_if"])))
            except (KeyError, TypeError, ValueError):
                raise InputError(f"malformed link {row!r}", self.root / MANIFEST) from None
        return out

    def host(self, index: int) -> HostEvidence | None:
        return next((h for h in self.hosts if h.index == index), None)


def load_fabric(
    root: Path,
    *,
    keyring: Path | None = None,
    ledger: Path | None = None,
    challenge: str | None = None,
) -> FabricEvidence:
    """Read ``root/fabric.json`` and every host it names; InputError on a bad layout."""
    if not root.is_dir():
        raise InputError("not a fabric directory", root)
    manifest = _json(root / MANIFEST)
    if manifest.get("schema") != FABRIC_SCHEMA:
        raise InputError(f"not a fabric manifest (schema {manifest.get('schema')!r})", root / MANIFEST)
    keyring = keyring or root / "verifier" / "ring.json"
    if not keyring.is_file():
        raise InputError("no keyring (give --keyring)", keyring)
    if challenge is None and (root / "verifier" / "challenge.txt").is_file():
        challenge = (root / "verifier" / "challenge.txt").read_text().strip() or None
    hosts = [_host(root, row, i) for i, row in enumerate(manifest.get("hosts") or [])]
    if not hosts:
        raise InputError("the manifest lists no hosts", root / MANIFEST)
    return FabricEvidence(root, manifest, keyring, ledger or root / "ledger", challenge, hosts)


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("no such file", path) from None
    except (OSError, ValueError) as exc:
        raise InputError(f"not readable JSON ({exc})", path) from None
    if not isinstance(data, dict):
        raise InputError("must hold a JSON object", path)
    return data


def _host(root: Path, row: Any, i: int) -> HostEvidence:
    if not isinstance(row, dict) or not isinstance(row.get("index"), int):
        raise InputError(f"hosts[{i}] needs an integer 'index'", root / MANIFEST)
    h = HostEvidence(row["index"], row, root / str(row.get("dir", "")), root / str(row.get("log", "")))
    h.net, h.sensor_ok, h.last_t = net_deltas(h.dir / "sensor.jsonl")
    _claims(h)
    return h


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a torn or foreign line: the chain checks judge the file, not this reader
        if isinstance(rec, dict):
            out.append(rec)
    return out


def net_deltas(sensor: Path) -> tuple[dict[str, tuple[int, int]], bool, float | None]:
    """Per interface of the host's namespace: (rx, tx) bytes between the sensor's first and
    last reading of that namespace (``wl_net``), whether there was one, and the last
    reading's time; (``{}``, False, None) without a readable stream."""
    samples = [r for r in _lines(sensor) if r.get("kind") == "sample" and isinstance(r.get("wl_net"), dict)]
    if not samples:
        return {}, False, None
    first, last = samples[0]["wl_net"], samples[-1]["wl_net"]
    out = {}
    for iface, now in last.items():
        if iface == "lo" or not isinstance(now, list) or len(now) < 2:
            continue
        then = first.get(iface) or [0, 0]
        out[iface] = (int(now[0]) - int(then[0]), int(now[1]) - int(then[1]))
    t = samples[-1].get("t")
    return out, True, float(t) if isinstance(t, (int, float)) else None


def _claims(h: HostEvidence) -> None:
    """The host's own claims: world size and model from its labels and step records."""
    for rec in _lines(h.dir / "workload_labels.jsonl"):
        if isinstance(rec.get("world_size"), int):
            h.label_world.add(rec["world_size"])
        if isinstance(rec.get("claimed_n_params"), int):
            h.n_params.add(rec["claimed_n_params"])
    steps = [r for r in _lines(h.dir / "steps.jsonl") if r.get("kind") in STEP_KINDS]
    if steps:
        h.steps = len(steps)
        h.step_world = {r["world_size"] for r in steps if isinstance(r.get("world_size"), int)}
        h.n_params |= {r["n_params"] for r in steps if isinstance(r.get("n_params"), int)}
        h.grad_dtype = str(steps[-1].get("grad_dtype") or "float32")
