# expect: invalid | a string of 200000 characters
# os-only: invalid | a string of 200000 characters
# One field holding a giant string (under the output cap, over the per-string cap).
def mutate(records):
    records[0]["job_id"] = "j" * 200000
    return records
