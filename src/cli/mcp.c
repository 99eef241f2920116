/* mcp.c — `hoopctl mcp`: an MCP server on stdin/stdout for AI agents, whose
 * tools reach PostgreSQL through hoopctl's gateway run in-process for a
 * server connection (`hoopctl mcp <connection>`), or through --dsn. */
#include "hoopctl/cli.h"
#include "hoopctl/log.h"
#include "hoopctl/mcp.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct cli_option mcp_options[] = {
    {"dsn", 0, "CONNINFO", "instead of a connection: libpq connection string or URI to reach PostgreSQL through", CLI_COMPLETE_NONE, NULL},
    {"server", 0, "URL", "the hoopctl server logged in to (default: server.url, else the last login)", CLI_COMPLETE_NONE, NULL},
    {"review-wait", 0, "DURATION", "how long a held statement waits for its review, e.g. 10m (default 10m)", CLI_COMPLETE_NONE, NULL},
    {"allow-writes", 0, NULL, "let the query tool write (still only where policy allows)", CLI_COMPLETE_NONE, NULL},
    {"max-rows", 0, "N", "rows per result before it is truncated (default 500)", CLI_COMPLETE_NONE, NULL},
    {"max-bytes", 0, "SIZE", "bytes of JSON rows per result, e.g. 256k (default 256k)", CLI_COMPLETE_NONE, NULL},
    {"statement-timeout", 0, "DURATION", "statement timeout, e.g. 30s, 2m, 500ms; 0 for none (default 30s)", CLI_COMPLETE_NONE, NULL},
    {0},
};

/* The write end of the pipe that tells the server loop to stop: a signal
 * handler can reach nothing else. */
static int mcp_stop_pipe_write_fd = -1;

static void mcp_on_stop_signal(int sig)
{
    (void)sig;
    int saved = errno;
    if (mcp_stop_pipe_write_fd >= 0 && write(mcp_stop_pipe_write_fd, "x", 1) < 0) {
        /* the pipe is full: a stop is already on its way */
    }
    errno = saved;
}

/* SIGTERM, SIGINT and SIGHUP (how MCP hosts stop their servers) end the
 * serve loop like the end of input does, so that sessions close and the
 * audit spool is shipped. Returns the read end, or -1. */
static int mcp_catch_stop_signals(int fds[2])
{
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
        return -1;
    mcp_stop_pipe_write_fd = fds[1];
    struct sigaction sa = {.sa_handler = mcp_on_stop_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    return fds[0];
}

static void mcp_close_stop_pipe(int fds[2])
{
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    mcp_stop_pipe_write_fd = -1;
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

static int mcp_run(const struct cli_args *args, struct cli_context *ctx)
{
    (void)ctx;
    struct mcp_config cfg = {
        .max_rows = MCP_DEFAULT_MAX_ROWS,
        .max_bytes = MCP_DEFAULT_MAX_BYTES,
        .statement_timeout_ms = MCP_DEFAULT_STATEMENT_TIMEOUT_MS,
    };
    const char *connection = args->npos == 1 ? args->pos[0] : NULL;
    cfg.conninfo = cli_get(args, "dsn");
    if (connection && cfg.conninfo)
        return cli_usage_error(args->cmd, "give a connection or --dsn CONNINFO, not both");
    if (!connection && (!cfg.conninfo || !*cfg.conninfo))
        return cli_usage_error(args->cmd, "give a connection name (see hoopctl connect), or --dsn CONNINFO");
    if (!connection && (cli_get(args, "server") || cli_get(args, "review-wait")))
        return cli_usage_error(args->cmd, "--server and --review-wait go with a connection, not --dsn");
    char bad[128];
    if (cfg.conninfo && !mcp_conninfo_check(cfg.conninfo, bad, sizeof bad)) {
        /* Said here, to the person who wrote it, not to the agent; and
         * without the text, which may hold a password. */
        char msg[256];
        snprintf(msg, sizeof msg, "--dsn is not a valid libpq connection string or URI: %s "
                 "(the value is not shown: it may hold a password)", bad);
        return cli_usage_error(args->cmd, msg);
    }
    /* With a connection, its gateway's catalog connection and ours to that
     * gateway take everything from the server, not from PG* variables
     * (--dsn is the user's own libpq string: there they apply). */
    if (connection)
        cli_drop_pg_env();
    cfg.allow_writes = cli_flag(args, "allow-writes");
    const char *v;
    if ((v = cli_get(args, "max-rows"))) {
        char *end;
        long n = strtol(v, &end, 10);
        if (*v == '\0' || *end != '\0' || n < 1 || n > 1000000)
            return cli_usage_error(args->cmd, "--max-rows must be a number from 1 to 1000000");
        cfg.max_rows = n;
    }
    if ((v = cli_get(args, "max-bytes")) &&
        (mcp_size_parse(v, &cfg.max_bytes) < 0 || cfg.max_bytes < 64 || cfg.max_bytes > 64 * 1024 * 1024))
        return cli_usage_error(args->cmd, "--max-bytes must be a size from 64 to 64M (e.g. 65536, 64k, 1M)");
    if ((v = cli_get(args, "statement-timeout")) && mcp_duration_parse_ms(v, &cfg.statement_timeout_ms) < 0)
        return cli_usage_error(args->cmd, "--statement-timeout must be a duration such as 30s, 2m or 500ms");
    long review_wait_ms = 0;
    if ((v = cli_get(args, "review-wait")) &&
        (mcp_duration_parse_ms(v, &review_wait_ms) < 0 || review_wait_ms < 1000 || review_wait_ms > 86400000L))
        return cli_usage_error(args->cmd, "--review-wait must be a duration from 1s to 24h, such as 90s or 10m");

    if (isatty(STDIN_FILENO))
        log_warn("mcp", "standard input is a terminal; an MCP client (an AI agent's host) should start this command");
    /* A client that goes away must not kill us mid-write with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    int stop_pipe[2] = {-1, -1};
    int stop_fd = mcp_catch_stop_signals(stop_pipe);
    /* With a connection, the gateway of hoopctl connect runs in this process
     * and the tools reach PostgreSQL through its loopback listener. */
    struct mcp_gateway *gw = NULL;
    char err[1024];
    if (connection) {
        /* A spool that hits the file-size limit must fail its write (and so
         * refuse statements), not kill us. */
        signal(SIGXFSZ, SIG_IGN);
        struct mcp_gateway_options go = {.connection = connection, .server = cli_get(args, "server"),
                                         .review_wait_seconds = (int)(review_wait_ms / 1000),
                                         .read_only = !cfg.allow_writes};
        enum connect_error why;
        if (!(gw = mcp_gateway_start(&go, &why, err, sizeof err))) {
            fprintf(stderr, "hoopctl mcp: %s\n", cli_safe(err));
            mcp_close_stop_pipe(stop_pipe);
            static const int codes[] = {CLI_EXIT_OK, CLI_EXIT_FAILURE, CLI_EXIT_AUTH, CLI_EXIT_DENIED,
                                        CLI_EXIT_UNAVAILABLE};
            return codes[why];
        }
        cfg.conninfo = mcp_gateway_conninfo(gw);
        cfg.gateway_holds = true;
        cfg.gateway_read_only = !cfg.allow_writes;
    }
    cfg.stop_fd = stop_fd;
    struct mcp_server *srv = mcp_server_new(&cfg);
    if (!srv) {
        fprintf(stderr, "hoopctl mcp: out of memory\n");
        mcp_gateway_stop(gw, 0);
        mcp_close_stop_pipe(stop_pipe);
        return CLI_EXIT_FAILURE;
    }
    log_info("mcp", "serving MCP on stdio (%s, max %ld rows / %zu bytes per result)",
             cfg.allow_writes ? "writes allowed" : "read-only", cfg.max_rows, cfg.max_bytes);
    int rc = mcp_server_run(srv, STDIN_FILENO, STDOUT_FILENO, stop_fd, err, sizeof err);
    /* Our sessions end first (a held statement is abandoned), then the
     * gateway ships what is spooled; what it cannot ship in time stays in
     * the spool for the next hoopctl mcp or connect of this login. */
    mcp_server_free(srv);
    mcp_gateway_stop(gw, 3000);
    mcp_close_stop_pipe(stop_pipe);
    if (rc < 0) {
        fprintf(stderr, "hoopctl mcp: %s\n", cli_safe(err));
        return CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
}

const struct cli_command cli_cmd_mcp = {
    .name = "mcp",
    .summary = "Serve MCP on stdio so AI agents can query PostgreSQL through hoopctl",
    .usage = "<connection> | --dsn CONNINFO [--allow-writes] [--max-rows N] [--max-bytes SIZE] "
             "[--statement-timeout DURATION] [--server URL] [--review-wait DURATION]",
    .description = "An MCP server (JSON-RPC 2.0, one message per line on stdin/stdout) with the tools\n"
                   "query, list_tables, describe_table and check_review. With a connection, the gateway\n"
                   "of hoopctl connect runs in-process under the saved login, so policy, masking,\n"
                   "reviews and audit apply. Queries are read-only unless --allow-writes is given.\n"
                   "Logs go to stderr only.",
    .options = mcp_options,
    .arg_complete = CLI_COMPLETE_DYNAMIC,
    .arg_words = "connections",
    .min_args = 0,
    .max_args = 1,
    .run = mcp_run,
};
