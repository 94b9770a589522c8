"""``inspectorate difr serve|calibrate|verify``: parse arguments, call one library function.

Mounted by the main CLI as a sub-app; torch is imported only when a command runs.
"""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Any

import typer

from inspectorate._cli_options import Format, FormatOption
from inspectorate._paths import FORCE_HELP, output_file

app = typer.Typer(
    no_args_is_help=True, help="Served-model identity by re-computation (Token-/Activation-DiFR)."
)


def mount(parent: typer.Typer) -> None:
    """Re-computation commands on the main CLI: the ``difr`` group and ``replay``."""
    from inspectorate.replay._cli import replay

    parent.add_typer(app, name="difr")
    parent.command("replay")(replay)


class Precision(str, enum.Enum):
    float32 = "float32"
    bfloat16 = "bfloat16"


def _options(
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    seed: int | None,
    max_new: int,
    batch_size: int,
    precision: Precision,
    projection_seed: int | None,
    projection_layer: int,
    projection_dim: int,
):
    from inspectorate.difr import ProjectionSpec, SamplingConfig, ServeOptions
    from inspectorate.errors import InputError

    if max_new < 1 or batch_size < 1:
        raise InputError("--max-new and --batch-size must be >= 1")
    projection = None
    if projection_seed is not None:
        projection = ProjectionSpec(seed=projection_seed, layer=projection_layer, dim=projection_dim)
    sampling = SamplingConfig(temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
    return ServeOptions(sampling, max_new, batch_size, precision.value, projection)


TEMPERATURE = typer.Option(0.8, "--temperature", help="0 = greedy")
TOP_K = typer.Option(None, "--top-k")
TOP_P = typer.Option(None, "--top-p")
MAX_NEW = typer.Option(64, "--max-new", help="tokens generated per prompt")
BATCH = typer.Option(16, "--batch-size")
PRECISION = typer.Option(Precision.float32, "--precision")
PROJ_SEED = typer.Option(None, "--projection-seed", help="verifier's committed seed: enables Activation-DiFR")
PROJ_LAYER = typer.Option(0, "--projection-layer", help="block whose output is projected")
PROJ_DIM = typer.Option(8, "--projection-dim", help="floats per token")
FORCE = typer.Option(False, "--force", help=FORCE_HELP)
PROMPT_LEN = typer.Option(16, "--prompt-length", help="use the last N characters of each prompt line")


@app.command()
def serve(
    model: Path = typer.Option(
        ...,
        "--model",
        help="claim checkpoint (inspectorate.checkpoint .pt; testbed run --replay-claims writes them)",
    ),
    prompts: Path = typer.Option(..., "--prompts", help="UTF-8 text, one prompt per line"),
    out: Path = typer.Option(..., "--out", help="serving log to write (JSONL)"),
    seed: int | None = typer.Option(None, "--seed", help="declared sampling seed (Token-DiFR needs it)"),
    temperature: float = TEMPERATURE,
    top_k: int | None = TOP_K,
    top_p: float | None = TOP_P,
    max_new: int = MAX_NEW,
    batch_size: int = BATCH,
    precision: Precision = PRECISION,
    prompt_length: int = PROMPT_LEN,
    projection_seed: int | None = PROJ_SEED,
    projection_layer: int = PROJ_LAYER,
    projection_dim: int = PROJ_DIM,
    nonce: str | None = typer.Option(
        None, "--nonce", help="derive the sampling seed from the verifier's nonce"
    ),
    deterministic: bool = typer.Option(
        False, "--deterministic", help="declare deterministic decoding (each sequence decoded alone)"
    ),
    batch_logged: bool = typer.Option(
        False,
        "--batch-logged",
        help="batch (canonical FIFO schedule, --batch-size at most) and log every batch for an exact replay",
    ),
    threads: int = typer.Option(1, "--threads", help="torch threads of a --batch-logged server (logged)"),
    force: bool = FORCE,
) -> None:
    """Serve PROMPTS with a claim checkpoint (``testbed run --replay-claims`` writes them
    under RUN_DIR/claims/<phase>/) and write a serving log."""
    from inspectorate.difr import load_checkpoint
    from inspectorate.difr import serve as run_serve
    from inspectorate.difr._serve import read_prompts
    from inspectorate.difr._ties import nonce_seed
    from inspectorate.errors import InputError

    if nonce is not None and seed is not None:
        raise InputError("--seed and --nonce exclude each other (the nonce derives the seed)")
    if batch_logged and deterministic:
        raise InputError("--batch-logged and --deterministic exclude each other")
    if batch_logged and nonce is None and seed is None:
        raise InputError(
            "--batch-logged needs --nonce (or --seed): the replay regenerates the sampling noise"
        )
    if not 1 <= threads <= 64:
        raise InputError(f"--threads must be in 1..64, got {threads}")
    opts = _options(
        temperature,
        top_k,
        top_p,
        nonce_seed(nonce) if nonce is not None else seed,
        max_new,
        1 if deterministic else batch_size,
        precision,
        projection_seed,
        projection_layer,
        projection_dim,
    )
    output_file(out, "--out", force)
    ckpt = load_checkpoint(model)
    if batch_logged:
        from inspectorate.difr._batchlog import serve_logged

        texts = read_prompts(prompts, ckpt.vocab, prompt_length)
        serve_logged(ckpt.model, texts, opts, out, vocab=ckpt.vocab, threads=threads)
        typer.echo(f"wrote {out}")
        return
    server: dict[str, object] | None = {"decode": "deterministic"} if deterministic else None
    run_serve(
        ckpt.model,
        read_prompts(prompts, ckpt.vocab, prompt_length),
        opts,
        out,
        vocab=ckpt.vocab,
        server=server,
    )
    typer.echo(f"wrote {out}")


@app.command()
def calibrate(
    reference: Path = typer.Option(..., "--reference", help="reference checkpoint"),
    prompts: Path = typer.Option(..., "--prompts", help="calibration prompts, one per line"),
    out: Path = typer.Option(..., "--out", help="calibration JSON to write"),
    temperature: float = TEMPERATURE,
    top_k: int | None = TOP_K,
    top_p: float | None = TOP_P,
    max_new: int = MAX_NEW,
    precision: Precision = PRECISION,
    prompt_length: int = PROMPT_LEN,
    projection_seed: int | None = PROJ_SEED,
    projection_layer: int = PROJ_LAYER,
    projection_dim: int = PROJ_DIM,
    threads: str = typer.Option("1,2", "--threads", help="torch thread counts the variants cycle through"),
    variants: int = typer.Option(4, "--variants", help="honest re-runs (batch size / composition / seed)"),
    ties_out: Path | None = typer.Option(
        None, "--ties-out", help="also write a tie calibration (for `verify --ties`)"
    ),
    force: bool = FORCE,
) -> None:
    """Serve the reference honestly under thread/batch/composition variants; save honest scores."""
    from inspectorate.difr import calibrate as run_calibrate
    from inspectorate.difr import default_variants, load_checkpoint
    from inspectorate.difr._serve import read_prompts
    from inspectorate.errors import InputError

    try:
        counts = [int(t) for t in threads.split(",")]
    except ValueError:
        raise InputError(f"--threads must be comma-separated integers, got {threads!r}") from None
    if not counts or min(counts) < 1 or not 1 <= variants <= 6:
        raise InputError("--threads must be >= 1 and --variants in 1..6")
    output_file(out, "--out", force)
    if ties_out is not None:
        output_file(ties_out, "--ties-out", force)

    opts = _options(
        temperature,
        top_k,
        top_p,
        0,
        max_new,
        16,
        precision,
        projection_seed,
        projection_layer,
        projection_dim,
    )
    ckpt = load_checkpoint(reference)
    chosen = default_variants(variants, counts)
    cal = run_calibrate(
        ckpt.model, read_prompts(prompts, ckpt.vocab, prompt_length), opts, chosen, vocab=ckpt.vocab
    )
    cal.save(out)
    typer.echo(f"wrote {out} ({len(cal.token_scores)} honest sequences)")
    if ties_out is not None:
        from inspectorate.difr._ties import serve_and_calibrate_ties

        ties = serve_and_calibrate_ties(
            ckpt.model, read_prompts(prompts, ckpt.vocab, prompt_length), opts, chosen, ckpt.vocab
        )
        ties.save(ties_out)
        typer.echo(f"wrote {ties_out} ({ties.n} honest (position, rival) pairs)")


@app.command()
def verify(
    log: Path = typer.Argument(..., help="serving log (JSONL)"),
    reference: Path = typer.Option(..., "--reference", help="reference checkpoint"),
    calibration: Path | None = typer.Option(
        None, "--calibration", help="from `difr calibrate` (default: self-calibrate)"
    ),
    log_fpr: float = typer.Option(1e-3, "--log-fpr", help="false-positive rate for the whole log"),
    ties: Path | None = typer.Option(
        None,
        "--ties",
        help="tie calibration (`calibrate --ties-out`): judge every deviation, report capacity",
    ),
    nonce: str | None = typer.Option(None, "--nonce", help="the declared seed must derive from this nonce"),
    schedule: str | None = typer.Option(
        None,
        "--schedule",
        help="MAX_BATCH,THREADS the request fixed for a --batch-logged server (unset: the choice counts as capacity)",
    ),
    request: Path | None = typer.Option(
        None, "--request", help="the prompts file the verifier sent: the log must serve them in order"
    ),
    prompt_length: int = PROMPT_LEN,
    format: FormatOption = Format.text,
    finding_out: Path | None = typer.Option(
        None, "--finding-out", help="also write the result as a finding for `verify --recomputed PHASE=FILE`"
    ),
    force: bool = FORCE,
) -> None:
    """Re-compute LOG with the reference; exit 0 matches, 1 diverges (or cannot be checked), 2 bad input."""
    from inspectorate.difr import Calibration, load_checkpoint, read_log, verify_log
    from inspectorate.difr._finding import difr_finding

    if finding_out is not None:
        output_file(finding_out, "--finding-out", force)
    from inspectorate.difr._ties import TieCalibration

    cal = Calibration.load(calibration) if calibration else None
    tie_cal = TieCalibration.load(ties) if ties else None
    from inspectorate.difr._serve import read_prompts

    fixed = _schedule(schedule) if schedule is not None else None
    ckpt = load_checkpoint(reference)
    sent = read_prompts(request, ckpt.vocab, prompt_length) if request is not None else None
    report = verify_log(
        read_log(log), ckpt, cal, log_fpr, ties=tie_cal, nonce=nonce, schedule=fixed, request=sent
    )
    if finding_out is not None:
        finding_out.write_text(json.dumps(difr_finding(report), indent=1) + "\n", encoding="utf-8")
    if format is Format.json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        typer.echo(_text(report.to_dict()))
    raise typer.Exit(report.exit_code)


def _schedule(text: str) -> tuple[int, int]:
    from inspectorate.errors import InputError

    try:
        batch, threads = (int(x) for x in text.split(","))
    except ValueError:
        raise InputError(f"--schedule must be MAX_BATCH,THREADS, got {text!r}") from None
    if batch < 1 or not 1 <= threads <= 64:
        raise InputError(f"--schedule needs MAX_BATCH >= 1 and THREADS in 1..64, got {text!r}")
    return batch, threads


def _text(d: dict[str, Any]) -> str:
    lines = [f"{d['decision'].upper()}: {d['sequences']} sequences, {d['tokens']} tokens"]
    for name in ("token_difr", "activation_difr"):
        block = d.get(name)
        if block:
            extra = f", exact match {block['exact_match_rate']:.4f}" if "exact_match_rate" in block else ""
            lines.append(
                f"  {name}: max score {block['max_score']:.3g} vs threshold {block['threshold']:.3g}, "
                f"{len(block['flagged'])} flagged{extra}"
            )
    if d.get("covert_channel"):
        lines.append(f"  covert channel bound: {d['covert_channel']['max_bits']:.2f} bits/sequence (max)")
    if d.get("ties"):
        t = d["ties"]
        lines.append(
            f"  tie check: {t['deviations']} deviations (honest numerics allow {t['max_deviations']}), "
            f"{len(t['refused'])} refused; covert capacity {t['capacity_bits']:.2f} bits = "
            f"{100 * t['capacity_fraction']['vocab']:.5f}% of log2(V) output bits"
        )
    lines += [f"  - {r}" for r in d["reasons"]]
    return "\n".join(lines)
