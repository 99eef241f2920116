/* codec.c — the v3 message codec: header checks, a bounds-checked reader,
 * builders for the messages the gateway writes itself, and decoders for the
 * bodies it inspects (Parse, Bind, Execute/Describe/Close, RowDescription, DataRow). */
#include "hoopctl/pgwire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint32_t pgwire_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void pgwire_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

void pgwire_reader_init(struct pgwire_reader *r, const void *data, size_t len)
{
    r->data = data;
    r->len = len;
    r->pos = 0;
    r->bad = false;
}

static bool reader_has(struct pgwire_reader *r, size_t n)
{
    if (r->bad || r->len - r->pos < n) {
        r->bad = true;
        return false;
    }
    return true;
}

uint8_t pgwire_read_u8(struct pgwire_reader *r)
{
    if (!reader_has(r, 1))
        return 0;
    return r->data[r->pos++];
}

int16_t pgwire_read_i16(struct pgwire_reader *r)
{
    if (!reader_has(r, 2))
        return 0;
    uint16_t v = (uint16_t)(r->data[r->pos] << 8 | r->data[r->pos + 1]);
    r->pos += 2;
    return (int16_t)v;
}

int32_t pgwire_read_i32(struct pgwire_reader *r)
{
    if (!reader_has(r, 4))
        return 0;
    uint32_t v = pgwire_get_u32(r->data + r->pos);
    r->pos += 4;
    return (int32_t)v;
}

const char *pgwire_read_cstr(struct pgwire_reader *r)
{
    if (r->bad)
        return NULL;
    const uint8_t *start = r->data + r->pos;
    const uint8_t *nul = memchr(start, 0, r->len - r->pos);
    if (!nul) {
        r->bad = true;
        return NULL;
    }
    r->pos += (size_t)(nul - start) + 1;
    return (const char *)start;
}

const uint8_t *pgwire_read_bytes(struct pgwire_reader *r, size_t len)
{
    if (!reader_has(r, len))
        return NULL;
    const uint8_t *p = r->data + r->pos;
    r->pos += len;
    return p;
}

bool pgwire_reader_done(const struct pgwire_reader *r)
{
    return !r->bad && r->pos == r->len;
}

long pgwire_check_header(const uint8_t header[PGWIRE_HEADER_LEN], size_t max_message,
                         char *err, size_t errlen)
{
    uint32_t len = pgwire_get_u32(header + 1);
    if (len < 4) {
        snprintf(err, errlen, "invalid message length %u for message type 0x%02x", len, header[0]);
        return -1;
    }
    if ((size_t)len + 1 > max_message) {
        snprintf(err, errlen, "message of type 0x%02x is %u bytes, over the %zu-byte limit",
                 header[0], len, max_message);
        return -1;
    }
    return (long)(len - 4);
}

/* ---- builders ----------------------------------------------------------- */

int pgwire_msg_begin(struct buf *out, uint8_t type, size_t *start)
{
    *start = out->len;
    uint8_t hdr[5] = {type, 0, 0, 0, 0};
    return buf_append(out, hdr, 5);
}

int pgwire_msg_finish(struct buf *out, size_t start)
{
    size_t len = out->len - start - 1;
    if (len > 0x7fffffff)
        return -1;
    pgwire_put_u32(out->data + start + 1, (uint32_t)len);
    return 0;
}

int pgwire_put_i16(struct buf *out, int16_t v)
{
    uint8_t b[2] = {(uint8_t)((uint16_t)v >> 8), (uint8_t)v};
    return buf_append(out, b, 2);
}

int pgwire_put_i32(struct buf *out, int32_t v)
{
    uint8_t b[4];
    pgwire_put_u32(b, (uint32_t)v);
    return buf_append(out, b, 4);
}

int pgwire_put_cstr(struct buf *out, const char *s)
{
    return buf_append(out, s, strlen(s) + 1);
}

int pgwire_build_error(struct buf *out, bool notice, const char *severity, const char *sqlstate,
                       const char *message)
{
    size_t start;
    int rc = pgwire_msg_begin(out, notice ? 'N' : 'E', &start);
    rc |= buf_append(out, "S", 1) | pgwire_put_cstr(out, severity);
    rc |= buf_append(out, "V", 1) | pgwire_put_cstr(out, severity);
    rc |= buf_append(out, "C", 1) | pgwire_put_cstr(out, sqlstate);
    rc |= buf_append(out, "M", 1) | pgwire_put_cstr(out, message);
    rc |= buf_append(out, "", 1);
    return rc ? -1 : pgwire_msg_finish(out, start);
}

int pgwire_build_ready(struct buf *out, char status)
{
    size_t start;
    int rc = pgwire_msg_begin(out, 'Z', &start);
    rc |= buf_append(out, &status, 1);
    return rc ? -1 : pgwire_msg_finish(out, start);
}

int pgwire_build_auth_ok(struct buf *out)
{
    size_t start;
    int rc = pgwire_msg_begin(out, 'R', &start) | pgwire_put_i32(out, 0);
    return rc ? -1 : pgwire_msg_finish(out, start);
}

int pgwire_build_backend_key(struct buf *out, uint32_t pid, uint32_t secret)
{
    size_t start;
    int rc = pgwire_msg_begin(out, 'K', &start);
    rc |= pgwire_put_i32(out, (int32_t)pid) | pgwire_put_i32(out, (int32_t)secret);
    return rc ? -1 : pgwire_msg_finish(out, start);
}

int pgwire_build_negotiate(struct buf *out, uint32_t minor, const char *const *options, int n)
{
    size_t start;
    int rc = pgwire_msg_begin(out, 'v', &start);
    rc |= pgwire_put_i32(out, (int32_t)minor) | pgwire_put_i32(out, n);
    for (int i = 0; i < n; i++)
        rc |= pgwire_put_cstr(out, options[i]);
    return rc ? -1 : pgwire_msg_finish(out, start);
}

bool pgwire_error_field(const uint8_t *body, size_t len, char code, char *out, size_t outlen)
{
    struct pgwire_reader r;
    pgwire_reader_init(&r, body, len);
    for (;;) {
        uint8_t c = pgwire_read_u8(&r);
        if (r.bad || c == 0)
            return false;
        const char *v = pgwire_read_cstr(&r);
        if (!v)
            return false;
        if (c == (uint8_t)code) {
            snprintf(out, outlen, "%s", v);
            return true;
        }
    }
}

/* ---- decoders ----------------------------------------------------------- */

int pgwire_parse_parse(const uint8_t *body, size_t len, struct pgwire_parse_msg *out)
{
    struct pgwire_reader r;
    pgwire_reader_init(&r, body, len);
    out->statement = pgwire_read_cstr(&r);
    out->query = pgwire_read_cstr(&r);
    int16_t ntypes = pgwire_read_i16(&r);
    if (ntypes < 0)
        return -1;
    pgwire_read_bytes(&r, (size_t)ntypes * 4);
    return pgwire_reader_done(&r) ? 0 : -1;
}

void pgwire_bind_free(struct pgwire_bind *b)
{
    free(b->formats);
    free(b->values);
    free(b->lengths);
    memset(b, 0, sizeof *b);
}

int pgwire_parse_bind(const uint8_t *body, size_t len, struct pgwire_bind *out)
{
    struct pgwire_reader r;
    memset(out, 0, sizeof *out);
    pgwire_reader_init(&r, body, len);
    out->portal = pgwire_read_cstr(&r);
    out->statement = pgwire_read_cstr(&r);
    int16_t nf = pgwire_read_i16(&r);
    if (r.bad || nf < 0)
        return -1;
    out->nformats = nf;
    out->formats = calloc((size_t)nf + 1, sizeof *out->formats);
    if (!out->formats)
        goto bad;
    for (int i = 0; i < nf; i++)
        out->formats[i] = pgwire_read_i16(&r);
    uint16_t np = (uint16_t)pgwire_read_i16(&r);
    if (r.bad)
        goto bad;
    out->nparams = np;
    out->values = calloc((size_t)np + 1, sizeof *out->values);
    out->lengths = calloc((size_t)np + 1, sizeof *out->lengths);
    if (!out->values || !out->lengths)
        goto bad;
    for (int i = 0; i < np; i++) {
        int32_t l = pgwire_read_i32(&r);
        if (l < -1)
            goto bad;
        out->lengths[i] = l;
        out->values[i] = l < 0 ? NULL : pgwire_read_bytes(&r, (size_t)l);
        if (r.bad)
            goto bad;
    }
    int16_t nr = pgwire_read_i16(&r);
    if (nr < 0)
        goto bad;
    out->nresult_formats = nr;
    pgwire_read_bytes(&r, (size_t)nr * 2);
    if (!pgwire_reader_done(&r))
        goto bad;
    return 0;
bad:
    pgwire_bind_free(out);
    return -1;
}

int pgwire_parse_named(const uint8_t *body, size_t len, bool has_kind, char *kind,
                       const char **name)
{
    struct pgwire_reader r;
    pgwire_reader_init(&r, body, len);
    if (has_kind) {
        *kind = (char)pgwire_read_u8(&r);
        if (*kind != 'S' && *kind != 'P')
            return -1;
    }
    *name = pgwire_read_cstr(&r);
    if (!has_kind)
        pgwire_read_i32(&r); /* Execute's row limit */
    return pgwire_reader_done(&r) ? 0 : -1;
}

int pgwire_parse_row_description(const uint8_t *body, size_t len, struct pgwire_column **out)
{
    struct pgwire_reader r;
    pgwire_reader_init(&r, body, len);
    int16_t n = pgwire_read_i16(&r);
    *out = NULL;
    if (r.bad || n < 0)
        return -1;
    struct pgwire_column *cols = calloc((size_t)n + 1, sizeof *cols);
    if (!cols)
        return -1;
    for (int i = 0; i < n; i++) {
        cols[i].name = pgwire_read_cstr(&r);
        cols[i].table_oid = (uint32_t)pgwire_read_i32(&r);
        cols[i].attnum = pgwire_read_i16(&r);
        cols[i].type_oid = (uint32_t)pgwire_read_i32(&r);
        cols[i].type_len = pgwire_read_i16(&r);
        cols[i].typmod = pgwire_read_i32(&r);
        cols[i].format = pgwire_read_i16(&r);
    }
    if (!pgwire_reader_done(&r)) {
        free(cols);
        return -1;
    }
    *out = cols;
    return n;
}

int pgwire_parse_data_row(const uint8_t *body, size_t len, const uint8_t ***values,
                          int32_t **lengths)
{
    struct pgwire_reader r;
    pgwire_reader_init(&r, body, len);
    int16_t n = pgwire_read_i16(&r);
    *values = NULL;
    *lengths = NULL;
    if (r.bad || n < 0)
        return -1;
    const uint8_t **v = calloc((size_t)n + 1, sizeof *v);
    int32_t *l = calloc((size_t)n + 1, sizeof *l);
    if (!v || !l)
        goto bad;
    for (int i = 0; i < n; i++) {
        l[i] = pgwire_read_i32(&r);
        if (l[i] < -1)
            goto bad;
        v[i] = l[i] < 0 ? NULL : pgwire_read_bytes(&r, (size_t)l[i]);
        if (r.bad)
            goto bad;
    }
    if (!pgwire_reader_done(&r))
        goto bad;
    *values = v;
    *lengths = l;
    return n;
bad:
    free(v);
    free(l);
    return -1;
}
