# expect: error | has no attribute 'os'
# os-only: error | has no attribute 'os'
# Modules re-exported by whitelisted modules are not reachable through the views.
import random, re, json, statistics


def mutate(records):
    for module, name in ((random, "os"), (re, "enum"), (json, "decoder"), (statistics, "sys")):
        getattr(module, name)
    return records
