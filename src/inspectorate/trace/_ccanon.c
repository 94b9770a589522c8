/* Compiled canonicaliser for window records (inspectorate.trace._ccanon).
 *
 * Spells rows of Arrow columns as JSON text exactly as Python's json module does
 * (ensure_ascii escapes, float repr via PyOS_double_to_string 'r', int64 decimal),
 * with a caller-chosen key order and separators: sorted keys + "," ":" is the chain's
 * canonical form, file order + ", " ": " is json.dumps' default (the reference's JSONL).
 * Hashing goes through hashlib (OpenSSL) from C, so no crypto is vendored here.
 *
 * Column tuples (built by _ccols.py): (kind, key, validity, offset, b1, b2, b3, b4, coff)
 *   kind 0 string  : b1 int64 offsets, b2 data
 *   kind 1 int64   : b1 values
 *   kind 2 float64 : b1 values; optionally b2/b3/b4 validity, int64 offsets, data of
 *                    the same values as text (Polars' Ryu spelling, re-laid out as repr),
 *                    coff = the text array's offset
 *   kind 3 list<string>: b1 int64 list offsets, b2 child validity, b3 child int64
 *                        offsets, b4 child data; coff = child array offset
 *   kind 4 dictionary string (Polars Categorical): b1 uint32 indices, b2 dictionary
 *                    validity, b3 dictionary int64 offsets, b4 dictionary data
 * A row with a null, a non-finite float or invalid UTF-8 cannot be spelled here: it is
 * flagged "bad" and the caller spells it with json instead.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <dlfcn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "_cfloat.h"
#include "_csha.h"

typedef struct {
    int kind;
    const char *key;
    Py_ssize_t keylen;
    const uint8_t *valid;
    Py_ssize_t off;
    const int64_t *offs;
    const uint8_t *data;
    const int64_t *ivals;
    const double *fvals;
    const uint8_t *cvalid;
    const int64_t *coffs;
    const uint8_t *cdata;
    Py_ssize_t coff;
} Col;

typedef struct {
    char *p;
    Py_ssize_t len, cap;
    int nogil; /* running without the GIL: no Python API (floats repr falls back to json) */
} Buf;

static int buf_grow(Buf *b, Py_ssize_t need) {
    if (b->len + need <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + need) cap *= 2;
    char *p = realloc(b->p, cap); /* plain malloc: safe without the GIL */
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static inline int put(Buf *b, const char *s, Py_ssize_t n) {
    if (buf_grow(b, n)) return -1;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

static inline int bit(const uint8_t *bm, Py_ssize_t i) {
    return bm == NULL || ((bm[i >> 3] >> (i & 7)) & 1);
}

static const char HEX[] = "0123456789abcdef";

static int put_u(Buf *b, unsigned int cp) {
    char s[6] = {'\\', 'u', HEX[(cp >> 12) & 15], HEX[(cp >> 8) & 15], HEX[(cp >> 4) & 15], HEX[cp & 15]};
    return put(b, s, 6);
}

/* 1 for the bytes json writes as they are (printable ASCII but quote and backslash). */
static unsigned char PLAIN[256];

static void init_plain(void) {
    for (int c = 0x20; c < 0x7f; c++) PLAIN[c] = (c != '"' && c != '\\');
}

/* A JSON string literal with ensure_ascii; returns 1 on invalid UTF-8, -1 on memory. */
static int put_str(Buf *b, const uint8_t *s, Py_ssize_t n) {
    if (buf_grow(b, n + 2)) return -1;
    b->p[b->len++] = '"';
    Py_ssize_t i = 0;
    while (i < n) {
        Py_ssize_t run = i;
        while (run < n && PLAIN[s[run]]) run++;
        if (run > i && put(b, (const char *)s + i, run - i)) return -1;
        i = run;
        if (i >= n) break;
        uint8_t c = s[i];
        if (c < 0x80) {
            const char *esc = NULL;
            switch (c) {
                case '"': esc = "\\\""; break;
                case '\\': esc = "\\\\"; break;
                case '\n': esc = "\\n"; break;
                case '\r': esc = "\\r"; break;
                case '\t': esc = "\\t"; break;
                case '\b': esc = "\\b"; break;
                case '\f': esc = "\\f"; break;
            }
            if (esc ? put(b, esc, 2) : put_u(b, c)) return -1;
            i++;
            continue;
        }
        unsigned int cp;
        int extra;
        if ((c & 0xe0) == 0xc0) { cp = c & 0x1f; extra = 1; }
        else if ((c & 0xf0) == 0xe0) { cp = c & 0x0f; extra = 2; }
        else if ((c & 0xf8) == 0xf0) { cp = c & 0x07; extra = 3; }
        else return 1;
        if (i + extra >= n) return 1;  /* truncated sequence */
        for (int k = 1; k <= extra; k++) {
            uint8_t cc = s[i + k];
            if ((cc & 0xc0) != 0x80) return 1;
            cp = (cp << 6) | (cc & 0x3f);
        }
        i += extra + 1;
        if (cp >= 0x10000) {
            cp -= 0x10000;
            if (put_u(b, 0xd800 | (cp >> 10)) || put_u(b, 0xdc00 | (cp & 0x3ff))) return -1;
        } else if (put_u(b, cp)) {
            return -1;
        }
    }
    if (buf_grow(b, 1)) return -1;
    b->p[b->len++] = '"';
    return 0;
}

static int put_i64(Buf *b, int64_t v) {
    char tmp[24];
    int n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[sizeof tmp - 1 - n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) tmp[sizeof tmp - 1 - n++] = '-';
    return put(b, tmp + sizeof tmp - n, n);
}

/* Python's float repr, given the shortest round-trip digits as some decimal text (Polars
 * spells floats with Ryu: the same digits, another layout; _ccols checks that on known
 * hard values before it passes the text). Returns 1 when the text does not parse, so the
 * caller falls back to repr. */
static int put_repr_from_text(Buf *b, const char *t, Py_ssize_t n, double v) {
    char out[64];
    int sig = 0, k = repr_layout(t, n, out, &sig);
    if (k < 0 || (out[0] == '-') != (int)signbit(v)) return 1; /* not a shortest spelling of v */
    return put(b, out, k);
}

/* Spell one value; 0 ok, 1 cannot spell (null, non-finite, bad UTF-8), -1 memory. */
static int put_value(Buf *b, const Col *c, Py_ssize_t row, const char *isep, Py_ssize_t isl) {
    Py_ssize_t i = row + c->off;
    if (!bit(c->valid, i)) return 1;
    switch (c->kind) {
        case 0:
            return put_str(b, c->data + c->offs[i], c->offs[i + 1] - c->offs[i]);
        case 1:
            return put_i64(b, c->ivals[i]);
        case 2: {
            double v = c->fvals[i];
            if (!Py_IS_FINITE(v)) return 1;
            Py_ssize_t j = row + c->coff; /* the text array has its own offset */
            if (c->data != NULL && bit(c->cvalid, j) &&
                put_repr_from_text(b, (const char *)c->data + c->coffs[j], c->coffs[j + 1] - c->coffs[j], v) == 0)
                return 0;
            if (b->nogil) return 1; /* repr needs the GIL: the caller spells this row */
            char *s = PyOS_double_to_string(v, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
            if (!s) return -1;
            int r = put(b, s, (Py_ssize_t)strlen(s));
            PyMem_Free(s);
            return r;
        }
        case 4: {
            uint32_t k = ((const uint32_t *)c->ivals)[i];
            return put_str(b, c->data + c->coffs[k], c->coffs[k + 1] - c->coffs[k]);
        }
        case 3: {
            if (put(b, "[", 1)) return -1;
            for (int64_t k = c->offs[i]; k < c->offs[i + 1]; k++) {
                Py_ssize_t j = (Py_ssize_t)k + c->coff;
                if (!bit(c->cvalid, j)) return 1;
                if (k > c->offs[i] && put(b, isep, isl)) return -1;
                int r = put_str(b, c->cdata + c->coffs[j], c->coffs[j + 1] - c->coffs[j]);
                if (r) return r;
            }
            return put(b, "]", 1);
        }
    }
    return 1;
}

static int spell_row(Buf *b, const Col *cols, Py_ssize_t ncols, Py_ssize_t row, const char *isep,
                     Py_ssize_t isl, const char *ksep, Py_ssize_t ksl) {
    for (Py_ssize_t f = 0; f < ncols; f++) {
        const Col *c = &cols[f];
        if ((f == 0 ? put(b, "{", 1) : put(b, isep, isl)) || put(b, c->key, c->keylen) || put(b, ksep, ksl))
            return -1;
        int r = put_value(b, c, row, isep, isl);
        if (r) return r;
    }
    return put(b, "}", 1);
}

/* Holds the Py_buffers behind the column pointers for the duration of a call. */
typedef struct {
    Py_buffer views[64 * 5];
    int nviews;
} Views;

static const void *view_of(Views *v, PyObject *obj) {
    if (obj == Py_None) return NULL;
    if (v->nviews >= 64 * 5) {
        PyErr_SetString(PyExc_ValueError, "too many buffers");
        return NULL;
    }
    if (PyObject_GetBuffer(obj, &v->views[v->nviews], PyBUF_SIMPLE) < 0) return NULL;
    return v->views[v->nviews++].buf;
}

static void release(Views *v) {
    for (int i = 0; i < v->nviews; i++) PyBuffer_Release(&v->views[i]);
    v->nviews = 0;
}

#define NEED(ptr, obj) \
    do { if ((ptr) == NULL && (obj) != Py_None) goto fail; } while (0)

static int parse_cols(PyObject *seq, Col *cols, Py_ssize_t *ncols, Views *v) {
    PyObject *fast = PySequence_Fast(seq, "columns must be a sequence");
    if (!fast) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    if (n > 64) {
        PyErr_SetString(PyExc_ValueError, "at most 64 columns");
        goto fail;
    }
    for (Py_ssize_t f = 0; f < n; f++) {
        PyObject *t = PySequence_Fast_GET_ITEM(fast, f);
        PyObject *valid, *b1, *b2, *b3, *b4;
        Col *c = &cols[f];
        memset(c, 0, sizeof *c);
        if (!PyArg_ParseTuple(t, "is#OnOOOOn", &c->kind, &c->key, &c->keylen, &valid, &c->off, &b1, &b2, &b3,
                              &b4, &c->coff))
            goto fail;
        c->valid = view_of(v, valid);
        NEED(c->valid, valid);
        const void *p1 = view_of(v, b1);
        NEED(p1, b1);
        const void *p2 = view_of(v, b2);
        NEED(p2, b2);
        const void *p3 = view_of(v, b3);
        NEED(p3, b3);
        const void *p4 = view_of(v, b4);
        NEED(p4, b4);
        c->offs = p1;
        c->ivals = p1;
        c->fvals = p1;
        if (c->kind == 0) c->data = p2;
        if (c->kind == 2 || c->kind == 4) {  /* float: optional text column; dict: values */
            c->cvalid = p2;
            c->coffs = p3;
            c->data = p4;
        }
        if (c->kind == 3) {
            c->cvalid = p2;
            c->coffs = p3;
            c->cdata = p4;
        }
        if (c->kind < 0 || c->kind > 4 || p1 == NULL || (c->kind == 0 && !p2) ||
            ((c->kind == 3 || c->kind == 4) && (!p3 || !p4)) || (c->kind == 2 && (!p3) != (!p4))) {
            PyErr_SetString(PyExc_ValueError, "bad column tuple");
            goto fail;
        }
    }
    *ncols = n;
    Py_DECREF(fast);
    return 0;
fail:
    Py_DECREF(fast);
    return -1;
}

static PyObject *spell(PyObject *self, PyObject *args) {
    PyObject *seq;
    Py_ssize_t rows, isl, ksl;
    const char *isep, *ksep;
    if (!PyArg_ParseTuple(args, "Ons#s#", &seq, &rows, &isep, &isl, &ksep, &ksl)) return NULL;
    Col cols[64];
    Py_ssize_t ncols;
    Views *v = PyMem_Calloc(1, sizeof(Views));
    if (!v) return PyErr_NoMemory();
    Buf b = {0};
    PyObject *offsets = NULL, *bad = NULL, *data = NULL;
    if (parse_cols(seq, cols, &ncols, v)) goto done;
    offsets = PyBytes_FromStringAndSize(NULL, (rows + 1) * sizeof(int64_t));
    bad = PyBytes_FromStringAndSize(NULL, rows);
    if (!offsets || !bad) goto done;
    int64_t *o = (int64_t *)PyBytes_AS_STRING(offsets);
    char *badp = PyBytes_AS_STRING(bad);
    o[0] = 0;
    for (Py_ssize_t r = 0; r < rows; r++) {
        Py_ssize_t start = b.len;
        int rc = spell_row(&b, cols, ncols, r, isep, isl, ksep, ksl);
        if (rc < 0) {
            PyErr_NoMemory();
            goto done;
        }
        if (rc > 0) b.len = start;  /* the caller spells this row with json */
        badp[r] = (char)(rc > 0);
        o[r + 1] = b.len;
    }
    data = PyBytes_FromStringAndSize(b.p ? b.p : "", b.len);
done:
    release(v);
    PyMem_Free(v);
    free(b.p);
    if (!data) {
        Py_XDECREF(offsets);
        Py_XDECREF(bad);
        return NULL;
    }
    return Py_BuildValue("NNN", data, offsets, bad);
}

/* match(cols, rows, isep, ksep, starts, ends, raw) -> bytes: 1 where the spelling of row i
 * equals raw[starts[i]:ends[i]] byte for byte. */
static PyObject *match(PyObject *self, PyObject *args) {
    PyObject *seq;
    Py_ssize_t rows, isl, ksl;
    const char *isep, *ksep;
    Py_buffer bs, be, rd;
    if (!PyArg_ParseTuple(args, "Ons#s#y*y*y*", &seq, &rows, &isep, &isl, &ksep, &ksl, &bs, &be, &rd))
        return NULL;
    PyObject *out = NULL;
    Col cols[64];
    Py_ssize_t ncols;
    Views *v = PyMem_Calloc(1, sizeof(Views));
    Buf b = {0};
    if (!v) {
        PyErr_NoMemory();
        goto done;
    }
    if ((Py_ssize_t)(bs.len / sizeof(int64_t)) < rows || (Py_ssize_t)(be.len / sizeof(int64_t)) < rows) {
        PyErr_SetString(PyExc_ValueError, "line bounds too short");
        goto done;
    }
    if (parse_cols(seq, cols, &ncols, v)) goto done;
    out = PyBytes_FromStringAndSize(NULL, rows);
    if (!out) goto done;
    char *m = PyBytes_AS_STRING(out);
    const int64_t *st = bs.buf, *en = be.buf;
    const char *raw = rd.buf;
    for (Py_ssize_t r = 0; r < rows; r++) {
        b.len = 0;
        int rc = spell_row(&b, cols, ncols, r, isep, isl, ksep, ksl);
        if (rc < 0) {
            PyErr_NoMemory();
            Py_CLEAR(out);
            goto done;
        }
        Py_ssize_t n = (Py_ssize_t)(en[r] - st[r]);
        m[r] = (char)(rc == 0 && st[r] >= 0 && en[r] <= rd.len && n == b.len && memcmp(raw + st[r], b.p, n) == 0);
    }
done:
    if (v) {
        release(v);
        PyMem_Free(v);
    }
    free(b.p);
    PyBuffer_Release(&bs);
    PyBuffer_Release(&be);
    PyBuffer_Release(&rd);
    return out;
}

static int hash_into(const char *p, Py_ssize_t n, PyObject *ctor, PyObject *name, char *dst) {
    if (SHA) {
        void *ctx = SHA_CTX_MEM.bytes;
        if (SHA_INIT(ctx) == 1 && SHA_UPDATE(ctx, p, (size_t)n) == 1 && SHA_FINAL((unsigned char *)dst, ctx) == 1)
            return 0;
        PyErr_SetString(PyExc_RuntimeError, "libcrypto SHA-256 failed");
        return -1;
    }
    PyObject *mv = PyMemoryView_FromMemory((char *)p, n, PyBUF_READ);
    PyObject *h = mv ? PyObject_CallOneArg(ctor, mv) : NULL;
    Py_XDECREF(mv);
    PyObject *dg = h ? PyObject_CallMethodNoArgs(h, name) : NULL;
    Py_XDECREF(h);
    if (!dg || !PyBytes_Check(dg) || PyBytes_GET_SIZE(dg) != 32) {
        if (dg) PyErr_SetString(PyExc_ValueError, "hash constructor must return 32-byte digests");
        Py_XDECREF(dg);
        return -1;
    }
    memcpy(dst, PyBytes_AS_STRING(dg), 32);
    Py_DECREF(dg);
    return 0;
}

/* spell_digests(cols, lo, hi, sha256) -> (32*(hi-lo) digests, bad): spell rows lo..hi
 * canonically and hash each at once (no text kept); bad rows get zero digests. With
 * OpenSSL in hand the loop runs without the GIL, so threads can split a frame. */
static PyObject *spell_digests(PyObject *self, PyObject *args) {
    PyObject *seq, *ctor;
    Py_ssize_t lo, hi;
    if (!PyArg_ParseTuple(args, "OnnO", &seq, &lo, &hi, &ctor)) return NULL;
    if (lo < 0 || hi < lo) {
        PyErr_SetString(PyExc_ValueError, "bad row range");
        return NULL;
    }
    Py_ssize_t rows = hi - lo;
    Col cols[64];
    Py_ssize_t ncols;
    Views *v = PyMem_Calloc(1, sizeof(Views));
    if (!v) return PyErr_NoMemory();
    Buf b = {0};
    PyObject *out = NULL, *bad = NULL, *name = PyUnicode_InternFromString("digest");
    if (!name || parse_cols(seq, cols, &ncols, v)) goto fail;
    out = PyBytes_FromStringAndSize(NULL, rows * 32);
    bad = PyBytes_FromStringAndSize(NULL, rows);
    if (!out || !bad) goto fail;
    char *dst = PyBytes_AS_STRING(out), *badp = PyBytes_AS_STRING(bad);
    int failed = 0, text = 1;
    for (Py_ssize_t f = 0; f < ncols; f++)
        if (cols[f].kind == 2 && cols[f].data == NULL) text = 0; /* repr would need the GIL */
    if (SHA && text) {
        b.nogil = 1;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t r = 0; r < rows && !failed; r++) {
            b.len = 0;
            int rc = spell_row(&b, cols, ncols, lo + r, ",", 1, ":", 1);
            if (rc < 0) failed = 1;
            badp[r] = (char)(rc > 0);
            if (rc > 0) memset(dst + 32 * r, 0, 32);
            else if (rc == 0) {
                void *ctx = SHA_CTX_MEM_T;
                if (SHA_INIT(ctx) != 1 || SHA_UPDATE(ctx, b.p, (size_t)b.len) != 1 ||
                    SHA_FINAL((unsigned char *)dst + 32 * r, ctx) != 1)
                    failed = 2;
            }
        }
        Py_END_ALLOW_THREADS
        if (failed) {
            if (failed == 1) PyErr_NoMemory();
            else PyErr_SetString(PyExc_RuntimeError, "libcrypto SHA-256 failed");
            goto fail;
        }
    } else {
        for (Py_ssize_t r = 0; r < rows; r++) {
            b.len = 0;
            int rc = spell_row(&b, cols, ncols, lo + r, ",", 1, ":", 1);
            if (rc < 0) {
                PyErr_NoMemory();
                goto fail;
            }
            badp[r] = (char)(rc > 0);
            if (rc > 0) memset(dst + 32 * r, 0, 32);
            else if (hash_into(b.p, b.len, ctor, name, dst + 32 * r)) goto fail;
        }
    }
    release(v);
    PyMem_Free(v);
    free(b.p);
    Py_DECREF(name);
    return Py_BuildValue("NN", out, bad);
fail:
    release(v);
    PyMem_Free(v);
    free(b.p);
    Py_XDECREF(name);
    Py_XDECREF(out);
    Py_XDECREF(bad);
    return NULL;
}

/* digests(data, offsets, rows, sha256) -> bytes of 32*rows: hashlib digests of each slice. */
static PyObject *digests(PyObject *self, PyObject *args) {
    Py_buffer d, ob;
    Py_ssize_t rows;
    PyObject *ctor;
    if (!PyArg_ParseTuple(args, "y*y*nO", &d, &ob, &rows, &ctor)) return NULL;
    PyObject *out = NULL, *name = PyUnicode_InternFromString("digest");
    if ((Py_ssize_t)(ob.len / sizeof(int64_t)) < rows + 1 || !name) {
        if (name) PyErr_SetString(PyExc_ValueError, "offsets too short");
        goto done;
    }
    out = PyBytes_FromStringAndSize(NULL, rows * 32);
    if (!out) goto done;
    char *dst = PyBytes_AS_STRING(out);
    const int64_t *o = ob.buf;
    for (Py_ssize_t r = 0; r < rows; r++) {
        if (o[r] < 0 || o[r + 1] < o[r] || o[r + 1] > d.len) {
            PyErr_SetString(PyExc_ValueError, "bad offsets");
            Py_CLEAR(out);
            goto done;
        }
    }
    if (SHA) { /* OpenSSL in hand: no Python API in the loop, so threads can split the rows */
        int failed = 0;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t r = 0; r < rows && !failed; r++) {
            void *ctx = SHA_CTX_MEM.bytes;
            failed = !(SHA_INIT(ctx) == 1 &&
                       SHA_UPDATE(ctx, (const char *)d.buf + o[r], (size_t)(o[r + 1] - o[r])) == 1 &&
                       SHA_FINAL((unsigned char *)dst + 32 * r, ctx) == 1);
        }
        Py_END_ALLOW_THREADS
        if (failed) {
            PyErr_SetString(PyExc_RuntimeError, "libcrypto SHA-256 failed");
            Py_CLEAR(out);
        }
        goto done;
    }
    for (Py_ssize_t r = 0; r < rows; r++) {
        if (hash_into((const char *)d.buf + o[r], o[r + 1] - o[r], ctor, name, dst + 32 * r)) {
            Py_CLEAR(out);
            goto done;
        }
    }
done:
    Py_XDECREF(name);
    PyBuffer_Release(&d);
    PyBuffer_Release(&ob);
    return out;
}

/* mismatches(digests, prev_offsets, prev_data, rows, first_hex) -> list of rows whose
 * prev_record_hash differs from the hex digest of the row before (first_hex for row 0). */
static PyObject *mismatches(PyObject *self, PyObject *args) {
    Py_buffer dg, po, pd;
    Py_ssize_t rows, fl;
    const char *first;
    if (!PyArg_ParseTuple(args, "y*y*y*ns#", &dg, &po, &pd, &rows, &first, &fl)) return NULL;
    PyObject *out = NULL;
    if (dg.len < rows * 32 || (Py_ssize_t)(po.len / sizeof(int64_t)) < rows + 1) {
        PyErr_SetString(PyExc_ValueError, "buffers too short");
        goto done;
    }
    out = PyList_New(0);
    if (!out) goto done;
    const int64_t *o = po.buf;
    const uint8_t *d = dg.buf;
    const char *p = pd.buf;
    char hex[64];
    for (Py_ssize_t r = 0; r < rows; r++) {
        const char *want = first;
        Py_ssize_t wl = fl;
        if (r > 0) {
            for (int k = 0; k < 32; k++) {
                hex[2 * k] = HEX[d[32 * (r - 1) + k] >> 4];
                hex[2 * k + 1] = HEX[d[32 * (r - 1) + k] & 15];
            }
            want = hex;
            wl = 64;
        }
        Py_ssize_t n = (Py_ssize_t)(o[r + 1] - o[r]);
        int same = o[r + 1] <= pd.len && n == wl && memcmp(p + o[r], want, wl) == 0;
        if (!same) {
            PyObject *i = PyLong_FromSsize_t(r);
            if (!i || PyList_Append(out, i)) {
                Py_XDECREF(i);
                Py_CLEAR(out);
                goto done;
            }
            Py_DECREF(i);
        }
    }
done:
    PyBuffer_Release(&dg);
    PyBuffer_Release(&po);
    PyBuffer_Release(&pd);
    return out;
}

static PyMethodDef METHODS[] = {
    {"spell", spell, METH_VARARGS, "spell(cols, rows, item_sep, key_sep) -> (data, int64 offsets, bad)"},
    {"match", match, METH_VARARGS, "match(cols, rows, item_sep, key_sep, starts, ends, raw) -> mask"},
    {"spell_digests", spell_digests, METH_VARARGS, "spell_digests(cols, rows, sha256) -> (digests, bad)"},
    {"use_libcrypto", use_libcrypto, METH_VARARGS, "use_libcrypto(path or None) -> bool"},
    {"digests", digests, METH_VARARGS, "digests(data, offsets, rows, sha256) -> 32*rows bytes"},
    {"mismatches", mismatches, METH_VARARGS, "mismatches(digests, prev_offsets, prev_data, rows, first)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_ccanon", NULL, -1, METHODS};

PyMODINIT_FUNC PyInit__ccanon(void) {
    init_plain();
    return PyModule_Create(&MODULE);
}
