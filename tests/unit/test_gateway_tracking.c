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
    const char *sql = NULL;
    const uint8_t *bind;
    size_t len;
    *rc = gw_tracking_portal(t, portal, &sql, &bind, &len);
    return sql;
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(commit_on_confirmation),
        cmocka_unit_test(failed_parse_keeps_old_definition),
        cmocka_unit_test(simple_query_drops_unnamed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
