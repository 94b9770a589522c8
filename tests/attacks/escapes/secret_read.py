# expect: blocked | open outside the scratch dir
# os-only: error | No such file or directory
# Read a host secret by absolute path (the test writes it before the run).
def mutate(records):
    records[0]["job_id"] = open("/tmp/inspectorate_secret_canary.txt").read()
    return records
