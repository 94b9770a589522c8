# expect: blocked | attribute '__subclasses__'
# os-only: denied | Operation not permitted
# without-syntax-filter: blocked
# Load the posix module through BuiltinImporter (no import statement) and shell out.
def mutate(records):
    loader = [c for c in ().__class__.__bases__[0].__subclasses__() if c.__name__ == "BuiltinImporter"][0]
    posix = loader.load_module("posix")
    posix.system("touch /tmp/inspectorate_escape_canary5")
    posix.fork()
    return records
