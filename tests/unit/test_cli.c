/* test_cli.c — the command table, option parser and suggestions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "hoopctl/cli.h"

static int dummy_run(const struct cli_args *a, struct cli_context *c)
{
    (void)a;
    (void)c;
    return 0;
}

static const struct cli_option test_opts[] = {
    {.name = "port", .short_name = 'p', .arg = "N", .help = "port"},
    {.name = "quiet", .short_name = 'q', .help = "quiet"},
    {.name = "listen", .arg = "ADDR", .help = "listen"},
    {0},
};

static const struct cli_command test_cmd = {
    .name = "t", .summary = "test", .usage = "", .options = test_opts,
    .min_args = 1, .max_args = 2, .run = dummy_run,
};

static void parses_long_short_inline_and_rest(void **state)
{
    (void)state;
    char *argv[] = {"t", "--port", "5433", "db", "-q", "--listen=127.0.0.1:1", "--", "psql", "-c", "x", NULL};
    struct cli_args a;
    char err[128];
    assert_int_equal(cli_parse(&test_cmd, 10, argv, &a, err, sizeof err), 0);
    assert_string_equal(cli_get(&a, "port"), "5433");
    assert_true(cli_flag(&a, "quiet"));
    assert_string_equal(cli_get(&a, "listen"), "127.0.0.1:1");
    assert_int_equal(a.npos, 1);
    assert_string_equal(a.pos[0], "db");
    assert_int_equal(a.nrest, 3);
    assert_string_equal(a.rest[0], "psql");
    assert_string_equal(a.rest[2], "x");
}

static void short_option_with_attached_value(void **state)
{
    (void)state;
    char *argv[] = {"t", "-p6000", "db", NULL};
    struct cli_args a;
    char err[128];
    assert_int_equal(cli_parse(&test_cmd, 3, argv, &a, err, sizeof err), 0);
    assert_string_equal(cli_get(&a, "port"), "6000");
    assert_null(cli_get(&a, "listen"));
    assert_false(cli_flag(&a, "quiet"));
}

static void rejects_bad_command_lines(void **state)
{
    (void)state;
    struct cli_args a;
    char err[128];
    char *unknown[] = {"t", "--nope", "db"};
    assert_int_equal(cli_parse(&test_cmd, 3, unknown, &a, err, sizeof err), -1);
    assert_non_null(strstr(err, "--nope"));
    char *missing_value[] = {"t", "db", "--port"};
    assert_int_equal(cli_parse(&test_cmd, 3, missing_value, &a, err, sizeof err), -1);
    assert_non_null(strstr(err, "needs a value"));
    char *flag_value[] = {"t", "db", "--quiet=yes"};
    assert_int_equal(cli_parse(&test_cmd, 3, flag_value, &a, err, sizeof err), -1);
    char *too_few[] = {"t"};
    assert_int_equal(cli_parse(&test_cmd, 1, too_few, &a, err, sizeof err), -1);
    char *too_many[] = {"t", "a", "b", "c"};
    assert_int_equal(cli_parse(&test_cmd, 4, too_many, &a, err, sizeof err), -1);
    assert_non_null(strstr(err, "'c'"));
}

static void suggestions_come_from_the_table(void **state)
{
    (void)state;
    const struct cli_command *s = cli_suggest("hlep");
    assert_non_null(s);
    assert_string_equal(s->name, "help");
    assert_true(cli_suggestion_is_close("hlep", s));
    s = cli_suggest("compl");
    assert_string_equal(s->name, "completion");
    assert_true(cli_suggestion_is_close("compl", s));
    s = cli_suggest("zzzzzzzzzzzz");
    assert_non_null(s);
    assert_false(cli_suggestion_is_close("zzzzzzzzzzzz", s));
}

static void every_entry_is_complete(void **state)
{
    (void)state;
    for (size_t i = 0; cli_commands[i]; i++) {
        const struct cli_command *c = cli_commands[i];
        assert_non_null(c->name);
        assert_non_null(c->summary);
        assert_non_null(c->run);
        assert_ptr_equal(cli_find(c->name), c);
        for (size_t j = i + 1; cli_commands[j]; j++) /* no entry twice (merges!) */
            assert_ptr_not_equal(cli_commands[j], c);
        int n = 0;
        for (const struct cli_option *o = c->options; o && o->name; o++) {
            assert_non_null(o->help);
            n++;
        }
        assert_true(n <= CLI_MAX_OPTIONS);
    }
    assert_null(cli_find("nosuch"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_long_short_inline_and_rest),
        cmocka_unit_test(short_option_with_attached_value),
        cmocka_unit_test(rejects_bad_command_lines),
        cmocka_unit_test(suggestions_come_from_the_table),
        cmocka_unit_test(every_entry_is_complete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
