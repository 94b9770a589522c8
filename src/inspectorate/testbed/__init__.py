"""inspectorate.testbed (in progress)."""
