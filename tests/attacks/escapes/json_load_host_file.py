# expect: blocked | open outside the scratch dir
# os-only: error | No such file or directory: '/proc/self/environ'
# Reach a host file through a whitelisted module's helper.
import json


def mutate(records):
    json.load(open("/proc/self/environ"))
    return records
