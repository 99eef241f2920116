/* gateway.h — the PostgreSQL wire-protocol gateway: a loopback listener that
 * relays each client session to an upstream PostgreSQL, with hooks where the
 * policy engine decides on statements and filters result rows. One libevent
 * loop; every hook runs on that loop's thread and must not block. */
#ifndef HOOPCTL_GATEWAY_H
#define HOOPCTL_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hoopctl/pgwire.h"
#include "hoopctl/util.h"

struct event_base;
struct gateway;
struct sockaddr;

/* What the client session is, for hooks (valid during the callback only). */
struct gateway_session_info {
    uint64_t id;                  /* unique in this gateway run, from 1 */
    const char *client_user;      /* user= of the client's startup packet */
    const char *client_database;
    const char *application_name; /* "" when unset */
    const char *client_addr;      /* "127.0.0.1:54321" */
    uint32_t backend_pid;         /* upstream backend pid, 0 before it is known */
    char txn_status;              /* of upstream's last ReadyForQuery (kept when the idle hook
                                   * is set): 'I' idle (also before the first), 'T' in a
                                   * transaction block, 'E' a failed one */
    bool search_path_set;         /* the startup packet set search_path (as a parameter or in
                                   * options), which the statements never show: with a statement
                                   * hook, the policy must not assume the default one */
    /* Whose answer upstream is sending (kept when the statement or
     * row_description hook is set; read them in the hooks that see upstream's
     * messages): answer_id is the hold_id the statement hook got for the
     * Query or Execute being answered, 0 when it is none of the hook's (a
     * refused statement's, a Sync's after a Parse or Bind failed, nothing in
     * flight); answer_index is which statement of a Query (0 for the first:
     * the completions of that Query so far). Upstream answers in order, one
     * completion per statement, so this is exact: a session whose messages
     * could not be counted (out of memory, more than 65536 in flight, a
     * message other than COPY data, Flush or Sync during COPY FROM STDIN)
     * is closed; what upstream may skip or ignore waits until its answers
     * tell (see hoopctl-gateway(1)). */
    uint64_t answer_id;
    uint32_t answer_index;
};

enum gateway_statement_kind {
    GATEWAY_STATEMENT_SIMPLE = 0, /* a Query message (may hold several statements) */
    GATEWAY_STATEMENT_EXECUTE,    /* an Execute of a portal: the Parse text + Bind parameters */
    GATEWAY_STATEMENT_FUNCTION_CALL, /* a FunctionCall message (sql is "") */
};

/* A statement about to be forwarded. Parameters are exactly as bound (text or
 * binary per format; value NULL and length -1 for SQL NULL). For an Execute,
 * sql is the text of the Parse behind the portal as upstream confirmed it
 * (names commit on ParseComplete/BindComplete), or NULL when the portal was
 * not made by a Bind the gateway saw (e.g. a cursor DECLAREd in SQL, whose
 * DECLARE statement went through this hook itself). */
struct gateway_statement {
    enum gateway_statement_kind kind;
    const char *sql;
    const char *statement_name, *portal_name; /* "" for unnamed; NULL for simple */
    int nparams;
    const uint8_t *const *param_values;
    const int32_t *param_lengths;
    const int16_t *param_formats; /* per parameter: 0 text, 1 binary */
    int ntypes;                   /* the parameter types the Parse gave, in order (an OID, 0 for
                                   * unspecified; fewer than nparams, or none, is allowed) */
    const uint32_t *param_types;
    /* Whether the session may have a portal of this name that Bind made
     * (SQL FETCH, MOVE and CLOSE reach those too); valid during the hook
     * call, and for policy_guard_set_portals as long as the session lives. */
    bool (*portal_exists)(void *ctx, const char *name);
    void *portal_ctx;
    uint64_t portal_closes;       /* named portals the client has closed by protocol so far */
    /* The session's client_encoding when sql was converted from it to UTF-8
     * (a single-byte encoding such as LATIN1 or WIN1252: the same tokens,
     * the spelling the server's catalog has); NULL when sql is as sent.
     * Parameter values and names are always as sent. */
    const char *converted_from;
};

/* A refusal behaves like a PostgreSQL error: the client gets an
 * ErrorResponse with the refusal's SQLSTATE and message, an open transaction
 * becomes aborted (upstream sees a harmless failing marker statement in the
 * refused one's place, so the transaction state stays PostgreSQL's own), and
 * in the extended protocol everything up to the next Sync is skipped. */
enum gateway_verdict {
    GATEWAY_ALLOW = 0,
    GATEWAY_REFUSE,  /* fill the refusal; the client gets an ErrorResponse */
    GATEWAY_HOLD,    /* decide later with gateway_resolve(hold_id, ...), after the hook returned */
};

/* Names of prepared statements and portals that a statement may define or
 * drop behind the extended protocol's back: SQL PREPARE, DEALLOCATE and
 * DISCARD share the names of Parse's statements, SQL DECLARE and CLOSE those
 * of Bind's portals, and the end of a transaction drops every portal. The
 * gateway forgets them before it reads the client's next message, so that a
 * later Bind or Execute of such a name is refused (the statement hook sees no
 * SQL) rather than judged by SQL that upstream no longer holds. */
struct gateway_forget {
    bool statements, portals;        /* every one */
    const char *statement, *portal;  /* or one name (NULL: none); valid until the hook's next call */
};

struct gateway_refusal {
    char sqlstate[6];  /* e.g. "42501"; empty means 42501 (insufficient_privilege) */
    char message[512];
    char hold_notice[512]; /* GATEWAY_HOLD: NoticeResponse text sent to the client ("" = default) */
    bool hold_silent;      /* GATEWAY_HOLD without a NoticeResponse (e.g. until a group commit) */
    struct gateway_forget forget; /* the statement hook sets it with any verdict */
};

/* How a forwarded statement finished, as upstream reported it. */
enum gateway_completion_kind {
    GATEWAY_COMPLETE_COMMAND = 0, /* CommandComplete */
    GATEWAY_COMPLETE_EMPTY,       /* EmptyQueryResponse */
    GATEWAY_COMPLETE_ERROR,       /* ErrorResponse */
    GATEWAY_COMPLETE_SUSPENDED,   /* PortalSuspended: an Execute with a row limit */
};

struct gateway_completion {
    enum gateway_completion_kind kind;
    enum gateway_statement_kind statement_kind;
    uint64_t statement_id;        /* the hold_id the statement hook was given for it */
    const char *command_tag;      /* "SELECT 3", "UPDATE 2"; "" when none */
    int64_t rows;                 /* the tag's row count; -1 when it has none */
    const char *sqlstate;         /* ERROR: the SQLSTATE ("" when missing); else "" */
    const char *message;          /* ERROR: the primary message; else "" */
    /* Microseconds from the statement's forwarding upstream (for the later
     * statements of a multi-statement Query: from the previous one's end). */
    int64_t duration_us;
};

/* A per-column row filter, installed from the row_description hook. For each
 * DataRow, every column whose mask entry is set is
 * passed to `filter`, which writes the replacement into out (or sets *is_null).
 * Returning -1 drops the session with an error (fail closed). */
struct gateway_row_filter {
    uint8_t *mask;     /* ncols entries, allocated by the hook with malloc; freed by the gateway */
    int ncols;
    int (*filter)(void *user, const struct gateway_session_info *session, int column,
                  const uint8_t *value, int32_t length, int16_t format, struct buf *out,
                  bool *is_null);
    void *user;
};

/* A COPY OUT row rewriter, installed from the copy_out hook: each row (one
 * CopyData message, in the COPY's own format, which the policy knows from the
 * statement) is passed to `filter`, which writes the replacement row into out.
 * Returning -1 drops the session with an error (fail closed). */
struct gateway_copy_filter {
    int (*filter)(void *user, const struct gateway_session_info *session, const uint8_t *row,
                  size_t length, struct buf *out);
    void *user;
    const char *notice; /* non-NULL: sent to the client as a NoticeResponse before the COPY */
};

struct gateway_hooks {
    void *user;
    /* A client session finished its startup (upstream is authenticated). */
    void (*session_start)(void *user, const struct gateway_session_info *session);
    /* The session ended (any cause). */
    void (*session_end)(void *user, const struct gateway_session_info *session);
    /* Before a statement is forwarded. On GATEWAY_HOLD the session waits (other
     * sessions run) until gateway_resolve(hold_id, ...) is called. */
    enum gateway_verdict (*statement)(void *user, const struct gateway_session_info *session,
                                      const struct gateway_statement *stmt, uint64_t hold_id,
                                      struct gateway_refusal *refusal);
    /* A held statement's session ended before it was resolved. */
    void (*hold_abandoned)(void *user, uint64_t hold_id);
    /* After a RowDescription (ncols columns). Return true and fill *filter to
     * rewrite this result's rows; false to pass rows through untouched. With
     * this hook set, the gateway describes every Execute's portal itself, so
     * the filter matches the rows even when the client skipped Describe. */
    bool (*row_description)(void *user, const struct gateway_session_info *session,
                            const struct pgwire_column *columns, int ncols,
                            struct gateway_row_filter *filter);
    /* After a CopyOutResponse (ncols columns; format 0 text/CSV, 1 binary).
     * Return true and fill *filter to rewrite the rows of this COPY. */
    bool (*copy_out)(void *user, const struct gateway_session_info *session, int ncols, int format,
                     struct gateway_copy_filter *filter);
    /* A statement the statement hook let through finished: once per
     * CommandComplete, EmptyQueryResponse, PortalSuspended or ErrorResponse
     * that answers it (a multi-statement Query has one per statement, up to
     * its first error). Refused statements and the Executes that upstream
     * skips after an error report nothing. Needs the statement hook. */
    /* Optional: upstream sent an ErrorResponse or a NoticeResponse for the
     * client. Return true to hide its text: the client then gets the same
     * severity and SQLSTATE (and the schema/table/column/constraint names)
     * with a message saying the text was hidden, and no detail, hint,
     * context or query fields — the parts where PostgreSQL quotes data
     * values ("invalid input syntax for type integer: \"<a masked value>\"",
     * or a function's RAISE NOTICE '%', value). */
    bool (*error_redact)(void *user, const struct gateway_session_info *session, const char *sqlstate);
    /* Optional: upstream sent ReadyForQuery and everything the client sent
     * has been answered (no Query, FunctionCall or Sync outstanding, no
     * extended-protocol message after the last Sync, no statement decided
     * but held or not yet sent): no result of an earlier statement can
     * still come. Counted only when the statement or
     * row_description hook is set (the relay inspects messages then). */
    void (*idle)(void *user, const struct gateway_session_info *session);
    /* Optional: upstream sent a NotificationResponse (LISTEN/NOTIFY). Return
     * true to replace its payload with a note saying it was hidden; the
     * channel and the notifying process id stay. */
    bool (*notification_redact)(void *user, const struct gateway_session_info *session);
    /* Optional: upstream sent a NoticeResponse; severity and message are
     * its S and M fields as the client got them (after error_redact). */
    void (*notice)(void *user, const struct gateway_session_info *session, const char *severity,
                   const char *message);
    void (*statement_complete)(void *user, const struct gateway_session_info *session,
                               const struct gateway_completion *done);
    /* Optional: text from upstream that reaches the client outside result
     * rows and may quote data values: each field of an ErrorResponse or
     * NoticeResponse but its severity and SQLSTATE (after error_redact, which
     * hides some whole), a notification's payload (unless
     * notification_redact hid it), a ParameterStatus's value after startup
     * (set_config('application_name', <a value>, false)). Return 1 with *out
     * (malloc'd, NUL-terminated, *outlen bytes, no NUL inside) to send that
     * instead, 0 to send the text as it is, -1 when it cannot be masked (the
     * session is then failed: fail closed). */
    int (*text_mask)(void *user, const struct gateway_session_info *session, const char *text, size_t len,
                     char **out, size_t *outlen);
};

struct gateway_config {
    const char *listen_host;      /* "127.0.0.1" */
    const char *listen_port;      /* "0" picks a free port */
    struct pgwire_conninfo upstream;
    /* What a client whose upstream certificate failed verification against
     * the system trust store is told to do; NULL: name sslrootcert=FILE (the
     * offline gateway's conninfo takes one). Not copied: it must outlive the
     * gateway. */
    const char *system_roots_hint;
    /* What a client is told to do when upstream asks for a password and
     * upstream_password is NULL; NULL: name --upstream-password-file and
     * HOOPCTL_UPSTREAM_PASSWORD. Not copied. */
    const char *no_password_hint;
    const char *upstream_password; /* may be NULL; copied */
    const char *tls_cert_file, *tls_key_file; /* both or neither: TLS for clients */
    /* NULL: clients are trusted (loopback). Otherwise every client must log in
     * with this password (SCRAM-SHA-256; only a salted verifier is kept). */
    const char *client_password;
    /* NULL: any startup user. Otherwise a client whose startup packet names
     * another user is refused before anything reaches upstream (28000). */
    const char *only_user;
    size_t max_message_size;      /* 0: PGWIRE_DEFAULT_MAX_MESSAGE */
    /* With hooks: the SQL text and Bind bodies a session's prepared statements
     * and portals may hold (the gateway keeps them to judge each Execute); a
     * Parse or Bind past it is refused (SQLSTATE 54000). 0: 256 MiB; never
     * less than max_message_size. */
    size_t max_held_bytes;
    size_t buffer_limit;          /* bytes buffered per direction before pausing the sender; 0: 256 KiB */
    /* Sessions at a time (from accept to close, cancel connections too); one
     * past it is answered FATAL 53300 "sorry, too many clients already", as
     * PostgreSQL answers one past max_connections, and never reaches
     * upstream. 0: gateway_default_max_sessions(). */
    size_t max_sessions;
    /* Event loops: 0 or 1, the caller's base alone; N > 1 adds N-1 threads
     * with a loop each, and accepted clients go to the loops in turn (a
     * session's hooks always run on its own loop). With hooks, N > 1 needs
     * hooks_thread_safe; holds need one loop. The gateway turns libevent's
     * locking on for the loops it makes. */
    int threads;
    /* The hooks lock what they share between sessions, so they may run on
     * several loops at once. They may not hold statements then: a
     * GATEWAY_HOLD verdict is answered as a refusal. */
    bool hooks_thread_safe;
    struct gateway_hooks hooks;
};
#define GATEWAY_MAX_THREADS 16
/* The default session cap: what the process's descriptor limit (soft
 * RLIMIT_NOFILE) leaves for sessions of 3 descriptors each (client, upstream,
 * and a policy's catalog connection or a cancel) after 112 for the
 * gateway's own (stdio, listeners, up to 16 loops, log, spool, curl) and 2
 * for each slot past the cap: (limit - 144) / 3, at least 1, at most
 * GATEWAY_MAX_SESSIONS_CEILING (293 with a limit of 1024). */
#define GATEWAY_MAX_SESSIONS_CEILING 10000
size_t gateway_default_max_sessions(void);
/* How many sessions the descriptor limit has room for, as above but without
 * the ceiling (0: none). */
size_t gateway_max_sessions_room(void);
/* Connections past the cap read their first packet for up to this long (a
 * CancelRequest is carried out, as PostgreSQL does at max_connections;
 * anything else gets 53300); at most GATEWAY_OVER_CAP_SLOTS at once, others
 * get 53300 at once, unread. */
#define GATEWAY_OVER_CAP_SLOTS 16
#define GATEWAY_OVER_CAP_TIMEOUT_S 5
#define GATEWAY_AUTO_THREADS 4 /* hoopctl gateway's default: one loop per CPU, at most this */

/* A fresh random password for one gateway run (clients' login, see
 * client_password): GATEWAY_PASSWORD_LEN hex characters and a NUL into out.
 * Returns 0, or -1 when there is no randomness. */
#define GATEWAY_PASSWORD_LEN 32
int gateway_password_generate(char out[GATEWAY_PASSWORD_LEN + 1]);

/* Create a gateway on base (not owned). Binds the listener. Returns NULL with
 * a message in err. */
struct gateway *gateway_new(struct event_base *base, const struct gateway_config *cfg,
                            char *err, size_t errlen);
/* The bound address, e.g. "127.0.0.1:54321". */
const char *gateway_listen_address(const struct gateway *gw);
/* Also listen on the Unix socket DIR/.s.PGSQL.<the bound port> (mode 0600;
 * a stale socket of a dead gateway is replaced, a live one is an error), so
 * that libpq clients reach the gateway with host=DIR port=<port>. DIR must
 * be an absolute path, the user's own, of mode 0700 (created if missing).
 * The socket goes at shutdown. 0, or -1 with a message. */
int gateway_listen_unix(struct gateway *gw, const char *dir, char *err, size_t errlen);
/* That check alone, for option parsing before anything starts. */
int gateway_check_socket_dir(const char *dir, char *err, size_t errlen);
/* The Unix socket's path, or NULL. */
const char *gateway_socket_path(const struct gateway *gw);
/* Stop accepting; close every session (clients get a FATAL 57P01 message);
 * the other threads' sessions close on their own loops. */
void gateway_shutdown(struct gateway *gw);
/* Stops and joins the other threads (their sessions are dropped), then frees. */
void gateway_free(struct gateway *gw);
size_t gateway_session_count(struct gateway *gw);

/* Resolve a held statement: GATEWAY_ALLOW forwards it, GATEWAY_REFUSE answers
 * with the refusal (NULL: a default one). Call on the loop thread (a timer or
 * an event callback). Returns 0, or -1 when the hold is unknown (resolved
 * already, or its session ended). */
int gateway_resolve(struct gateway *gw, uint64_t hold_id, enum gateway_verdict verdict,
                    const struct gateway_refusal *refusal);

#endif
