/* test_gateway_tracking.c — statement/portal name tracking: names commit only
 * when upstream confirms them, failures leave the old definition in place,
 * and a lookup that depends on an unanswered earlier segment waits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "../../src/gateway/internal.h"

static void client_parse(struct gw_tracking *t, const char *name, const char *sql)
{
    struct buf b = {0};
    pgwire_put_cstr(&b, name);
    pgwire_put_cstr(&b, sql);
    pgwire_put_i16(&b, 0);
    assert_int_equal(gw_tracking_client(t, 'P', b.data, b.len), 0);
    buf_free(&b);
}

static int client_bind(struct gw_tracking *t, const char *portal, const char *stmt, const char *param)
{
    struct buf b = {0};
    pgwire_put_cstr(&b, portal);
    pgwire_put_cstr(&b, stmt);
    pgwire_put_i16(&b, 0);
    pgwire_put_i16(&b, 1);
    pgwire_put_i32(&b, (int32_t)strlen(param));
    buf_append_str(&b, param);
    pgwire_put_i16(&b, 0);
    int rc = gw_tracking_client(t, 'B', b.data, b.len);
    buf_free(&b);
    return rc;
}

static const char *portal_sql(struct gw_tracking *t, const char *portal, int *rc)
{
    struct gw_portal_info pi;
    *rc = gw_tracking_portal(t, portal, &pi);
    return pi.sql;
}

static void commit_on_confirmation(void **state)
{
    (void)state;
    struct gw_tracking t = {0};
    int rc;
    client_parse(&t, "s1", "select 1");
    assert_int_equal(client_bind(&t, "p1", "s1", "x"), 0);
    /* same segment: the pending definitions are what upstream will run */
    assert_string_equal(portal_sql(&t, "p1", &rc), "select 1");
    assert_int_equal(rc, 1);
    gw_tracking_client(&t, 'S', NULL, 0);
    gw_tracking_upstream(&t, '1');
    gw_tracking_upstream(&t, '2');
    gw_tracking_upstream(&t, 'Z');
    assert_int_equal(t.npending, 0);
    assert_string_equal(portal_sql(&t, "p1", &rc), "select 1");
    assert_null(portal_sql(&t, "nope", &rc));
    assert_int_equal(rc, 0);
    gw_tracking_free(&t);
}

static void failed_parse_keeps_old_definition(void **state)
{
    (void)state;
    struct gw_tracking t = {0};
    int rc;
    client_parse(&t, "s1", "select 'old'");
    gw_tracking_client(&t, 'S', NULL, 0);
    gw_tracking_upstream(&t, '1');
    gw_tracking_upstream(&t, 'Z');
    /* redefinition fails upstream (duplicate name): the old text stays */
    client_parse(&t, "s1", "select 'new'");
    gw_tracking_client(&t, 'S', NULL, 0);
    /* a Bind in the next segment cannot know yet whether the Parse worked */
    assert_int_equal(client_bind(&t, "p", "s1", "v"), 1);
    gw_tracking_upstream(&t, 'E');
    gw_tracking_upstream(&t, 'Z');
    assert_int_equal(client_bind(&t, "p", "s1", "v"), 0);
    assert_string_equal(portal_sql(&t, "p", &rc), "select 'old'");
    gw_tracking_client(&t, 'S', NULL, 0);
    gw_tracking_upstream(&t, '2');
    gw_tracking_upstream(&t, 'Z');
    /* Close commits on CloseComplete */
    struct buf c = {0};
    buf_append(&c, "P", 1);
    pgwire_put_cstr(&c, "p");
    assert_int_equal(gw_tracking_client(&t, 'C', c.data, c.len), 0);
    gw_tracking_upstream(&t, '3');
    assert_null(portal_sql(&t, "p", &rc));
    buf_free(&c);
    gw_tracking_free(&t);
}

static void simple_query_drops_unnamed(void **state)
{
    (void)state;
    struct gw_tracking t = {0};
    int rc;
    client_parse(&t, "", "select 'unnamed'");
    assert_int_equal(client_bind(&t, "", "", "v"), 0);
    gw_tracking_client(&t, 'S', NULL, 0);
    gw_tracking_upstream(&t, '1');
    gw_tracking_upstream(&t, '2');
    gw_tracking_upstream(&t, 'Z');
    assert_string_equal(portal_sql(&t, "", &rc), "select 'unnamed'");
    gw_tracking_client(&t, 'Q', (const uint8_t *)"select 1", 9);
    gw_tracking_upstream(&t, 'Z');
    assert_null(portal_sql(&t, "", &rc));
    assert_int_equal(rc, 0);
    assert_int_equal(gw_tracking_client(&t, 'P', (const uint8_t *)"x", 1), -1); /* malformed */
    gw_tracking_free(&t);
}

/* Names that SQL may redefine behind the protocol's back become unknown,
 * pending ones included, and a portal bound in an earlier segment waits for
 * that segment's ReadyForQuery (the end of an implicit transaction drops it). */
static void forgotten_names_and_idle_portals(void **state)
{
    (void)state;
    struct gw_tracking t = {0};
    int rc;
    /* committed s and p, in a transaction block (ReadyForQuery 'T') */
    client_parse(&t, "s", "select 'benign'");
    assert_int_equal(client_bind(&t, "p", "s", "v"), 0);
    gw_tracking_client(&t, 'S', NULL, 0);
    /* the next segment's lookup waits: p's segment has not ended yet */
    gw_tracking_upstream(&t, '1');
    gw_tracking_upstream(&t, '2');
    portal_sql(&t, "p", &rc);
    assert_int_equal(rc, -1);
    gw_tracking_upstream(&t, 'Z');
    assert_string_equal(portal_sql(&t, "p", &rc), "select 'benign'");
    assert_int_equal(rc, 1);

    /* DEALLOCATE s / PREPARE s in SQL: s is unknown, a Bind of it has no SQL */
    struct gateway_forget f = {.statement = "s"};
    gw_tracking_forget(&t, &f);
    assert_int_equal(client_bind(&t, "q", "s", "v"), 0);
    assert_null(portal_sql(&t, "q", &rc));
    assert_int_equal(rc, 1);
    /* CLOSE p / DECLARE p in SQL: p is unknown */
    f = (struct gateway_forget){.portal = "p"};
    gw_tracking_forget(&t, &f);
    assert_null(portal_sql(&t, "p", &rc));
    assert_int_equal(rc, 0);

    /* a pending Bind forgotten before its BindComplete commits as unknown */
    client_parse(&t, "s2", "select 2");
    assert_int_equal(client_bind(&t, "p2", "s2", "v"), 0);
    f = (struct gateway_forget){.portals = true};
    gw_tracking_forget(&t, &f);
    assert_null(portal_sql(&t, "p2", &rc)); /* same segment: unknown at once */
    assert_int_equal(rc, 0);
    gw_tracking_client(&t, 'S', NULL, 0);
    gw_tracking_upstream(&t, '2');          /* q's BindComplete */
    gw_tracking_upstream(&t, '1');
    gw_tracking_upstream(&t, '2');          /* p2's */
    gw_tracking_upstream(&t, 'Z');
    assert_null(portal_sql(&t, "p2", &rc));
    assert_int_equal(rc, 0);
    assert_int_equal(client_bind(&t, "p3", "s2", "v"), 0); /* s2 itself stays known */
    assert_string_equal(portal_sql(&t, "p3", &rc), "select 2");

    /* idle after a Sync: every portal is gone, statements stay */
    gw_tracking_client(&t, 'S', NULL, 0);
    gw_tracking_upstream(&t, '2');
    gw_tracking_upstream(&t, 'Z');
    assert_string_equal(portal_sql(&t, "p3", &rc), "select 2");
    gw_tracking_idle(&t);
    assert_null(portal_sql(&t, "p3", &rc));
    assert_int_equal(rc, 0);
    assert_int_equal(client_bind(&t, "p4", "s2", "v"), 0);
    assert_string_equal(portal_sql(&t, "p4", &rc), "select 2");
    /* everything: DISCARD ALL */
    f = (struct gateway_forget){.statements = true, .portals = true};
    gw_tracking_forget(&t, &f);
    assert_int_equal(client_bind(&t, "p5", "s2", "v"), 0);
    assert_null(portal_sql(&t, "p5", &rc));
    gw_tracking_free(&t);
}

/* What the session holds is counted as entries come and go, back to 0. */
static void held_bytes_accounting(void **state)
{
    (void)state;
    struct gw_tracking t = {0};
    client_parse(&t, "s1", "select $1::text");            /* 15 bytes of SQL, 2 of name */
    size_t parse = t.held;
    assert_int_equal(parse, 17);
    assert_int_equal(client_bind(&t, "p1", "s1", "abcdef"), 0);
    size_t bind = t.held - parse;                          /* the statement's SQL + the Bind body */
    assert_true(bind > 15 + 6);
    gw_tracking_client(&t, 'S', NULL, 0);
    gw_tracking_upstream(&t, '1');
    gw_tracking_upstream(&t, '2');
    assert_int_equal(t.held, parse + bind);               /* committed: moved, not copied */
    gw_tracking_upstream(&t, 'Z');
    assert_true(gw_tracking_room(&t, 100, parse + bind + 100));
    assert_false(gw_tracking_room(&t, 101, parse + bind + 100));
    /* Under a bound, a Bind counts the SQL its portal copies from the
     * statement too, and one past it records nothing; one of an unknown
     * statement counts only itself. */
    struct buf bb = {0};
    pgwire_put_cstr(&bb, "p2");
    pgwire_put_cstr(&bb, "s1");
    pgwire_put_i16(&bb, 0);
    pgwire_put_i16(&bb, 0);
    pgwire_put_i16(&bb, 0);
    size_t before = t.held;
    t.max_held = parse + bind + bb.len + 14;
    assert_int_equal(gw_tracking_client(&t, 'B', bb.data, bb.len), GW_TRACKING_FULL);
    assert_int_equal(t.held, before);
    bb.data[3] = 'z'; /* statement "z1": unknown */
    assert_int_equal(gw_tracking_client(&t, 'B', bb.data, bb.len), 0);
    gw_tracking_client(&t, 'S', NULL, 0);
    gw_tracking_upstream(&t, '1');
    gw_tracking_upstream(&t, '2');
    gw_tracking_upstream(&t, 'Z');
    t.max_held = parse + bind + 2 * bb.len + 2 + 15; /* the portal z2's name, then s1's SQL */
    bb.data[3] = 's';
    assert_int_equal(gw_tracking_client(&t, 'B', bb.data, bb.len), 0);
    buf_free(&bb);
    t.max_held = 0;
    gw_tracking_client(&t, 'S', NULL, 0);
    gw_tracking_upstream(&t, '2');
    gw_tracking_upstream(&t, 'Z');
    gw_tracking_idle(&t);                                  /* the portal goes */
    assert_int_equal(t.held, parse);
    /* A replaced definition gives its bytes back; a failed one never keeps them. */
    client_parse(&t, "s1", "select 22");
    gw_tracking_client(&t, 'S', NULL, 0);
    gw_tracking_upstream(&t, '1');
    gw_tracking_upstream(&t, 'Z');
    assert_int_equal(t.held, 11);
    client_parse(&t, "s2", "select broken");
    gw_tracking_client(&t, 'S', NULL, 0);
    gw_tracking_upstream(&t, 'E');
    gw_tracking_upstream(&t, 'Z');
    assert_int_equal(t.held, 11);
    struct gateway_forget all = {.statements = true};
    gw_tracking_forget(&t, &all);
    assert_int_equal(t.held, 0);
    gw_tracking_free(&t);
}

/* A statement whose Parse left its types to the server learns them from the
 * ParameterDescription that answers its Describe; its portals carry them. */
static void types_from_parameter_description(void **state)
{
    (void)state;
    struct gw_tracking t = {0};
    client_parse(&t, "s1", "select $1, $2");
    struct buf d = {0};
    buf_append(&d, "S", 1);
    pgwire_put_cstr(&d, "s1");
    assert_int_equal(gw_tracking_client(&t, 'D', d.data, d.len), 0);
    buf_free(&d);
    gw_tracking_client(&t, 'S', NULL, 0);
    gw_tracking_upstream(&t, '1');
    size_t before = t.held;
    struct buf pd = {0};
    pgwire_put_i16(&pd, 2);
    pgwire_put_i32(&pd, 23);
    pgwire_put_i32(&pd, 2950);
    gw_tracking_param_description(&t, pd.data, pd.len);
    gw_tracking_param_description(&t, pd.data, pd.len - 1); /* truncated: ignored */
    buf_free(&pd);
    assert_int_equal(t.held, before + 8);
    gw_tracking_upstream(&t, 'n');
    gw_tracking_upstream(&t, 'Z');
    assert_int_equal(client_bind(&t, "p1", "s1", "x"), 0);
    struct gw_portal_info pi;
    assert_int_equal(gw_tracking_portal(&t, "p1", &pi), 1);
    assert_int_equal(pi.ntypes, 2);
    assert_int_equal(pi.types[0], 23);
    assert_int_equal(pi.types[1], 2950);
    gw_tracking_free(&t);
}

/* Names are kept as PostgreSQL keys them: their first 63 bytes (what the
 * budget counts too). A lookup by another long name with the same first
 * bytes is unknown (on a server with a larger NAMEDATALEN it is another
 * statement); the same long name is found. */
static void long_names_cut(void **state)
{
    (void)state;
    struct gw_tracking t = {0};
    char a[200], b[200], cut[64];
    memset(a, 'n', sizeof a - 1);
    a[sizeof a - 1] = '\0';
    memcpy(b, a, sizeof b);
    b[100] = 'm';
    memcpy(cut, a, 63);
    cut[63] = '\0';
    client_parse(&t, a, "select 1");
    assert_int_equal(t.held, 63 + 8);
    gw_tracking_client(&t, 'S', NULL, 0);
    gw_tracking_upstream(&t, '1');
    gw_tracking_upstream(&t, 'Z');
    assert_int_equal(client_bind(&t, "p1", a, "x"), 0);
    assert_int_equal(client_bind(&t, "p2", b, "x"), 0);
    assert_int_equal(client_bind(&t, "p3", cut, "x"), 0);
    int rc;
    assert_string_equal(portal_sql(&t, "p1", &rc), "select 1");
    assert_null(portal_sql(&t, "p2", &rc)); /* the statement is unknown: no SQL */
    assert_int_equal(rc, 1);
    assert_null(portal_sql(&t, "p3", &rc));
    /* a portal's long name is cut the same way */
    assert_int_equal(client_bind(&t, a, a, "x"), 0);
    assert_string_equal(portal_sql(&t, a, &rc), "select 1");
    assert_int_equal(rc, 1);
    assert_null(portal_sql(&t, b, &rc));
    assert_int_equal(rc, 0);
    /* the Bind kept has the names cut too, and still parses */
    struct gw_portal_info pi;
    assert_int_equal(gw_tracking_portal(&t, a, &pi), 1);
    assert_int_equal(pi.bind_len, 64 + 64 + 2 + 2 + 4 + 1 + 2);
    struct pgwire_bind pb;
    assert_int_equal(pgwire_parse_bind(pi.bind, pi.bind_len, &pb), 0);
    assert_string_equal(pb.portal, cut);
    assert_string_equal(pb.statement, cut);
    assert_int_equal(pb.nparams, 1);
    assert_memory_equal(pb.values[0], "x", 1);
    pgwire_bind_free(&pb);
    gw_tracking_free(&t);
}

/* Many pending Binds of one statement, and many statements: each lookup
 * finds the latest definition (the index, not a walk), and a forget marks
 * what is pending without a walk. */
static void many_pending(void **state)
{
    (void)state;
    struct gw_tracking t = {0};
    int rc;
    char name[32], sql[64];
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof name, "s%d", i);
        snprintf(sql, sizeof sql, "select %d", i);
        client_parse(&t, name, sql);
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof name, "s%d", i);
        assert_int_equal(client_bind(&t, "", name, "x"), 0);
        snprintf(sql, sizeof sql, "select %d", i);
        assert_string_equal(portal_sql(&t, "", &rc), sql);
    }
    assert_int_equal(t.npending, 10000);
    struct gateway_forget one = {.statement = "s7"};
    gw_tracking_forget(&t, &one);
    client_parse(&t, "s7", "select 'again'");   /* after the forget: known */
    gw_tracking_client(&t, 'S', NULL, 0);
    for (int i = 0; i < 5001; i++)
        gw_tracking_upstream(&t, '1');
    for (int i = 0; i < 5000; i++)
        gw_tracking_upstream(&t, '2');
    gw_tracking_upstream(&t, 'Z');
    assert_int_equal(t.npending, 0);
    assert_int_equal(client_bind(&t, "q", "s6", "x"), 0);
    assert_string_equal(portal_sql(&t, "q", &rc), "select 6");
    assert_int_equal(client_bind(&t, "q", "s7", "x"), 0);
    assert_string_equal(portal_sql(&t, "q", &rc), "select 'again'");
    assert_int_equal(client_bind(&t, "q", "s4999", "x"), 0);
    assert_string_equal(portal_sql(&t, "q", &rc), "select 4999");
    struct gateway_forget all = {.statements = true, .portals = true};
    client_parse(&t, "s1", "select 'pending'");
    gw_tracking_forget(&t, &all);
    assert_int_equal(client_bind(&t, "q", "s1", "x"), 0);
    assert_null(portal_sql(&t, "q", &rc)); /* forgotten while pending */
    gw_tracking_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(commit_on_confirmation),
        cmocka_unit_test(failed_parse_keeps_old_definition),
        cmocka_unit_test(simple_query_drops_unnamed),
        cmocka_unit_test(forgotten_names_and_idle_portals),
        cmocka_unit_test(held_bytes_accounting),
        cmocka_unit_test(types_from_parameter_description),
        cmocka_unit_test(long_names_cut),
        cmocka_unit_test(many_pending),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
