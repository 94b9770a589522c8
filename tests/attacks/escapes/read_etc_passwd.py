# expect: blocked | open outside the scratch dir
# os-only: error | No such file or directory: '/etc/passwd'
# without-syntax-filter: blocked
# Read a host file through the sandbox's own open().
def mutate(records):
    records[0]["leak"] = open("/etc/passwd").read()
    return records
