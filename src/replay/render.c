/* render.c — psql's aligned table format, reproduced for replay: centred
 * headers, numeric types right-aligned, '+' markers on multi-line values, no
 * trailing padding after the last column, and "(N rows)". */
#include "hoopctl/replay.h"

#include <stdlib.h>
#include <string.h>
#include <wchar.h>

int replay_type_right_aligned(uint32_t oid)
{
    switch (oid) {
    case 20:   /* int8 */
    case 21:   /* int2 */
    case 23:   /* int4 */
    case 26:   /* oid */
    case 28:   /* xid */
    case 29:   /* cid */
    case 700:  /* float4 */
    case 701:  /* float8 */
    case 790:  /* money */
    case 1700: /* numeric */
    case 5069: /* xid8 */
        return 1;
    default:
        return 0;
    }
}

/* Decode one UTF-8 sequence; returns its length (1 for invalid bytes). */
static size_t utf8_next(const unsigned char *s, size_t len, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || n > len) {
        *cp = 0xFFFD;
        return 1;
    }
    uint32_t v = n == 1 ? c : n == 2 ? (c & 0x1f) : n == 3 ? (c & 0x0f) : (c & 0x07);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            *cp = 0xFFFD;
            return 1;
        }
        v = (v << 6) | (s[i] & 0x3f);
    }
    *cp = v;
    return n;
}

/* East Asian wide and fullwidth ranges (the common ones psql counts as 2). */
static int codepoint_width(uint32_t cp)
{
    if (cp == 0)
        return 0;
    if (cp < 32 || (cp >= 0x7f && cp < 0xa0))
        return 0;
    if ((cp >= 0x0300 && cp <= 0x036f) || (cp >= 0x200b && cp <= 0x200f))
        return 0; /* combining marks, zero-width spaces */
    if ((cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf && cp != 0x303f) ||
        (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) ||
        (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
        (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x1f300 && cp <= 0x1f64f) ||
        (cp >= 0x1f900 && cp <= 0x1f9ff) || (cp >= 0x20000 && cp <= 0x3fffd))
        return 2;
    return 1;
}

int replay_display_width(const char *s, size_t len)
{
    int w = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (len > 0) {
        uint32_t cp;
        size_t n = utf8_next(p, len, &cp);
        w += codepoint_width(cp);
        p += n;
        len -= n;
    }
    return w;
}

static int pad(struct buf *out, int n)
{
    static const char spaces[] = "                                ";
    while (n > 0) {
        int k = n > 32 ? 32 : n;
        if (buf_append(out, spaces, (size_t)k) < 0)
            return -1;
        n -= k;
    }
    return 0;
}

/* The line of a cell that starts at *pos (lines split on \n), as pointer and
 * length; *pos moves to the next line, or NULL after the last. Returns 0 once
 * the cell has no more lines. A NULL cell is one empty line. Each line is
 * read once: a cell of many lines costs its length, not its length squared. */
static int next_line(const char **pos, const char **start, size_t *len)
{
    if (!*pos)
        return 0;
    const char *nl = strchr(*pos, '\n');
    *start = *pos;
    *len = nl ? (size_t)(nl - *pos) : strlen(*pos);
    *pos = nl ? nl + 1 : NULL;
    return 1;
}

static int line_count(const char *cell)
{
    int n = 1;
    for (const char *p = cell; p && *p; p++)
        n += *p == '\n';
    return n;
}

int replay_render_table(const struct replay_result *r, struct buf *out)
{
    int nc = r->ncols;
    int *width = calloc(nc > 0 ? (size_t)nc : 1, sizeof *width);
    if (!width)
        return -1;
    for (int c = 0; c < nc; c++)
        width[c] = replay_display_width(r->names[c], strlen(r->names[c]));
    for (int i = 0; i < r->nrows; i++)
        for (int c = 0; c < nc; c++) {
            const char *pos = r->cells[(size_t)i * nc + c] ? r->cells[(size_t)i * nc + c] : "";
            const char *ls;
            size_t ll;
            while (next_line(&pos, &ls, &ll)) {
                int w = replay_display_width(ls, ll);
                if (w > width[c])
                    width[c] = w;
            }
        }
    const char **pos = calloc(nc > 0 ? (size_t)nc : 1, sizeof *pos); /* each column's next line */
    if (!pos) {
        free(width);
        return -1;
    }
    int rc = 0;
    /* Header: names centred, every column followed by a space. */
    for (int c = 0; c < nc && rc == 0; c++) {
        int w = replay_display_width(r->names[c], strlen(r->names[c]));
        int left = (width[c] - w) / 2;
        rc |= buf_append_str(out, c ? "| " : " ");
        rc |= pad(out, left);
        rc |= buf_append_str(out, r->names[c]);
        rc |= pad(out, width[c] - w - left);
        rc |= buf_append(out, " ", 1);
    }
    rc |= buf_append(out, "\n", 1);
    for (int c = 0; c < nc && rc == 0; c++) {
        if (c)
            rc |= buf_append(out, "+", 1);
        for (int k = 0; k < width[c] + 2; k++)
            rc |= buf_append(out, "-", 1);
    }
    rc |= buf_append(out, "\n", 1);
    for (int i = 0; i < r->nrows && rc == 0; i++) {
        const char *const *row = r->cells + (size_t)i * nc;
        int lines = 1;
        for (int c = 0; c < nc; c++) {
            int n = line_count(row[c]);
            if (n > lines)
                lines = n;
            pos[c] = row[c] ? row[c] : "";
        }
        for (int k = 0; k < lines && rc == 0; k++) {
            for (int c = 0; c < nc; c++) {
                const char *ls = "";
                size_t ll = 0;
                int has = next_line(&pos[c], &ls, &ll);
                int more = has && row[c] && pos[c] != NULL;
                int w = replay_display_width(ls, ll);
                int last = c == nc - 1;
                rc |= buf_append_str(out, c ? "| " : " ");
                if (replay_type_right_aligned(r->type_oids[c]) && has) {
                    rc |= pad(out, width[c] - w);
                    rc |= buf_append(out, ls, ll);
                } else {
                    rc |= buf_append(out, ls, ll);
                    if (!last || more)
                        rc |= pad(out, width[c] - w);
                }
                if (more)
                    rc |= buf_append(out, "+", 1);
                else if (!last)
                    rc |= buf_append(out, " ", 1);
            }
            rc |= buf_append(out, "\n", 1);
        }
    }
    rc |= buf_printf(out, "(%d row%s)\n\n", r->nrows, r->nrows == 1 ? "" : "s");
    free(pos);
    free(width);
    return rc ? -1 : 0;
}
