/* replay.c — `hoopctl replay <session>`: play a recorded session as its user
 * saw it in psql, with its timing (idle gaps capped) and keys to control it,
 * or write it as an asciinema v2 recording. */
#include "hoopctl/cli.h"
#include "hoopctl/replay.h"
#include "hoopctl/tui.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct cli_option replay_options[] = {
    {"speed", 0, "N", "play N times faster (0.25 to 64; default 1)", CLI_COMPLETE_NONE, NULL},
    {"from", 0, "STATEMENT", "start at statement number STATEMENT (1-based)", CLI_COMPLETE_NONE, NULL},
    {"no-timing", 0, NULL, "print everything at once, without waiting", CLI_COMPLETE_NONE, NULL},
    {"format", 0, "FORMAT", "text (default) or asciicast (asciinema v2 on stdout)",
     CLI_COMPLETE_WORDS, "text asciicast"},
    {"data", 0, "DIR", "look the session up in a directory of exported sessions",
     CLI_COMPLETE_DIR, NULL},
    {"server", 0, "URL", "the server to ask (default: server.url in the config)", CLI_COMPLETE_NONE, NULL},
    {0},
};

static int replay_load(const struct cli_args *args, const char *which, struct replay_session *s,
                       char *err, size_t errlen)
{
    struct stat sb;
    if (strcmp(which, "-") == 0 || (stat(which, &sb) == 0 && S_ISREG(sb.st_mode)))
        return tui_source_read_session_file(which, s, err, errlen);
    /* A path, or a name a session file has: never a session id to ask for. */
    size_t n = strlen(which);
    if (strchr(which, '/') || (n > 5 && !strcmp(which + n - 5, ".json")) ||
        (n > 5 && !strcmp(which + n - 5, ".cast"))) {
        if (stat(which, &sb) < 0)
            snprintf(err, errlen, "%s: %s", which, strerror(errno));
        else
            snprintf(err, errlen, "%s: not a regular file", which);
        return TUI_ERR_FAILED;
    }
    const char *dir = cli_get(args, "data");
    struct tui_source src;
    int rc = dir ? tui_source_open_dir(&src, dir, err, errlen)
                 : tui_source_open_api(&src, cli_get(args, "server"), err, errlen);
    if (rc != TUI_OK)
        return rc;
    rc = src.ops->session(src.self, which, s, err, errlen);
    tui_source_close(&src);
    return rc;
}

/* Columns the recording needs: its widest line, at least 80. */
static int replay_width(const struct replay_script *sc)
{
    int best = 80;
    for (int i = 0; i < sc->nframes; i++) {
        const char *t = sc->frames[i].text;
        while (*t) {
            size_t n = strcspn(t, "\n");
            int w = replay_display_width(t, n);
            if (w > best)
                best = w;
            t += n + (t[n] == '\n');
        }
    }
    return best > 400 ? 400 : best;
}

static int replay_run(const struct cli_args *args, struct cli_context *ctx)
{
    (void)ctx;
    const char *format = cli_get(args, "format") ? cli_get(args, "format") : "text";
    if (strcmp(format, "text") != 0 && strcmp(format, "asciicast") != 0)
        return cli_usage_error(args->cmd, "--format must be text or asciicast");
    double speed = 1.0;
    if (cli_get(args, "speed")) {
        char *end;
        speed = strtod(cli_get(args, "speed"), &end);
        if (*end || !(speed >= REPLAY_SPEED_MIN && speed <= REPLAY_SPEED_MAX))
            return cli_usage_error(args->cmd, "--speed must be a number from 0.25 to 64");
    }
    struct replay_options o = {.markers = 1, .no_timing = cli_flag(args, "no-timing")};
    if (cli_get(args, "from")) {
        char *end;
        long v = strtol(cli_get(args, "from"), &end, 10);
        if (*end || v < 1 || v > REPLAY_MAX_STATEMENTS)
            return cli_usage_error(args->cmd, "--from must be a statement number (1 or more)");
        o.from_statement = (int)v;
    }

    char err[512] = "";
    struct replay_session s;
    int rc = replay_load(args, args->pos[0], &s, err, sizeof err);
    if (rc != TUI_OK) {
        if (rc == TUI_ERR_FORBIDDEN)
            fprintf(stderr, "hoopctl replay: not allowed to see session %s: %s\n", cli_safe(args->pos[0]),
                    cli_safe(err));
        else
            fprintf(stderr, "hoopctl replay: %s\n", cli_safe(err));
        return tui_status_exit_code(rc);
    }
    struct replay_script sc;
    if (replay_script_build(&s, &o, &sc, err, sizeof err) < 0) {
        fprintf(stderr, "hoopctl replay: %s\n", cli_safe(err));
        replay_session_free(&s);
        return CLI_EXIT_USAGE;
    }
    int out_rc;
    if (strcmp(format, "asciicast") == 0) {
        out_rc = replay_write_asciicast(&sc, &s, speed, replay_width(&sc), 24, stdout);
    } else {
        /* keys work when both ends are a terminal and there is timing to control */
        int keys = !o.no_timing && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
        out_rc = replay_play_terminal(&sc, speed, stdout, keys ? STDIN_FILENO : -1);
        if (out_rc == 0 && (fputs("\n", stdout) == EOF || fflush(stdout) != 0))
            out_rc = -1;
    }
    replay_script_free(&sc);
    replay_session_free(&s);
    if (out_rc < 0) {
        fprintf(stderr, "hoopctl replay: writing the output failed\n");
        return CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
}

const struct cli_command cli_cmd_replay = {
    .name = "replay",
    .summary = "Replay a recorded session in the terminal, with its timing",
    .usage = "[--speed N] [--from STATEMENT] [--no-timing] [--format text|asciicast] [--server URL | --data DIR] SESSION",
    .description = "Plays SESSION (a session id on the server, or in --data DIR, or an exported "
                   "session file, as `hoopctl -o json sessions show ID > FILE` writes it) as its "
                   "user saw it in psql: the prompt, the statement, the result as psql's aligned "
                   "table with masked values as they were sent, row counts, notices and errors, "
                   "and [hoopctl] markers for denials, reviews and masking. Idle gaps longer than "
                   "2 seconds are shortened to 2 seconds. On a terminal: space pauses, + and - "
                   "change the speed, n and p jump to the next and previous statement, q quits.",
    .options = replay_options,
    .min_args = 1,
    .max_args = 1,
    .arg_complete = CLI_COMPLETE_DYNAMIC_FILE,
    .arg_words = "sessions",
    .run = replay_run,
};
