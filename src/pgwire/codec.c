/* codec.c — the v3 message codec: header checks, a bounds-checked reader,
 * builders for the messages the gateway writes itself, and decoders for the
 * bodies it inspects (Parse, Bind, Execute/Describe/Close, RowDescription, DataRow). */
#include "hoopctl/pgwire.h"

#include <math.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    return pgwire_build_error_detail(out, notice, severity, sqlstate, message, NULL, NULL);
}

int pgwire_build_error_detail(struct buf *out, bool notice, const char *severity, const char *sqlstate,
                              const char *message, const char *detail, const char *hint)
{
    size_t start;
    int rc = pgwire_msg_begin(out, notice ? 'N' : 'E', &start);
    rc |= buf_append(out, "S", 1) | pgwire_put_cstr(out, severity);
    rc |= buf_append(out, "V", 1) | pgwire_put_cstr(out, severity);
    rc |= buf_append(out, "C", 1) | pgwire_put_cstr(out, sqlstate);
    rc |= buf_append(out, "M", 1) | pgwire_put_cstr(out, message);
    if (detail && *detail)
        rc |= buf_append(out, "D", 1) | pgwire_put_cstr(out, detail);
    if (hint && *hint)
        rc |= buf_append(out, "H", 1) | pgwire_put_cstr(out, hint);
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

int pgwire_build_negotiate(struct buf *out, uint32_t version, const char *const *options, int n)
{
    size_t start;
    int rc = pgwire_msg_begin(out, 'v', &start);
    rc |= pgwire_put_i32(out, (int32_t)version) | pgwire_put_i32(out, n);
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
    out->ntypes = ntypes;
    out->types = pgwire_read_bytes(&r, (size_t)ntypes * 4);
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

/* ---- binary parameters as text ------------------------------------------ */

/* Text a text-like type may hold: UTF-8 with no NUL. */
static bool utf8_ok(const uint8_t *s, size_t n)
{
    return !memchr(s, 0, n) && util_utf8_valid(s, n);
}

static uint64_t be64(const uint8_t *p)
{
    return (uint64_t)pgwire_get_u32(p) << 32 | pgwire_get_u32(p + 4);
}

/* The shortest decimal that reads back as d, laid out as PostgreSQL prints
 * floats: plain unless the exponent is below -4 or at least 15 (float8) or
 * 6 (float4), then as d.ddde+XX. */
static int put_float(struct buf *out, double d, bool single)
{
    if (isnan(d))
        return buf_append_str(out, "NaN");
    if (isinf(d))
        return buf_append_str(out, d > 0 ? "Infinity" : "-Infinity");
    char s[48];
    int prec = 1;
    for (; prec < 17; prec++) { /* significant digits needed */
        snprintf(s, sizeof s, "%.*e", prec - 1, d);
        double back = strtod(s, NULL);
        if (single ? (float)back == (float)d : back == d)
            break;
    }
    snprintf(s, sizeof s, "%.*e", prec - 1, d);
    int exp10 = atoi(strchr(s, 'e') + 1);
    if (d == 0 || (exp10 >= -4 && exp10 < (single ? 6 : 15)))
        snprintf(s, sizeof s, "%.*f", prec - 1 - exp10 > 0 ? prec - 1 - exp10 : 0, d);
    return buf_append_str(out, s);
}

/* PostgreSQL's epoch, 2000-01-01, in Unix seconds. */
#define PG_EPOCH_UNIX 946684800LL

static int put_timestamp(struct buf *out, int64_t us, bool tz)
{
    if (us == INT64_MAX || us == INT64_MIN)
        return buf_append_str(out, us > 0 ? "infinity" : "-infinity");
    int64_t secs = us / 1000000, frac = us % 1000000;
    if (frac < 0) {
        frac += 1000000;
        secs--;
    }
    time_t t = (time_t)(secs + PG_EPOCH_UNIX);
    struct tm tm;
    char s[64];
    if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 1 || !strftime(s, sizeof s, "%Y-%m-%d %H:%M:%S", &tm))
        return -1;
    int rc = buf_append_str(out, s);
    if (frac)
        rc |= buf_printf(out, ".%06lld", (long long)frac);
    while (frac && out->len && out->data[out->len - 1] == '0') /* PostgreSQL drops trailing zeros */
        out->len--;
    return rc | (tz ? buf_append_str(out, "+00") : 0);
}

int pgwire_binary_to_text(uint32_t type_oid, const uint8_t *v, size_t len, struct buf *out)
{
    size_t mark = out->len;
    int rc;
    switch (type_oid) {
    case 16: /* bool */
        if (len != 1)
            return -1;
        rc = buf_append_str(out, v[0] ? "t" : "f");
        break;
    case 21: /* int2 */
        if (len != 2)
            return -1;
        rc = buf_printf(out, "%d", (int16_t)((v[0] << 8) | v[1]));
        break;
    case 23: /* int4 */
        if (len != 4)
            return -1;
        rc = buf_printf(out, "%d", (int32_t)pgwire_get_u32(v));
        break;
    case 26: /* oid */
        if (len != 4)
            return -1;
        rc = buf_printf(out, "%u", pgwire_get_u32(v));
        break;
    case 20: /* int8 */
        if (len != 8)
            return -1;
        rc = buf_printf(out, "%lld", (long long)(int64_t)be64(v));
        break;
    case 700: { /* float4 */
        if (len != 4)
            return -1;
        uint32_t u = pgwire_get_u32(v);
        float f;
        memcpy(&f, &u, sizeof f);
        rc = put_float(out, f, true);
        break;
    }
    case 701: { /* float8 */
        if (len != 8)
            return -1;
        uint64_t u = be64(v);
        double d;
        memcpy(&d, &u, sizeof d);
        rc = put_float(out, d, false);
        break;
    }
    case 25: case 1043: case 1042: case 19: case 114: /* text, varchar, bpchar, name, json */
        if (!utf8_ok(v, len))
            return -1;
        rc = buf_append(out, v, len);
        break;
    case 3802: /* jsonb: a version byte (1), then the text */
        if (len < 1 || v[0] != 1 || !utf8_ok(v + 1, len - 1))
            return -1;
        rc = buf_append(out, v + 1, len - 1);
        break;
    case 2950: /* uuid */
        if (len != 16)
            return -1;
        rc = 0;
        for (size_t i = 0; i < 16; i++)
            rc |= buf_printf(out, "%s%02x", i == 4 || i == 6 || i == 8 || i == 10 ? "-" : "", v[i]);
        break;
    case 1082: { /* date: days since 2000-01-01 */
        if (len != 4)
            return -1;
        int32_t days = (int32_t)pgwire_get_u32(v);
        if (days == INT32_MAX || days == INT32_MIN) {
            rc = buf_append_str(out, days > 0 ? "infinity" : "-infinity");
            break;
        }
        time_t t = (time_t)(PG_EPOCH_UNIX + (int64_t)days * 86400);
        struct tm tm;
        char s[32];
        if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 1 || !strftime(s, sizeof s, "%Y-%m-%d", &tm))
            return -1;
        rc = buf_append_str(out, s);
        break;
    }
    case 1114: case 1184: /* timestamp, timestamptz: microseconds since 2000-01-01 (UTC) */
        if (len != 8)
            return -1;
        rc = put_timestamp(out, (int64_t)be64(v), type_oid == 1184);
        break;
    default:
        return -1;
    }
    if (rc != 0) {
        out->len = mark;
        return -1;
    }
    return 0;
}
