/* db.c — the MCP server's libpq side: a lazily opened session (application
 * name hoopctl-mcp, statement timeout, read-only by default), one statement
 * at a time in single-row mode within the limits, and statements the gateway
 * holds for review parked on their own connection until they finish. */
#include "mcp_internal.h"
#include "hoopctl/log.h"
#include "hoopctl/util.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One libpq connection and what its notice receiver has seen. */
struct mcp_conn {
    PGconn *pg;
    bool collecting;                 /* record notices of the running statement */
    bool read_only;                  /* its statement runs in our BEGIN READ ONLY */
    bool cancelled;                  /* a cancel was sent: never reuse this one */
    bool gateway_holds;              /* hold notices come from our gateway */
    char held_id[MCP_REVIEW_ID_MAX]; /* set by a hold notice */
    char held_message[MCP_MESSAGE_MAX];
    json_t *notices;                 /* other notices of the statement */
};

struct mcp_pending {
    char review_id[MCP_REVIEW_ID_MAX];
    struct mcp_conn *conn;
};

struct mcp_db {
    struct mcp_config cfg;
    char *conninfo;
    struct mcp_conn *idle;
    struct mcp_pending pending[MCP_MAX_PENDING];
};

static void conn_notice(void *arg, const PGresult *res)
{
    struct mcp_conn *c = arg;
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    if (!msg || !c->collecting)
        return;
    char id[MCP_REVIEW_ID_MAX];
    if (c->gateway_holds && mcp_hold_notice_parse(msg, id, sizeof id)) {
        snprintf(c->held_id, sizeof c->held_id, "%s", id);
        mcp_textf(c->held_message, sizeof c->held_message, "%s", msg);
        return;
    }
    if (!c->notices)
        c->notices = json_array();
    if (c->notices && json_array_size(c->notices) < MCP_MAX_NOTICES) {
        char line[512];
        const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY);
        mcp_textf(line, sizeof line, "%s: %s", sev ? sev : "NOTICE", msg);
        json_t *s = json_string(line);
        json_array_append_new(c->notices, s ? s : json_string("NOTICE: (not UTF-8)"));
    }
}

static void conn_free(struct mcp_conn *c)
{
    if (!c)
        return;
    if (c->pg)
        PQfinish(c->pg);
    json_decref(c->notices);
    free(c);
}

static void set_error(struct mcp_outcome_info *out, const char *sqlstate, const char *fmt, const char *detail)
{
    out->kind = MCP_OUTCOME_ERROR;
    snprintf(out->sqlstate, sizeof out->sqlstate, "%s", sqlstate ? sqlstate : "");
    mcp_textf(out->message, sizeof out->message, fmt, detail ? detail : "");
    /* libpq messages end in a newline; the model does not need it. */
    size_t n = strlen(out->message);
    while (n && (out->message[n - 1] == '\n' || out->message[n - 1] == ' '))
        out->message[--n] = '\0';
}

static void set_result_error(struct mcp_outcome_info *out, const PGresult *res, PGconn *pg)
{
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
    const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
    char text[MCP_MESSAGE_MAX];
    if (primary)
        mcp_textf(text, sizeof text, "%s%s%s%s%s", primary, detail ? "\nDETAIL: " : "",
                  detail ? detail : "", hint ? "\nHINT: " : "", hint ? hint : "");
    else
        mcp_textf(text, sizeof text, "%s", PQerrorMessage(pg));
    set_error(out, state, "%s", text);
}

/* Open and set up a session. Returns NULL with out filled on failure. */
static struct mcp_conn *conn_open(struct mcp_db *db, struct mcp_outcome_info *out)
{
    struct mcp_conn *c = calloc(1, sizeof *c);
    if (!c) {
        set_error(out, "", "out of memory%s", "");
        return NULL;
    }
    char why[128];
    if (!mcp_conninfo_check(db->conninfo, why, sizeof why)) {
        /* (hoopctl mcp checks --dsn at start: this is a last guard, and it
         * never passes libpq's parse message, which quotes the string.) */
        set_error(out, "08001", "could not connect to the database: the connection string is not valid (%s)", why);
        conn_free(c);
        return NULL;
    }
    /* dbname first so that the keywords after it override the string's. */
    const char *keys[] = {"dbname", "application_name", "client_encoding", NULL};
    const char *vals[] = {db->conninfo, "hoopctl-mcp", "UTF8", NULL};
    c->pg = PQconnectdbParams(keys, vals, 1);
    if (!c->pg || PQstatus(c->pg) != CONNECTION_OK) {
        set_error(out, "08001", "could not connect to the database: %s",
                  c->pg ? PQerrorMessage(c->pg) : "out of memory");
        conn_free(c);
        return NULL;
    }
    c->gateway_holds = db->cfg.gateway_holds;
    PQsetNoticeReceiver(c->pg, conn_notice, c);
    char setup[160];
    snprintf(setup, sizeof setup, "SET statement_timeout = %ld; SET default_transaction_read_only = %s",
             db->cfg.statement_timeout_ms, db->cfg.allow_writes ? "off" : "on");
    const char *sql = setup;
    if (db->cfg.statement_timeout_ms <= 0)
        sql = strchr(setup, ';') + 2;
    PGresult *res = PQexec(c->pg, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        set_result_error(out, res, c->pg);
        PQclear(res);
        conn_free(c);
        return NULL;
    }
    PQclear(res);
    log_info("mcp", "connected to the database (application_name hoopctl-mcp)");
    return c;
}

struct mcp_db *mcp_db_new(const struct mcp_config *cfg)
{
    struct mcp_db *db = calloc(1, sizeof *db);
    if (!db)
        return NULL;
    db->cfg = *cfg;
    db->conninfo = strdup(cfg->conninfo ? cfg->conninfo : "");
    if (!db->conninfo) {
        free(db);
        return NULL;
    }
    db->cfg.conninfo = db->conninfo;
    return db;
}

void mcp_db_free(struct mcp_db *db)
{
    if (!db)
        return;
    conn_free(db->idle);
    for (int i = 0; i < MCP_MAX_PENDING; i++)
        conn_free(db->pending[i].conn);
    if (db->conninfo)
        util_secure_zero(db->conninfo, strlen(db->conninfo));
    free(db->conninfo);
    free(db);
}

const struct mcp_config *mcp_db_config(const struct mcp_db *db) { return &db->cfg; }

/* Wait for input on the connection: up to wait_ms (-1: no limit). Returns 1
 * when the connection is no longer busy, 0 on timeout or a hold notice, -1
 * when the connection failed, -2 when the process must stop (the statement
 * is cancelled, and the connection is not reused). */
static int conn_wait(struct mcp_db *db, struct mcp_conn *c, long wait_ms, bool stop_on_hold)
{
    int fd = PQsocket(c->pg);
    int64_t deadline = util_monotonic_us() + (int64_t)wait_ms * 1000;
    for (;;) {
        if (!PQisBusy(c->pg))
            return 1;
        if (stop_on_hold && c->held_id[0])
            return 0;
        /* Notices may arrive before the result: wait for what is left. */
        int timeout = -1;
        if (wait_ms >= 0) {
            int64_t left = deadline - util_monotonic_us();
            timeout = left > 0 ? (int)((left + 999) / 1000) : 0;
        }
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = db->cfg.stop_fd, .events = POLLIN}};
        int n = poll(p, db->cfg.stop_fd > 0 ? 2 : 1, timeout);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        if (db->cfg.stop_fd > 0 && (p[1].revents & (POLLIN | POLLHUP))) {
            PGcancel *cancel = PQgetCancel(c->pg);
            char errbuf[256];
            if (cancel) {
                PQcancel(cancel, errbuf, sizeof errbuf);
                PQfreeCancel(cancel);
            }
            c->cancelled = true;
            return -2;
        }
        if (!PQconsumeInput(c->pg))
            return -1;
    }
}

/* Read every result of the running statement into out. */
static void conn_collect(struct mcp_db *db, struct mcp_conn *c, struct mcp_outcome_info *out)
{
    struct mcp_rows rows;
    mcp_rows_init(&rows, db->cfg.max_rows, db->cfg.max_bytes);
    char command[64] = "";
    bool failed = false, cancelled = false;
    PGresult *res;
    while ((res = PQgetResult(c->pg))) {
        ExecStatusType st = PQresultStatus(res);
        switch (st) {
        case PGRES_SINGLE_TUPLE:
        case PGRES_TUPLES_OK:
            if (mcp_rows_set_columns(&rows, res) < 0 && !failed) {
                set_error(out, "", "out of memory%s", "");
                failed = true;
            }
            for (int i = 0; i < PQntuples(res) && !failed; i++)
                if (mcp_rows_add(&rows, res, i) < 0) {
                    set_error(out, "", "out of memory%s", "");
                    failed = true;
                }
            if (rows.truncated && !cancelled && c->read_only) {
                /* Stop the server producing rows nobody will read. A cancel
                 * may arrive late (a gateway relays it on its own time) and
                 * hit a later statement, so the connection is dropped after
                 * this one rather than reused. Only in our own READ ONLY
                 * transaction: elsewhere a cancel would undo a write or the
                 * agent's open transaction, so the rest is read and dropped. */
                c->cancelled = true;
                PGcancel *cancel = PQgetCancel(c->pg);
                char errbuf[256];
                if (cancel) {
                    PQcancel(cancel, errbuf, sizeof errbuf);
                    PQfreeCancel(cancel);
                }
                cancelled = true;
            }
            if (st == PGRES_TUPLES_OK)
                snprintf(command, sizeof command, "%s", PQcmdStatus(res));
            break;
        case PGRES_COMMAND_OK:
            snprintf(command, sizeof command, "%s", PQcmdStatus(res));
            break;
        case PGRES_COPY_IN:
            PQputCopyEnd(c->pg, "COPY is not supported through hoopctl mcp");
            break;
        case PGRES_COPY_OUT: {
            char *buf;
            while (PQgetCopyData(c->pg, &buf, 0) > 0)
                PQfreemem(buf);
            if (!failed) {
                set_error(out, "0A000", "COPY is not supported through hoopctl mcp%s", "");
                failed = true;
            }
            break;
        }
        case PGRES_EMPTY_QUERY:
            if (!failed) {
                set_error(out, "", "the query is empty%s", "");
                failed = true;
            }
            break;
        default: {
            const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
            /* The cancel we sent after truncating is not the agent's error. */
            bool ours = cancelled && state && strcmp(state, "57014") == 0;
            if (!ours && !failed) {
                set_result_error(out, res, c->pg);
                failed = true;
            }
            break;
        }
        }
        PQclear(res);
    }
    if (!failed) {
        out->kind = MCP_OUTCOME_ROWS;
        out->body = mcp_rows_finish(&rows, command);
        if (!out->body)
            set_error(out, "", "out of memory%s", "");
        else if (c->notices && json_array_size(c->notices) > 0)
            json_object_set(out->body, "notices", c->notices);
    }
    mcp_rows_free(&rows);
}

/* End the statement's transaction and hand the connection back (or drop it
 * when it is no longer healthy). */
static void conn_release(struct mcp_db *db, struct mcp_conn *c)
{
    c->collecting = false;
    json_decref(c->notices);
    c->notices = NULL;
    c->held_id[0] = '\0';
    if (PQstatus(c->pg) == CONNECTION_OK && PQtransactionStatus(c->pg) != PQTRANS_IDLE && c->read_only) {
        PGresult *res = PQexec(c->pg, "ROLLBACK");
        PQclear(res);
    }
    /* A transaction of the agent's (failed or not) stays open for it. */
    PGTransactionStatusType ts = PQtransactionStatus(c->pg);
    bool healthy = PQstatus(c->pg) == CONNECTION_OK &&
                   (ts == PQTRANS_IDLE || (!c->read_only && (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR)));
    if (healthy && !db->idle && !c->cancelled) {
        db->idle = c;
    } else {
        if (!healthy || c->cancelled)
            log_info("mcp", "closing a database connection (%s)", c->cancelled ? "cancel sent" : "not idle");
        conn_free(c);
    }
}

static struct mcp_pending *pending_slot(struct mcp_db *db)
{
    for (int i = 0; i < MCP_MAX_PENDING; i++)
        if (!db->pending[i].conn)
            return &db->pending[i];
    return NULL;
}

int mcp_db_run(struct mcp_db *db, const char *sql, int nparams, const char *const *params,
               bool read_only, bool allow_hold, struct mcp_outcome_info *out)
{
    memset(out, 0, sizeof *out);
    if (allow_hold && !pending_slot(db)) {
        out->kind = MCP_OUTCOME_ERROR;
        snprintf(out->message, sizeof out->message,
                 "%d statements are already held for review; poll them with check_review "
                 "before running more", MCP_MAX_PENDING);
        return 0;
    }
    struct mcp_conn *c = db->idle;
    db->idle = NULL;
    if (c && PQstatus(c->pg) != CONNECTION_OK) {
        conn_free(c);
        c = NULL;
    }
    if (c && db->cfg.allow_writes && db->cfg.statement_timeout_ms > 0) {
        /* The agent may SET statement_timeout (or set_config it) on this
         * reused session: --statement-timeout is set again before each call.
         * In a failed transaction of the agent's this fails, and nothing
         * but ROLLBACK can run there anyway. */
        char set[64];
        snprintf(set, sizeof set, "SET statement_timeout = %ld", db->cfg.statement_timeout_ms);
        PQclear(PQexec(c->pg, set));
    }
    if (!c && !(c = conn_open(db, out)))
        return 0;
    /* Inside a transaction the agent opened (--allow-writes), a read-only
     * call (the catalog) runs in that transaction: BEGIN would only warn,
     * and the ROLLBACK that ends our own would end the agent's. */
    c->read_only = read_only && PQtransactionStatus(c->pg) == PQTRANS_IDLE;
    if (c->read_only) {
        PGresult *res = PQexec(c->pg, "BEGIN READ ONLY");
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            set_result_error(out, res, c->pg);
            PQclear(res);
            conn_release(db, c);
            return 0;
        }
        PQclear(res);
    }
    c->collecting = true;
    c->held_id[0] = '\0';
    /* The extended protocol takes exactly one statement: "select 1; drop
     * table t" is refused by the server rather than split here. */
    if (!PQsendQueryParams(c->pg, sql, nparams, NULL, params, NULL, NULL, 0)) {
        set_error(out, "08006", "could not send the query: %s", PQerrorMessage(c->pg));
        conn_release(db, c);
        return 0;
    }
    PQsetSingleRowMode(c->pg);
    int w = conn_wait(db, c, -1, allow_hold);
    struct mcp_pending *p = w == 0 ? pending_slot(db) : NULL;
    if (p) {
        snprintf(p->review_id, sizeof p->review_id, "%s", c->held_id);
        p->conn = c;
        out->kind = MCP_OUTCOME_HELD;
        snprintf(out->review_id, sizeof out->review_id, "%s", c->held_id);
        mcp_textf(out->message, sizeof out->message, "%s", c->held_message);
        log_info("mcp", "statement held for review %s", c->held_id);
        return 0;
    }
    if (w == -2) { /* closed, not released: a ROLLBACK would wait for the cancel */
        set_error(out, "57014", "hoopctl mcp is stopping: the statement was cancelled%s", "");
        conn_free(c);
        return 0;
    }
    if (w <= 0) {
        /* (w == 0 with no free slot cannot happen: one was checked above.) */
        set_error(out, "08006", "lost the database connection: %s", PQerrorMessage(c->pg));
        conn_release(db, c);
        return 0;
    }
    conn_collect(db, c, out);
    conn_release(db, c);
    return 0;
}

int mcp_db_check_review(struct mcp_db *db, const char *review_id, long wait_ms,
                        struct mcp_outcome_info *out)
{
    memset(out, 0, sizeof *out);
    struct mcp_pending *p = NULL;
    for (int i = 0; i < MCP_MAX_PENDING; i++)
        if (db->pending[i].conn && strcmp(db->pending[i].review_id, review_id) == 0)
            p = &db->pending[i];
    if (!p) {
        set_error(out, "", "no statement of this session is waiting on review '%s'", review_id);
        return 0;
    }
    snprintf(out->review_id, sizeof out->review_id, "%s", review_id);
    struct mcp_conn *c = p->conn;
    int w = conn_wait(db, c, wait_ms, false);
    if (w == 0) {
        out->kind = MCP_OUTCOME_PENDING;
        mcp_textf(out->message, sizeof out->message, "%s", c->held_message);
        return 0;
    }
    p->conn = NULL;
    p->review_id[0] = '\0';
    if (w == -2) {
        set_error(out, "57014", "hoopctl mcp is stopping: the statement was cancelled%s", "");
        conn_free(c);
        snprintf(out->review_id, sizeof out->review_id, "%s", review_id);
        return 0;
    }
    if (w < 0)
        set_error(out, "08006", "lost the database connection: %s", PQerrorMessage(c->pg));
    else
        conn_collect(db, c, out);
    conn_release(db, c);
    snprintf(out->review_id, sizeof out->review_id, "%s", review_id);
    return 0;
}
