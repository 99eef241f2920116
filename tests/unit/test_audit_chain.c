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

static const char *first_problem(json_t *rep)
{
    return json_string_value(json_object_get(json_array_get(json_object_get(rep, "problems"), 0), "problem"));
}

/* The reader of an exported file: lines longer than its read-ahead block, a
 * last line without a newline, CRLF; a NUL byte, a duplicate key (at the
 * top or inside data) or a key no export writes is a problem; where the
 * file starts is in the report. */
static void file_lines_are_read_whole_and_strictly(void **state)
{
    (void)state;
    /* one event with a 200 kB statement: three read-ahead blocks */
    size_t big = 200000;
    char *txt = malloc(big + 1);
    memset(txt, 'x', big);
    txt[big] = '\0';
    char *data = NULL, *out = NULL;
    size_t dlen = 0, olen = 0;
    FILE *d = open_memstream(&data, &dlen);
    fprintf(d, "{\"text\":\"%s\"}", txt);
    fclose(d);
    struct audit_record a = {1, "e1", "s1", "statement", "alice", data, 1, 1000, AUDIT_GENESIS_HASH, 0};
    char ha[65];
    audit_chain_hash(&a, ha);
    FILE *f = open_memstream(&out, &olen);
    fprintf(f, "{\"n\":1,\"id\":\"e1\",\"session_id\":\"s1\",\"seq\":1,\"type\":\"statement\",\"time\":1000,"
               "\"user\":\"alice\",\"data\":%s,\"prev_hash\":\"%s\",\"hash\":\"%s\"}\r\n",
            data, AUDIT_GENESIS_HASH, ha);
    fclose(f);
    json_t *rep = verify_text(out);
    assert_true(json_is_true(json_object_get(rep, "ok")));
    assert_true(json_is_true(json_object_get(rep, "from_start")));
    json_decref(rep);
    out[olen - 2] = '\0'; /* no newline at the end */
    rep = verify_text(out);
    assert_true(json_is_true(json_object_get(rep, "ok")));
    json_decref(rep);
    free(out);
    free(data);
    free(txt);

    char *text = two_event_export();
    /* the second line alone: intact, but not from the start */
    rep = verify_text(strchr(text, '\n') + 1);
    assert_true(json_is_true(json_object_get(rep, "ok")));
    assert_false(json_is_true(json_object_get(rep, "from_start")));
    assert_int_equal(json_integer_value(json_object_get(rep, "first")), 2);
    json_decref(rep);

    /* the user twice: jansson would keep the last, other parsers the first */
    char buf[4096];
    char *u = strstr(text, "\"user\":\"alice\"");
    snprintf(buf, sizeof buf, "%.*s\"user\":\"mallory\",%s", (int)(u - text), text, u);
    rep = verify_text(buf);
    assert_false(json_is_true(json_object_get(rep, "ok")));
    assert_non_null(strstr(first_problem(rep), "duplicate object key"));
    json_decref(rep);
    /* a key twice inside data */
    char *c = strstr(text, "{\"connection\"");
    snprintf(buf, sizeof buf, "%.*s{\"connection\":\"dev\",%s", (int)(c - text), text, c + 1);
    rep = verify_text(buf);
    assert_false(json_is_true(json_object_get(rep, "ok")));
    assert_non_null(strstr(first_problem(rep), "duplicate object key"));
    json_decref(rep);
    /* a key no export writes */
    snprintf(buf, sizeof buf, "{\"decision\":\"deny\",%s", text + 1);
    rep = verify_text(buf);
    assert_false(json_is_true(json_object_get(rep, "ok")));
    assert_non_null(strstr(first_problem(rep), "does not have (added): decision"));
    json_decref(rep);

    /* a NUL byte ends nothing: the line with it is not an event */
    size_t tl = strlen(text);
    memcpy(buf, text, tl);
    char *nl = memchr(buf, '\n', tl);
    memmove(nl + 3, nl, tl - (size_t)(nl - buf));
    memcpy(nl, "\0xx", 3);
    FILE *m = fmemopen(buf, tl + 3, "r");
    assert_int_equal(audit_verify_jsonl(m, &rep, buf + 3000, 128), 0);
    fclose(m);
    assert_false(json_is_true(json_object_get(rep, "ok")));
    assert_non_null(strstr(first_problem(rep), "line 1 is not an exported event"));
    json_decref(rep);
    free(text);
}

/* A chain of n events of base() after prev, with their hashes in h[]. */
static void make_chain(struct audit_record *r, char h[][65], int n, int64_t first, const char *prev)
{
    for (int i = 0; i < n; i++) {
        r[i] = base();
        r[i].n = first + i;
        r[i].seq = first + i;
        r[i].prev_hash = i == 0 ? prev : h[i - 1];
        audit_chain_hash(&r[i], h[i]);
    }
}

static const char *problem_text(struct audit_walk *w, size_t i)
{
    return json_string_value(json_object_get(json_array_get(w->problems, i), "problem"));
}

/* The walk both verifications share: each kind of damage is named once, at
 * the event where it shows, and an anchored walk checks its first link. */
static void the_walk_names_each_kind_of_damage(void **state)
{
    (void)state;
    struct audit_record r[5];
    char h[5][65];
    make_chain(r, h, 5, 1, AUDIT_GENESIS_HASH);
    struct audit_walk w;

    audit_walk_init(&w, 0, AUDIT_GENESIS_HASH, "are missing (deleted)");
    for (int i = 0; i < 5; i++)
        audit_walk_event(&w, &r[i], h[i]);
    assert_int_equal(json_array_size(w.problems), 0);
    assert_int_equal(w.checked, 5);
    assert_int_equal(w.last, 5);
    assert_string_equal(w.last_hash, h[4]);
    json_decref(w.problems);

    /* event 3 deleted: named as a gap at 4, and only once */
    audit_walk_init(&w, 0, AUDIT_GENESIS_HASH, "are missing (deleted)");
    for (int i = 0; i < 5; i++)
        if (i != 2)
            audit_walk_event(&w, &r[i], h[i]);
    assert_int_equal(json_array_size(w.problems), 1);
    assert_string_equal(problem_text(&w, 0), "events 3..3 are missing (deleted)");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(w.problems, 0), "n")), 4);
    json_decref(w.problems);

    /* event 2 twice, then an event whose link is wrong, then one with no hash */
    audit_walk_init(&w, 0, AUDIT_GENESIS_HASH, "are missing (deleted)");
    audit_walk_event(&w, &r[0], h[0]);
    audit_walk_event(&w, &r[1], h[1]);
    audit_walk_event(&w, &r[1], h[1]);
    struct audit_record bad = r[2];
    bad.prev_hash = h[0];
    char bad_hash[65];
    audit_chain_hash(&bad, bad_hash);
    audit_walk_event(&w, &bad, bad_hash);
    audit_walk_event(&w, &r[3], NULL);
    assert_int_equal(json_array_size(w.problems), 4);
    assert_string_equal(problem_text(&w, 0), "position repeats or goes back (inserted or reordered event)");
    assert_non_null(strstr(problem_text(&w, 1), "link to the previous event is broken"));
    assert_non_null(strstr(problem_text(&w, 2), "link to the previous event is broken"));
    assert_string_equal(problem_text(&w, 3), "content does not match its hash (edited)");
    json_decref(w.problems);

    /* anchored at a checkpoint: the first event must follow it and link to it */
    audit_walk_init(&w, 2, h[1], "are missing (deleted)");
    audit_walk_event(&w, &r[2], h[2]);
    assert_int_equal(json_array_size(w.problems), 0);
    json_decref(w.problems);
    audit_walk_init(&w, 2, h[0], "are missing (deleted)");
    audit_walk_event(&w, &r[2], h[2]);
    assert_int_equal(json_array_size(w.problems), 1);
    json_decref(w.problems);
    audit_walk_init(&w, 1, h[0], "are missing (deleted)");
    audit_walk_event(&w, &r[2], h[2]);
    assert_string_equal(problem_text(&w, 0), "events 2..2 are missing (deleted)");
    json_decref(w.problems);

    /* unanchored (an export that starts at 3): the first event is taken as it is */
    audit_walk_init(&w, 0, NULL, "are not in the file");
    audit_walk_event(&w, &r[2], h[2]);
    audit_walk_event(&w, &r[3], h[3]);
    assert_int_equal(json_array_size(w.problems), 0);
    assert_int_equal(w.first, 3);
    assert_string_equal(w.first_prev, h[1]);
    json_decref(w.problems);

    /* the cap on problems */
    audit_walk_init(&w, 0, AUDIT_GENESIS_HASH, "are missing (deleted)");
    for (int i = 0; i < AUDIT_WALK_MAX_PROBLEMS + 20; i++)
        audit_walk_event(&w, &r[1], NULL);
    assert_int_equal(json_array_size(w.problems), AUDIT_WALK_MAX_PROBLEMS);
    json_decref(w.problems);
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
        cmocka_unit_test(file_lines_are_read_whole_and_strictly),
        cmocka_unit_test(the_walk_names_each_kind_of_damage),
        cmocka_unit_test(receive_time_is_hashed_and_old_rows_keep_theirs),
        cmocka_unit_test(every_field_changes_the_hash),
        cmocka_unit_test(field_boundaries_matter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
