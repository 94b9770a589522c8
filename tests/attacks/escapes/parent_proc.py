# expect: blocked | import of 'os'
# os-only: error | No such file or directory
# The parent's /proc entry: its environment and command line (API keys live there).
import os


def mutate(records):
    records[0]["job_id"] = open(f"/proc/{os.getppid()}/environ").read()
    return records
