/* test_complete.c — the words `hoopctl __complete` takes from a server
 * answer: only shell-safe words, only from the right member, bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <string.h>

#include "hoopctl/cli.h"
#include "hoopctl/util.h"

static void shell_safe_words_only(void **state)
{
    (void)state;
    assert_true(cli_complete_word_ok("prod"));
    assert_true(cli_complete_word_ok("orders-eu_2.db"));
    assert_true(cli_complete_word_ok("0b6f1c9e-8d47-4a4e-9d0e-2c1f5a7b3e10"));
    assert_false(cli_complete_word_ok(""));
    assert_false(cli_complete_word_ok("$(touch /tmp/pwned)"));
    assert_false(cli_complete_word_ok("a b"));
    assert_false(cli_complete_word_ok("a`id`"));
    assert_false(cli_complete_word_ok("semi;colon"));
    assert_false(cli_complete_word_ok("new\nline"));
    assert_false(cli_complete_word_ok("quo'te"));
    char longw[200];
    memset(longw, 'a', sizeof longw - 1);
    longw[sizeof longw - 1] = '\0';
    assert_false(cli_complete_word_ok(longw));
    longw[128] = '\0';
    assert_true(cli_complete_word_ok(longw));
}

static void words_from_each_kind(void **state)
{
    (void)state;
    struct buf out = {0};
    json_t *conns = json_loads("{\"connections\": [{\"name\": \"prod\"}, {\"name\": \"$(rm -rf ~)\"},"
                               " {\"host\": \"no-name\"}, {\"name\": 7}, {\"name\": \"orders-eu\"}]}",
                               0, NULL);
    assert_int_equal(cli_complete_words_from("connections", conns, &out), 2);
    assert_string_equal(buf_cstr(&out), "prod\norders-eu\n");
    buf_reset(&out);
    /* the member of another kind is not read */
    assert_int_equal(cli_complete_words_from("sessions", conns, &out), -1);
    assert_int_equal(out.len, 0);
    json_decref(conns);

    json_t *sess = json_loads("{\"sessions\": [{\"id\": \"s-1\", \"name\": \"x\"}, {\"id\": \"s-2\"}],"
                              " \"next\": \"c\"}", 0, NULL);
    assert_int_equal(cli_complete_words_from("sessions", sess, &out), 2);
    assert_string_equal(buf_cstr(&out), "s-1\ns-2\n");
    buf_reset(&out);
    json_decref(sess);

    json_t *rev = json_loads("{\"reviews\": {\"id\": \"not-an-array\"}}", 0, NULL);
    assert_int_equal(cli_complete_words_from("reviews", rev, &out), -1);
    assert_int_equal(cli_complete_words_from("nosuch", rev, &out), -1);
    assert_int_equal(cli_complete_words_from("reviews", NULL, &out), -1);
    json_decref(rev);

    /* a huge answer is cut at the word limit */
    json_t *many = json_pack("{s:[]}", "reviews");
    for (int i = 0; i < 5000; i++) {
        char id[32];
        snprintf(id, sizeof id, "rv-%d", i);
        json_array_append_new(json_object_get(many, "reviews"), json_pack("{s:s}", "id", id));
    }
    assert_int_equal(cli_complete_words_from("reviews", many, &out), 1000);
    json_decref(many);
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shell_safe_words_only),
        cmocka_unit_test(words_from_each_kind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
