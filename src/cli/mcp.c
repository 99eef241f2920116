/* mcp.c — `hoopctl mcp`: an MCP server on stdin/stdout for AI agents, whose
 * tools reach PostgreSQL only through the connection string it is given
 * (in the product, the loopback DSN of hoopctl's own gateway). */
#include "hoopctl/cli.h"
#include "hoopctl/log.h"
#include "hoopctl/mcp.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct cli_option mcp_options[] = {
    {"dsn", 0, "CONNINFO", "libpq connection string or URI to reach PostgreSQL through (e.g. a gateway listener)", CLI_COMPLETE_NONE, NULL},
    {"allow-writes", 0, NULL, "let the query tool write (still only where policy allows)", CLI_COMPLETE_NONE, NULL},
    {"max-rows", 0, "N", "rows per result before it is truncated (default 500)", CLI_COMPLETE_NONE, NULL},
    {"max-bytes", 0, "SIZE", "bytes of JSON rows per result, e.g. 256k (default 256k)", CLI_COMPLETE_NONE, NULL},
    {"statement-timeout", 0, "DURATION", "statement timeout, e.g. 30s, 2m, 500ms; 0 for none (default 30s)", CLI_COMPLETE_NONE, NULL},
    {0},
};

static int mcp_run(const struct cli_args *args, struct cli_context *ctx)
{
    (void)ctx;
    struct mcp_config cfg = {
        .max_rows = MCP_DEFAULT_MAX_ROWS,
        .max_bytes = MCP_DEFAULT_MAX_BYTES,
        .statement_timeout_ms = MCP_DEFAULT_STATEMENT_TIMEOUT_MS,
    };
    if (args->npos == 1)
        return cli_usage_error(args->cmd, "connecting by name needs 'hoopctl connect', which this "
                                          "build does not have yet; use --dsn CONNINFO");
    cfg.conninfo = cli_get(args, "dsn");
    if (!cfg.conninfo || !*cfg.conninfo)
        return cli_usage_error(args->cmd, "give --dsn CONNINFO (the connection string to reach PostgreSQL through)");
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

    if (isatty(STDIN_FILENO))
        log_warn("mcp", "standard input is a terminal; an MCP client (an AI agent's host) should start this command");
    /* A client that goes away must not kill us mid-write with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    struct mcp_server *srv = mcp_server_new(&cfg);
    if (!srv) {
        fprintf(stderr, "hoopctl mcp: out of memory\n");
        return CLI_EXIT_FAILURE;
    }
    log_info("mcp", "serving MCP on stdio (%s, max %ld rows / %zu bytes per result)",
             cfg.allow_writes ? "writes allowed" : "read-only", cfg.max_rows, cfg.max_bytes);
    char err[256];
    int rc = mcp_server_run(srv, STDIN_FILENO, STDOUT_FILENO, err, sizeof err);
    mcp_server_free(srv);
    if (rc < 0) {
        fprintf(stderr, "hoopctl mcp: %s\n", err);
        return CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
}

const struct cli_command cli_cmd_mcp = {
    .name = "mcp",
    .summary = "Serve MCP on stdio so AI agents can query PostgreSQL through hoopctl",
    .usage = "[<connection>] --dsn CONNINFO [--allow-writes] [--max-rows N] [--max-bytes SIZE] [--statement-timeout DURATION]",
    .description = "An MCP server (JSON-RPC 2.0, one message per line on stdin/stdout) with the tools\n"
                   "query, list_tables, describe_table and check_review. Queries are read-only unless\n"
                   "--allow-writes is given. Point --dsn at a hoopctl gateway listener so that policy,\n"
                   "masking, reviews and audit apply. Logs go to stderr only.",
    .options = mcp_options,
    .arg_complete = CLI_COMPLETE_DYNAMIC,
    .arg_words = "connections",
    .min_args = 0,
    .max_args = 1,
    .run = mcp_run,
};
