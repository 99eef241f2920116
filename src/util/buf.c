/* buf.c — a growable byte buffer with an optional hard cap, for building
 * messages and JSON bodies without fixed-size guesses. */
#include "hoopctl/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int buf_reserve(struct buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len - 1)
        return -1;
    size_t need = b->len + extra + 1; /* room for a NUL from buf_cstr */
    if (b->max && need > b->max + 1)
        return -1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *p;
    if (b->secret) { /* realloc would free the old block as it is */
        p = malloc(cap);
        if (p && b->data) {
            memcpy(p, b->data, b->len);
            util_secure_zero(b->data, b->cap);
            free(b->data);
        }
    } else {
        p = realloc(b->data, cap);
    }
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int buf_append(struct buf *b, const void *data, size_t len)
{
    if (buf_reserve(b, len) < 0)
        return -1;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

int buf_append_str(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || buf_reserve(b, (size_t)n) < 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

const char *buf_cstr(struct buf *b)
{
    if (buf_reserve(b, 0) < 0)
        return NULL;
    b->data[b->len] = '\0';
    return (const char *)b->data;
}

void buf_reset(struct buf *b) { b->len = 0; }

void buf_free(struct buf *b)
{
    if (b->secret && b->data)
        util_secure_zero(b->data, b->cap);
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* The length of the UTF-8 sequence at s (at most n bytes) and its code
 * point, or 0 when it is not well formed (overlong, surrogate, past U+10FFFF,
 * cut short). */
static size_t utf8_decode(const uint8_t *s, size_t n, uint32_t *cp)
{
    size_t len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : 2;
    uint32_t min = len == 4 ? 0x10000 : len == 3 ? 0x800 : 0x80;
    if (s[0] < 0xc2 || s[0] > 0xf4 || n < len)
        return 0;
    uint32_t c = s[0] & (len == 4 ? 0x07 : len == 3 ? 0x0f : 0x1f);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

bool util_utf8_valid(const void *data, size_t len)
{
    const uint8_t *s = data;
    uint32_t cp;
    for (size_t i = 0, n; i < len; i += n)
        if (!(n = s[i] < 0x80 ? 1 : utf8_decode(s + i, len - i, &cp)))
            return false;
    return true;
}

/* Code points a terminal shows as nothing, or that reorder what is around
 * them: C1 controls; the Unicode format characters (Cf) met in practice --
 * soft hyphen, Arabic letter mark, Mongolian vowel separator, zero-width
 * space, joiners and marks, line and paragraph separators, bidirectional
 * embeddings, overrides and isolates, word joiner and invisible operators,
 * deprecated format controls, byte-order mark, interlinear annotation
 * controls, tag characters; and the other default-ignorables that draw
 * nothing (combining grapheme joiner, Hangul fillers, variation selectors). */
static bool steers_text(uint32_t c)
{
    if (c < 0x2000)
        return (c >= 0x80 && c <= 0x9f) || c == 0x00ad || c == 0x034f || c == 0x061c || c == 0x115f ||
               c == 0x1160 || c == 0x180e;
    if (c < 0x3000)
        return (c >= 0x200b && c <= 0x200f) || (c >= 0x2028 && c <= 0x202e) || (c >= 0x2060 && c <= 0x2064) ||
               (c >= 0x2066 && c <= 0x206f);
    return c == 0x3164 || (c >= 0xfe00 && c <= 0xfe0f) || c == 0xfeff || c == 0xffa0 ||
           (c >= 0xfff9 && c <= 0xfffb) || (c >= 0xe0000 && c <= 0xe007f) || (c >= 0xe0100 && c <= 0xe01ef);
}

int buf_append_terminal_safe(struct buf *b, const char *s, size_t len, bool keep_lines)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0, run = 0; /* bytes [i - run, i) are kept as they are */
    int rc = 0;
    while (i < len) {
        uint8_t c = p[i];
        size_t n = 1;
        uint32_t cp = c;
        bool bad, byte = true; /* shown as \xNN, or else as \uNNNN */
        if (c < 0x80)
            bad = (c < 0x20 && !(keep_lines && (c == '\n' || c == '\t'))) || c == 0x7f;
        else if ((n = utf8_decode(p + i, len - i, &cp)) == 0)
            bad = true, n = 1;
        else
            bad = steers_text(cp), byte = false;
        if (!bad) {
            run += n;
            i += n;
            continue;
        }
        rc |= buf_append(b, p + i - run, run);
        run = 0;
        if (byte)
            rc |= buf_printf(b, "\\x%02x", c); /* a control, DEL, or a byte that is not UTF-8 */
        else
            rc |= cp > 0xffff ? buf_printf(b, "\\U%08x", (unsigned)cp) : buf_printf(b, "\\u%04x", (unsigned)cp);
        i += n;
    }
    rc |= buf_append(b, p + i - run, run);
    return rc ? -1 : 0;
}

char *util_terminal_safe(const char *s, bool keep_lines)
{
    struct buf b = {0};
    if (buf_append_terminal_safe(&b, s ? s : "", s ? strlen(s) : 0, keep_lines) < 0 || !buf_cstr(&b)) {
        buf_free(&b);
        return NULL;
    }
    return (char *)b.data;
}
