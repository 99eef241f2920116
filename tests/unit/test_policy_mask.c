/* test_policy_mask.c — masking: each content detector on true and false
 * positives, the styles, masked values that stay valid for their type (text
 * and binary), mask plans (column rules through a catalog, computed columns,
 * views, fail-closed), COPY rows and the audit counters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "hoopctl/policy.h"
#include "hoopctl/util.h"
#include "../../src/policy/policy_internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- detectors ---- */

/* The detectors (bit set) that fire on text, and the matched span of the first. */
static unsigned detected(const char *text, unsigned mask, char *first, size_t firstlen)
{
    struct policy_detection d[16];
    size_t n = policy_detect(text, strlen(text), mask, d, 16);
    unsigned bits = 0;
    for (size_t i = 0; i < n && i < 16; i++)
        bits |= d[i].detector;
    if (first && n)
        snprintf(first, firstlen, "%.*s", (int)(d[0].end - d[0].start), text + d[0].start);
    return bits;
}

static void hit(const char *text, unsigned det, const char *want_span)
{
    char span[256] = "";
    unsigned bits = detected(text, det, span, sizeof(span));
    if (!(bits & det))
        fail_msg("%s should detect [%s]", policy_detector_name(det), text);
    if (want_span && strcmp(span, want_span) != 0)
        fail_msg("%s on [%s]: span [%s], want [%s]", policy_detector_name(det), text, span, want_span);
}

static void miss(const char *text, unsigned det)
{
    if (detected(text, det, NULL, 0) & det)
        fail_msg("%s should not fire on [%s]", policy_detector_name(det), text);
}

static void test_email(void **state)
{
    (void)state;
    hit("alice@example.com", POLICY_DETECT_EMAIL, "alice@example.com");
    hit("contact: Bob.Smith+tag@mail.example.co.uk.", POLICY_DETECT_EMAIL, "Bob.Smith+tag@mail.example.co.uk");
    hit("{\"email\":\"x_y@sub.example.org\"}", POLICY_DETECT_EMAIL, "x_y@sub.example.org");
    miss("user@localhost", POLICY_DETECT_EMAIL);
    miss("@example.com", POLICY_DETECT_EMAIL);
    miss("alice@", POLICY_DETECT_EMAIL);
    miss("a@b.c", POLICY_DETECT_EMAIL);               /* one-letter TLD */
    miss("ssh git@github", POLICY_DETECT_EMAIL);
    miss("price: 5 @ 3.50", POLICY_DETECT_EMAIL);
    miss("@@@", POLICY_DETECT_EMAIL);
    miss("version 1.2@3.4", POLICY_DETECT_EMAIL);     /* numeric TLD */
}

static void test_phone(void **state)
{
    (void)state;
    hit("+14155552671", POLICY_DETECT_PHONE, "+14155552671");
    hit("call +44 20 7946 0958 now", POLICY_DETECT_PHONE, "+44 20 7946 0958");
    hit("+49-30-901820", POLICY_DETECT_PHONE, "+49-30-901820");
    hit("(415) 555-2671", POLICY_DETECT_PHONE, "(415) 555-2671");
    hit("415-555-2671", POLICY_DETECT_PHONE, "415-555-2671");
    hit("tel 415.555.2671", POLICY_DETECT_PHONE, "415.555.2671");
    miss("2024-01-15", POLICY_DETECT_PHONE);          /* a date */
    miss("12:30:45", POLICY_DETECT_PHONE);
    miss("+1234", POLICY_DETECT_PHONE);               /* too short */
    miss("order 4155552671", POLICY_DETECT_PHONE);    /* bare digits: no separators */
    miss("3.14159265358", POLICY_DETECT_PHONE);
    miss("version 415-555-26710", POLICY_DETECT_PHONE);
    miss("015-555-2671", POLICY_DETECT_PHONE);        /* area code cannot start with 0 */
    miss("1.2.3.4", POLICY_DETECT_PHONE);
}

static void test_card(void **state)
{
    (void)state;
    assert_true(policy_luhn_ok("4111111111111111", 16));
    assert_false(policy_luhn_ok("4111111111111112", 16));
    hit("4111111111111111", POLICY_DETECT_CARD, "4111111111111111");
    hit("card 4111 1111 1111 1111 exp", POLICY_DETECT_CARD, "4111 1111 1111 1111");
    hit("5500-0000-0000-0004", POLICY_DETECT_CARD, "5500-0000-0000-0004");
    hit("378282246310005", POLICY_DETECT_CARD, "378282246310005"); /* Amex, 15 digits */
    miss("4111111111111112", POLICY_DETECT_CARD);     /* Luhn fails */
    miss("1234567812345670", POLICY_DETECT_CARD);     /* Luhn ok, no card prefix */
    miss("411111111111", POLICY_DETECT_CARD);         /* 12 digits */
    miss("order #41111111111111110000", POLICY_DETECT_CARD); /* part of a longer number */
    miss("tracking AB4111111111111111", POLICY_DETECT_CARD); /* inside a word */
    miss("3.4111111111111111", POLICY_DETECT_CARD);   /* a decimal fraction */
}

static void test_ssn(void **state)
{
    (void)state;
    hit("ssn 123-45-6789", POLICY_DETECT_SSN, "123-45-6789");
    hit("078-05-1120", POLICY_DETECT_SSN, "078-05-1120");
    miss("000-12-3456", POLICY_DETECT_SSN);
    miss("666-12-3456", POLICY_DETECT_SSN);
    miss("900-12-3456", POLICY_DETECT_SSN);
    miss("123-00-4567", POLICY_DETECT_SSN);
    miss("123-45-0000", POLICY_DETECT_SSN);
    miss("123456789", POLICY_DETECT_SSN);             /* no dashes: too many false hits */
    miss("2023-45-6789", POLICY_DETECT_SSN);
    miss("123-45-67890", POLICY_DETECT_SSN);
    miss("isbn 978-0-12-345678-9", POLICY_DETECT_SSN);
}

static void test_iban(void **state)
{
    (void)state;
    assert_true(policy_iban_ok("DE89370400440532013000", 22));
    assert_true(policy_iban_ok("GB82 WEST 1234 5698 7654 32", 27));
    assert_false(policy_iban_ok("DE89370400440532013001", 22));
    hit("pay to DE89370400440532013000.", POLICY_DETECT_IBAN, "DE89370400440532013000");
    hit("GB82 WEST 1234 5698 7654 32", POLICY_DETECT_IBAN, "GB82 WEST 1234 5698 7654 32");
    hit("FR1420041010050500013M02606", POLICY_DETECT_IBAN, "FR1420041010050500013M02606");
    miss("DE89370400440532013001", POLICY_DETECT_IBAN); /* checksum fails */
    miss("AB12CDEFGHIJKLMNOP", POLICY_DETECT_IBAN);
    miss("US12 is not a country code block", POLICY_DETECT_IBAN);
    miss("XX00000000000000000", POLICY_DETECT_IBAN);
}

static void test_ip(void **state)
{
    (void)state;
    hit("from 192.168.1.20 at noon", POLICY_DETECT_IP, "192.168.1.20");
    hit("8.8.8.8", POLICY_DETECT_IP, "8.8.8.8");
    hit("client 2001:db8::ff00:42:8329 connected", POLICY_DETECT_IP, "2001:db8::ff00:42:8329");
    hit("fe80::1ff:fe23:4567:890a", POLICY_DETECT_IP, "fe80::1ff:fe23:4567:890a");
    miss("version 1.2.3", POLICY_DETECT_IP);
    miss("1.2.3.4.5", POLICY_DETECT_IP);
    miss("256.1.1.1", POLICY_DETECT_IP);
    miss("01.02.03.04", POLICY_DETECT_IP);
    miss("12:30:45", POLICY_DETECT_IP);
    miss("std::vector", POLICY_DETECT_IP);
    miss("deadbeef", POLICY_DETECT_IP);
    miss("v1.22.333.4a", POLICY_DETECT_IP);
}

static void test_secret(void **state)
{
    (void)state;
    const char *jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
                      "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
    char buf[256];
    snprintf(buf, sizeof(buf), "Authorization: Bearer %s", jwt);
    hit(buf, POLICY_DETECT_SECRET, jwt);
    hit("key=AKIAIOSFODNN7EXAMPLE", POLICY_DETECT_SECRET, "AKIAIOSFODNN7EXAMPLE");
    hit("ghp_1234567890abcdefghijklmnopqrstuvwxyzAB", POLICY_DETECT_SECRET, NULL);
    hit("sk_live_4eC39HqLyjWDarjtT1zdp7dc", POLICY_DETECT_SECRET, "sk_live_4eC39HqLyjWDarjtT1zdp7dc");
    hit("xoxb-123456789012-abcdefghijklmnop", POLICY_DETECT_SECRET, NULL);
    miss("eyJhbGciOiJIUzI1NiJ9", POLICY_DETECT_SECRET);   /* one segment */
    miss("eyJ.a.b", POLICY_DETECT_SECRET);
    miss("AKIA is a prefix", POLICY_DETECT_SECRET);
    miss("sk_live_shortkey", POLICY_DETECT_SECRET);
    miss("ghp_onlylettersherenodigitsatallanywhereok", POLICY_DETECT_SECRET);
    miss("the task-force meeting", POLICY_DETECT_SECRET);
    miss("MASKAKIAIOSFODNN7EXAMPLE", POLICY_DETECT_SECRET); /* inside a word */
}

static void test_detect_many(void **state)
{
    (void)state;
    /* Several kinds in one value, in order, without overlaps. */
    const char *t = "bob@example.com 415-555-2671 4111111111111111 10.0.0.1";
    struct policy_detection d[8];
    size_t n = policy_detect(t, strlen(t), POLICY_DETECT_ALL, d, 8);
    assert_int_equal(n, 4);
    assert_int_equal(d[0].detector, POLICY_DETECT_EMAIL);
    assert_int_equal(d[1].detector, POLICY_DETECT_PHONE);
    assert_int_equal(d[2].detector, POLICY_DETECT_CARD);
    assert_int_equal(d[3].detector, POLICY_DETECT_IP);
    for (size_t i = 1; i < n; i++)
        assert_true(d[i].start >= d[i - 1].end);
    /* More matches than room: the count says so. */
    assert_int_equal(policy_detect(t, strlen(t), POLICY_DETECT_ALL, d, 2), 4);
    /* Plain prose: nothing. */
    const char *prose = "The quick brown fox jumps over 13 lazy dogs at 10:45 on 2024-05-17, v2.1.0.";
    assert_int_equal(policy_detect(prose, strlen(prose), POLICY_DETECT_ALL, d, 8), 0);
}

/* ---- styles and typed values ---- */

static struct policy *load(const char *json)
{
    char err[POLICY_ERR_MAX];
    json_t *doc = json_loads(json, 0, NULL);
    assert_non_null(doc);
    struct policy *p = policy_load_json(doc, err);
    json_decref(doc);
    if (!p)
        fail_msg("policy: %s", err);
    return p;
}

static void test_styles(void **state)
{
    (void)state;
    struct policy *p = load("{\"masking\": {\"hash_key\": \"0123456789abcdef-test-key\"}}");
    size_t n;
    char *m = policy_mask_text(p, POLICY_STYLE_PARTIAL, "alice@example.com", 17, &n);
    assert_string_equal(m, "a****@example.com");
    free(m);
    m = policy_mask_text(p, POLICY_STYLE_PARTIAL, "4111111111111111", 16, &n);
    assert_string_equal(m, "************1111");
    free(m);
    m = policy_mask_text(p, POLICY_STYLE_PARTIAL, "abc", 3, &n);
    assert_string_equal(m, "****");
    free(m);
    /* Whole UTF-8 characters only. */
    m = policy_mask_text(p, POLICY_STYLE_PARTIAL, "Zoë Ünïcödé", strlen("Zoë Ünïcödé"), &n);
    assert_string_equal(m, "*******cödé");
    free(m);
    m = policy_mask_text(p, POLICY_STYLE_FULL, "secret", 6, &n);
    assert_string_equal(m, "****");
    free(m);
    /* Keyed hash: stable, different per value, different per key. */
    char *h1 = policy_mask_text(p, POLICY_STYLE_HASH, "alice@example.com", 17, &n);
    char *h2 = policy_mask_text(p, POLICY_STYLE_HASH, "alice@example.com", 17, &n);
    char *h3 = policy_mask_text(p, POLICY_STYLE_HASH, "bob@example.com", 15, &n);
    assert_string_equal(h1, h2);
    assert_string_not_equal(h1, h3);
    assert_non_null(strstr(h1, "@example.com"));
    assert_null(strstr(h1, "alice"));
    struct policy *q = load("{\"masking\": {\"hash_key\": \"another-key-0123456789\"}}");
    char *h4 = policy_mask_text(q, POLICY_STYLE_HASH, "alice@example.com", 17, &n);
    assert_string_not_equal(h1, h4);
    char *h5 = policy_mask_text(p, POLICY_STYLE_HASH, "plain", 5, &n);
    assert_int_equal(strncmp(h5, "h_", 2), 0);
    assert_int_equal(strlen(h5), 18);
    /* HMAC-SHA256 under SHA-256 of the configured key, as computed apart:
     * python3 -c 'import hmac,hashlib; k=hashlib.sha256(b"0123456789abcdef-test-key").digest();
     *             print(hmac.new(k, b"plain", hashlib.sha256).hexdigest()[:16])' */
    assert_string_equal(h5, "h_5ca483b18634733a");
    free(h1), free(h2), free(h3), free(h4), free(h5);
    policy_free(q);
    policy_free(p);
}

/* Mask one value of a column of the given type/format with style through a
 * plan that masks the column (statement action "mask"). */
static int mask_one(struct policy *p, enum policy_mask_style style, uint32_t type, int16_t format,
                    const void *v, size_t len, uint8_t **out, size_t *outlen)
{
    struct policy_column_desc col = {.name = "c", .table_oid = 0, .type_oid = type, .format = format};
    struct policy_mask_plan plan;
    char err[POLICY_ERR_MAX];
    assert_int_equal(policy_mask_plan_build(p, NULL, NULL, POLICY_MASK, style, &col, 1, &plan, err), 0);
    assert_true(plan.any);
    int rc = policy_mask_value(p, &plan, 0, v, len, out, outlen, err);
    assert_int_equal(plan.cols[0].masked, 1);
    policy_mask_plan_free(&plan);
    return rc;
}

static void expect_text(struct policy *p, enum policy_mask_style style, uint32_t type, const char *in,
                        const char *want)
{
    uint8_t *out = NULL;
    size_t n = 0;
    assert_int_equal(mask_one(p, style, type, 0, in, strlen(in), &out, &n), 1);
    if (strlen(want) != n || memcmp(out, want, n) != 0)
        fail_msg("type %u [%s]: got [%.*s], want [%s]", type, in, (int)n, out, want);
    free(out);
}

static void test_typed_text(void **state)
{
    (void)state;
    struct policy *p = load("{}");
    expect_text(p, POLICY_STYLE_FULL, 23, "123456", "0");                      /* int4 */
    expect_text(p, POLICY_STYLE_FULL, 20, "9000000000", "0");                  /* int8 */
    expect_text(p, POLICY_STYLE_FULL, 1700, "1234.56", "0");                   /* numeric */
    expect_text(p, POLICY_STYLE_FULL, 2950, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
                "00000000-0000-0000-0000-000000000000");
    expect_text(p, POLICY_STYLE_FULL, 1082, "1984-06-03", "1970-01-01");
    expect_text(p, POLICY_STYLE_PARTIAL, 1082, "1984-06-03", "1984-01-01");
    expect_text(p, POLICY_STYLE_FULL, 1114, "1984-06-03 10:11:12", "1970-01-01 00:00:00");
    expect_text(p, POLICY_STYLE_PARTIAL, 1184, "1984-06-03 10:11:12+02", "1984-01-01 00:00:00+00");
    expect_text(p, POLICY_STYLE_FULL, 114, "{\"a\": 1}", "\"****\"");           /* json */
    expect_text(p, POLICY_STYLE_FULL, 3802, "{\"a\": 1}", "\"****\"");          /* jsonb */
    expect_text(p, POLICY_STYLE_FULL, 17, "\\xdeadbeef", "\\x");               /* bytea */
    expect_text(p, POLICY_STYLE_FULL, 25, "top secret", "****");               /* text */
    expect_text(p, POLICY_STYLE_PARTIAL, 1043, "alice@example.com", "a****@example.com");
    expect_text(p, POLICY_STYLE_FULL, 869, "10.1.2.3", "0.0.0.0");             /* inet */

    /* No valid masked value: NULL. */
    uint8_t *out = NULL;
    size_t n;
    assert_int_equal(mask_one(p, POLICY_STYLE_FULL, 16, 0, "t", 1, &out, &n), 2);           /* bool */
    assert_int_equal(mask_one(p, POLICY_STYLE_FULL, 1009, 0, "{a,b}", 5, &out, &n), 2);     /* text[] */
    assert_null(out);

    /* Hash: numbers stay numbers in range, stable. */
    uint8_t *a = NULL, *b = NULL;
    size_t an, bn;
    assert_int_equal(mask_one(p, POLICY_STYLE_HASH, 21, 0, "42", 2, &a, &an), 1);
    assert_int_equal(mask_one(p, POLICY_STYLE_HASH, 21, 0, "42", 2, &b, &bn), 1);
    assert_int_equal(an, bn);
    assert_memory_equal(a, b, an);
    long v = strtol((char *)a, NULL, 10);
    assert_true(v >= 0 && v <= 32767);
    free(a), free(b);
    assert_int_equal(mask_one(p, POLICY_STYLE_HASH, 2950, 0, "x", 1, &a, &an), 1);
    assert_int_equal(an, 36);
    assert_int_equal(a[14], '8'); /* version nibble */
    free(a);
    policy_free(p);
}

static void test_typed_binary(void **state)
{
    (void)state;
    struct policy *p = load("{}");
    uint8_t *out = NULL;
    size_t n;
    uint8_t int4[4] = {0, 1, 0xe2, 0x40};
    assert_int_equal(mask_one(p, POLICY_STYLE_FULL, 23, 1, int4, 4, &out, &n), 1);
    assert_int_equal(n, 4);
    assert_memory_equal(out, "\0\0\0\0", 4);
    free(out);
    uint8_t int8[8] = {0, 0, 0, 2, 0x18, 0x71, 0x1a, 0};
    assert_int_equal(mask_one(p, POLICY_STYLE_HASH, 20, 1, int8, 8, &out, &n), 1);
    assert_int_equal(n, 8);
    assert_true((out[0] & 0x80) == 0); /* non-negative */
    free(out);
    /* numeric 0: ndigits 0, weight 0, sign 0, dscale 0 */
    assert_int_equal(mask_one(p, POLICY_STYLE_FULL, 1700, 1, "\0\1\0\0\0\0\0\2\0\x0c", 10, &out, &n), 1);
    assert_int_equal(n, 8);
    assert_memory_equal(out, "\0\0\0\0\0\0\0\0", 8);
    free(out);
    /* numeric hash: a well-formed non-negative integer */
    assert_int_equal(mask_one(p, POLICY_STYLE_HASH, 1700, 1, "\0\1\0\0\0\0\0\2\0\x0c", 10, &out, &n), 1);
    unsigned nd = (unsigned)(out[0] << 8 | out[1]);
    assert_int_equal(n, 8 + 2 * nd);
    assert_int_equal(out[4] << 8 | out[5], 0); /* sign + */
    for (unsigned i = 0; i < nd; i++)
        assert_true((out[8 + 2 * i] << 8 | out[9 + 2 * i]) < 10000);
    free(out);
    uint8_t uuid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    assert_int_equal(mask_one(p, POLICY_STYLE_FULL, 2950, 1, uuid, 16, &out, &n), 1);
    assert_int_equal(n, 16);
    assert_memory_equal(out, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16);
    free(out);
    /* date: days since 2000-01-01; 1970-01-01 is -10957; partial keeps the year. */
    uint8_t date[4] = {0xff, 0xff, 0xf0, 0x7a}; /* -3974: 1989-02-13 */
    assert_int_equal(mask_one(p, POLICY_STYLE_FULL, 1082, 1, date, 4, &out, &n), 1);
    assert_int_equal((int32_t)ntohl(*(uint32_t *)out), -10957);
    free(out);
    assert_int_equal(mask_one(p, POLICY_STYLE_PARTIAL, 1082, 1, date, 4, &out, &n), 1);
    assert_int_equal((int32_t)ntohl(*(uint32_t *)out), -4017); /* 1989-01-01 */
    free(out);
    /* timestamp: microseconds since 2000-01-01 */
    uint64_t ts_in = (uint64_t)(INT64_C(200) * 86400000000); /* 2000-07-19 */
    uint8_t ts[8];
    for (int i = 0; i < 8; i++)
        ts[i] = (uint8_t)(ts_in >> (56 - 8 * i));
    assert_int_equal(mask_one(p, POLICY_STYLE_PARTIAL, 1114, 1, ts, 8, &out, &n), 1);
    assert_int_equal(n, 8);
    uint64_t got = 0;
    for (int i = 0; i < 8; i++)
        got = got << 8 | out[i];
    assert_int_equal((int64_t)got, 0); /* 2000-01-01 00:00:00 */
    free(out);
    assert_int_equal(mask_one(p, POLICY_STYLE_FULL, 1184, 1, ts, 8, &out, &n), 1);
    got = 0;
    for (int i = 0; i < 8; i++)
        got = got << 8 | out[i];
    assert_int_equal((int64_t)got, -INT64_C(946684800000000));
    free(out);
    /* jsonb binary: version byte then text. */
    assert_int_equal(mask_one(p, POLICY_STYLE_FULL, 3802, 1, "\x01{\"a\":1}", 8, &out, &n), 1);
    assert_int_equal(n, 7);
    assert_memory_equal(out, "\x01\"****\"", 7);
    free(out);
    assert_int_equal(mask_one(p, POLICY_STYLE_FULL, 3802, 1, "\x02{}", 3, &out, &n), 2); /* unknown version */
    /* bytea binary: raw bytes; full is empty, hash is 16 bytes. */
    assert_int_equal(mask_one(p, POLICY_STYLE_FULL, 17, 1, "\xde\xad", 2, &out, &n), 1);
    assert_int_equal(n, 0);
    free(out);
    assert_int_equal(mask_one(p, POLICY_STYLE_HASH, 17, 1, "\xde\xad", 2, &out, &n), 1);
    assert_int_equal(n, 16);
    free(out);
    /* bool binary: NULL */
    assert_int_equal(mask_one(p, POLICY_STYLE_FULL, 16, 1, "\1", 1, &out, &n), 2);
    /* text binary is the text */
    assert_int_equal(mask_one(p, POLICY_STYLE_PARTIAL, 25, 1, "bob@example.org", 15, &out, &n), 1);
    assert_int_equal(n, 15);
    assert_memory_equal(out, "b**@example.org", 15);
    free(out);
    /* inet binary: AF_INET, /32, 4 bytes of zero */
    assert_int_equal(mask_one(p, POLICY_STYLE_FULL, 869, 1, "\2\x20\0\4\x0a\1\2\3", 8, &out, &n), 1);
    assert_int_equal(n, 8);
    assert_memory_equal(out, "\2\x20\0\4\0\0\0\0", 8);
    free(out);
    policy_free(p);
}

/* ---- plans: a catalog stand-in for the resolver interface ---- */

struct fake_catalog {
    struct policy_catalog base;
    int calls;
    struct policy_column_ref view_base[1];
};

static int fake_resolve(struct policy_catalog *self, uint32_t oid, int16_t attnum, struct policy_column_info *info,
                        char err[POLICY_ERR_MAX])
{
    struct fake_catalog *c = (struct fake_catalog *)self;
    c->calls++;
    memset(info, 0, sizeof(*info));
    if (oid == 999) {
        snprintf(err, POLICY_ERR_MAX, "connection lost");
        return -1;
    }
    if (oid == 100) { /* public.users: 1 id, 2 email, 3 name */
        static const char *const cols[] = {"", "id", "email", "name"};
        snprintf(info->ref.schema, sizeof(info->ref.schema), "public");
        snprintf(info->ref.table, sizeof(info->ref.table), "users");
        snprintf(info->ref.column, sizeof(info->ref.column), "%s", attnum >= 1 && attnum <= 3 ? cols[attnum] : "?");
        return 0;
    }
    if (oid == 200) { /* public.v_users, a view over users.email */
        snprintf(info->ref.schema, sizeof(info->ref.schema), "public");
        snprintf(info->ref.table, sizeof(info->ref.table), "v_users");
        snprintf(info->ref.column, sizeof(info->ref.column), "contact");
        info->is_view = true;
        snprintf(c->view_base[0].schema, POLICY_NAME_MAX, "public");
        snprintf(c->view_base[0].table, POLICY_NAME_MAX, "users");
        snprintf(c->view_base[0].column, POLICY_NAME_MAX, "email");
        info->base = c->view_base;
        info->nbase = 1;
        return 0;
    }
    info->unknown = true;
    return 0;
}

static void test_plan(void **state)
{
    (void)state;
    struct policy *p = load("{\"masking\": {\"columns\": [{\"column\": \"public.users.email\", \"style\": \"partial\"},"
                            " {\"column\": \"*.*.ssn\"}], \"detectors\": [\"email\", \"credit_card\"]}}");
    struct fake_catalog cat = {.base = {.resolve = fake_resolve}};
    char err[POLICY_ERR_MAX];
    struct policy_column_desc cols[] = {
        {"id", 100, 1, 23, 0},
        {"e", 100, 2, 25, 0},        /* aliased: still users.email through OID + attnum */
        {"name", 100, 3, 25, 0},
        {"contact", 200, 1, 25, 0},  /* view over users.email */
        {"x", 999, 1, 25, 0},        /* catalog error: fail closed */
        {"y", 300, 1, 25, 1},        /* unknown relation: fail closed */
        {"n", 100, 1, 16, 0},        /* bool: detectors skip it */
    };
    struct policy_mask_plan plan;
    assert_int_equal(policy_mask_plan_build(p, &cat.base, NULL, POLICY_ALLOW, POLICY_STYLE_FULL, cols, 7, &plan, err), 0);
    assert_true(plan.any);
    assert_int_equal(plan.cols[0].action, POLICY_COL_PASS);
    assert_false(plan.cols[0].detect); /* int4 */
    assert_int_equal(plan.cols[1].action, POLICY_COL_MASK);
    assert_int_equal(plan.cols[1].style, POLICY_STYLE_PARTIAL);
    assert_string_equal(plan.cols[1].label, "public.users.email");
    assert_int_equal(plan.cols[2].action, POLICY_COL_PASS);
    assert_true(plan.cols[2].detect);
    assert_int_equal(plan.cols[3].action, POLICY_COL_MASK);
    assert_int_equal(plan.cols[4].action, POLICY_COL_MASK);
    assert_int_equal(plan.cols[4].style, POLICY_STYLE_FULL);
    assert_int_equal(plan.cols[5].action, POLICY_COL_MASK);
    assert_false(plan.cols[6].detect);

    uint8_t *out = NULL;
    size_t n;
    assert_int_equal(policy_mask_value(p, &plan, 1, (const uint8_t *)"carol@example.net", 17, &out, &n, err), 1);
    assert_memory_equal(out, "c****@example.net", n);
    free(out);
    /* A detector hit inside free text is replaced in place. */
    const char *note = "call carol@example.net, card 4111 1111 1111 1111 ok";
    assert_int_equal(policy_mask_value(p, &plan, 2, (const uint8_t *)note, strlen(note), &out, &n, err), 1);
    assert_int_equal(n, strlen(note)); /* partial keeps the shape */
    assert_memory_equal(out, "call c****@example.net, card **** **** **** 1111 ok", n);
    free(out);
    /* Nothing detected: forwarded as is. */
    assert_int_equal(policy_mask_value(p, &plan, 2, (const uint8_t *)"Carol", 5, &out, &n, err), 0);
    /* Out of range column index. */
    assert_int_equal(policy_mask_value(p, &plan, 9, (const uint8_t *)"x", 1, &out, &n, err), -1);

    json_t *counters = policy_mask_counters_json(&plan);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(counters, "columns"), "public.users.email")), 1);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(counters, "detectors"), "email")), 1);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(counters, "detectors"), "credit_card")), 1);
    json_decref(counters);
    policy_mask_plan_free(&plan);

    /* No catalog at all: every table column is masked when rules exist. */
    assert_int_equal(policy_mask_plan_build(p, NULL, NULL, POLICY_ALLOW, POLICY_STYLE_FULL, cols, 1, &plan, err), 0);
    assert_int_equal(plan.cols[0].action, POLICY_COL_MASK);
    policy_mask_plan_free(&plan);
    policy_free(p);
}

/* A catalog that knows names only: v_users is a view over users.email and
 * v_names one over users.name; functions called "my_*" are user code;
 * "broken" fails. */
static int names_relation(struct policy_catalog *self, const char *schema, const char *name, bool *is_view,
                          const struct policy_column_ref **base, size_t *nbase, char err[POLICY_ERR_MAX])
{
    (void)self;
    (void)schema;
    static const struct policy_column_ref email = {"public", "users", "email"}, nm = {"public", "users", "name"};
    *is_view = strcmp(name, "v_users") == 0 || strcmp(name, "v_names") == 0;
    *base = strcmp(name, "v_users") == 0 ? &email : &nm;
    *nbase = *is_view ? 1 : 0;
    if (strcmp(name, "broken") == 0) {
        snprintf(err, POLICY_ERR_MAX, "connection lost");
        return -1;
    }
    return 0;
}

static int names_function(struct policy_catalog *self, const char *name, bool *user_code, char err[POLICY_ERR_MAX])
{
    (void)self;
    (void)err;
    *user_code = strncmp(name, "my_", 3) == 0 || strncmp(name, "public.my_", 10) == 0;
    return 0;
}

/* What a write reaches: tables named audited* run code someone wrote;
 * users is itself masked; a write to "parents" cascades to users; "broken"
 * cannot be looked up; others reach their own column "id" only. */
static int names_writes(struct policy_catalog *self, const char *schema, const char *name, bool *code,
                        const struct policy_column_ref **columns, size_t *ncolumns, char err[POLICY_ERR_MAX])
{
    (void)self;
    (void)schema;
    static const struct policy_column_ref users[] = {{"public", "users", "id"}, {"public", "users", "email"}},
                                          parents[] = {{"public", "parents", "id"}, {"public", "users", "id"},
                                                       {"public", "users", "email"}},
                                          other = {"public", "other", "id"};
    if (strcmp(name, "broken") == 0) {
        snprintf(err, POLICY_ERR_MAX, "lookup failed");
        return -1;
    }
    *code = strncmp(name, "audited", 7) == 0;
    *columns = strcmp(name, "users") == 0 ? users : strcmp(name, "parents") == 0 ? parents : &other;
    *ncolumns = strcmp(name, "users") == 0 ? 2 : strcmp(name, "parents") == 0 ? 3 : 1;
    return 0;
}

/* Code a relation runs unnamed: the row security of tables named secured*,
 * the index code of indexed* and of the whole database (NULL); "broken"
 * cannot be looked up. */
static int names_relation_code(struct policy_catalog *self, const char *schema, const char *name, bool *on_read,
                               bool *on_maintenance, char err[POLICY_ERR_MAX])
{
    (void)self;
    (void)schema;
    if (name && strcmp(name, "broken") == 0) {
        snprintf(err, POLICY_ERR_MAX, "lookup failed");
        return -1;
    }
    *on_read = name && strncmp(name, "secured", 7) == 0;
    *on_maintenance = !name || strncmp(name, "indexed", 7) == 0;
    return 0;
}

static struct policy_catalog names_catalog = {.relation = names_relation, .function = names_function,
                                              .writes = names_writes, .relation_code = names_relation_code};

static bool computed_with(struct policy *p, struct policy_catalog *cat, const char *sql)
{
    struct policy_analysis a;
    char err[POLICY_ERR_MAX];
    assert_int_equal(policy_classify(sql, NULL, &a, err), 0);
    struct policy_column_desc col = {"c", 0, 0, 25, 0};
    struct policy_mask_plan plan;
    assert_int_equal(policy_mask_plan_build(p, cat, &a.stmts[0], POLICY_ALLOW, POLICY_STYLE_FULL, &col, 1, &plan, err), 0);
    bool masked = plan.cols[0].action == POLICY_COL_MASK;
    policy_mask_plan_free(&plan);
    policy_analysis_free(&a);
    return masked;
}

static void computed(struct policy *p, const char *sql, bool want_masked)
{
    struct policy_analysis a;
    char err[POLICY_ERR_MAX];
    assert_int_equal(policy_classify(sql, NULL, &a, err), 0);
    struct policy_column_desc col = {"c", 0, 0, 25, 0};
    struct policy_mask_plan plan;
    assert_int_equal(policy_mask_plan_build(p, &names_catalog, &a.stmts[0], POLICY_ALLOW, POLICY_STYLE_FULL, &col, 1,
                                            &plan, err), 0);
    if ((plan.cols[0].action == POLICY_COL_MASK) != want_masked)
        fail_msg("computed column of [%s]: masked=%d, want %d", sql, plan.cols[0].action == POLICY_COL_MASK, want_masked);
    policy_mask_plan_free(&plan);
    policy_analysis_free(&a);
}

static void test_computed_columns(void **state)
{
    (void)state;
    struct policy *p = load("{\"masking\": {\"columns\": [{\"column\": \"public.users.email\"}]}}");
    computed(p, "select upper(email) from users", true);
    computed(p, "select u.e || '' from (select email as e from users) u", true);
    computed(p, "select row_to_json(u) from users u", true);
    computed(p, "select json_agg(t) from (select * from users) t", true);
    computed(p, "select string_agg(x.email, ',') from users x", true);
    computed(p, "select format('%s', email) from users", true);
    computed(p, "select format('%s', email) from app.users", false);  /* another schema's table */
    computed(p, "select upper(email) from contacts", false);          /* the same column name elsewhere */
    computed(p, "select upper(c.email) from contacts c join users u using (id)", true); /* cannot tell whose */
    computed(p, "with c as (select * from users) select row_to_json(c) from c", true);
    computed(p, "select count(*) from users", false);
    computed(p, "select upper(name) from users", false);
    computed(p, "select 1 + 1", false);
    computed(p, "select upper(name) from customers", false);
    /* Unsound by name alone: the column's own name says nothing. */
    computed(p, "select 1 as email", false);
    computed(p, "select upper(name) as email from users", false);
    computed(p, "select upper(b) from users u(a, b)", true);          /* columns renamed by an alias list */
    computed(p, "select upper(contact) from v_users", true);           /* a view over a masked column */
    computed(p, "select upper(name) from v_names", false);             /* a view over other columns */
    computed(p, "select my_emails()", true);                           /* user code may select anything */
    computed(p, "select * from public.my_emails()", true);
    computed(p, "select upper(x) from broken", true);                  /* the catalog cannot answer */
    computed(p, "select count(*) from secured_t", true);               /* its row security runs user code */
    computed(p, "select count(*) from indexed_t", false);              /* a read runs no index code */
    computed(p, "select query_to_xml('select email from users', true, false, '')", true); /* SQL in a string */
    computed(p, "fetch all from nowhere", true);                       /* a cursor never declared */
    computed(p, "execute nowhere", true);                              /* a statement never prepared */
    /* A cursor is judged by what it was declared for, in its session; a
     * FETCH is never answered from the decision cache. */
    struct policy_session *ses = policy_session_new();
    struct policy_decision d;
    struct policy_analysis a;
    char cerr[POLICY_ERR_MAX];
    const char *const seq[] = {"declare c cursor for select upper(email) from users",
                               "declare n cursor for select upper(name) from users"};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(policy_check(p, ses, seq[i], NULL, &d, &a), 0);
        policy_analysis_free(&a);
    }
    for (int round = 0; round < 2; round++) {
        assert_int_equal(policy_check(p, ses, "fetch all from c", NULL, &d, &a), 0);
        assert_false(d.cached);
        assert_false(a.stmts[0].facts & POLICY_FACT_UNKNOWN_CURSOR);
        struct policy_column_desc col = {"upper", 0, 0, 25, 0};
        struct policy_mask_plan plan;
        assert_int_equal(policy_mask_plan_build(p, &names_catalog, &a.stmts[0], d.action, d.mask_style, &col, 1,
                                                &plan, cerr), 0);
        assert_int_equal(plan.cols[0].action, POLICY_COL_MASK);
        policy_mask_plan_free(&plan);
        policy_analysis_free(&a);
        assert_int_equal(policy_check(p, ses, "fetch all from n", NULL, &d, &a), 0);
        assert_int_equal(policy_mask_plan_build(p, &names_catalog, &a.stmts[0], d.action, d.mask_style, &col, 1,
                                                &plan, cerr), 0);
        assert_int_equal(plan.cols[0].action, POLICY_COL_PASS);
        policy_mask_plan_free(&plan);
        policy_analysis_free(&a);
    }
    policy_session_free(ses);
    /* Without a catalog that can tell views and user code apart: any
     * relation or function counts. */
    struct policy_catalog blind = {0};
    assert_true(computed_with(p, &blind, "select upper(name) from v_names"));
    assert_true(computed_with(p, NULL, "select count(*) from users"));
    assert_true(computed_with(p, NULL, "select 1 + 1")); /* an operator may be user code */
    assert_false(computed_with(p, NULL, "select 1"));
    policy_free(p);
    /* Without the statement: masked. */
    p = load("{\"masking\": {\"columns\": [{\"column\": \"public.users.email\"}]}}");
    struct policy_column_desc col = {"c", 0, 0, 25, 0};
    struct policy_mask_plan plan;
    char err[POLICY_ERR_MAX];
    assert_int_equal(policy_mask_plan_build(p, NULL, NULL, POLICY_ALLOW, POLICY_STYLE_FULL, &col, 1, &plan, err), 0);
    assert_int_equal(plan.cols[0].action, POLICY_COL_MASK);
    policy_mask_plan_free(&plan);
    /* No rules, no detectors: rows pass without being looked at. */
    struct policy *none = load("{}");
    assert_int_equal(policy_mask_plan_build(none, NULL, NULL, POLICY_ALLOW, POLICY_STYLE_FULL, &col, 1, &plan, err), 0);
    assert_false(plan.any);
    policy_mask_plan_free(&plan);
    policy_free(none);
    policy_free(p);
}

/* Which errors hide their text: only when a statement since the session
 * was last idle may read a masked column, and the SQLSTATE's class may
 * quote values. */
static void test_error_hiding(void **state)
{
    (void)state;
    struct policy *p = load("{\"masking\": {\"columns\": [{\"column\": \"public.users.email\"}]}}");
    struct policy_results *r = policy_results_new();
    char err[POLICY_ERR_MAX];
    assert_true(policy_sqlstate_may_quote_values("22P02"));   /* invalid input syntax: "<value>" */
    assert_true(policy_sqlstate_may_quote_values("23505"));   /* Key (email)=(<value>) */
    assert_true(policy_sqlstate_may_quote_values("P0001"));   /* RAISE with a value */
    assert_true(policy_sqlstate_may_quote_values(""));        /* unknown: fail closed */
    assert_true(policy_sqlstate_may_quote_values("22"));
    assert_true(policy_sqlstate_may_quote_values("42P01"));   /* relation "<value>" (a ::regclass) */
    assert_true(policy_sqlstate_may_quote_values("0A000"));   /* cross-database references: "<value>" */
    assert_true(policy_sqlstate_may_quote_values("3D000"));   /* database "<value>" does not exist */
    assert_true(policy_sqlstate_may_quote_values("58P01"));   /* could not open file "<value>" */
    assert_false(policy_sqlstate_may_quote_values("25P02"));  /* current transaction is aborted */
    assert_false(policy_sqlstate_may_quote_values("40P01"));  /* deadlock detected */
    assert_false(policy_sqlstate_may_quote_values("57014"));  /* canceled */
    /* Nothing known to be in flight: hide (fail closed). */
    assert_true(policy_error_must_hide(p, &names_catalog, r, "22P02"));
    static const struct { const char *sql; bool hide; } cases[] = {
        {"select email::int from users", true},
        {"insert into t select email::int from users", true}, /* returns no rows, still reads it */
        {"select 1/0 from users", false},
        {"select email::int from contacts", false},
        {"select upper(name)::int from users", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct policy_analysis a;
        assert_int_equal(policy_classify(cases[i].sql, NULL, &a, err), 0);
        assert_int_equal(policy_results_push(r, p, &a, NULL, NULL, i + 1), 0);
        policy_analysis_free(&a);
        if (policy_error_must_hide(p, &names_catalog, r, "22P02") != cases[i].hide)
            fail_msg("%s: hide should be %d", cases[i].sql, cases[i].hide);
        assert_false(policy_error_must_hide(p, &names_catalog, r, "25P02")); /* a quiet class */
        policy_results_clear(r); /* the gateway's idle hook: everything answered */
    }
    /* A deferred check fails at the commit that ends a Query, after the
     * statement that read the column has completed; or at COMMIT, SET
     * CONSTRAINTS or PREPARE TRANSACTION, judged as unknown (fail closed). */
    static const char *const later[] = {"update users set email = lower(email); select 1",
                                        "commit", "end", "set constraints all immediate",
                                        "prepare transaction 'x'"};
    for (size_t i = 0; i < sizeof later / sizeof later[0]; i++) {
        struct policy_analysis a;
        assert_int_equal(policy_classify(later[i], NULL, &a, err), 0);
        assert_int_equal(policy_results_push(r, p, &a, NULL, NULL, 40 + i), 0);
        policy_analysis_free(&a);
        if (!policy_error_must_hide(p, &names_catalog, r, "23505"))
            fail_msg("[%s]: a deferred check's error should be hidden", later[i]);
        policy_results_clear(r);
    }
    /* A write to a table with triggers someone wrote: they may read and
     * quote any column (unknown); so may a failed look-up (fail closed). A
     * write whose failing row or key may hold a masked column (the masked
     * table's own, or one a cascade reaches) quotes it; other writes are
     * judged as the statement reads. */
    static const struct { const char *sql; bool hide; } writes[] = {
        {"insert into audited_t values (1)", true}, {"update audited_t set a = 1 where id = 2", true},
        {"insert into plain_t values (1)", false}, {"delete from plain_t where id = 1", false},
        {"insert into broken values (1)", true},
        {"update users set id = 2 where id = 1", true}, {"delete from users where id = 1", true},
        {"delete from parents where id = 1", true}, {"update plain_t set id = (select 1 from users)", false},
    };
    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++) {
        struct policy_analysis w;
        assert_int_equal(policy_classify(writes[i].sql, NULL, &w, err), 0);
        assert_int_equal(policy_results_push(r, p, &w, NULL, NULL, 60 + i), 0);
        policy_analysis_free(&w);
        if (policy_error_must_hide(p, &names_catalog, r, "23505") != writes[i].hide)
            fail_msg("[%s]: hide should be %d", writes[i].sql, writes[i].hide);
        assert_true(policy_error_must_hide(p, NULL, r, "23505")); /* no catalog: cannot tell */
        policy_results_clear(r);
    }
    /* ANALYZE, VACUUM, CLUSTER and REINDEX run the index and statistics
     * code of what they name, or of the whole database; any statement the
     * row security of what it reads. That code may quote any column under
     * any SQLSTATE, a quiet class too. */
    static const struct { const char *sql; bool hide; } unnamed[] = {
        {"analyze indexed_t", true}, {"vacuum (full) indexed_t", true}, {"cluster indexed_t", true},
        {"reindex table indexed_t", true}, {"analyze", true}, {"vacuum", true},
        {"analyze plain_t", false}, {"vacuum full plain_t", false}, {"select 1 from indexed_t", false},
        {"select 1 from secured_t", true}, {"delete from secured_t where id = 1", true},
    };
    for (size_t i = 0; i < sizeof unnamed / sizeof unnamed[0]; i++) {
        struct policy_analysis u;
        assert_int_equal(policy_classify(unnamed[i].sql, NULL, &u, err), 0);
        assert_int_equal(policy_results_push(r, p, &u, NULL, NULL, 80 + i), 0);
        policy_analysis_free(&u);
        if (policy_error_must_hide(p, &names_catalog, r, "57000") != unnamed[i].hide)
            fail_msg("[%s]: hide should be %d", unnamed[i].sql, unnamed[i].hide);
        policy_results_clear(r);
    }
    struct policy_analysis a;
    assert_int_equal(policy_classify("rollback", NULL, &a, err), 0);
    assert_int_equal(policy_results_push(r, p, &a, NULL, NULL, 50), 0);
    policy_analysis_free(&a);
    assert_false(policy_error_must_hide(p, &names_catalog, r, "23505")); /* runs no deferred check */
    policy_results_free(r);
    policy_free(p);
}

/* Push head followed by n statements "select 2" as one string judged as
 * id; returns how many statements it held. */
static size_t push_many(struct policy_results *r, struct policy *p, const char *head, int n, uint64_t id)
{
    char sql[4096], err[POLICY_ERR_MAX];
    snprintf(sql, sizeof sql, "%s", head);
    for (int i = 0; i < n; i++)
        strcat(sql, " select 2;");
    struct policy_analysis a;
    assert_int_equal(policy_classify(sql, NULL, &a, err), 0);
    assert_int_equal(policy_results_push(r, p, &a, NULL, NULL, id), 0);
    size_t nstmts = a.nstmts;
    policy_analysis_free(&a);
    return nstmts;
}

/* The plan of a one-column result (computed, no table) answered at pos:
 * whether the column is masked. */
static bool computed_masked_at(struct policy *p, struct policy_results *r, uint64_t id, uint32_t index)
{
    struct policy_column_desc col = {"c", 0, 0, 25, 0};
    struct policy_mask_plan plan;
    char err[POLICY_ERR_MAX];
    struct policy_result_pos pos = {id, index};
    assert_int_equal(policy_mask_plan_build_results(p, &names_catalog, r, id == UINT64_MAX ? NULL : &pos, &col, 1,
                                                    &plan, err),
                     0);
    bool masked = plan.cols[0].action == POLICY_COL_MASK;
    policy_mask_plan_free(&plan);
    return masked;
}

/* Whether a COPY's rows answered at pos are masked (or -1: refused). */
static int copy_masked_at(struct policy *p, struct policy_results *r, uint64_t id, uint32_t index)
{
    struct policy_mask_plan plan;
    char err[POLICY_ERR_MAX];
    struct policy_result_pos pos = {id, index};
    if (policy_mask_plan_build_copy_results(p, &names_catalog, r, &pos, 3, &plan, err) < 0) {
        assert_non_null(strstr(err, "different layouts"));
        return -1;
    }
    bool masked = plan.any && plan.cols[1].action == POLICY_COL_MASK;
    policy_mask_plan_free(&plan);
    return masked;
}

static void push_one(struct policy_results *r, struct policy *p, struct policy_session *sess, const char *sql,
                     uint64_t id)
{
    struct policy_analysis a;
    char err[POLICY_ERR_MAX];
    assert_int_equal(policy_classify(sql, sess, &a, err), 0);
    assert_int_equal(policy_results_push(r, p, &a, NULL, NULL, id), 0);
    policy_analysis_free(&a);
}

/* Results of pipelined statements: each is masked as the statement the
 * gateway says upstream is answering (its id and index) says. */
static void test_results_tracker(void **state)
{
    (void)state;
    struct policy *p = load("{\"masking\": {\"columns\": [{\"column\": \"public.users.email\"}]}}");
    struct policy_results *r = policy_results_new();
    char err[POLICY_ERR_MAX];
    /* Four pipelined strings, ids 1-4. */
    const char *const seq[] = {"insert into t values (1)", "select upper(email) from users", "select 1",
                               "select upper(name) from users"};
    for (size_t i = 0; i < 4; i++)
        push_one(r, p, NULL, seq[i], i + 1);
    /* Rows while the INSERT answers (a rule made them): nobody's known
     * result, computed columns masked. */
    assert_true(computed_masked_at(p, r, 1, 0));
    assert_true(computed_masked_at(p, r, 2, 0));
    /* Each later result is its own statement's: no masking, though the
     * statement before it read the masked column. */
    assert_false(computed_masked_at(p, r, 3, 0));
    assert_false(computed_masked_at(p, r, 4, 0));
    /* Past every statement, or at none of ours (a Sync's answer): nobody's. */
    assert_true(computed_masked_at(p, r, 0, 0));
    assert_true(computed_masked_at(p, r, 5, 0));
    policy_results_clear(r);
    /* The gateway lost count: any statement in flight may own the result. */
    push_one(r, p, NULL, "select upper(name) from users; select upper(email) from users", 6);
    assert_true(computed_masked_at(p, r, UINT64_MAX, 0));
    assert_false(computed_masked_at(p, r, 6, 0));
    assert_true(computed_masked_at(p, r, 6, 1));
    policy_results_clear(r);
    /* Past 256 statements in flight the oldest are folded together: a
     * result of the fold is masked as any of them would mask it, the ones
     * after it as their own. */
    assert_int_equal(push_many(r, p, "select 1; copy users to stdout;", 256, 7), 258);
    assert_int_equal(copy_masked_at(p, r, 7, 0), 1); /* select 1 folded with the COPY */
    assert_int_equal(copy_masked_at(p, r, 7, 1), 1);
    assert_int_equal(copy_masked_at(p, r, 7, 3), 0); /* select 2, on its own */
    policy_results_clear(r);
    /* A fold of two COPYs of different layouts (CSV with a header, then text)
     * cannot tell which sent the rows: with something to mask, refused (a
     * header taken for data would pass unmasked). */
    assert_int_equal(push_many(r, p, "copy (select 1) to stdout (format csv, header); copy users to stdout;", 255, 8),
                     257);
    assert_int_equal(copy_masked_at(p, r, 8, 1), -1);
    assert_int_equal(copy_masked_at(p, r, 8, 2), 0);
    policy_results_clear(r);
    /* EXECUTE of a name prepared twice (an INSERT, then a SELECT), then a
     * COPY of the masked table: the COPY's rows are masked. */
    {
        struct policy_session *sess = policy_session_new();
        struct policy_analysis a;
        assert_non_null(sess);
        assert_int_equal(policy_classify("prepare p as insert into nowhere values (1)", sess, &a, err), 0);
        policy_analysis_free(&a);
        assert_int_equal(policy_classify("prepare p as select 1 as x", sess, &a, err), 0);
        policy_analysis_free(&a);
        push_one(r, p, sess, "execute p; copy users to stdout; select 1", 9);
        assert_int_equal(copy_masked_at(p, r, 9, 1), 1);
        assert_false(computed_masked_at(p, r, 9, 2));
        policy_results_clear(r);
        /* EXECUTE of an INSERT may return rows only by a rule: its rows
         * are nobody's known ones; one prepared with RETURNING, its own. */
        assert_int_equal(policy_classify("prepare ins as insert into nowhere values (1)", sess, &a, err), 0);
        policy_analysis_free(&a);
        assert_int_equal(policy_classify("prepare ret as insert into nowhere values (1) returning 1", sess, &a, err),
                         0);
        policy_analysis_free(&a);
        push_one(r, p, sess, "execute ins; execute ret", 12);
        assert_true(computed_masked_at(p, r, 12, 0));
        assert_false(computed_masked_at(p, r, 12, 1));
        policy_results_clear(r);
        policy_session_free(sess);
    }
    /* A long pipeline, 50 strings deep, answered in order: each result is
     * its own statement's all along. */
    for (uint64_t id = 100; id < 1100; id++) {
        push_one(r, p, NULL, id % 2 ? "select upper(email) from users" : "select upper(name) from users", id);
        if (id >= 150 && computed_masked_at(p, r, id - 50, 0) != ((id - 50) % 2 == 1))
            fail_msg("the result of string %llu", (unsigned long long)(id - 50));
    }
    policy_results_clear(r);
    /* A statement the gateway refused never answers: the one after it is
     * answered as itself. */
    push_one(r, p, NULL, "select upper(email) from users", 10); /* refused by the hook after admit */
    push_one(r, p, NULL, "select upper(name) from users", 11);
    assert_false(computed_masked_at(p, r, 11, 0));
    policy_results_clear(r);
    /* What may return rows. */
    static const struct { const char *sql; bool rows; } kinds[] = {
        {"select 1", true}, {"insert into t values (1)", false}, {"insert into t values (1) returning id", true},
        {"update t set a = 1 where id = 2", false}, {"delete from t where id = 1 returning *", true},
        {"begin", false}, {"create table x (a int)", false}, {"set work_mem = '1MB'", false},
        {"explain analyze insert into t values (1)", true}, {"copy t to stdout", true}, {"show work_mem", true},
        {"fetch all from c", true}, {"call p()", true}, {"select * into x from t", false},
        {"declare c cursor for select 1", false}, {"values (1)", true},
        {"execute unknown_name", true}, /* what it runs is not known */
    };
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        struct policy_analysis a;
        assert_int_equal(policy_classify(kinds[i].sql, NULL, &a, err), 0);
        if (policy_stmt_may_return_rows(&a.stmts[0]) != kinds[i].rows)
            fail_msg("may_return_rows [%s] = %d", kinds[i].sql, !kinds[i].rows);
        policy_analysis_free(&a);
    }
    policy_results_free(r);
    policy_free(p);
}

static void test_copy_rows(void **state)
{
    (void)state;
    struct policy *p = load("{\"masking\": {\"columns\": [{\"column\": \"public.users.email\"}], \"detectors\": \"all\","
                            " \"style\": \"full\"}}");
    char err[POLICY_ERR_MAX];
    struct policy_analysis a;
    struct policy_mask_plan plan;
    struct buf out = {0};
    /* COPY of a masked table: every field \N. */
    assert_int_equal(policy_classify("copy users to stdout", NULL, &a, err), 0);
    assert_int_equal(policy_mask_plan_build_copy(p, &a.stmts[0], POLICY_ALLOW, 3, &plan, err), 0);
    const char *row = "1\talice@example.com\t\\N\n";
    assert_int_equal(policy_mask_copy_row(p, &plan, (const uint8_t *)row, strlen(row), &out, err), 0);
    assert_int_equal(out.len, strlen("\\N\t\\N\t\\N\n"));
    assert_memory_equal(out.data, "\\N\t\\N\t\\N\n", out.len);
    buf_reset(&out);
    policy_mask_plan_free(&plan);
    policy_analysis_free(&a);
    /* Another table: detectors per field, escapes kept. */
    assert_int_equal(policy_classify("copy (select id, note from tickets) to stdout", NULL, &a, err), 0);
    assert_int_equal(policy_mask_plan_build_copy(p, &a.stmts[0], POLICY_ALLOW, 2, &plan, err), 0);
    row = "7\tline1\\nmail bob@example.com\\tx\n";
    assert_int_equal(policy_mask_copy_row(p, &plan, (const uint8_t *)row, strlen(row), &out, err), 0);
    const char *want = "7\tline1\\nmail ***************\\tx\n";
    assert_int_equal(out.len, strlen(want));
    assert_memory_equal(out.data, want, out.len);
    /* Malformed rows are refused, not forwarded. */
    assert_int_equal(policy_mask_copy_row(p, &plan, (const uint8_t *)"1\t2\t3\n", 6, &out, err), -1);
    assert_non_null(strstr(err, "more fields"));
    assert_int_equal(policy_mask_copy_row(p, &plan, (const uint8_t *)"1\n", 2, &out, err), -1);
    assert_int_equal(policy_mask_copy_row(p, &plan, (const uint8_t *)"1\t2", 3, &out, err), -1);
    assert_non_null(strstr(err, "newline"));
    /* A refused row leaves what the output held before untouched. */
    assert_int_equal(out.len, strlen(want));
    assert_memory_equal(out.data, want, out.len);
    buf_free(&out);
    json_t *c = policy_mask_counters_json(&plan);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(c, "detectors"), "email")), 1);
    json_decref(c);
    policy_mask_plan_free(&plan);
    policy_analysis_free(&a);
    /* Binary, custom delimiters, quotes or NULL strings, or an unknown
     * statement: refused. */
    static const char *const custom[] = {"copy tickets to stdout with (format binary)",
                                         "copy tickets to stdout with (delimiter ',')",
                                         "copy tickets to stdout with (null 'x')",
                                         "copy tickets to stdout with (format csv, quote '|')",
                                         "copy tickets to stdout csv force quote *",
                                         "copy tickets to stdout with (format csv, header match)"};
    for (size_t i = 0; i < sizeof(custom) / sizeof(custom[0]); i++) {
        assert_int_equal(policy_classify(custom[i], NULL, &a, err), 0);
        assert_true(a.stmts[0].facts & POLICY_FACT_COPY_CUSTOM);
        assert_int_equal(policy_mask_plan_build_copy(p, &a.stmts[0], POLICY_ALLOW, 2, &plan, err), -1);
        assert_non_null(strstr(err, "text or CSV format"));
        policy_analysis_free(&a);
    }
    assert_int_equal(policy_mask_plan_build_copy(p, NULL, POLICY_ALLOW, 2, &plan, err), -1);
    assert_int_equal(policy_classify("copy tickets to stdout with (format text)", NULL, &a, err), 0);
    assert_false(a.stmts[0].facts & POLICY_FACT_COPY_CUSTOM);
    assert_int_equal(policy_mask_plan_build_copy(p, &a.stmts[0], POLICY_ALLOW, 2, &plan, err), 0);
    policy_mask_plan_free(&plan);
    policy_analysis_free(&a);
    /* Nothing to mask: any format goes. */
    struct policy *none = load("{}");
    assert_int_equal(policy_classify("copy tickets to stdout csv", NULL, &a, err), 0);
    assert_int_equal(policy_mask_plan_build_copy(none, &a.stmts[0], POLICY_ALLOW, 2, &plan, err), 0);
    assert_false(plan.any);
    policy_mask_plan_free(&plan);
    policy_analysis_free(&a);
    policy_free(none);
    policy_free(p);
}

/* CSV rows, as COPY TO writes them: a plan of typed columns (as the gateway
 * never builds for COPY, which carries no types, but the row code is the
 * same), and the plan of a COPY of a masked table (every field NULL). */
static void csv_row_is(struct policy *p, struct policy_mask_plan *plan, const char *row, const char *want)
{
    char err[POLICY_ERR_MAX];
    struct buf out = {0};
    assert_int_equal(policy_mask_copy_row(p, plan, (const uint8_t *)row, strlen(row), &out, err), 0);
    if (out.len != strlen(want) || memcmp(out.data, want, out.len) != 0)
        fail_msg("[%s] gave [%.*s], want [%s]", row, (int)out.len, (const char *)out.data, want);
    buf_free(&out);
}

static void test_copy_csv(void **state)
{
    (void)state;
    struct policy *p = load("{\"masking\": {\"columns\": [{\"column\": \"public.users.email\", \"style\": \"partial\"}]}}");
    struct fake_catalog cat = {.base = {.resolve = fake_resolve}};
    struct policy_column_desc cols[] = {{"id", 100, 1, 23, 0}, {"email", 100, 2, 25, 0}, {"name", 100, 3, 25, 0}};
    char err[POLICY_ERR_MAX];
    struct policy_mask_plan plan;
    assert_int_equal(policy_mask_plan_build(p, &cat.base, NULL, POLICY_ALLOW, POLICY_STYLE_FULL, cols, 3, &plan, err), 0);
    plan.csv = plan.header = true;
    /* The header line passes as it is, once. */
    csv_row_is(p, &plan, "id,email,name\n", "id,email,name\n");
    /* Quoted fields, "" for a quote, commas and newlines inside quotes; a
     * masked value is written quoted; NULL (unquoted, empty) stays NULL. */
    csv_row_is(p, &plan, "1,alice@example.com,\"Al \"\"the\"\" ice, C\nline\"\n",
               "1,\"a****@example.com\",\"Al \"\"the\"\" ice, C\nline\"\n");
    csv_row_is(p, &plan, "2,\"bob@example.com\",\n", "2,\"b**@example.com\",\n");
    csv_row_is(p, &plan, "3,,\"\"\n", "3,,\"\"\n");
    /* Rows that are not such CSV are refused, and leave the output as it was. */
    static const char *const bad[] = {"1,\"alice@example.com,Al\n", "1,al\"ice,Al\n", "1,\"alice\"x,Al\n",
                                      "1,alice,Al,4\n", "1,alice\n", "1,alice,Al", "1,\"alice,\"\"\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct buf out = {0};
        buf_append_str(&out, "kept");
        if (policy_mask_copy_row(p, &plan, (const uint8_t *)bad[i], strlen(bad[i]), &out, err) != -1)
            fail_msg("bad CSV row %zu was taken", i);
        assert_int_equal(out.len, 4);
        buf_free(&out);
    }
    policy_mask_plan_free(&plan);
    /* A COPY of the masked table in CSV, with its header: every field NULL. */
    struct policy_analysis a;
    assert_int_equal(policy_classify("copy users to stdout (format csv, header)", NULL, &a, err), 0);
    assert_int_equal(policy_mask_plan_build_copy_catalog(p, &cat.base, &a.stmts[0], POLICY_ALLOW, 3, &plan, err), 0);
    assert_true(plan.csv && plan.header);
    csv_row_is(p, &plan, "id,email,name\n", "id,email,name\n");
    csv_row_is(p, &plan, "1,alice@example.com,Al\n", ",,\n");
    policy_mask_plan_free(&plan);
    policy_analysis_free(&a);
    /* Its own delimiter: cannot be masked, refused. */
    assert_int_equal(policy_classify("copy users to stdout (format csv, delimiter ';')", NULL, &a, err), 0);
    assert_int_equal(policy_mask_plan_build_copy_catalog(p, &cat.base, &a.stmts[0], POLICY_ALLOW, 3, &plan, err), -1);
    policy_analysis_free(&a);
    policy_free(p);
}

/* Hostile bytes: random values of random lengths through the detectors, the
 * typed masking of every type in both formats, and COPY rows. Nothing may
 * crash or read out of bounds (this runs under ASan too); masked output stays
 * within what was asked. A fixed seed keeps it repeatable. */
static uint32_t rng_state = 12345;
static uint32_t rng(void)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return rng_state >> 8;
}

static void test_hostile_values(void **state)
{
    (void)state;
    struct policy *p = load("{\"masking\": {\"columns\": [{\"column\": \"*.*.*\", \"style\": \"partial\"}],"
                            " \"detectors\": \"all\"}}");
    static const uint32_t types[] = {16, 17, 18, 19, 20, 21, 23, 25, 26, 114, 650, 700, 701, 705, 869, 1042, 1043,
                                     1082, 1083, 1114, 1184, 1186, 1700, 2950, 3802, 1009, 0};
    static const char alphabet[] = "0123456789-+.@: \t\\,\"abcdefxyzAKIA_eyJ\xc3\xa9\xff";
    char err[POLICY_ERR_MAX];
    for (int round = 0; round < 3000; round++) {
        uint8_t v[96];
        size_t len = rng() % sizeof(v);
        for (size_t i = 0; i < len; i++)
            v[i] = (round & 1) ? (uint8_t)rng() : (uint8_t)alphabet[rng() % (sizeof(alphabet) - 1)];
        struct policy_detection d[8];
        size_t n = policy_detect((const char *)v, len, POLICY_DETECT_ALL, d, 8);
        for (size_t i = 0; i < n && i < 8; i++)
            assert_true(d[i].start < d[i].end && d[i].end <= len);
        struct policy_column_desc col = {"c", 0, 0, types[rng() % (sizeof(types) / sizeof(types[0]))],
                                         (int16_t)(rng() % 2)};
        enum policy_action act = (rng() % 2) ? POLICY_MASK : POLICY_ALLOW;
        struct policy_mask_plan plan;
        assert_int_equal(policy_mask_plan_build(p, NULL, NULL, act, (enum policy_mask_style)(rng() % 3), &col, 1,
                                                &plan, err), 0);
        uint8_t *out = NULL;
        size_t outlen = 0;
        int rc = policy_mask_value(p, &plan, 0, v, len, &out, &outlen, err);
        assert_true(rc >= 0 && rc <= 2);
        if (rc == 1)
            assert_true(outlen < 4 * len + 64);
        free(out);
        policy_mask_plan_free(&plan);
        /* The same bytes as a COPY row of 3 columns. */
        if (policy_mask_plan_build_copy(p, NULL, POLICY_ALLOW, 3, &plan, err) == 0) {
            fail_msg("a COPY of an unknown statement must be refused when masking is on");
        }
        /* ...in text and in CSV layout. */
        for (int csv = 0; csv < 2; csv++) {
            struct policy_analysis a;
            assert_int_equal(policy_classify(csv ? "copy t to stdout csv" : "copy t to stdout", NULL, &a, err), 0);
            assert_int_equal(policy_mask_plan_build_copy(p, &a.stmts[0], POLICY_ALLOW, 3, &plan, err), 0);
            uint8_t row[100];
            memcpy(row, v, len);
            row[len] = '\n';
            struct buf copied = {0};
            rc = policy_mask_copy_row(p, &plan, row, len + 1, &copied, err);
            if (rc == 0)
                assert_true(copied.len > 0 && copied.data[copied.len - 1] == '\n');
            else
                assert_int_equal(copied.len, 0);
            buf_free(&copied);
            policy_mask_plan_free(&plan);
            policy_analysis_free(&a);
        }
    }
    policy_free(p);
}

/* Text outside result rows (an error's fields, a notification's payload, a
 * ParameterStatus's value): the detectors' matches masked in place, as in a
 * text column; nothing found, or no detectors, leaves it to the caller. */
static void test_detected_text(void **state)
{
    (void)state;
    struct policy *p = load("{\"masking\": {\"columns\": [{\"column\": \"public.users.email\"}],"
                            " \"detectors\": [\"phone\", \"credit_card\"]}}");
    char *out = NULL;
    size_t n = 0;
    const char *err = "invalid input syntax for type integer: \"5555 5555 5555 4444\"";
    assert_int_equal(policy_mask_detected_text(p, err, strlen(err), &out, &n), 1);
    assert_string_equal(out, "invalid input syntax for type integer: \"**** **** **** 4444\"");
    assert_int_equal(n, strlen(out));
    free(out);
    const char *payload = "4111 1111 1111 1111 / +44 20 7946 0018";
    assert_int_equal(policy_mask_detected_text(p, payload, strlen(payload), &out, &n), 1);
    assert_string_equal(out, "**** **** **** 1111 / +** ** **** 0018");
    free(out);
    const char *plain = "column \"nosuch\" does not exist";
    assert_int_equal(policy_mask_detected_text(p, plain, strlen(plain), &out, &n), 0);
    assert_int_equal(policy_mask_detected_text(p, "", 0, &out, &n), 0);
    /* Past 64 matches: the whole text. */
    char many[65 * 21 + 1] = "";
    for (int i = 0; i < 65; i++)
        strcat(many, "4111 1111 1111 1111 ");
    assert_int_equal(policy_mask_detected_text(p, many, strlen(many), &out, &n), 1);
    assert_string_equal(out, "****");
    free(out);
    policy_free(p);
    /* No detectors: nothing to do, whatever the text holds. */
    p = load("{\"masking\": {\"columns\": [{\"column\": \"public.users.email\"}]}}");
    assert_int_equal(policy_mask_detected_text(p, payload, strlen(payload), &out, &n), 0);
    policy_free(p);
}

/* A view's output columns hold no masked one (v_users' "id" is users.id),
 * but its definition reads users.email (a join's condition): a statement
 * that copies from it copies what email decided, so it counts as reading a
 * masked column, as the inline form's text does; a view that reads none
 * (v_names) does not. */
static int id_view_column(struct policy_catalog *self, const char *schema, const char *name, const char *column,
                          const struct policy_column_ref **base, size_t *nbase, char err[POLICY_ERR_MAX])
{
    (void)self, (void)schema, (void)name, (void)err;
    static const struct policy_column_ref id = {"public", "users", "id"};
    *base = &id;
    *nbase = strcmp(column, "id") == 0;
    return 0;
}

static void test_view_copy_source(void **state)
{
    (void)state;
    struct policy *p = load("{\"masking\": {\"columns\": [{\"column\": \"public.users.email\"}]}}");
    struct policy_catalog cat = names_catalog;
    cat.view_column = id_view_column;
    static const struct { const char *sql; int copies; } cases[] = {
        {"insert into loot select id from v_users", 1},
        {"create materialized view m as select id from v_users", 1},
        {"select set_config('application_name', string_agg(id::text, ''), false) from v_users", 1},
        {"insert into loot select id from v_names", 0},
        {"insert into loot select id from plain_table", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct policy_analysis a;
        char err[POLICY_ERR_MAX];
        assert_int_equal(policy_classify(cases[i].sql, NULL, &a, err), 0);
        int rc = policy_stmt_reads_masked_via_catalog(p, &cat, &a.stmts[0], err);
        if (rc != cases[i].copies)
            fail_msg("%s: %d", cases[i].sql, rc);
        policy_analysis_free(&a);
    }
    policy_free(p);
}

/* Big-endian helpers for binary values. */
static size_t be(uint8_t *o, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        o[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    return (size_t)n;
}

/* A value the detectors find in text is found whatever format or type the
 * client asked for: a binary int8, numeric, float8 or bytea, an array or
 * record in binary, and float8 and bytea in text; one that cannot be
 * masked in place goes whole (NULL for arrays and records). */
static void test_detect_any_format(void **state)
{
    (void)state;
    struct policy *p = load("{\"masking\": {\"detectors\": [\"credit_card\"]}}");
    char err[POLICY_ERR_MAX];
    struct policy_column_desc cols[] = {
        {"i8", 0, 0, 20, 1},   {"num", 0, 0, 1700, 1}, {"f8", 0, 0, 701, 1},  {"ba", 0, 0, 17, 1},
        {"arr", 0, 0, 1009, 1}, {"rec", 0, 0, 2249, 1}, {"f8t", 0, 0, 701, 0}, {"bat", 0, 0, 17, 0},
        {"numarr", 0, 0, 1231, 0}, {"xml", 0, 0, 142, 1},
    };
    struct policy_mask_plan plan;
    assert_int_equal(policy_mask_plan_build(p, NULL, NULL, POLICY_ALLOW, POLICY_STYLE_FULL, cols, 10, &plan, err), 0);
    for (size_t i = 0; i < 10; i++)
        if (!plan.cols[i].detect)
            fail_msg("column %s is not read by the detectors", cols[i].name);
    const char *card = "4111 1111 1111 1111";
    uint8_t v[256], *out = NULL;
    size_t n, outlen;
    /* int8 4111111111111111 */
    n = be(v, UINT64_C(4111111111111111), 8);
    assert_int_equal(policy_mask_value(p, &plan, 0, v, n, &out, &outlen, err), 1);
    assert_int_equal(outlen, 8);
    assert_memory_not_equal(out, v, 8);
    free(out);
    n = be(v, 42, 8);
    assert_int_equal(policy_mask_value(p, &plan, 0, v, n, &out, &outlen, err), 0);
    /* numeric 4111111111111111: 4 base-10000 digits, weight 3 */
    n = be(v, 4, 2) + be(v + 2, 3, 2) + be(v + 4, 0, 2) + be(v + 6, 0, 2);
    for (int i = 0; i < 4; i++)
        n += be(v + n, i == 0 ? 4111 : 1111, 2);
    assert_int_equal(policy_mask_value(p, &plan, 1, v, n, &out, &outlen, err), 1);
    free(out);
    /* float8 4111111111111111.0 */
    double d = 4111111111111111.0;
    uint64_t u;
    memcpy(&u, &d, 8);
    n = be(v, u, 8);
    assert_int_equal(policy_mask_value(p, &plan, 2, v, n, &out, &outlen, err), 1);
    free(out);
    /* bytea: the card's bytes */
    assert_int_equal(policy_mask_value(p, &plan, 3, (const uint8_t *)card, strlen(card), &out, &outlen, err), 1);
    assert_int_equal(outlen, 0);
    free(out);
    /* text[] {card, 'x'} and record (card, NULL) */
    n = be(v, 1, 4) + be(v + 4, 0, 4) + be(v + 8, 25, 4) + be(v + 12, 2, 4) + be(v + 16, 1, 4);
    n += be(v + n, strlen(card), 4);
    memcpy(v + n, card, strlen(card));
    n += strlen(card);
    n += be(v + n, 1, 4);
    v[n++] = 'x';
    assert_int_equal(policy_mask_value(p, &plan, 4, v, n, &out, &outlen, err), 2);
    v[20 + 4] = 'X'; /* "X111 ...": nothing found */
    assert_int_equal(policy_mask_value(p, &plan, 4, v, n, &out, &outlen, err), 0);
    n = be(v, 2, 4) + be(v + 4, 25, 4) + be(v + 8, strlen(card), 4);
    memcpy(v + n, card, strlen(card));
    n += strlen(card);
    n += be(v + n, 23, 4) + be(v + n + 4, (uint32_t)-1, 4);
    assert_int_equal(policy_mask_value(p, &plan, 5, v, n, &out, &outlen, err), 2);
    /* text format: float8, bytea, numeric[] */
    const char *f8 = "4.111111111111111e+15", *ba = "\\x34313131203131313120313131312031313131", *na = "{4111111111111111}";
    assert_int_equal(policy_mask_value(p, &plan, 6, (const uint8_t *)f8, strlen(f8), &out, &outlen, err), 1);
    free(out);
    assert_int_equal(policy_mask_value(p, &plan, 6, (const uint8_t *)"1.5", 3, &out, &outlen, err), 0);
    assert_int_equal(policy_mask_value(p, &plan, 7, (const uint8_t *)ba, strlen(ba), &out, &outlen, err), 1);
    assert_memory_equal(out, "\\x", outlen);
    free(out);
    assert_int_equal(policy_mask_value(p, &plan, 7, (const uint8_t *)"\\x00ff", 6, &out, &outlen, err), 0);
    assert_int_equal(policy_mask_value(p, &plan, 8, (const uint8_t *)na, strlen(na), &out, &outlen, err), 2);
    /* xml in binary is its text: masked in place */
    const char *xml = "<x>4111 1111 1111 1111</x>";
    assert_int_equal(policy_mask_value(p, &plan, 9, (const uint8_t *)xml, strlen(xml), &out, &outlen, err), 1);
    assert_memory_equal(out, "<x>**** **** **** 1111</x>", outlen);
    free(out);
    policy_mask_plan_free(&plan);
    /* COPY fields have no type: one that reads as a bytea or a float8 is read so */
    assert_int_equal(policy_mask_plan_build_copy(p, NULL, POLICY_ALLOW, 2, &plan, err), -1); /* no statement */
    struct policy_analysis a;
    assert_int_equal(policy_classify("copy (select 1, 2) to stdout", NULL, &a, err), 0);
    assert_int_equal(policy_mask_plan_build_copy(p, &a.stmts[0], POLICY_ALLOW, 2, &plan, err), 0);
    struct buf row = {0};
    const char *copy = "\\\\x34313131203131313120313131312031313131\t4.111111111111111e+15\n";
    assert_int_equal(policy_mask_copy_row(p, &plan, (const uint8_t *)copy, strlen(copy), &row, err), 0);
    assert_memory_equal(row.data, "\\N\t\\N\n", row.len);
    row.len = 0;
    const char *plain = "\\\\x00ff\t1e+3\n";
    assert_int_equal(policy_mask_copy_row(p, &plan, (const uint8_t *)plain, strlen(plain), &row, err), 0);
    assert_memory_equal(row.data, plain, row.len);
    buf_free(&row);
    policy_mask_plan_free(&plan);
    policy_analysis_free(&a);
    policy_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_email),
        cmocka_unit_test(test_phone),
        cmocka_unit_test(test_card),
        cmocka_unit_test(test_ssn),
        cmocka_unit_test(test_iban),
        cmocka_unit_test(test_ip),
        cmocka_unit_test(test_secret),
        cmocka_unit_test(test_detect_many),
        cmocka_unit_test(test_styles),
        cmocka_unit_test(test_typed_text),
        cmocka_unit_test(test_typed_binary),
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_computed_columns),
        cmocka_unit_test(test_results_tracker),
        cmocka_unit_test(test_error_hiding),
        cmocka_unit_test(test_copy_rows),
        cmocka_unit_test(test_copy_csv),
        cmocka_unit_test(test_hostile_values),
        cmocka_unit_test(test_detected_text),
        cmocka_unit_test(test_view_copy_source),
        cmocka_unit_test(test_detect_any_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
