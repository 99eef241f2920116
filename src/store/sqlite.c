/* sqlite.c — the SQLite engine for the store: WAL, a busy timeout, and a small
 * cache of prepared statements keyed by their SQL text. */
#include "driver.h"
#include "hoopctl/store.h"
#include "hoopctl/util.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SQLITE_CACHE 48

struct db_sqlite {
    sqlite3 *db;
    struct {
        const char *sql;         /* pointer identity: SQL texts are static */
        sqlite3_stmt *stmt;
        int *map;                /* ?-position -> $-number */
    } cache[SQLITE_CACHE];
    int ncache;
};

/* 16 MiB of page cache instead of SQLite's 2 MiB, and the file mapped (up
 * to 256 MiB) so reads of pages outside the cache cost no copy: session
 * listings and exports read back what ingest wrote. */
#define STORE_SQLITE_CACHE " PRAGMA cache_size=-16384; PRAGMA mmap_size=268435456;"

/* path as an SQLite URI that opens it read only and immutable: nothing is
 * created beside it (no -shm, no -wal) and no lock is taken; what a WAL file
 * holds beyond the last checkpoint is not read. */
static int immutable_uri(const char *path, char *out, size_t outlen)
{
    size_t o = (size_t)snprintf(out, outlen, "file:");
    for (const char *p = path; *p; p++) {
        if (o + 4 >= outlen)
            return -1;
        if (*p == '%' || *p == '?' || *p == '#')
            o += (size_t)snprintf(out + o, outlen - o, "%%%02X", (unsigned char)*p);
        else
            out[o++] = *p;
    }
    return snprintf(out + o, outlen - o, "?mode=ro&immutable=1") < (int)(outlen - o) ? 0 : -1;
}

/* A read-only open: plainly when a WAL file is there (a server may be
 * writing: its last commits are read), else, or when that fails for want of
 * write access to the directory (SQLite's -shm), immutable. */
static int sqlite_open_readonly(const char *path, sqlite3 **db)
{
    char wal[1100], uri[3300];
    snprintf(wal, sizeof wal, "%s-wal", path);
    if (access(wal, F_OK) == 0) {
        int rc = sqlite3_open_v2(path, db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(*db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
        if ((rc & 0xff) != SQLITE_READONLY && (rc & 0xff) != SQLITE_CANTOPEN)
            return rc;
        sqlite3_close(*db);
        *db = NULL;
    }
    if (immutable_uri(path, uri, sizeof uri) < 0)
        return SQLITE_CANTOPEN;
    return sqlite3_open_v2(uri, db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, NULL);
}

void *db_sqlite_open(const char *url_path, int readonly, char *err, size_t errlen)
{
    /* "PATH?sync=normal": commits reach the WAL file but are not fsynced
     * (safe against a crashed process, not against a crashed machine).
     * The default fsyncs every commit. */
    char path[1024];
    const char *pragmas =
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;" STORE_SQLITE_CACHE;
    const char *qm = strchr(url_path, '?');
    size_t plen = qm ? (size_t)(qm - url_path) : strlen(url_path);
    if (plen >= sizeof path || (qm && strcmp(qm, "?sync=normal") != 0 && strcmp(qm, "?sync=full") != 0)) {
        snprintf(err, errlen, "sqlite store: a path, optionally followed by ?sync=full or ?sync=normal");
        return NULL;
    }
    memcpy(path, url_path, plen);
    path[plen] = '\0';
    if (qm && strcmp(qm, "?sync=normal") == 0)
        pragmas =
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;" STORE_SQLITE_CACHE;
    if (readonly)
        pragmas = STORE_SQLITE_CACHE;
    struct db_sqlite *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (!readonly)
        util_sqlite_create_private(path); /* it holds the audit trail and key hashes */
    int orc = readonly ? sqlite_open_readonly(path, &h->db)
                       : sqlite3_open_v2(path, &h->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                         NULL);
    if (orc != SQLITE_OK) {
        snprintf(err, errlen, "sqlite %s: %s", path, h->db ? sqlite3_errmsg(h->db) : "cannot open");
        sqlite3_close(h->db);
        free(h);
        return NULL;
    }
    sqlite3_busy_timeout(h->db, 10000);
    char *msg = NULL;
    if (sqlite3_exec(h->db, pragmas, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "sqlite %s: %s", path, msg ? msg : "pragma failed");
        sqlite3_free(msg);
        sqlite3_close(h->db);
        free(h);
        return NULL;
    }
    return h;
}

/* "$7" -> "?" plus map[position] = 7. Anonymous "?" parameters cost
 * nothing to number, where named or numbered ones are looked up linearly
 * (quadratic for a 1000-row insert). The SQL texts hold no '$' of their own:
 * values are always bound. */
static char *sqlite_positional(const char *sql, int **map, int *nmap)
{
    size_t len = strlen(sql);
    char *out = malloc(len + 1);
    int *m = malloc((len / 2 + 1) * sizeof *m);
    if (!out || !m) {
        free(out);
        free(m);
        return NULL;
    }
    size_t j = 0;
    int n = 0;
    for (size_t i = 0; i < len; i++) {
        if (sql[i] == '$' && sql[i + 1] >= '0' && sql[i + 1] <= '9') {
            int k = 0;
            while (sql[i + 1] >= '0' && sql[i + 1] <= '9')
                k = k * 10 + (sql[++i] - '0');
            m[n++] = k;
            out[j++] = '?';
        } else {
            out[j++] = sql[i];
        }
    }
    out[j] = '\0';
    *map = m;
    *nmap = n;
    return out;
}

static sqlite3_stmt *sqlite_prepare(struct db_sqlite *h, const char *sql, int *cached, int **map)
{
    int nmap = 0;
    char *text = sqlite_positional(sql, map, &nmap);
    if (!text)
        return NULL;
    for (int i = 0; i < h->ncache; i++)
        if (h->cache[i].sql == sql) {
            /* The same address may hold another text (a built query). */
            if (strcmp(sqlite3_sql(h->cache[i].stmt), text) == 0) {
                free(text);
                free(*map);
                *map = h->cache[i].map;
                *cached = 1;
                return h->cache[i].stmt;
            }
            sqlite3_finalize(h->cache[i].stmt);
            free(h->cache[i].map);
            h->cache[i] = h->cache[--h->ncache];
            break;
        }
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(h->db, text, -1, &st, NULL);
    free(text);
    if (rc != SQLITE_OK) {
        free(*map);
        *map = NULL;
        return NULL;
    }
    *cached = 0;
    /* Only single statements with parameters are worth caching. */
    if (h->ncache < SQLITE_CACHE && sqlite3_bind_parameter_count(st) > 0) {
        h->cache[h->ncache].sql = sql;
        h->cache[h->ncache].stmt = st;
        h->cache[h->ncache].map = *map;
        h->ncache++;
        *cached = 1;
    }
    return st;
}

static int sqlite_exec(void *vh, const char *sql, int nparams, const char *const *params,
                       db_row_fn fn, void *arg, int64_t *changes, char *err, size_t errlen)
{
    struct db_sqlite *h = vh;
    if (nparams == 0 && !fn) {  /* plain script: BEGIN, COMMIT, DDL */
        char *msg = NULL;
        if (sqlite3_exec(h->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
            snprintf(err, errlen, "sqlite: %s", msg ? msg : "error");
            sqlite3_free(msg);
            return STORE_ERROR;
        }
        if (changes)
            *changes = sqlite3_changes(h->db);
        return 0;
    }
    int cached = 0, *map = NULL;
    sqlite3_stmt *st = sqlite_prepare(h, sql, &cached, &map);
    if (!st) {
        snprintf(err, errlen, "sqlite: %s", sqlite3_errmsg(h->db));
        return STORE_ERROR;
    }
    int rc = 0;
    /* The i-th "?" takes params[map[i] - 1]. */
    int count = sqlite3_bind_parameter_count(st);
    for (int i = 0; i < count; i++) {
        int k = map[i];
        if (k >= 1 && k <= nparams && params[k - 1])
            sqlite3_bind_text(st, i + 1, params[k - 1], -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, i + 1);
    }
    const char *vals[64];
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        int nc = sqlite3_column_count(st);
        if (nc > 64)
            nc = 64;
        for (int i = 0; i < nc; i++)
            vals[i] = (const char *)sqlite3_column_text(st, i);
        if (fn && fn(arg, nc, vals) != 0) {
            step = SQLITE_DONE;
            break;
        }
    }
    if (step != SQLITE_DONE) {
        int ext = sqlite3_extended_errcode(h->db);
        rc = ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY ? STORE_CONFLICT
             : (ext & 0xff) == SQLITE_BUSY                                               ? STORE_BUSY
                                                                                         : STORE_ERROR;
        snprintf(err, errlen, "sqlite: %s", sqlite3_errmsg(h->db));
    } else if (changes) {
        *changes = sqlite3_changes(h->db);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (!cached) {
        sqlite3_finalize(st);
        free(map);
    }
    return rc;
}

static void sqlite_close(void *vh)
{
    struct db_sqlite *h = vh;
    if (!h)
        return;
    for (int i = 0; i < h->ncache; i++) {
        sqlite3_finalize(h->cache[i].stmt);
        free(h->cache[i].map);
    }
    sqlite3_close(h->db);
    free(h);
}

const struct db_driver db_sqlite_driver = {
    .kind = "sqlite",
    .begin_write = "BEGIN IMMEDIATE",
    .begin_snapshot = "BEGIN", /* WAL: a reader keeps the snapshot of its first read */
    .for_update = "",
    .exec = sqlite_exec,
    .close = sqlite_close,
};
