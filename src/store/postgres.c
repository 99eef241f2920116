/* postgres.c — the PostgreSQL engine for the store (libpq): text parameters,
 * a reconnect when the link drops, and a second connection that LISTENs for
 * change notices from other server processes. */
#include "driver.h"
#include "hoopctl/store.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG_LOCK_TIMEOUT "5s"

struct db_postgres {
    PGconn *conn;
    PGconn *listener;
    char conninfo[1024];
};

/* What every store connection sets, at connect and after a reconnect:
 * no notices in the log; a lock held elsewhere longer than a few seconds
 * (another instance frozen inside its ingest, which holds chain_head) fails
 * the request with STORE_BUSY instead of stopping this instance's loop; and
 * PostgreSQL ends a transaction left idle, so a frozen or cut-off instance
 * holds its locks for a minute at most. */
static void pg_setup(PGconn *c)
{
    PGresult *r = PQexec(c, "SET client_min_messages = warning; SET lock_timeout = '" PG_LOCK_TIMEOUT "';"
                            " SET idle_in_transaction_session_timeout = '60s'");
    PQclear(r);
}

static PGconn *pg_connect(const char *conninfo, char *err, size_t errlen)
{
    /* TCP keepalives find a dead link in about a minute, not the system's
     * two hours; the URL's own settings come after, and win. */
    static const char *const keys[] = {"keepalives_idle", "keepalives_interval", "keepalives_count", "dbname",
                                       NULL};
    const char *vals[] = {"30", "10", "3", conninfo, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        /* The message names host and reason, never the password. */
        snprintf(err, errlen, "postgres: %s", c ? PQerrorMessage(c) : "out of memory");
        size_t l = strlen(err);
        while (l && (err[l - 1] == '\n' || err[l - 1] == ' '))
            err[--l] = '\0';
        PQfinish(c);
        return NULL;
    }
    pg_setup(c);
    return c;
}

void *db_postgres_open(const char *conninfo, char *err, size_t errlen)
{
    if (strlen(conninfo) >= sizeof((struct db_postgres *)0)->conninfo) {
        snprintf(err, errlen, "postgres: connection URL too long");
        return NULL;
    }
    struct db_postgres *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(h->conninfo, sizeof h->conninfo, "%s", conninfo);
    h->conn = pg_connect(conninfo, err, errlen);
    if (!h->conn) {
        free(h);
        return NULL;
    }
    return h;
}

static int pg_exec(void *vh, const char *sql, int nparams, const char *const *params, db_row_fn fn,
                   void *arg, int64_t *changes, char *err, size_t errlen)
{
    struct db_postgres *h = vh;
    if (PQstatus(h->conn) != CONNECTION_OK) {
        PQreset(h->conn);
        if (PQstatus(h->conn) != CONNECTION_OK) {
            snprintf(err, errlen, "postgres: connection lost and reconnect failed");
            return STORE_ERROR;
        }
        pg_setup(h->conn);
    }
    PGresult *r = nparams ? PQexecParams(h->conn, sql, nparams, NULL, params, NULL, NULL, 0)
                          : PQexec(h->conn, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        /* 55P03: lock_timeout; 57014: a cancel. Both say "try again". */
        int rc = !code                           ? STORE_ERROR
                 : strcmp(code, "23505") == 0    ? STORE_CONFLICT
                 : strcmp(code, "55P03") == 0 || strcmp(code, "57014") == 0 ? STORE_BUSY
                                                                           : STORE_ERROR;
        snprintf(err, errlen, "postgres: %s", PQresultErrorMessage(r));
        size_t l = strlen(err);
        while (l && (err[l - 1] == '\n' || err[l - 1] == ' '))
            err[--l] = '\0';
        PQclear(r);
        return rc;
    }
    if (fn && st == PGRES_TUPLES_OK) {
        int nr = PQntuples(r), nc = PQnfields(r);
        if (nc > 64)
            nc = 64;
        const char *vals[64];
        for (int i = 0; i < nr; i++) {
            for (int j = 0; j < nc; j++)
                vals[j] = PQgetisnull(r, i, j) ? NULL : PQgetvalue(r, i, j);
            if (fn(arg, nc, vals) != 0)
                break;
        }
    }
    if (changes) {
        const char *t = PQcmdTuples(r);
        *changes = t && *t ? atoll(t) : 0;
    }
    PQclear(r);
    return 0;
}

static int pg_notify(void *vh, const char *channel)
{
    struct db_postgres *h = vh;
    char sql[128];
    snprintf(sql, sizeof sql, "NOTIFY %s", channel);
    PGresult *r = PQexec(h->conn, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    return ok ? 0 : -1;
}

static int pg_listen_fd(void *vh, const char *channel, char *err, size_t errlen)
{
    struct db_postgres *h = vh;
    if (!h->listener) {
        h->listener = pg_connect(h->conninfo, err, errlen);
        if (!h->listener)
            return -1;
        char sql[128];
        snprintf(sql, sizeof sql, "LISTEN %s", channel);
        PGresult *r = PQexec(h->listener, sql);
        int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (!ok) {
            snprintf(err, errlen, "postgres: LISTEN failed: %s", PQerrorMessage(h->listener));
            return -1;
        }
        PQsetnonblocking(h->listener, 1);
    }
    return PQsocket(h->listener);
}

static int pg_listen_drain(void *vh)
{
    struct db_postgres *h = vh;
    if (!h->listener)
        return 0;
    if (!PQconsumeInput(h->listener) || PQstatus(h->listener) != CONNECTION_OK)
        return -1;
    int n = 0;
    PGnotify *nt;
    while ((nt = PQnotifies(h->listener)) != NULL) {
        n++;
        PQfreemem(nt);
    }
    return n;
}

static void pg_listen_reset(void *vh)
{
    struct db_postgres *h = vh;
    PQfinish(h->listener);
    h->listener = NULL;
}

static void pg_close(void *vh)
{
    struct db_postgres *h = vh;
    if (!h)
        return;
    PQfinish(h->conn);
    PQfinish(h->listener);
    free(h);
}

const struct db_driver db_postgres_driver = {
    .kind = "postgres",
    .begin_write = "BEGIN",
    .begin_snapshot = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
    .for_update = " FOR UPDATE",
    .exec = pg_exec,
    .close = pg_close,
    .notify = pg_notify,
    .listen_fd = pg_listen_fd,
    .listen_drain = pg_listen_drain,
    .listen_reset = pg_listen_reset,
};
