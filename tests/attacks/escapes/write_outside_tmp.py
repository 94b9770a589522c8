# expect: blocked | open outside the scratch dir
# os-only: error | No such file or directory: '/tmp/inspectorate_escape_canary.txt'
# without-syntax-filter: blocked
# Write a file outside the temp dir (the test checks it does not exist afterwards).
def mutate(records):
    with open("/tmp/inspectorate_escape_canary.txt", "w") as fh:
        fh.write("escaped")
    return records
