/* test_store.c — the store suite, on SQLite by default and on PostgreSQL when
 * HOOPCTL_TEST_STORE_URL names one (tests/integration/test_store_pg.sh runs
 * it so): migrations, connections, API keys,
 * hash-chained ingest (idempotent, owned sessions, sample caps), queries and
 * paging, verification of a row edited behind the store's back, retention
 * with its checkpoint, and the review life cycle. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hoopctl/audit.h"
#include "hoopctl/store.h"
#include "hoopctl/util.h"

struct fixture {
    char path[64];
    char url[1024];
    const char *pg;          /* PostgreSQL URL, or NULL for SQLite */
    struct store *st;
};

static void pg_sql(const char *url, const char *sql)
{
    PGconn *c = PQconnectdb(url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->pg = getenv("HOOPCTL_TEST_STORE_URL");
    if (f->pg) {
        /* A clean schema per test. */
        pg_sql(f->pg, "DROP SCHEMA public CASCADE; CREATE SCHEMA public");
        snprintf(f->url, sizeof f->url, "%s", f->pg);
    } else {
        snprintf(f->path, sizeof f->path, "/tmp/hoopctl-store-XXXXXX");
        int fd = mkstemp(f->path);
        close(fd);
        snprintf(f->url, sizeof f->url, "sqlite:%s", f->path);
    }
    char err[256];
    f->st = store_open(f->url, err, sizeof err);
    assert_non_null(f->st);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    store_close(f->st);
    if (f->pg) {
        free(f);
        return 0;
    }
    char p[96];
    unlink(f->path);
    snprintf(p, sizeof p, "%s-wal", f->path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", f->path);
    unlink(p);
    free(f);
    return 0;
}

/* Behind the store's back, straight into its database. */
static void raw_sql(struct fixture *f, const char *sql)
{
    if (f->pg) {
        pg_sql(f->pg, sql);
        return;
    }
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void migrations_run_once(void **state)
{
    struct fixture *f = *state;
    char err[256];
    assert_int_equal(store_schema_version(f->st), 7);
    assert_string_equal(store_kind(f->st), f->pg ? "postgres" : "sqlite");
    struct store *again = store_open(f->url, err, sizeof err);
    assert_non_null(again);
    assert_int_equal(store_schema_version(again), 7);
    store_close(again);
    if (!f->pg) {
        /* A store of schema 1 (reviews without a rule, events without a
         * receive time) is upgraded on open and keeps its reviews, and its
         * events' chain (their first hash) still verifies with new events
         * after them (the second hash, over the receive time too). */
        store_close(f->st);
        f->st = NULL;
        char old_hash[65];
        struct audit_record old = {.n = 1, .id = "ev-old", .session_id = "s-old", .type = "session_start",
                                   .subject = "alice", .data = "{}", .seq = 1, .ts = 5,
                                   .prev_hash = AUDIT_GENESIS_HASH};
        audit_chain_hash(&old, old_hash);
        char sql[2048];
        snprintf(sql, sizeof sql,
                 "ALTER TABLE reviews DROP COLUMN rule;"
                 "ALTER TABLE reviews DROP COLUMN params;"
                 "ALTER TABLE reviews DROP COLUMN event_id;"
                 "ALTER TABLE reviews DROP COLUMN rules;"
                 "DROP TABLE webhook_cursors;"
                 "ALTER TABLE events DROP COLUMN received_at;"
                 "ALTER TABLE checkpoints DROP COLUMN event_n;"
                 "DELETE FROM schema_migrations WHERE version > 1;"
                 "INSERT INTO reviews (id, connection, statement, statement_hash, requester,"
                 " requester_issuer, status, created_at, expires_at)"
                 " VALUES ('old', 'prod', 'delete from t', 'h', 'alice', 'dev', 'pending', 1, 9);"
                 "INSERT INTO sessions (id, issuer, subject, started_at) VALUES ('s-old', 'dev', 'alice', 5);"
                 "INSERT INTO events VALUES (1, 'ev-old', 's-old', 1, 'session_start', 5, 'alice', '{}',"
                 " '%s', '%s');"
                 "UPDATE chain_head SET last_n = 1, last_hash = '%s';",
                 AUDIT_GENESIS_HASH, old_hash, old_hash);
        sqlite3 *db = NULL;
        assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
        f->st = store_open(f->url, err, sizeof err);
        assert_non_null(f->st);
        assert_int_equal(store_schema_version(f->st), 7);
        json_t *r = NULL;
        assert_int_equal(store_review_get(f->st, "old", &r, err, sizeof err), 0);
        assert_string_equal(json_string_value(json_object_get(r, "statement")), "delete from t");
        assert_true(json_is_null(json_object_get(r, "rule")) || !json_object_get(r, "rule"));
        json_decref(r);
        static const struct store_actor owner = {"dev", "alice", "Alice", "[]"};
        struct store_event ev = {.id = "ev-new", .session_id = "s-old", .seq = 2, .type = "session_end",
                                 .ts = 6, .data = "{}"};
        struct store_ingest_result res;
        int64_t before = util_now_ms();
        assert_int_equal(store_events_append(f->st, &owner, &ev, 1, 1000, &res, err, sizeof err), 0);
        assert_int_equal(res.accepted, 1);
        json_t *evs = NULL;
        assert_int_equal(store_session_events(f->st, "s-old", 0, 10, &evs, err, sizeof err), 0);
        assert_true(json_is_null(json_object_get(json_array_get(evs, 0), "received_at")));
        assert_true(json_integer_value(json_object_get(json_array_get(evs, 1), "received_at")) >= before);
        json_decref(evs);
        assert_int_equal(store_audit_verify(f->st, &r, err, sizeof err), 0);
        assert_true(json_is_true(json_object_get(r, "ok")));
        assert_int_equal(json_integer_value(json_object_get(r, "checked")), 2);
        json_decref(r);
    }
    assert_null(store_open("sqlite:", err, sizeof err));
    assert_null(store_open("sqlite:/nonexistent-dir/x.db", err, sizeof err));
}

/* Only sqlite:PATH and postgres:// / postgresql:// are stores: a misspelt
 * scheme is refused, not taken for a file name (nor is a bare path). */
static void store_urls(void **state)
{
    (void)state;
    char err[256], cwd[512], dir[] = "/tmp/hoopctl-urls-XXXXXX";
    assert_int_equal(store_url_check("sqlite:x.db", err, sizeof err), 0);
    /* Shown to people: no password, in the authority or in the query. */
    char shown[256];
    store_url_display("postgres://u:s3cr@t@db.example:5432/hoop?sslmode=require&password=q", shown, sizeof shown);
    assert_string_equal(shown, "postgres://u:***@db.example:5432/hoop");
    store_url_display("postgresql://db.example/hoop?password=q", shown, sizeof shown);
    assert_string_equal(shown, "postgresql://db.example/hoop");
    store_url_display("postgres://u@h/d", shown, sizeof shown);
    assert_string_equal(shown, "postgres://u@h/d");
    store_url_display("sqlite:/var/lib/h.db", shown, sizeof shown);
    assert_string_equal(shown, "sqlite:/var/lib/h.db");
    assert_int_equal(store_url_check("postgres://u@h/d", err, sizeof err), 0);
    assert_int_equal(store_url_check("postgresql://u@h/d", err, sizeof err), 0);
    assert_int_equal(store_url_check("sqllite:server.db", err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown store scheme 'sqllite:'"));
    assert_non_null(strstr(err, "sqlite:PATH, postgres://... or postgresql://..."));
    assert_int_equal(store_url_check("postgress://u:sekrit@h/d", err, sizeof err), -1);
    assert_null(strstr(err, "sekrit"));
    assert_int_equal(store_url_check("server.db", err, sizeof err), -1);
    assert_int_equal(store_url_check("sqlite:", err, sizeof err), -1);
    assert_non_null(mkdtemp(dir));
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(dir), 0);
    assert_null(store_open("sqllite:server.db", err, sizeof err));
    assert_null(store_open("bogus:x", err, sizeof err));
    assert_null(store_open("server.db", err, sizeof err));
    assert_int_equal(access("sqllite:server.db", F_OK), -1);
    assert_int_equal(access("bogus:x", F_OK), -1);
    assert_int_equal(access("server.db", F_OK), -1);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(rmdir(dir), 0);
}

/* audit verify's open: a missing file is not created, an empty one or one
 * without the schema is refused, and an existing store opens read only. */
static void open_existing(void **state)
{
    struct fixture *f = *state;
    char err[256], url[128], path[96];
    int status = 0;
    snprintf(path, sizeof path, "%s-missing", f->path[0] ? f->path : "/tmp/hoopctl-store-x");
    snprintf(url, sizeof url, "sqlite:%s", path);
    unlink(path);
    assert_null(store_open_existing(url, &status, err, sizeof err));
    assert_int_equal(status, STORE_NOT_FOUND);
    assert_non_null(strstr(err, "No such file or directory"));
    assert_int_equal(access(path, F_OK), -1);
    FILE *e = fopen(path, "w");
    assert_non_null(e);
    fclose(e);
    assert_null(store_open_existing(url, &status, err, sizeof err));
    assert_int_equal(status, STORE_NOT_FOUND);
    assert_non_null(strstr(err, "no hoopctl store"));
    unlink(path);
    struct store *ro = store_open_existing(f->url, &status, err, sizeof err);
    assert_non_null(ro);
    assert_int_equal(status, STORE_OK);
    assert_int_equal(store_schema_version(ro), 7);
    json_t *r = NULL;
    assert_int_equal(store_audit_verify(ro, &r, err, sizeof err), 0);
    assert_true(json_is_true(json_object_get(r, "ok")));
    json_decref(r);
    json_t *groups = json_pack("[s]", "admin");
    assert_int_not_equal(store_apikey_create(ro, "id-ro", "ro", "h-ro", groups, "t", err, sizeof err), 0);
    json_decref(groups);
    store_close(ro);
    if (!f->pg)
        return;
    /* A PostgreSQL database the server never used. */
    pg_sql(f->pg, "DROP SCHEMA public CASCADE; CREATE SCHEMA public");
    assert_null(store_open_existing(f->url, &status, err, sizeof err));
    assert_int_equal(status, STORE_NOT_FOUND);
}

static void connections(void **state)
{
    struct fixture *f = *state;
    char err[256];
    json_t *c = json_pack("{s:s,s:s,s:i,s:s,s:s,s:s,s:s,s:[s],s:[s],s:{}}", "name", "prod", "host", "h",
                          "port", 5432, "database", "d", "user", "u", "sslmode", "require", "secret_enc",
                          "v1:abcd", "allowed_groups", "dev", "reviewer_groups", "dba", "policy");
    assert_int_equal(store_connection_put(f->st, c, err, sizeof err), 0);
    json_object_del(c, "secret_enc");
    json_object_set_new(c, "host", json_string("h2"));
    assert_int_equal(store_connection_put(f->st, c, err, sizeof err), 0);
    json_decref(c);
    json_t *got = NULL;
    assert_int_equal(store_connection_get(f->st, "prod", &got, err, sizeof err), 0);
    assert_string_equal(json_string_value(json_object_get(got, "host")), "h2");
    assert_string_equal(json_string_value(json_object_get(got, "secret_enc")), "v1:abcd");
    assert_string_equal(json_string_value(json_array_get(json_object_get(got, "reviewer_groups"), 0)), "dba");
    json_decref(got);
    json_t *pol = json_pack("{s:[s]}", "deny", "ddl");
    assert_int_equal(store_connection_set_policy(f->st, "prod", pol, err, sizeof err), 0);
    assert_int_equal(store_connection_set_policy(f->st, "nope", pol, err, sizeof err), STORE_NOT_FOUND);
    json_decref(pol);
    json_t *list = NULL;
    assert_int_equal(store_connection_list(f->st, &list, err, sizeof err), 0);
    assert_int_equal(json_array_size(list), 1);
    json_t *deny = json_object_get(json_object_get(json_array_get(list, 0), "policy"), "deny");
    assert_string_equal(json_string_value(json_array_get(deny, 0)), "ddl");
    json_decref(list);
    assert_int_equal(store_connection_delete(f->st, "prod", err, sizeof err), 0);
    assert_int_equal(store_connection_delete(f->st, "prod", err, sizeof err), STORE_NOT_FOUND);
    assert_int_equal(store_connection_get(f->st, "prod", &got, err, sizeof err), STORE_NOT_FOUND);
}

static void apikeys(void **state)
{
    struct fixture *f = *state;
    char err[256];
    json_t *g = json_pack("[s]", "admin");
    assert_int_equal(store_apikey_create(f->st, "id1", "ops", "hash1", g, "root", err, sizeof err), 0);
    assert_int_equal(store_apikey_create(f->st, "id2", "ops", "hash2", g, "root", err, sizeof err), STORE_CONFLICT);
    json_decref(g);
    json_t *k = NULL;
    assert_int_equal(store_apikey_lookup(f->st, "hash1", &k, err, sizeof err), 0);
    assert_string_equal(json_string_value(json_object_get(k, "name")), "ops");
    json_decref(k);
    assert_int_equal(store_apikey_revoke(f->st, "ops", err, sizeof err), 0);
    assert_int_equal(store_apikey_lookup(f->st, "hash1", &k, err, sizeof err), STORE_NOT_FOUND);
}

static const struct store_actor alice = {"dev", "alice", "Alice", "[\"dev\"]"};
static const struct store_actor bob = {"dev", "bob", "Bob", "[]"};

static void ingest_batch(struct fixture *f, const struct store_actor *who, const char *session, int from,
                         int n, int64_t ts, int expect_rc)
{
    struct store_event ev[16];
    char ids[16][32];
    assert_true(n <= 16);
    for (int i = 0; i < n; i++) {
        snprintf(ids[i], sizeof ids[i], "%s-%d", session, from + i);
        ev[i] = (struct store_event){.id = ids[i], .session_id = session, .seq = from + i,
                                     .type = i == 0 && from == 0 ? "session_start" : "statement",
                                     .ts = ts + i, .data = "{\"text\":\"select 1\",\"decision\":\"deny\"}",
                                     .connection = "prod", .denial = i == 1};
    }
    struct store_ingest_result res;
    char err[256];
    assert_int_equal(store_events_append(f->st, who, ev, (size_t)n, 1000, &res, err, sizeof err), expect_rc);
}

static void ingest_verify_and_tamper(void **state)
{
    struct fixture *f = *state;
    char err[256];
    ingest_batch(f, &alice, "s1", 0, 4, 1000, 0);
    ingest_batch(f, &alice, "s1", 0, 4, 1000, 0);   /* the same again: all duplicates */
    ingest_batch(f, &bob, "s1", 4, 2, 2000, STORE_FORBIDDEN);
    ingest_batch(f, &bob, "s2", 0, 3, 3000, 0);
    json_t *evs = NULL;
    assert_int_equal(store_session_events(f->st, "s1", 0, 100, &evs, err, sizeof err), 0);
    assert_int_equal(json_array_size(evs), 4);
    json_decref(evs);
    json_t *s = NULL;
    assert_int_equal(store_session_get(f->st, "s1", &s, err, sizeof err), 0);
    assert_true(json_is_true(json_object_get(s, "has_denials")));
    assert_int_equal(json_integer_value(json_object_get(s, "events")), 4);
    json_decref(s);
    json_t *rep = NULL;
    assert_int_equal(store_audit_verify(f->st, &rep, err, sizeof err), 0);
    assert_true(json_is_true(json_object_get(rep, "ok")));
    assert_int_equal(json_integer_value(json_object_get(rep, "checked")), 7);
    json_decref(rep);
    raw_sql(f, "UPDATE events SET data = '{\"text\":\"select 2\"}' WHERE n = 3");
    assert_int_equal(store_audit_verify(f->st, &rep, err, sizeof err), 0);
    assert_false(json_is_true(json_object_get(rep, "ok")));
    json_t *p = json_array_get(json_object_get(rep, "problems"), 0);
    assert_int_equal(json_integer_value(json_object_get(p, "n")), 3);
    assert_non_null(strstr(json_string_value(json_object_get(p, "problem")), "edited"));
    json_decref(rep);
    raw_sql(f, "DELETE FROM events WHERE n = 7");
    assert_int_equal(store_audit_verify(f->st, &rep, err, sizeof err), 0);
    char *text = json_dumps(rep, 0);
    assert_non_null(strstr(text, "events at the end deleted"));
    free(text);
    json_decref(rep);
}

static void session_queries_and_paging(void **state)
{
    struct fixture *f = *state;
    char err[256];
    for (int i = 0; i < 5; i++) {
        char sid[8];
        snprintf(sid, sizeof sid, "p%d", i);
        ingest_batch(f, i % 2 ? &bob : &alice, sid, 0, i == 4 ? 1 : 2, 10000 + i * 100, 0);
    }
    struct store_session_filter flt = {.has_denials = -1, .has_reviews = -1, .limit = 2};
    json_t *page = NULL;
    char cursor[200] = "";
    int seen = 0;
    for (int round = 0; round < 5; round++) {
        flt.cursor = cursor[0] ? cursor : NULL;
        assert_int_equal(store_sessions_list(f->st, &flt, &page, err, sizeof err), 0);
        seen += (int)json_array_size(json_object_get(page, "sessions"));
        const char *next = json_string_value(json_object_get(page, "next"));
        if (!next) {
            json_decref(page);
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", next);
        json_decref(page);
    }
    assert_int_equal(seen, 5);
    struct store_session_filter mine = {.issuer = "dev", .subject = "bob", .has_denials = 1, .has_reviews = -1};
    assert_int_equal(store_sessions_list(f->st, &mine, &page, err, sizeof err), 0);
    assert_int_equal(json_array_size(json_object_get(page, "sessions")), 2);
    json_decref(page);
    struct store_session_filter range = {.has_denials = -1, .has_reviews = -1, .since = 10150, .until = 10350};
    assert_int_equal(store_sessions_list(f->st, &range, &page, err, sizeof err), 0);
    assert_int_equal(json_array_size(json_object_get(page, "sessions")), 2);
    json_decref(page);
    struct store_session_filter bad = {.has_denials = -1, .has_reviews = -1, .cursor = "nocolon"};
    assert_int_equal(store_sessions_list(f->st, &bad, &page, err, sizeof err), STORE_NOT_FOUND);
}

static void retention_keeps_chain_verifiable(void **state)
{
    struct fixture *f = *state;
    char err[256];
    ingest_batch(f, &alice, "old", 0, 3, 1000, 0);
    ingest_batch(f, &alice, "new", 0, 3, 9000000, 0);
    /* Retention goes by receipt: "old" was received long ago (aged here),
     * "new" now, whatever times their gateway gave (both long past). */
    raw_sql(f, "UPDATE events SET received_at = 1000 WHERE session_id = 'old'");
    /* Two reviews whose life ended long ago (one consumed, one pending that
     * the expiry sweep had not reached) and one still alive. */
    raw_sql(f, "INSERT INTO reviews (id, connection, statement, statement_hash, requester, requester_issuer,"
               " status, created_at, expires_at) VALUES"
               " ('gone1','prod','delete from t','h','alice','dev','consumed',100,700),"
               " ('gone2','prod','delete from t','h','alice','dev','pending',100,800),"
               " ('alive','prod','delete from t','h','alice','dev','pending',100,9000000000000)");
    /* A webhook that has pushed only event 1 holds the cut there. */
    int64_t at = 0;
    assert_int_equal(store_webhook_claim(f->st, "hook", "A", 1000, 30000, &at, err, sizeof err), 0);
    assert_int_equal(store_webhook_advance(f->st, "hook", "A", 1, 1000, 30000, err, sizeof err), 0);
    struct store_retention_report r;
    assert_int_equal(store_retention(f->st, util_now_ms() - 3600000, "hook", &r, err, sizeof err), 0);
    assert_int_equal(r.events, 1);
    assert_int_equal(r.held, 2);
    assert_int_equal(r.reviews, 2);
    json_t *rv = NULL;
    assert_int_equal(store_review_get(f->st, "gone1", &rv, err, sizeof err), STORE_NOT_FOUND);
    assert_int_equal(store_review_get(f->st, "alive", &rv, err, sizeof err), 0);
    json_decref(rv);
    /* Another endpoint's cursor (an old URL) holds nothing back. */
    assert_int_equal(store_retention(f->st, util_now_ms() - 3600000, "other", &r, err, sizeof err), 0);
    assert_int_equal(r.events, 2);
    assert_int_equal(r.held, 0);
    assert_int_equal(r.reviews, 0);
    json_t *rep = NULL, *s = NULL;
    assert_int_equal(store_audit_verify(f->st, &rep, err, sizeof err), 0);
    assert_true(json_is_true(json_object_get(rep, "ok")));
    assert_int_equal(json_integer_value(json_object_get(rep, "checkpoint")), 3);
    /* 4..6 and the two retention events (7: the cut at 1, 8: at 3) */
    assert_int_equal(json_integer_value(json_object_get(rep, "checked")), 5);
    assert_int_equal(json_integer_value(json_object_get(rep, "head")), 8);
    json_decref(rep);
    json_t *cuts = NULL;
    assert_int_equal(store_events_page(f->st, 6, 0, 0, 10, &cuts, err, sizeof err), 0);
    assert_int_equal(json_array_size(cuts), 2);
    json_t *last = json_array_get(cuts, 1);
    assert_string_equal(json_string_value(json_object_get(last, "type")), AUDIT_RETENTION_TYPE);
    assert_string_equal(json_string_value(json_object_get(last, "session_id")), AUDIT_SERVER_SESSION);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(last, "data"), "checkpoint_n")), 3);
    json_decref(cuts);
    assert_int_equal(store_session_get(f->st, "old", &s, err, sizeof err), STORE_NOT_FOUND);
    assert_int_equal(store_retention(f->st, util_now_ms() - 3600000, NULL, &r, err, sizeof err), 0);
    assert_int_equal(r.events, 0);
    /* A cursor behind the checkpoint (an endpoint back in the config) holds
     * nothing: those events are gone already. */
    raw_sql(f, "UPDATE webhook_cursors SET last_n = 0 WHERE key = 'hook'");
    assert_int_equal(store_retention(f->st, util_now_ms() - 3600000, "hook", &r, err, sizeof err), 0);
    assert_int_equal(r.held, 0);
    assert_int_equal(r.events, 0);
    /* Someone with write access to the store deletes the oldest history and
     * moves the checkpoint past it, as retention would, but by hand: no hash
     * to recompute, the head unchanged, and the last retention event names
     * another checkpoint. */
    raw_sql(f, "UPDATE chain_head SET checkpoint_n = 5, checkpoint_hash = (SELECT hash FROM events WHERE n = 5)");
    raw_sql(f, "DELETE FROM events WHERE n <= 5");
    assert_int_equal(store_audit_verify(f->st, &rep, err, sizeof err), 0);
    assert_true(json_is_false(json_object_get(rep, "ok")));
    json_t *problems = json_object_get(rep, "problems");
    assert_int_equal(json_array_size(problems), 1);
    assert_non_null(strstr(json_string_value(json_object_get(json_array_get(problems, 0), "problem")),
                           "not the one the last retention event records"));
    json_decref(rep);
}

/* On a store that nothing is written to, the record of the last cut is all
 * that ages: it is kept, not replaced by another at every run. */
static void retention_on_an_idle_store(void **state)
{
    struct fixture *f = *state;
    char err[256];
    ingest_batch(f, &alice, "old", 0, 2, 1000, 0);
    raw_sql(f, "UPDATE events SET received_at = 1000");
    struct store_retention_report r;
    assert_int_equal(store_retention(f->st, util_now_ms() - 3600000, NULL, &r, err, sizeof err), 0);
    assert_int_equal(r.events, 2);
    /* An hour on (a cutoff ahead of now): the retention event (3) is old too. */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(store_retention(f->st, util_now_ms() + 3600000, NULL, &r, err, sizeof err), 0);
        assert_int_equal(r.events, 0);
    }
    json_t *rep = NULL;
    assert_int_equal(store_audit_verify(f->st, &rep, err, sizeof err), 0);
    assert_true(json_is_true(json_object_get(rep, "ok")));
    assert_int_equal(json_integer_value(json_object_get(rep, "head")), 3);
    assert_int_equal(json_integer_value(json_object_get(rep, "checkpoint")), 2);
    json_decref(rep);
    /* A new event that ages: the next cut takes it and the old record. */
    ingest_batch(f, &alice, "later", 0, 1, 1000, 0);
    assert_int_equal(store_retention(f->st, util_now_ms() + 3600000, NULL, &r, err, sizeof err), 0);
    assert_int_equal(r.events, 2);
    assert_int_equal(store_audit_verify(f->st, &rep, err, sizeof err), 0);
    assert_true(json_is_true(json_object_get(rep, "ok")));
    assert_int_equal(json_integer_value(json_object_get(rep, "checkpoint")), 4);
    assert_int_equal(json_integer_value(json_object_get(rep, "head")), 5);
    json_decref(rep);
}

/* A checkpoint that an older server's retention made (schema 6: no event
 * records it) gets its event when the store moves to schema 7, once. */
static void retention_checkpoint_of_an_older_server(void **state)
{
    struct fixture *f = *state;
    char err[256];
    ingest_batch(f, &alice, "old", 0, 3, 1000, 0);
    ingest_batch(f, &alice, "new", 0, 2, 9000000, 0);
    raw_sql(f, "UPDATE events SET received_at = 1000 WHERE session_id = 'old'");
    struct store_retention_report r;
    assert_int_equal(store_retention(f->st, util_now_ms() - 3600000, NULL, &r, err, sizeof err), 0);
    assert_int_equal(r.events, 3);
    /* Back to what schema 6 left: the cut, without its event. */
    raw_sql(f, "DELETE FROM events WHERE type = '" AUDIT_RETENTION_TYPE "'");
    raw_sql(f, "UPDATE chain_head SET last_n = 5, last_hash = (SELECT hash FROM events WHERE n = 5)");
    raw_sql(f, "ALTER TABLE checkpoints DROP COLUMN event_n");
    raw_sql(f, "DELETE FROM schema_migrations WHERE version = 7");
    json_t *rep = NULL;
    assert_int_equal(store_audit_verify(f->st, &rep, err, sizeof err), 0);
    assert_true(json_is_false(json_object_get(rep, "ok")));
    json_decref(rep);
    struct store *again = store_open(f->url, err, sizeof err);
    assert_non_null(again);
    assert_int_equal(store_audit_verify(again, &rep, err, sizeof err), 0);
    assert_true(json_is_true(json_object_get(rep, "ok")));
    assert_int_equal(json_integer_value(json_object_get(rep, "checkpoint")), 3);
    assert_int_equal(json_integer_value(json_object_get(rep, "head")), 6);
    json_decref(rep);
    store_close(again);
    /* Opened again: nothing more is appended. */
    again = store_open(f->url, err, sizeof err);
    assert_non_null(again);
    assert_int_equal(store_audit_verify(again, &rep, err, sizeof err), 0);
    assert_int_equal(json_integer_value(json_object_get(rep, "head")), 6);
    json_decref(rep);
    store_close(again);
}

static void review_life_cycle(void **state)
{
    struct fixture *f = *state;
    char err[256];
    json_t *r = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:s}", "id", "r1", "connection", "prod",
                          "statement", "delete from t", "statement_hash", "h1", "requester", "alice",
                          "requester_issuer", "dev", "requester_name", "Alice", "created_at", (json_int_t)1000,
                          "expires_at", (json_int_t)5000, "rule", "review-no-where");
    json_object_set_new(r, "params", json_pack("[s,n,s]", "ann@x", "it's \"quoted\""));
    assert_int_equal(store_review_create(f->st, r, err, sizeof err), 0);
    json_t *saved = NULL;
    assert_int_equal(store_review_get(f->st, "r1", &saved, err, sizeof err), 0);
    assert_string_equal(json_string_value(json_object_get(saved, "rule")), "review-no-where");
    /* The bound values come back as the array they were. */
    assert_true(json_equal(json_object_get(saved, "params"), json_object_get(r, "params")));
    json_decref(saved);
    json_object_del(r, "params");
    json_object_set_new(r, "id", json_string("r2"));
    json_object_set_new(r, "expires_at", json_integer(1500));
    assert_int_equal(store_review_create(f->st, r, err, sizeof err), 0);
    json_decref(r);
    assert_int_equal(store_review_count(f->st, "pending"), 2);
    assert_int_equal(store_review_decide(f->st, "r1", "approved", "ok", "bob", 2000, err, sizeof err), 0);
    assert_int_equal(store_review_decide(f->st, "r1", "denied", "no", "carol", 2001, err, sizeof err), STORE_CONFLICT);
    assert_int_equal(store_review_consume(f->st, "r1", "alice", "other", 2100, err, sizeof err), STORE_CONFLICT);
    assert_int_equal(store_review_consume(f->st, "r1", "mallory", "h1", 2100, err, sizeof err), STORE_CONFLICT);
    assert_int_equal(store_review_consume(f->st, "r1", "alice", "h1", 2100, err, sizeof err), 0);
    assert_int_equal(store_review_consume(f->st, "r1", "alice", "h1", 2200, err, sizeof err), STORE_CONFLICT);
    assert_int_equal(store_review_expire(f->st, 2000, err, sizeof err), 1);
    assert_int_equal(store_review_decide(f->st, "r2", "approved", "late", "bob", 2300, err, sizeof err), STORE_CONFLICT);
    json_t *got = NULL;
    assert_int_equal(store_review_get(f->st, "r2", &got, err, sizeof err), 0);
    assert_string_equal(json_string_value(json_object_get(got, "status")), "expired");
    assert_true(json_is_null(json_object_get(got, "params"))); /* none given */
    json_decref(got);
    json_t *list = NULL;
    assert_int_equal(store_review_list(f->st, NULL, -1, NULL, NULL, &list, err, sizeof err), 0);
    assert_int_equal(json_array_size(list), 2);
    json_decref(list);
    /* A scope lists the requester's own and those of the connections named,
     * in the query itself. */
    r = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I}", "id", "r3", "connection", "staging", "statement",
                  "vacuum", "statement_hash", "h3", "requester", "carol", "requester_issuer", "dev",
                  "requester_name", "Carol", "created_at", (json_int_t)3000, "expires_at", (json_int_t)9000);
    assert_int_equal(store_review_create(f->st, r, err, sizeof err), 0);
    json_decref(r);
    const char *prod[] = {"prod"}, *both[] = {"prod", "staging"};
    struct {
        struct store_review_scope scope;
        const char *status;
        const char *want;
    } cases[] = {
        {{true, NULL, NULL, NULL, 0}, NULL, "r1 r2 r3"},
        {{false, "dev", "carol", NULL, 0}, NULL, "r3"},
        {{false, "other-issuer", "carol", NULL, 0}, NULL, ""},
        {{false, NULL, NULL, prod, 1}, NULL, "r1 r2"},
        {{false, "dev", "carol", prod, 1}, NULL, "r1 r2 r3"},
        {{false, NULL, NULL, both, 2}, "pending", "r3"},
        {{false, "dev", "mallory", NULL, 0}, NULL, ""},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        assert_int_equal(store_review_list(f->st, cases[k].status, -1, &cases[k].scope, NULL, &list, err, sizeof err), 0);
        char ids[64] = "";
        size_t i;
        json_t *v;
        json_array_foreach(list, i, v) {
            strcat(ids, i ? " " : "");
            strcat(ids, json_string_value(json_object_get(v, "id")));
        }
        json_decref(list);
        assert_string_equal(ids, cases[k].want);
    }
}

/* One instance pushes under a lease; a new endpoint starts at the head; the
 * cursor survives the instance, and a lapsed lease passes on. */
static void webhook_cursor_lease(void **state)
{
    struct fixture *f = *state;
    char err[256];
    ingest_batch(f, &alice, "s-hook", 0, 3, 1000, 0);
    int64_t at = -1;
    assert_int_equal(store_webhook_claim(f->st, "k1", "A", 1000, 30000, &at, err, sizeof err), 0);
    assert_int_equal(at, 3); /* the head: what came before is not pushed */
    assert_int_equal(store_webhook_claim(f->st, "k1", "B", 2000, 30000, &at, err, sizeof err), STORE_CONFLICT);
    assert_int_equal(store_webhook_advance(f->st, "k1", "A", 5, 3000, 30000, err, sizeof err), 0);
    assert_int_equal(store_webhook_advance(f->st, "k1", "B", 9, 3000, 30000, err, sizeof err), STORE_CONFLICT);
    at = -1;
    assert_int_equal(store_webhook_claim(f->st, "k1", "A", 4000, 30000, &at, err, sizeof err), 0); /* renews */
    assert_int_equal(at, 5);
    /* A's lease (to 34000) lapses: B takes over where A was. */
    assert_int_equal(store_webhook_claim(f->st, "k1", "B", 33999, 30000, &at, err, sizeof err), STORE_CONFLICT);
    at = -1;
    assert_int_equal(store_webhook_claim(f->st, "k1", "B", 34001, 30000, &at, err, sizeof err), 0);
    assert_int_equal(at, 5);
    assert_int_equal(store_webhook_advance(f->st, "k1", "A", 6, 34002, 30000, err, sizeof err), STORE_CONFLICT);
    /* Another endpoint has its own cursor, from the head. */
    ingest_batch(f, &alice, "s-hook", 3, 2, 2000, 0);
    at = -1;
    assert_int_equal(store_webhook_claim(f->st, "k2", "A", 35000, 30000, &at, err, sizeof err), 0);
    assert_int_equal(at, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(migrations_run_once, setup, teardown),
        cmocka_unit_test(store_urls),
        cmocka_unit_test_setup_teardown(open_existing, setup, teardown),
        cmocka_unit_test_setup_teardown(connections, setup, teardown),
        cmocka_unit_test_setup_teardown(apikeys, setup, teardown),
        cmocka_unit_test_setup_teardown(ingest_verify_and_tamper, setup, teardown),
        cmocka_unit_test_setup_teardown(session_queries_and_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(retention_keeps_chain_verifiable, setup, teardown),
        cmocka_unit_test_setup_teardown(retention_checkpoint_of_an_older_server, setup, teardown),
        cmocka_unit_test_setup_teardown(retention_on_an_idle_store, setup, teardown),
        cmocka_unit_test_setup_teardown(review_life_cycle, setup, teardown),
        cmocka_unit_test_setup_teardown(webhook_cursor_lease, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
