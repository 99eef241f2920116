/* driver.h — private to src/store: the few calls store.c needs from a SQL
 * engine. SQL is written once with $1..$n placeholders and runs on both. */
#ifndef HOOPCTL_STORE_DRIVER_H
#define HOOPCTL_STORE_DRIVER_H

#include <stddef.h>
#include <stdint.h>

/* Called per result row; vals[i] is NULL for SQL NULL. Non-zero stops. */
typedef int (*db_row_fn)(void *arg, int ncols, const char *const *vals);

struct db_driver {
    const char *kind;
    const char *begin_write;     /* "BEGIN IMMEDIATE" / "BEGIN" */
    const char *begin_snapshot;  /* a read-only transaction that sees one state throughout */
    const char *for_update;      /* "" / " FOR UPDATE" */
    /* Run sql with text params. Returns 0, STORE_CONFLICT on a unique
     * violation, STORE_BUSY when a lock held elsewhere did not come free in
     * time, or STORE_ERROR, with err set. *changes: rows affected. */
    int (*exec)(void *h, const char *sql, int nparams, const char *const *params, db_row_fn fn,
                void *arg, int64_t *changes, char *err, size_t errlen);
    void (*close)(void *h);
    int (*notify)(void *h, const char *channel);             /* may be NULL */
    int (*listen_fd)(void *h, const char *channel, char *err, size_t errlen); /* may be NULL */
    int (*listen_drain)(void *h);
    void (*listen_reset)(void *h);
};

/* readonly: open an existing file to read (no create, no journal-mode
 * change); else create it when missing. */
void *db_sqlite_open(const char *path, int readonly, char *err, size_t errlen);
extern const struct db_driver db_sqlite_driver;
void *db_postgres_open(const char *conninfo, char *err, size_t errlen);
extern const struct db_driver db_postgres_driver;

#endif
