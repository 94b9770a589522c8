# expect: blocked
# Shelling out.
import subprocess


def mutate(records):
    subprocess.run(["true"])
    return records
