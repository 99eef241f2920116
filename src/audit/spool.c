/* spool.c — the durable local audit spool: SQLite in WAL mode, group commit
 * of appended events, ordered reads and acknowledgement for the shipper. */
#include "hoopctl/spool.h"
#include "hoopctl/util.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct spool {
    sqlite3 *db;
    sqlite3_stmt *insert, *fetch, *ack, *count, *quarantine, *unqueue, *quarantined;
    sqlite3_stmt *begin, *commit; /* prepared once: a group commit per statement round */
    int uncommitted;
    int in_txn;
    /* Groups are numbered from 1; group is the open one (or the next). The
     * fate of the last 64 ended groups: bit g % 64 of lost. */
    uint64_t group, lost;
    char lost_err[200]; /* why the last lost group was lost */
};

static int fail_db(struct spool *s, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "spool: %s: %s", what, s && s->db ? sqlite3_errmsg(s->db) : "no database");
    return -1;
}

/* The spool's tables, column by column as PRAGMA table_info lists them. A
 * file whose tables differ (another program's, or a hand-made one that
 * lets a column be NULL) is refused: the shipper and the quarantine rely on
 * every column being there and set. */
struct spool_column {
    const char *name, *type;
    int notnull, pk;
};
static const struct spool_column events_columns[] = {
    {"seq", "INTEGER", 0, 1}, {"id", "TEXT", 1, 0}, {"session_id", "TEXT", 1, 0}, {"body", "TEXT", 1, 0}, {0}};
static const struct spool_column quarantine_columns[] = {
    {"n", "INTEGER", 0, 1},       {"seq", "INTEGER", 1, 0}, {"id", "TEXT", 1, 0},         {"session_id", "TEXT", 1, 0},
    {"body", "TEXT", 1, 0},       {"reason", "TEXT", 1, 0}, {"at_ms", "INTEGER", 1, 0}, {0}};
static const struct spool_column meta_columns[] = {{"key", "TEXT", 0, 1}, {"value", "TEXT", 1, 0}, {0}};
#define SPOOL_SCHEMA_VERSION 1 /* PRAGMA user_version of a spool (0: made before the stamp) */
#define SPOOL_STR_(x) #x
#define SPOOL_STR(x) SPOOL_STR_(x)

/* 1 when table is absent, 0 when it has exactly the columns cols, -1 with
 * what differs in why. */
static int check_table(sqlite3 *db, const char *table, const struct spool_column *cols, char *why, size_t whylen)
{
    char sql[80];
    snprintf(sql, sizeof sql, "PRAGMA table_info(%s)", table);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(why, whylen, "%s", sqlite3_errmsg(db));
        return -1;
    }
    int i = 0, rc, bad = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && !bad) {
        const char *name = (const char *)sqlite3_column_text(st, 1);
        const char *type = (const char *)sqlite3_column_text(st, 2);
        const struct spool_column *c = &cols[i];
        if (!c->name) {
            snprintf(why, whylen, "table %s has a column %s of no audit spool", table, name ? name : "?");
            bad = 1;
        } else if (!name || strcmp(name, c->name) != 0 || !type || strcasecmp(type, c->type) != 0) {
            snprintf(why, whylen, "table %s: column %d is %s %s, not %s %s", table, i + 1, name ? name : "?",
                     type ? type : "?", c->name, c->type);
            bad = 1;
        } else if (sqlite3_column_int(st, 3) != c->notnull || (sqlite3_column_int(st, 5) != 0) != c->pk) {
            snprintf(why, whylen, "table %s: column %s %s", table, c->name,
                     c->pk ? "is not the primary key" : "may be NULL");
            bad = 1;
        }
        i++;
    }
    sqlite3_finalize(st);
    if (bad)
        return -1;
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        snprintf(why, whylen, "%s", sqlite3_errmsg(db));
        return -1;
    }
    if (i == 0)
        return 1;
    if (cols[i].name) {
        snprintf(why, whylen, "table %s has no column %s", table, cols[i].name);
        return -1;
    }
    return 0;
}

/* Whether the file at the handle is empty or a spool of ours (0), or not
 * (-1, with why). */
static int check_schema(sqlite3 *db, char *why, size_t whylen)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK) {
        snprintf(why, whylen, "%s", sqlite3_errmsg(db));
        return -1;
    }
    int rc = sqlite3_step(st);
    int version = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) {
        snprintf(why, whylen, "%s", sqlite3_errmsg(db));
        return -1;
    }
    if (version != 0 && version != SPOOL_SCHEMA_VERSION) {
        snprintf(why, whylen, "schema version %d, not %d", version, SPOOL_SCHEMA_VERSION);
        return -1;
    }
    int ev = check_table(db, "spool_events", events_columns, why, whylen);
    if (ev < 0)
        return -1;
    int q = check_table(db, "spool_quarantine", quarantine_columns, why, whylen);
    if (q < 0)
        return -1;
    if (check_table(db, "spool_meta", meta_columns, why, whylen) < 0)
        return -1;
    if (ev == 1 && q == 0) { /* a quarantine without its queue: not one of ours */
        snprintf(why, whylen, "no table spool_events");
        return -1;
    }
    if (sqlite3_prepare_v2(db,
                           "SELECT name FROM sqlite_master WHERE type = 'table'"
                           " AND name NOT IN ('spool_events', 'spool_quarantine', 'spool_meta') LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK) {
        snprintf(why, whylen, "%s", sqlite3_errmsg(db));
        return -1;
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        snprintf(why, whylen, "it has a table %.60s", (const char *)sqlite3_column_text(st, 0));
    else if (rc != SQLITE_DONE)
        snprintf(why, whylen, "%s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

struct spool *spool_open(const char *path, enum spool_durability durability, char *err,
                         size_t errlen)
{
    struct spool *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "spool: out of memory");
        return NULL;
    }
    s->group = 1;
    util_sqlite_create_private(path); /* statements, parameters and result samples */
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        fail_db(s, path, err, errlen);
        spool_close(s);
        return NULL;
    }
    sqlite3_busy_timeout(s->db, 5000);
    char why[200];
    if (check_schema(s->db, why, sizeof why) < 0) {
        snprintf(err, errlen, "spool: %s is not a hoopctl audit spool (%s); move it away", path, why);
        spool_close(s);
        return NULL;
    }
    char pragmas[800];
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA mmap_size=67108864; "
             /* Only the table's last page changes per event (no index, no
              * sqlite_sequence), which keeps a commit to one or two pages
              * of the log. A seq may be reused once the table is empty,
              * so an ack names each event by seq and id (two processes of
              * one user on one connection share the spool, each with a
              * shipper: a range would delete the other's new events). */
             "CREATE TABLE IF NOT EXISTS spool_events ("
             " seq INTEGER PRIMARY KEY, id TEXT NOT NULL,"
             " session_id TEXT NOT NULL, body TEXT NOT NULL);"
             "CREATE TABLE IF NOT EXISTS spool_quarantine ("
             " n INTEGER PRIMARY KEY, seq INTEGER NOT NULL, id TEXT NOT NULL, session_id TEXT NOT NULL,"
             " body TEXT NOT NULL, reason TEXT NOT NULL, at_ms INTEGER NOT NULL);"
             "CREATE TABLE IF NOT EXISTS spool_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
             "PRAGMA user_version=" SPOOL_STR(SPOOL_SCHEMA_VERSION) ";",
             durability == SPOOL_SURVIVE_POWER_LOSS ? "FULL" : "NORMAL");
    char *msg = NULL;
    if (sqlite3_exec(s->db, pragmas, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "spool: %s: %s", path, msg ? msg : "cannot initialise");
        sqlite3_free(msg);
        spool_close(s);
        return NULL;
    }
    if (sqlite3_prepare_v2(s->db, "INSERT INTO spool_events(id, session_id, body) VALUES (?,?,?)",
                           -1, &s->insert, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "BEGIN IMMEDIATE", -1, &s->begin, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "COMMIT", -1, &s->commit, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "SELECT seq, id, session_id, body FROM spool_events ORDER BY seq LIMIT ?",
                           -1, &s->fetch, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "DELETE FROM spool_events WHERE seq = ? AND id = ?", -1, &s->ack, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "SELECT count(*) FROM spool_events", -1, &s->count, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db,
                           "INSERT INTO spool_quarantine(seq, id, session_id, body, reason, at_ms)"
                           " SELECT seq, id, session_id, body, ?2, ?3 FROM spool_events WHERE seq = ?1",
                           -1, &s->quarantine, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "DELETE FROM spool_events WHERE seq = ?", -1, &s->unqueue, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "SELECT count(*) FROM spool_quarantine", -1, &s->quarantined, NULL) !=
            SQLITE_OK) {
        fail_db(s, "prepare", err, errlen);
        spool_close(s);
        return NULL;
    }
    return s;
}

void spool_close(struct spool *s)
{
    if (!s)
        return;
    if (s->in_txn)
        sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    sqlite3_finalize(s->insert);
    sqlite3_finalize(s->fetch);
    sqlite3_finalize(s->ack);
    sqlite3_finalize(s->count);
    sqlite3_finalize(s->quarantine);
    sqlite3_finalize(s->unqueue);
    sqlite3_finalize(s->quarantined);
    sqlite3_finalize(s->begin);
    sqlite3_finalize(s->commit);
    sqlite3_close(s->db);
    free(s);
}

/* The open group ends, durable or lost (its events rolled back). */
static void end_group(struct spool *s, int durable, const char *why)
{
    uint64_t bit = (uint64_t)1 << (s->group % 64);
    s->lost = durable ? s->lost & ~bit : s->lost | bit;
    if (!durable)
        snprintf(s->lost_err, sizeof s->lost_err, "%s", why);
    s->group++;
    s->in_txn = 0;
    s->uncommitted = 0;
}

int spool_append(struct spool *s, const char *event_id, const char *session_id,
                 const char *json, size_t len, char *err, size_t errlen)
{
    if (len > (size_t)1 << 30) {
        snprintf(err, errlen, "spool: event of %zu bytes is too large", len);
        return -1;
    }
    if (!s->in_txn) {
        int rc = sqlite3_step(s->begin);
        sqlite3_reset(s->begin);
        if (rc != SQLITE_DONE)
            return fail_db(s, "begin", err, errlen);
        s->in_txn = 1;
    }
    sqlite3_reset(s->insert);
    sqlite3_bind_text(s->insert, 1, event_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s->insert, 2, session_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s->insert, 3, json, (int)len, SQLITE_STATIC);
    int rc = sqlite3_step(s->insert);
    sqlite3_clear_bindings(s->insert);
    if (rc != SQLITE_DONE) {
        fail_db(s, "append", err, errlen);
        /* Most errors undo the one INSERT; some (a full disk, an I/O error)
         * roll the whole transaction back: then the group is lost. */
        if (sqlite3_get_autocommit(s->db))
            end_group(s, 0, err);
        return -1;
    }
    s->uncommitted++;
    return 0;
}

int spool_commit(struct spool *s, char *err, size_t errlen)
{
    if (!s->in_txn)
        return 0;
    int rc = sqlite3_step(s->commit);
    sqlite3_reset(s->commit);
    if (rc != SQLITE_DONE) {
        fail_db(s, "commit", err, errlen);
        /* The group is lost: roll it back so the next one starts clean. */
        if (!sqlite3_get_autocommit(s->db))
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        end_group(s, 0, err);
        return -1;
    }
    end_group(s, 1, NULL);
    return 0;
}

int spool_uncommitted(const struct spool *s) { return s->uncommitted; }

uint64_t spool_group(const struct spool *s) { return s->group; }

enum spool_group_state spool_group_state(const struct spool *s, uint64_t group, const char **why)
{
    *why = s->lost_err;
    if (group >= s->group)
        return SPOOL_GROUP_OPEN;
    if (s->group - group > 64) { /* too old to remember: fail closed */
        *why = "spool: the fate of that group is no longer known";
        return SPOOL_GROUP_LOST;
    }
    return s->lost >> (group % 64) & 1 ? SPOOL_GROUP_LOST : SPOOL_GROUP_DURABLE;
}

int spool_fetch(struct spool *s, int max, struct spool_batch *out, char *err, size_t errlen)
{
    out->n = 0;
    out->events = NULL;
    if (max <= 0)
        return 0;
    out->events = calloc((size_t)max, sizeof *out->events);
    if (!out->events) {
        snprintf(err, errlen, "spool: out of memory");
        return -1;
    }
    sqlite3_reset(s->fetch);
    sqlite3_bind_int(s->fetch, 1, max);
    int rc;
    while ((rc = sqlite3_step(s->fetch)) == SQLITE_ROW) {
        struct spool_event *e = &out->events[out->n];
        e->seq = sqlite3_column_int64(s->fetch, 0);
        /* The schema says NOT NULL (checked at open); a NULL is still no crash. */
        const char *id = (const char *)sqlite3_column_text(s->fetch, 1);
        const char *sid = (const char *)sqlite3_column_text(s->fetch, 2);
        const char *body = (const char *)sqlite3_column_text(s->fetch, 3);
        snprintf(e->id, sizeof e->id, "%s", id ? id : "");
        snprintf(e->session_id, sizeof e->session_id, "%s", sid ? sid : "");
        e->json = strdup(body ? body : "");
        if (!e->json) {
            sqlite3_reset(s->fetch);
            spool_batch_free(out);
            snprintf(err, errlen, "spool: out of memory");
            return -1;
        }
        out->n++;
    }
    sqlite3_reset(s->fetch);
    if (rc != SQLITE_DONE) {
        spool_batch_free(out);
        return fail_db(s, "fetch", err, errlen);
    }
    return 0;
}

void spool_batch_free(struct spool_batch *b)
{
    for (int i = 0; i < b->n; i++)
        free(b->events[i].json);
    free(b->events);
    b->events = NULL;
    b->n = 0;
}

/* One step of a prepared statement; reset after. */
static int step_once(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

/* A transaction of the shipper's own (ack, quarantine), never inside an
 * appender's open group: begin it, then end it with the steps' last rc
 * (committed when every step was done, else rolled back). 0 or -1. */
static int own_txn_begin(struct spool *s, const char *what, char *err, size_t errlen)
{
    if (s->in_txn) {
        snprintf(err, errlen, "spool: %s inside an open group", what);
        return -1;
    }
    return sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK ? 0
                                                                                 : fail_db(s, "begin", err, errlen);
}

static int own_txn_end(struct spool *s, int rc, const char *what, char *err, size_t errlen)
{
    if (rc != SQLITE_DONE || sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        fail_db(s, what, err, errlen);
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

int spool_ack(struct spool *s, const struct spool_batch *b, int n, char *err, size_t errlen)
{
    if (own_txn_begin(s, "ack", err, errlen) < 0)
        return -1;
    int rc = SQLITE_DONE;
    for (int i = 0; i < n && i < b->n && rc == SQLITE_DONE; i++) {
        sqlite3_bind_int64(s->ack, 1, b->events[i].seq);
        sqlite3_bind_text(s->ack, 2, b->events[i].id, -1, SQLITE_STATIC);
        rc = step_once(s->ack);
    }
    return own_txn_end(s, rc, "ack", err, errlen);
}

int64_t spool_pending(struct spool *s)
{
    sqlite3_reset(s->count);
    int64_t n = sqlite3_step(s->count) == SQLITE_ROW ? sqlite3_column_int64(s->count, 0) : -1;
    sqlite3_reset(s->count);
    return n;
}

int spool_quarantine(struct spool *s, int64_t seq, const char *reason, int64_t now_ms, char *err,
                     size_t errlen)
{
    if (own_txn_begin(s, "quarantine", err, errlen) < 0)
        return -1;
    sqlite3_bind_int64(s->quarantine, 1, seq);
    sqlite3_bind_text(s->quarantine, 2, reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s->quarantine, 3, now_ms);
    int rc = step_once(s->quarantine);
    if (rc == SQLITE_DONE) {
        sqlite3_bind_int64(s->unqueue, 1, seq);
        rc = step_once(s->unqueue);
    }
    return own_txn_end(s, rc, "quarantine", err, errlen);
}

int64_t spool_quarantined(struct spool *s)
{
    int64_t n = sqlite3_step(s->quarantined) == SQLITE_ROW ? sqlite3_column_int64(s->quarantined, 0) : -1;
    sqlite3_reset(s->quarantined);
    return n;
}

int spool_defer_checkpoints(struct spool *s, char *err, size_t errlen)
{
    if (sqlite3_exec(s->db, "PRAGMA wal_autocheckpoint=0", NULL, NULL, NULL) != SQLITE_OK)
        return fail_db(s, "wal_autocheckpoint", err, errlen);
    return 0;
}

int spool_checkpoint(struct spool *s, char *err, size_t errlen)
{
    int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return rc == SQLITE_OK || rc == SQLITE_BUSY ? 0 : fail_db(s, "checkpoint", err, errlen);
}

int spool_set_meta(struct spool *s, const char *key, const char *value, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO spool_meta(key, value) VALUES (?, ?)", -1, &st, NULL) !=
        SQLITE_OK)
        return fail_db(s, "meta", err, errlen);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : fail_db(s, "meta", err, errlen);
}

int spool_peek(const char *path, int64_t *pending, struct spool_meta *meta, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char why[200];
    int rc = -1;
    memset(meta, 0, sizeof *meta);
    *pending = 0;
    /* Read-write but never created nor changed: a reader of a WAL file
     * that its writer left (killed) needs to recover the log. */
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "spool: %s: %s", path, db ? sqlite3_errmsg(db) : "cannot open");
        goto out;
    }
    sqlite3_busy_timeout(db, 1000);
    if (check_schema(db, why, sizeof why) < 0) {
        snprintf(err, errlen, "spool: %s is not a hoopctl audit spool (%s)", path, why);
        goto out;
    }
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM spool_events", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        snprintf(err, errlen, "spool: %s: %s", path, sqlite3_errmsg(db));
        goto out;
    }
    *pending = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    rc = 0;
    /* Spools made before spool_meta have none: the fields stay empty. */
    if (sqlite3_prepare_v2(db, "SELECT key, value FROM spool_meta", -1, &st, NULL) != SQLITE_OK)
        goto out;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(st, 0), *v = (const char *)sqlite3_column_text(st, 1);
        if (!k || !v)
            continue;
        if (strcmp(k, "server") == 0)
            snprintf(meta->server, sizeof meta->server, "%s", v);
        else if (strcmp(k, "subject") == 0)
            snprintf(meta->subject, sizeof meta->subject, "%s", v);
        else if (strcmp(k, "connection") == 0)
            snprintf(meta->connection, sizeof meta->connection, "%s", v);
    }
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}
