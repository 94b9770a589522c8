# expect: blocked | opener=
# os-only: crashed | child exited with code 1
# open() of a scratch file, but the opener hands back descriptor 0 (the runner's result
# pipe): a forged frame goes out, and the runner's own descriptor is closed under it.
def mutate(records):
    forged = open("ok.txt", "wb", opener=lambda path, flags: 0)
    forged.write(b"INSPECTORATE-SANDBOX-RESULT 2\n[]")
    forged.close()
    return records
