"""Suites: a folder of cases, evidence and (host side) answers, with a content-addressed
manifest.

``manifest.json`` names the suite, its version, the builder version and seed, the
adversarial budget of each track, and the SHA-256 of every file; the suite's own hash is
the SHA-256 of the manifest's canonical JSON without that field. Rebuilding from the same
(builder version, seed) gives the same hashes for the deterministic tracks (compliance);
the run-directory tracks come from testbed runs whose telemetry is measured, not
generated, so they are not bit-reproducible: the manifest marks each file's origin
(``deterministic`` or ``measured``) and ``reproducible`` lists the tracks that are.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inspectorate.bench._case import TRACKS, Answer, Case, read_answers, read_cases, write_jsonl
from inspectorate.errors import InputError

BUILDER_VERSION = "1"
MANIFEST_SCHEMA = "inspectorate.bench.suite/1"
DETERMINISTIC_TRACKS = ("compliance",)
RUN_TRACKS = ("op_type", "undeclared_work", "model_size", "finetune")
PUBLIC_PHASES = (
    "honest_pretrain_tiny",
    "honest_pretrain_small",
    "honest_inference_small",
    "honest_finetune_tiny",
    "idle",
    "adv_train_as_infer",
    "adv_big_as_small",
    "adv_finetune_as_pretrain",
    "adv_work_as_idle",
    "adv_undeclared_job",
)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Suite:
    root: Path
    manifest: dict[str, Any]
    cases: list[Case]

    @property
    def name(self) -> str:
        return str(self.manifest["name"])

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def sha256(self) -> str:
        return str(self.manifest["sha256"])

    def answers(self, path: Path | None = None) -> dict[str, Answer] | None:
        """The answers (``path``, else the suite's own ``answers.jsonl`` if it ships one)."""
        target = path if path is not None else self.root / "answers.jsonl"
        if path is None and not target.is_file():
            return None
        return read_answers(target)


def load_suite(path: Path | str, verify_hashes: bool = True) -> Suite:
    """Read a suite folder; with ``verify_hashes`` every listed file must match its hash."""
    root = Path(path)
    mpath = root / "manifest.json"
    if not mpath.is_file():
        raise InputError("not a bench suite (manifest.json missing)", root)
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except ValueError as e:
        raise InputError(f"manifest is not JSON ({e})", mpath) from None
    if manifest.get("schema") != MANIFEST_SCHEMA:
        raise InputError(f"unknown manifest schema {manifest.get('schema')!r}", mpath)
    if verify_hashes:
        for rel, entry in manifest["files"].items():
            f = root / rel
            if not f.is_file():
                raise InputError(f"suite file {rel} listed in the manifest is missing", root)
            if sha256_file(f) != entry["sha256"]:
                raise InputError(f"suite file {rel} does not match its manifest hash", root)
    return Suite(root, manifest, read_cases(root / "cases.jsonl"))


def suite_hash(manifest: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical({k: v for k, v in manifest.items() if k != "sha256"})).hexdigest()


def write_manifest(
    root: Path, name: str, version: str, seed: int | None, tracks: list[str], extra: dict[str, Any]
) -> dict[str, Any]:
    files = {}
    for f in sorted(p for p in root.rglob("*") if p.is_file() and p.name != "manifest.json"):
        rel = f.relative_to(root).as_posix()
        origin = (
            "measured"
            if rel.startswith("runs/")
            else "computed"
            if rel.startswith("served/")
            else "deterministic"
        )
        files[rel] = {"sha256": sha256_file(f), "bytes": f.stat().st_size, "origin": origin}
    manifest: dict[str, Any] = {
        "schema": MANIFEST_SCHEMA,
        "name": name,
        "version": version,
        "builder_version": BUILDER_VERSION,
        "seed": seed,
        "tracks": {
            t: {"title": TRACKS[t].title, "question": TRACKS[t].question, "budget": TRACKS[t].budget}
            for t in tracks
        },
        "reproducible": [t for t in tracks if t in DETERMINISTIC_TRACKS],
        "not_reproducible": {
            t: "seeded CPU training and sampling; bit-identical results across machines and torch builds "
            "are not promised"
            if t == "served_identity"
            else "telemetry of a real testbed run (timings, CPU, memory) differs run to run"
            for t in tracks
            if t not in DETERMINISTIC_TRACKS
        },
        "files": files,
        **extra,
    }
    manifest["sha256"] = suite_hash(manifest)
    (root / "manifest.json").write_text(
        json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    return manifest


def build_suite(
    out: Path,
    seed: int,
    tracks: list[str] | None = None,
    size: str = "small",
    runs: Path | None = None,
    corpus: Path | None = None,
    name: str | None = None,
    version: str = "1",
    force: bool = False,
) -> dict[str, Any]:
    """Build a suite into ``out``; returns its manifest. Run-directory tracks read testbed
    runs from ``runs`` (``host<i>`` and ``host<i>-competent`` folders, as ``testbed sweep``
    writes them) or, without it, run a 2-host (small) / 3-host (full) ``test``-profile sweep
    with ``corpus``."""
    from inspectorate.bench._runcases import run_cases
    from inspectorate.bench._tracecases import compliance_cases

    chosen = list(tracks or TRACKS)
    for t in chosen:
        if t not in TRACKS:
            raise InputError(f"unknown track {t!r}; known: {', '.join(TRACKS)}")
    if size not in ("small", "full"):
        raise InputError(f"--size must be small or full, not {size!r}")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise InputError("output folder exists and is not empty (use --force to replace it)", out)
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []
    answers: list[Answer] = []
    extra: dict[str, Any] = {}
    if "compliance" in chosen:
        c, a = compliance_cases(out, seed, size)
        cases += c
        answers += a
    if any(t in RUN_TRACKS for t in chosen):
        sources = _run_sources(runs, out, seed, size, corpus)
        c, a = run_cases(out, sources, {t for t in chosen if t in RUN_TRACKS})
        shutil.rmtree(out / ".testbed-runs", ignore_errors=True)
        cases += c
        answers += a
        extra["hosts"] = sorted({h for h, _, _ in sources})
    if "served_identity" in chosen:
        from inspectorate.bench._servedcases import served_cases

        c, a = served_cases(out, seed, size, corpus)
        cases += c
        answers += a
    write_jsonl(out / "cases.jsonl", [c.to_dict() for c in cases])
    write_jsonl(out / "answers.jsonl", [a.to_dict() for a in answers])
    extra["counts"] = {t: sum(1 for c in cases if c.track == t) for t in chosen}
    return write_manifest(out, name or f"suite-{size}-seed{seed}", version, seed, chosen, extra)


def _run_sources(
    runs: Path | None, out: Path, seed: int, size: str, corpus: Path | None
) -> list[tuple[str, str, Path]]:
    if runs is None:
        if corpus is None:
            raise InputError("run-directory tracks need --runs DIR or --corpus FILE (to run the testbed)")
        from inspectorate.testbed.run import sweep

        runs = out / ".testbed-runs"  # copied into runs/ as cases are made, then removed
        phases = PUBLIC_PHASES if size == "small" else None
        sweep(2 if size == "small" else 3, runs, "test", progress=False, phases=phases, corpus=corpus)
    found = []
    for d in sorted(p for p in runs.iterdir() if (p / "workload_labels.jsonl").is_file()):
        host, _, variant = d.name.partition("-")
        found.append((host, variant or "naive", d))
    if not found:
        raise InputError("no testbed runs (host*/workload_labels.jsonl) found", runs)
    return found


PUBLIC = "public-v1"


def public_suite() -> Path:
    """The small public dev suite shipped in the package."""
    from importlib.resources import files

    return Path(str(files("inspectorate.data") / "bench" / PUBLIC))
