# expect: error | Out of range float values
# os-only: error | Out of range float values
# NaN and infinity in the FLOP counts.
def mutate(records):
    records[0]["flops"] = float("nan")
    records[1]["flops"] = float("inf")
    return records
