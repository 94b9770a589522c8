# expect: blocked | attribute '__subclasses__'
# os-only: error | No such file or directory: '/etc/passwd'
# without-syntax-filter: blocked
# Read a host file through importlib's FileLoader found by a subclass walk.
def mutate(records):
    for cls in ().__class__.__bases__[0].__subclasses__():
        if cls.__name__ == "FileLoader":
            records[0]["leak"] = str(cls.get_data(None, "/etc/passwd"))
    return records
