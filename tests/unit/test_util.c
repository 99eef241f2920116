/* test_util.c — hex, UUIDs, SHA-256, the byte buffer and its cap, log lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hoopctl/log.h"
#include "hoopctl/util.h"

#include <curl/curl.h>

static void hex_round_trip_and_bad_input(void **state)
{
    (void)state;
    uint8_t in[] = {0x00, 0x7f, 0xff, 0x10}, out[4];
    char hex[9];
    util_hex_encode(in, 4, hex);
    assert_string_equal(hex, "007fff10");
    assert_int_equal(util_hex_decode("007FFF10", out, sizeof out), 4);
    assert_memory_equal(in, out, 4);
    assert_int_equal(util_hex_decode("abc", out, sizeof out), -1);
    assert_int_equal(util_hex_decode("zz", out, sizeof out), -1);
    assert_int_equal(util_hex_decode("0011223344", out, sizeof out), -1);
}

static void uuid_shape(void **state)
{
    (void)state;
    char a[37], b[37];
    assert_int_equal(util_uuid_v4(a), 0);
    assert_int_equal(util_uuid_v4(b), 0);
    assert_int_equal(strlen(a), 36);
    assert_int_equal(a[14], '4');
    assert_true(strchr("89ab", a[19]) != NULL);
    assert_string_not_equal(a, b);
}

/* Version-7 ids: the time first, then bits that are new in every id (ids
 * that one could foretell from another would let a user take another
 * user's next event ids). 300 ids span several refills of the pool. */
static void uuid_v7_time_then_fresh_random(void **state)
{
    (void)state;
    enum { N = 300 };
    static char id[N][37];
    int64_t before = util_now_ms();
    for (int i = 0; i < N; i++)
        assert_int_equal(util_uuid_v7(id[i]), 0);
    int64_t after = util_now_ms();
    int distinct_mid = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(strlen(id[i]), 36);
        assert_int_equal(id[i][8], '-');
        assert_int_equal(id[i][14], '7');
        assert_true(strchr("89ab", id[i][19]) != NULL);
        char ms_hex[13];
        memcpy(ms_hex, id[i], 8);
        memcpy(ms_hex + 8, id[i] + 9, 4);
        ms_hex[12] = '\0';
        long long ms = strtoll(ms_hex, NULL, 16);
        assert_true(ms >= before && ms <= after);
        if (i > 0)
            assert_true(strncmp(id[i - 1], id[i], 13) <= 0); /* time never goes back */
        bool seen = false;
        for (int j = 0; j < i && !seen; j++) {
            assert_string_not_equal(id[i], id[j]);
            seen = memcmp(id[i] + 24, id[j] + 24, 8) == 0; /* 32 of the last 48 bits */
        }
        distinct_mid += !seen;
    }
    /* 300 draws of 32 bits: all distinct but for a one-in-30,000 chance of
     * one pair; a per-run constant would give one value. */
    assert_true(distinct_mid >= N - 2);
}

static void sha256_known_vector(void **state)
{
    (void)state;
    char h[65];
    util_sha256_hex("abc", 3, h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void buffer_grows_and_respects_cap(void **state)
{
    (void)state;
    struct buf b = {0};
    for (int i = 0; i < 1000; i++)
        assert_int_equal(buf_printf(&b, "%d,", i), 0);
    assert_int_equal(strncmp(buf_cstr(&b), "0,1,2,", 6), 0);
    buf_reset(&b);
    assert_string_equal(buf_cstr(&b), "");
    buf_free(&b);

    struct buf c = {.max = 8};
    assert_int_equal(buf_append(&c, "12345678", 8), 0);
    assert_int_equal(buf_append(&c, "9", 1), -1);
    assert_int_equal(c.len, 8);
    assert_int_equal(buf_append(&c, "x", (size_t)-1), -1);
    buf_free(&c);
}

/* A logged value from a peer cannot start a line of its own or reach the
 * terminal as a control sequence. */
static void log_line_neutralizes_control_characters(void **state)
{
    (void)state;
    char path[] = "/tmp/hoopctl-test-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    log_set_level(LOG_INFO);
    log_msg(LOG_INFO, "test", "unknown key id '%s'",
            "k1\n2026-01-01T00:00:00.000Z error [auth] forged\x1b[2J\x7f \xc2\x9b" "2J \xe2\x80\xae \xff");
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    char got[512] = {0};
    ssize_t n = pread(fd, got, sizeof got - 1, 0);
    close(fd);
    unlink(path);
    assert_true(n > 0);
    /* as escapes (buf_append_terminal_safe's): C0 and C1 controls, a
     * bidirectional override, a byte that is not UTF-8 */
    assert_non_null(strstr(got, "[test] unknown key id 'k1\\x0a2026-01-01T00:00:00.000Z error [auth] forged"
                                "\\x1b[2J\\x7f \\u009b2J \\u202e \\xff'\n"));
    assert_ptr_equal(strchr(got, '\n'), got + n - 1); /* one line */
}

static void check_safe(const char *in, bool keep_lines, const char *want)
{
    char *got = util_terminal_safe(in, keep_lines);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

/* Text others wrote cannot steer a terminal, and what is plain stays as it is. */
static void terminal_safe_text(void **state)
{
    (void)state;
    check_safe("select 'héllo', 'naïve ✓ 𝄞'", false, "select 'héllo', 'naïve ✓ 𝄞'");
    check_safe("a\x1b[2K\rb", true, "a\\x1b[2K\\x0db");
    check_safe("line 1\n\tline 2", true, "line 1\n\tline 2");
    check_safe("line 1\n\tline 2", false, "line 1\\x0a\\x09line 2");
    check_safe("bell\x07 del\x7f", true, "bell\\x07 del\\x7f");
    check_safe("c1 \xc2\x9b" "2K", true, "c1 \\u009b2K");           /* U+009B, a CSI */
    check_safe("rlo \xe2\x80\xae abc", true, "rlo \\u202e abc");  /* right-to-left override */
    check_safe("iso \xe2\x81\xa6x\xe2\x81\xa9", true, "iso \\u2066x\\u2069");
    check_safe("mark \xe2\x80\x8f", true, "mark \\u200f");
    check_safe("bad \xff\xc0\xaf \xed\xa0\x80 \xe2\x82", true,   /* not UTF-8: each byte */
               "bad \\xff\\xc0\\xaf \\xed\\xa0\\x80 \\xe2\\x82");
    check_safe(NULL, true, "");
    struct buf b = {0};
    assert_int_equal(buf_append_terminal_safe(&b, "a\0b", 3, true), 0); /* an embedded NUL */
    assert_string_equal(buf_cstr(&b), "a\\x00b");
    buf_free(&b);
}

/* Characters a terminal draws as nothing are shown as escapes too: a
 * reviewer reads 'paid\u200b', not 'paid'. Their neighbours are kept. */
static void terminal_safe_invisible(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"'paid\xe2\x80\x8b'", "'paid\\u200b'"},          /* zero-width space */
        {"a\xe2\x80\x8c\xe2\x80\x8d" "b", "a\\u200c\\u200db"}, /* non-joiner, joiner */
        {"soft\xc2\xad" "hy", "soft\\u00adhy"},             /* soft hyphen */
        {"cgj\xcd\x8f", "cgj\\u034f"},                      /* combining grapheme joiner */
        {"alm\xd8\x9c", "alm\\u061c"},                      /* Arabic letter mark */
        {"hf\xe1\x85\x9f\xe1\x85\xa0", "hf\\u115f\\u1160"}, /* Hangul fillers */
        {"mvs\xe1\xa0\x8e", "mvs\\u180e"},                 /* Mongolian vowel separator */
        {"ls\xe2\x80\xa8ps\xe2\x80\xa9", "ls\\u2028ps\\u2029"},
        {"lre\xe2\x80\xaa", "lre\\u202a"},
        {"wj\xe2\x81\xa0" "fa\xe2\x81\xa1" "ip\xe2\x81\xa4", "wj\\u2060fa\\u2061ip\\u2064"},
        {"iss\xe2\x81\xaa" "nds\xe2\x81\xaf", "iss\\u206ands\\u206f"}, /* deprecated format */
        {"hfl\xe3\x85\xa4", "hfl\\u3164"},                 /* Hangul filler */
        {"vs\xef\xb8\x80\xef\xb8\x8f", "vs\\ufe00\\ufe0f"}, /* variation selectors */
        {"\xef\xbb\xbf" "bom", "\\ufeffbom"},                 /* byte-order mark */
        {"hw\xef\xbe\xa0", "hw\\uffa0"},                   /* halfwidth Hangul filler */
        {"ann\xef\xbf\xb9x\xef\xbf\xbb", "ann\\ufff9x\\ufffb"},
        {"tag\xf3\xa0\x80\x81\xf3\xa0\x81\xbf", "tag\\U000e0001\\U000e007f"}, /* tag characters */
        {"vs\xf3\xa0\x84\x80\xf3\xa0\x87\xaf", "vs\\U000e0100\\U000e01ef"}, /* supplementary VS */
        /* next to them, and visible characters, are kept */
        {"\xe2\x80\x90\xe2\x80\xaf\xe2\x81\xa5\xef\xbf\xbc\xf3\xa0\x82\x80",
         "\xe2\x80\x90\xe2\x80\xaf\xe2\x81\xa5\xef\xbf\xbc\xf3\xa0\x82\x80"},
        {"\xe1\x85\xa1\xe3\x85\xa5\xef\xbe\xa1", "\xe1\x85\xa1\xe3\x85\xa5\xef\xbe\xa1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_safe(cases[i].in, true, cases[i].out);
        check_safe(cases[i].in, false, cases[i].out);
    }
}

static void edit_distance(void **state)
{
    (void)state;
    assert_int_equal(util_edit_distance("", ""), 0);
    assert_int_equal(util_edit_distance("help", "help"), 0);
    assert_int_equal(util_edit_distance("hepl", "help"), 2);
    assert_int_equal(util_edit_distance("kitten", "sitting"), 3);
    assert_int_equal(util_edit_distance("", "abc"), 3);
}

static void nearest_name_of_any_list(void **state)
{
    (void)state;
    const char *names[] = {"staging", "prod", "prod-replica", "analytics"};
    assert_int_equal(util_nearest_name("prodd", names, 4), 1);
    assert_true(util_name_is_typo("prodd", "prod"));
    assert_int_equal(util_nearest_name("stag", names, 4), 0); /* a prefix */
    assert_true(util_name_is_typo("stag", "staging"));
    assert_int_equal(util_nearest_name("prod-r", names, 4), 2);
    assert_false(util_name_is_typo("zzzzzzzz", names[util_nearest_name("zzzzzzzz", names, 4)]));
    assert_int_equal(util_nearest_name("prod", names, 0), 0); /* none to offer */
}

/* Ages for --retention and --since: a unit, a whole number above 0, and no
 * more than 1000 years, so that "now minus it" cannot wrap. */
static void age_ms(void **state)
{
    (void)state;
    int64_t ms = 0;
    assert_int_equal(util_parse_age_ms("90d", &ms), 0);
    assert_true(ms == (int64_t)90 * 86400000);
    assert_int_equal(util_parse_age_ms("45s", &ms), 0);
    assert_true(ms == 45000);
    assert_int_equal(util_parse_age_ms("366000d", &ms), 0);
    const char *bad[] = {"366001d", "8825400613783079d", "99999999999999999999s", "0d", "-5d", "+5d", " 5d",
                         "5", "5x", "5dd", "d", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ms = 7;
        assert_int_equal(util_parse_age_ms(bad[i], &ms), -1);
        assert_true(ms == 7);
    }
}

static void url_same_server(void **state)
{
    (void)state;
    static const char *const same[][2] = {
        {"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
        {"HTTPS://Hoop.Example.COM/", "https://hoop.example.com"},
        {"https://hoop.example.com:443", "https://hoop.example.com"},
        {"http://localhost:80/", "http://localhost"},
        {"https://hoop.example.com:8443/Api//", "https://hoop.example.com:8443/Api"},
        {"http://[::1]:80", "http://[::1]"},
        {"https://hoop.example.com:80", "https://hoop.example.com:80"},
        {"http://Me@Host:80", "http://Me@host"},
        {"http://localhost:8080", "http://localhost:8080"},
    };
    char out[128];
    for (size_t i = 0; i < sizeof same / sizeof *same; i++) {
        util_url_same_server(same[i][0], out, sizeof out);
        assert_string_equal(out, same[i][1]);
    }
    util_url_same_server("http://localhost:8080", out, sizeof out);
    char other[128];
    util_url_same_server("http://127.0.0.1:8080", other, sizeof other);
    assert_string_not_equal(out, other);
}

/* A secret's line is read whole up to the limit, and refused past it. */
static void secret_line_whole_or_refused(void **state)
{
    (void)state;
    static const struct {
        size_t len;
        const char *end;
        bool ok;
    } cases[] = {{16, "", true},     {16, "\n", true},    {16, "\r\n", true}, {16, "\nmore\n", true},
                 {32, "\r\n", true},  {33, "", false},    {33, "\n", false}, {34, "\r\n", false},
                 {0, "\n", true},     {200, "\n", false}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        FILE *f = tmpfile();
        assert_non_null(f);
        for (size_t k = 0; k < cases[i].len; k++)
            fputc('a' + (int)(k % 26), f);
        fputs(cases[i].end, f);
        rewind(f);
        bool too_long = true;
        char *line = util_read_secret_line(f, 32, &too_long);
        fclose(f);
        assert_int_equal(!too_long, cases[i].ok);
        if (cases[i].ok) {
            assert_non_null(line);
            assert_int_equal(strlen(line), cases[i].len);
        } else {
            assert_null(line);
        }
        free(line);
    }
}

/* A header list that held a bearer token: every string curl_slist_append
 * copied is zeroed in place before the list is freed. */
static void curl_header_lists_are_wiped(void **state)
{
    (void)state;
    struct curl_slist *l = curl_slist_append(NULL, "Accept: application/json");
    l = curl_slist_append(l, "Authorization: Bearer hk_not-a-real-token-but-secret");
    assert_non_null(l);
    size_t lens[2] = {strlen(l->data), strlen(l->next->data)};
    util_curl_slist_wipe(l);
    struct curl_slist *e = l;
    for (int i = 0; i < 2; i++, e = e->next)
        for (size_t k = 0; k < lens[i]; k++)
            if (e->data[k])
                fail_msg("byte %zu of header %d not wiped", k, i);
    assert_null(e);
    util_curl_slist_free_wiped(l);
    util_curl_slist_free_wiped(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hex_round_trip_and_bad_input),
        cmocka_unit_test(uuid_shape),
        cmocka_unit_test(uuid_v7_time_then_fresh_random),
        cmocka_unit_test(sha256_known_vector),
        cmocka_unit_test(buffer_grows_and_respects_cap),
        cmocka_unit_test(log_line_neutralizes_control_characters),
        cmocka_unit_test(terminal_safe_text),
        cmocka_unit_test(terminal_safe_invisible),
        cmocka_unit_test(edit_distance),
        cmocka_unit_test(nearest_name_of_any_list),
        cmocka_unit_test(url_same_server),
        cmocka_unit_test(age_ms),
        cmocka_unit_test(secret_line_whole_or_refused),
        cmocka_unit_test(curl_header_lists_are_wiped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
