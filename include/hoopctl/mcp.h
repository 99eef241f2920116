/* mcp.h — the built-in MCP server: JSON-RPC 2.0 over newline-delimited stdio,
 * with tools (query, list_tables, describe_table, check_review) that reach
 * PostgreSQL only through the libpq connection string they are given; and
 * the in-process gateway that `hoopctl mcp <connection>` gives them. */
#ifndef HOOPCTL_MCP_H
#define HOOPCTL_MCP_H

#include "hoopctl/connect.h"

#include <stdbool.h>
#include <stddef.h>

/* The longest JSON-RPC line accepted; a longer one is answered with an
 * error and skipped up to its newline. */
#define MCP_MAX_LINE (1024 * 1024)
/* The newest MCP protocol revision this server speaks. */
#define MCP_PROTOCOL_LATEST "2025-06-18"
/* How many statements held for review may wait at once (one connection each). */
#define MCP_MAX_PENDING 8

/* JSON-RPC 2.0 error codes. */
enum mcp_rpc_code {
    MCP_RPC_PARSE_ERROR = -32700,
    MCP_RPC_INVALID_REQUEST = -32600,
    MCP_RPC_METHOD_NOT_FOUND = -32601,
    MCP_RPC_INVALID_PARAMS = -32602,
    MCP_RPC_INTERNAL_ERROR = -32603,
    /* A request other than initialize and ping before initialize was
     * answered. MCP defines no code for it; -32002 (LSP's) is MCP's
     * "resource not found", so this is -32000, as the TypeScript SDK's
     * "Server not initialized". */
    MCP_RPC_NOT_INITIALIZED = -32000,
};

struct mcp_config {
    const char *conninfo;      /* libpq connection string (never logged: may hold a password) */
    bool allow_writes;         /* false: every query runs in a READ ONLY transaction */
    long max_rows;             /* rows per result, > 0 */
    size_t max_bytes;          /* bytes of JSON rows per result, > 0 */
    long statement_timeout_ms; /* SET statement_timeout; 0 leaves the server's */
    bool gateway_holds;        /* conninfo is our in-process gateway: its hold
                                * notices are believed (elsewhere anyone, e.g.
                                * a function's RAISE NOTICE, could send one) */
    bool gateway_read_only;    /* conninfo is our in-process gateway, started read-only: it
                                * refuses (and audits) what is not a plain read, so the
                                * tools refuse only what it lets through for their own use
                                * (transaction control, SET/RESET) */
    int stop_fd;               /* > 0: readable once the process must stop; a
                                * statement running then is cancelled */
};

#define MCP_DEFAULT_MAX_ROWS 500
#define MCP_DEFAULT_MAX_BYTES (256 * 1024)
#define MCP_DEFAULT_STATEMENT_TIMEOUT_MS 30000

/* One MCP server; owns its database connections. */
struct mcp_server;

/* A server for cfg (copied); connects lazily, at the first tool call.
 * Returns NULL when memory runs out. */
struct mcp_server *mcp_server_new(const struct mcp_config *cfg);
void mcp_server_free(struct mcp_server *srv);

/* Handle one JSON-RPC message (one line, without its newline). Returns the
 * response as compact JSON text (malloc'd, the caller frees; never contains a
 * newline), or NULL when none is due (a notification or a response). */
char *mcp_server_handle_line(struct mcp_server *srv, const char *line, size_t len);

/* Serve until in_fd reaches end of file, or stop_fd (-1: none; e.g. a
 * signal handler's pipe) becomes readable: read lines, write one response
 * line each to out_fd. A call in progress finishes first. Returns 0 at end of
 * input or on stop, -1 on a read/write error (with a message in err). */
int mcp_server_run(struct mcp_server *srv, int in_fd, int out_fd, int stop_fd, char *err, size_t errlen);

/* The gateway of `hoopctl connect` run in-process for `hoopctl mcp
 * <connection>`: the saved login (refreshed), the connection's policy,
 * masking, reviews and audit spool/shipper, listening on an ephemeral
 * loopback port, its event loop on a thread of its own. */
struct mcp_gateway;
struct mcp_gateway_options {
    const char *connection;   /* name on the server */
    const char *server;       /* login profile (server URL); NULL: the current login */
    int review_wait_seconds;  /* how long a held statement waits; 0: connect's default (600) */
    bool read_only;           /* connect_options.read_only: no --allow-writes */
};
/* Log-in check, connect_start and the loop thread. Returns NULL with a
 * message in err and a category in *why (CONNECT_ERR_AUTH also when not
 * logged in). */
struct mcp_gateway *mcp_gateway_start(const struct mcp_gateway_options *o, enum connect_error *why,
                                      char *err, size_t errlen);
/* The libpq connection string of the listener (no password: it takes none). */
const char *mcp_gateway_conninfo(const struct mcp_gateway *g);
/* Close every session, stop the loop thread, ship what is spooled for up to
 * drain_timeout_ms (the rest stays in the spool for the next run) and free. */
void mcp_gateway_stop(struct mcp_gateway *g, int drain_timeout_ms);

/* The review id out of a gateway notice "hoopctl: statement held for review
 * <id> (...)". Returns true and fills id when msg is such a notice. */
bool mcp_hold_notice_parse(const char *msg, char *id, size_t idlen);

/* Whether libpq can parse conninfo (a connection string or URI). When it
 * cannot, why says in a few words which kind of part is wrong, never the text
 * itself (libpq's own message quotes it, and it may hold a password). */
bool mcp_conninfo_check(const char *conninfo, char *why, size_t whylen);

/* "30s", "1500ms", "5m", "0" (plain numbers are seconds) -> milliseconds.
 * Returns 0, or -1 on bad input. */
int mcp_duration_parse_ms(const char *s, long *out);
/* "65536", "64k", "1M" -> bytes (k = 1024). Returns 0, or -1 on bad input. */
int mcp_size_parse(const char *s, size_t *out);

#endif
