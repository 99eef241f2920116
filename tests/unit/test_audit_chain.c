/* test_audit_chain.c — the audit chain hash: stable, and changed by any field,
 * by the predecessor, and by moving bytes between fields. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hoopctl/audit.h"

static struct audit_record base(void)
{
    struct audit_record r = {1, "e1", "s1", "statement", "alice", "{\"text\":\"select 1\"}", 1, 1000,
                             AUDIT_GENESIS_HASH, 0};
    return r;
}

static void hash_is_stable_hex(void **state)
{
    (void)state;
    struct audit_record r = base();
    char a[65], b[65];
    audit_chain_hash(&r, a);
    audit_chain_hash(&r, b);
    assert_string_equal(a, b);
    assert_int_equal(strlen(a), 64);
    assert_int_equal(strspn(a, "0123456789abcdef"), 64);
}

static void every_field_changes_the_hash(void **state)
{
    (void)state;
    struct audit_record r = base();
    char h0[65], h[65];
    audit_chain_hash(&r, h0);
    struct audit_record v[9];
    for (int i = 0; i < 9; i++)
        v[i] = r;
    v[0].n = 2;
    v[1].id = "e2";
    v[2].session_id = "s2";
    v[3].type = "result";
    v[4].subject = "bob";
    v[5].data = "{\"text\":\"select 2\"}";
    v[6].seq = 2;
    v[7].ts = 1001;
    v[8].prev_hash = "1111111111111111111111111111111111111111111111111111111111111111";
    for (int i = 0; i < 9; i++) {
        audit_chain_hash(&v[i], h);
        assert_string_not_equal(h0, h);
    }
}

static void field_boundaries_matter(void **state)
{
    (void)state;
    struct audit_record a = base(), b = base();
    a.id = "ab";
    a.session_id = "c";
    b.id = "a";
    b.session_id = "bc";
    char ha[65], hb[65];
    audit_chain_hash(&a, ha);
    audit_chain_hash(&b, hb);
    assert_string_not_equal(ha, hb);
    /* NULL and "" are different too. */
    a = base();
    b = base();
    a.data = NULL;
    b.data = "";
    audit_chain_hash(&a, ha);
    audit_chain_hash(&b, hb);
    assert_string_not_equal(ha, hb);
}

/* Events stored before the server recorded their receive time (0) keep the
 * first hash, so chains written by older servers still verify; the pinned
 * value is what the first version of this hash gives for base(). A receive
 * time switches to the second hash, and is covered by it. */
static void receive_time_is_hashed_and_old_rows_keep_theirs(void **state)
{
    (void)state;
    struct audit_record r = base();
    char v1[65], a[65], b[65];
    audit_chain_hash(&r, v1);
    assert_string_equal(v1, "5e7bf06f2fceca586a39887100b52bd9b58a9143cc78df08b479628dd51f5e77");
    r.received_at = 1764000000000;
    audit_chain_hash(&r, a);
    assert_string_not_equal(a, v1);
    r.received_at = 1764000000001;
    audit_chain_hash(&r, b);
    assert_string_not_equal(a, b);
}

/* An exported trail of two events, made here with the chain's own hash. */
static char *two_event_export(void)
{
    struct audit_record a = {1, "e1", "s1", "session_start", "alice", "{\"connection\":\"prod\"}", 1, 1000,
                             AUDIT_GENESIS_HASH, 1764000000000};
    char ha[65], hb[65];
    audit_chain_hash(&a, ha);
    struct audit_record b = {2, "e2", "s1", "statement", "alice", "{\"decision\":\"allow\",\"text\":\"select 1\"}",
                             2, 1001, ha, 0};
    audit_chain_hash(&b, hb);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    fprintf(f, "{\"n\":1,\"id\":\"e1\",\"session_id\":\"s1\",\"seq\":1,\"type\":\"session_start\",\"time\":1000,"
               "\"user\":\"alice\",\"data\":{\"connection\":\"prod\"},\"prev_hash\":\"%s\",\"hash\":\"%s\","
               "\"received_at\":1764000000000}\n",
            AUDIT_GENESIS_HASH, ha);
    /* keys out of order, as another tool might write them: the data is hashed canonically */
    fprintf(f, "{\"n\":2,\"id\":\"e2\",\"session_id\":\"s1\",\"seq\":2,\"type\":\"statement\",\"time\":1001,"
               "\"user\":\"alice\",\"data\":{\"text\":\"select 1\",\"decision\":\"allow\"},\"prev_hash\":\"%s\","
               "\"hash\":\"%s\",\"received_at\":null}\n",
            ha, hb);
    fclose(f);
    return out;
}

static json_t *verify_text(const char *text)
{
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    assert_non_null(f);
    json_t *rep = NULL;
    char err[128];
    assert_int_equal(audit_verify_jsonl(f, &rep, err, sizeof err), 0);
    fclose(f);
    return rep;
}

static void an_export_verifies_on_its_own(void **state)
{
    (void)state;
    char *text = two_event_export();
    json_t *rep = verify_text(text);
    assert_true(json_is_true(json_object_get(rep, "ok")));
    assert_int_equal(json_integer_value(json_object_get(rep, "checked")), 2);
    json_decref(rep);
    /* one character of a statement changed */
    char *t = strstr(text, "select 1");
    t[7] = '2';
    rep = verify_text(text);
    assert_false(json_is_true(json_object_get(rep, "ok")));
    assert_non_null(strstr(json_string_value(json_object_get(json_array_get(json_object_get(rep, "problems"), 0),
                                                             "problem")), "edited"));
    json_decref(rep);
    free(text);
}

/* Hostile or broken lines are problems, never crashes; an empty file is not "intact". */
static void bad_lines_are_problems(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "not json\n",
        "{\"n\":\"1\"}\n",
        "{\"n\":-5,\"id\":\"x\"}\n",
        "[1,2,3]\n",
        "{\"n\":99999999999999999999999}\n",
        "{\"n\":1,\"id\":\"e\",\"session_id\":\"s\",\"seq\":1,\"type\":\"t\",\"time\":1,\"user\":\"u\","
        "\"data\":{},\"prev_hash\":\"zz\",\"hash\":\"00\"}\n",
        "\xff\xfe{\"n\":1}\n",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *rep = verify_text(bad[i]);
        assert_false(json_is_true(json_object_get(rep, "ok")));
        assert_int_equal(json_integer_value(json_object_get(rep, "checked")), 0);
        json_decref(rep);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hash_is_stable_hex),
        cmocka_unit_test(an_export_verifies_on_its_own),
        cmocka_unit_test(bad_lines_are_problems),
        cmocka_unit_test(receive_time_is_hashed_and_old_rows_keep_theirs),
        cmocka_unit_test(every_field_changes_the_hash),
        cmocka_unit_test(field_boundaries_matter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
