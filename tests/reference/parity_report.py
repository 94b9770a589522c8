"""Print the differential run's counts as Markdown (for docs/design-notes.md).

    PYTHONPATH=src python tests/reference/parity_report.py [--json OUT]

Reads the reference and the shared traces from ``$INSPECTORATE_SHARED`` or ../shared.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from parity_harness import all_bases, full_run, reference_runner, shared_root

COLUMNS = ("flagged", "same_kind", "allowed_kind", "input_rejected", "reference_false_positive", "gap")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the counts as JSON here")
    args = parser.parse_args()
    started = time.perf_counter()
    tally = full_run(reference_runner(), all_bases(shared_root() / "data" / "seed-traces"))
    summary = tally.to_dict()
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")
    print(
        f"{summary['mutations']} mutations ({summary['families']}); the reference flags "
        f"{summary['reference_flagged']}, we flag {summary['ours_flagged']}; the reference "
        f"raised on {summary['reference_raised']}; {time.perf_counter() - started:.0f} s\n"
    )
    print("| reference kind | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for kind, counts in summary["by_reference_kind"].items():
        print(f"| {kind} | " + " | ".join(str(counts.get(c, 0)) for c in COLUMNS) + " |")
    print("\nOurs only (mutations where we report a kind the reference does not, beyond the base):")
    for kind, count in summary["ours_only_by_kind"].items():
        print(f"- {kind}: {count}")


if __name__ == "__main__":
    main()
