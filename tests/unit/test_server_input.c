/* test_server_input.c — request-body checking (unknown fields, wrong kinds,
 * names and ids with hostile characters), secret sealing with AES-256-GCM,
 * master-key loading, API-key minting and the loopback check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "hoopctl/server.h"
#include "hoopctl/util.h"

static const struct server_field fields[] = {
    {"name", "n!"}, {"id", "I"}, {"port", "i"}, {"groups", "S"}, {"text", "s"}, {"flag", "b"},
    {"obj", "o"}, {NULL, NULL}};

static int check(const char *json, char *err, size_t len)
{
    json_t *v = json_loads(json, 0, NULL);
    assert_non_null(v);
    int rc = server_json_check(v, fields, 16, err, len);
    json_decref(v);
    return rc;
}

static void json_check_accepts_and_refuses(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(check("{\"name\":\"prod-1.eu\",\"id\":\"a_b-9\",\"port\":5432,\"groups\":[\"dev\"],"
                           "\"text\":\"x'; drop --\",\"flag\":true,\"obj\":{}}", err, sizeof err), 0);
    assert_int_equal(check("{\"name\":\"p\",\"other\":1}", err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown field 'other'"));
    assert_int_equal(check("{\"id\":\"x\"}", err, sizeof err), -1);
    assert_non_null(strstr(err, "'name' is required"));
    assert_int_equal(check("{\"name\":\"p\",\"port\":\"5432\"}", err, sizeof err), -1);
    assert_non_null(strstr(err, "'port' must be an integer"));
    assert_int_equal(check("{\"name\":\"p'; drop table x; --\"}", err, sizeof err), -1);
    assert_int_equal(check("{\"name\":\"p\",\"id\":\"../../etc\"}", err, sizeof err), -1);
    assert_int_equal(check("{\"name\":\"p\",\"groups\":[\"a b\"]}", err, sizeof err), -1);
    assert_int_equal(check("{\"name\":\"p\",\"groups\":\"dev\"}", err, sizeof err), -1);
    assert_int_equal(check("{\"name\":\"p\",\"text\":\"01234567890123456\"}", err, sizeof err), -1);
    assert_int_equal(check("[1]", err, sizeof err), -1);
}

static void names_and_ids(void **state)
{
    (void)state;
    assert_true(server_valid_name("prod"));
    assert_true(server_valid_name("a.b_c-d"));
    assert_false(server_valid_name(".."));
    assert_false(server_valid_name(".hidden"));
    assert_false(server_valid_name("a/b"));
    assert_false(server_valid_name(""));
    assert_false(server_valid_name("a%2e"));
    assert_true(server_valid_id("1b4e28ba-2fa1-11d2-883f-0016d3cca427"));
    assert_false(server_valid_id("a.b"));
    assert_false(server_valid_id("x'"));
    char longname[70];
    memset(longname, 'a', sizeof longname - 1);
    longname[69] = '\0';
    assert_false(server_valid_name(longname));
}

static void secret_seal_round_trip_and_tamper(void **state)
{
    (void)state;
    unsigned char key[32], other[32];
    util_random_bytes(key, sizeof key);
    util_random_bytes(other, sizeof other);
    char *sealed = NULL, *plain = NULL, err[256];
    assert_int_equal(server_secret_seal(key, "prod", "pa'ss\"word", &sealed, err, sizeof err), 0);
    assert_non_null(strstr(sealed, "v1:"));
    assert_null(strstr(sealed, "pa'ss"));
    assert_int_equal(server_secret_open(key, "prod", sealed, &plain, err, sizeof err), 0);
    assert_string_equal(plain, "pa'ss\"word");
    free(plain);
    /* Wrong key, wrong connection (AAD), altered byte, garbage: all refused. */
    assert_int_equal(server_secret_open(other, "prod", sealed, &plain, err, sizeof err), -1);
    assert_int_equal(server_secret_open(key, "staging", sealed, &plain, err, sizeof err), -1);
    sealed[10] = sealed[10] == 'a' ? 'b' : 'a';
    assert_int_equal(server_secret_open(key, "prod", sealed, &plain, err, sizeof err), -1);
    assert_int_equal(server_secret_open(key, "prod", "v1:zz", &plain, err, sizeof err), -1);
    free(sealed);
    /* Two seals of one secret differ (fresh nonce). */
    char *s1 = NULL, *s2 = NULL;
    server_secret_seal(key, "prod", "x", &s1, err, sizeof err);
    server_secret_seal(key, "prod", "x", &s2, err, sizeof err);
    assert_string_not_equal(s1, s2);
    free(s1);
    free(s2);
}

static void master_key_from_file_and_env(void **state)
{
    (void)state;
    unsigned char key[32];
    char err[256], path[] = "/tmp/hoopctl-mk-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";
    assert_int_equal(write(fd, hex, strlen(hex)), (int)strlen(hex));
    close(fd);
    unsetenv("HOOPCTL_MASTER_KEY");
    assert_int_equal(server_master_key_load(path, key, err, sizeof err), 1);
    assert_int_equal(key[1], 0x11);
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "short", 5), 5);
    close(fd);
    assert_int_equal(server_master_key_load(path, key, err, sizeof err), -1);
    unlink(path);
    assert_int_equal(server_master_key_load(NULL, key, err, sizeof err), 0);
    setenv("HOOPCTL_MASTER_KEY", "ff112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", 1);
    assert_int_equal(server_master_key_load(NULL, key, err, sizeof err), 1);
    assert_int_equal(key[0], 0xff);
    setenv("HOOPCTL_MASTER_KEY", "nothex", 1);
    assert_int_equal(server_master_key_load(NULL, key, err, sizeof err), -1);
    unsetenv("HOOPCTL_MASTER_KEY");
}

static void apikeys_and_loopback(void **state)
{
    (void)state;
    char t1[64], h1[65], t2[64], h2[65], check_hash[65];
    assert_int_equal(server_apikey_mint(t1, h1), 0);
    assert_int_equal(server_apikey_mint(t2, h2), 0);
    assert_int_equal(strlen(t1), 46);
    assert_memory_equal(t1, "hk_", 3);
    assert_string_not_equal(t1, t2);
    util_sha256_hex(t1, strlen(t1), check_hash);
    assert_string_equal(h1, check_hash);
    assert_true(server_listen_is_loopback("127.0.0.1:80"));
    assert_true(server_listen_is_loopback("[::1]:80"));
    assert_true(server_listen_is_loopback("localhost:80"));
    assert_false(server_listen_is_loopback("0.0.0.0:80"));
    assert_false(server_listen_is_loopback("10.0.0.1:80"));
    /* What a name bound to decides: 127.evil.example may resolve anywhere. */
    const char *const yes[] = {"127.0.0.1", "127.255.0.9", "::1", "::ffff:127.0.0.2"};
    const char *const no[] = {"128.0.0.1", "10.127.0.1", "0.0.0.0", "::", "::ffff:10.0.0.1", "fe80::1"};
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < (pass ? 6u : 4u); i++) {
            const char *a = pass ? no[i] : yes[i];
            struct sockaddr_storage ss = {0};
            if (strchr(a, ':')) {
                ss.ss_family = AF_INET6;
                assert_int_equal(inet_pton(AF_INET6, a, &((struct sockaddr_in6 *)&ss)->sin6_addr), 1);
            } else {
                ss.ss_family = AF_INET;
                assert_int_equal(inet_pton(AF_INET, a, &((struct sockaddr_in *)&ss)->sin_addr), 1);
            }
            assert_int_equal(util_sockaddr_is_loopback((struct sockaddr *)&ss), !pass);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_check_accepts_and_refuses),
        cmocka_unit_test(names_and_ids),
        cmocka_unit_test(secret_seal_round_trip_and_tamper),
        cmocka_unit_test(master_key_from_file_and_env),
        cmocka_unit_test(apikeys_and_loopback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
