"""inspectorate.report (in progress)."""
