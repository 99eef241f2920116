/* mask.c — masking of result values: per-column plans from a RowDescription
 * (column rules via the catalog, computed columns via the parse tree),
 * styles (full, partial, keyed hash), values that stay valid for their type
 * in text and binary format (or NULL), detector hits, COPY text rows, counters. */
#include "policy_internal.h"

#include <ctype.h>
#include <math.h>
#include <openssl/evp.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MASK_MAX_DETECTIONS 64

/* Type OIDs from pg_type.dat (stable across PostgreSQL versions). */
enum {
    OID_BOOL = 16, OID_BYTEA = 17, OID_CHAR = 18, OID_NAME = 19, OID_INT8 = 20, OID_INT2 = 21,
    OID_INT4 = 23, OID_TEXT = 25, OID_OID = 26, OID_JSON = 114, OID_XML = 142, OID_CIDR = 650,
    OID_FLOAT4 = 700, OID_FLOAT8 = 701, OID_UNKNOWN = 705, OID_INET = 869, OID_BPCHAR = 1042,
    OID_VARCHAR = 1043, OID_DATE = 1082, OID_TIME = 1083, OID_TIMESTAMP = 1114,
    OID_TIMESTAMPTZ = 1184, OID_INTERVAL = 1186, OID_NUMERIC = 1700, OID_UUID = 2950, OID_JSONB = 3802,
};

static bool is_string_type(uint32_t t)
{
    return t == OID_TEXT || t == OID_VARCHAR || t == OID_BPCHAR || t == OID_NAME || t == OID_UNKNOWN;
}

/* Types whose values never hold a detector's match (or whose text would give
 * false hits, like bytea's hex). */
static bool skips_detectors(uint32_t t)
{
    switch (t) {
    case OID_BOOL: case OID_BYTEA: case OID_CHAR: case OID_INT2: case OID_INT4: case OID_OID:
    case OID_FLOAT4: case OID_FLOAT8: case OID_DATE: case OID_TIME: case OID_TIMESTAMP:
    case OID_TIMESTAMPTZ: case OID_INTERVAL: case OID_UUID:
        return true;
    default:
        return false;
    }
}

/* Whether the detectors run over values of type t: every type but those
 * whose values cannot hold a match in any format (float8 and bytea can:
 * replace(card, ' ', '')::float8, card::bytea). */
static bool detects_type(uint32_t t)
{
    return !skips_detectors(t) || t == OID_FLOAT8 || t == OID_BYTEA;
}

/* ---- the keyed hash ---- */

int policy_hmac_init(struct policy *p)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_MAC_free(mac); /* the context holds its own reference */
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0), OSSL_PARAM_END};
    if (!ctx || EVP_MAC_init(ctx, p->hash_key, p->hash_key_len, params) != 1) {
        EVP_MAC_CTX_free(ctx);
        return -1;
    }
    p->hmac = ctx;
    return 0;
}

void policy_hmac_free(struct policy *p)
{
    EVP_MAC_CTX_free(p->hmac);
    p->hmac = NULL;
}

/* HMAC-SHA256 of data under the policy's key: a copy of the keyed context
 * (the key schedule and the algorithm look-up are done once per policy; the
 * copy only reads the shared one, so threads may hash at the same time). */
static void hmac(const struct policy *p, const void *data, size_t len, uint8_t out[32])
{
    EVP_MAC_CTX *c = EVP_MAC_CTX_dup(p->hmac);
    size_t outlen = 0;
    if (!c || EVP_MAC_update(c, data, len) != 1 || EVP_MAC_final(c, out, &outlen, 32) != 1 || outlen != 32) {
        /* Out of memory: a pseudonym must not leak the value, so fall back
         * to the slow one-shot form, which needs no copy of the context. */
        unsigned int n = 32;
        memset(out, 0, 32);
        HMAC(EVP_sha256(), p->hash_key, (int)p->hash_key_len, data, len, out, &n);
    }
    EVP_MAC_CTX_free(c);
}

static uint64_t hmac_u64(const struct policy *p, const void *data, size_t len)
{
    uint8_t h[32];
    hmac(p, data, len, h);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | h[i];
    return v;
}

static void hmac_hex(const struct policy *p, const void *data, size_t len, char *out, size_t nhex)
{
    uint8_t h[32];
    char hex[65];
    hmac(p, data, len, h);
    util_hex_encode(h, sizeof(h), hex);
    if (nhex > 64)
        nhex = 64;
    memcpy(out, hex, nhex);
    out[nhex] = '\0';
}

/* ---- text styles ---- */

/* Length of the UTF-8 sequence starting with byte c (1 for stray bytes). */
static size_t utf8_len(uint8_t c)
{
    if (c >= 0xf0 && c < 0xf8)
        return 4;
    if (c >= 0xe0)
        return c < 0xf0 ? 3 : 1;
    if (c >= 0xc0)
        return 2;
    return 1;
}

static size_t utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i += utf8_len((uint8_t)s[i]))
        n++;
    return n;
}

/* Append: chars [0, keep_head) as they are, stars for the middle, the last
 * keep_tail characters as they are. Whole UTF-8 characters only. */
static void stars_keep(struct buf *b, const char *s, size_t len, size_t keep_head, size_t keep_tail)
{
    size_t total = utf8_chars(s, len), idx = 0;
    for (size_t i = 0; i < len; idx++) {
        size_t cl = utf8_len((uint8_t)s[i]);
        if (i + cl > len)
            cl = len - i;
        if (idx < keep_head || idx + keep_tail >= total)
            buf_append(b, s + i, cl);
        else
            buf_append(b, "*", 1);
        i += cl;
    }
}

char *policy_mask_text(const struct policy *p, enum policy_mask_style style, const char *v, size_t len,
                       size_t *outlen)
{
    struct buf b = {0};
    const char *at = memchr(v, '@', len);
    switch (style) {
    case POLICY_STYLE_FULL:
        buf_append_str(&b, "****");
        break;
    case POLICY_STYLE_PARTIAL:
        if (at && at > v) {
            stars_keep(&b, v, (size_t)(at - v), 1, 0); /* a***@example.com */
            buf_append(&b, at, len - (size_t)(at - v));
        } else if (utf8_chars(v, len) >= 8) {
            stars_keep(&b, v, len, 0, 4);              /* ************1111 */
        } else {
            buf_append_str(&b, "****");
        }
        break;
    case POLICY_STYLE_HASH: {
        char hex[17];
        if (at && at > v) {
            /* A pseudonymous address at the same domain: joins and GROUP BY domain still work. */
            hmac_hex(p, v, len, hex, 12);
            buf_append_str(&b, hex);
            buf_append(&b, at, len - (size_t)(at - v));
        } else {
            hmac_hex(p, v, len, hex, 16);
            buf_printf(&b, "h_%s", hex);
        }
        break;
    }
    }
    if (!b.data)
        return NULL;
    *outlen = b.len;
    buf_cstr(&b);
    return (char *)b.data;
}

/* ---- type-valid masked values ---- */

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int64_t year_from_days(int64_t z)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    return (int64_t)yoe + era * 400 + (m <= 2);
}

#define PG_EPOCH_DAYS 10957 /* 2000-01-01 - 1970-01-01 */
#define USECS_PER_DAY INT64_C(86400000000)

static void put_be(struct buf *b, uint64_t v, int nbytes)
{
    uint8_t x[8];
    for (int i = 0; i < nbytes; i++)
        x[i] = (uint8_t)(v >> (8 * (nbytes - 1 - i)));
    buf_append(b, x, (size_t)nbytes);
}

static uint64_t get_be(const uint8_t *v, int nbytes)
{
    uint64_t x = 0;
    for (int i = 0; i < nbytes; i++)
        x = (x << 8) | v[i];
    return x;
}

/* numeric binary: ndigits, weight, sign, dscale, base-10000 digits. */
static void numeric_binary(struct buf *b, uint64_t v)
{
    uint16_t digits[5];
    int n = 0;
    for (uint64_t x = v; x; x /= 10000)
        digits[n++] = (uint16_t)(x % 10000);
    put_be(b, (uint64_t)n, 2);
    put_be(b, (uint64_t)(n ? n - 1 : 0), 2);
    put_be(b, 0, 2);
    put_be(b, 0, 2);
    for (int i = n - 1; i >= 0; i--)
        put_be(b, digits[i], 2);
}

/* The year of a text date/timestamp in ISO form ("2024-05-17..."), or -1. */
static int text_year(const uint8_t *v, size_t len)
{
    if (len < 5 || v[4] != '-')
        return -1;
    for (int i = 0; i < 4; i++)
        if (!isdigit(v[i]))
            return -1;
    return (v[0] - '0') * 1000 + (v[1] - '0') * 100 + (v[2] - '0') * 10 + (v[3] - '0');
}

/* The masked value of a whole column value. Returns 1 with b filled, 2 for
 * NULL (no valid masked value for the type). */
static int mask_typed(const struct policy *p, enum policy_mask_style style, uint32_t type, int16_t format,
                      const uint8_t *v, size_t len, struct buf *b)
{
    bool bin = format == 1;
    uint64_t h = style == POLICY_STYLE_HASH ? hmac_u64(p, v, len) : 0;
    switch (type) {
    case OID_INT2: case OID_INT4: case OID_INT8: case OID_OID: case OID_NUMERIC:
    case OID_FLOAT4: case OID_FLOAT8: {
        uint64_t x = type == OID_INT2 ? h % 32768 : type == OID_INT4 ? h % INT32_MAX
                   : type == OID_OID ? h % UINT32_MAX : type == OID_FLOAT4 ? h % (1u << 24)
                   : type == OID_FLOAT8 ? h % (UINT64_C(1) << 53) : h % INT64_MAX;
        if (!bin)
            buf_printf(b, "%llu", (unsigned long long)x);
        else if (type == OID_INT2)
            put_be(b, x, 2);
        else if (type == OID_INT4 || type == OID_OID)
            put_be(b, x, 4);
        else if (type == OID_INT8)
            put_be(b, x, 8);
        else if (type == OID_NUMERIC)
            numeric_binary(b, x);
        else if (type == OID_FLOAT4) {
            float f = (float)x;
            uint32_t u;
            memcpy(&u, &f, 4);
            put_be(b, u, 4);
        } else {
            double d = (double)x;
            uint64_t u;
            memcpy(&u, &d, 8);
            put_be(b, u, 8);
        }
        return 1;
    }
    case OID_UUID: {
        uint8_t u[16] = {0};
        if (style == POLICY_STYLE_HASH) {
            uint8_t full[32];
            hmac(p, v, len, full);
            memcpy(u, full, 16);
            u[6] = (uint8_t)((u[6] & 0x0f) | 0x80); /* version 8: custom */
            u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
        }
        if (bin)
            buf_append(b, u, 16);
        else {
            char hex[33];
            util_hex_encode(u, 16, hex);
            buf_printf(b, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
        }
        return 1;
    }
    case OID_DATE: case OID_TIMESTAMP: case OID_TIMESTAMPTZ: {
        /* full and hash: 1970-01-01; partial keeps the year. */
        int64_t year = 1970;
        if (style == POLICY_STYLE_PARTIAL) {
            if (!bin && text_year(v, len) >= 0)
                year = text_year(v, len);
            else if (bin && type == OID_DATE && len == 4) {
                int32_t days = (int32_t)get_be(v, 4);
                if (days != INT32_MAX && days != INT32_MIN)
                    year = year_from_days((int64_t)days + PG_EPOCH_DAYS);
            } else if (bin && len == 8) {
                int64_t us = (int64_t)get_be(v, 8);
                if (us != INT64_MAX && us != INT64_MIN) {
                    int64_t days = us / USECS_PER_DAY - (us % USECS_PER_DAY < 0);
                    year = year_from_days(days + PG_EPOCH_DAYS);
                }
            }
            if (year < 1 || year > 9999)
                year = 1970;
        }
        int64_t days = days_from_civil(year, 1, 1) - PG_EPOCH_DAYS;
        if (type == OID_DATE) {
            if (bin)
                put_be(b, (uint64_t)(int64_t)days, 4);
            else
                buf_printf(b, "%04d-01-01", (int)year);
        } else {
            if (bin)
                put_be(b, (uint64_t)(days * USECS_PER_DAY), 8);
            else
                buf_printf(b, "%04d-01-01 00:00:00%s", (int)year, type == OID_TIMESTAMPTZ ? "+00" : "");
        }
        return 1;
    }
    case OID_TIME: case OID_INTERVAL:
        if (bin)
            buf_append(b, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", type == OID_TIME ? 8 : 16);
        else
            buf_append_str(b, "00:00:00");
        return 1;
    case OID_INET: case OID_CIDR:
        if (bin)
            buf_append(b, (const uint8_t[]){2, 32, type == OID_CIDR, 4, 0, 0, 0, 0}, 8);
        else
            buf_append_str(b, type == OID_CIDR ? "0.0.0.0/32" : "0.0.0.0");
        return 1;
    case OID_BYTEA:
        if (style == POLICY_STYLE_HASH) {
            uint8_t full[32];
            hmac(p, v, len, full);
            if (bin)
                buf_append(b, full, 16);
            else {
                char hex[33];
                util_hex_encode(full, 16, hex);
                buf_printf(b, "\\x%s", hex);
            }
        } else if (!bin) {
            buf_append_str(b, "\\x");
        } /* binary full/partial: an empty bytea */
        return 1;
    case OID_JSON: case OID_JSONB: {
        if (bin && type == OID_JSONB) {
            if (len < 1 || v[0] != 1)
                return 2; /* an unknown jsonb version: no valid masked value we know */
            buf_append(b, "\x01", 1);
        }
        if (style == POLICY_STYLE_HASH) {
            char hex[17];
            hmac_hex(p, v, len, hex, 16);
            buf_printf(b, "\"h_%s\"", hex);
        } else {
            buf_append_str(b, "\"****\"");
        }
        return 1;
    }
    default:
        if (is_string_type(type)) {
            size_t n;
            char *m = policy_mask_text(p, style, (const char *)v, len, &n);
            if (!m)
                return -1;
            buf_append(b, m, n);
            free(m);
            return 1;
        }
        return 2; /* bool, arrays, enums, ranges, ...: NULL */
    }
}

/* ---- plans ---- */

void policy_mask_plan_free(struct policy_mask_plan *plan)
{
    free(plan->cols);
    memset(plan, 0, sizeof(*plan));
}

/* The style of the first column rule matching schema.table.column, or -1. */
static int column_rule_style(const struct policy *p, const struct policy_column_ref *r)
{
    char full[3 * POLICY_NAME_MAX + 3];
    snprintf(full, sizeof(full), "%s.%s.%s", r->schema, r->table, r->column);
    for (size_t i = 0; i < p->ncolumns; i++)
        if (policy_glob(p->columns[i].pattern, full))
            return (int)p->columns[i].style;
    return -1;
}

/* The planner's statistics views hold sampled values of every column
 * (most common values, histogram bounds), and the TOAST tables (which a
 * superuser can read) the long values of every column, whatever column
 * rules say: with any column rule they are masked. */
static bool is_stats_view(const char *schema, const char *table)
{
    if (schema && strcmp(schema, "pg_toast") == 0)
        return true;
    return (!schema || strcmp(schema, "pg_catalog") == 0) &&
           (strcmp(table, "pg_stats") == 0 || strcmp(table, "pg_stats_ext") == 0 ||
            strcmp(table, "pg_stats_ext_exprs") == 0 || strcmp(table, "pg_statistic") == 0 ||
            strcmp(table, "pg_statistic_ext_data") == 0);
}

/* A column of those holding sampled or stored values (also as a view's
 * base column: pg_stats reads pg_statistic's stavalues). */
static bool is_stats_value(const struct policy_column_ref *r)
{
    if (strcmp(r->schema, "pg_toast") == 0)
        return true;
    return is_stats_view(r->schema, r->table) &&
           (strcmp(r->column, "most_common_vals") == 0 || strcmp(r->column, "histogram_bounds") == 0 ||
            strcmp(r->column, "most_common_elems") == 0 || strncmp(r->column, "stavalues", 9) == 0 ||
            strncmp(r->column, "stxd", 4) == 0);
}

/* A base column that masking guards: a column rule's, or a sampled value. */
static bool base_is_masked(const struct policy *p, const struct policy_column_ref *r)
{
    return column_rule_style(p, r) >= 0 || (p->ncolumns && is_stats_value(r));
}

bool policy_columns_masked(const struct policy *p, const struct policy_column_ref *cols, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (column_rule_style(p, &cols[i]) >= 0)
            return true;
    return false;
}

/* Split a column rule "s.t.c" into its parts (globs may not hold dots). */
static void rule_parts(const char *pat, char *schema, char *table, char *column)
{
    char tmp[3 * POLICY_NAME_MAX + 3];
    snprintf(tmp, sizeof(tmp), "%s", pat);
    char *d1 = strchr(tmp, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d1 || !d2) {
        snprintf(schema, POLICY_NAME_MAX, "*");
        snprintf(table, POLICY_NAME_MAX, "*");
        snprintf(column, POLICY_NAME_MAX, "*");
        return;
    }
    *d1 = *d2 = '\0';
    snprintf(schema, POLICY_NAME_MAX, "%.63s", tmp);
    snprintf(table, POLICY_NAME_MAX, "%.63s", d1 + 1);
    snprintf(column, POLICY_NAME_MAX, "%.63s", d2 + 1);
}

/* Whether the statement reads a relation that column rule i names by table
 * (an unqualified relation matches any schema). */
static bool stmt_reads_rule_table(const struct policy *p, size_t i, const struct policy_stmt *st)
{
    char s[POLICY_NAME_MAX], t[POLICY_NAME_MAX], c[POLICY_NAME_MAX];
    rule_parts(p->columns[i].pattern, s, t, c);
    for (size_t k = 0; k < st->nrelations; k++) {
        const struct policy_relation *r = &st->relations[k];
        if (policy_glob(t, r->name) && (!r->schema || policy_glob(s, r->schema)))
            return true;
    }
    return false;
}

/* Whether the statement reads a relation some column rule names (by table).
 * Returns the rule or -1. */
static int stmt_reads_masked_table(const struct policy *p, const struct policy_stmt *st)
{
    for (size_t i = 0; i < p->ncolumns; i++)
        if (stmt_reads_rule_table(p, i, st))
            return (int)i;
    return -1;
}

/* Whether names (column references of st) may read a masked column: a name
 * matches a rule's column part and st reads that rule's table (a masked
 * value reached through a view or a function is stmt_reads_hidden_source's
 * business), or st reads a masked table and a name is a star or a whole-row
 * reference (row_to_json(u)). Returns the style or -1. */
/* Whether a name of st stands for a whole row: a star, or a lone alias or
 * relation name (row_to_json(u)). */
static bool names_whole_row(const struct policy_stmt *st, const char *name)
{
    if (strcmp(name, "*") == 0)
        return true;
    for (size_t a = 0; a < st->naliases; a++)
        if (strcmp(name, st->aliases[a]) == 0)
            return true;
    for (size_t a = 0; a < st->nrelations; a++)
        if (strcmp(name, st->relations[a].name) == 0)
            return true;
    return false;
}

static int masked_ref_style(const struct policy *p, const struct policy_stmt *st, char **names, size_t n)
{
    for (size_t i = 0; i < p->ncolumns; i++) {
        char s[POLICY_NAME_MAX], t[POLICY_NAME_MAX], c[POLICY_NAME_MAX];
        rule_parts(p->columns[i].pattern, s, t, c);
        for (size_t k = 0; k < n; k++)
            if (strcmp(names[k], "*") != 0 && policy_glob(c, names[k]) && stmt_reads_rule_table(p, i, st))
                return (int)p->columns[i].style;
    }
    int r = stmt_reads_masked_table(p, st);
    if (r < 0)
        return -1;
    for (size_t k = 0; k < n; k++)
        if (names_whole_row(st, names[k]))
            return (int)p->columns[r].style;
    /* Reads a masked table but no column of it by a masked name, and no whole
     * row: count(*), ids, other columns — left unmasked. */
    return -1;
}

/* Whether st may read masked values that its own text does not name: a view
 * over a masked column, a function that may be user code (a SQL function can
 * select anything), SQL run from a string, or a cursor or prepared statement
 * the session never saw. Without a catalog that can tell, any relation or
 * function counts (fail closed). */
static bool stmt_reads_hidden_source(const struct policy *p, struct policy_catalog *catalog,
                                     const struct policy_stmt *st)
{
    if (st->facts & (POLICY_FACT_DYNAMIC_SQL | POLICY_FACT_UNKNOWN_CURSOR | POLICY_FACT_UNKNOWN_PREPARED))
        return true;
    for (size_t i = 0; p->ncolumns && i < st->nrelations; i++)
        if (is_stats_view(st->relations[i].schema, st->relations[i].name))
            return true;
    if (!catalog || !catalog->relation || !catalog->function)
        return st->nrelations > 0 || st->nfunctions > 0;
    char err[POLICY_ERR_MAX];
    for (size_t i = 0; i < st->nrelations; i++) {
        bool is_view = false;
        const struct policy_column_ref *base = NULL;
        size_t nbase = 0;
        if (catalog->relation(catalog, st->relations[i].schema, st->relations[i].name, &is_view, &base, &nbase,
                              err) < 0)
            return true;
        for (size_t b = 0; b < nbase; b++) /* a view's, or a child table's parents' */
            if (base_is_masked(p, &base[b]))
                return true;
    }
    return policy_stmt_calls_user_code(catalog, st);
}

/* A computed column (table OID 0) is masked when its statement may read a
 * masked column: by name, star or whole row in its text, or through a hidden
 * source (above); without a statement it is masked. Returns the style or -1. */
static int computed_column_style(const struct policy *p, struct policy_catalog *catalog,
                                 const struct policy_stmt *st)
{
    if (!p->ncolumns)
        return -1;
    if (!st)
        return (int)p->columns[0].style;
    int style = masked_ref_style(p, st, st->columns, st->ncolumns);
    if (style < 0 && stmt_reads_hidden_source(p, catalog, st))
        style = POLICY_STYLE_FULL;
    return style;
}

static int plan_alloc(struct policy_mask_plan *out, size_t ncols, char err[POLICY_ERR_MAX])
{
    memset(out, 0, sizeof(*out));
    out->cols = calloc(ncols ? ncols : 1, sizeof(*out->cols));
    if (!out->cols) {
        snprintf(err, POLICY_ERR_MAX, "out of memory");
        return -1;
    }
    out->ncols = ncols;
    return 0;
}

bool policy_stmt_may_read_masked(const struct policy *p, struct policy_catalog *catalog,
                                 const struct policy_stmt *st)
{
    return computed_column_style(p, catalog, st) >= 0;
}

/* Whether a source name of st (a column, a star, a whole row) may be column
 * `column` of one of its relations. */
static bool sources_may_name(const struct policy_stmt *st, const char *column)
{
    for (size_t k = 0; k < st->nsources; k++)
        if (strcmp(st->sources[k], column) == 0 || names_whole_row(st, st->sources[k]))
            return true;
    return false;
}

/* Whether st reads a masked value through view `rel`: a column of the view
 * that stands for a masked column (by the view's own names, which may rename
 * its bases), or the whole row of a view that reads one. 1 yes, 0 no, -1 err. */
static int view_names_masked(const struct policy *p, struct policy_catalog *catalog, const struct policy_stmt *st,
                             const struct policy_relation *rel, const struct policy_column_ref *base, size_t nbase,
                             char err[POLICY_ERR_MAX])
{
    bool reads_masked = false;
    for (size_t b = 0; b < nbase && !reads_masked; b++)
        reads_masked = base_is_masked(p, &base[b]);
    if (!reads_masked)
        return 0;
    for (size_t k = 0; k < st->nsources; k++) {
        if (names_whole_row(st, st->sources[k]) || !catalog->view_column)
            return 1;
        const struct policy_column_ref *vb = NULL;
        size_t nvb = 0;
        if (catalog->view_column(catalog, rel->schema, rel->name, st->sources[k], &vb, &nvb, err) < 0)
            return -1;
        for (size_t b = 0; b < nvb; b++)
            if (base_is_masked(p, &vb[b]))
                return 1;
    }
    return 0;
}

/* Whether a view (or materialized view) whose base columns are base reads
 * a masked column anywhere in its definition: an output column, or a join's
 * or filter's condition (substr(email, k.pos, 1) = k.ch hands the address
 * over a character a row), as the inline form counts any masked name in its
 * text. */
static bool view_reads_masked(const struct policy *p, const struct policy_column_ref *base, size_t nbase)
{
    for (size_t b = 0; b < nbase; b++)
        if (base_is_masked(p, &base[b]))
            return true;
    return false;
}

int policy_stmt_reads_masked_via_catalog(const struct policy *p, struct policy_catalog *catalog,
                                         const struct policy_stmt *st, char err[POLICY_ERR_MAX])
{
    if (!p->ncolumns)
        return 0;
    /* UPDATE, MERGE and DELETE (RETURNING) read what they write: their
     * targets count, by the names the statement uses. */
    bool reads_targets = policy_stmt_has_kind(st, POLICY_KINDS("UPDATE", "MERGE", "DELETE"));
    for (size_t i = 0; i < st->nrelations; i++) {
        const struct policy_relation *rel = &st->relations[i];
        if (!rel->read && !reads_targets)
            continue;
        if (is_stats_view(rel->schema, rel->name)) {
            snprintf(err, POLICY_ERR_MAX, "the statement would copy the planner's sampled values or TOAST data (%s) "
                     "into a table or a side channel", rel->name);
            return 1;
        }
        if (!catalog || !catalog->relation) {
            snprintf(err, POLICY_ERR_MAX, "the catalog cannot be read (after DDL not yet committed in this "
                                          "transaction): commit it first");
            return 1;
        }
        bool is_view = false;
        const struct policy_column_ref *base = NULL;
        size_t nbase = 0;
        if (catalog->relation(catalog, rel->schema, rel->name, &is_view, &base, &nbase, err) < 0)
            return 1;
        bool copies = false;
        if (is_view && rel->read) {
            /* Read (a copy's source, a side channel's argument): whatever
             * its definition reads counts, not only the columns named. */
            copies = view_reads_masked(p, base, nbase);
        } else if (is_view) {
            /* A target that UPDATE, MERGE or DELETE reads: by the columns
             * st names (an updatable view reads one relation; its WHERE
             * picks rows, a probe as a predicate is). */
            int rc = view_names_masked(p, catalog, st, rel, base, nbase, err);
            if (rc < 0)
                return 1;
            copies = rc > 0;
        }
        for (size_t b = 0; !is_view && !copies && b < nbase; b++) /* a partition's or child's parents */
            copies = base_is_masked(p, &base[b]) && sources_may_name(st, base[b].column);
        if (copies) {
            snprintf(err, POLICY_ERR_MAX, "the statement would copy masked columns (through %s %s) into a "
                     "table or a side channel", is_view ? "the view" : "the partition or child table", rel->name);
            return 1;
        }
    }
    return 0;
}

bool policy_stmt_reads_masked_table(const struct policy *p, const struct policy_stmt *st)
{
    return stmt_reads_masked_table(p, st) >= 0;
}

bool policy_stmt_reads_masked(const struct policy *p, const struct policy_stmt *st)
{
    return p->ncolumns && masked_ref_style(p, st, st->sources, st->nsources) >= 0;
}

int policy_mask_plan_build(const struct policy *p, struct policy_catalog *catalog, const struct policy_stmt *stmt,
                           enum policy_action statement_action, enum policy_mask_style statement_style,
                           const struct policy_column_desc *cols, size_t ncols, struct policy_mask_plan *out,
                           char err[POLICY_ERR_MAX])
{
    if (plan_alloc(out, ncols, err) < 0)
        return -1;
    int computed_style = -2; /* not decided yet */
    for (size_t i = 0; i < ncols; i++) {
        struct policy_column_plan *cp = &out->cols[i];
        const struct policy_column_desc *d = &cols[i];
        cp->type_oid = d->type_oid;
        cp->format = d->format;
        snprintf(cp->label, sizeof(cp->label), "%s", d->name ? d->name : "?");
        int style = -1;
        if (statement_action == POLICY_MASK) {
            style = (int)statement_style;
        } else if (p->ncolumns && d->table_oid == 0) {
            /* A computed value may hold several masked values (string_agg,
             * ||): partial would keep parts of all but one. Full instead.
             * Decided once per result set: it depends on the statement only. */
            if (computed_style == -2)
                computed_style = computed_column_style(p, catalog, stmt);
            style = computed_style;
            if (style == POLICY_STYLE_PARTIAL)
                style = POLICY_STYLE_FULL;
        } else if (p->ncolumns) {
            struct policy_column_info info = {0};
            char cerr[POLICY_ERR_MAX];
            if (!catalog || catalog->resolve(catalog, d->table_oid, d->attnum, &info, cerr) < 0 || info.unknown) {
                style = POLICY_STYLE_FULL; /* cannot tell: fail closed */
            } else {
                snprintf(cp->label, sizeof(cp->label), "%s.%s.%s", info.ref.schema, info.ref.table, info.ref.column);
                style = column_rule_style(p, &info.ref);
                for (size_t b = 0; style < 0 && b < info.nbase; b++)
                    style = column_rule_style(p, &info.base[b]);
                for (size_t b = 0; style < 0 && b <= info.nbase; b++)
                    if (is_stats_value(b < info.nbase ? &info.base[b] : &info.ref))
                        style = POLICY_STYLE_FULL;
                /* An expression may hold several masked values: never partial. */
                if (info.derived && style == POLICY_STYLE_PARTIAL)
                    style = POLICY_STYLE_FULL;
            }
        }
        if (style >= 0) {
            cp->action = POLICY_COL_MASK;
            cp->style = (enum policy_mask_style)style;
            out->any = true;
        } else if (p->detectors && detects_type(d->type_oid)) {
            /* Text or binary alike: a binary value that is not text is read
             * as the detectors would read its text (detect_text). */
            cp->detect = true;
            cp->style = p->detector_style;
            out->any = true;
        }
    }
    return 0;
}

static int copy_plan(const struct policy *p, const struct policy_stmt *stmt, bool mask_all, size_t ncols,
                     struct policy_mask_plan *out, char err[POLICY_ERR_MAX]);

int policy_mask_plan_build_copy(const struct policy *p, const struct policy_stmt *stmt,
                                enum policy_action statement_action, size_t ncols, struct policy_mask_plan *out,
                                char err[POLICY_ERR_MAX])
{
    bool mask_all = statement_action == POLICY_MASK || (p->ncolumns && (!stmt || stmt_reads_masked_table(p, stmt) >= 0));
    return copy_plan(p, stmt, mask_all, ncols, out, err);
}

int policy_mask_plan_build_copy_catalog(const struct policy *p, struct policy_catalog *catalog,
                                        const struct policy_stmt *stmt, enum policy_action statement_action,
                                        size_t ncols, struct policy_mask_plan *out, char err[POLICY_ERR_MAX])
{
    bool mask_all = statement_action == POLICY_MASK ||
                    (p->ncolumns && (!stmt || stmt_reads_masked_table(p, stmt) >= 0 ||
                                     stmt_reads_hidden_source(p, catalog, stmt)));
    return copy_plan(p, stmt, mask_all, ncols, out, err);
}

/* The COPY plan once it is known whether every column is masked. */
static int copy_plan(const struct policy *p, const struct policy_stmt *stmt, bool mask_all, size_t ncols,
                     struct policy_mask_plan *out, char err[POLICY_ERR_MAX])
{
    if ((mask_all || p->detectors) && (!stmt || (stmt->facts & POLICY_FACT_COPY_CUSTOM))) {
        snprintf(err, POLICY_ERR_MAX, "COPY output can be masked only in text or CSV format with the default "
                                      "delimiter, quote and NULL string");
        memset(out, 0, sizeof(*out));
        return -1;
    }
    if (plan_alloc(out, ncols, err) < 0)
        return -1;
    out->csv = stmt && stmt->copy_csv;
    out->header = stmt && stmt->copy_header;
    for (size_t i = 0; i < ncols; i++) {
        struct policy_column_plan *cp = &out->cols[i];
        snprintf(cp->label, sizeof(cp->label), "copy column %zu", i + 1);
        cp->type_oid = 0; /* unknown: masked fields become \N */
        if (mask_all) {
            cp->action = POLICY_COL_MASK;
            out->any = true;
        } else if (p->detectors) {
            cp->detect = true;
            cp->style = p->detector_style;
            out->any = true;
        }
    }
    return 0;
}

/* ---- values ---- */

static unsigned detector_index(enum policy_detector d)
{
    unsigned i = 0;
    while (i < POLICY_DETECT_COUNT && (1u << i) != (unsigned)d)
        i++;
    return i;
}

/* Replace one detector match in place (text stays the same shape). */
static void mask_match(const struct policy *p, enum policy_mask_style style, enum policy_detector d,
                       const char *m, size_t len, struct buf *b)
{
    if (style == POLICY_STYLE_HASH) {
        size_t n;
        char *h = policy_mask_text(p, style, m, len, &n);
        if (h)
            buf_append(b, h, n);
        free(h);
        return;
    }
    if (style == POLICY_STYLE_FULL) {
        for (size_t i = 0; i < len; i++)
            buf_append(b, "*", 1);
        return;
    }
    /* partial: email keeps its first character and domain; others the last four. */
    if (d == POLICY_DETECT_EMAIL) {
        const char *at = memchr(m, '@', len);
        if (at) {
            stars_keep(b, m, (size_t)(at - m), 1, 0);
            buf_append(b, at, len - (size_t)(at - m));
            return;
        }
    }
    size_t keep = d == POLICY_DETECT_SECRET ? 0 : 4;
    for (size_t i = 0; i < len; i++) {
        bool sep = !isalnum((unsigned char)m[i]);
        buf_append(b, (i + keep >= len || sep) ? &m[i] : "*", 1);
    }
}

/* ---- what the detectors read in values that are not text ---- */

/* The array types whose text holds numbers: a match masked in place would
 * leave an invalid value ({************1111}), so the whole value goes. */
static bool is_number_array(uint32_t t)
{
    return t == 1016 /* _int8 */ || t == 1231 /* _numeric */ || t == 1022 /* _float8 */;
}

/* Whether a binary value of type t is its text as it is (jsonb: after a
 * version byte), which a match can be masked inside of. */
static bool binary_is_text(uint32_t t)
{
    return is_string_type(t) || t == OID_JSON || t == OID_JSONB || t == OID_XML;
}

/* A float8 that holds a whole number below 10^19 as its digits (a card
 * number's 16 fit exactly), else nothing: 4.111111111111111e+15 would not
 * match. */
static void float_digits(double d, struct buf *r)
{
    if (isfinite(d) && fabs(d) < 1e19 && d == floor(d))
        buf_printf(r, "%.0f", d);
}

/* numeric's binary form (ndigits, weight, sign, dscale, base-10000 digits)
 * as its text, with at most NUMERIC_PAD_GROUPS groups of zeros the weight
 * implies before or after the stored digits (a match is at most 19 digits
 * long; 1e32000 is ten bytes that would print 32,000 digits); nothing when
 * malformed. */
#define NUMERIC_PAD_GROUPS 5
static void numeric_text(const uint8_t *v, size_t len, struct buf *r)
{
    if (len < 8)
        return;
    size_t nd = (size_t)get_be(v, 2);
    int16_t weight = (int16_t)get_be(v + 2, 2);
    uint16_t sign = (uint16_t)get_be(v + 4, 2);
    if (len != 8 + 2 * nd || nd > 4096 || (sign != 0 && sign != 0x4000))
        return;
    if (sign == 0x4000)
        buf_append(r, "-", 1);
    if (weight < 0)
        buf_append(r, "0", 1);
    for (int g = 0; g <= weight && g <= (int)nd + NUMERIC_PAD_GROUPS; g++) {
        unsigned d = (size_t)g < nd ? (unsigned)get_be(v + 8 + 2 * (size_t)g, 2) : 0;
        buf_printf(r, g == 0 ? "%u" : "%04u", d);
    }
    if ((int)nd > weight + 1) {
        buf_append(r, ".", 1);
        for (int g = weight + 1 < -NUMERIC_PAD_GROUPS ? -NUMERIC_PAD_GROUPS : weight + 1; g < (int)nd; g++) {
            if (g < 0)
                buf_append_str(r, "0000");
            else
                buf_printf(r, "%04u", (unsigned)get_be(v + 8 + 2 * (size_t)g, 2));
        }
    }
}

static void binary_text(uint32_t t, const uint8_t *v, size_t len, struct buf *r, int depth);

/* An array's binary form (ndim, flags, element type, dimensions, then each
 * element as a length and its bytes), its elements read as binary_text
 * reads them; false (nothing appended) when v is not one. */
static bool array_text(const uint8_t *v, size_t len, struct buf *r, int depth)
{
    if (len < 12)
        return false;
    int32_t ndim = (int32_t)get_be(v, 4), flags = (int32_t)get_be(v + 4, 4);
    uint32_t elem = (uint32_t)get_be(v + 8, 4);
    if (ndim < 0 || ndim > 6 || (flags != 0 && flags != 1) || len < 12 + 8 * (size_t)ndim)
        return false;
    uint64_t n = ndim ? 1 : 0;
    for (int i = 0; i < ndim; i++) {
        int32_t dim = (int32_t)get_be(v + 12 + 8 * (size_t)i, 4);
        if (dim < 0 || (n *= (uint64_t)dim) > len)
            return false;
    }
    size_t at = 12 + 8 * (size_t)ndim;
    for (uint64_t i = 0, pos = at; i < n; i++) { /* the layout first: nothing appended unless it holds */
        if (pos + 4 > len)
            return false;
        int32_t el = (int32_t)get_be(v + pos, 4);
        pos += 4;
        if (el < -1 || (el > 0 && (uint64_t)el > len - pos))
            return false;
        pos += el > 0 ? (uint64_t)el : 0;
        if (i + 1 == n && pos != len)
            return false;
    }
    if (n == 0 && at != len)
        return false;
    for (uint64_t i = 0; i < n; i++) {
        int32_t el = (int32_t)get_be(v + at, 4);
        at += 4;
        if (el > 0) {
            binary_text(elem, v + at, (size_t)el, r, depth + 1);
            at += (size_t)el;
        }
        buf_append(r, "\n", 1);
    }
    return true;
}

/* A record's (a row(...), a composite's) binary form: the number of fields,
 * then each field's type, length and bytes; false when v is not one. */
static bool record_text(const uint8_t *v, size_t len, struct buf *r, int depth)
{
    if (len < 4)
        return false;
    int32_t n = (int32_t)get_be(v, 4);
    if (n < 0 || (size_t)n > len / 8)
        return false;
    size_t pos = 4;
    for (int32_t i = 0; i < n; i++) {
        if (pos + 8 > len)
            return false;
        int32_t fl = (int32_t)get_be(v + pos + 4, 4);
        pos += 8;
        if (fl < -1 || (fl > 0 && (size_t)fl > len - pos))
            return false;
        pos += fl > 0 ? (size_t)fl : 0;
    }
    if (pos != len)
        return false;
    pos = 4;
    for (int32_t i = 0; i < n; i++) {
        uint32_t ft = (uint32_t)get_be(v + pos, 4);
        int32_t fl = (int32_t)get_be(v + pos + 4, 4);
        pos += 8;
        if (fl > 0) {
            binary_text(ft, v + pos, (size_t)fl, r, depth + 1);
            pos += (size_t)fl;
        }
        buf_append(r, "\n", 1);
    }
    return true;
}

/* Append what the detectors read in a binary value of type t: text types'
 * bytes; int8, numeric and float8 as their digits; bytea's bytes; arrays
 * and records element by element; a type of no known form its raw bytes
 * (a text-like element of a range or an extension's type is there as it
 * is). Types that hold no match append nothing. */
static void binary_text(uint32_t t, const uint8_t *v, size_t len, struct buf *r, int depth)
{
    if (binary_is_text(t) || t == OID_BYTEA) {
        size_t skip = t == OID_JSONB && len > 0 ? 1 : 0;
        buf_append(r, v + skip, len - skip);
    } else if (t == OID_INT8 && len == 8) {
        buf_printf(r, "%lld", (long long)(int64_t)get_be(v, 8));
    } else if (t == OID_FLOAT8 && len == 8) {
        uint64_t u = get_be(v, 8);
        double d;
        memcpy(&d, &u, 8);
        float_digits(d, r);
    } else if (t == OID_NUMERIC) {
        numeric_text(v, len, r);
    } else if (skips_detectors(t)) {
        return;
    } else if (depth >= 8 || (!array_text(v, len, r, depth) && !record_text(v, len, r, depth))) {
        buf_append(r, v, len);
    }
}

/* hex digit value, or -1 */
static int hexval(uint8_t c)
{
    return isdigit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
}

/* What the detectors read in a value whose format hides its text from them
 * (true: r holds it, and a match masks the whole value): a binary value of
 * a type that is not text, and in text format float8 (4.111111111111111e+15)
 * and bytea (\x34313131...). */
static bool detect_text(uint32_t t, int16_t format, const uint8_t *v, size_t len, struct buf *r)
{
    if (format == 1) {
        if (binary_is_text(t) || t == 0)
            return false;
        binary_text(t, v, len, r, 0);
        return true;
    }
    if (t == 0) { /* a COPY field, of no known type: as a bytea or a float8 when it reads as one */
        if (len >= 4 && v[0] == '\\' && v[1] == 'x' && hexval(v[2]) >= 0)
            t = OID_BYTEA;
        else if (len > 0 && len < 64 && (memchr(v, 'e', len) || memchr(v, 'E', len)) && (isdigit(v[0]) || v[0] == '-'))
            t = OID_FLOAT8;
        else
            return false;
    }
    if (t == OID_FLOAT8) {
        char tmp[64];
        if (len < sizeof tmp) {
            memcpy(tmp, v, len);
            tmp[len] = '\0';
            char *end = NULL;
            double d = strtod(tmp, &end);
            if (end && *end == '\0')
                float_digits(d, r);
        }
        buf_append(r, "\n", 1);
        buf_append(r, v, len);
        return true;
    }
    if (t == OID_BYTEA) {
        if (len >= 2 && v[0] == '\\' && v[1] == 'x') {
            for (size_t i = 2; i + 1 < len; i += 2) {
                int hi = hexval(v[i]), lo = hexval(v[i + 1]);
                if (hi < 0 || lo < 0)
                    break;
                uint8_t c = (uint8_t)(hi << 4 | lo);
                buf_append(r, &c, 1);
            }
        } else {
            buf_append(r, v, len); /* bytea_output = escape: printable bytes as they are */
        }
        return true;
    }
    return false;
}

bool policy_has_detectors(const struct policy *p)
{
    return p && p->detectors;
}

int policy_mask_detected_text(const struct policy *p, const char *text, size_t len, char **out, size_t *outlen)
{
    if (!p || !p->detectors || len == 0)
        return 0;
    struct policy_detection hits[MASK_MAX_DETECTIONS];
    size_t n = policy_detect(text, len, p->detectors, hits, MASK_MAX_DETECTIONS);
    if (n == 0)
        return 0;
    struct buf b = {0};
    if (n > MASK_MAX_DETECTIONS) {
        buf_append_str(&b, "****");
    } else {
        size_t pos = 0;
        for (size_t i = 0; i < n; i++) {
            buf_append(&b, text + pos, hits[i].start - pos);
            mask_match(p, p->detector_style, hits[i].detector, text + hits[i].start, hits[i].end - hits[i].start, &b);
            pos = hits[i].end;
        }
        buf_append(&b, text + pos, len - pos);
    }
    if (buf_reserve(&b, 1) < 0 || !b.data) {
        buf_free(&b);
        return -1;
    }
    *outlen = b.len;
    buf_cstr(&b);
    *out = (char *)b.data;
    return 1;
}

int policy_mask_value(const struct policy *p, struct policy_mask_plan *plan, size_t col, const uint8_t *value,
                      size_t len, uint8_t **out, size_t *outlen, char err[POLICY_ERR_MAX])
{
    if (col >= plan->ncols) {
        snprintf(err, POLICY_ERR_MAX, "column %zu is outside the row description (%zu columns)", col, plan->ncols);
        return -1;
    }
    struct policy_column_plan *cp = &plan->cols[col];
    struct buf b = {0};
    int rc;
    if (cp->action == POLICY_COL_MASK) {
        if (cp->type_oid == 0) {
            rc = 2; /* unknown type (COPY): NULL is valid for every type */
        } else {
            rc = mask_typed(p, cp->style, cp->type_oid, cp->format, value, len, &b);
        }
        cp->masked++;
        goto done;
    }
    if (!cp->detect)
        return 0;
    /* jsonb binary: a version byte, then text. */
    size_t skip = (cp->format == 1 && cp->type_oid == OID_JSONB && len > 0) ? 1 : 0;
    struct policy_detection hits[MASK_MAX_DETECTIONS];
    struct buf seen = {0};
    bool whole_only = detect_text(cp->type_oid, cp->format, value, len, &seen);
    size_t n = whole_only ? policy_detect(seen.data ? (const char *)seen.data : "", seen.len, p->detectors, hits,
                                          MASK_MAX_DETECTIONS)
                          : policy_detect((const char *)value + skip, len - skip, p->detectors, hits,
                                          MASK_MAX_DETECTIONS);
    buf_free(&seen);
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n && i < MASK_MAX_DETECTIONS; i++)
        cp->detected[detector_index(hits[i].detector)]++;
    bool in_place = !whole_only &&
                    (cp->type_oid == 0 || (cp->format == 1 ? binary_is_text(cp->type_oid)
                                                           : !skips_detectors(cp->type_oid) &&
                                                                 cp->type_oid != OID_INT8 &&
                                                                 cp->type_oid != OID_NUMERIC &&
                                                                 !is_number_array(cp->type_oid)));
    if (n > MASK_MAX_DETECTIONS || !in_place) {
        /* Too many to replace one by one, or a number: the whole value. */
        rc = cp->type_oid == 0 ? 2 : mask_typed(p, cp->style, cp->type_oid, cp->format, value, len, &b);
        goto done;
    }
    buf_append(&b, value, skip);
    size_t pos = skip;
    for (size_t i = 0; i < n; i++) {
        buf_append(&b, value + pos, hits[i].start + skip - pos);
        mask_match(p, cp->style, hits[i].detector, (const char *)value + skip + hits[i].start,
                   hits[i].end - hits[i].start, &b);
        pos = hits[i].end + skip;
    }
    buf_append(&b, value + pos, len - pos);
    rc = 1;
done:
    if (rc == 1) {
        if (buf_reserve(&b, 1) < 0 || !b.data) {
            buf_free(&b);
            snprintf(err, POLICY_ERR_MAX, "out of memory while masking");
            return -1;
        }
        *out = b.data;
        *outlen = b.len;
        return 1;
    }
    buf_free(&b);
    if (rc < 0)
        snprintf(err, POLICY_ERR_MAX, "out of memory while masking");
    return rc;
}

/* ---- COPY text rows ---- */

static int copy_unescape(const uint8_t *s, size_t len, struct buf *out)
{
    int rc = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '\\' || i + 1 == len) {
            rc |= buf_append(out, &s[i], 1);
            continue;
        }
        uint8_t c = s[++i], r;
        switch (c) {
        case 'b': r = '\b'; break;
        case 'f': r = '\f'; break;
        case 'n': r = '\n'; break;
        case 'r': r = '\r'; break;
        case 't': r = '\t'; break;
        case 'v': r = '\v'; break;
        case 'x': {
            unsigned v = 0, k = 0;
            while (k < 2 && i + 1 < len && isxdigit(s[i + 1])) {
                char h = (char)s[++i];
                v = v * 16 + (unsigned)(isdigit((unsigned char)h) ? h - '0' : (tolower((unsigned char)h) - 'a' + 10));
                k++;
            }
            r = (uint8_t)v;
            break;
        }
        default:
            if (c >= '0' && c <= '7') {
                unsigned v = (unsigned)(c - '0'), k = 1;
                while (k < 3 && i + 1 < len && s[i + 1] >= '0' && s[i + 1] <= '7') {
                    v = v * 8 + (unsigned)(s[++i] - '0');
                    k++;
                }
                r = (uint8_t)v;
            } else {
                r = c;
            }
        }
        rc |= buf_append(out, &r, 1);
    }
    return rc;
}

static int copy_escape(const uint8_t *s, size_t len, struct buf *out)
{
    int rc = 0;
    for (size_t i = 0; i < len; i++) {
        switch (s[i]) {
        case '\\': rc |= buf_append_str(out, "\\\\"); break;
        case '\t': rc |= buf_append_str(out, "\\t"); break;
        case '\n': rc |= buf_append_str(out, "\\n"); break;
        case '\r': rc |= buf_append_str(out, "\\r"); break;
        default: rc |= buf_append(out, &s[i], 1);
        }
    }
    return rc;
}

/* One CSV row as COPY TO writes it with the default quote, escape, delimiter
 * and NULL: a field is unquoted (empty: NULL; never holding a quote) or
 * "quoted", with "" for a quote, and may then hold commas and newlines. A
 * masked value is written quoted. */
static int copy_csv_row(const struct policy *p, struct policy_mask_plan *plan, const uint8_t *row, size_t len,
                        struct buf *out, char err[POLICY_ERR_MAX])
{
    struct buf field = {0};
    size_t col = 0, i = 0;
    int rc = 0, oom = 0;
    for (;;) {
        if (col >= plan->ncols) {
            snprintf(err, POLICY_ERR_MAX, "COPY row has more fields than the %zu columns announced", plan->ncols);
            rc = -1;
            break;
        }
        size_t start = i;
        bool null = false;
        buf_reset(&field);
        if (i < len && row[i] == '"') {
            for (i++; i < len && (row[i] != '"' || (i + 1 < len && row[i + 1] == '"')); i++) {
                oom |= buf_append(&field, &row[i], 1);
                i += row[i] == '"'; /* "" is one quote */
            }
            if (i++ >= len || (i < len && row[i] != ',')) {
                snprintf(err, POLICY_ERR_MAX, "COPY row has a malformed quoted field");
                rc = -1;
                break;
            }
        } else {
            while (i < len && row[i] != ',' && row[i] != '"')
                i++;
            if (i < len && row[i] == '"') {
                snprintf(err, POLICY_ERR_MAX, "COPY row has a quote inside an unquoted field");
                rc = -1;
                break;
            }
            null = i == start;
            oom |= buf_append(&field, row + start, i - start);
        }
        if (col)
            oom |= buf_append(out, ",", 1);
        uint8_t *m = NULL;
        size_t mlen = 0;
        int r = null ? 0
                     : policy_mask_value(p, plan, col, field.data ? field.data : (const uint8_t *)"", field.len, &m,
                                         &mlen, err);
        if (r < 0) {
            rc = -1;
            break;
        }
        if (r == 0) {
            oom |= buf_append(out, row + start, i - start);
        } else if (r == 1) {
            oom |= buf_append(out, "\"", 1);
            for (size_t k = 0; k < mlen; k++)
                oom |= buf_append(out, m[k] == '"' ? (const uint8_t *)"\"\"" : &m[k], m[k] == '"' ? 2 : 1);
            oom |= buf_append(out, "\"", 1);
        } /* r == 2: NULL, nothing */
        free(m);
        col++;
        if (i >= len)
            break;
        i++; /* the comma; a row may end with an empty field after it */
    }
    if (rc == 0 && col != plan->ncols) {
        snprintf(err, POLICY_ERR_MAX, "COPY row has %zu fields, %zu columns were announced", col, plan->ncols);
        rc = -1;
    }
    buf_free(&field);
    if (rc == 0 && oom) {
        snprintf(err, POLICY_ERR_MAX, "out of memory while masking");
        rc = -1;
    }
    return rc;
}

int policy_mask_copy_row(const struct policy *p, struct policy_mask_plan *plan, const uint8_t *row, size_t len,
                         struct buf *out, char err[POLICY_ERR_MAX])
{
    /* Nothing to mask (any layout, binary too), or the header line. */
    if (!plan->any || plan->header) {
        plan->header = false;
        if (buf_append(out, row, len) < 0) {
            snprintf(err, POLICY_ERR_MAX, "out of memory while masking");
            return -1;
        }
        return 0;
    }
    if (len == 0 || row[len - 1] != '\n') {
        snprintf(err, POLICY_ERR_MAX, "COPY row does not end with a newline");
        return -1;
    }
    len--;
    const size_t start_len = out->len; /* restored when the row fails */
    if (plan->csv) {
        int rc = copy_csv_row(p, plan, row, len, out, err);
        if (rc == 0 && buf_append(out, "\n", 1) < 0) {
            snprintf(err, POLICY_ERR_MAX, "out of memory while masking");
            rc = -1;
        }
        if (rc < 0)
            out->len = start_len;
        return rc;
    }
    struct buf field = {0};
    size_t col = 0, start = 0;
    int rc = 0, oom = 0;
    for (size_t i = 0; i <= len && rc == 0; i++) {
        if (i < len && row[i] != '\t')
            continue;
        if (col >= plan->ncols) {
            snprintf(err, POLICY_ERR_MAX, "COPY row has more fields than the %zu columns announced", plan->ncols);
            rc = -1;
            break;
        }
        if (col)
            oom |= buf_append(out, "\t", 1);
        const uint8_t *f = row + start;
        size_t flen = i - start;
        if (flen == 2 && f[0] == '\\' && f[1] == 'N') {
            oom |= buf_append(out, f, flen);
        } else {
            buf_reset(&field);
            oom |= copy_unescape(f, flen, &field);
            uint8_t *m = NULL;
            size_t mlen = 0;
            int r = policy_mask_value(p, plan, col, field.data ? field.data : (const uint8_t *)"", field.len, &m,
                                      &mlen, err);
            if (r < 0)
                rc = -1;
            else if (r == 0)
                oom |= buf_append(out, f, flen);
            else if (r == 2)
                oom |= buf_append_str(out, "\\N");
            else
                oom |= copy_escape(m, mlen, out);
            free(m);
        }
        col++;
        start = i + 1;
    }
    if (rc == 0 && col != plan->ncols) {
        snprintf(err, POLICY_ERR_MAX, "COPY row has %zu fields, %zu columns were announced", col, plan->ncols);
        rc = -1;
    }
    oom |= buf_append(out, "\n", 1);
    buf_free(&field);
    if (rc == 0 && oom) {
        snprintf(err, POLICY_ERR_MAX, "out of memory while masking");
        rc = -1;
    }
    if (rc < 0)
        out->len = start_len;
    return rc;
}

json_t *policy_mask_counters_json(const struct policy_mask_plan *plan)
{
    json_t *cols = json_object(), *dets = json_object();
    for (size_t i = 0; i < plan->ncols; i++) {
        const struct policy_column_plan *cp = &plan->cols[i];
        uint64_t total = cp->masked;
        for (unsigned d = 0; d < POLICY_DETECT_COUNT; d++) {
            total += cp->detected[d];
            if (!cp->detected[d])
                continue;
            const char *name = policy_detector_name((enum policy_detector)(1u << d));
            json_int_t prev = json_integer_value(json_object_get(dets, name));
            json_object_set_new(dets, name, json_integer(prev + (json_int_t)cp->detected[d]));
        }
        if (total) {
            json_int_t prev = json_integer_value(json_object_get(cols, cp->label));
            json_object_set_new(cols, cp->label, json_integer(prev + (json_int_t)total));
        }
    }
    json_t *o = json_object();
    json_object_set_new(o, "columns", cols);
    json_object_set_new(o, "detectors", dets);
    return o;
}
