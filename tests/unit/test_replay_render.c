/* test_replay_render.c — the psql aligned format, checked against text that
 * psql 15 printed for the same results, and the asciicast v2 writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hoopctl/replay.h"

static void check(const struct replay_result *r, const char *expected)
{
    struct buf b = {0};
    assert_int_equal(replay_render_table(r, &b), 0);
    assert_string_equal(buf_cstr(&b), expected);
    buf_free(&b);
}

static void types_nulls_and_alignment(void **state)
{
    (void)state;
    const char *names[] = {"id", "name", "n", "amount", "ok"};
    const uint32_t oids[] = {23, 25, 25, 1700, 16};
    const char *cells[] = {"1", "alice", NULL, "3.5", "t"};
    struct replay_result r = {5, names, oids, 1, cells};
    check(&r, " id | name  | n | amount | ok \n"
              "----+-------+---+--------+----\n"
              "  1 | alice |   |    3.5 | t\n"
              "(1 row)\n\n");
}

static void multi_line_values(void **state)
{
    (void)state;
    const char *names[] = {"multi", "y", "z"};
    const uint32_t oids[] = {25, 25, 23};
    const char *cells[] = {"a\nbc", "x", "42"};
    struct replay_result r = {3, names, oids, 1, cells};
    check(&r, " multi | y | z  \n"
              "-------+---+----\n"
              " a    +| x | 42\n"
              " bc    |   | \n"
              "(1 row)\n\n");
}

static void wide_characters(void **state)
{
    (void)state;
    const char *names[] = {"u", "wide"};
    const uint32_t oids[] = {25, 25};
    const char *cells[] = {"h\xc3\xa9llo w\xc3\xb6rld", "\xe6\x97\xa5\xe6\x9c\xac"};
    struct replay_result r = {2, names, oids, 1, cells};
    check(&r, "      u      | wide \n"
              "-------------+------\n"
              " h\xc3\xa9llo w\xc3\xb6rld | \xe6\x97\xa5\xe6\x9c\xac\n"
              "(1 row)\n\n");
    assert_int_equal(replay_display_width("\xe6\x97\xa5", 3), 2);
    assert_int_equal(replay_display_width("\xff\xfe", 2), 2); /* invalid bytes count, no crash */
}

static void empty_and_plural(void **state)
{
    (void)state;
    const char *names[] = {"g"};
    const uint32_t oids[] = {23};
    struct replay_result r = {1, names, oids, 0, NULL};
    check(&r, " g \n---\n(0 rows)\n\n");
    const char *names2[] = {"a", "b"};
    const uint32_t oids2[] = {23, 23};
    const char *cells2[] = {"1", "2", "10", "200"};
    struct replay_result r2 = {2, names2, oids2, 2, cells2};
    check(&r2, " a  |  b  \n----+-----\n  1 |   2\n 10 | 200\n(2 rows)\n\n");
}

static void asciicast_is_v2(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    struct asciicast a;
    assert_int_equal(asciicast_begin(&a, f, 80, 24, 1700000000, "session 1"), 0);
    assert_int_equal(asciicast_output(&a, 0.5, "app=> select 1;\n", 16), 0);
    assert_int_equal(asciicast_output(&a, 0.25, "x\r\n", 3), 0); /* never goes backwards */
    assert_int_equal(asciicast_output(&a, 1.0, "\xff", 1), -1);    /* not UTF-8: refused */
    fclose(f);
    char *line2 = strchr(text, '\n') + 1;
    json_t *h = json_loadb(text, (size_t)(line2 - text), 0, NULL);
    assert_non_null(h);
    assert_int_equal(json_integer_value(json_object_get(h, "version")), 2);
    assert_int_equal(json_integer_value(json_object_get(h, "width")), 80);
    json_decref(h);
    json_t *e = json_loads(strtok(line2, "\n"), 0, NULL);
    assert_non_null(e);
    assert_true(json_real_value(json_array_get(e, 0)) == 0.5);
    assert_string_equal(json_string_value(json_array_get(e, 1)), "o");
    assert_string_equal(json_string_value(json_array_get(e, 2)), "app=> select 1;\r\n");
    json_decref(e);
    e = json_loads(strtok(NULL, "\n"), 0, NULL);
    assert_true(json_real_value(json_array_get(e, 0)) == 0.5);
    assert_string_equal(json_string_value(json_array_get(e, 2)), "x\r\n");
    json_decref(e);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(types_nulls_and_alignment),
        cmocka_unit_test(multi_line_values),
        cmocka_unit_test(wide_characters),
        cmocka_unit_test(empty_and_plural),
        cmocka_unit_test(asciicast_is_v2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
