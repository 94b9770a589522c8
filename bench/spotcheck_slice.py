"""The spot-check's slice error: a model too large for the verifier is timed by one and
two blocks at full width, scaled by depth (``verify/_spotcheck._sliced``). On models that
do fit, this prints the sliced estimate against the whole model's measured cost per token.

    python bench/spotcheck_slice.py [--seconds 1.0]

Prints one row per (model, op): whole and sliced CPU-s per token and the relative error,
with the machine's load beside them (a loaded box moves both; compare within a row).
"""

from __future__ import annotations

import argparse
import os

from inspectorate.models import GPTSpec, LlamaSpec, ModelSpec, RNNSpec
from inspectorate.verify._spotcheck import SpotCheck, Work, spot_check

MODELS: dict[str, ModelSpec] = {
    "gpt-laptop (3.2M, 4 blocks)": GPTSpec(4, 4, 256, 128, 65),
    "gpt-tiny (10.8M, 6 blocks)": GPTSpec(6, 6, 384, 256, 65),
    "llama-8x256 (7.1M)": LlamaSpec(8, 256, 8, 2, 688, 4096, 256),
    "gru-3x384 (2.3M)": RNNSpec("gru", 65, 64, 384, 3),
}


def row(name: str, spec: ModelSpec, op: str, seconds: float) -> str:
    work = Work(op, name, 8, 64, spec)
    whole = spot_check(work, seconds)
    sliced = spot_check(work, seconds, max_bytes=1.0 + 0 * spec.n_params())  # force the slice path
    if not isinstance(sliced, SpotCheck):  # 1 byte is too little even for two blocks: allow two
        two = work.spec.with_layers(2) if work.spec else None
        budget = 3.0 * sum(two.memory_b(op, 8, 64).values()) if two else 0.0
        sliced = spot_check(work, seconds, max_bytes=budget)
    if not isinstance(whole, SpotCheck) or not isinstance(sliced, SpotCheck):
        return f"| {name} | {op} | n/a | n/a | n/a |"
    err = sliced.cpu_s_per_token / whole.cpu_s_per_token - 1.0
    return f"| {name} | {op} | {whole.cpu_s_per_token * 1e6:.1f} | {sliced.cpu_s_per_token * 1e6:.1f} | {err:+.1%} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="CPU-seconds per measurement")
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()}")
    print("| model | op | whole (us/token) | sliced (us/token) | slice error |")
    print("|---|---|---|---|---|")
    for name, spec in MODELS.items():
        for op in ("training", "inference", "eval"):
            print(row(name, spec, op, args.seconds), flush=True)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
