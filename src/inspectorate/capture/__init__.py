"""inspectorate.capture (in progress)."""
