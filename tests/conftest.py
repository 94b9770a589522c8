import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

# CI draws the same examples every run, so a landing cannot hinge on a lucky draw;
# local runs stay random and keep finding new cases (as they found the DEL spelling bug).
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

sys.path.insert(0, str(Path(__file__).parent))

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    if not SHARED.exists():
        pytest.skip(f"shared data not found at {SHARED}")
    return SHARED


# Tests measure afresh: a spot-check cached by an earlier run must not decide one
# (tests/verify/test_spotcache.py turns the cache on in its own folder). Set for the
# whole session, not by an autouse fixture: session-scoped fixtures (a verified testbed
# run) are built before any function-scoped fixture runs, and would read the cache.
os.environ["INSPECTORATE_SPOTCACHE"] = "off"
