/* test_tui_logic.c — the TUI's terminal-free logic: session filters and
 * search, a refreshed first page joined to the pages loaded, times typed by
 * the user, durations, fitting columns into a width, scrolling, and SQL
 * pretty-printing (never touching quoted text). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hoopctl/tui.h"

#include <jansson.h>

static const struct tui_session_row rows[] = {
    {.id = "s-1", .user = "alice", .connection = "prod", .state = "ended", .started_ms = 1000,
     .statements = 3, .denials = 1},
    {.id = "s-2", .user = "Bob", .connection = "staging", .state = "active", .started_ms = 5000,
     .statements = 1, .denials = 0},
    {.id = "s-3", .user = "alice", .connection = "staging", .state = "active", .started_ms = 9000,
     .statements = 0, .denials = -1 /* some, count unknown */},
};

static int apply(const struct tui_filter *f, int *idx)
{
    return tui_filter_apply(f, rows, 3, idx);
}

static void filters(void **state)
{
    (void)state;
    int idx[3];
    struct tui_filter f = {0};
    assert_int_equal(apply(&f, idx), 3);
    snprintf(f.user, sizeof f.user, "ALI");
    assert_int_equal(apply(&f, idx), 2);
    assert_int_equal(idx[0], 0);
    assert_int_equal(idx[1], 2);
    snprintf(f.connection, sizeof f.connection, "stag");
    assert_int_equal(apply(&f, idx), 1);
    assert_int_equal(idx[0], 2);
    memset(&f, 0, sizeof f);
    f.only_denials = true;
    assert_int_equal(apply(&f, idx), 2); /* a known count and an unknown "some" */
    memset(&f, 0, sizeof f);
    f.since_ms = 5000;
    assert_int_equal(apply(&f, idx), 2);
    f.until_ms = 9000;                   /* [since, until) */
    assert_int_equal(apply(&f, idx), 1);
    assert_int_equal(idx[0], 1);
    memset(&f, 0, sizeof f);
    snprintf(f.search, sizeof f.search, "s-2");
    assert_int_equal(apply(&f, idx), 1);
    snprintf(f.search, sizeof f.search, "ACTIVE");
    assert_int_equal(apply(&f, idx), 2);
    snprintf(f.search, sizeof f.search, "nobody");
    assert_int_equal(apply(&f, idx), 0);
}

static void typed_times(void **state)
{
    (void)state;
    int64_t now = 1800000000000, t;
    assert_int_equal(tui_parse_time("15m", now, &t), 0);
    assert_int_equal(t, now - 15 * 60000);
    assert_int_equal(tui_parse_time(" 2h", now, &t), 0);
    assert_int_equal(t, now - 2 * 3600000);
    assert_int_equal(tui_parse_time("3d", now, &t), 0);
    assert_int_equal(t, now - 3 * 86400000LL);
    assert_int_equal(tui_parse_time("30s", now, &t), 0);
    assert_int_equal(t, now - 30000);
    assert_int_equal(tui_parse_time("2026-11-26", now, &t), 0);
    assert_int_equal(t, 1795651200000LL);
    assert_int_equal(tui_parse_time("2026-11-26 10:30", now, &t), 0);
    assert_int_equal(t, 1795651200000LL + 10 * 3600000 + 30 * 60000);
    assert_int_equal(tui_parse_time("2026-11-26T10:30", now, &t), 0);
    static const char *const bad[] = {"", "yesterday", "5", "5y", "-3h", "2026-13-01", "2026-11-26 25:00",
                                      "2026-11-26x", "1969-01-01", "999999d"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (tui_parse_time(bad[i], now, &t) != -1)
            fail_msg("[%s] parsed", bad[i]);
}

static void durations(void **state)
{
    (void)state;
    char b[32];
    tui_format_duration(45000, b, sizeof b);
    assert_string_equal(b, "45s");
    tui_format_duration(65000, b, sizeof b);
    assert_string_equal(b, "1m05s");
    tui_format_duration(3720000, b, sizeof b);
    assert_string_equal(b, "1h02m");
    tui_format_duration(3 * 86400000LL + 4 * 3600000, b, sizeof b);
    assert_string_equal(b, "3d04h");
    tui_format_duration(-5, b, sizeof b);
    assert_string_equal(b, "0s");
}

static void columns_fit_the_width(void **state)
{
    (void)state;
    const struct tui_column cols[] = {
        {"USER", 6, 12, 1}, {"CONN", 6, 12, 1}, {"STARTED", 11, 11, 0}, {"ID", 36, 36, 0}};
    int w[TUI_MAX_COLUMNS];
    /* wide: every column at its wish, the rest shared by the flex ones */
    assert_int_equal(tui_layout_columns(cols, 4, 200, w), 4);
    assert_int_equal(w[2], 11);
    assert_int_equal(w[3], 36);
    assert_int_equal(w[0] + w[1] + w[2] + w[3] + 3, 200);
    /* 80 columns: the ID no longer fits even at its minimum and is dropped */
    assert_int_equal(tui_layout_columns(cols, 4, 60, w), 3);
    assert_int_equal(w[3], 0);
    assert_int_equal(w[0] + w[1] + w[2] + 2, 60);
    /* just the minimums */
    assert_int_equal(tui_layout_columns(cols, 4, 25, w), 3);
    assert_int_equal(w[0], 6);
    assert_int_equal(w[1], 6);
    assert_int_equal(w[2], 11);
    /* tiny: the first column alone, clipped */
    assert_int_equal(tui_layout_columns(cols, 4, 4, w), 1);
    assert_int_equal(w[0], 4);
    assert_int_equal(w[1], 0);
}

static void scrolling(void **state)
{
    (void)state;
    assert_int_equal(tui_scroll_for(0, 0, 10, 100), 0);
    assert_int_equal(tui_scroll_for(9, 0, 10, 100), 0);
    assert_int_equal(tui_scroll_for(10, 0, 10, 100), 1);
    assert_int_equal(tui_scroll_for(5, 8, 10, 100), 5);
    assert_int_equal(tui_scroll_for(99, 0, 10, 100), 90);
    /* the list shrank under a scrolled view: no empty space at the end */
    assert_int_equal(tui_scroll_for(3, 50, 10, 12), 2);
    assert_int_equal(tui_scroll_for(0, 5, 10, 3), 0);
}

static void pretty(const char *sql, int width, const char *expected)
{
    struct buf b = {0};
    assert_int_equal(tui_sql_pretty(sql, width, &b), 0);
    if (strcmp(buf_cstr(&b), expected) != 0)
        fail_msg("pretty(%s):\n%s\nexpected:\n%s", sql, buf_cstr(&b), expected);
    buf_free(&b);
}

static void sql_pretty_printing(void **state)
{
    (void)state;
    pretty("select a, b from t where a = 1 order by b", 80,
           "select a, b\nfrom t\nwhere a = 1\norder by b");
    pretty("SELECT u.id, count(*) FROM users u LEFT JOIN orders o ON o.uid = u.id GROUP BY u.id", 80,
           "SELECT u.id, count(*)\nFROM users u\nLEFT JOIN orders o\nON o.uid = u.id\nGROUP BY u.id");
    pretty("delete from t where id in (select id from u where x)", 80,
           "delete from t\nwhere id in (\n  select id\n  from u\n  where x)");
    pretty("insert into t (a, b) values ($1, 'it''s   a   string') on conflict do nothing", 80,
           "insert into t (a, b)\nvalues ($1, 'it''s   a   string')\non conflict do nothing");
    /* quoted text, identifiers, dollar quotes and comments are kept whole */
    pretty("select \"Weird  Col\", $$ from  where $$ from x", 80,
           "select \"Weird  Col\", $$ from  where $$\nfrom x");
    pretty("select 1 -- from here\nfrom t", 80, "select 1 -- from here\nfrom t");
    pretty("select /* where */ 1", 80, "select /* where */ 1");
    /* wrapping at the width, continuation indented */
    pretty("select aaaaaaaaaa, bbbbbbbbbb, cccccccccc, dddddddddd from t", 24,
           "select aaaaaaaaaa,\n    bbbbbbbbbb,\n    cccccccccc,\n    dddddddddd\nfrom t");
    pretty("", 80, "");
    pretty("   ", 80, "");
    /* an unterminated quote does not run past the end */
    pretty("select 'abc", 80, "select 'abc");
}

/* Every character of a statement is in the pane: a line wider than it goes
 * on below after the wrap mark, inside a token too, at any width. */
static void sql_pretty_shows_everything(void **state)
{
    (void)state;
    /* a DO body is one token: it is wrapped, never cut at the edge */
    pretty("DO $$BEGIN x;          DELETE FROM orders; END$$", 20,
           "DO\n    $$BEGIN x;      \n" TUI_WRAP_MARK "    DELETE FROM or\n" TUI_WRAP_MARK "ders; END$$");
    /* below the old 20-column floor */
    pretty("select abcdefgh", 6, "select\n   abc\n" TUI_WRAP_MARK "defg\n" TUI_WRAP_MARK "h");
    pretty("ab", 1, "a\n" TUI_WRAP_MARK "b");
    /* wide characters are not split across the edge */
    pretty("'\xe4\xb8\x80\xe4\xb8\x80\xe4\xb8\x80'", 6,
           "'\xe4\xb8\x80\xe4\xb8\x80\n" TUI_WRAP_MARK "\xe4\xb8\x80'");
    /* what draws nothing is escaped, and counted as wide as it is shown */
    pretty("select 'paid\xe2\x80\x8b'", 80, "select 'paid\\u200b'");
    pretty("select 'a\x1b[2Jb'", 14, "select\n    'a\\x1b[2Jb\n" TUI_WRAP_MARK "'");
    /* deep nesting does not indent past half the width */
    struct buf b = {0};
    assert_int_equal(tui_sql_pretty("select ((((((((((((((((((((a))))))))))))))))))))", 20, &b), 0);
    for (const char *l = buf_cstr(&b); *l;) {
        size_t n = strcspn(l, "\n");
        assert_true(n <= 20);
        l += n + (l[n] == '\n');
    }
    buf_free(&b);
    assert_int_equal(tui_hard_wrap("abcdef\nxy", 4, &b), 0);
    assert_string_equal(buf_cstr(&b), "abcd\n" TUI_WRAP_MARK "ef\nxy");
    buf_free(&b);
}

/* Tokens are where PostgreSQL's scanner puts them. */
static void sql_pretty_tokens_as_postgres(void **state)
{
    (void)state;
    /* a '$' continues a name: x$a$ is an identifier, not the start of a dollar quote */
    pretty("delete from t; select 1 as x$a$; delete from orders; select 1 as y$a$;", 80,
           "delete from t;\nselect 1 as x$a$;\ndelete from orders;\nselect 1 as y$a$;");
    pretty("delete from t where 0 = (select 0 as x$a$); drop table orders; select 1 as y$a$)", 80,
           "delete from t\nwhere 0 = (\n  select 0 as x$a$);\ndrop table orders;\nselect 1 as y$a$)");
    /* where no name goes on, $a$ is a dollar quote, its tag may be any letter */
    pretty("select $a$ from x $a$ from t", 80, "select $a$ from x $a$\nfrom t");
    pretty("select \xc3\xa9$q$ from $q$", 80, "select \xc3\xa9$q$\nfrom $q$");
    pretty("select $\xc3\xa9$ from $\xc3\xa9$ from t", 80, "select $\xc3\xa9$ from $\xc3\xa9$\nfrom t");
    pretty("select x.$a$ from $a$", 80, "select x.$a$ from $a$");
    /* block comments nest, and */ /* is never shown as * / */
    pretty("delete from orders /* keep: /* OPS-12 */ where id = 5 */;", 80,
           "delete from orders /* keep: /* OPS-12 */ where id = 5 */;");
    pretty("select 1 /* a /* b */", 80, "select 1 /* a /* b */");
    /* an E'' string: \' does not end it */
    pretty("select E'\\''; delete from orders; select ''", 80,
           "select E'\\'';\ndelete from orders;\nselect ''");
    pretty("select e'a\\'b' from t", 80, "select e'a\\'b'\nfrom t");
    /* operators are written as they were */
    pretty("select a >= 1, b||c, -1, a <> b, x->>'k' from t", 80,
           "select a >= 1, b||c, -1, a <> b, x->>'k'\nfrom t");
    pretty("select 2*/*c*/3", 80, "select 2*/*c*/ 3");
}

static struct tui_session_row row_id(const char *id)
{
    struct tui_session_row r = {0};
    snprintf(r.id, sizeof r.id, "%s", id);
    return r;
}

static void ids_are(const struct tui_session_row *r, int n, const char *want)
{
    char got[256] = "";
    size_t used = 0;
    for (int i = 0; i < n; i++) {
        size_t len = strlen(r[i].id);
        assert_true(used + len + 2 < sizeof got);
        if (i)
            got[used++] = ' ';
        memcpy(got + used, r[i].id, len + 1);
        used += len;
    }
    assert_string_equal(got, want);
}

/* A refresh of the first page keeps the pages loaded by scrolling. */
static void refreshed_first_page_joins_loaded_pages(void **state)
{
    (void)state;
    /* loaded: two pages of two, newest first */
    struct tui_session_row old[] = {row_id("d"), row_id("c"), row_id("b"), row_id("a")};
    struct tui_session_row *out;
    bool kept;
    /* two new sessions pushed c and d down: the fresh page ends at d */
    struct tui_session_row fresh[] = {row_id("f"), row_id("e"), row_id("d")};
    int n = tui_sessions_merge(fresh, 2, old, 4, &out, &kept);
    /* e is not in old: nothing known joins on */
    assert_int_equal(n, 2);
    assert_false(kept);
    ids_are(out, n, "f e");
    free(out);
    struct tui_session_row fresh2[] = {row_id("e"), row_id("d")};
    n = tui_sessions_merge(fresh2, 2, old, 4, &out, &kept);
    assert_true(kept);
    ids_are(out, n, "e d c b a");
    free(out);
    /* nothing new: the same list */
    struct tui_session_row same[] = {row_id("d"), row_id("c")};
    n = tui_sessions_merge(same, 2, old, 4, &out, &kept);
    assert_true(kept);
    ids_are(out, n, "d c b a");
    free(out);
    /* an empty fresh page (no sessions any more), or nothing loaded before */
    n = tui_sessions_merge(NULL, 0, old, 4, &out, &kept);
    assert_false(kept);
    ids_are(out, n, "");
    free(out);
    n = tui_sessions_merge(fresh2, 2, NULL, 0, &out, &kept);
    assert_false(kept);
    ids_are(out, n, "e d");
    free(out);
}

static struct tui_session_row row_events(const char *id, int events)
{
    struct tui_session_row r = row_id(id);
    r.events = events;
    return r;
}

/* A page fetched again from the middle of the list replaces its rows in
 * place, by id, and never changes the list's shape. */
static void page_refreshed_in_place(void **state)
{
    (void)state;
    struct tui_session_row list[] = {row_events("f", 1), row_events("e", 1), row_events("d", 1),
                                     row_events("c", 1), row_events("b", 1), row_events("a", 1)};
    /* the page after e: d ended meanwhile with more events, c is gone from
     * the server, x arrived late (not in the list here), b and a changed */
    struct tui_session_row fresh[] = {row_events("d", 7), row_events("x", 9), row_events("b", 5),
                                      row_events("a", 4)};
    assert_int_equal(tui_sessions_update(list, 6, 2, fresh, 4), 3);
    ids_are(list, 6, "f e d c b a");
    int want[] = {1, 1, 7, 1, 5, 4};
    for (int i = 0; i < 6; i++)
        assert_int_equal(list[i].events, want[i]);
    /* rows before `from` are never touched, even when the page holds them */
    struct tui_session_row again[] = {row_events("f", 8), row_events("a", 6)};
    assert_int_equal(tui_sessions_update(list, 6, 1, again, 2), 1);
    assert_int_equal(list[0].events, 1);
    assert_int_equal(list[5].events, 6);
    /* nothing to do: an empty page, a start past the end */
    assert_int_equal(tui_sessions_update(list, 6, 0, NULL, 0), 0);
    assert_int_equal(tui_sessions_update(list, 6, 6, fresh, 4), 0);
}

/* A review's requester: the verified subject first, the display name (which
 * a user may edit at the IdP) after it, its blanks run together, so that a
 * name cannot push the subject out of a cut column or prompt. */
static void requester_is_the_subject_first(void **state)
{
    (void)state;
    static const struct { const char *sub, *name, *want; } cases[] = {
        {"carol", "Carol", "carol (Carol)"},
        {"alice", "alice", "alice"},
        {"alice", "", "alice"},
        {"mallory", "Alice (alice)                           \t\n x", "mallory (Alice (alice) x)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *o = json_pack("{s:s, s:s, s:s}", "id", "r1", "requester", cases[i].sub, "requester_name",
                              cases[i].name);
        struct tui_review r;
        assert_int_equal(tui_review_from_json(o, &r), 0);
        assert_string_equal(r.requester, cases[i].want);
        tui_review_clear(&r);
        json_decref(o);
    }
}

static void wrap_long_lines(void **state)
{
    (void)state;
    struct buf b = {0};
    /* a parameter's value goes on behind the mark, which no value can draw:
     * a value cannot pass a line of its own off as the next parameter */
    assert_int_equal(tui_hard_wrap("  $1 = 'abcdefgh  $2 = 'x'\n  $2 = NULL\n", 16, &b), 0);
    assert_string_equal(buf_cstr(&b), "  $1 = 'abcdefgh\n" TUI_WRAP_MARK "  $2 = 'x'\n  $2 = NULL\n");
    buf_free(&b);
    /* a character is never split */
    assert_int_equal(tui_hard_wrap("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 8, &b), 0);
    assert_string_equal(buf_cstr(&b), "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\n" TUI_WRAP_MARK "\xc3\xa9");
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wrap_long_lines),
        cmocka_unit_test(requester_is_the_subject_first),
        cmocka_unit_test(filters),
        cmocka_unit_test(typed_times),
        cmocka_unit_test(durations),
        cmocka_unit_test(columns_fit_the_width),
        cmocka_unit_test(scrolling),
        cmocka_unit_test(sql_pretty_printing),
        cmocka_unit_test(sql_pretty_shows_everything),
        cmocka_unit_test(sql_pretty_tokens_as_postgres),
        cmocka_unit_test(refreshed_first_page_joins_loaded_pages),
        cmocka_unit_test(page_refreshed_in_place),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
