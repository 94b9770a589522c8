# expect: blocked | import of 'subprocess'
# os-only: denied | Operation not permitted
# Shelling out.
import subprocess


def mutate(records):
    subprocess.run(["true"])
    return records
