"""How much does recording every training step cost? (goal: < 2% of the step time)

Same model, same seed, same batches, in the same process: blocks of ``--steps`` training
steps run alternately WITHOUT and WITH a StepRecorder (interleaved, so that drift in the
machine's load hits both arms alike), and the median per-step time of each arm is
compared. The recorder's periodic fingerprints (every ``--fingerprint-every`` steps) are
included: they are part of what capture costs.

    python bench/capture_overhead.py --preset laptop --batch 8 --seq 128 --repeats 5

``--sensor`` measures the other half of capture's cost instead: the verifier-owned
sensor's CPU per CPU-second of a busy and of a light workload (bench/capture_sensor_cost.py).

    python bench/capture_overhead.py --sensor --seconds 30 --baseline-src /path/to/old/src --features
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _step(model, opt, x, y):  # type: ignore[no-untyped-def]
    """One training step; returns the phase timings the recorder wants."""
    t0 = time.perf_counter()
    _, loss, _ = model(x, y)
    t1 = time.perf_counter()
    loss.backward()
    t2 = time.perf_counter()
    opt.step()
    t3 = time.perf_counter()
    return loss, t1 - t0, t2 - t1, t3 - t2


def run_block(
    args: argparse.Namespace, record: bool, workdir: Path, block: int, inside: list[float]
) -> list[float]:
    """Per-step wall times of one block (fresh model and data from the same seed); the
    time spent inside ``recorder.train_step`` is appended to ``inside``."""
    import torch

    from inspectorate.capture import StepRecorder
    from inspectorate.models._gpt import GPT, preset

    torch.manual_seed(args.seed)
    model = GPT(preset(args.preset))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(args.seed)
    batches = [torch.randint(0, 65, (args.batch, args.seq + 1), generator=gen) for _ in range(args.steps + 2)]
    recorder = (
        StepRecorder(
            workdir / f"steps_{block}.jsonl", phase="bench", fingerprint_every=args.fingerprint_every
        )
        if record
        else None
    )
    times = []
    for i, batch in enumerate(batches):
        x, y = batch[:, :-1], batch[:, 1:]
        start = time.perf_counter()
        loss, fwd, bwd, opt_s = _step(model, opt, x, y)
        if recorder is not None:
            t_rec = time.perf_counter()
            recorder.train_step(
                i,
                loss=loss,
                model=model,
                optimizer=opt,
                lr=1e-3,
                tokens=x.numel(),
                forward_s=fwd,
                backward_s=bwd,
                optimizer_s=opt_s,
            )
            if i >= 2:
                inside.append(time.perf_counter() - t_rec)
        opt.zero_grad(set_to_none=True)
        if i >= 2:  # the first steps allocate optimizer state: warm-up, not measured
            times.append(time.perf_counter() - start)
    if recorder is not None:
        recorder.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="laptop")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="measured steps per block")
    parser.add_argument("--repeats", type=int, default=4, help="blocks per arm (interleaved)")
    parser.add_argument("--fingerprint-every", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sensor", action="store_true", help="measure the sensor's CPU instead")
    parser.add_argument("--seconds", type=float, default=30.0, help="--sensor: measured seconds per arm")
    parser.add_argument("--baseline-src", help="--sensor: also run the sensor from this src tree")
    parser.add_argument("--pid-too", action="store_true", help="--sensor: also follow the PID (no cgroup)")
    parser.add_argument(
        "--loads", default="0,0.05,0.1,0.5,1", help="--sensor: workload cores, comma-separated (0: idle)"
    )
    parser.add_argument(
        "--features", action="store_true", help="--sensor: compare verify's window features, before vs after"
    )
    args = parser.parse_args()
    if args.sensor:
        sys.path.insert(0, str(Path(__file__).parent))
        from capture_sensor_cost import main as sensor_main

        loads = tuple(float(v) for v in args.loads.split(","))
        sensor_main(args.seconds, args.baseline_src, args.pid_too, loads, args.features)
        return

    import torch

    torch.set_num_threads(args.threads)
    arms: dict[bool, list[float]] = {False: [], True: []}
    inside: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            order = (False, True) if rep % 2 == 0 else (True, False)  # ABBA: cancels linear drift
            for record in order:
                arms[record] += run_block(args, record, Path(tmp), rep * 2 + int(record), inside)
    off, on = statistics.median(arms[False]), statistics.median(arms[True])
    overhead = 100.0 * (on - off) / off
    mean_off, mean_on = statistics.fmean(arms[False]), statistics.fmean(arms[True])
    print(
        f"preset={args.preset} batch={args.batch} seq={args.seq} threads={args.threads} "
        f"steps/arm={len(arms[False])} fingerprint_every={args.fingerprint_every}"
    )
    print(f"median step without recorder: {off * 1e3:8.2f} ms")
    print(f"median step with recorder:    {on * 1e3:8.2f} ms")
    print(f"overhead: {overhead:+.2f}%  (goal < 2%: {'PASS' if overhead < 2.0 else 'FAIL'})")
    direct = 100.0 * statistics.fmean(inside) / mean_off
    print(
        f"time inside recorder.train_step: {statistics.fmean(inside) * 1e3:.2f} ms/step = {direct:.2f}% "
        "of a step (direct cost, insensitive to other load on the machine)"
    )
    print(f"mean-based (fingerprints amortized, noisier): {100.0 * (mean_on - mean_off) / mean_off:+.2f}%")


if __name__ == "__main__":
    main()
