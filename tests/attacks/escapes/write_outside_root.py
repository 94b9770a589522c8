# expect: blocked | open outside the scratch dir
# os-only: denied | Read-only file system
# Write into the sandbox root and the runtime tree: everything but /scratch is read-only.
def mutate(records):
    open("/inspectorate_escape_canary4", "w").write("escaped")
    return records
