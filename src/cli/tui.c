/* tui.c — `hoopctl tui`: the terminal UI over the server (or, offline, over a
 * directory of exported sessions): browse sessions, replay them, and work the
 * review queue. */
#include "hoopctl/cli.h"
#include "hoopctl/tui.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct cli_option tui_options[] = {
    {"server", 0, "URL", "the server (default: server.url in the config)", CLI_COMPLETE_NONE, NULL},
    {"data", 0, "DIR", "browse exported sessions in DIR instead (read-only)", CLI_COMPLETE_DIR, NULL},
    {"reviews", 0, NULL, "start in the Reviews view", CLI_COMPLETE_NONE, NULL},
    {"mouse", 0, NULL, "let the mouse select rows and tabs", CLI_COMPLETE_NONE, NULL},
    {"no-color", 0, NULL, "monochrome (also when NO_COLOR is set)", CLI_COMPLETE_NONE, NULL},
    {0},
};

static int tui_cmd_run(const struct cli_args *args, struct cli_context *ctx)
{
    (void)ctx;
    char err[512] = "";
    struct tui_source src;
    const char *dir = cli_get(args, "data");
    if (dir && cli_get(args, "server"))
        return cli_usage_error(args->cmd, "--server and --data exclude each other");
    int rc = dir ? tui_source_open_dir(&src, dir, err, sizeof err)
                 : tui_source_open_api(&src, cli_get(args, "server"), err, sizeof err);
    if (rc != TUI_OK) {
        fprintf(stderr, "hoopctl tui: %s\n", cli_safe(err));
        return tui_status_exit_code(rc);
    }
    const char *nc = getenv("NO_COLOR");
    struct tui_options o = {
        .color = !cli_flag(args, "no-color") && !(nc && *nc),
        .mouse = cli_flag(args, "mouse"),
        .start_view = cli_flag(args, "reviews") ? "reviews" : "sessions",
    };
    rc = tui_run(&src, &o, err, sizeof err);
    tui_source_close(&src);
    if (rc < 0) {
        fprintf(stderr, "hoopctl tui: %s\n", cli_safe(err));
        return CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
}

const struct cli_command cli_cmd_tui = {
    .name = "tui",
    .summary = "Browse sessions, replay them and work the review queue in the terminal",
    .usage = "[--server URL | --data DIR] [--reviews] [--mouse] [--no-color]",
    .description = "A full-screen terminal UI: the Sessions view lists sessions live (filter by "
                   "user, connection, time and denials; search; Enter opens a session's "
                   "statements; r replays it), the Reviews view lists the pending reviews you may "
                   "decide as they arrive (a approves, d denies with a reason; both ask first), and "
                   "History lists decided reviews. Press ? for every key.",
    .options = tui_options,
    .min_args = 0,
    .max_args = 0,
    .run = tui_cmd_run,
};
