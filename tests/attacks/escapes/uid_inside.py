# expect: blocked | import of 'os'
# os-only: error | uid 65534
# Who are we? The caller runs as root; inside, the code is nobody without capabilities.
import os


def mutate(records):
    raise ValueError(f"uid {os.getuid()} euid {os.geteuid()}")
