/* commands.c — the command table. Adding a command is one file under src/cli
 * and one line here; help, usage errors, completions and the man-page check
 * all read this list. */
#include "hoopctl/cli.h"
#include "hoopctl/util.h"

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

const struct cli_command *cli_suggest(const char *name)
{
    /* The visible commands' names, for the shared nearest-name rule. */
    const char *names[sizeof cli_commands / sizeof *cli_commands] = {0};
    const struct cli_command *of[sizeof cli_commands / sizeof *cli_commands] = {0};
    size_t n = 0;
    for (size_t i = 0; cli_commands[i]; i++)
        if (!cli_commands[i]->hidden) {
            of[n] = cli_commands[i];
            names[n++] = cli_commands[i]->name;
        }
    size_t best = util_nearest_name(name, names, n);
    return best < n ? of[best] : NULL;
}

bool cli_suggestion_is_close(const char *name, const struct cli_command *cmd)
{
    return util_name_is_typo(name, cmd->name);
}
