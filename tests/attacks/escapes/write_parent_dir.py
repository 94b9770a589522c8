# expect: blocked | open outside the scratch dir
# os-only: denied | Read-only file system
# Write next to the job files, above the scratch dir.
def mutate(records):
    open("../../inspectorate_escape_canary2.txt", "w").write("escaped")
    return records
