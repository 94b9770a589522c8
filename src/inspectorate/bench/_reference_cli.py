"""The write-up's reference checker as an external entrant (``bench run --reference DIR``).

It is run as a separate program through the ``check`` CLI contract, importing the
reference's ``inspector.consistency_checks.run_deterministic`` from ``DIR`` (the
reference stays where it is; nothing of it is copied here). A raise of the reference is
"could not judge": exit 2, which the harness scores as a failure of the entrant.

    python -m inspectorate.bench._reference_cli DIR check TRACE --commitment C.yml --format json
"""

from __future__ import annotations

import gzip
import json
import sys


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "check" or "--commitment" not in argv:
        print("usage: _reference_cli DIR check TRACE --commitment C.yml --format json", file=sys.stderr)
        return 2
    ref, trace, commitment = argv[0], argv[2], argv[argv.index("--commitment") + 1]
    sys.path.insert(0, ref)
    try:
        import yaml
        from inspector.consistency_checks import run_deterministic

        opener = gzip.open if trace.endswith(".gz") else open
        with opener(trace, "rt", encoding="utf-8") as f:
            records = [json.loads(line) for line in f if line.strip()]
        with open(commitment, encoding="utf-8") as f:
            spec = yaml.safe_load(f)
        violations = run_deterministic(spec, records)
    except Exception as e:
        print(f"{trace}: reference checker failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    rules = sorted({str(getattr(v, "rule_id", "?")) for v in violations})
    out = {
        "verdict": 0 if violations else 1,
        "confidence": 1.0,
        "triggered_rule_id": rules[0] if rules else None,
        "rules": rules,
    }
    print(json.dumps(out))
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
