"""Worker process for parallel chain verification: ``python -m inspectorate.trace._chainworker
PATH G1,G2,...`` checks those Parquet row groups on their own and prints one JSON object.

A plain subprocess rather than multiprocessing: nothing of the caller's ``__main__`` is
re-imported (so scripts without a main guard are safe) and results travel as JSON.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> None:
    from inspectorate.trace._fastchain import verify_row_groups

    path, groups = argv[0], [int(g) for g in argv[1].split(",")]
    first_prev, last, rows, breaks = verify_row_groups(path, groups)
    print(json.dumps({"first_prev": first_prev, "last": last, "rows": rows, "breaks": breaks}))


if __name__ == "__main__":
    main(sys.argv[1:])
