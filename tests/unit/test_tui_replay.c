/* test_tui_replay.c — recorded sessions into replay scripts: parsing and its
 * refusals, what psql printed per statement, markers, idle-gap capping and
 * --from, and the player's keys (pause, speed, next/previous). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hoopctl/replay.h"

static const char *const session_doc =
    "{\"session\":{\"id\":\"s-1\",\"user\":\"alice\",\"connection\":\"prod\",\"database\":\"app\"},"
    "\"events\":["
    "{\"type\":\"session_start\",\"ts\":1000000,\"data\":{}},"
    "{\"type\":\"statement\",\"ts\":1000500,\"data\":{\"sql\":\"select id, email\\nfrom users;\","
    "\"decision\":\"mask\",\"rule\":\"pii\",\"duration_ms\":20,\"masked\":1}},"
    "{\"type\":\"result\",\"ts\":1000520,\"data\":{\"columns\":[{\"name\":\"id\",\"type_oid\":23},"
    "{\"name\":\"email\",\"type_oid\":25}],\"rows\":[[\"1\",\"***\"]]}},"
    "{\"type\":\"statement\",\"ts\":1060000,\"data\":{\"sql\":\"drop table users;\",\"decision\":\"deny\","
    "\"rule\":\"no-ddl\",\"error\":{\"severity\":\"ERROR\",\"message\":\"denied by policy\"}}},"
    "{\"type\":\"statement\",\"ts\":1061000,\"data\":{\"sql\":\"delete from t;\",\"decision\":\"review\","
    "\"rule\":\"writes\",\"duration_ms\":9000,\"command_tag\":\"DELETE 3\",\"notices\":[\"waiting\"],"
    "\"review\":{\"id\":\"r-9\",\"status\":\"approved\",\"decided_by\":\"bob\"}}},"
    "{\"type\":\"session_end\",\"ts\":1090000,\"data\":{}}]}";

static void load(struct replay_session *s)
{
    char err[256];
    assert_int_equal(replay_session_from_json(session_doc, strlen(session_doc), s, err, sizeof err), 0);
}

/* What replay prints for one statement equals expected. */
static void expect_output(const struct replay_statement *st, int markers, const char *expected)
{
    struct buf b = {0};
    assert_int_equal(replay_statement_output(st, markers, &b), 0);
    assert_string_equal(buf_cstr(&b), expected);
    buf_free(&b);
}

static void parses_statements_and_results(void **state)
{
    (void)state;
    struct replay_session s;
    load(&s);
    assert_string_equal(s.id, "s-1");
    assert_string_equal(s.user, "alice");
    assert_int_equal(s.nstatements, 3);
    assert_int_equal(s.started_ms, 1000000);
    assert_int_equal(s.ended_ms, 1090000);
    assert_string_equal(s.state, "ended");
    assert_int_equal(s.statements[0].ncols, 2);
    assert_int_equal(s.statements[0].rows, 1);
    assert_string_equal(s.statements[0].cells[1], "***");
    assert_string_equal(s.statements[1].decision, "deny");
    assert_int_equal(replay_session_count(&s, "deny"), 1);
    assert_int_equal(replay_session_count(&s, "review"), 1);
    replay_session_free(&s);
}

/* What `hoopctl -o json sessions show ID` writes: the session's fields at the
 * top ("events" is their count there) and its events in "event_list". */
static void reads_sessions_show_json(void **state)
{
    (void)state;
    static const char doc[] =
        "{\"id\":\"s-2\",\"user\":\"alice\",\"connection\":\"prod\",\"started_at\":1000000,"
        "\"ended_at\":1090000,\"events\":3,\"has_denials\":true,\"event_list\":["
        "{\"seq\":1,\"type\":\"statement\",\"time\":1000500,\"data\":{\"text\":\"select 1 as a;\"}},"
        "{\"seq\":2,\"type\":\"result\",\"time\":1000520,\"data\":{\"statement_seq\":1,"
        "\"columns\":[\"a\"],\"column_types\":[23],\"rows\":[[\"1\"]],\"command_tag\":\"SELECT 1\"}},"
        "{\"seq\":3,\"type\":\"statement\",\"time\":1060000,\"data\":{\"text\":\"drop table t;\","
        "\"decision\":\"deny\",\"rule\":\"no-ddl\"}}]}";
    struct replay_session s;
    char err[256] = "";
    if (replay_session_from_json(doc, strlen(doc), &s, err, sizeof err) != 0)
        fail_msg("sessions show's JSON refused: %s", err);
    assert_string_equal(s.id, "s-2");
    assert_string_equal(s.user, "alice");
    assert_string_equal(s.connection, "prod");
    assert_int_equal(s.started_ms, 1000000);
    assert_int_equal(s.ended_ms, 1090000);
    assert_string_equal(s.state, "ended");
    assert_int_equal(s.nstatements, 2);
    assert_int_equal(s.statements[0].ncols, 1);
    assert_string_equal(s.statements[0].command_tag, "SELECT 1");
    assert_string_equal(s.statements[1].decision, "deny");
    replay_session_free(&s);
}

static void refuses_malformed_documents(void **state)
{
    (void)state;
    static const struct {
        const char *doc, *why;
    } bad[] = {
        {"not json", "not JSON"},
        {"[]", "JSON object"},
        {"{\"session\":{}}", "events"},
        {"{\"id\":\"s\",\"events\":3}", "event_list"},
        {"{\"id\":\"s\",\"event_list\":{}}", "events"},
        {"{\"events\":[{\"ts\":1}]}", "no \"type\""},
        {"{\"events\":[{\"type\":\"statement\",\"data\":{}}]}", "without \"sql\""},
        {"{\"events\":[{\"type\":\"result\",\"data\":{\"columns\":[\"a\"]}}]}", "before its statement"},
        {"{\"events\":[{\"type\":\"statement\",\"data\":{\"sql\":\"x\"}},{\"type\":\"result\","
         "\"data\":{\"columns\":[\"a\",\"b\"],\"rows\":[[\"1\"]]}}]}",
         "does not have 2 values"},
        {"{\"events\":[{\"type\":\"statement\",\"data\":\"x\"}]}", "not an object"},
        {"{\"events\":[],\"events\":[]}", "duplicate"},
        {"{\"events\":[{\"type\":\"statement\",\"data\":{\"sql\":\"x\"}},{\"type\":\"result\","
         "\"data\":{\"columns\":[]}}]}",
         "0 columns"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct replay_session s;
        char err[256] = "";
        assert_int_equal(replay_session_from_json(bad[i].doc, strlen(bad[i].doc), &s, err, sizeof err), -1);
        if (!strstr(err, bad[i].why))
            fail_msg("doc %zu: error [%s] does not say [%s]", i, err, bad[i].why);
        assert_int_equal(s.nstatements, 0);
        assert_null(s.statements);
    }
}

static void output_as_psql_prints_it(void **state)
{
    (void)state;
    struct replay_session s;
    load(&s);
    expect_output(&s.statements[1], 1, "ERROR:  denied by policy\n[hoopctl] denied by rule no-ddl\n");
    expect_output(&s.statements[1], 0, "ERROR:  denied by policy\n");
    expect_output(&s.statements[2], 1,
                  "NOTICE:  waiting\n[hoopctl] held for review r-9 (rule writes): approved by bob\nDELETE 3\n");
    expect_output(&s.statements[0], 1,
                  " id | email \n----+-------\n  1 | ***\n(1 row)\n\n[hoopctl] 1 value masked (rule pii)\n");
    replay_session_free(&s);
}

static void command_tags_when_not_recorded(void **state)
{
    (void)state;
    static const struct {
        const char *sql;
        int64_t rows;
        const char *tag;
    } cases[] = {
        {"insert into t values (1)", 1, "INSERT 0 1"},
        {"  -- note\n UPDATE t SET x = 1", 4, "UPDATE 4"},
        {"delete from t", -1, "DELETE 0"},
        {"create table t (id int)", -1, "CREATE TABLE"},
        {"create unique index i on t (id)", -1, "CREATE INDEX"},
        {"create or replace function f() returns int as 'select 1' language sql", -1,
         "CREATE FUNCTION"},
        {"drop view v", -1, "DROP VIEW"},
        {"begin", -1, "BEGIN"},
        {"end", -1, "COMMIT"},
        {"set search_path = x", -1, "SET"},
        {"select 1", 1, ""},
        {"with x as (select 1) select * from x", 1, ""},
        {"", -1, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char tag[64];
        replay_command_tag(cases[i].sql, cases[i].rows, tag, sizeof tag);
        if (strcmp(tag, cases[i].tag) != 0)
            fail_msg("[%s]: tag [%s], expected [%s]", cases[i].sql, tag, cases[i].tag);
    }
}

static void server_event_shapes(void **state)
{
    (void)state;
    /* as GET /api/v1/sessions/ID/events returns them: time, text, duration_us,
     * error as a string, masked_counts, review_id, results by statement_seq */
    const char *doc =
        "{\"session\":{\"id\":\"s9\",\"user\":\"alice\",\"connection\":\"prod\","
        "\"started_at\":5000,\"ended_at\":null},\"events\":["
        "{\"seq\":1,\"type\":\"session_start\",\"time\":5000,\"data\":{\"connection\":\"prod\","
        "\"database\":\"shop\"}},"
        "{\"seq\":2,\"type\":\"statement\",\"time\":6000,\"data\":{\"text\":\"select a from t\","
        "\"decision\":\"mask\",\"duration_us\":2500,\"masked_counts\":{\"a\":2,\"b\":1}}},"
        "{\"seq\":3,\"type\":\"statement\",\"time\":7000,\"data\":{\"text\":\"delete from t\","
        "\"decision\":\"review\",\"review_id\":\"r-1\",\"rows\":2}},"
        "{\"seq\":4,\"type\":\"result\",\"time\":6003,\"data\":{\"statement_seq\":2,"
        "\"columns\":[{\"name\":\"a\",\"type_oid\":25}],\"rows\":[[\"x\"],[null]]}},"
        "{\"seq\":5,\"type\":\"statement\",\"time\":8000,\"data\":{\"text\":\"drop table t\","
        "\"decision\":\"deny\",\"rule\":\"no-ddl\",\"error\":\"denied by no-ddl\"}}]}";
    struct replay_session s;
    char err[256] = "";
    assert_int_equal(replay_session_from_json(doc, strlen(doc), &s, err, sizeof err), 0);
    assert_string_equal(s.database, "shop");
    assert_string_equal(s.state, "active");
    assert_int_equal(s.nstatements, 3);
    assert_int_equal(s.statements[0].ts_ms, 6000);
    assert_int_equal(s.statements[0].duration_ms, 2);
    assert_int_equal(s.statements[0].masked, 3);
    assert_int_equal(s.statements[0].nrows, 2);  /* the result named statement seq 2 */
    assert_int_equal(s.statements[1].ncols, 0);
    assert_string_equal(s.statements[1].review_id, "r-1");
    expect_output(&s.statements[1], 1, "[hoopctl] held for review r-1\nDELETE 2\n");
    expect_output(&s.statements[2], 1, "ERROR:  denied by no-ddl\n[hoopctl] denied by rule no-ddl\n");
    replay_session_free(&s);
}

static void gaps_are_capped(void **state)
{
    (void)state;
    assert_int_equal(replay_cap_gap(500, 2000), 500);
    assert_int_equal(replay_cap_gap(2000, 2000), 2000);
    assert_int_equal(replay_cap_gap(59500, 2000), 2000);
    assert_int_equal(replay_cap_gap(-40, 2000), 0);
}

static void script_timing_and_from(void **state)
{
    (void)state;
    struct replay_session s;
    load(&s);
    struct replay_script sc;
    char err[128];
    struct replay_options o = {.markers = 1};
    assert_int_equal(replay_script_build(&s, &o, &sc, err, sizeof err), 0);
    /* prompt, then (typed, output) per statement */
    assert_int_equal(sc.nframes, 7);
    assert_string_equal(sc.frames[0].text, "app=> ");
    assert_string_equal(sc.frames[1].text, "select id, email\napp-> from users;\n");
    assert_int_equal(sc.frames[1].at_ms, 500);        /* 500 ms after the start */
    assert_int_equal(sc.frames[2].at_ms, 520);        /* ran 20 ms */
    assert_int_equal(sc.frames[3].at_ms, 2520);       /* 59.5 s idle, capped at 2 s */
    assert_int_equal(sc.frames[4].at_ms, 2520);
    assert_int_equal(sc.frames[5].at_ms, 3520);       /* 1 s later */
    assert_int_equal(sc.frames[6].at_ms, 5520);       /* a 9 s review hold, capped */
    assert_true(strstr(sc.frames[6].text, "DELETE 3\napp=> ") != NULL);
    assert_int_equal(sc.first_frame[0], 1);
    assert_int_equal(sc.first_frame[2], 5);
    replay_script_free(&sc);

    o.no_timing = 1;
    o.from_statement = 2;
    assert_int_equal(replay_script_build(&s, &o, &sc, err, sizeof err), 0);
    assert_int_equal(sc.nframes, 5);
    assert_string_equal(sc.frames[1].text, "drop table users;\n");
    for (int i = 0; i < sc.nframes; i++)
        assert_int_equal(sc.frames[i].at_ms, 0);
    replay_script_free(&sc);

    o.from_statement = 4;
    assert_int_equal(replay_script_build(&s, &o, &sc, err, sizeof err), -1);
    assert_non_null(strstr(err, "has 3 statements"));
    replay_session_free(&s);
}

static void player_keys(void **state)
{
    (void)state;
    struct replay_session s;
    load(&s);
    struct replay_script sc;
    char err[128];
    struct replay_options o = {.markers = 1};
    assert_int_equal(replay_script_build(&s, &o, &sc, err, sizeof err), 0);
    struct replay_player p;
    replay_player_init(&p, &sc, 1.0);
    assert_int_equal(replay_player_delay(&p, 3), 2000);
    assert_int_equal(replay_player_key(&p, '+'), REPLAY_KEY_SPEED_CHANGED);
    assert_int_equal(replay_player_delay(&p, 3), 1000);
    for (int i = 0; i < 20; i++)
        replay_player_key(&p, '+');
    assert_true(p.speed == REPLAY_SPEED_MAX);
    for (int i = 0; i < 20; i++)
        replay_player_key(&p, '-');
    assert_true(p.speed == REPLAY_SPEED_MIN);
    assert_int_equal(replay_player_delay(&p, 3), 8000);
    assert_int_equal(replay_player_key(&p, ' '), REPLAY_KEY_PAUSE_TOGGLED);
    assert_true(p.paused);
    replay_player_key(&p, ' ');
    assert_false(p.paused);

    /* nothing typed yet: n shows the first statement's echo, then the next */
    assert_int_equal(replay_player_key(&p, 'n'), REPLAY_KEY_JUMP);
    assert_int_equal(p.next_frame, 2);
    assert_int_equal(replay_player_key(&p, 'n'), REPLAY_KEY_JUMP);
    assert_int_equal(p.next_frame, 4);
    assert_int_equal(replay_player_key(&p, 'n'), REPLAY_KEY_JUMP);
    assert_int_equal(p.next_frame, 6);
    assert_int_equal(replay_player_key(&p, 'n'), REPLAY_KEY_JUMP); /* past the last: the rest */
    assert_int_equal(p.next_frame, 7);
    /* p restarts the statement on screen, then goes back one at a time */
    assert_int_equal(replay_player_key(&p, 'p'), REPLAY_KEY_REWIND);
    assert_int_equal(p.next_frame, 6);
    assert_int_equal(replay_player_key(&p, 'p'), REPLAY_KEY_REWIND);
    assert_int_equal(p.next_frame, 4);
    replay_player_key(&p, 'p');
    replay_player_key(&p, 'p');
    assert_int_equal(p.next_frame, 2); /* never before the first statement */
    assert_int_equal(replay_player_key(&p, 'q'), REPLAY_KEY_QUIT);
    assert_int_equal(replay_player_key(&p, 3), REPLAY_KEY_QUIT);
    assert_int_equal(replay_player_key(&p, 'z'), REPLAY_KEY_NONE);
    replay_script_free(&sc);
    replay_session_free(&s);
}

static void plays_without_keys_and_writes_asciicast(void **state)
{
    (void)state;
    struct replay_session s;
    load(&s);
    struct replay_script sc;
    char err[128];
    struct replay_options o = {.markers = 1, .no_timing = 1};
    assert_int_equal(replay_script_build(&s, &o, &sc, err, sizeof err), 0);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_int_equal(replay_play(&sc, 1.0, f, -1), 0);
    fclose(f);
    assert_non_null(strstr(text, "app=> drop table users;\nERROR:  denied by policy\n"));
    free(text);
    replay_script_free(&sc);

    o.no_timing = 0;
    assert_int_equal(replay_script_build(&s, &o, &sc, err, sizeof err), 0);
    f = open_memstream(&text, &len);
    assert_int_equal(replay_write_asciicast(&sc, &s, 2.0, 80, 24, f), 0);
    fclose(f);
    /* header, then one event per frame, at half the recorded times */
    int lines = 0;
    for (char *p = text; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 1 + sc.nframes);
    assert_non_null(strstr(text, "[1.26,\"o\",\"drop table users;\\r\\n\"]"));
    free(text);
    replay_script_free(&sc);
    replay_session_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_statements_and_results),
        cmocka_unit_test(reads_sessions_show_json),
        cmocka_unit_test(refuses_malformed_documents),
        cmocka_unit_test(output_as_psql_prints_it),
        cmocka_unit_test(command_tags_when_not_recorded),
        cmocka_unit_test(server_event_shapes),
        cmocka_unit_test(gaps_are_capped),
        cmocka_unit_test(script_timing_and_from),
        cmocka_unit_test(player_keys),
        cmocka_unit_test(plays_without_keys_and_writes_asciicast),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
