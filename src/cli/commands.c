/* commands.c — the command table. Adding a command is one file under src/cli
 * and one line here; help, usage errors, completions and the man-page check
 * all read this list. */
#include "hoopctl/cli.h"

#include <string.h>

extern const struct cli_command cli_cmd_help;
extern const struct cli_command cli_cmd_version;
extern const struct cli_command cli_cmd_completion;
extern const struct cli_command cli_cmd_commands;
extern const struct cli_command cli_cmd_complete;
extern const struct cli_command cli_cmd_login;
extern const struct cli_command cli_cmd_logout;
extern const struct cli_command cli_cmd_whoami;
extern const struct cli_command cli_cmd_token;
extern const struct cli_command cli_cmd_policy;
extern const struct cli_command cli_cmd_mcp;
extern const struct cli_command cli_cmd_gateway;
extern const struct cli_command cli_cmd_server;
extern const struct cli_command cli_cmd_admin;
extern const struct cli_command cli_cmd_sessions;
extern const struct cli_command cli_cmd_audit;
extern const struct cli_command cli_cmd_reviews;
extern const struct cli_command cli_cmd_replay;
extern const struct cli_command cli_cmd_tui;
extern const struct cli_command cli_cmd_connect;

const struct cli_command *const cli_commands[] = {
    &cli_cmd_help,
    &cli_cmd_version,
    &cli_cmd_completion,
    &cli_cmd_commands,
    &cli_cmd_complete,
    &cli_cmd_login,
    &cli_cmd_logout,
    &cli_cmd_whoami,
    &cli_cmd_token,
    &cli_cmd_policy,
    &cli_cmd_mcp,
    &cli_cmd_gateway,
    &cli_cmd_server,
    &cli_cmd_admin,
    &cli_cmd_sessions,
    &cli_cmd_audit,
    &cli_cmd_reviews,
    &cli_cmd_replay,
    &cli_cmd_tui,
    &cli_cmd_connect,
    NULL,
};

const struct cli_command *cli_find(const char *name)
{
    for (size_t i = 0; cli_commands[i]; i++)
        if (strcmp(cli_commands[i]->name, name) == 0)
            return cli_commands[i];
    return NULL;
}

size_t cli_edit_distance(const char *a, const char *b)
{
    /* Levenshtein with one rolling row; names are short. */
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 64;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = diag + cost;
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const struct cli_command *cli_suggest(const char *name)
{
    const struct cli_command *best = NULL;
    size_t best_d = (size_t)-1;
    size_t nlen = strlen(name);
    for (size_t i = 0; cli_commands[i]; i++) {
        const struct cli_command *c = cli_commands[i];
        if (c->hidden)
            continue;
        /* A prefix of a command is the strongest hint ("con" -> "connect"). */
        size_t d = (nlen >= 2 && strncmp(c->name, name, nlen) == 0)
                       ? 1
                       : cli_edit_distance(name, c->name);
        if (d < best_d) {
            best_d = d;
            best = c;
        }
    }
    return best;
}

bool cli_suggestion_is_close(const char *name, const struct cli_command *cmd)
{
    /* Plausibly a typo: a prefix, or within a third of the length. */
    size_t nlen = strlen(name);
    if (nlen >= 2 && strncmp(cmd->name, name, nlen) == 0)
        return true;
    size_t limit = nlen / 3 + 1;
    if (limit < 2)
        limit = 2;
    return cli_edit_distance(name, cmd->name) <= limit;
}
