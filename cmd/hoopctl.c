/* hoopctl.c — main(): global options, look the command up in the table, parse
 * its arguments and run it. Exit codes are those of enum cli_exit. */
#include "hoopctl/cli.h"
#include "hoopctl/log.h"
#include "hoopctl/util.h"
#include "hoopctl/version.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static int global_usage(const char *msg)
{
    fprintf(stderr, "hoopctl: %s\nhint: run 'hoopctl help' for the commands\n", msg);
    return CLI_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    struct cli_context ctx = {.argv0 = argv[0], .output = "table"};
    const char *nc = getenv("NO_COLOR");
    ctx.color = !(nc && *nc) && isatty(STDOUT_FILENO);
    signal(SIGPIPE, SIG_IGN);
    /* Not dumpable: no core file (it would hold the upstream password, tokens,
     * the master key), and other processes of the same user (the command that
     * connect runs, say) cannot read our memory or environment under /proc
     * nor attach to us. A command we exec is dumpable again. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    /* Before any thread (the JWKS fetcher, the shipper) can make a curl
     * handle: libcurl's global set-up is not safe to race. Cleaned up by exit.
     * Its memory is zeroed when freed (it copies tokens and secrets). */
    if (util_curl_global_init() < 0)
        curl_global_init(CURL_GLOBAL_DEFAULT);
    util_json_wipe_init();

    const char *lvl = getenv("HOOPCTL_LOG_LEVEL");
    if (lvl && log_level_parse(lvl) >= 0)
        log_set_level((enum log_level)log_level_parse(lvl));

    /* Global options before the command, then after it (cli_parse keeps
     * those the command does not define); the later win. */
    const char *globals[CLI_MAX_GLOBALS] = {0};
    char err[256];
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        int rc = cli_parse_global(argc, argv, &i, globals, err, sizeof err);
        if (rc < 0)
            return global_usage(err);
        if (rc == 0) {
            char msg[256];
            snprintf(msg, sizeof msg, "unknown option '%s'", argv[i]);
            return global_usage(msg);
        }
        if (globals[CLI_GLOBAL_HELP]) {
            cli_print_overview(stdout);
            return CLI_EXIT_OK;
        }
    }
    if (globals[CLI_GLOBAL_VERSION]) {
        printf("hoopctl %s\n", HOOPCTL_VERSION);
        return CLI_EXIT_OK;
    }
    if (i >= argc) {
        cli_print_overview(stderr);
        return CLI_EXIT_USAGE;
    }

    const struct cli_command *cmd = cli_find(argv[i]);
    if (!cmd) {
        return cli_unknown_command(argv[i]);
    }
    int cargc = argc - i;
    char **cargv = argv + i;
    struct cli_args args;
    if (cli_parse(cmd, cargc, cargv, &args, err, sizeof err) < 0)
        return cli_usage_error(cmd, err);
    if (args.globals[CLI_GLOBAL_HELP]) { /* as an option, not as an option's value */
        cli_print_command_help(cmd, stdout);
        return CLI_EXIT_OK;
    }
    for (int g = 0; g < CLI_MAX_GLOBALS; g++)
        if (args.globals[g])
            globals[g] = args.globals[g];
    if (globals[CLI_GLOBAL_VERSION]) {
        printf("hoopctl %s\n", HOOPCTL_VERSION);
        return CLI_EXIT_OK;
    }
    /* Their values were checked against the table's words when parsed. */
    if (globals[CLI_GLOBAL_OUTPUT])
        ctx.output = globals[CLI_GLOBAL_OUTPUT];
    if (globals[CLI_GLOBAL_LOG_LEVEL])
        log_set_level((enum log_level)log_level_parse(globals[CLI_GLOBAL_LOG_LEVEL]));
    if (globals[CLI_GLOBAL_DEBUG]) {
        ctx.debug = true;
        log_set_level(LOG_DEBUG);
    }
    return cmd->run(&args, &ctx);
}
