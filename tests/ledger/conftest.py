from signed_world import world  # noqa: F401  (the fixture, for every ledger test)
