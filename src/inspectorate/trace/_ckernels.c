/* Per-record kernels for rules that follow each chip through the file (issue 22).
 *
 * Both walk the records once in file order, keeping per chip (its categorical code) the
 * last values seen, and give up (return False) as soon as a chip's values fall back in
 * file order: the caller then takes its general path (a sort by chip and time). What
 * they compute is what a stable sort by chip code followed by comparisons of
 * neighbours gives, without the sort (a sort of 10^7 codes and three gathers cost
 * ~1.5 CPU-seconds; this pass ~0.03).
 *
 * chip_overlaps(codes u32, ws f64, we f64, ncodes, tol, out u8) -> bool
 *   True when every chip's starts and ends both rise (>=) in file order; then out[i] is
 *   1 when record i starts before its chip's previous record ended, less tol.
 * chip_slots(codes u32, ws f64, ncodes, width, end, first i64, have i64, at i64) -> bool
 *   Over records with ws < end - 1e-6: per chip, its first slot floor(ws/width + 1e-9),
 *   the number of distinct slots and the row of its first such record, True when every
 *   chip's slots rise in file order (have[c] is 0 for a chip with no such record).
 * Comparisons are written so that a NaN anywhere gives False (the general path decides).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int want(Py_buffer *b, Py_ssize_t itemsize, Py_ssize_t n, const char *name) {
    if (b->len != itemsize * n) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd items of %zd bytes", name, n, itemsize);
        return -1;
    }
    return 0;
}

static PyObject *chip_overlaps(PyObject *self, PyObject *args) {
    Py_buffer codes_b, ws_b, we_b, out_b;
    Py_ssize_t ncodes;
    double tol;
    if (!PyArg_ParseTuple(args, "y*y*y*ndw*", &codes_b, &ws_b, &we_b, &ncodes, &tol, &out_b)) return NULL;
    PyObject *result = NULL;
    Py_ssize_t n = codes_b.len / 4;
    double *last_ws = NULL, *last_we = NULL;
    unsigned char *seen = NULL;
    if (want(&codes_b, 4, n, "codes") || want(&ws_b, 8, n, "ws") || want(&we_b, 8, n, "we") ||
        want(&out_b, 1, n, "out"))
        goto done;
    last_ws = malloc(sizeof(double) * (ncodes + 1));
    last_we = malloc(sizeof(double) * (ncodes + 1));
    seen = calloc(ncodes + 1, 1);
    if (!last_ws || !last_we || !seen) {
        PyErr_NoMemory();
        goto done;
    }
    const uint32_t *codes = codes_b.buf;
    const double *ws = ws_b.buf, *we = we_b.buf;
    unsigned char *out = out_b.buf;
    int ok = 1;
    Py_BEGIN_ALLOW_THREADS;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint32_t c = codes[i];
        if ((Py_ssize_t)c > ncodes) {
            ok = 0;
            break;
        }
        if (seen[c]) {
            if (!(ws[i] >= last_ws[c] && we[i] >= last_we[c])) {
                ok = 0;
                break;
            }
            out[i] = ws[i] < last_we[c] - tol;
        } else {
            out[i] = 0;
            seen[c] = 1;
        }
        last_ws[c] = ws[i];
        last_we[c] = we[i];
    }
    Py_END_ALLOW_THREADS;
    result = PyBool_FromLong(ok);
done:
    free(last_ws);
    free(last_we);
    free(seen);
    PyBuffer_Release(&codes_b);
    PyBuffer_Release(&ws_b);
    PyBuffer_Release(&we_b);
    PyBuffer_Release(&out_b);
    return result;
}

static PyObject *chip_slots(PyObject *self, PyObject *args) {
    Py_buffer codes_b, ws_b, first_b, have_b, at_b;
    Py_ssize_t ncodes;
    double width, end;
    if (!PyArg_ParseTuple(args, "y*y*nddw*w*w*", &codes_b, &ws_b, &ncodes, &width, &end, &first_b, &have_b,
                          &at_b))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t n = codes_b.len / 4;
    int64_t *last = NULL;
    if (want(&codes_b, 4, n, "codes") || want(&ws_b, 8, n, "ws") || want(&first_b, 8, ncodes + 1, "first") ||
        want(&have_b, 8, ncodes + 1, "have") || want(&at_b, 8, ncodes + 1, "at"))
        goto done;
    last = malloc(sizeof(int64_t) * (ncodes + 1));
    if (!last) {
        PyErr_NoMemory();
        goto done;
    }
    const uint32_t *codes = codes_b.buf;
    const double *ws = ws_b.buf;
    int64_t *first = first_b.buf, *have = have_b.buf, *at = at_b.buf;
    int ok = 1;
    Py_BEGIN_ALLOW_THREADS;
    for (Py_ssize_t c = 0; c <= ncodes; c++) {
        first[c] = INT64_MIN;
        have[c] = 0;
        at[c] = -1;
    }
    double limit = end - 1e-6;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint32_t c = codes[i];
        if ((Py_ssize_t)c > ncodes) {
            ok = 0;
            break;
        }
        if (!(ws[i] < limit)) {
            if (ws[i] >= limit) continue; /* late: not a slot */
            ok = 0;                       /* NaN */
            break;
        }
        double f = floor(ws[i] / width + 1e-9);
        if (!(f > -9.2e18 && f < 9.2e18)) {
            ok = 0;
            break;
        }
        int64_t slot = (int64_t)f;
        if (have[c] == 0) {
            first[c] = slot;
            have[c] = 1;
            at[c] = i;
        } else if (slot > last[c]) {
            have[c]++;
        } else if (slot < last[c]) {
            ok = 0;
            break;
        }
        last[c] = slot;
    }
    Py_END_ALLOW_THREADS;
    result = PyBool_FromLong(ok);
done:
    free(last);
    PyBuffer_Release(&codes_b);
    PyBuffer_Release(&ws_b);
    PyBuffer_Release(&first_b);
    PyBuffer_Release(&have_b);
    PyBuffer_Release(&at_b);
    return result;
}

static PyMethodDef METHODS[] = {
    {"chip_overlaps", chip_overlaps, METH_VARARGS, "Per-chip overlaps when every chip's windows rise."},
    {"chip_slots", chip_slots, METH_VARARGS, "Per-chip first slot and distinct slots when they rise."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_ckernels", NULL, -1, METHODS};

PyMODINIT_FUNC PyInit__ckernels(void) { return PyModule_Create(&MODULE); }
