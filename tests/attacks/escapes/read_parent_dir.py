# expect: blocked
# Climb out of the scratch dir with ../ to read the job file.
def mutate(records):
    records[0]["leak"] = open("../job.json").read()
    return records
