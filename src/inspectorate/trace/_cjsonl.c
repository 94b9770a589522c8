/* Strict one-pass JSONL scanner for window records (inspectorate.trace._cjsonl).
 *
 * scan(raw, layouts, kinds) reads every non-empty line of raw and, for a line that is
 * spelled exactly as json.dumps spells a record in one of the given layouts, writes its
 * values into columns. The proof is by construction: each token is accepted only in the
 * one spelling json.dumps gives its value, so a line that scans equals the dumps of the
 * values taken from it, byte for byte:
 *   - strings: printable ASCII but quote and backslash (what json writes as it is with
 *     ensure_ascii); anything else (escapes, non-ASCII) is left to the caller,
 *   - ints: decimal, no sign but '-', no leading zero, within int64,
 *   - floats: the token must be float.__repr__ of the value it parses to,
 *   - lists of strings: '[' items joined by the layout's item separator ']'.
 * Lines that do not scan (other layouts, escapes, extra or missing fields, int-spelled
 * floats, not JSON at all) are flagged: the caller reads them with json, whose errors
 * name the line. Columns are indexed by the caller's field order; a layout is a tuple
 * (item_sep, key_sep, [(quoted key bytes, column index), ...]).
 * kinds[j]: 0 string, 1 int64, 2 float64, 3 list<string>.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <math.h>
#include <float.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include "_cfloat.h"

#define MAXCOLS 64
#define MAXLAYOUTS 4
#define MAXKEYS 64

/* A growing buffer that is a bytes object from the start: handed back without a copy. */
typedef struct {
    PyObject *o;
    char *p;
    Py_ssize_t len, cap;
} Buf;

static int grow(Buf *b, Py_ssize_t need) {
    if (b->len + need <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + need) cap *= 2;
    if (b->o == NULL) {
        b->o = PyBytes_FromStringAndSize(NULL, cap);
        if (!b->o) return -1;
    } else if (_PyBytes_Resize(&b->o, cap)) {
        return -1;
    }
    b->p = PyBytes_AS_STRING(b->o);
    b->cap = cap;
    return 0;
}

static inline int add(Buf *b, const void *s, Py_ssize_t n) {
    if (grow(b, n)) return -1;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

typedef struct {
    int kind;
    Buf offs;  /* string: int64 offsets; list: int64 list offsets */
    Buf data;  /* string: bytes; int/float: 8-byte values; list: child bytes */
    Buf coffs; /* list: child int64 offsets */
} Column;

typedef struct {
    const char *isep, *ksep;
    Py_ssize_t isl, ksl, nkeys;
    const char *key[MAXKEYS];
    Py_ssize_t keyl[MAXKEYS];
    int col[MAXKEYS];
} Layout;

static inline int plain(unsigned char c) { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'; }

/* The first byte at or after p that is not plain (or e): 16 bytes a step where SSE2 is. */
static inline const char *plain_run(const char *p, const char *e) {
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7f);
    while (e - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)p);
        /* signed: below 0x20 catches controls and every byte >= 0x80 */
        __m128i bad = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                                   _mm_or_si128(_mm_cmplt_epi8(v, space), _mm_cmpeq_epi8(v, del)));
        int mask = _mm_movemask_epi8(bad);
        if (mask) return p + __builtin_ctz(mask);
        p += 16;
    }
#endif
    while (p < e && plain((unsigned char)*p)) p++;
    return p;
}

/* A string token at *pp: its content appended to out. 0 ok, 1 no, -1 memory. */
static int scan_str(const char **pp, const char *e, Buf *out) {
    const char *p = *pp;
    if (p >= e || *p != '"') return 1;
    const char *s = ++p;
    p = plain_run(p, e);
    if (p >= e || *p != '"') return 1;
    if (add(out, s, p - s)) return -1;
    *pp = p + 1;
    return 0;
}

static int scan_int(const char **pp, const char *e, int64_t *v) {
    const char *p = *pp;
    int neg = 0;
    if (p < e && *p == '-') { neg = 1; p++; }
    const char *d = p;
    uint64_t acc = 0;
    while (p < e && *p >= '0' && *p <= '9') {
        if (p - d >= 19) return 1; /* beyond int64's 19 digits: json's call */
        acc = acc * 10 + (uint64_t)(*p - '0');
        p++;
    }
    if (p == d || (*d == '0' && p - d > 1) || (neg && acc == 0)) return 1;
    if (acc > (uint64_t)INT64_MAX) return 1;
    *v = neg ? -(int64_t)acc : (int64_t)acc;
    *pp = p;
    return 0;
}

/* A float token: accepted only when it is float.__repr__ of the value it parses to. With
 * at most 15 significant digits (DBL_DIG) and a normal value, no other decimal that short
 * reads as the same double, so repr's digits are the token's and its spelling is repr's
 * layout of them; longer tokens (and subnormals) are checked against repr itself. */
static int scan_float(const char **pp, const char *e, double *v) {
    const char *p = *pp;
    char tok[64], lay[96];
    Py_ssize_t n = 0;
    while (p + n < e && n < 63 && p[n] && strchr("0123456789.e+-", p[n])) n++;
    if (n == 0 || n >= 63) return 1;
    memcpy(tok, p, n);
    tok[n] = 0;
    char *end = NULL;
    double x = PyOS_string_to_double(tok, &end, NULL);
    if (x == -1.0 && PyErr_Occurred()) { PyErr_Clear(); return 1; }
    if (end != tok + n || !isfinite(x)) return 1;
    int sig = 99, k = repr_layout(tok, n, lay, &sig);
    if (k < 0) return 1;
    int same;
    if (sig <= 15 && (sig == 0 ? x == 0.0 : fabs(x) >= DBL_MIN)) {
        same = k == n && memcmp(lay, tok, n) == 0;
    } else {
        char *repr = PyOS_double_to_string(x, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
        if (!repr) return -1;
        same = (Py_ssize_t)strlen(repr) == n && memcmp(repr, tok, n) == 0;
        PyMem_Free(repr);
    }
    if (!same) return 1; /* e.g. an int-spelled float, "1E3", "1.50": json's call */
    *v = x;
    *pp = p + n;
    return 0;
}

static int scan_list(const char **pp, const char *e, Column *c, const Layout *L) {
    const char *p = *pp;
    if (p >= e || *p != '[') return 1;
    p++;
    if (p < e && *p == ']') { *pp = p + 1; return 0; }
    for (;;) {
        int r = scan_str(&p, e, &c->data);
        if (r) return r;
        int64_t off = c->data.len;
        if (add(&c->coffs, &off, 8)) return -1;
        if (p < e && *p == ']') { *pp = p + 1; return 0; }
        if (e - p < L->isl || memcmp(p, L->isep, L->isl)) return 1;
        p += L->isl;
    }
}

/* One line in one layout: 0 scanned, 1 not this layout, -1 memory. */
static int scan_line(const char *p, const char *e, const Layout *L, Column *cols, const char **span) {
    if (p >= e || *p++ != '{') return 1;
    for (Py_ssize_t k = 0; k < L->nkeys; k++) {
        if (k && (e - p < L->isl || memcmp(p, L->isep, L->isl))) return 1;
        if (k) p += L->isl;
        if (e - p < L->keyl[k] + L->ksl || memcmp(p, L->key[k], L->keyl[k])) return 1;
        p += L->keyl[k];
        if (memcmp(p, L->ksep, L->ksl)) return 1;
        p += L->ksl;
        Column *c = &cols[L->col[k]];
        span[2 * L->col[k]] = p;
        int r;
        if (c->kind == 0) {
            r = scan_str(&p, e, &c->data);
        } else if (c->kind == 1) {
            int64_t v = 0;
            r = scan_int(&p, e, &v);
            if (!r) r = add(&c->data, &v, 8);
        } else if (c->kind == 2) {
            double v = 0;
            r = scan_float(&p, e, &v);
            if (!r) r = add(&c->data, &v, 8);
        } else {
            r = scan_list(&p, e, c, L);
        }
        if (r) return r;
        span[2 * L->col[k] + 1] = p;
    }
    return (p < e && *p == '}' && p + 1 == e) ? 0 : 1;
}

typedef struct {
    Py_ssize_t data, coffs;
} Mark;

/* The canonical spelling of a row that scanned (sorted keys, "," and ":"): each token is
 * copied as it stands (its spelling is json's whatever the separators), but a list in a
 * layout with another item separator is re-joined from its items. */
static int put_canonical(Buf *out, const Layout *C, const Layout *L, Column *cols, const Mark *m,
                         const char **span) {
    if (add(out, "{", 1)) return -1;
    for (Py_ssize_t k = 0; k < C->nkeys; k++) {
        int j = C->col[k];
        if ((k && add(out, ",", 1)) || add(out, C->key[k], C->keyl[k]) || add(out, ":", 1)) return -1;
        if (cols[j].kind != 3 || (L->isl == 1 && L->isep[0] == ',')) {
            if (add(out, span[2 * j], span[2 * j + 1] - span[2 * j])) return -1;
            continue;
        }
        const int64_t *co = (const int64_t *)(cols[j].coffs.p + m[j].coffs) - 1;
        Py_ssize_t items = (cols[j].coffs.len - m[j].coffs) / 8;
        if (add(out, "[", 1)) return -1;
        for (Py_ssize_t i = 0; i < items; i++) {
            if ((i && add(out, ",", 1)) || add(out, "\"", 1) ||
                add(out, cols[j].data.p + co[i], co[i + 1] - co[i]) || add(out, "\"", 1))
                return -1;
        }
        if (add(out, "]", 1)) return -1;
    }
    return add(out, "}", 1);
}

/* Close row i of every column: offsets for strings and lists, an empty value for a
 * row that did not scan (its column lengths rolled back to the marks first). */
static int close_row(Column *cols, Py_ssize_t ncols, const Mark *m, int ok) {
    for (Py_ssize_t j = 0; j < ncols; j++) {
        Column *c = &cols[j];
        if (!ok) {
            c->data.len = m[j].data;
            c->coffs.len = m[j].coffs;
            if (c->kind == 1 || c->kind == 2) {
                int64_t zero = 0;
                if (add(&c->data, &zero, 8)) return -1;
            }
        }
        if (c->kind == 0) {
            int64_t off = c->data.len;
            if (add(&c->offs, &off, 8)) return -1;
        } else if (c->kind == 3) {
            int64_t off = c->coffs.len / 8 - 1;
            if (add(&c->offs, &off, 8)) return -1;
        }
    }
    return 0;
}

static int parse_layouts(PyObject *seq, Layout *ls, Py_ssize_t *nl, Py_ssize_t ncols) {
    *nl = PySequence_Fast_GET_SIZE(seq);
    if (*nl < 1 || *nl > MAXLAYOUTS) return -1;
    for (Py_ssize_t i = 0; i < *nl; i++) {
        PyObject *keys;
        Layout *L = &ls[i];
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "y#y#O", &L->isep, &L->isl, &L->ksep,
                              &L->ksl, &keys) ||
            !PyList_Check(keys) || PyList_GET_SIZE(keys) > MAXKEYS)
            return -1;
        L->nkeys = PyList_GET_SIZE(keys);
        for (Py_ssize_t k = 0; k < L->nkeys; k++) {
            if (!PyArg_ParseTuple(PyList_GET_ITEM(keys, k), "y#i", &L->key[k], &L->keyl[k], &L->col[k]) ||
                L->col[k] < 0 || L->col[k] >= ncols)
                return -1;
        }
    }
    return 0;
}

static PyObject *take(Buf *b) {
    if (grow(b, 1)) return NULL; /* an empty buffer still becomes bytes */
    PyObject *o = b->o;
    b->o = NULL;
    b->p = NULL;
    if (_PyBytes_Resize(&o, b->len)) return NULL;
    b->len = b->cap = 0;
    return o;
}

static void drop(Buf *b) {
    Py_CLEAR(b->o);
    b->p = NULL;
}

/* scan(raw, layouts, kinds, canonical) -> (starts, ends, ok, [column buffers], canon, canon
 * offsets): with canonical >= 0 (the index of the sorted-keys compact layout in layouts),
 * the canonical spelling of every row that scanned, for the hash chain (others empty). */
static PyObject *scan(PyObject *self, PyObject *args) {
    Py_buffer raw;
    PyObject *layouts_obj, *result = NULL, *fast = NULL;
    const char *kinds;
    Py_ssize_t ncols, nl = 0;
    int canonical = -1;
    if (!PyArg_ParseTuple(args, "y*Oy#i", &raw, &layouts_obj, &kinds, &ncols, &canonical)) return NULL;
    Layout ls[MAXLAYOUTS];
    Column cols[MAXCOLS];
    memset(cols, 0, sizeof cols);
    Buf starts = {0}, ends = {0}, ok = {0}, canon = {0}, coffs = {0};
    const char *span[2 * MAXCOLS];
    fast = PySequence_Fast(layouts_obj, "layouts");
    if (!fast || ncols > MAXCOLS || parse_layouts(fast, ls, &nl, ncols) || canonical >= nl) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "bad layouts");
        goto done;
    }
    int64_t zero = 0;
    if (canonical >= 0 && add(&coffs, &zero, 8)) goto nomem;
    for (Py_ssize_t j = 0; j < ncols; j++) {
        cols[j].kind = kinds[j];
        if ((kinds[j] == 0 || kinds[j] == 3) && add(&cols[j].offs, &zero, 8)) goto nomem;
        if (kinds[j] == 3 && add(&cols[j].coffs, &zero, 8)) goto nomem;
    }
    const char *base = raw.buf, *end = base + raw.len, *p = base;
    Mark marks[MAXCOLS];
    while (p < end) {
        const char *nlp = memchr(p, '\n', end - p);
        const char *e = nlp ? nlp : end;
        if (e > p) {
            int64_t lo = p - base, hi = e - base;
            if (add(&starts, &lo, 8) || add(&ends, &hi, 8)) goto nomem;
            for (Py_ssize_t j = 0; j < ncols; j++) marks[j] = (Mark){cols[j].data.len, cols[j].coffs.len};
            int r = 1;
            Py_ssize_t i = 0;
            for (; i < nl && r == 1; i++) {
                r = scan_line(p, e, &ls[i], cols, span);
                if (r == 1)
                    for (Py_ssize_t j = 0; j < ncols; j++) {
                        cols[j].data.len = marks[j].data;
                        cols[j].coffs.len = marks[j].coffs;
                    }
            }
            if (r < 0) goto nomem;
            if (canonical >= 0) {
                if (r == 0 && put_canonical(&canon, &ls[canonical], &ls[i - 1], cols, marks, span)) goto nomem;
                int64_t end_off = canon.len;
                if (add(&coffs, &end_off, 8)) goto nomem;
            }
            char flag = r == 0;
            if (add(&ok, &flag, 1) || close_row(cols, ncols, marks, flag)) goto nomem;
        }
        p = e + 1;
    }
    PyObject *columns = PyList_New(ncols);
    if (!columns) goto done;
    for (Py_ssize_t j = 0; j < ncols; j++) {
        PyObject *item = cols[j].kind == 3 ? Py_BuildValue("(NNN)", take(&cols[j].offs), take(&cols[j].coffs),
                                                             take(&cols[j].data))
                         : cols[j].kind == 0 ? Py_BuildValue("(NN)", take(&cols[j].offs), take(&cols[j].data))
                                             : take(&cols[j].data);
        if (!item) { Py_DECREF(columns); goto done; }
        PyList_SET_ITEM(columns, j, item);
    }
    result = Py_BuildValue("(NNNNNN)", take(&starts), take(&ends), take(&ok), columns, take(&canon), take(&coffs));
    goto done;
nomem:
    PyErr_NoMemory();
done:
    for (Py_ssize_t j = 0; j < MAXCOLS; j++) {
        drop(&cols[j].offs);
        drop(&cols[j].data);
        drop(&cols[j].coffs);
    }
    drop(&starts);
    drop(&ends);
    drop(&ok);
    drop(&canon);
    drop(&coffs);
    Py_XDECREF(fast);
    PyBuffer_Release(&raw);
    return result;
}

static PyMethodDef METHODS[] = {
    {"scan", scan, METH_VARARGS, "scan(raw, layouts, kinds, canonical) -> (starts, ends, ok, columns, canon, offsets)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_cjsonl", NULL, -1, METHODS};

PyMODINIT_FUNC PyInit__cjsonl(void) { return PyModule_Create(&MODULE); }
