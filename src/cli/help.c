/* help.c — `hoopctl help [command]`, and the usage/help text every command
 * prints, all derived from the command table. */
#include "hoopctl/cli.h"
#include "hoopctl/version.h"

#include <stdio.h>
#include <string.h>

void cli_print_usage_line(const struct cli_command *cmd, void *stream)
{
    fprintf(stream, "usage: hoopctl %s%s%s\n", cmd->name, cmd->usage && *cmd->usage ? " " : "",
            cmd->usage ? cmd->usage : "");
}

void cli_print_command_help(const struct cli_command *cmd, void *stream)
{
    FILE *f = stream;
    cli_print_usage_line(cmd, f);
    fprintf(f, "\n%s.\n", cmd->summary);
    if (cmd->description)
        fprintf(f, "\n%s\n", cmd->description);
    if (cmd->options && cmd->options[0].name) {
        fprintf(f, "\nOptions:\n");
        for (const struct cli_option *o = cmd->options; o->name; o++) {
            char left[64];
            if (o->short_name)
                snprintf(left, sizeof left, "-%c, --%s%s%s", o->short_name, o->name,
                         o->arg ? " " : "", o->arg ? o->arg : "");
            else
                snprintf(left, sizeof left, "    --%s%s%s", o->name, o->arg ? " " : "",
                         o->arg ? o->arg : "");
            fprintf(f, "  %-28s %s\n", left, o->help);
        }
    }
    fprintf(f, "\nSee hoopctl-%s(1).\n", cmd->name);
}

void cli_print_overview(void *stream)
{
    FILE *f = stream;
    fprintf(f, "hoopctl %s — a terminal-first access broker for PostgreSQL\n\n", HOOPCTL_VERSION);
    fprintf(f, "usage: hoopctl [global options] <command> [args]\n\nCommands:\n");
    for (size_t i = 0; cli_commands[i]; i++) {
        const struct cli_command *c = cli_commands[i];
        if (!c->hidden)
            fprintf(f, "  %-12s %s\n", c->name, c->summary);
    }
    fprintf(f, "\nGlobal options (before or after the command):\n");
    for (const struct cli_option *o = cli_global_options; o->name; o++) {
        char shrt[8] = "    ", left[48];
        if (o->short_name)
            snprintf(shrt, sizeof shrt, "-%c, ", o->short_name);
        snprintf(left, sizeof left, "%s--%s%s%s", shrt, o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        fprintf(f, "  %-24s %s\n", left, o->help);
    }
    fprintf(f, "\nRun 'hoopctl help <command>' for a command's options.\n");
}

int cli_usage_error(const struct cli_command *cmd, const char *msg)
{
    fprintf(stderr, "hoopctl %s: %s\n", cmd->name, msg);
    cli_print_usage_line(cmd, stderr);
    fprintf(stderr, "hint: run 'hoopctl %s --help' for the options\n", cmd->name);
    return CLI_EXIT_USAGE;
}

int cli_unknown_command(const char *name)
{
    const struct cli_command *s = cli_suggest(name);
    fprintf(stderr, "hoopctl: '%s' is not a hoopctl command", name);
    /* A suggestion only within typo distance: a far name ("nosuch" and
     * "policy") is no help. */
    if (s && cli_suggestion_is_close(name, s))
        fprintf(stderr, "; did you mean '%s'?\n", s->name);
    else
        fputc('\n', stderr);
    fprintf(stderr, "hint: run 'hoopctl help' for the commands\n");
    return CLI_EXIT_USAGE;
}

static int help_run(const struct cli_args *args, struct cli_context *ctx)
{
    (void)ctx;
    if (args->npos == 0) {
        cli_print_overview(stdout);
        return CLI_EXIT_OK;
    }
    const struct cli_command *c = cli_find(args->pos[0]);
    if (!c || c->hidden) /* the hidden ones are for scripts and have no page */
        return cli_unknown_command(args->pos[0]);
    cli_print_command_help(c, stdout);
    return CLI_EXIT_OK;
}

const struct cli_command cli_cmd_help = {
    .name = "help",
    .summary = "Show the commands, or one command's usage and options",
    .usage = "[command]",
    .arg_complete = CLI_COMPLETE_COMMAND,
    .max_args = 1,
    .run = help_run,
};

static int commands_run(const struct cli_args *args, struct cli_context *ctx)
{
    (void)args;
    (void)ctx;
    for (size_t i = 0; cli_commands[i]; i++)
        if (!cli_commands[i]->hidden)
            printf("%s\t%s\n", cli_commands[i]->name, cli_commands[i]->summary);
    return CLI_EXIT_OK;
}

/* Hidden: the visible command list, one per line, for scripts and tests
 * (the man page check reads it). */
const struct cli_command cli_cmd_commands = {
    .name = "__commands",
    .summary = "List the commands, tab separated with their summaries",
    .usage = "",
    .hidden = true,
    .max_args = 0,
    .run = commands_run,
};
