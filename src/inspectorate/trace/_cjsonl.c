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
 * kinds[j]: 0 string, 1 int64, 2 float64, 3 list<string>, 4 dictionary-encoded string
 * (_cdict.h: int32 indices, the distinct values once), 5 a timestamp string: kept as kind
 * 0 plus its epoch seconds where it is spelled as the seed spells it (NaN elsewhere).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <math.h>
#include <float.h>
#include <locale.h>
#include <stdlib.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include "_cfloat.h"
#include "_csha.h"
#include "_cguard.h"

#define MAXCOLS 64
#define MAXLAYOUTS 4
#define MAXKEYS 64
#define MAXPRE 64 /* item separator + quoted key + key separator */

/* A growing buffer that is a bytes object from the start: handed back without a copy. */
typedef struct {
    PyObject *o;
    char *p;
    Py_ssize_t len, cap;
} Buf;

/* The GIL's saved state while this thread scans without it: grow() takes the GIL back
 * for the rare resize (buffers are bytes objects). */
static _Thread_local PyThreadState *SAVED = NULL;

static int regrow(Buf *b, Py_ssize_t need) {
    Py_ssize_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + need) cap *= 2;
    PyThreadState *saved = SAVED;
    if (saved) {
        PyEval_RestoreThread(saved);
        SAVED = NULL;
    }
    int rc = 0;
    if (b->o == NULL) {
        b->o = PyBytes_FromStringAndSize(NULL, cap);
        rc = b->o ? 0 : -1;
    } else {
        rc = _PyBytes_Resize(&b->o, cap) ? -1 : 0;
    }
    if (rc == 0) {
        b->p = PyBytes_AS_STRING(b->o);
        b->cap = cap;
    }
    if (saved) SAVED = PyEval_SaveThread();
    return rc;
}

static inline int grow(Buf *b, Py_ssize_t need) { return b->len + need <= b->cap ? 0 : regrow(b, need); }

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
    Buf vals;  /* dictionary: the distinct values (offs bound them, data holds int32 indices);
                  timestamp: float64 epoch seconds */
    uint32_t *slots; /* dictionary: 1-based indices by hash */
    Py_ssize_t nslots;
} Column;

typedef struct {
    const char *isep, *ksep;
    Py_ssize_t isl, ksl, nkeys;
    const char *key[MAXKEYS];
    Py_ssize_t keyl[MAXKEYS];
    int col[MAXKEYS];
    char pre[MAXKEYS][MAXPRE]; /* what stands before value k: item separator (k > 0), key, key separator */
    Py_ssize_t prel[MAXKEYS];
} Layout;

/* a[0:n] == b[0:n], 8 bytes a step (the last step overlaps): the keys are short, and a
 * call to memcmp per key cost more than the compare. */
static inline int same(const char *a, const char *b, Py_ssize_t n) {
    if (n < 8) {
        for (Py_ssize_t i = 0; i < n; i++)
            if (a[i] != b[i]) return 0;
        return 1;
    }
    uint64_t x, y;
    for (Py_ssize_t i = 0; i + 8 <= n; i += 8) {
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y) return 0;
    }
    memcpy(&x, a + n - 8, 8);
    memcpy(&y, b + n - 8, 8);
    return x == y;
}

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

#include "_cdict.h"

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

/* Per scanning thread: the float tokens left for repr to judge after the loop. */
static _Thread_local Buf *PENDING = NULL;
static _Thread_local const char *BASE = NULL;
static _Thread_local int64_t ROW = 0;
static locale_t C_LOCALE = (locale_t)0;

typedef struct {
    int64_t row, off, n;
    double x;
} Pending;

static double c_strtod(const char *s, char **end) { return strtod_l(s, end, C_LOCALE); }

/* T * 10^e as text, for strtod (T < 10^19). */
static double read_scaled(uint64_t t, int e) {
    char buf[48];
    int k = 47;
    buf[k] = 0;
    int a = e < 0 ? -e : e;
    do { buf[--k] = (char)('0' + a % 10); a /= 10; } while (a);
    if (e < 0) buf[--k] = '-';
    buf[--k] = 'e';
    do { buf[--k] = (char)('0' + t % 10); t /= 10; } while (t);
    return c_strtod(buf + k, NULL);
}

/* The sign of D * 10^q - M * 2^E, exactly, in 128 bits; 2 when an operand would not fit
 * (far from 1: the caller lets repr decide). */
static int bits128(unsigned __int128 v) {
    uint64_t hi = (uint64_t)(v >> 64), lo = (uint64_t)v;
    return hi ? 128 - __builtin_clzll(hi) : lo ? 64 - __builtin_clzll(lo) : 0;
}

static int cmp_dec_bin(uint64_t D, int q, uint64_t M, int E) {
    unsigned __int128 a = D, b = M;
    const unsigned __int128 lim = ((unsigned __int128)1 << 123);
    for (int i = 0; i < q; i++) { if (a >= lim) return 2; a *= 10; }
    for (int i = 0; i < -q; i++) { if (b >= lim) return 2; b *= 10; }
    if (E < 0) { if (bits128(a) - E > 124) return 2; a <<= -E; } /* one shift: as E steps of one */
    if (E > 0) { if (bits128(b) + E > 124) return 2; b <<= E; }
    return a < b ? -1 : a > b;
}

/* Whether the decimal D * 10^q reads as the double M * 2^E (M a normal significand,
 * 2^52 <= M < 2^53, as strtod and float() read: the nearest double, ties to the even
 * significand): 1 yes, 0 no, -1 cannot tell in 128 bits. At M = 2^52 the double below
 * is half as far (its half-way point is (4M - 1) * 2^(E-2)). */
static int reads_as(uint64_t D, int q, uint64_t M, int E) {
    if (M < (1ULL << 52) || M >= (1ULL << 53) || E <= -1074) return -1; /* not normal, or DBL_MIN's edge */
    int lo = M == (1ULL << 52) ? cmp_dec_bin(D, q, 4 * M - 1, E - 2) : cmp_dec_bin(D, q, 2 * M - 1, E - 1);
    int hi = cmp_dec_bin(D, q, 2 * M + 1, E - 1);
    if (lo == 2 || hi == 2) return -1;
    int even = (M & 1) == 0;
    return (lo > 0 || (lo == 0 && even)) && (hi < 0 || (hi == 0 && even));
}

static void split_double(double ax, uint64_t *M, int *E) {
    int exp2;
    double frac = frexp(ax, &exp2);
    *M = (uint64_t)ldexp(frac, 53);
    *E = exp2 - 53;
}

static const double POW10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* T * 10^q read as strtod reads it, without strtod where that is cheap and exact: 0 with
 * *out set, -1 to ask strtod. T < 2^53 and |q| <= 22: one correctly rounded operation on
 * exact operands (Clinger's fast path). Otherwise double arithmetic lands within an ulp
 * or two, and a candidate is taken only when T * 10^q provably reads as it (reads_as). */
static int exact_value(uint64_t T, int q, double *out) {
    if (T == 0 || q < -22 || q > 22) return -1;
    double x = q >= 0 ? (double)T * POW10[q] : (double)T / POW10[-q];
    if (T < (1ULL << 53)) {
        *out = x;
        return 0;
    }
    double c[3] = {x, nextafter(x, 0.0), nextafter(x, INFINITY)};
    for (int i = 0; i < 3; i++) {
        uint64_t M;
        int E;
        if (!(c[i] > 0.0) || !isfinite(c[i])) continue;
        split_double(c[i], &M, &E);
        if (reads_as(T, q, M, E) == 1) {
            *out = c[i];
            return 0;
        }
    }
    return -1;
}

/* Whether the sig (16 or 17) significant digits T * 10^e are repr's for ax > 0 (normal),
 * given that T * 10^e reads back as ax: 1 yes, 0 no, -1 cannot tell cheaply. repr's
 * digits are the fewest that read back, the nearest to ax among those. Fewer: some
 * decimal of sig-1 digits reads back exactly when one of the two bracketing T does
 * (C1 = T/10, C2 = C1+1 at e+1: the set that reads back is an interval holding T;
 * strtod is correctly rounded, as float() is). Nearest: T is the one nearest ax when ax
 * lies strictly between the half-way points (10T -/+ 5) * 10^(e-1), compared exactly. */
static int shortest_digits(uint64_t t, int e, double ax) {
    uint64_t c1 = t / 10, M;
    int E;
    split_double(ax, &M, &E);
    for (uint64_t c = c1; c <= c1 + 1; c++) { /* exactly where 128 bits suffice, else strtod */
        int r = reads_as(c, e + 1, M, E);
        if (r == 1 || (r < 0 && read_scaled(c, e + 1) == ax)) return 0;
    }
    int below = cmp_dec_bin(10 * t - 5, e - 1, M, E), above = cmp_dec_bin(10 * t + 5, e - 1, M, E);
    return below == -1 && above == 1 ? 1 : -1;
}

/* The token's significant digits as an integer T and exponent e (value T * 10^e). */
static void token_digits(const char *t, Py_ssize_t n, uint64_t *T, int *e) {
    uint64_t acc = 0;
    int after = 0, seen = 0, exp10 = 0, nd = 0;
    Py_ssize_t i = 0;
    if (t[i] == '-') i++;
    for (; i < n && t[i] != 'e'; i++) {
        if (t[i] == '.') { seen = 1; continue; }
        if (acc == 0 && t[i] == '0') { if (seen) after++; continue; }
        acc = acc * 10 + (uint64_t)(t[i] - '0');
        nd++;
        if (seen) after++;
    }
    if (i < n) exp10 = atoi(t + i + 1);
    int shift = 0;
    while (acc && acc % 10 == 0) { acc /= 10; shift++; }
    *T = acc;
    *e = exp10 - after + shift;
}

/* A float token: accepted only when it is float.__repr__ of the value it parses to. The
 * token must be laid out as repr lays out its own digits (_cfloat.h); then with at most
 * 15 significant digits (DBL_DIG) and a normal value no other decimal that short reads as
 * the same double, so they are repr's; 16-17 digits are proven so by shortest_digits().
 * What that cannot tell (ties, subnormals) is queued for repr itself after the loop. */
static int scan_float(const char **pp, const char *e, double *v) {
    const char *p = *pp;
    char tok[64], lay[96];
    Py_ssize_t n = 0;
    while (p + n < e && n < 63 && p[n] && strchr("0123456789.e+-", p[n])) n++;
    if (n == 0 || n >= 63) return 1;
    memcpy(tok, p, n);
    tok[n] = 0;
    /* the layout first: a token laid out as repr lays out its digits is a well-formed decimal */
    int sig = 99, k = repr_layout(tok, n, lay, &sig);
    if (k != n || memcmp(lay, tok, n)) return 1; /* e.g. an int-spelled float, "1E3", "1.50": json's call */
    uint64_t t = 0;
    int e10 = 0;
    double x;
    token_digits(tok, n, &t, &e10);
    if (exact_value(t, e10, &x) == 0) {
        if (tok[0] == '-') x = -x;
    } else {
        char *end = NULL;
        x = c_strtod(tok, &end);
        if (end != tok + n) return 1;
    }
    if (!isfinite(x)) return 1;
    int proven = -1;
    if (sig == 0) {
        proven = x == 0.0;
    } else if (fabs(x) >= DBL_MIN) {
        proven = sig <= 15 ? 1 : shortest_digits(t, e10, fabs(x));
    }
    if (proven == 0) return 1;
    if (proven < 0) {
        Pending q = {ROW, p - BASE, n, x};
        if (add(PENDING, &q, sizeof q)) return -1;
    }
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

/* One line in one layout: 0 scanned, 1 not this layout, -1 memory. e may lie past the
 * line's end (the end of the range): no token takes a newline (strings stop at control
 * bytes, numbers at what is not part of one, keys and separators hold none), so a line
 * scans only when its '}' is followed by '\n' or e; *lend gets the line's end then. */
static int scan_line(const char *p, const char *e, const Layout *L, Column *cols, const char **span,
                     const char **lend) {
    if (p >= e || *p++ != '{') return 1;
    for (Py_ssize_t k = 0; k < L->nkeys; k++) {
        if (e - p < L->prel[k] || !same(p, L->pre[k], L->prel[k])) return 1;
        p += L->prel[k];
        Column *c = &cols[L->col[k]];
        span[2 * L->col[k]] = p;
        int r;
        if (c->kind == 0 || c->kind == 5) {
            r = scan_str(&p, e, &c->data);
        } else if (c->kind == 4) {
            r = scan_cat(&p, e, c);
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
    if (p >= e || *p != '}' || (p + 1 < e && p[1] != '\n')) return 1;
    *lend = p + 1;
    return 0;
}

typedef struct {
    Py_ssize_t data, coffs;
} Mark;

static inline int digits(const char *s, int n, int *v) {
    int acc = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        acc = acc * 10 + (s[i] - '0');
    }
    *v = acc;
    return 1;
}

/* Epoch seconds of "YYYY-MM-DDTHH:MM:SSZ" (the seed's spelling, a real date of years
 * 1-9999, as datetime.fromisoformat reads it: UTC, exact in a double); NaN for any other
 * text, which the caller parses as before (parse_time). Days from the civil date by the
 * era arithmetic of the proleptic Gregorian calendar. */
static double seed_epoch(const char *s, Py_ssize_t n) {
    int y, mo, d, h, mi, se;
    if (n != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != 'Z' ||
        !digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) || !digits(s + 11, 2, &h) ||
        !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &se))
        return NAN;
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap) || h > 23 || mi > 59 ||
        se > 59)
        return NAN;
    int64_t yy = y - (mo <= 2);
    int64_t era = yy / 400; /* yy >= 0 */
    int64_t yoe = yy - era * 400;
    int64_t doy = (153 * (mo > 2 ? mo - 3 : mo + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = era * 146097 + doe - 719468;
    return (double)(days * 86400 + h * 3600 + mi * 60 + se);
}

/* The canonical spelling of a row that scanned (sorted keys, "," and ":"): each token is
 * copied as it stands (its spelling is json's whatever the separators), but a list in a
 * layout with another item separator is re-joined from its items. */
static int put_canonical(Buf *out, const Layout *C, const Layout *L, Column *cols, const Mark *m,
                         const char **span) {
    if (add(out, "{", 1)) return -1;
    for (Py_ssize_t k = 0; k < C->nkeys; k++) {
        int j = C->col[k];
        if (add(out, C->pre[k], C->prel[k])) return -1; /* C's separators are "," and ":" */
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
            } else if (c->kind == 4) { /* a placeholder the caller replaces: "" */
                int64_t k = dict_index(c, "", 0);
                int32_t v = (int32_t)k;
                if (k < 0 || add(&c->data, &v, 4)) return -1;
            }
        }
        if (c->kind == 0 || c->kind == 5) {
            int64_t off = c->data.len;
            if (c->kind == 5) {
                double t = ok ? seed_epoch(c->data.p + m[j].data, off - m[j].data) : NAN;
                if (add(&c->vals, &t, 8)) return -1;
            }
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
                L->col[k] < 0 || L->col[k] >= ncols || L->isl + L->keyl[k] + L->ksl > MAXPRE)
                return -1;
            Py_ssize_t n = 0;
            if (k) memcpy(L->pre[k], L->isep, L->isl), n = L->isl;
            memcpy(L->pre[k] + n, L->key[k], L->keyl[k]);
            memcpy(L->pre[k] + n + L->keyl[k], L->ksep, L->ksl);
            L->prel[k] = n + L->keyl[k] + L->ksl;
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

typedef struct {
    Layout ls[MAXLAYOUTS];
    Py_ssize_t nl, ncols;
    Column cols[MAXCOLS];
    int canonical, hash;  /* hash: SHA-256 each canonical row at once (no text kept) */
    Buf starts, ends, ok, canon, coffs, row, pending;
    int sha_failed;
} Scan;

/* Room for about `rows` rows like the ones so far: the buffers grow once, not by doubling
 * (each doubling copies what is there). A guess only: grow() still covers any row. */
static int reserve(Scan *S, Py_ssize_t done, Py_ssize_t rows, Py_ssize_t cap) {
    Buf *bufs[4 * MAXCOLS + 6];
    int nb = 0;
    for (Py_ssize_t j = 0; j < S->ncols; j++) {
        if (S->cols[j].kind != 4) bufs[nb++] = &S->cols[j].offs; /* a dictionary's grows with its values */
        bufs[nb++] = &S->cols[j].data;
        bufs[nb++] = &S->cols[j].coffs;
        if (S->cols[j].kind == 5) bufs[nb++] = &S->cols[j].vals;
    }
    bufs[nb++] = &S->starts, bufs[nb++] = &S->ends, bufs[nb++] = &S->ok;
    bufs[nb++] = &S->canon, bufs[nb++] = &S->coffs;
    for (int i = 0; i < nb; i++) {
        Py_ssize_t want = bufs[i]->len / done * rows + 4096;
        if (want > cap) want = cap; /* odd first rows: no buffer is sized past the text */
        if (bufs[i]->len && want > bufs[i]->cap && grow(bufs[i], want - bufs[i]->len)) return -1;
    }
    return 0;
}

/* Every non-empty line in [p, end) of the buffer at base; the GIL may be released around
 * it. 0 done, -1 memory (exception set) or libcrypto failure (sha_failed). */
static int scan_lines(Scan *S, const char *base, const char *p, const char *end) {
    const char *span[2 * MAXCOLS];
    Mark marks[MAXCOLS];
    Column *cols = S->cols;
    Py_ssize_t ncols = S->ncols, done = 0;
    const char *first = p;
    PENDING = &S->pending;
    BASE = base;
    while (p < end) {
        const char *e = NULL; /* the line's end: from the scan, or found once a layout fails */
        if (*p != '\n') {
            ROW = S->starts.len / 8;
            for (Py_ssize_t j = 0; j < ncols; j++) marks[j] = (Mark){cols[j].data.len, cols[j].coffs.len};
            Py_ssize_t pmark = S->pending.len;
            int r = 1;
            Py_ssize_t i = 0;
            for (; i < S->nl && r == 1; i++) {
                const char *lend = NULL;
                r = scan_line(p, e ? e : end, &S->ls[i], cols, span, &lend);
                if (r == 0 && !e) e = lend;
                if (r == 1) {
                    for (Py_ssize_t j = 0; j < ncols; j++) {
                        cols[j].data.len = marks[j].data;
                        cols[j].coffs.len = marks[j].coffs;
                    }
                    S->pending.len = pmark;
                }
                if (!e && r != 0) {
                    const char *nlp = memchr(p, '\n', end - p);
                    e = nlp ? nlp : end;
                }
            }
            if (r < 0) return -1;
            int64_t lo = p - base, hi = e - base;
            if (add(&S->starts, &lo, 8) || add(&S->ends, &hi, 8)) return -1;
            if (S->hash) {
                if (grow(&S->canon, 32)) return -1;
                unsigned char *dst = (unsigned char *)S->canon.p + S->canon.len;
                S->row.len = 0; /* a row not scanned: the digest of no text, as before */
                if (r == 0 && put_canonical(&S->row, &S->ls[S->canonical], &S->ls[i - 1], cols, marks, span))
                    return -1;
                if (grow(&S->row, 1)) return -1;
                if (sha256_one(S->row.p, (size_t)S->row.len, dst)) {
                    S->sha_failed = 1;
                    return -1;
                }
                S->canon.len += 32;
            } else if (S->canonical >= 0) {
                if (r == 0 && put_canonical(&S->canon, &S->ls[S->canonical], &S->ls[i - 1], cols, marks, span))
                    return -1;
                int64_t end_off = S->canon.len;
                if (add(&S->coffs, &end_off, 8)) return -1;
            }
            char flag = r == 0;
            if (add(&S->ok, &flag, 1) || close_row(cols, ncols, marks, flag)) return -1;
            if (++done == 64 &&
                reserve(S, done, (Py_ssize_t)((end - first) * 64 / (e + 1 - first) * 11 / 10) + 64, end - first + 4096))
                return -1;
        } else {
            e = p;
        }
        p = e + 1;
    }
    return 0;
}

/* After the loop, with the GIL: the float tokens scan_float could not prove repr's are
 * compared with repr itself; a row with one that differs is not taken after all. */
static int judge_pending(Scan *S, const char *base) {
    const Pending *q = (const Pending *)S->pending.p;
    Py_ssize_t count = S->pending.len / (Py_ssize_t)sizeof(Pending);
    for (Py_ssize_t i = 0; i < count; i++) {
        char *repr = PyOS_double_to_string(q[i].x, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
        if (!repr) return -1;
        int same = (int64_t)strlen(repr) == q[i].n && memcmp(repr, base + q[i].off, q[i].n) == 0;
        PyMem_Free(repr);
        if (!same) {
            S->ok.p[q[i].row] = 0;
            if (S->hash && sha256_one("", 0, (unsigned char *)S->canon.p + 32 * q[i].row)) {
                PyErr_SetString(PyExc_RuntimeError, "libcrypto SHA-256 failed");
                return -1;
            }
        }
    }
    return 0;
}

static void drop_scan(Scan *S) {
    for (Py_ssize_t j = 0; j < MAXCOLS; j++) {
        drop(&S->cols[j].offs);
        drop(&S->cols[j].data);
        drop(&S->cols[j].coffs);
        drop(&S->cols[j].vals);
        free(S->cols[j].slots);
        S->cols[j].slots = NULL;
    }
    drop(&S->starts);
    drop(&S->ends);
    drop(&S->ok);
    drop(&S->canon);
    drop(&S->coffs);
    drop(&S->row);
    drop(&S->pending);
}

/* scan(raw, layouts, kinds, canonical, lo=0, hi=len(raw)) -> (starts, ends, ok, [column
 * buffers], canon, canon offsets) for the lines of raw[lo:hi] (lo at a line's start;
 * starts/ends are offsets into raw). With canonical >= 0 (the index of the sorted-keys
 * compact layout in layouts) each row that scanned is spelled canonically for the hash
 * chain: with libcrypto in hand (use_libcrypto) `canon` is the SHA-256 of every row (of
 * no text for the others) and the offsets are None; otherwise `canon` is the text and
 * the offsets bound each row's. The loop runs without the GIL, so threads can split a file. */
static PyObject *scan(PyObject *self, PyObject *args) {
    Py_buffer raw;
    PyObject *layouts_obj, *result = NULL, *fast = NULL;
    const char *kinds;
    Py_ssize_t ncols, lo = 0, hi = -1;
    int canonical = -1;
    if (!PyArg_ParseTuple(args, "y*Oy#i|nn", &raw, &layouts_obj, &kinds, &ncols, &canonical, &lo, &hi)) return NULL;
    Scan *S = PyMem_Calloc(1, sizeof(Scan));
    if (!S) {
        PyBuffer_Release(&raw);
        return PyErr_NoMemory();
    }
    if (hi < 0 || hi > raw.len) hi = raw.len;
    fast = PySequence_Fast(layouts_obj, "layouts");
    if (!fast || ncols > MAXCOLS || lo < 0 || lo > hi || parse_layouts(fast, S->ls, &S->nl, ncols) ||
        canonical >= S->nl) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "bad layouts or range");
        goto done;
    }
    S->ncols = ncols;
    S->canonical = canonical;
    S->hash = canonical >= 0 && SHA;
    int64_t zero = 0;
    if (canonical >= 0 && !S->hash && add(&S->coffs, &zero, 8)) goto done;
    for (Py_ssize_t j = 0; j < ncols; j++) {
        S->cols[j].kind = kinds[j];
        if ((kinds[j] == 0 || kinds[j] == 3 || kinds[j] == 4 || kinds[j] == 5) && add(&S->cols[j].offs, &zero, 8))
            goto done;
        if (kinds[j] == 3 && add(&S->cols[j].coffs, &zero, 8)) goto done;
    }
    const char *base = raw.buf;
    SAVED = PyEval_SaveThread();
    int rc = scan_lines(S, base, base + lo, base + hi);
    PyEval_RestoreThread(SAVED);
    SAVED = NULL;
    if (rc < 0) {
        if (S->sha_failed) PyErr_SetString(PyExc_RuntimeError, "libcrypto SHA-256 failed");
        else if (!PyErr_Occurred()) PyErr_NoMemory();
        goto done;
    }
    if (judge_pending(S, base)) goto done;
    PyObject *columns = PyList_New(ncols);
    if (!columns) goto done;
    for (Py_ssize_t j = 0; j < ncols; j++) {
        Column *c = &S->cols[j];
        PyObject *item = c->kind == 4   ? Py_BuildValue("(NNN)", take(&c->data), take(&c->offs), take(&c->vals))
                         : c->kind == 3 ? Py_BuildValue("(NNN)", take(&c->offs), take(&c->coffs), take(&c->data))
                         : c->kind == 5 ? Py_BuildValue("(NNN)", take(&c->offs), take(&c->data), take(&c->vals))
                         : c->kind == 0 ? Py_BuildValue("(NN)", take(&c->offs), take(&c->data))
                                        : take(&c->data);
        if (!item) {
            Py_DECREF(columns);
            goto done;
        }
        PyList_SET_ITEM(columns, j, item);
    }
    PyObject *offsets = S->hash ? Py_NewRef(Py_None) : take(&S->coffs);
    result = Py_BuildValue("(NNNNNN)", take(&S->starts), take(&S->ends), take(&S->ok), columns, take(&S->canon),
                           offsets);
done:
    drop_scan(S);
    PyMem_Free(S);
    Py_XDECREF(fast);
    PyBuffer_Release(&raw);
    return result;
}

static PyMethodDef METHODS[] = {
    {"scan", scan, METH_VARARGS,
     "scan(raw, layouts, kinds, canonical, lo=0, hi=len) -> (starts, ends, ok, columns, canon, offsets)"},
    {"use_libcrypto", use_libcrypto, METH_VARARGS, "use_libcrypto(path or None) -> bool"},
    GUARD_METHODS
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_cjsonl", NULL, -1, METHODS};

PyMODINIT_FUNC PyInit__cjsonl(void) {
    if (C_LOCALE == (locale_t)0) C_LOCALE = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    if (C_LOCALE == (locale_t)0) return PyErr_NoMemory();
    PyObject *m = PyModule_Create(&MODULE);
    /* 2: dictionary columns (kind 4) and guard(); 3: timestamps (kind 5); _jsonl refuses
     * another build */
    if (m && PyModule_AddIntConstant(m, "ABI", 3)) Py_CLEAR(m);
    return m;
}
