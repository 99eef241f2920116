/* parse.c — one option parser for every command, driven by its option table:
 * --name value, --name=value, -x value, -xvalue, flags, and "--" for the rest. */
#include "hoopctl/cli.h"

#include <stdio.h>
#include <string.h>

static int option_count(const struct cli_command *cmd)
{
    int n = 0;
    if (cmd->options)
        while (cmd->options[n].name)
            n++;
    return n;
}

static int find_long(const struct cli_command *cmd, const char *name, size_t len)
{
    int n = option_count(cmd);
    for (int i = 0; i < n; i++)
        if (strlen(cmd->options[i].name) == len && strncmp(cmd->options[i].name, name, len) == 0)
            return i;
    return -1;
}

static int find_short(const struct cli_command *cmd, char c)
{
    int n = option_count(cmd);
    for (int i = 0; i < n; i++)
        if (cmd->options[i].short_name == c)
            return i;
    return -1;
}

int cli_parse(const struct cli_command *cmd, int argc, char **argv,
              struct cli_args *out, char *err, size_t errlen)
{
    static char empty[] = "";
    memset(out, 0, sizeof *out);
    out->cmd = cmd;
    /* Positionals are collected in place: argv is reordered so that they
     * precede the options (argv[0] stays the command). */
    char *positional[CLI_MAX_POSITIONALS];
    int npos = 0;
    int i;
    for (i = 1; i < argc; i++) {
        char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        int idx = -1;
        const char *inline_val = NULL;
        if (a[0] == '-' && a[1] == '-') {
            const char *name = a + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            idx = find_long(cmd, name, len);
            if (idx < 0) {
                snprintf(err, errlen, "unknown option '--%.*s'", (int)len, name);
                return -1;
            }
            if (eq)
                inline_val = eq + 1;
        } else if (a[0] == '-' && a[1] != '\0') {
            idx = find_short(cmd, a[1]);
            if (idx < 0) {
                snprintf(err, errlen, "unknown option '-%c'", a[1]);
                return -1;
            }
            if (a[2] != '\0') {
                if (!cmd->options[idx].arg) {
                    snprintf(err, errlen, "option '-%c' takes no value", a[1]);
                    return -1;
                }
                inline_val = a + 2;
            }
        } else {
            if (npos >= CLI_MAX_POSITIONALS) {
                snprintf(err, errlen, "too many arguments");
                return -1;
            }
            positional[npos++] = a;
            continue;
        }
        if (idx >= CLI_MAX_OPTIONS) {
            snprintf(err, errlen, "option table too large");
            return -1;
        }
        const struct cli_option *o = &cmd->options[idx];
        if (o->arg) {
            if (!inline_val) {
                if (i + 1 >= argc) {
                    snprintf(err, errlen, "option '--%s' needs a value (%s)", o->name, o->arg);
                    return -1;
                }
                inline_val = argv[++i];
            }
            out->values[idx] = inline_val;
        } else {
            if (inline_val) {
                snprintf(err, errlen, "option '--%s' takes no value", o->name);
                return -1;
            }
            out->values[idx] = empty;
        }
        out->counts[idx]++;
    }
    out->rest = argv + i;
    out->nrest = argc - i;
    /* Move positionals to argv[1..npos] so out->pos can point into argv. */
    for (int k = 0; k < npos; k++)
        argv[1 + k] = positional[k];
    out->pos = argv + 1;
    out->npos = npos;
    if (npos < cmd->min_args) {
        snprintf(err, errlen, "missing argument");
        return -1;
    }
    if (cmd->max_args >= 0 && npos > cmd->max_args) {
        snprintf(err, errlen, "unexpected argument '%s'", positional[cmd->max_args]);
        return -1;
    }
    return 0;
}

static int option_index(const struct cli_args *args, const char *name)
{
    return find_long(args->cmd, name, strlen(name));
}

const char *cli_get(const struct cli_args *args, const char *name)
{
    int idx = option_index(args, name);
    return idx < 0 ? NULL : args->values[idx];
}

bool cli_flag(const struct cli_args *args, const char *name)
{
    return cli_get(args, name) != NULL;
}
