# expect: blocked
# Reach a host file through a whitelisted module's helper.
import json


def mutate(records):
    json.load(open("/proc/self/environ"))
    return records
