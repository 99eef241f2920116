/* test_spool.c — the audit spool: group commit, ordered reads, quarantine,
 * acknowledgement, and survival of a process killed mid-run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hoopctl/spool.h"
#include <sqlite3.h>
#include "spool_tmpdir.h"

static char err[256];
#define path spool_path

static void append(struct spool *s, const char *id, const char *body)
{
    assert_int_equal(spool_append(s, id, "sess-1", body, strlen(body), err, sizeof err), 0);
}

static void group_commit_order_and_ack(void **state)
{
    (void)state;
    struct spool *w = spool_open(path, SPOOL_SURVIVE_PROCESS_CRASH, err, sizeof err);
    assert_non_null(w);
    struct spool *r = spool_open(path, SPOOL_SURVIVE_PROCESS_CRASH, err, sizeof err);
    assert_non_null(r);
    append(w, "e1", "{\"n\":1}");
    append(w, "e2", "{\"n\":2}");
    assert_int_equal(spool_uncommitted(w), 2);
    /* Uncommitted events are invisible to the reader. */
    assert_int_equal(spool_pending(r), 0);
    assert_int_equal(spool_commit(w, err, sizeof err), 0);
    assert_int_equal(spool_uncommitted(w), 0);
    assert_int_equal(spool_pending(r), 2);
    append(w, "e3", "{\"n\":3}");
    assert_int_equal(spool_commit(w, err, sizeof err), 0);
    assert_int_equal(spool_commit(w, err, sizeof err), 0); /* nothing pending: fine */

    struct spool_batch b;
    assert_int_equal(spool_fetch(r, 2, &b, err, sizeof err), 0);
    assert_int_equal(b.n, 2);
    assert_string_equal(b.events[0].id, "e1");
    assert_string_equal(b.events[1].json, "{\"n\":2}");
    assert_true(b.events[0].seq < b.events[1].seq);
    assert_int_equal(spool_ack(r, &b, 2, err, sizeof err), 0);
    spool_batch_free(&b);
    assert_int_equal(spool_fetch(r, 10, &b, err, sizeof err), 0);
    assert_int_equal(b.n, 1);
    assert_string_equal(b.events[0].id, "e3");
    spool_batch_free(&b);

    /* Two shippers on one spool (connect and mcp of one user): B fetched e3,
     * A shipped and acked it, the queue emptied, and a new event took a seq
     * again from 1. B's late ack (up to e3's seq, before) must not delete the
     * new event unshipped. */
    struct spool *a = spool_open(path, SPOOL_SURVIVE_PROCESS_CRASH, err, sizeof err);
    assert_non_null(a);
    struct spool_batch late, mine;
    assert_int_equal(spool_fetch(r, 10, &late, err, sizeof err), 0);
    assert_int_equal(spool_fetch(a, 10, &mine, err, sizeof err), 0);
    assert_int_equal(spool_ack(a, &mine, mine.n, err, sizeof err), 0);
    spool_batch_free(&mine);
    assert_int_equal(spool_pending(r), 0);
    append(w, "e4", "{\"n\":4}");
    assert_int_equal(spool_commit(w, err, sizeof err), 0);
    assert_int_equal(spool_fetch(a, 10, &mine, err, sizeof err) == 0 && mine.n == 1, 1);
    assert_true(mine.events[0].seq <= late.events[0].seq); /* a seq within the late batch's range */
    spool_batch_free(&mine);
    assert_int_equal(spool_ack(r, &late, late.n, err, sizeof err), 0);
    assert_int_equal(spool_pending(r), 1); /* e4 is still there */
    spool_batch_free(&late);
    spool_close(a);
    spool_close(r);
    spool_close(w);
}

static void committed_events_survive_kill(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char e[256];
        struct spool *s = spool_open(path, SPOOL_SURVIVE_PROCESS_CRASH, e, sizeof e);
        if (!s)
            _exit(2);
        for (int i = 0; i < 500; i++) {
            char id[32];
            snprintf(id, sizeof id, "k%d", i);
            if (spool_append(s, id, "s", "{}", 2, e, sizeof e) < 0)
                _exit(3);
            if (i % 10 == 9 && spool_commit(s, e, sizeof e) < 0)
                _exit(4);
        }
        spool_append(s, "never", "s", "{}", 2, e, sizeof e); /* not committed */
        raise(SIGKILL);
        _exit(5);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    struct spool *s = spool_open(path, SPOOL_SURVIVE_PROCESS_CRASH, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(spool_pending(s), 500);
    struct spool_batch b;
    assert_int_equal(spool_fetch(s, 1000, &b, err, sizeof err), 0);
    assert_int_equal(b.n, 500);
    assert_string_equal(b.events[0].id, "k0");
    assert_string_equal(b.events[499].id, "k499");
    spool_batch_free(&b);
    spool_close(s);
}

static void quarantine_keeps_an_event_out_of_the_queue(void **state)
{
    (void)state;
    struct spool *s = spool_open(path, SPOOL_SURVIVE_PROCESS_CRASH, err, sizeof err);
    assert_non_null(s);
    append(s, "q1", "{\"n\":1}");
    append(s, "q2", "{\"n\":2}");
    append(s, "q3", "{\"n\":3}");
    assert_int_equal(spool_commit(s, err, sizeof err), 0);
    struct spool_batch b;
    assert_int_equal(spool_fetch(s, 10, &b, err, sizeof err), 0);
    assert_int_equal(b.n, 3);
    int64_t seq2 = b.events[1].seq;
    spool_batch_free(&b);
    assert_int_equal(spool_quarantine(s, seq2, "HTTP 400: bad event", 1234, err, sizeof err), 0);
    assert_int_equal(spool_pending(s), 2);
    assert_int_equal(spool_quarantined(s), 1);
    assert_int_equal(spool_fetch(s, 10, &b, err, sizeof err), 0);
    assert_int_equal(b.n, 2);
    assert_string_equal(b.events[0].id, "q1");
    assert_string_equal(b.events[1].id, "q3");
    spool_batch_free(&b);
    /* Not inside an open group (it commits on its own). */
    append(s, "q4", "{}");
    assert_int_equal(spool_quarantine(s, seq2, "x", 1, err, sizeof err), -1);
    assert_int_equal(spool_commit(s, err, sizeof err), 0);
    spool_close(s);
    /* It survives reopening. */
    s = spool_open(path, SPOOL_SURVIVE_PROCESS_CRASH, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(spool_quarantined(s), 1);
    assert_int_equal(spool_pending(s), 3);
    spool_close(s);
}

/* Under a file-size limit the log stops growing and a commit fails: the
 * group that commit ended is reported lost, its event is not in the spool,
 * the groups before it stay durable, and the next append opens a new group
 * that commits once there is room again. */
static void a_failed_commit_loses_its_group_only(void **state)
{
    (void)state;
    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*old_xfsz)(int) = signal(SIGXFSZ, SIG_IGN);
    struct spool *w = spool_open(path, SPOOL_SURVIVE_PROCESS_CRASH, err, sizeof err);
    assert_non_null(w);
    assert_int_equal(spool_defer_checkpoints(w, err, sizeof err), 0); /* the log only grows */
    size_t n = 32 * 1024;
    char *big = malloc(n + 16);
    assert_non_null(big);
    memset(big, 'x', n + 16);
    memcpy(big, "{\"x\":\"", 6);
    memcpy(big + n + 6, "\"}", 3);
    struct rlimit lim = {.rlim_cur = 256 * 1024, .rlim_max = old.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    uint64_t durable_group = 0, lost_group = 0;
    int durable = 0;
    const char *why = NULL;
    for (int i = 0; i < 64 && !lost_group; i++) {
        uint64_t g = spool_group(w);
        char id[16];
        snprintf(id, sizeof id, "big-%d", i);
        if (spool_append(w, id, "sess-1", big, strlen(big), err, sizeof err) < 0) {
            lost_group = g;
            break;
        }
        assert_int_equal(spool_group_state(w, g, &why), SPOOL_GROUP_OPEN);
        if (spool_commit(w, err, sizeof err) == 0) {
            durable++;
            durable_group = g;
            assert_int_equal(spool_group_state(w, g, &why), SPOOL_GROUP_DURABLE);
        } else {
            lost_group = g;
        }
    }
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, old_xfsz);
    free(big);
    assert_true(durable > 0);
    assert_true(lost_group > durable_group);
    assert_int_equal(spool_group_state(w, lost_group, &why), SPOOL_GROUP_LOST);
    assert_non_null(strstr(why, "spool:"));
    assert_int_equal(spool_group_state(w, durable_group, &why), SPOOL_GROUP_DURABLE);
    assert_int_equal(spool_pending(w), durable); /* the lost event is not there */
    assert_int_equal(spool_group(w), lost_group + 1);
    assert_int_equal(spool_group_state(w, lost_group + 1, &why), SPOOL_GROUP_OPEN);

    /* Room again: the next group commits. Groups ended long ago are not
     * remembered and count as lost (fail closed). */
    for (int i = 0; i < 65; i++) {
        uint64_t g = spool_group(w);
        append(w, "small", "{}");
        assert_int_equal(spool_commit(w, err, sizeof err), 0);
        assert_int_equal(spool_group_state(w, g, &why), SPOOL_GROUP_DURABLE);
    }
    assert_int_equal(spool_group_state(w, durable_group, &why), SPOOL_GROUP_LOST);
    assert_int_equal(spool_pending(w), durable + 65);
    spool_close(w);
}

static void unwritable_spool_is_a_clear_error(void **state)
{
    (void)state;
    struct spool *s = spool_open("/nonexistent-dir/x/spool.db", SPOOL_SURVIVE_POWER_LOSS, err, sizeof err);
    assert_null(s);
    assert_non_null(strstr(err, "spool:"));
}

static void make_db(const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* A file of another schema is refused at open, naming the file and what
 * differs; before, a nullable body holding NULL crashed the shipper's
 * fetch and a NULL id blocked the queue (its quarantine failed forever). */
static void foreign_schema_is_refused(void **state)
{
    (void)state;
    static const struct {
        const char *sql, *why;
    } cases[] = {
        {"CREATE TABLE spool_events (seq INTEGER PRIMARY KEY, id TEXT, session_id TEXT, body TEXT);"
         "INSERT INTO spool_events(id, session_id, body) VALUES ('x1', 's1', NULL);",
         "may be NULL"},
        {"CREATE TABLE spool_events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, body TEXT NOT NULL);",
         "column 3 is body"},
        {"CREATE TABLE notes (a TEXT);", "has a table notes"},
        {"PRAGMA user_version=7;", "schema version 7"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        unlink(path);
        make_db(cases[i].sql);
        struct spool *s = spool_open(path, SPOOL_SURVIVE_PROCESS_CRASH, err, sizeof err);
        assert_null(s);
        assert_non_null(strstr(err, path));
        assert_non_null(strstr(err, "not a hoopctl audit spool"));
        assert_non_null(strstr(err, cases[i].why));
    }
    unlink(path);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("garbage garbage garbage\n", f);
    fclose(f);
    assert_null(spool_open(path, SPOOL_SURVIVE_PROCESS_CRASH, err, sizeof err));
    assert_non_null(strstr(err, path));
}

/* A spool made before the schema stamp (same tables, user_version 0) opens
 * and its events are read. */
static void unstamped_spool_of_ours_opens(void **state)
{
    (void)state;
    make_db("CREATE TABLE spool_events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL,"
            " session_id TEXT NOT NULL, body TEXT NOT NULL);"
            "INSERT INTO spool_events(id, session_id, body) VALUES ('e1', 's1', '{}');");
    struct spool *s = spool_open(path, SPOOL_SURVIVE_PROCESS_CRASH, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(spool_pending(s), 1);
    struct spool_batch b;
    assert_int_equal(spool_fetch(s, 10, &b, err, sizeof err), 0);
    assert_int_equal(b.n, 1);
    assert_string_equal(b.events[0].id, "e1");
    spool_batch_free(&b);
    spool_close(s);
    s = spool_open(path, SPOOL_SURVIVE_PROCESS_CRASH, err, sizeof err); /* stamped now */
    assert_non_null(s);
    spool_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(group_commit_order_and_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(committed_events_survive_kill, setup, teardown),
        cmocka_unit_test_setup_teardown(quarantine_keeps_an_event_out_of_the_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(a_failed_commit_loses_its_group_only, setup, teardown),
        cmocka_unit_test(unwritable_spool_is_a_clear_error),
        cmocka_unit_test_setup_teardown(foreign_schema_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(unstamped_spool_of_ours_opens, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
