/*
 * The lexical half of libdlrt's strict JSON reader (see json.h). Every
 * function advances the cursor only over what it accepted and never reads
 * past c->end.
 */
#include "json.h"

void dlrt_json_ws(dlrt_json_cur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

int dlrt_json_eat(dlrt_json_cur *c, char ch)
{
    dlrt_json_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* The length of the well-formed UTF-8 sequence starting at s (at most n
 * bytes available), or 0 if it is malformed (RFC 3629, table 3-7 of the
 * Unicode standard). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char b = s[0];
    if (b < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */
    if (b >= 0xc2 && b <= 0xdf)
        len = 2;
    else if (b >= 0xe0 && b <= 0xef) {
        len = 3;
        if (b == 0xe0)
            lo = 0xa0; /* overlong */
        if (b == 0xed)
            hi = 0x9f; /* UTF-16 surrogates */
    } else if (b >= 0xf0 && b <= 0xf4) {
        len = 4;
        if (b == 0xf0)
            lo = 0x90; /* overlong */
        if (b == 0xf4)
            hi = 0x8f; /* above U+10FFFF */
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

int dlrt_json_utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(u + i, n - i);
        if (!k)
            return 0;
        i += k;
    }
    return 1;
}

static int hex4(dlrt_json_cur *c, unsigned *v)
{
    if (c->end - c->p < 4)
        return -1;
    unsigned x = 0;
    for (int i = 0; i < 4; i++) {
        char h = c->p[i];
        unsigned d;
        if (h >= '0' && h <= '9')
            d = (unsigned)(h - '0');
        else if (h >= 'a' && h <= 'f')
            d = (unsigned)(h - 'a' + 10);
        else if (h >= 'A' && h <= 'F')
            d = (unsigned)(h - 'A' + 10);
        else
            return -1;
        x = x * 16 + d;
    }
    c->p += 4;
    *v = x;
    return 0;
}

static size_t put_utf8(char *out, unsigned cp)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xc0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xe0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* An escape's decoded form is never longer than its source (\uXXXX is 6
 * bytes for at most 3 of UTF-8; a surrogate pair 12 for 4), so decoding in
 * place into a buffer as long as the input cannot overflow. */
int dlrt_json_string(dlrt_json_cur *c, char *out, size_t *len)
{
    if (!dlrt_json_eat(c, '"'))
        return -1;
    size_t n = 0;
    while (c->p < c->end) {
        unsigned char b = (unsigned char)*c->p;
        if (b == '"') {
            c->p++;
            out[n] = 0;
            *len = n;
            return 0;
        }
        if (b < 0x20)
            return -1; /* control characters must be escaped */
        if (b != '\\') {
            size_t k = utf8_seq((const unsigned char *)c->p, (size_t)(c->end - c->p));
            if (!k)
                return -1;
            for (size_t i = 0; i < k; i++)
                out[n++] = c->p[i];
            c->p += k;
            continue;
        }
        if (c->end - c->p < 2)
            return -1;
        char e = c->p[1];
        c->p += 2;
        switch (e) {
        case '"': out[n++] = '"'; break;
        case '\\': out[n++] = '\\'; break;
        case '/': out[n++] = '/'; break;
        case 'b': out[n++] = '\b'; break;
        case 'f': out[n++] = '\f'; break;
        case 'n': out[n++] = '\n'; break;
        case 'r': out[n++] = '\r'; break;
        case 't': out[n++] = '\t'; break;
        case 'u': {
            unsigned cp;
            if (hex4(c, &cp))
                return -1;
            if (cp >= 0xdc00 && cp <= 0xdfff)
                return -1; /* a low surrogate without its high half */
            if (cp >= 0xd800 && cp <= 0xdbff) {
                unsigned lo;
                if (c->end - c->p < 2 || c->p[0] != '\\' || c->p[1] != 'u')
                    return -1;
                c->p += 2;
                if (hex4(c, &lo) || lo < 0xdc00 || lo > 0xdfff)
                    return -1;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            n += put_utf8(out + n, cp);
            break;
        }
        default: return -1;
        }
    }
    return -1; /* unterminated */
}

int dlrt_json_uint(dlrt_json_cur *c, uint64_t max, uint64_t *v)
{
    dlrt_json_ws(c);
    const char *p = c->p;
    if (p >= c->end || *p < '0' || *p > '9')
        return -1; /* including '-' */
    uint64_t x = 0;
    if (*p == '0') {
        p++;
    } else {
        while (p < c->end && *p >= '0' && *p <= '9') {
            uint64_t d = (uint64_t)(*p - '0');
            if (x > (max - d) / 10)
                return -1;
            x = x * 10 + d;
            p++;
        }
    }
    if (p < c->end && (*p == '.' || *p == 'e' || *p == 'E' || (*p >= '0' && *p <= '9')))
        return -1; /* a fraction, an exponent or a leading zero */
    c->p = p;
    *v = x;
    return 0;
}
