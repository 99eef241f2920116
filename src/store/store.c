/* store.c — the store's operations, written once in portable SQL over the
 * engine in driver.h (SQLite or PostgreSQL), with versioned migrations. */
#include "hoopctl/store.h"
#include "hoopctl/audit.h"
#include "hoopctl/log.h"
#include "hoopctl/util.h"
#include "driver.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>

struct store {
    const struct db_driver *d;
    void *h;
    int version;
    /* Built once so that SQLite keeps them prepared (cached by address). */
    struct buf sql_exists;       /* SELECT id FROM events WHERE id IN ($1..$500) */
    struct buf sql_insert_full;  /* INSERT of EVENT_CHUNK rows */
};

/* ---- migrations ---------------------------------------------------------- */

static const char *const store_migrations[] = {
    /* 1: the whole first schema. Types are ones both engines accept. */
    "CREATE TABLE connections ("
    " name TEXT PRIMARY KEY, host TEXT NOT NULL, port INTEGER NOT NULL, dbname TEXT NOT NULL,"
    " dbuser TEXT NOT NULL, sslmode TEXT NOT NULL, secret_enc TEXT, allowed_groups TEXT NOT NULL,"
    " reviewer_groups TEXT NOT NULL, policy TEXT NOT NULL, created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL);"
    "CREATE TABLE apikeys ("
    " id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, token_hash TEXT NOT NULL UNIQUE,"
    " groups TEXT NOT NULL, created_by TEXT, created_at BIGINT NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE sessions ("
    " id TEXT PRIMARY KEY, issuer TEXT NOT NULL, subject TEXT NOT NULL, user_name TEXT,"
    " groups TEXT, connection TEXT, client_addr TEXT, application TEXT, gateway_host TEXT,"
    " started_at BIGINT NOT NULL, ended_at BIGINT, nevents BIGINT NOT NULL DEFAULT 0,"
    " has_denials INTEGER NOT NULL DEFAULT 0, has_reviews INTEGER NOT NULL DEFAULT 0,"
    " sample_rows BIGINT NOT NULL DEFAULT 0);"
    "CREATE INDEX sessions_started ON sessions (started_at, id);"
    "CREATE INDEX sessions_subject ON sessions (subject, started_at);"
    "CREATE INDEX sessions_connection ON sessions (connection, started_at);"
    "CREATE INDEX sessions_denials ON sessions (has_denials, started_at);"
    "CREATE INDEX sessions_reviews ON sessions (has_reviews, started_at);"
    "CREATE TABLE events ("
    " n BIGINT PRIMARY KEY, id TEXT NOT NULL UNIQUE, session_id TEXT NOT NULL, seq BIGINT NOT NULL,"
    " type TEXT NOT NULL, ts BIGINT NOT NULL, subject TEXT NOT NULL, data TEXT NOT NULL,"
    " prev_hash TEXT NOT NULL, hash TEXT NOT NULL);"
    "CREATE INDEX events_session ON events (session_id, seq, n);"
    "CREATE INDEX events_ts ON events (ts);"
    "CREATE TABLE chain_head ("
    " id INTEGER PRIMARY KEY, last_n BIGINT NOT NULL, last_hash TEXT NOT NULL,"
    " checkpoint_n BIGINT NOT NULL, checkpoint_hash TEXT NOT NULL);"
    "INSERT INTO chain_head VALUES (1, 0, '" AUDIT_GENESIS_HASH "', 0, '" AUDIT_GENESIS_HASH "');"
    "CREATE TABLE checkpoints ("
    " n BIGINT PRIMARY KEY, hash TEXT NOT NULL, created_at BIGINT NOT NULL, cutoff BIGINT NOT NULL,"
    " deleted_events BIGINT NOT NULL);"
    "CREATE TABLE reviews ("
    " id TEXT PRIMARY KEY, connection TEXT NOT NULL, session_id TEXT, statement TEXT NOT NULL,"
    " statement_hash TEXT NOT NULL, requester TEXT NOT NULL, requester_issuer TEXT NOT NULL,"
    " requester_name TEXT, status TEXT NOT NULL, reason TEXT, decided_by TEXT,"
    " created_at BIGINT NOT NULL, decided_at BIGINT, expires_at BIGINT NOT NULL, consumed_at BIGINT);"
    "CREATE INDEX reviews_status ON reviews (status, created_at);",
    /* v2: the rule that asked for the review, for the approvers' queue */
    "ALTER TABLE reviews ADD COLUMN rule TEXT;",
    /* v3: when the server stored each event, by its own clock (an event's
     * ts is the gateway's); NULL in rows stored before */
    "ALTER TABLE events ADD COLUMN received_at BIGINT;",
    /* v4: the values bound to a held extended-protocol statement (a JSON
     * array of strings and nulls), for its reviewers; NULL when it has none.
     * The webhook's place in the chain, per endpoint (key: the SHA-256 of its
     * URL), and which server instance pushes (a lease), so that a restart
     * resumes and several instances push each event once. */
    "ALTER TABLE reviews ADD COLUMN params TEXT;"
    "CREATE TABLE webhook_cursors ("
    " key TEXT PRIMARY KEY, last_n BIGINT NOT NULL, owner TEXT NOT NULL, lease_until BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL);",
    /* v5: the one statement event a review is joined to (the first that
     * named it), so that one decision is never shown beside two statements */
    "ALTER TABLE reviews ADD COLUMN event_id TEXT;",
    /* v6: every policy rule whose reviewers must agree to a review, and the
     * policy they are rules of: {"indexes": [...] (-1 for the default
     * outcome), "policy_digest": "..."}; NULL from gateways that sent only
     * the rule's name */
    "ALTER TABLE reviews ADD COLUMN rules TEXT;",
    /* v7: the chain position of the retention event that records each cut
     * (NULL for none); a cut made before, by an older server, gets one when
     * this runs (store_attest_checkpoint) */
    "ALTER TABLE checkpoints ADD COLUMN event_n BIGINT;",
};
#define STORE_V_RETENTION_EVENTS 7
#define STORE_NMIGRATIONS ((int)(sizeof store_migrations / sizeof store_migrations[0]))

static int q(struct store *s, const char *sql, int n, const char *const *p, db_row_fn fn, void *arg,
             int64_t *changes, char *err, size_t errlen)
{
    return s->d->exec(s->h, sql, n, p, fn, arg, changes, err, errlen);
}

static int q0(struct store *s, const char *sql, char *err, size_t errlen)
{
    return q(s, sql, 0, NULL, NULL, NULL, NULL, err, errlen);
}

static void rollback(struct store *s)
{
    char e[256];
    q0(s, "ROLLBACK", e, sizeof e);
}

static int row_int(void *arg, int nc, const char *const *v)
{
    if (nc > 0 && v[0])
        *(int64_t *)arg = strtoll(v[0], NULL, 10);
    return 1;
}

static int store_migrate_locked(struct store *s, char *err, size_t errlen);
static int store_attest_checkpoint(struct store *s, char *err, size_t errlen);

/* Two servers starting at once on one PostgreSQL store: even CREATE TABLE IF
 * NOT EXISTS races there (a unique violation in pg_type), so the whole
 * migration runs under a session advisory lock; one migrates, one waits. */
static int store_migrate(struct store *s, char *err, size_t errlen)
{
    static const char lock_key[] = "727383"; /* "hoopctl migrations" */
    bool pg = strcmp(s->d->kind, "postgres") == 0;
    const char *p[] = {lock_key};
    int rc;
    /* The store's lock_timeout cuts each wait short; another instance's
     * migration may take longer, and this one waits for it. */
    while (pg &&
           (rc = q(s, "SELECT pg_advisory_lock($1::bigint)", 1, p, NULL, NULL, NULL, err, errlen)) == STORE_BUSY)
        log_info("store", "waiting for another server's schema migration");
    if (pg && rc)
        return rc;
    rc = store_migrate_locked(s, err, errlen);
    if (pg) {
        char e[256];
        q(s, "SELECT pg_advisory_unlock($1::bigint)", 1, p, NULL, NULL, NULL, e, sizeof e);
    }
    return rc;
}

static int row_text(void *arg, int nc, const char *const *v)
{
    if (nc > 0 && v[0])
        snprintf(arg, 64, "%s", v[0]);
    return 1;
}

static int store_migrate_locked(struct store *s, char *err, size_t errlen)
{
    /* A database that holds tables but no store is someone else's (an
     * application's): the audit trail gets a database, or a schema, of its
     * own rather than tables beside theirs. */
    bool pg = strcmp(s->d->kind, "postgres") == 0;
    char other[64] = "";
    int rc = q(s, pg ? "SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = current_schema()"
                       " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema()"
                       " AND tablename = 'schema_migrations') ORDER BY 1 LIMIT 1"
                     : "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
                       " AND NOT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table'"
                       " AND name = 'schema_migrations') ORDER BY 1 LIMIT 1",
               0, NULL, row_text, other, NULL, err, errlen);
    if (rc)
        return rc;
    if (other[0]) {
        char *shown = util_terminal_safe(other, false);
        snprintf(err, errlen, "%s holds tables of something else (%s, ...) and no hoopctl store: give the store "
                              "a database of its own",
                 pg ? "this database's schema" : "this SQLite file", shown ? shown : "?");
        free(shown);
        return STORE_ERROR;
    }
    rc = q0(s, "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
               " applied_at BIGINT NOT NULL)", err, errlen);
    if (rc)
        return rc;
    if ((rc = q0(s, s->d->begin_write, err, errlen)))
        return rc;
    /* Two servers starting at once on PostgreSQL: one migrates, one waits. */
    if (strcmp(s->d->kind, "postgres") == 0 &&
        (rc = q0(s, "LOCK TABLE schema_migrations IN EXCLUSIVE MODE", err, errlen)))
        goto fail;
    int64_t cur = 0;
    if ((rc = q(s, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", 0, NULL, row_int, &cur,
                NULL, err, errlen)))
        goto fail;
    if (cur > STORE_NMIGRATIONS) {
        snprintf(err, errlen, "the store's schema (version %" PRId64 ") is newer than this hoopctl (%d)",
                 cur, STORE_NMIGRATIONS);
        rc = STORE_ERROR;
        goto fail;
    }
    for (int v = (int)cur + 1; v <= STORE_NMIGRATIONS; v++) {
        if ((rc = q0(s, store_migrations[v - 1], err, errlen)))
            goto fail;
        if (v == STORE_V_RETENTION_EVENTS && (rc = store_attest_checkpoint(s, err, errlen)))
            goto fail;
        char vs[16], ts[32];
        snprintf(vs, sizeof vs, "%d", v);
        snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));
        const char *p[] = {vs, ts};
        if ((rc = q(s, "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)", 2, p,
                    NULL, NULL, NULL, err, errlen)))
            goto fail;
    }
    if ((rc = q0(s, "COMMIT", err, errlen)))
        goto fail;
    s->version = STORE_NMIGRATIONS;
    return 0;
fail:
    rollback(s);
    return rc;
}

static bool url_is_postgres(const char *url)
{
    return strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0;
}

void store_url_display(const char *url, char *out, size_t outlen)
{
    if (!url || !url_is_postgres(url)) {
        snprintf(out, outlen, "%s", url ? url : "");
        return;
    }
    const char *rest = strstr(url, "://") + 3;
    size_t auth = strcspn(rest, "/?#");
    const char *at = memrchr(rest, '@', auth);
    const char *colon = at ? memchr(rest, ':', (size_t)(at - rest)) : NULL;
    size_t query = strcspn(rest, "?#");
    if (colon) /* user:password@host... */
        snprintf(out, outlen, "%.*s:***%.*s", (int)(colon - url), url, (int)(rest + query - at), at);
    else
        snprintf(out, outlen, "%.*s", (int)(rest + query - url), url);
}

int store_url_check(const char *url, char *err, size_t errlen)
{
    if (url && (url_is_postgres(url) || (strncmp(url, "sqlite:", 7) == 0 && url[7])))
        return 0;
    /* Only the scheme is named: the rest of a URL may hold a password. */
    size_t n = url ? strcspn(url, ":/@") : 0;
    if (url && strncmp(url, "sqlite:", 7) == 0)
        snprintf(err, errlen, "store URL 'sqlite:' needs a path: sqlite:PATH");
    else if (url && url[n] == ':' && n > 0 && n <= 32)
        snprintf(err, errlen, "unknown store scheme '%.*s:'; a store is sqlite:PATH, postgres://... or "
                 "postgresql://...", (int)n, url);
    else
        snprintf(err, errlen, "a store is sqlite:PATH, postgres://... or postgresql://...");
    return -1;
}

/* The driver for url, opened; readonly: an existing SQLite file, read only. */
static struct store *store_connect(const char *url, bool readonly, char *err, size_t errlen)
{
    if (store_url_check(url, err, errlen) < 0)
        return NULL;
    struct store *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (url_is_postgres(url)) {
        s->d = &db_postgres_driver;
        s->h = db_postgres_open(url, err, errlen);
    } else {
        s->d = &db_sqlite_driver;
        s->h = db_sqlite_open(url + 7, readonly, err, errlen);
    }
    if (!s->h) {
        free(s);
        return NULL;
    }
    return s;
}

struct store *store_open(const char *url, char *err, size_t errlen)
{
    struct store *s = store_connect(url, false, err, errlen);
    if (s && store_migrate(s, err, errlen) != 0) {
        store_close(s);
        return NULL;
    }
    return s;
}

struct store *store_open_existing(const char *url, int *status, char *err, size_t errlen)
{
    *status = STORE_ERROR;
    if (store_url_check(url, err, errlen) == 0 && !url_is_postgres(url)) {
        /* Say plainly that the file is not there (SQLite says "unable to
         * open database file"). */
        char path[1024];
        size_t plen = strcspn(url + 7, "?");
        struct stat st;
        snprintf(path, sizeof path, "%.*s", (int)(plen < sizeof path ? plen : sizeof path - 1), url + 7);
        if (stat(path, &st) < 0) {
            snprintf(err, errlen, "sqlite store %s: %s", path, strerror(errno));
            if (errno == ENOENT)
                *status = STORE_NOT_FOUND;
            return NULL;
        }
    }
    struct store *s = store_connect(url, true, err, errlen);
    if (!s)
        return NULL;
    bool pg = strcmp(s->d->kind, "postgres") == 0;
    int64_t tables = 0, cur = 0;
    int rc = pg ? q0(s, "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", err, errlen) : 0;
    if (!rc)
        rc = q(s, pg ? "SELECT COUNT(*) FROM pg_catalog.pg_tables WHERE tablename = 'schema_migrations'"
                       " AND schemaname = current_schema()"
                     : "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
               0, NULL, row_int, &tables, NULL, err, errlen);
    if (!rc && tables == 0) {
        snprintf(err, errlen, "%s holds no hoopctl store (no schema): not a store the server has used",
                 pg ? "this database" : url + 7);
        store_close(s);
        *status = STORE_NOT_FOUND;
        return NULL;
    }
    if (!rc)
        rc = q(s, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", 0, NULL, row_int, &cur, NULL,
               err, errlen);
    if (!rc && cur != STORE_NMIGRATIONS) {
        snprintf(err, errlen, cur > STORE_NMIGRATIONS
                                  ? "the store's schema (version %" PRId64 ") is newer than this hoopctl (%d)"
                                  : "the store's schema (version %" PRId64 ") is older than this hoopctl (%d);"
                                    " start 'hoopctl server' on it once to upgrade it",
                 cur, STORE_NMIGRATIONS);
        rc = STORE_ERROR;
    }
    if (rc) {
        store_close(s);
        return NULL;
    }
    s->version = (int)cur;
    *status = STORE_OK;
    return s;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    s->d->close(s->h);
    buf_free(&s->sql_exists);
    buf_free(&s->sql_insert_full);
    free(s);
}

const char *store_kind(const struct store *s) { return s->d->kind; }
int store_schema_version(struct store *s) { return s->version; }

int store_listen_fd(struct store *s, char *err, size_t errlen)
{
    if (!s->d->listen_fd)
        return -1;
    return s->d->listen_fd(s->h, "hoopctl_reviews", err, errlen);
}

int store_listen_drain(struct store *s)
{
    return s->d->listen_drain ? s->d->listen_drain(s->h) : 0;
}

void store_listen_reset(struct store *s)
{
    if (s->d->listen_reset)
        s->d->listen_reset(s->h);
}

static void store_notify_reviews(struct store *s)
{
    if (s->d->notify)
        s->d->notify(s->h, "hoopctl_reviews");
}

/* NOTIFY inside the open write transaction: the notice goes out with its
 * commit, or not at all. 0 on SQLite (one server, nothing to tell). */
static int notify_in_tx(struct store *s, char *err, size_t errlen)
{
    if (!s->d->notify || s->d->notify(s->h, "hoopctl_reviews") == 0)
        return 0;
    snprintf(err, errlen, "postgres: NOTIFY hoopctl_reviews failed");
    return STORE_ERROR;
}

/* A write of reviews that waiters on other servers must hear of: on
 * PostgreSQL the NOTIFY runs in the write's own transaction, so the notice
 * goes out with the commit; a link lost between the two left a decision
 * that waiters elsewhere heard of only at their poll's timeout. */
static int q_notified(struct store *s, const char *sql, int n, const char *const *p, int64_t *changes, char *err,
                      size_t errlen)
{
    if (!s->d->notify)
        return q(s, sql, n, p, NULL, NULL, changes, err, errlen);
    int rc = q0(s, s->d->begin_write, err, errlen);
    if (rc)
        return rc;
    rc = q(s, sql, n, p, NULL, NULL, changes, err, errlen);
    if (!rc && *changes > 0)
        rc = notify_in_tx(s, err, errlen);
    if (!rc)
        rc = q0(s, "COMMIT", err, errlen);
    if (rc)
        rollback(s);
    return rc;
}

/* ---- rows to JSON -------------------------------------------------------- */

/* Column kinds: 's' string, 'i' integer, 'j' JSON text, 'b' 0/1 as boolean,
 * '-' skipped. */
struct collect {
    const char *const *names;
    const char *kinds;
    json_t *arr;
};

static json_t *row_to_json(const char *const *names, const char *kinds, int nc, const char *const *v)
{
    json_t *o = json_object();
    for (int i = 0; i < nc && kinds[i]; i++) {
        json_t *val;
        if (kinds[i] == '-')
            continue;
        if (!v[i])
            val = json_null();
        else if (kinds[i] == 'i')
            val = json_integer(strtoll(v[i], NULL, 10));
        else if (kinds[i] == 'b')
            val = json_boolean(strtoll(v[i], NULL, 10) != 0);
        else if (kinds[i] == 'j') {
            val = json_loads(v[i], JSON_DECODE_ANY, NULL);
            if (!val)
                val = json_string(v[i]);
        } else
            val = json_string(v[i]);
        json_object_set_new(o, names[i], val);
    }
    return o;
}

static int collect_row(void *arg, int nc, const char *const *v)
{
    struct collect *c = arg;
    json_array_append_new(c->arr, row_to_json(c->names, c->kinds, nc, v));
    return 0;
}

static int query_json(struct store *s, const char *sql, int n, const char *const *p,
                      const char *const *names, const char *kinds, json_t **out, char *err,
                      size_t errlen)
{
    struct collect c = {names, kinds, json_array()};
    int rc = q(s, sql, n, p, collect_row, &c, NULL, err, errlen);
    if (rc) {
        json_decref(c.arr);
        return rc;
    }
    *out = c.arr;
    return 0;
}

/* The single row of a query, or STORE_NOT_FOUND. */
static int query_one(struct store *s, const char *sql, int n, const char *const *p,
                     const char *const *names, const char *kinds, json_t **out, char *err,
                     size_t errlen)
{
    json_t *arr;
    int rc = query_json(s, sql, n, p, names, kinds, &arr, err, errlen);
    if (rc)
        return rc;
    if (json_array_size(arr) == 0) {
        json_decref(arr);
        snprintf(err, errlen, "not found");
        return STORE_NOT_FOUND;
    }
    *out = json_incref(json_array_get(arr, 0));
    json_decref(arr);
    return 0;
}

static char *dump(json_t *v)
{
    return v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
}

static void i64s(char *buf, size_t len, int64_t v)
{
    snprintf(buf, len, "%" PRId64, v);
}


/* ---- connections --------------------------------------------------------- */

static const char *const conn_names[] = {"name", "host", "port", "database", "user", "sslmode",
                                         "secret_enc", "allowed_groups", "reviewer_groups", "policy",
                                         "created_at", "updated_at"};
#define CONN_COLS "name, host, port, dbname, dbuser, sslmode, secret_enc, allowed_groups," \
                  " reviewer_groups, policy, created_at, updated_at"

int store_connection_put(struct store *s, json_t *c, char *err, size_t errlen)
{
    char port[16], now[24];
    i64s(port, sizeof port, json_integer_value(json_object_get(c, "port")));
    i64s(now, sizeof now, util_now_ms());
    char *ag = dump(json_object_get(c, "allowed_groups"));
    char *rg = dump(json_object_get(c, "reviewer_groups"));
    char *pol = dump(json_object_get(c, "policy"));
    const char *p[] = {
        json_string_value(json_object_get(c, "name")), json_string_value(json_object_get(c, "host")),
        port, json_string_value(json_object_get(c, "database")),
        json_string_value(json_object_get(c, "user")), json_string_value(json_object_get(c, "sslmode")),
        json_string_value(json_object_get(c, "secret_enc")), ag ? ag : "[]", rg ? rg : "[]",
        pol ? pol : "{}", now};
    int rc = q(s,
               "INSERT INTO connections (" CONN_COLS ") VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$11)"
               " ON CONFLICT (name) DO UPDATE SET host = excluded.host, port = excluded.port,"
               " dbname = excluded.dbname, dbuser = excluded.dbuser, sslmode = excluded.sslmode,"
               " secret_enc = COALESCE(excluded.secret_enc, connections.secret_enc),"
               " allowed_groups = excluded.allowed_groups, reviewer_groups = excluded.reviewer_groups,"
               " policy = excluded.policy, updated_at = excluded.updated_at",
               11, p, NULL, NULL, NULL, err, errlen);
    free(ag);
    free(rg);
    free(pol);
    return rc;
}

int store_connection_get(struct store *s, const char *name, json_t **out, char *err, size_t errlen)
{
    const char *p[] = {name};
    return query_one(s, "SELECT " CONN_COLS " FROM connections WHERE name = $1", 1, p, conn_names,
                     "ssisssjjjjii", out, err, errlen);
}

int store_connection_list(struct store *s, json_t **out, char *err, size_t errlen)
{
    return query_json(s, "SELECT " CONN_COLS " FROM connections ORDER BY name", 0, NULL, conn_names,
                      "ssisssjjjjii", out, err, errlen);
}

static int changed_or_missing(int rc, int64_t changes, char *err, size_t errlen)
{
    if (rc == 0 && changes == 0) {
        snprintf(err, errlen, "not found");
        return STORE_NOT_FOUND;
    }
    return rc;
}

int store_connection_delete(struct store *s, const char *name, char *err, size_t errlen)
{
    const char *p[] = {name};
    int64_t ch = 0;
    int rc = q(s, "DELETE FROM connections WHERE name = $1", 1, p, NULL, NULL, &ch, err, errlen);
    return changed_or_missing(rc, ch, err, errlen);
}

int store_connection_set_policy(struct store *s, const char *name, json_t *policy, char *err,
                                size_t errlen)
{
    char *pol = dump(policy), now[24];
    i64s(now, sizeof now, util_now_ms());
    const char *p[] = {name, pol ? pol : "{}", now};
    int64_t ch = 0;
    int rc = q(s, "UPDATE connections SET policy = $2, updated_at = $3 WHERE name = $1", 3, p, NULL,
               NULL, &ch, err, errlen);
    free(pol);
    return changed_or_missing(rc, ch, err, errlen);
}

/* ---- API keys ------------------------------------------------------------ */

static const char *const key_names[] = {"id", "name", "groups", "created_by", "created_at", "revoked"};

int store_apikey_create(struct store *s, const char *id, const char *name, const char *token_hash,
                        json_t *groups, const char *created_by, char *err, size_t errlen)
{
    char *g = dump(groups), now[24];
    i64s(now, sizeof now, util_now_ms());
    const char *p[] = {id, name, token_hash, g ? g : "[]", created_by, now};
    int rc = q(s, "INSERT INTO apikeys (id, name, token_hash, groups, created_by, created_at)"
                  " VALUES ($1,$2,$3,$4,$5,$6)", 6, p, NULL, NULL, NULL, err, errlen);
    free(g);
    if (rc == STORE_CONFLICT)
        snprintf(err, errlen, "an API key named '%s' exists", name);
    return rc;
}

int store_apikey_lookup(struct store *s, const char *token_hash, json_t **out, char *err, size_t errlen)
{
    const char *p[] = {token_hash};
    return query_one(s, "SELECT id, name, groups, created_by, created_at, revoked FROM apikeys"
                        " WHERE token_hash = $1 AND revoked = 0", 1, p, key_names, "ssjsib", out,
                     err, errlen);
}

int store_apikey_list(struct store *s, json_t **out, char *err, size_t errlen)
{
    return query_json(s, "SELECT id, name, groups, created_by, created_at, revoked FROM apikeys"
                         " ORDER BY name", 0, NULL, key_names, "ssjsib", out, err, errlen);
}

int store_apikey_revoke(struct store *s, const char *id, char *err, size_t errlen)
{
    const char *p[] = {id};
    int64_t ch = 0;
    int rc = q(s, "UPDATE apikeys SET revoked = 1 WHERE id = $1 OR name = $1", 1, p, NULL, NULL, &ch,
               err, errlen);
    return changed_or_missing(rc, ch, err, errlen);
}

/* ---- events -------------------------------------------------------------- */

struct chain_state {
    int64_t last_n;
    char last_hash[65];
};

static int row_chain(void *arg, int nc, const char *const *v)
{
    struct chain_state *c = arg;
    if (nc >= 2 && v[0] && v[1]) {
        c->last_n = strtoll(v[0], NULL, 10);
        snprintf(c->last_hash, sizeof c->last_hash, "%s", v[1]);
    }
    return 1;
}

/* What one batch does to one session, applied once per session at the end. */
struct batch_session {
    const char *id;
    char issuer[256], subject[256];
    int64_t sample_rows, added_rows, nevents;
    int64_t started_at, ended_at;        /* -1: unchanged */
    const char *connection, *client_addr, *application, *gateway_host;
    bool denial, review;
    bool started, ended;                 /* a session_start / session_end is stored, or in this batch */
};

static int row_owner(void *arg, int nc, const char *const *v)
{
    struct batch_session *o = arg;
    if (nc >= 5) {
        snprintf(o->issuer, sizeof o->issuer, "%s", v[0] ? v[0] : "");
        snprintf(o->subject, sizeof o->subject, "%s", v[1] ? v[1] : "");
        o->sample_rows = v[2] ? strtoll(v[2], NULL, 10) : 0;
        o->started = v[3] != NULL; /* a session_start always names its connection */
        o->ended = v[4] != NULL;
    }
    return 1;
}

static const char sql_chain_sqlite[] = "SELECT last_n, last_hash FROM chain_head WHERE id = 1";
static const char sql_chain_pg[] = "SELECT last_n, last_hash FROM chain_head WHERE id = 1 FOR UPDATE";

/* Find or load the session of an event; creates it owned by actor. */
static struct batch_session *batch_session_get(struct store *s, const struct store_actor *actor,
                                               struct batch_session *set, size_t *nset,
                                               const struct store_event *e, int *rc, char *err,
                                               size_t errlen)
{
    for (size_t i = *nset; i-- > 0;)
        if (strcmp(set[i].id, e->session_id) == 0)
            return &set[i];
    struct batch_session *b = &set[(*nset)++];
    memset(b, 0, sizeof *b);
    b->id = e->session_id;
    b->started_at = b->ended_at = -1;
    char ts[24];
    i64s(ts, sizeof ts, e->ts);
    const char *ps[] = {e->session_id, actor->issuer, actor->subject, actor->name, actor->groups_json, ts};
    *rc = q(s, "INSERT INTO sessions (id, issuer, subject, user_name, groups, started_at)"
               " VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (id) DO NOTHING", 6, ps, NULL, NULL, NULL, err,
            errlen);
    if (!*rc)
        *rc = q(s, "SELECT issuer, subject, sample_rows, connection, ended_at FROM sessions WHERE id = $1", 1, ps,
                row_owner, b, NULL, err, errlen);
    if (*rc)
        return NULL;
    if (strcmp(b->issuer, actor->issuer) != 0 || strcmp(b->subject, actor->subject) != 0) {
        snprintf(err, errlen, "session %s belongs to another user", e->session_id);
        *rc = STORE_FORBIDDEN;
        return NULL;
    }
    return b;
}

static int batch_session_flush(struct store *s, const struct batch_session *b, char *err, size_t errlen)
{
    char ne[24], rs[24], st[24], en[24];
    i64s(ne, sizeof ne, b->nevents);
    i64s(rs, sizeof rs, b->added_rows);
    i64s(st, sizeof st, b->started_at);
    i64s(en, sizeof en, b->ended_at);
    const char *pu[] = {b->id, b->connection, b->client_addr, b->application, b->gateway_host,
                        b->denial ? "1" : "0", b->review ? "1" : "0", rs, ne, st, en};
    return q(s, "UPDATE sessions SET nevents = nevents + CAST($9 AS BIGINT),"
                " connection = COALESCE($2, connection), client_addr = COALESCE($3, client_addr),"
                " application = COALESCE($4, application), gateway_host = COALESCE($5, gateway_host),"
                " has_denials = CASE WHEN $6 = '1' THEN 1 ELSE has_denials END,"
                " has_reviews = CASE WHEN $7 = '1' THEN 1 ELSE has_reviews END,"
                " sample_rows = sample_rows + CAST($8 AS BIGINT),"
                " started_at = CASE WHEN CAST($10 AS BIGINT) >= 0 THEN CAST($10 AS BIGINT) ELSE started_at END,"
                " ended_at = CASE WHEN CAST($11 AS BIGINT) >= 0 THEN CAST($11 AS BIGINT) ELSE ended_at END"
                " WHERE id = $1",
             11, pu, NULL, NULL, NULL, err, errlen);
}

struct dup_scan {
    const struct store_event *ev;
    const size_t *order;       /* event indexes sorted by id */
    size_t n;
    bool *dup;
    char conflict[128];        /* an id that another session's event has, or "" */
};

/* Event k has the id of an existing row of session sid: a resend of that
 * event when the session is the same (the caller owns the batch's sessions),
 * else a clash that must not pass for a delivery. */
static void mark_existing(struct dup_scan *d, size_t k, const char *sid)
{
    const struct store_event *e = &d->ev[d->order[k]];
    d->dup[d->order[k]] = true;
    if (sid && strcmp(e->session_id, sid) != 0 && !d->conflict[0])
        snprintf(d->conflict, sizeof d->conflict, "%s", e->id);
}

/* By id, then by place in the batch: the first sent of one id comes first,
 * whether the C library's qsort is stable or not. */
static int cmp_event_id(const void *a, const void *b, void *arg)
{
    const struct store_event *ev = arg;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    int c = strcmp(ev[i].id, ev[j].id);
    return c ? c : (i > j) - (i < j);
}

/* A row from the "which ids exist" query marks that event a duplicate. */
static int row_existing(void *arg, int nc, const char *const *v)
{
    struct dup_scan *d = arg;
    if (nc < 2 || !v[0])
        return 0;
    size_t lo = 0, hi = d->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(d->ev[d->order[mid]].id, v[0]);
        if (c == 0) {
            for (size_t k = mid; k < d->n && strcmp(d->ev[d->order[k]].id, v[0]) == 0; k++)
                mark_existing(d, k, v[1]);
            for (size_t k = mid; k-- > 0 && strcmp(d->ev[d->order[k]].id, v[0]) == 0;)
                mark_existing(d, k, v[1]);
            return 0;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

#define EVENT_CHUNK 100     /* rows per multi-row INSERT */
#define EXISTS_CHUNK 500    /* ids per duplicate check */

/* Mark events already stored, or repeated earlier in the batch. */
static int mark_duplicates(struct store *s, const struct store_event *ev, size_t n, bool *dup, char *err,
                           size_t errlen)
{
    size_t *order = malloc(n * sizeof *order);
    if (!order) {
        snprintf(err, errlen, "out of memory");
        return STORE_ERROR;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    qsort_r(order, n, sizeof *order, cmp_event_id, (void *)ev);
    struct dup_scan scan = {ev, order, n, dup, ""};
    for (size_t i = 1; i < n; i++)
        if (strcmp(ev[order[i]].id, ev[order[i - 1]].id) == 0) {
            /* keep the first sent (the first of its id in order) */
            size_t a = order[i - 1], b = order[i];
            dup[b] = true;
            /* one id for events of two sessions: a clash, as with a stored one */
            if (strcmp(ev[a].session_id, ev[b].session_id) != 0 && !scan.conflict[0])
                snprintf(scan.conflict, sizeof scan.conflict, "%s", ev[a].id);
        }
    if (s->sql_exists.len == 0) {
        buf_append_str(&s->sql_exists, "SELECT id, session_id FROM events WHERE id IN (");
        for (size_t k = 0; k < EXISTS_CHUNK; k++)
            buf_printf(&s->sql_exists, "%s$%zu", k ? "," : "", k + 1);
        buf_append_str(&s->sql_exists, ")");
    }
    const char *params[EXISTS_CHUNK];
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i += EXISTS_CHUNK) {
        /* Unused slots stay NULL: "id IN (..., NULL)" matches nothing more. */
        for (size_t k = 0; k < EXISTS_CHUNK; k++)
            params[k] = i + k < n ? ev[i + k].id : NULL;
        rc = q(s, buf_cstr(&s->sql_exists), EXISTS_CHUNK, params, row_existing, &scan, NULL, err, errlen);
    }
    free(order);
    if (!rc && scan.conflict[0]) {
        snprintf(err, errlen, "event id %s is already taken by an event of another session", scan.conflict);
        rc = STORE_CONFLICT;
    }
    return rc;
}

#define EVENT_PARAMS 11  /* text parameters per inserted row */

/* Insert rows[0..c) (EVENT_PARAMS text parameters each) in one statement. */
static void build_insert(struct buf *sql, size_t c)
{
    buf_append_str(sql, "INSERT INTO events (n, id, session_id, seq, type, ts, subject, data, prev_hash, hash,"
                        " received_at) VALUES ");
    for (size_t k = 0; k < c; k++) {
        size_t b = k * EVENT_PARAMS;
        buf_append_str(sql, k ? ",(" : "(");
        for (size_t j = 1; j <= EVENT_PARAMS; j++)
            buf_printf(sql, "%s$%zu", j > 1 ? "," : "", b + j);
        buf_append_str(sql, ")");
    }
}

static int insert_event_rows(struct store *s, const char *const *params, size_t c, char *err, size_t errlen)
{
    if (c == EVENT_CHUNK) {
        if (s->sql_insert_full.len == 0)
            build_insert(&s->sql_insert_full, EVENT_CHUNK);
        return q(s, buf_cstr(&s->sql_insert_full), (int)(c * EVENT_PARAMS), params, NULL, NULL, NULL, err,
                 errlen);
    }
    struct buf sql = {0};
    build_insert(&sql, c);
    int rc = q(s, buf_cstr(&sql), (int)(c * EVENT_PARAMS), params, NULL, NULL, NULL, err, errlen);
    buf_free(&sql);
    return rc;
}

int store_events_append(struct store *s, const struct store_actor *actor,
                        const struct store_event *ev, size_t n, int64_t sample_cap,
                        struct store_ingest_result *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    struct batch_session *set = calloc(n ? n : 1, sizeof *set);
    bool *dup = calloc(n ? n : 1, sizeof *dup);
    /* Per chunk: EVENT_PARAMS parameters per row, and the numbers they point at. */
    const char **params = calloc(EVENT_CHUNK * EVENT_PARAMS, sizeof *params);
    char (*nums)[3][24] = calloc(EVENT_CHUNK, sizeof *nums);
    char (*hashes)[65] = calloc(n ? n : 1, sizeof *hashes);
    char **made = calloc(n ? n : 1, sizeof *made);  /* capped texts, alive until inserted */
    size_t nset = 0, rows = 0;
    int rc = 0;
    if (!set || !dup || !params || !nums || !hashes || !made) {
        snprintf(err, errlen, "out of memory");
        rc = STORE_ERROR;
        goto out;
    }
    if ((rc = q0(s, s->d->begin_write, err, errlen)))
        goto out;
    /* The chain head row serializes writers across processes (row lock), so
     * the duplicate check below cannot race another server. */
    struct chain_state cs = {0, ""};
    rc = q(s, *s->d->for_update ? sql_chain_pg : sql_chain_sqlite, 0, NULL, row_chain, &cs, NULL,
           err, errlen);
    if (!rc)
        rc = mark_duplicates(s, ev, n, dup, err, errlen);
    /* The batch's receive time, by the server's clock. */
    int64_t now = util_now_ms();
    char received[24];
    i64s(received, sizeof received, now);
    char head0[65];
    memcpy(head0, cs.last_hash, sizeof head0);
    const char *prev = head0;            /* hash of the event before this one */
    for (size_t i = 0; i < n && !rc; i++) {
        const struct store_event *e = &ev[i];
        struct batch_session *b = batch_session_get(s, actor, set, &nset, e, &rc, err, errlen);
        if (!b)
            break;
        if (dup[i]) {
            res->duplicates++;
            continue;
        }
        const char *data = e->data;
        int64_t srows = e->sample_rows;
        if (srows > 0 && b->sample_rows + srows > sample_cap) {
            made[i] = e->capped ? e->capped(e->capped_arg) : NULL;
            data = made[i] ? made[i] : "{\"truncated\":true}";
            srows = 0;
        }
        b->sample_rows += srows;
        b->added_rows += srows;
        b->nevents++;
        b->denial |= e->denial;
        b->review |= e->review;
        /* A session's connection, addresses and times are set once, by its
         * first session_start and session_end: a later event cannot move
         * the session to another connection or rewrite when it ran. */
        if (strcmp(e->type, "session_start") == 0 && !b->started) {
            b->started = true;
            b->started_at = e->ts;
            b->connection = e->connection;
            b->client_addr = e->client_addr;
            b->application = e->application;
            b->gateway_host = e->gateway_host;
        } else if (strcmp(e->type, "session_end") == 0 && !b->ended) {
            b->ended = true;
            b->ended_at = e->ts;
        }
        i64s(nums[rows][0], sizeof nums[rows][0], cs.last_n + 1);
        i64s(nums[rows][1], sizeof nums[rows][1], e->seq);
        i64s(nums[rows][2], sizeof nums[rows][2], e->ts);
        struct audit_record r = {.n = cs.last_n + 1, .id = e->id, .session_id = e->session_id,
                                 .type = e->type, .subject = actor->subject, .data = data, .seq = e->seq,
                                 .ts = e->ts, .prev_hash = prev, .received_at = now};
        audit_chain_hash(&r, hashes[i]);
        const char **p = &params[rows * EVENT_PARAMS];
        p[0] = nums[rows][0]; p[1] = e->id; p[2] = e->session_id; p[3] = nums[rows][1];
        p[4] = e->type; p[5] = nums[rows][2]; p[6] = actor->subject; p[7] = data;
        p[8] = prev;
        p[9] = hashes[i];
        p[10] = received;
        prev = hashes[i];
        cs.last_n++;
        res->accepted++;
        rows++;
        if (rows == EVENT_CHUNK) {
            rc = insert_event_rows(s, params, rows, err, errlen);
            rows = 0;
        }
    }
    if (!rc && rows)
        rc = insert_event_rows(s, params, rows, err, errlen);
    for (size_t i = 0; i < nset && !rc; i++)
        if (set[i].nevents)
            rc = batch_session_flush(s, &set[i], err, errlen);
    if (!rc && res->accepted) {
        char ln[24];
        i64s(ln, sizeof ln, cs.last_n);
        const char *ph[] = {ln, prev};
        rc = q(s, "UPDATE chain_head SET last_n = $1, last_hash = $2 WHERE id = 1", 2, ph, NULL, NULL,
               NULL, err, errlen);
    }
    if (!rc)
        rc = q0(s, "COMMIT", err, errlen);
    if (rc) {
        rollback(s);
        memset(res, 0, sizeof *res);
    }
out:
    free(set);
    free(dup);
    free(params);
    free(nums);
    free(hashes);
    for (size_t i = 0; made && i < n; i++)
        free(made[i]);
    free(made);
    return rc;
}

/* ---- session queries ----------------------------------------------------- */

static const char *const session_names[] = {
    "id", "issuer", "user", "user_name", "groups", "connection", "client_addr", "application",
    "gateway_host", "started_at", "ended_at", "events", "has_denials", "has_reviews"};
#define SESSION_COLS "id, issuer, subject, user_name, groups, connection, client_addr, application," \
                     " gateway_host, started_at, ended_at, nevents, has_denials, has_reviews"
#define SESSION_KINDS "ssssjssssiiibb"

/* A page cursor: "time:id" of the last row a reader saw (a time of at most
 * 18 digits, so that it fits a BIGINT). */
static int parse_cursor(const char *cursor, char ts[24], char id[128], char *err, size_t errlen)
{
    const char *colon = strchr(cursor, ':');
    if (!colon || colon == cursor || (size_t)(colon - cursor) > 18 || strlen(colon + 1) >= 128 ||
        strspn(cursor, "0123456789") != (size_t)(colon - cursor)) {
        snprintf(err, errlen, "bad cursor");
        return STORE_NOT_FOUND;
    }
    memcpy(ts, cursor, (size_t)(colon - cursor));
    ts[colon - cursor] = '\0';
    snprintf(id, 128, "%s", colon + 1);
    return 0;
}

/* rows holds limit + 1 rows when a next page exists: drop the extra one and
 * return the cursor of the last kept (by its time_field), else JSON null. */
/* The cursor of the page that follows row last. */
static json_t *page_next_after(json_t *last, const char *time_field)
{
    return json_sprintf("%" PRId64 ":%s", (int64_t)json_integer_value(json_object_get(last, time_field)),
                        json_string_value(json_object_get(last, "id")));
}

static json_t *page_next(json_t *rows, int limit, const char *time_field)
{
    if (json_array_size(rows) <= (size_t)limit)
        return json_null();
    json_array_remove(rows, (size_t)limit);
    return page_next_after(json_array_get(rows, (size_t)limit - 1), time_field);
}

int store_sessions_list(struct store *s, const struct store_session_filter *f, json_t **out,
                        char *err, size_t errlen)
{
    char sql[1024], nums[6][24];
    const char *p[12];
    int np = 0, nn = 0;
    size_t len = (size_t)snprintf(sql, sizeof sql, "SELECT " SESSION_COLS " FROM sessions WHERE 1 = 1");
#define ADD_COND(fmt, val)                                                                    \
    do {                                                                                      \
        p[np++] = (val);                                                                      \
        len += (size_t)snprintf(sql + len, sizeof sql - len, fmt, np);                        \
    } while (0)
    if (f->issuer)
        ADD_COND(" AND issuer = $%d", f->issuer);
    if (f->subject)
        ADD_COND(" AND subject = $%d", f->subject);
    if (f->user)
        ADD_COND(" AND subject = $%d", f->user);
    if (f->connection)
        ADD_COND(" AND connection = $%d", f->connection);
    if (f->since > 0) {
        i64s(nums[nn], sizeof nums[nn], f->since);
        ADD_COND(" AND started_at >= CAST($%d AS BIGINT)", nums[nn++]);
    }
    if (f->until > 0) {
        i64s(nums[nn], sizeof nums[nn], f->until);
        ADD_COND(" AND started_at < CAST($%d AS BIGINT)", nums[nn++]);
    }
    if (f->has_denials >= 0)
        ADD_COND(" AND has_denials = CAST($%d AS INTEGER)", f->has_denials ? "1" : "0");
    if (f->has_reviews >= 0)
        ADD_COND(" AND has_reviews = CAST($%d AS INTEGER)", f->has_reviews ? "1" : "0");
    char cur_ts[24] = "", cur_id[128] = "";
    if (f->cursor) {
        int rc = parse_cursor(f->cursor, cur_ts, cur_id, err, errlen);
        if (rc)
            return rc;
        p[np++] = cur_ts;
        p[np++] = cur_id;
        len += (size_t)snprintf(sql + len, sizeof sql - len,
                                " AND (started_at, id) < (CAST($%d AS BIGINT), CAST($%d AS TEXT))",
                                np - 1, np);
    }
    int limit = f->limit > 0 && f->limit <= 1000 ? f->limit : 100;
    i64s(nums[nn], sizeof nums[nn], limit + 1);
    ADD_COND(" ORDER BY started_at DESC, id DESC LIMIT CAST($%d AS INTEGER)", nums[nn++]);
#undef ADD_COND
    json_t *arr;
    int rc = query_json(s, sql, np, p, session_names, SESSION_KINDS, &arr, err, errlen);
    if (rc)
        return rc;
    *out = json_pack("{s:o,s:o}", "sessions", arr, "next", page_next(arr, limit, "started_at"));
    return 0;
}

int store_session_get(struct store *s, const char *id, json_t **out, char *err, size_t errlen)
{
    const char *p[] = {id};
    return query_one(s, "SELECT " SESSION_COLS " FROM sessions WHERE id = $1", 1, p, session_names,
                     SESSION_KINDS, out, err, errlen);
}

static const char *const event_names[] = {"n", "id", "session_id", "seq", "type", "time", "user",
                                           "data", "prev_hash", "hash", "received_at"};
#define EVENT_COLS "n, id, session_id, seq, type, ts, subject, data, prev_hash, hash, received_at"
#define EVENT_KINDS "issisisjssi"

/* A page of events stops once it holds STORE_PAGE_BYTES of event data
 * (but always has its first event): rows pass only while the data before
 * them in the page is under the budget. The database sums and filters, so
 * the rows past the budget never reach this process. */
#define PAGED_EVENTS(inner, order, budget_param)                                                   \
    "SELECT " EVENT_COLS " FROM (SELECT " EVENT_COLS ", SUM(LENGTH(data)) OVER (ORDER BY " order    \
    " ROWS UNBOUNDED PRECEDING) - LENGTH(data) AS bytes_before FROM (" inner ") p) w"               \
    " WHERE bytes_before < CAST(" budget_param " AS BIGINT) ORDER BY " order

int store_session_events(struct store *s, const char *id, int64_t offset, int limit, json_t **out,
                         char *err, size_t errlen)
{
    char off[24], lim[24], budget[24];
    i64s(off, sizeof off, offset < 0 ? 0 : offset);
    i64s(lim, sizeof lim, limit > 0 && limit <= 5000 ? limit : 1000);
    i64s(budget, sizeof budget, STORE_PAGE_BYTES);
    const char *p[] = {id, lim, off, budget};
    return query_json(s, PAGED_EVENTS("SELECT " EVENT_COLS " FROM events WHERE session_id = $1"
                                      " ORDER BY seq, n LIMIT CAST($2 AS INTEGER) OFFSET CAST($3 AS INTEGER)",
                                      "seq, n", "$4"),
                      4, p, event_names, EVENT_KINDS, out, err, errlen);
}

int store_events_page(struct store *s, int64_t after_n, int64_t since, int64_t until, int limit,
                      json_t **out, char *err, size_t errlen)
{
    char a[24], b[24], c[24], l[24], budget[24];
    i64s(a, sizeof a, after_n);
    i64s(b, sizeof b, since);
    i64s(c, sizeof c, until);
    i64s(l, sizeof l, limit);
    i64s(budget, sizeof budget, STORE_PAGE_BYTES);
    const char *p[] = {a, b, c, l, budget};
    /* since or until 0: no bound on that side. An event's time is what its
     * gateway said, any 64-bit value: a default bound would leave some out
     * of a "whole" export (and a gap in the chain it carries). */
    return query_json(s, PAGED_EVENTS("SELECT " EVENT_COLS " FROM events WHERE n > CAST($1 AS BIGINT)"
                                      " AND (CAST($2 AS BIGINT) <= 0 OR ts >= CAST($2 AS BIGINT))"
                                      " AND (CAST($3 AS BIGINT) <= 0 OR ts < CAST($3 AS BIGINT))"
                                      " ORDER BY n LIMIT CAST($4 AS INTEGER)",
                                      "n", "$5"),
                      5, p, event_names, EVENT_KINDS, out, err, errlen);
}

/* ---- verification -------------------------------------------------------- */

/* The walk, and what the last retention event in it says the checkpoint is. */
struct verify_state {
    struct audit_walk w;
    bool attested;
    int64_t cp_n;
    char cp_hash[65];
};

static int verify_row(void *arg, int nc, const char *const *v)
{
    struct verify_state *vs = arg;
    struct audit_walk *w = &vs->w;
    if (nc < 11)
        return 1;
    if (v[4] && strcmp(v[4], AUDIT_RETENTION_TYPE) == 0) {
        json_t *d = json_loads(v[7] ? v[7] : "", 0, NULL);
        const char *h = json_string_value(json_object_get(d, "checkpoint_hash"));
        vs->attested = true;
        vs->cp_n = json_integer_value(json_object_get(d, "checkpoint_n"));
        snprintf(vs->cp_hash, sizeof vs->cp_hash, "%s", h ? h : "");
        json_decref(d);
    }
    struct audit_record r = {.n = strtoll(v[0] ? v[0] : "0", NULL, 10), .id = v[1], .session_id = v[2],
                             .type = v[4], .subject = v[6], .data = v[7],
                             .seq = strtoll(v[3] ? v[3] : "0", NULL, 10),
                             .ts = strtoll(v[5] ? v[5] : "0", NULL, 10), .prev_hash = v[8],
                             .received_at = v[10] ? strtoll(v[10], NULL, 10) : 0};
    audit_walk_event(w, &r, v[9]);
    return 0;
}

struct head_state {
    int64_t last_n, cp_n;
    char last_hash[65], cp_hash[65];
};

static int row_head(void *arg, int nc, const char *const *v)
{
    struct head_state *h = arg;
    if (nc >= 4) {
        h->last_n = strtoll(v[0] ? v[0] : "0", NULL, 10);
        snprintf(h->last_hash, sizeof h->last_hash, "%s", v[1] ? v[1] : "");
        h->cp_n = strtoll(v[2] ? v[2] : "0", NULL, 10);
        snprintf(h->cp_hash, sizeof h->cp_hash, "%s", v[3] ? v[3] : "");
    }
    return 1;
}

/* The chain's head and retention checkpoint. */
static int read_head(struct store *s, struct head_state *head, char *err, size_t errlen)
{
    *head = (struct head_state){0};
    return q(s, "SELECT last_n, last_hash, checkpoint_n, checkpoint_hash FROM chain_head WHERE id = 1", 0, NULL,
             row_head, head, NULL, err, errlen);
}

static int audit_verify_in(struct store *s, json_t **report, char *err, size_t errlen);

/* In one snapshot: the head and the events it is compared with are of the
 * same moment, though other servers append meanwhile (else a verify during
 * writes reports the events written since it read the head as added). */
int store_audit_verify(struct store *s, json_t **report, char *err, size_t errlen)
{
    int rc = q0(s, s->d->begin_snapshot, err, errlen);
    if (rc)
        return rc;
    rc = audit_verify_in(s, report, err, errlen);
    rollback(s); /* read only: nothing to keep */
    return rc;
}

static int row_foreign_owner(void *arg, int nc, const char *const *v)
{
    if (nc >= 1 && v[0])
        audit_walk_problem(arg, 0, NULL, "session %.128s is listed under another user than its events' (the"
                           " sessions index edited)", v[0]);
    return 0;
}

static int audit_verify_in(struct store *s, json_t **report, char *err, size_t errlen)
{
    struct head_state head;
    int rc = read_head(s, &head, err, errlen);
    if (rc)
        return rc;
    struct verify_state vs = {0};
    struct audit_walk *st = &vs.w;
    audit_walk_init(st, head.cp_n, head.cp_hash, "are missing (deleted)");
    /* Page through by position, pages bounded in bytes, so that memory
     * stays flat on PostgreSQL too (libpq holds a whole result). */
    for (;;) {
        char a[24], budget[24];
        i64s(a, sizeof a, st->last);
        i64s(budget, sizeof budget, STORE_PAGE_BYTES);
        const char *p[] = {a, budget};
        int64_t before = st->checked;
        rc = q(s, PAGED_EVENTS("SELECT " EVENT_COLS " FROM events WHERE n > CAST($1 AS BIGINT) ORDER BY n"
                               " LIMIT 5000", "n", "$2"),
               2, p, verify_row, &vs, NULL, err, errlen);
        if (rc) {
            json_decref(st->problems);
            return rc;
        }
        if (st->checked == before)
            break;
    }
    int64_t below = 0, unplaced = 0;
    char cp[24];
    i64s(cp, sizeof cp, head.cp_n);
    const char *pc[] = {cp};
    q(s, "SELECT COUNT(*) FROM events WHERE n <= CAST($1 AS BIGINT)", 1, pc, row_int, &below, NULL,
      err, errlen);
    if (below > 0)
        audit_walk_problem(st, head.cp_n, NULL, "events at or before the retention checkpoint (inserted)");
    /* SQLite takes NULL in a primary key that is not INTEGER PRIMARY KEY: a
     * row without a position is in no walk, but in its session's listing. */
    q(s, "SELECT COUNT(*) FROM events WHERE n IS NULL", 0, NULL, row_int, &unplaced, NULL, err, errlen);
    if (unplaced > 0)
        audit_walk_problem(st, 0, NULL, "%" PRId64 " events have no position in the chain (inserted)", unplaced);
    /* The sessions table is an index beside the chain: its owner must be the
     * user of the session's events, which the chain covers. */
    q(s, "SELECT s.id FROM sessions s WHERE EXISTS (SELECT 1 FROM events e WHERE e.session_id = s.id"
         " AND e.subject <> s.subject) ORDER BY s.id LIMIT 20", 0, NULL, row_foreign_owner, st, NULL, err, errlen);
    /* The checkpoint moves only by retention, which records each cut in the
     * chain: one that no retention event records was moved by hand, and the
     * events before it were deleted outside retention. */
    if ((head.cp_n > 0 || vs.attested) &&
        (!vs.attested || vs.cp_n != head.cp_n || strcmp(vs.cp_hash, head.cp_hash) != 0))
        audit_walk_problem(st, head.cp_n, NULL, "the retention checkpoint (%" PRId64 ") is not the one the last"
                           " retention event records (%s): events before it deleted outside retention, or by"
                           " a server older than schema 7 while this one ran (run every server at one version)",
                           head.cp_n, vs.attested ? "another" : "there is none");
    if (st->last != head.last_n || strcmp(st->last_hash, head.last_hash) != 0)
        audit_walk_problem(st, st->last, NULL, "the chain ends at %" PRId64 " but the head records %" PRId64
                           " (events at the end deleted or added)", st->last, head.last_n);
    *report = json_pack("{s:b,s:I,s:I,s:I,s:s,s:o}", "ok", json_array_size(st->problems) == 0, "checked",
                        (json_int_t)st->checked, "checkpoint", (json_int_t)head.cp_n, "head",
                        (json_int_t)head.last_n, "head_hash", head.last_hash, "problems", st->problems);
    return 0;
}

/* ---- the webhook's cursor ------------------------------------------------ */

int store_webhook_claim(struct store *s, const char *key, const char *owner, int64_t now_ms, int64_t lease_ms,
                        int64_t *last_n, char *err, size_t errlen)
{
    char now[24], until[24];
    i64s(now, sizeof now, now_ms);
    i64s(until, sizeof until, now_ms + lease_ms);
    const char *p[] = {key, owner, until, now};
    /* A new endpoint starts at the chain's head: it gets what arrives next. */
    int rc = q(s, "INSERT INTO webhook_cursors (key, last_n, owner, lease_until, updated_at)"
                  " SELECT CAST($1 AS TEXT), last_n, '', 0, CAST($2 AS BIGINT) FROM chain_head WHERE id = 1"
                  " ON CONFLICT (key) DO NOTHING",
               2, (const char *const[]){key, now}, NULL, NULL, NULL, err, errlen);
    int64_t ch = 0;
    if (rc == 0)
        rc = q(s, "UPDATE webhook_cursors SET owner = $2, lease_until = $3"
                  " WHERE key = $1 AND (owner = $2 OR lease_until < $4)",
               4, p, NULL, NULL, &ch, err, errlen);
    if (rc == 0 && ch == 0)
        return STORE_CONFLICT;
    if (rc == 0)
        rc = q(s, "SELECT last_n FROM webhook_cursors WHERE key = $1", 1, p, row_int, last_n, NULL, err, errlen);
    return rc;
}

int store_webhook_advance(struct store *s, const char *key, const char *owner, int64_t last_n, int64_t now_ms,
                          int64_t lease_ms, char *err, size_t errlen)
{
    char n[24], now[24], until[24];
    i64s(n, sizeof n, last_n);
    i64s(now, sizeof now, now_ms);
    i64s(until, sizeof until, now_ms + lease_ms);
    const char *p[] = {key, owner, n, until, now};
    int64_t ch = 0;
    int rc = q(s, "UPDATE webhook_cursors SET last_n = $3, lease_until = $4, updated_at = $5"
                  " WHERE key = $1 AND owner = $2",
               5, p, NULL, NULL, &ch, err, errlen);
    if (rc == 0 && ch == 0) {
        snprintf(err, errlen, "another server instance holds the webhook now");
        return STORE_CONFLICT;
    }
    return rc;
}

/* ---- retention ----------------------------------------------------------- */

/* Append the event that records the checkpoint (cp_n, cp_hash) to the chain
 * whose head is cs (its row locked by the caller's write transaction), and
 * move the head. *event_n: its position. */
static int append_retention_event(struct store *s, struct chain_state *cs, int64_t cp_n, const char *cp_hash,
                                  int64_t cutoff, int64_t deleted, int64_t *event_n, char *err, size_t errlen)
{
    char id[37];
    if (util_uuid_v7(id) < 0) {
        snprintf(err, errlen, "retention: no randomness for an event id");
        return STORE_ERROR;
    }
    json_t *d = json_pack("{s:I,s:s,s:I,s:I}", "checkpoint_n", (json_int_t)cp_n, "checkpoint_hash", cp_hash,
                          "cutoff", (json_int_t)cutoff, "deleted_events", (json_int_t)deleted);
    char *data = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL; /* as verify --file hashes it */
    json_decref(d);
    if (!data) {
        snprintf(err, errlen, "out of memory");
        return STORE_ERROR;
    }
    int64_t now = util_now_ms();
    struct audit_record r = {.n = cs->last_n + 1, .id = id, .session_id = AUDIT_SERVER_SESSION,
                             .type = AUDIT_RETENTION_TYPE, .subject = AUDIT_SERVER_SUBJECT, .data = data,
                             .seq = 0, .ts = now, .prev_hash = cs->last_hash, .received_at = now};
    char hash[65], ns[24], ts[24];
    audit_chain_hash(&r, hash);
    i64s(ns, sizeof ns, r.n);
    i64s(ts, sizeof ts, now);
    const char *p[EVENT_PARAMS] = {ns, id, r.session_id, "0", r.type, ts, r.subject, data, cs->last_hash, hash, ts};
    int rc = insert_event_rows(s, p, 1, err, errlen);
    free(data);
    if (rc == 0)
        rc = q(s, "UPDATE chain_head SET last_n = $1, last_hash = $2 WHERE id = 1", 2, (const char *const[]){ns, hash},
               NULL, NULL, NULL, err, errlen);
    if (rc == 0) {
        cs->last_n = r.n;
        memcpy(cs->last_hash, hash, sizeof hash);
        *event_n = r.n;
    }
    return rc;
}

/* Schema v7, once, in the migration's transaction: a checkpoint that an
 * older server's retention made gets the event that records it, so that
 * verify can tell it from one moved by hand from now on. */
static int store_attest_checkpoint(struct store *s, char *err, size_t errlen)
{
    struct head_state head;
    int rc = read_head(s, &head, err, errlen);
    if (rc || head.cp_n <= 0)
        return rc;
    struct chain_state cs = {head.last_n, ""};
    memcpy(cs.last_hash, head.last_hash, sizeof cs.last_hash);
    int64_t at = 0;
    rc = append_retention_event(s, &cs, head.cp_n, head.cp_hash, 0, 0, &at, err, errlen);
    char a[24], cp[24];
    i64s(a, sizeof a, at);
    i64s(cp, sizeof cp, head.cp_n);
    if (rc == 0)
        rc = q(s, "UPDATE checkpoints SET event_n = CAST($1 AS BIGINT) WHERE n = CAST($2 AS BIGINT)", 2,
               (const char *const[]){a, cp}, NULL, NULL, NULL, err, errlen);
    if (rc == 0)
        log_warn("store", "the retention checkpoint at event %" PRId64 " is now recorded in the chain (event %" PRId64
                 "); the head hash changes once", head.cp_n, at);
    return rc;
}

int store_retention(struct store *s, int64_t cutoff_ms, const char *webhook_key,
                    struct store_retention_report *out, char *err, size_t errlen)
{
    *out = (struct store_retention_report){0, 0, 0};
    int rc = q0(s, s->d->begin_write, err, errlen);
    if (rc)
        return rc;
    struct chain_state cs = {0, ""};
    if ((rc = q(s, *s->d->for_update ? sql_chain_pg : sql_chain_sqlite, 0, NULL, row_chain, &cs, NULL,
                err, errlen)))
        goto fail;
    /* The chain keeps a contiguous tail: cut below the first event still young. */
    char c[24];
    i64s(c, sizeof c, cutoff_ms);
    const char *p[] = {c};
    int64_t first_young = -1;
    /* Young by when the server received it: an event's own time is what its
     * gateway said, and one far in the future must not keep everyone's old
     * events. Events stored before the server recorded receipt (schema 2 and
     * older) go by their own time. Positions follow receipt, so the first
     * young one is found by walking from the oldest. */
    if ((rc = q(s, "SELECT COALESCE(MIN(n), -1) FROM events WHERE COALESCE(received_at, ts) >= CAST($1 AS BIGINT)",
                1, p, row_int, &first_young, NULL, err, errlen)))
        goto fail;
    int64_t cut = first_young < 0 ? cs.last_n : first_young - 1, old_end = cut;
    if (webhook_key) {
        /* What the SIEM has not had yet is not ours to drop: hold the cut at
         * the webhook's place in the chain (it has none before its first claim). */
        int64_t pushed = -1;
        if ((rc = q(s, "SELECT COALESCE(MAX(last_n), -1) FROM webhook_cursors WHERE key = $1", 1,
                    (const char *const[]){webhook_key}, row_int, &pushed, NULL, err, errlen)))
            goto fail;
        if (pushed >= 0 && pushed < cut)
            cut = pushed;
    }
    /* A review's life ends at its expiry (nothing consumes it after); one that
     * ended before the cutoff goes with the events of its time. */
    if ((rc = q(s, "DELETE FROM reviews WHERE expires_at < CAST($1 AS BIGINT)", 1, p, NULL, NULL,
                &out->reviews, err, errlen)))
        goto fail;
    struct head_state head;
    if ((rc = read_head(s, &head, err, errlen)))
        goto fail;
    /* Held: old events still here that the cut spares for the webhook. */
    int64_t kept_from = cut > head.cp_n ? cut : head.cp_n;
    out->held = old_end > kept_from ? old_end - kept_from : 0;
    /* Nothing but the record of the last cut to cut (an idle store): keep
     * it, rather than replace it with another every time. */
    int64_t others = 1;
    if (cut > head.cp_n) {
        char lo[24], hi[24];
        i64s(lo, sizeof lo, head.cp_n);
        i64s(hi, sizeof hi, cut);
        if ((rc = q(s, "SELECT COUNT(*) FROM events WHERE n > CAST($1 AS BIGINT) AND n <= CAST($2 AS BIGINT)"
                       " AND type <> '" AUDIT_RETENTION_TYPE "'", 2, (const char *const[]){lo, hi}, row_int,
                    &others, NULL, err, errlen)))
            goto fail;
    }
    if (cut <= head.cp_n || others == 0) {
        if ((rc = q0(s, "COMMIT", err, errlen)))
            goto fail;
        return 0;
    }
    char cuts[24], hash[65] = "";
    i64s(cuts, sizeof cuts, cut);
    const char *pc[] = {cuts};
    struct chain_state at = {0, ""};
    if ((rc = q(s, "SELECT n, hash FROM events WHERE n = CAST($1 AS BIGINT)", 1, pc, row_chain, &at,
                NULL, err, errlen)))
        goto fail;
    if (at.last_n != cut) {
        snprintf(err, errlen, "retention: event %s is missing; run audit verify", cuts);
        rc = STORE_ERROR;
        goto fail;
    }
    memcpy(hash, at.last_hash, sizeof hash);
    if ((rc = q(s, "DELETE FROM events WHERE n <= CAST($1 AS BIGINT)", 1, pc, NULL, NULL,
                &out->events, err, errlen)))
        goto fail;
    if ((rc = q(s, "DELETE FROM sessions WHERE started_at < CAST($1 AS BIGINT) AND NOT EXISTS"
                   " (SELECT 1 FROM events e WHERE e.session_id = sessions.id)", 1, p, NULL, NULL,
                NULL, err, errlen)))
        goto fail;
    int64_t event_n = 0;
    if ((rc = append_retention_event(s, &cs, cut, hash, cutoff_ms, out->events, &event_n, err, errlen)))
        goto fail;
    char now[24], del[24], en[24];
    i64s(now, sizeof now, util_now_ms());
    i64s(del, sizeof del, out->events);
    i64s(en, sizeof en, event_n);
    const char *pk[] = {cuts, hash, now, c, del, en};
    if ((rc = q(s, "INSERT INTO checkpoints (n, hash, created_at, cutoff, deleted_events, event_n)"
                   " VALUES ($1,$2,$3,$4,$5,$6)", 6, pk, NULL, NULL, NULL, err, errlen)))
        goto fail;
    if ((rc = q(s, "UPDATE chain_head SET checkpoint_n = $1, checkpoint_hash = $2 WHERE id = 1", 2, pk,
                NULL, NULL, NULL, err, errlen)))
        goto fail;
    if ((rc = q0(s, "COMMIT", err, errlen)))
        goto fail;
    return 0;
fail:
    rollback(s);
    return rc;
}

/* ---- reviews ------------------------------------------------------------- */

static const char *const review_names[] = {
    "id", "connection", "session_id", "statement", "statement_hash", "requester", "requester_issuer",
    "requester_name", "status", "reason", "decided_by", "created_at", "decided_at", "expires_at",
    "consumed_at", "rule", "params", "rules"};
#define REVIEW_COLS "id, connection, session_id, statement, statement_hash, requester, requester_issuer," \
                    " requester_name, status, reason, decided_by, created_at, decided_at, expires_at,"  \
                    " consumed_at, rule, params, rules"
#define REVIEW_KINDS "sssssssssssiiiisjj"
/* A list's rows, with the bytes of statements and values up to each: a list
 * stops once it holds STORE_PAGE_BYTES of them (but always has its first). */
static const char *const review_page_names[] = {
    "id", "connection", "session_id", "statement", "statement_hash", "requester", "requester_issuer",
    "requester_name", "status", "reason", "decided_by", "created_at", "decided_at", "expires_at",
    "consumed_at", "rule", "params", "rules", "page_bytes"};
#define REVIEW_SIZE "(LENGTH(statement) + COALESCE(LENGTH(params), 0))"

static int review_insert(struct store *s, json_t *r, char *err, size_t errlen)
{
    char created[24], expires[24];
    i64s(created, sizeof created, json_integer_value(json_object_get(r, "created_at")));
    i64s(expires, sizeof expires, json_integer_value(json_object_get(r, "expires_at")));
    json_t *params = json_object_get(r, "params"), *rules = json_object_get(r, "rules");
    char *params_text = json_is_array(params) ? json_dumps(params, JSON_COMPACT) : NULL;
    char *rules_text = json_is_object(rules) ? json_dumps(rules, JSON_COMPACT) : NULL;
    if ((json_is_array(params) && !params_text) || (json_is_object(rules) && !rules_text)) {
        free(params_text);
        free(rules_text);
        snprintf(err, errlen, "out of memory");
        return STORE_ERROR;
    }
#define S(k) json_string_value(json_object_get(r, k))
    const char *p[] = {S("id"), S("connection"), S("session_id"), S("statement"), S("statement_hash"),
                       S("requester"), S("requester_issuer"), S("requester_name"), created, expires, S("rule"),
                       params_text, rules_text};
#undef S
    int rc = q(s, "INSERT INTO reviews (id, connection, session_id, statement, statement_hash, requester,"
                  " requester_issuer, requester_name, status, created_at, expires_at, rule, params, rules)"
                  " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,'pending',$9,$10,$11,$12,$13)",
               13, p, NULL, NULL, NULL, err, errlen);
    free(params_text);
    free(rules_text);
    return rc;
}

int store_review_create(struct store *s, json_t *r, char *err, size_t errlen)
{
    int rc = review_insert(s, r, err, errlen);
    if (rc == 0)
        store_notify_reviews(s);
    return rc;
}

/* The count and the insert in one transaction that no other request of the
 * same requester runs beside, so servers sharing the store cannot together
 * let one user past the cap: SQLite's BEGIN IMMEDIATE takes the database's
 * write lock; on PostgreSQL, whose read committed count would not see a
 * concurrent uncommitted insert, a transaction advisory lock on the
 * requester serializes them (requests of other users do not wait). */
int store_review_create_capped(struct store *s, json_t *r, int64_t max_pending, int64_t *pending, char *err,
                               size_t errlen)
{
    const char *issuer = json_string_value(json_object_get(r, "requester_issuer"));
    const char *subject = json_string_value(json_object_get(r, "requester"));
    int64_t now = json_integer_value(json_object_get(r, "created_at"));
    *pending = 0;
    int rc = q0(s, s->d->begin_write, err, errlen);
    if (rc)
        return rc;
    if (strcmp(s->d->kind, "postgres") == 0) {
        /* Two int keys: apart from the migrations' one bigint key. */
        const char *p[] = {issuer ? issuer : "", subject ? subject : ""};
        rc = q(s, "SELECT pg_advisory_xact_lock(727384, hashtext($1 || ' ' || $2))", 2, p, NULL, NULL, NULL, err,
               errlen);
    }
    if (rc == 0)
        rc = store_review_pending_of(s, issuer ? issuer : "", subject ? subject : "", now, pending, err, errlen);
    if (rc == 0 && *pending >= max_pending) {
        rollback(s);
        return STORE_FORBIDDEN;
    }
    if (rc == 0)
        rc = review_insert(s, r, err, errlen);
    if (rc == 0)
        rc = notify_in_tx(s, err, errlen);
    if (rc == 0)
        rc = q0(s, "COMMIT", err, errlen);
    if (rc)
        rollback(s);
    return rc;
}

int store_review_get(struct store *s, const char *id, json_t **out, char *err, size_t errlen)
{
    const char *p[] = {id};
    return query_one(s, "SELECT " REVIEW_COLS " FROM reviews WHERE id = $1", 1, p, review_names,
                     REVIEW_KINDS, out, err, errlen);
}

int store_review_list(struct store *s, const char *status, int64_t created_after,
                      const struct store_review_scope *scope, struct store_review_page *page, json_t **out,
                      char *err, size_t errlen)
{
    char a[24], cur_ts[24], cur_id[128], lim[24];
    i64s(a, sizeof a, created_after);
    int limit = page && page->limit > 0 && page->limit <= 1000 ? page->limit : 1000;
    bool newest = page && page->newest_first;
    if (page && page->cursor) {
        int rc = parse_cursor(page->cursor, cur_ts, cur_id, err, errlen);
        if (rc)
            return rc;
    }
    size_t nconn = scope && !scope->all ? scope->nconnections : 0;
    const char **p = calloc(8 + nconn, sizeof *p); /* status, after, requester (2), cursor (2), limit, budget */
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return STORE_ERROR;
    }
    int np = 0;
    p[np++] = status;
    p[np++] = a;
    struct buf sql = {0};
    buf_append_str(&sql, "SELECT " REVIEW_COLS " FROM reviews WHERE (CAST($1 AS TEXT) IS NULL OR status = CAST($1 AS TEXT))"
                         " AND created_at > CAST($2 AS BIGINT)");
    /* The caller's visibility is part of the query, so that the 1000 rows
     * are the caller's 1000, not anyone's filtered afterwards. */
    if (scope && !scope->all) {
        buf_append_str(&sql, " AND (1 = 0");
        if (scope->issuer && scope->subject) {
            p[np++] = scope->issuer;
            p[np++] = scope->subject;
            buf_printf(&sql, " OR (requester_issuer = $%d AND requester = $%d)", np - 1, np);
        }
        for (size_t i = 0; i < nconn; i++) {
            p[np++] = scope->connections[i];
            buf_printf(&sql, "%s$%d", i ? "," : " OR connection IN (", np);
        }
        buf_append_str(&sql, nconn ? "))" : ")");
    }
    if (page && page->cursor) {
        p[np++] = cur_ts;
        p[np++] = cur_id;
        buf_printf(&sql, " AND (created_at, id) %s (CAST($%d AS BIGINT), CAST($%d AS TEXT))", newest ? "<" : ">",
                   np - 1, np);
    }
    /* One more than the page, to know whether another follows. */
    i64s(lim, sizeof lim, limit + (page ? 1 : 0));
    p[np++] = lim;
    const char *order = newest ? "created_at DESC, id DESC" : "created_at, id";
    buf_printf(&sql, " ORDER BY %s LIMIT CAST($%d AS INTEGER)", order, np);
    char budget[24];
    i64s(budget, sizeof budget, STORE_PAGE_BYTES);
    p[np++] = budget;
    struct buf paged = {0};
    buf_printf(&paged, "SELECT " REVIEW_COLS ", page_bytes FROM (SELECT " REVIEW_COLS ", SUM(" REVIEW_SIZE ")"
               " OVER (ORDER BY %s ROWS UNBOUNDED PRECEDING) AS page_bytes FROM (%s) r) w"
               " WHERE page_bytes - " REVIEW_SIZE " < CAST($%d AS BIGINT) ORDER BY %s",
               order, buf_cstr(&sql), np, order);
    int rc = sql.data && paged.data
                 ? query_json(s, buf_cstr(&paged), np, p, review_page_names, REVIEW_KINDS "i", out, err, errlen)
                 : (snprintf(err, errlen, "out of memory"), STORE_ERROR);
    buf_free(&sql);
    buf_free(&paged);
    free(p);
    if (rc)
        return rc;
    size_t n = json_array_size(*out);
    bool cut = n && json_integer_value(json_object_get(json_array_get(*out, n - 1), "page_bytes")) >= STORE_PAGE_BYTES;
    for (size_t i = 0; i < n; i++)
        json_object_del(json_array_get(*out, i), "page_bytes");
    if (page) {
        page->next = page_next(*out, limit, "created_at");
        if (json_is_null(page->next) && cut) { /* the bytes ended the page: another may follow */
            json_decref(page->next);
            page->next = page_next_after(json_array_get(*out, n - 1), "created_at");
        }
    }
    return 0;
}

int store_review_decide(struct store *s, const char *id, const char *status, const char *reason,
                        const char *decided_by, int64_t now, char *err, size_t errlen)
{
    char n[24];
    i64s(n, sizeof n, now);
    const char *p[] = {id, status, reason, decided_by, n};
    int64_t ch = 0;
    int rc = q_notified(s, "UPDATE reviews SET status = $2, reason = $3, decided_by = $4,"
                           " decided_at = CAST($5 AS BIGINT)"
                           " WHERE id = $1 AND status = 'pending' AND expires_at > CAST($5 AS BIGINT)",
                        5, p, &ch, err, errlen);
    if (rc)
        return rc;
    if (ch == 0) {
        snprintf(err, errlen, "review %s is not pending", id);
        return STORE_CONFLICT;
    }
    return 0;
}

int store_review_consume(struct store *s, const char *id, const char *requester,
                         const char *statement_hash, int64_t now, char *err, size_t errlen)
{
    char n[24];
    i64s(n, sizeof n, now);
    const char *p[] = {id, requester, statement_hash, n};
    int64_t ch = 0;
    int rc = q_notified(s, "UPDATE reviews SET status = 'consumed', consumed_at = CAST($4 AS BIGINT)"
                           " WHERE id = $1 AND requester = $2 AND statement_hash = $3 AND status = 'approved'"
                           " AND expires_at > CAST($4 AS BIGINT)",
                        4, p, &ch, err, errlen);
    if (rc)
        return rc;
    if (ch == 0) {
        snprintf(err, errlen, "review %s is not approved for this statement, or was used or expired", id);
        return STORE_CONFLICT;
    }
    return 0;
}

int store_review_claim(struct store *s, const char *id, const char *event_id, bool *fresh, char *err,
                       size_t errlen)
{
    const char *p[] = {id, event_id};
    int64_t ch = 0;
    int rc = q(s, "UPDATE reviews SET event_id = $2 WHERE id = $1 AND event_id IS NULL", 2, p, NULL, NULL, &ch, err,
               errlen);
    *fresh = rc == 0 && ch == 1;
    if (rc || *fresh)
        return rc;
    int64_t mine = 0;
    if ((rc = q(s, "SELECT COUNT(*) FROM reviews WHERE id = $1 AND event_id = $2", 2, p, row_int, &mine, NULL, err,
                errlen)))
        return rc;
    if (mine == 0) {
        snprintf(err, errlen, "review %s is another statement's", id);
        return STORE_CONFLICT;
    }
    return 0;
}

int store_review_unclaim(struct store *s, const char *id, const char *event_id, char *err, size_t errlen)
{
    const char *p[] = {id, event_id};
    return q(s, "UPDATE reviews SET event_id = NULL WHERE id = $1 AND event_id = $2", 2, p, NULL, NULL, NULL, err,
             errlen);
}

int store_review_expire(struct store *s, int64_t now, char *err, size_t errlen)
{
    char n[24];
    i64s(n, sizeof n, now);
    const char *p[] = {n};
    int64_t ch = 0;
    int rc = q_notified(s, "UPDATE reviews SET status = 'expired' WHERE status = 'pending'"
                           " AND expires_at <= CAST($1 AS BIGINT)", 1, p, &ch, err, errlen);
    if (rc)
        return -1;
    return (int)ch;
}

int store_review_pending_of(struct store *s, const char *issuer, const char *subject, int64_t now,
                            int64_t *count, char *err, size_t errlen)
{
    char n[24];
    i64s(n, sizeof n, now);
    const char *p[] = {issuer, subject, n};
    *count = 0;
    /* Undecided ones that expired within the hour count too: a request with
     * a one-second life would otherwise leave the cap at once. */
    return q(s, "SELECT COUNT(*) FROM reviews WHERE requester_issuer = $1 AND requester = $2"
                " AND status IN ('pending', 'expired') AND (expires_at > CAST($3 AS BIGINT)"
                " OR created_at > CAST($3 AS BIGINT) - 3600000)",
             3, p, row_int, count, NULL, err, errlen);
}

int64_t store_review_count(struct store *s, const char *status)
{
    const char *p[] = {status};
    int64_t n = 0;
    char err[256];
    if (q(s, "SELECT COUNT(*) FROM reviews WHERE status = $1", 1, p, row_int, &n, NULL, err, sizeof err))
        return -1;
    return n;
}
