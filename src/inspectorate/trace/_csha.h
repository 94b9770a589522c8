/* SHA-256 through the OpenSSL that hashlib already loaded (shared by _ccanon.c and
 * _cjsonl.c): use_libcrypto(path of _hashlib) finds the calls with dlsym through that
 * module's handle, so no crypto is vendored or linked here. Without them (SHA == 0) each
 * module hashes through hashlib objects or hands the bytes back to Python instead.
 * sha256_one() needs no Python API, so it runs without the GIL. */
#ifndef INSPECTORATE_CSHA_H
#define INSPECTORATE_CSHA_H

#include <dlfcn.h>

/* One-shot SHA-256 of the OpenSSL that hashlib already loaded (found with dlsym through
 * _hashlib's handle; see use_libcrypto). NULL: hash through the hashlib object instead. */
/* The low-level calls (deprecated in OpenSSL 3 but exported): the one-shot SHA256() looks
 * the digest up under a lock on every call, which costs as much as hashing a record. */
typedef int (*sha_init_fn)(void *);
typedef int (*sha_update_fn)(void *, const void *, size_t);
typedef int (*sha_final_fn)(unsigned char *, void *);
static sha_init_fn SHA_INIT = NULL;
static sha_update_fn SHA_UPDATE = NULL;
static sha_final_fn SHA_FINAL = NULL;
static int SHA = 0;
typedef union {
    unsigned char bytes[512]; /* SHA256_CTX is 112 bytes; room to spare */
    long double align;
} ShaCtx;
static _Thread_local ShaCtx SHA_CTX_MEM; /* one per thread: calls may run concurrently */
#define SHA_CTX_MEM_T (SHA_CTX_MEM.bytes)

static PyObject *use_libcrypto(PyObject *self, PyObject *args) {
    const char *path;
    if (!PyArg_ParseTuple(args, "z", &path)) return NULL;
    SHA = 0;
    if (path == NULL) Py_RETURN_FALSE;
    void *h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    if (h == NULL) Py_RETURN_FALSE;
    SHA_INIT = (sha_init_fn)dlsym(h, "SHA256_Init");
    SHA_UPDATE = (sha_update_fn)dlsym(h, "SHA256_Update");
    SHA_FINAL = (sha_final_fn)dlsym(h, "SHA256_Final");
    SHA = SHA_INIT != NULL && SHA_UPDATE != NULL && SHA_FINAL != NULL;
    if (SHA) Py_RETURN_TRUE;
    Py_RETURN_FALSE;
}

/* 0 ok, -1 libcrypto failed (no exception set: the caller may hold no GIL). */
static inline int sha256_one(const void *p, size_t n, unsigned char *dst) {
    void *ctx = SHA_CTX_MEM.bytes;
    return SHA_INIT(ctx) == 1 && SHA_UPDATE(ctx, p, n) == 1 && SHA_FINAL(dst, ctx) == 1 ? 0 : -1;
}

#endif
