/* A one-line exit for a file that shrinks while it is mapped (included by _cjsonl.c).
 *
 * A read through a mapping past the end of a file that was truncated under it raises
 * SIGBUS, which kills the process with no word about why. guard(message) installs a
 * handler that writes `message` (one line naming the file) to stderr and exits 2, the
 * code of bad input; unguard() puts the previous handler back. The handler covers every
 * thread and every reader of the mapping (the scanner, Python's mmap.find, numpy), so a
 * guarded region needs no per-access check. Guards nest: the innermost message is kept
 * until the outermost unguard. Only write() and _exit() run in the handler
 * (async-signal-safe). */
#ifndef INSPECTORATE_CGUARD_H
#define INSPECTORATE_CGUARD_H
#include <signal.h>
#include <unistd.h>

static char GUARD_MSG[2048];
static volatile size_t GUARD_LEN = 0;
static struct sigaction GUARD_OLD;
static int GUARD_DEPTH = 0; /* changed under the GIL only */

static void on_sigbus(int sig) {
    (void)sig;
    ssize_t written = write(2, GUARD_MSG, GUARD_LEN);
    (void)written;
    _exit(2);
}

static PyObject *guard(PyObject *self, PyObject *args) {
    const char *msg;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "y#", &msg, &n)) return NULL;
    if (n > (Py_ssize_t)sizeof(GUARD_MSG) - 1) n = sizeof(GUARD_MSG) - 1; /* keep room for the newline */
    GUARD_LEN = 0; /* a SIGBUS while the text changes writes nothing rather than half of it */
    memcpy(GUARD_MSG, msg, n);
    if (n == 0 || GUARD_MSG[n - 1] != '\n') GUARD_MSG[n++] = '\n';
    GUARD_LEN = (size_t)n;
    if (GUARD_DEPTH++ == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_sigbus;
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGBUS, &sa, &GUARD_OLD)) {
            GUARD_DEPTH = 0;
            return PyErr_SetFromErrno(PyExc_OSError);
        }
    }
    Py_RETURN_NONE;
}

static PyObject *unguard(PyObject *self, PyObject *noargs) {
    if (GUARD_DEPTH > 0 && --GUARD_DEPTH == 0 && sigaction(SIGBUS, &GUARD_OLD, NULL))
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

#define GUARD_METHODS                                                                                              \
    {"guard", guard, METH_VARARGS, "guard(message: bytes): on SIGBUS write message to stderr and exit 2"},        \
        {"unguard", unguard, METH_NOARGS, "unguard(): undo the innermost guard()"},

#endif
