/* connect.h — `hoopctl connect` below the CLI: fetch a connection, its policy
 * and its secret from the server, run the gateway on loopback with the policy
 * engine deciding, audit every session and statement through the durable
 * spool and the shipper, and hold review statements on the server's review API. */
#ifndef HOOPCTL_CONNECT_H
#define HOOPCTL_CONNECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct identity_session;

enum connect_error {
    CONNECT_OK = 0,
    CONNECT_ERR_FAILED,      /* anything else */
    CONNECT_ERR_AUTH,        /* the token was refused: log in again */
    CONNECT_ERR_DENIED,      /* the user's groups do not allow the connection */
    CONNECT_ERR_UNAVAILABLE, /* the server (or upstream) could not be reached */
};

struct connect_options {
    const char *connection;       /* name on the server */
    struct identity_session *identity; /* logged-in session (borrowed; refreshed on a timer), or NULL: */
    const char *token;            /* a bearer token that needs no refresh (an API key, HOOPCTL_TOKEN) */
    const char *server;           /* with token: the server URL (NULL: HOOPCTL_SERVER_URL / config) */
    const char *listen_host;      /* loopback address, default "127.0.0.1" */
    int listen_port;              /* 0: 5433 or the next free port up to 5532 */
    const char *spool_dir;        /* NULL: <state dir>/spool */
    int review_wait_seconds;      /* how long a held statement waits, 0: 600 */
    size_t max_sessions;          /* the gateway's session cap, 0: its default */
    bool listen_ephemeral;        /* any free port the system picks (listen_port ignored);
                                   * connect_listen_port tells which (hoopctl mcp in-process) */
    const char *client_user;      /* non-NULL: refuse the statements of sessions whose startup
                                   * user is not this (a per-run secret of hoopctl mcp) */
    const char *socket_dir;       /* also listen on DIR/.s.PGSQL.<port> (NULL: TCP only) */
    bool read_only;               /* deny (rule "read-only", audited) every statement that is not
                                   * a plain read, nor, in a simple Query, transaction control or
                                   * SET/RESET/SHOW (policy_guard_deny_unless_read): hoopctl mcp
                                   * without --allow-writes, whose own statements are simple
                                   * queries and the agent's extended-protocol ones */
};

struct connect_stats {
    uint64_t sessions_active, sessions_total;
    uint64_t statements, denials;
    uint64_t reviews_pending;
    int64_t spool_pending;        /* events not yet on the server, -1 unknown */
    int64_t quarantined;          /* events the server refused for good (kept in the spool) */
    uint64_t group_commits, grouped_statements; /* spool commits that released held statements */
    char last_error[256];         /* the shipper's last delivery error, "" when fine */
};

struct connect;

/* Log-in check, fetch of the connection and its credentials, spool, shipper
 * and gateway on base. Returns NULL with a message in err and a category in
 * *why. */
struct connect *connect_start(struct event_base *base, const struct connect_options *opt,
                              enum connect_error *why, char *err, size_t errlen);
/* The bound loopback address and what a client should use. */
const char *connect_listen_host(const struct connect *c);
int connect_listen_port(const struct connect *c);
const char *connect_database(const struct connect *c);
/* The Unix socket directory (what PGHOST names), or NULL when there is none. */
const char *connect_socket_dir(const struct connect *c);
const char *connect_db_user(const struct connect *c);
/* The CA file the upstream's certificate is checked against when the
 * connection's sslmode is verify-ca/verify-full and it names no CA of its
 * own (the system trust store), else NULL. */
const char *connect_system_roots(const struct connect *c);
/* The libpq connection string of the listener: host, port, dbname, user (the
 * client_user option when set) and sslmode=disable (loopback; the gateway
 * holds the TLS upstream); no password. */
void connect_client_conninfo(const struct connect *c, char *out, size_t len);
void connect_get_stats(struct connect *c, struct connect_stats *out);
/* Stop accepting and close every session (held statements are refused). */
void connect_shutdown(struct connect *c);
/* Ship what is spooled for up to timeout_ms, stop every thread, wipe the
 * upstream secret and free. Undelivered events stay in the spool. */
void connect_free(struct connect *c, int drain_timeout_ms);

#endif
