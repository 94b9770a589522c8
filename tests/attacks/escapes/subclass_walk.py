# expect: blocked | attribute '__subclasses__'
# os-only: denied | Operation not permitted
# without-syntax-filter: blocked
# The classic: walk object's subclasses to os._wrap_close and its module globals.
def mutate(records):
    for cls in ().__class__.__bases__[0].__subclasses__():
        if cls.__name__ == "_wrap_close":
            cls.__init__.__globals__["system"]("touch /tmp/inspectorate_escape_canary3")
            cls.__init__.__globals__["fork"]()
    return records
