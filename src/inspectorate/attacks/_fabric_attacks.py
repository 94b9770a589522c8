"""Fabric forgers: a prover who rewrites a multi-host run after the fact (docs/fabric.md).

The forger owns every file the prover writes (``fabric.json``, each host's labels,
window and step records, collective logs) and rewrites them to agree with its claim,
re-chained. It cannot sign as a host (the keys never left the hosts' sensors), cannot
edit a signed sensor stream without breaking its signed heads, and cannot shrink the
log operator's logs (a witness cosigned them). Each forger writes a forged copy of the
fabric to ``dst``; the verifier checks it against its own keyring, challenge and the log
operator's ledger (those of the original).

One registered function per forger (``@fabric_forger``), with the claim it makes.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inspectorate.errors import InputError
from inspectorate.trace._canonical import rechain

MANIFEST = "fabric.json"
CHAINED = ("windows.jsonl", "steps.jsonl")
PLAIN = ("workload_labels.jsonl", "collectives.jsonl")


@dataclass(frozen=True)
class FabricForger:
    name: str
    claim: str
    fn: Callable[[Path, Path], None]


FABRIC_FORGERS: dict[str, FabricForger] = {}


def fabric_forger(
    name: str, claim: str
) -> Callable[[Callable[[Path, Path], None]], Callable[[Path, Path], None]]:
    def register(fn: Callable[[Path, Path], None]) -> Callable[[Path, Path], None]:
        FABRIC_FORGERS[name] = FabricForger(name, claim, fn)
        return fn

    return register


def forge(name: str, src: Path, dst: Path) -> Path:
    """Write forger ``name``'s version of the fabric at ``src`` to ``dst`` (new)."""
    if name not in FABRIC_FORGERS:
        raise InputError(f"unknown fabric forger {name!r}; known: {', '.join(FABRIC_FORGERS)}")
    if dst.exists():
        raise InputError("exists; a forgery goes to a new directory", dst)
    shutil.copytree(src, dst)
    shutil.rmtree(dst / "verifier", ignore_errors=True)  # the verifier's: never the prover's to hand over
    FABRIC_FORGERS[name].fn(src, dst)
    return dst


# ------------------------------------------------------------------------ file rewriting


def _manifest(root: Path) -> dict[str, Any]:
    return dict(json.loads((root / MANIFEST).read_text()))


def _save_manifest(root: Path, manifest: dict[str, Any]) -> None:
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _rewrite(run_dir: Path, edit: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Apply ``edit`` to every record of the host's prover files; chained files re-chained."""
    for name in CHAINED + PLAIN:
        path = run_dir / name
        if not path.is_file():
            continue
        records = [edit(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]
        if name in CHAINED:
            records = rechain(records)
        path.write_text("".join(json.dumps(r, separators=(",", ":"), sort_keys=True) + "\n" for r in records))


def _set(**fields: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """An edit that overwrites ``fields`` (and their label twins) where a record has them."""
    twins = {"n_params": "claimed_n_params"}

    def edit(record: dict[str, Any]) -> dict[str, Any]:
        out = dict(record)
        for key, value in fields.items():
            for name in (key, twins.get(key)):
                if name is not None and name in out:
                    out[name] = value
        return out

    return edit


def _drop_host(dst: Path, manifest: dict[str, Any], victim: int) -> dict[str, Any]:
    """Remove host ``victim`` (its run dir and its copy of its log) and its links."""
    entry = next(h for h in manifest["hosts"] if h["index"] == victim)
    shutil.rmtree(dst / entry["dir"], ignore_errors=True)
    shutil.rmtree(dst / entry["log"], ignore_errors=True)
    manifest["hosts"] = [h for h in manifest["hosts"] if h["index"] != victim]
    manifest["links"] = [lk for lk in manifest["links"] if victim not in (lk["a"], lk["b"])]
    manifest["world_size"] = len(manifest["hosts"])
    return manifest


def _claimed_n_params(dst: Path, manifest: dict[str, Any]) -> int:
    for line in (dst / manifest["hosts"][0]["dir"] / "workload_labels.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if isinstance(rec.get("claimed_n_params"), int):
            return int(rec["claimed_n_params"])
    raise InputError("the fabric claims no model size", dst)


# ------------------------------------------------------------------------ forgers


@fabric_forger("hide_host", "the job ran on one host fewer (the last rank's host is dropped)")
def hide_host(src: Path, dst: Path) -> None:
    manifest = _drop_host(dst, _manifest(dst), max(h["index"] for h in _manifest(dst)["hosts"]))
    for h in manifest["hosts"]:
        _rewrite(dst / h["dir"], _set(world_size=manifest["world_size"]))
    _save_manifest(dst, manifest)


@fabric_forger(
    "hide_host_competent",
    "one host fewer, and every traffic-bearing interface claimed: the survivors' links to the "
    "dropped host are declared links between survivors, and every size claim scaled so the "
    "ring all-reduce volume fits the smaller world",
)
def hide_host_competent(src: Path, dst: Path) -> None:
    manifest = _manifest(dst)
    old_w = manifest["world_size"]
    victim = max(h["index"] for h in manifest["hosts"])
    manifest = _drop_host(dst, manifest, victim)
    survivors = sorted(h["index"] for h in manifest["hosts"])
    orphans = [(i, f"p{victim}") for i in survivors]  # each survivor's interface to the victim
    for (a, a_if), (b, b_if) in zip(orphans[0::2], orphans[1::2], strict=False):
        manifest["links"].append({"a": a, "a_if": a_if, "b": b, "b_if": b_if})
    w = manifest["world_size"]
    # per-rank bytes go as 2(W-1)/W x G: inflate G so the smaller world moves the same bytes
    scale = ((old_w - 1) / old_w) / ((w - 1) / w) if w > 1 else 1.0
    _save_manifest(dst, manifest)
    _resize(dst, scale, world_size=w)


@fabric_forger("phantom_host", "the job ran on one host more (a copy of host 1's evidence as a new rank)")
def phantom_host(src: Path, dst: Path) -> None:
    manifest = _manifest(dst)
    new = max(h["index"] for h in manifest["hosts"]) + 1
    model = next(h for h in manifest["hosts"] if h["index"] == 1)
    entry = {**model, "index": new, "rank": new, "dir": f"hosts/h{new}", "log": f"ledger/h{new}"}
    shutil.copytree(dst / model["dir"], dst / entry["dir"])
    shutil.copytree(dst / model["log"], dst / entry["log"])
    _rewrite(dst / entry["dir"], _set(rank=new, chip_id=f"h{new}"))
    for h in manifest["hosts"]:
        manifest["links"].append({"a": h["index"], "a_if": f"p{new}", "b": new, "b_if": f"p{h['index']}"})
    manifest["hosts"].append(entry)
    manifest["world_size"] = len(manifest["hosts"])
    for h in manifest["hosts"]:
        _rewrite(dst / h["dir"], _set(world_size=manifest["world_size"]))
    _save_manifest(dst, manifest)


def _resize(dst: Path, factor: float, **also: Any) -> None:
    """Claim ``factor`` x the model's parameters everywhere the prover writes the size
    (labels, window FLOPs, DDP's log of all-reduced bytes, fingerprints' parameter
    counts), and set the fields in ``also``; every host, re-chained."""
    manifest = _manifest(dst)
    set_fields = _set(n_params=round(_claimed_n_params(dst, manifest) * factor), **also)

    def edit(record: dict[str, Any]) -> dict[str, Any]:
        out = set_fields(record)
        if isinstance(out.get("flops"), (int, float)) and "window_start" in out:
            out["flops"] = out["flops"] * factor  # window records price tokens at 6 x n_params
        if out.get("op") == "allreduce" and isinstance(out.get("bytes"), int):
            out["bytes"] = round(out["bytes"] * factor)
        if out.get("kind") == "fingerprint" and isinstance(out.get("num_params"), int):
            out["num_params"] = round(out["num_params"] * factor)
        return out

    for h in manifest["hosts"]:
        _rewrite(dst / h["dir"], edit)


@fabric_forger("understate_model", "the model was half the size it was (every size claim rewritten to match)")
def understate_model(src: Path, dst: Path) -> None:
    _resize(dst, 0.5)


@fabric_forger(
    "understate_model_25", "the model was 25% smaller than it was (every size claim rewritten to match)"
)
def understate_model_25(src: Path, dst: Path) -> None:
    _resize(dst, 0.75)
