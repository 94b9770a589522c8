/* Dictionary-encoded string columns for the scanner (included by _cjsonl.c after Column).
 *
 * A column of kind 4 holds the chip, job and other identity strings the frame keeps as
 * Categorical: few distinct values over many rows. Each row gets the int32 index of its
 * value among the column's distinct values (data), and each distinct value is kept once
 * (offs: int64 offsets into vals), found again through an open-addressing table of
 * 1-based indices (slots, a power of two, at most half full). The text is never copied
 * per row and Polars takes the column as it is (no cast, no hashing of 300k strings).
 * Only malloc'd memory and Bufs are touched, so it runs without the GIL. */
#ifndef INSPECTORATE_CDICT_H
#define INSPECTORATE_CDICT_H

static inline uint64_t dict_hash(const char *s, Py_ssize_t n) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (Py_ssize_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h ^ (h >> 29);
}

static int dict_rehash(Column *c, Py_ssize_t nslots) {
    uint32_t *slots = calloc((size_t)nslots, sizeof *slots);
    if (!slots) return -1;
    const int64_t *off = (const int64_t *)c->offs.p;
    Py_ssize_t count = c->offs.len / 8 - 1;
    size_t mask = (size_t)nslots - 1;
    for (Py_ssize_t k = 0; k < count; k++) {
        size_t i = dict_hash(c->vals.p + off[k], off[k + 1] - off[k]) & mask;
        while (slots[i]) i = (i + 1) & mask;
        slots[i] = (uint32_t)(k + 1);
    }
    free(c->slots);
    c->slots = slots;
    c->nslots = nslots;
    return 0;
}

/* The index of s[0:n] among the column's values, added if new; -1 out of memory. */
static int64_t dict_index(Column *c, const char *s, Py_ssize_t n) {
    Py_ssize_t count = c->offs.len / 8 - 1;
    if ((count + 1) * 2 > c->nslots && dict_rehash(c, c->nslots ? c->nslots * 2 : 64)) return -1;
    const int64_t *off = (const int64_t *)c->offs.p;
    size_t mask = (size_t)c->nslots - 1, i = dict_hash(s, n) & mask;
    for (; c->slots[i]; i = (i + 1) & mask) {
        Py_ssize_t k = (Py_ssize_t)c->slots[i] - 1;
        if (off[k + 1] - off[k] == n && memcmp(c->vals.p + off[k], s, (size_t)n) == 0) return k;
    }
    if (count >= INT32_MAX - 1) return -1;
    int64_t end = c->vals.len + n;
    if (add(&c->vals, s, n) || add(&c->offs, &end, 8)) return -1;
    c->slots[i] = (uint32_t)(count + 1);
    return count;
}

/* A string token at *pp as its value's index appended to data: 0 ok, 1 no, -1 memory. */
static int scan_cat(const char **pp, const char *e, Column *c) {
    const char *p = *pp;
    if (p >= e || *p != '"') return 1;
    const char *s = ++p;
    p = plain_run(p, e);
    if (p >= e || *p != '"') return 1;
    int64_t k = dict_index(c, s, p - s);
    if (k < 0) return -1;
    int32_t v = (int32_t)k;
    if (add(&c->data, &v, 4)) return -1;
    *pp = p + 1;
    return 0;
}

#endif
