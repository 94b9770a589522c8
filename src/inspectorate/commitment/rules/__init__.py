"""Built-in rule kinds; importing this package registers them."""

from inspectorate.commitment.rules import compute, integrity, lineage, provenance, uniqueness  # noqa: F401
