/* test_policy_guard.c — a session's policy at the gateway's hook points
 * (policy_guard.h): statement kinds without SQL, the DDL state that keeps
 * the catalog out of masking until the session is idle outside a
 * transaction block, fail-closed filters, and COPY formats that cannot be
 * masked. The catalog's side connection points at nothing here, as when
 * the database refuses it: the guard must then mask, never pass. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "hoopctl/policy_guard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NO_CATALOG "host=/nonexistent-hoopctl-test port=1 connect_timeout=1"

static struct policy *policy;

static int setup(void **state)
{
    (void)state;
    char err[POLICY_ERR_MAX];
    json_t *doc = json_loads("{\"rules\": [{\"match\": {}, \"action\": \"allow\"}],"
                             " \"masking\": {\"columns\": [{\"column\": \"public.users.email\", \"style\": \"full\"}]}}",
                             0, NULL);
    policy = doc ? policy_load_json(doc, err) : NULL;
    json_decref(doc);
    return policy ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    policy_free(policy);
    return 0;
}

/* Judge and admit sql as the next statement id; returns where upstream's
 * answer to its first statement is (the gateway's answer position). */
static struct gateway_session_info run(struct policy_guard *g, const char *sql)
{
    static uint64_t next_id;
    assert_int_equal(policy_guard_decide(g, GATEWAY_STATEMENT_SIMPLE, sql, NULL), 0);
    assert_int_not_equal(g->decision.action, POLICY_DENY);
    assert_int_equal(policy_guard_admit(g, NULL, ++next_id), 0);
    return (struct gateway_session_info){.answer_id = next_id};
}

static void test_kinds_without_sql(void **state)
{
    (void)state;
    struct policy_guard g;
    assert_int_equal(policy_guard_init(&g, policy, NO_CATALOG, "test", "session 1"), 0);
    assert_int_equal(policy_guard_decide(&g, GATEWAY_STATEMENT_FUNCTION_CALL, "", NULL), 0);
    assert_int_equal(g.decision.action, POLICY_DENY);
    assert_string_equal(g.decision.rule_name, "function-call");
    /* an Execute whose SQL the gateway does not know is refused, never guessed */
    assert_int_equal(policy_guard_decide(&g, GATEWAY_STATEMENT_EXECUTE, NULL, NULL), 0);
    assert_int_equal(g.decision.action, POLICY_DENY);
    assert_string_equal(g.decision.rule_name, "untracked-portal");
    assert_false(g.have_analysis);
    struct gateway_forget f;
    policy_guard_forget_names(&g, &f);
    assert_false(f.statements || f.portals || f.statement || f.portal);
    policy_guard_free(&g);
}

static bool forget_cached; /* the last forget_for's decision came from the cache */

/* What a statement may define or drop behind the protocol's back. */
static void forget_for(const char *sql, bool statements, const char *statement, bool portals, const char *portal)
{
    struct policy_guard g;
    assert_int_equal(policy_guard_init(&g, policy, NO_CATALOG, "test", "session f"), 0);
    static const char *const groups[] = {"dev", NULL};
    assert_int_equal(policy_guard_decide(&g, GATEWAY_STATEMENT_SIMPLE, sql, groups), 0);
    forget_cached = g.decision.cached;
    struct gateway_forget f;
    policy_guard_forget_names(&g, &f);
    if (f.statements != statements || f.portals != portals || (f.statement == NULL) != (statement == NULL) ||
        (f.portal == NULL) != (portal == NULL) || (statement && strcmp(f.statement, statement) != 0) ||
        (portal && strcmp(f.portal, portal) != 0))
        fail_msg("%s: forget statements=%d statement=%s portals=%d portal=%s", sql, f.statements,
                 f.statement ? f.statement : "-", f.portals, f.portal ? f.portal : "-");
    policy_guard_free(&g);
}

static void test_forget_names(void **state)
{
    (void)state;
    forget_for("select 1", false, NULL, false, NULL);
    forget_for("begin", false, NULL, false, NULL);
    forget_for("savepoint a", false, NULL, false, NULL);
    forget_for("prepare s as select 1", false, "s", false, NULL);
    forget_for("deallocate s", false, "s", false, NULL);
    forget_for("deallocate all", true, NULL, false, NULL);
    forget_for("prepare a as select 1; prepare b as select 2", true, NULL, false, NULL);
    forget_for("declare p cursor for select 1", false, NULL, false, "p");
    forget_for("close p", false, NULL, false, "p");
    forget_for("close all", false, NULL, true, NULL);
    forget_for("commit", false, NULL, true, NULL);
    forget_for("commit", false, NULL, true, NULL); /* again: from the decision cache */
    assert_true(forget_cached);
    forget_for("end", false, NULL, true, NULL);
    forget_for("rollback to savepoint a", false, NULL, true, NULL);
    forget_for("prepare transaction 'x'", false, NULL, true, NULL);
    forget_for("discard all", true, NULL, true, NULL);
    forget_for("do $$ begin perform 1; end $$", true, NULL, true, NULL);
    forget_for("select 1; close p; commit", false, NULL, true, NULL);
}

/* Whether a FETCH of name is judged by a DECLARE the guard remembers. */
static bool cursor_known(struct policy_guard *g, const char *name)
{
    char sql[128];
    snprintf(sql, sizeof sql, "fetch 1 from %s", name);
    assert_int_equal(policy_guard_decide(g, GATEWAY_STATEMENT_SIMPLE, sql, NULL), 0);
    assert_true(g->have_analysis);
    return !(g->analysis.stmts[0].facts & POLICY_FACT_UNKNOWN_CURSOR);
}

static bool bound_portal(void *ctx, const char *name)
{
    return strcmp(name, (const char *)ctx) == 0;
}

/* A cursor that is gone leaves its name to the next portal (one that Bind
 * makes, or code opens), which its DECLARE does not describe: FETCH of that
 * name is then judged as of an unknown cursor (every column masked). */
static void test_cursors_gone(void **state)
{
    (void)state;
    struct policy_guard g;
    assert_int_equal(policy_guard_init(&g, policy, NO_CATALOG, "test", "session c"), 0);
    run(&g, "begin");
    run(&g, "declare c cursor for select 1");
    assert_true(cursor_known(&g, "c"));
    run(&g, "close c");
    assert_false(cursor_known(&g, "c"));
    /* COMMIT ends the cursors not WITH HOLD; the idle hook likewise */
    run(&g, "declare c cursor for select 1");
    run(&g, "declare h cursor with hold for select 1");
    run(&g, "commit");
    assert_false(cursor_known(&g, "c"));
    assert_true(cursor_known(&g, "h"));
    run(&g, "begin; declare c cursor for select 1");
    policy_guard_idle(&g, 'T');
    assert_true(cursor_known(&g, "c"));
    policy_guard_idle(&g, 'I');
    assert_false(cursor_known(&g, "c"));
    assert_true(cursor_known(&g, "h"));
    /* a failed transaction rolls back the WITH HOLD cursors it declared */
    run(&g, "begin; declare h2 cursor with hold for select 1");
    policy_guard_idle(&g, 'E');
    policy_guard_idle(&g, 'I');
    assert_false(cursor_known(&g, "h2"));
    /* so do ROLLBACK, CLOSE ALL and code that may close cursors */
    static const char *const enders[] = {"rollback", "close all", "rollback to savepoint s", "do $$ begin end $$"};
    for (size_t i = 0; i < sizeof enders / sizeof enders[0]; i++) {
        run(&g, "declare h cursor with hold for select 1");
        assert_true(cursor_known(&g, "h"));
        assert_int_equal(policy_guard_decide(&g, GATEWAY_STATEMENT_SIMPLE, enders[i], NULL), 0);
        if (cursor_known(&g, "h"))
            fail_msg("[%s] left the cursor's DECLARE in place", enders[i]);
    }
    /* a WITH HOLD cursor of an earlier transaction outlives a later one
     * that fails and rolls back */
    run(&g, "declare old cursor with hold for select 1");
    policy_guard_idle(&g, 'I');
    run(&g, "begin");
    policy_guard_idle(&g, 'E');
    run(&g, "rollback");
    policy_guard_idle(&g, 'I');
    assert_true(cursor_known(&g, "old"));
    /* a call of what may be user code (no catalog here: any function) may
     * close and reopen cursors: all but the statement's own are forgotten */
    run(&g, "declare mine cursor with hold for select 1");
    assert_int_equal(policy_guard_decide(&g, GATEWAY_STATEMENT_SIMPLE, "fetch 1 from mine", NULL), 0);
    assert_true(cursor_known(&g, "old"));
    assert_int_equal(policy_guard_decide(&g, GATEWAY_STATEMENT_SIMPLE, "select lower('x')", NULL), 0);
    assert_false(cursor_known(&g, "old"));
    assert_false(cursor_known(&g, "mine"));
    run(&g, "declare mine cursor with hold for select now()");
    assert_true(cursor_known(&g, "mine")); /* its own query's call does not drop it */
    run(&g, "discard all");
    assert_false(cursor_known(&g, "mine"));
    /* a portal that Bind made under the name of a declared cursor */
    run(&g, "declare p cursor with hold for select 1");
    policy_guard_set_portals(&g, bound_portal, "p", 0);
    assert_false(cursor_known(&g, "p"));
    policy_guard_set_portals(&g, bound_portal, "other", 0);
    assert_true(cursor_known(&g, "p"));
    /* a protocol Close of a named portal may have closed the cursor */
    policy_guard_set_portals(&g, bound_portal, "other", 1);
    assert_false(cursor_known(&g, "p"));
    policy_guard_free(&g);
}

static void test_ddl_state(void **state)
{
    (void)state;
    struct policy_guard g;
    assert_int_equal(policy_guard_init(&g, policy, NO_CATALOG, "test", "session 2"), 0);
    /* autocommit: the DDL's own answers keep the catalog; idle ends it */
    run(&g, "create or replace view v as select id, email from users");
    assert_true(g.ddl_seen);
    assert_false(g.ddl_pending);
    policy_guard_idle(&g, 'I');
    assert_false(g.ddl_seen);
    run(&g, "select 1");
    assert_false(g.ddl_pending);
    policy_guard_idle(&g, 'I');

    /* in a transaction block: statements after the DDL go without the
     * catalog until the block ends */
    run(&g, "begin");
    policy_guard_idle(&g, 'T');
    run(&g, "create or replace view v as select id, email from users");
    policy_guard_idle(&g, 'T');
    assert_true(g.ddl_seen);
    assert_false(g.ddl_pending);
    run(&g, "select * from v");
    assert_true(g.ddl_pending);
    policy_guard_idle(&g, 'T');
    assert_true(g.ddl_pending);
    policy_guard_idle(&g, 'E'); /* a failed block is still a block */
    assert_true(g.ddl_pending);
    run(&g, "rollback");
    policy_guard_idle(&g, 'I');
    assert_false(g.ddl_seen);
    assert_false(g.ddl_pending);

    /* DDL and a query in one string: the query's result goes without it */
    run(&g, "create or replace view v as select id, email from users; select * from v");
    assert_true(g.ddl_pending);
    policy_guard_idle(&g, 'I');
    assert_false(g.ddl_pending);

    /* code that may run DDL the parser cannot see counts as DDL */
    const char *code[] = {"do $$ begin execute 'create view v2 as select 1'; end $$", "call refresh_views()"};
    for (size_t i = 0; i < sizeof code / sizeof *code; i++) {
        run(&g, code[i]);
        assert_true(g.ddl_seen);
        policy_guard_idle(&g, 'I');
        assert_false(g.ddl_seen);
    }
    run(&g, "select upper(name) from users");
    assert_false(g.ddl_seen);
    policy_guard_idle(&g, 'I');

    /* a denied DDL is never admitted, so it changes nothing */
    char err[POLICY_ERR_MAX];
    json_t *doc = json_loads("{\"rules\": [{\"match\": {\"categories\": [\"ddl\"]}, \"action\": \"deny\"}]}", 0, NULL);
    struct policy *strict = doc ? policy_load_json(doc, err) : NULL;
    json_decref(doc);
    assert_non_null(strict);
    struct policy_guard h;
    assert_int_equal(policy_guard_init(&h, strict, NO_CATALOG, "test", "session 3"), 0);
    assert_int_equal(policy_guard_decide(&h, GATEWAY_STATEMENT_SIMPLE, "create view w as select 1", NULL), 0);
    assert_int_equal(h.decision.action, POLICY_DENY);
    assert_false(h.ddl_seen);
    policy_guard_free(&h);
    policy_free(strict);
    policy_guard_free(&g);
}

static void test_fail_closed_filters(void **state)
{
    (void)state;
    struct pgwire_column cols[2] = {{.name = "a", .type_oid = 25}, {.name = "b", .type_oid = 25}};
    struct gateway_row_filter f;
    struct buf out = {0};
    bool is_null = false;
    /* no guard (a session with no policy state): the mask is left unset,
     * which makes the gateway close the session, and the filter fails */
    policy_guard_row_description(NULL, NULL, cols, 2, false, &f);
    assert_null(f.mask);
    assert_int_equal(f.filter(f.user, NULL, 0, (const uint8_t *)"x", 1, 0, &out, &is_null), -1);
    struct gateway_copy_filter cf;
    policy_guard_copy_out(NULL, NULL, 2, &cf);
    assert_int_equal(cf.filter(cf.user, NULL, (const uint8_t *)"x\n", 2, &out), -1);

    /* no catalog: a computed column of a statement reading the masked
     * column is masked; one of a statement reading nothing passes */
    struct policy_guard g;
    assert_int_equal(policy_guard_init(&g, policy, NO_CATALOG, "test", "session 4"), 0);
    struct gateway_session_info si = run(&g, "select upper(email), 'plain' from users");
    policy_guard_row_description(&g, &si, cols, 2, false, &f);
    assert_non_null(f.mask);
    assert_true(g.have_plan);
    assert_int_equal(f.filter(f.user, NULL, 0, (const uint8_t *)"ALICE@EXAMPLE.COM", 17, 0, &out, &is_null), 0);
    assert_false(out.len == 17 && memcmp(out.data, "ALICE@EXAMPLE.COM", 17) == 0);
    free(f.mask);
    policy_guard_idle(&g, 'I');
    si = run(&g, "select 'plain', 'text'");
    policy_guard_row_description(&g, &si, cols, 2, true, &f);
    assert_true(f.mask[0] && f.mask[1]); /* all_columns */
    buf_reset(&out);
    assert_int_equal(f.filter(f.user, NULL, 1, (const uint8_t *)"text", 4, 0, &out, &is_null), 0);
    assert_int_equal(out.len, 4);
    assert_memory_equal(out.data, "text", 4);
    /* a column past the plan: fail */
    assert_int_equal(f.filter(f.user, NULL, 2, (const uint8_t *)"x", 1, 0, &out, &is_null), -1);
    /* SQL NULL stays NULL */
    is_null = false;
    assert_int_equal(f.filter(f.user, NULL, 0, NULL, -1, 0, &out, &is_null), 0);
    assert_true(is_null);
    free(f.mask);
    buf_free(&out);
    policy_guard_free(&g);
}

static void test_copy_formats(void **state)
{
    (void)state;
    struct policy_guard g;
    assert_int_equal(policy_guard_init(&g, policy, NO_CATALOG, "test", "session 5"), 0);
    /* what a view reads only the catalog can tell: with none, a COPY of
     * it in binary is refused before it runs */
    assert_int_equal(policy_guard_decide(&g, GATEWAY_STATEMENT_SIMPLE,
                                         "copy (select * from v_users) to stdout with (format binary)", NULL),
                     0);
    assert_int_equal(g.decision.action, POLICY_DENY);
    assert_string_equal(g.decision.rule_name, "masked-copy-format");
    assert_non_null(strstr(g.decision.message, "text or CSV format"));
    /* the same COPY in text format runs, masked whole */
    struct gateway_session_info si = run(&g, "copy (select * from v_users) to stdout");
    struct gateway_copy_filter cf;
    policy_guard_copy_out(&g, &si, 2, &cf);
    struct buf out = {0};
    assert_int_equal(cf.filter(cf.user, NULL, (const uint8_t *)"1\talice@example.com\n", 20, &out), 0);
    assert_null(memmem(out.data, out.len, "alice", 5));
    buf_free(&out);
    /* a COPY of a literal in binary reads nothing to mask: its rows pass
     * as they are (no newline, no tabs) */
    si = run(&g, "copy (select 1) to stdout with (format binary)"); /* the COPY before it has answered */
    policy_guard_copy_out(&g, &si, 1, &cf);
    static const uint8_t tuple[] = {0, 1, 0, 0, 0, 4, 0, 0, 0, 1};
    assert_int_equal(cf.filter(cf.user, NULL, tuple, sizeof tuple, &out), 0);
    assert_int_equal(out.len, sizeof tuple);
    assert_memory_equal(out.data, tuple, sizeof tuple);
    buf_free(&out);
    policy_guard_free(&g);
}

/* pg_dump and pg_dumpall (by application_name): a COPY whose every field
 * would be masked (sent as \N) is refused, naming the table and what to do;
 * other clients get it (with policy_guard_copy_out's NOTICE). */
static void test_dump_client_copy(void **state)
{
    (void)state;
    assert_true(policy_guard_is_dump_client("pg_dump"));
    assert_true(policy_guard_is_dump_client("pg_dumpall"));
    assert_false(policy_guard_is_dump_client("psql"));
    assert_false(policy_guard_is_dump_client(""));
    assert_false(policy_guard_is_dump_client(NULL));
    static const char *const copy = "COPY public.users (id, email, name) TO stdout;";
    struct policy_guard g;
    assert_int_equal(policy_guard_init(&g, policy, NO_CATALOG, "test", "session d"), 0);
    policy_guard_set_client(&g, "psql");
    assert_int_equal(policy_guard_decide(&g, GATEWAY_STATEMENT_SIMPLE, copy, NULL), 0);
    assert_int_not_equal(g.decision.action, POLICY_DENY);
    struct gateway_session_info si = run(&g, copy);
    struct gateway_copy_filter cf;
    policy_guard_copy_out(&g, &si, 3, &cf);
    assert_non_null(cf.notice);
    policy_guard_idle(&g, 'I');
    policy_guard_set_client(&g, "pg_dump");
    assert_int_equal(policy_guard_decide(&g, GATEWAY_STATEMENT_SIMPLE, copy, NULL), 0);
    assert_int_equal(g.decision.action, POLICY_DENY);
    assert_string_equal(g.decision.rule_name, "masked-copy-dump");
    assert_string_equal(g.decision.message,
                        "public.users has masked columns, and COPY cannot mask them; dump it with pg_dump --inserts"
                        " (masked values) or leave its data out with --exclude-table-data=public.users");
    /* what pg_dump reads otherwise passes */
    assert_int_equal(policy_guard_decide(&g, GATEWAY_STATEMENT_SIMPLE, "select id, email from users", NULL), 0);
    assert_int_not_equal(g.decision.action, POLICY_DENY);
    policy_guard_free(&g);
}

/* hoopctl mcp's read-only mode at the gateway (policy_guard_deny_unless_read):
 * what hoopctl mcp itself sends around each call (in simple queries) and
 * plain reads pass, and only the reads from the agent (extended); the
 * rest becomes a deny of rule read-only, naming the statement that decided;
 * a deny the policy made stays its own. */
static void test_deny_unless_read(void **state)
{
    (void)state;
    static const char *const allowed[] = {
        "BEGIN READ ONLY", "ROLLBACK", "COMMIT", "START TRANSACTION READ ONLY", "SAVEPOINT a",
        "RELEASE a", "ROLLBACK TO a", "SET statement_timeout = 30000; SET default_transaction_read_only = on",
        "RESET statement_timeout", "SHOW search_path", "select 1", "select * from users where id = $1",
        "select set_config('statement_timeout', '5s', false)", "explain select 1",
        "with t as (select 1) select * from t", "values (1)", "table users",
    };
    static const struct {
        const char *sql;
        size_t stmt;
    } refused[] = {
        {"select pg_terminate_backend(pg_backend_pid())", 0},
        {"copy (select 1) to program 'true'", 0},
        {"copy t to stdout", 0},
        {"drop table t", 0},
        {"insert into t values (1)", 0},
        {"select 1; delete from t", 1},
        {"begin; delete from t where x = 1", 1},
        {"do $$ begin perform 1; end $$", 0},
        {"select * from t for update", 0},
        {"checkpoint", 0},
        {"prepare transaction 'x'", 0},
        {"set role postgres", 0},
        {"select pg_read_file('/etc/passwd')", 0},
    };
    struct policy_guard g;
    assert_int_equal(policy_guard_init(&g, policy, NO_CATALOG, "test", "session r"), 0);
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
        assert_int_equal(policy_guard_decide(&g, GATEWAY_STATEMENT_SIMPLE, allowed[i], NULL), 0);
        policy_guard_deny_unless_read(&g, true);
        if (g.decision.action == POLICY_DENY)
            fail_msg("%s: refused (%s: %s)", allowed[i], g.decision.rule_name, g.decision.message);
        /* the agent's SQL (extended protocol): only the plain reads */
        bool read = strncasecmp(allowed[i], "select", 6) == 0 || strncasecmp(allowed[i], "explain", 7) == 0 ||
                    strncasecmp(allowed[i], "with", 4) == 0 || strncasecmp(allowed[i], "values", 6) == 0 ||
                    strncasecmp(allowed[i], "table", 5) == 0 || strncasecmp(allowed[i], "show", 4) == 0;
        assert_int_equal(policy_guard_decide(&g, GATEWAY_STATEMENT_EXECUTE, allowed[i], NULL), 0);
        policy_guard_deny_unless_read(&g, false);
        if ((g.decision.action == POLICY_DENY) == read || (!read && strcmp(g.decision.rule_name, "read-only") != 0))
            fail_msg("%s, the agent's: %s (%s)", allowed[i], read ? "refused" : "not refused as read-only",
                     g.decision.rule_name);
    }
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        assert_int_equal(policy_guard_decide(&g, GATEWAY_STATEMENT_SIMPLE, refused[i].sql, NULL), 0);
        if (g.decision.action == POLICY_DENY)
            fail_msg("%s: the policy denied it already (%s)", refused[i].sql, g.decision.rule_name);
        policy_guard_deny_unless_read(&g, true);
        if (g.decision.action != POLICY_DENY || strcmp(g.decision.rule_name, "read-only") != 0 ||
            g.decision.stmt_index != refused[i].stmt ||
            !strstr(g.decision.message, "hoopctl mcp is read-only (started without --allow-writes) and refused"))
            fail_msg("%s: not refused as read-only (%d %s %zu: %s)", refused[i].sql, (int)g.decision.action,
                     g.decision.rule_name, g.decision.stmt_index, g.decision.message);
    }
    assert_int_equal(policy_guard_decide(&g, GATEWAY_STATEMENT_SIMPLE, "select pg_terminate_backend(1)", NULL), 0);
    policy_guard_deny_unless_read(&g, true);
    assert_non_null(strstr(g.decision.message, "refused pg_terminate_backend: a function whose effect outlives"));
    /* the policy's own deny (a parse error, a FunctionCall) keeps its rule */
    assert_int_equal(policy_guard_decide(&g, GATEWAY_STATEMENT_SIMPLE, "selec 1", NULL), 0);
    policy_guard_deny_unless_read(&g, true);
    assert_string_equal(g.decision.rule_name, "parse-error");
    assert_int_equal(policy_guard_decide(&g, GATEWAY_STATEMENT_FUNCTION_CALL, "", NULL), 0);
    policy_guard_deny_unless_read(&g, true);
    assert_string_equal(g.decision.rule_name, "function-call");
    policy_guard_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinds_without_sql),
        cmocka_unit_test(test_forget_names),
        cmocka_unit_test(test_cursors_gone),
        cmocka_unit_test(test_ddl_state),
        cmocka_unit_test(test_fail_closed_filters),
        cmocka_unit_test(test_copy_formats),
        cmocka_unit_test(test_deny_unless_read),
        cmocka_unit_test(test_dump_client_copy),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
