/* Python's float repr layout of a decimal (shared by _cjsonl.c and _ccanon.c).
 *
 * repr_layout(t, n, out, &sig) reads the decimal text t (sign, digits, one point, an
 * optional exponent: any spelling of the value) and writes repr's layout of its digits
 * into out (room for 64 bytes): fixed notation for decimal exponents -4..16 with at least
 * one digit after the point, otherwise d.ddde+XX. It returns the length written, or -1
 * when t is not such a decimal; *sig gets the number of significant digits (leading and
 * trailing zeros dropped). Whether those digits are the shortest that read back as the
 * value is the caller's to know: this is layout only.
 */
#ifndef INSPECTORATE_CFLOAT_H
#define INSPECTORATE_CFLOAT_H

#include <string.h>

static int repr_layout(const char *t, Py_ssize_t n, char *out, int *sig) {
    char digits[40];
    int nd = 0, point = -1, neg = 0, exp10 = 0, k = 0;
    Py_ssize_t i = 0;
    if (i < n && t[i] == '-') { neg = 1; i++; }
    for (; i < n && t[i] != 'e' && t[i] != 'E'; i++) {
        if (t[i] == '.') {
            if (point >= 0) return -1;
            point = nd;
        } else if (t[i] >= '0' && t[i] <= '9' && nd < 38) {
            digits[nd++] = t[i];
        } else {
            return -1;
        }
    }
    if (point < 0) point = nd;
    if (i < n) {
        int esign = 1, any = 0;
        i++;
        if (i < n && (t[i] == '+' || t[i] == '-')) esign = t[i++] == '-' ? -1 : 1;
        for (; i < n; i++) {
            if (t[i] < '0' || t[i] > '9' || exp10 > 10000) return -1;
            exp10 = exp10 * 10 + (t[i] - '0');
            any = 1;
        }
        if (!any) return -1;
        exp10 *= esign;
    }
    int lead = 0;
    while (lead < nd && digits[lead] == '0') lead++;
    while (nd > lead && digits[nd - 1] == '0') nd--;
    const char *d = digits + lead;
    int len = nd - lead, decpt = point - lead + exp10;
    *sig = len;
    if (neg) out[k++] = '-';
    if (len == 0) {
        memcpy(out + k, "0.0", 3);
        return k + 3;
    }
    if (len > 17) return -1; /* more digits than any double's shortest spelling */
    if (decpt <= -4 || decpt > 16) {
        out[k++] = d[0];
        if (len > 1) {
            out[k++] = '.';
            memcpy(out + k, d + 1, len - 1);
            k += len - 1;
        }
        int e = decpt - 1, a = e < 0 ? -e : e;
        out[k++] = 'e';
        out[k++] = e < 0 ? '-' : '+';
        if (a >= 100) out[k++] = (char)('0' + a / 100);
        out[k++] = (char)('0' + a / 10 % 10);
        out[k++] = (char)('0' + a % 10);
    } else if (decpt <= 0) {
        out[k++] = '0';
        out[k++] = '.';
        for (int z = 0; z < -decpt; z++) out[k++] = '0';
        memcpy(out + k, d, len);
        k += len;
    } else if (decpt >= len) {
        memcpy(out + k, d, len);
        k += len;
        for (int z = 0; z < decpt - len; z++) out[k++] = '0';
        out[k++] = '.';
        out[k++] = '0';
    } else {
        memcpy(out + k, d, decpt);
        k += decpt;
        out[k++] = '.';
        memcpy(out + k, d + decpt, len - decpt);
        k += len - decpt;
    }
    return k;
}

#endif
