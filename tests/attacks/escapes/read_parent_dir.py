# expect: blocked | open outside the scratch dir
# os-only: error | No such file or directory: '../job.json'
# Climb out of the scratch dir with ../ to read the job file.
def mutate(records):
    records[0]["leak"] = open("../job.json").read()
    return records
