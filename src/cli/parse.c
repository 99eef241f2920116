/* parse.c — one option parser for every command, driven by its option table:
 * --name value, --name=value, -x value, -xvalue, flags, and "--" for the rest. */
#include "hoopctl/cli.h"

#include <stdio.h>
#include <string.h>

const struct cli_option cli_global_options[] = {
    [CLI_GLOBAL_OUTPUT] = {"output", 'o', "FORMAT", "table (default) or json, for listings", CLI_COMPLETE_WORDS,
                           "table json"},
    [CLI_GLOBAL_DEBUG] = {"debug", 0, NULL, "debug logging to stderr", CLI_COMPLETE_NONE, NULL},
    [CLI_GLOBAL_LOG_LEVEL] = {"log-level", 0, "LEVEL", "error, warn (default), info or debug", CLI_COMPLETE_WORDS,
                              "error warn info debug"},
    [CLI_GLOBAL_HELP] = {"help", 'h', NULL, "this overview, or after a command its usage", CLI_COMPLETE_NONE, NULL},
    [CLI_GLOBAL_VERSION] = {"version", 0, NULL, "print the version", CLI_COMPLETE_NONE, NULL},
    {NULL, 0, NULL, NULL, CLI_COMPLETE_NONE, NULL},
};

static int option_count(const struct cli_option *opts)
{
    int n = 0;
    if (opts)
        while (opts[n].name)
            n++;
    return n;
}

static int find_long(const struct cli_option *opts, const char *name, size_t len)
{
    int n = option_count(opts);
    for (int i = 0; i < n; i++)
        if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0)
            return i;
    return -1;
}

static int find_short(const struct cli_option *opts, char c)
{
    int n = option_count(opts);
    for (int i = 0; c && i < n; i++)
        if (opts[i].short_name == c)
            return i;
    return -1;
}

/* Whether w is one of the space-separated words. */
static bool word_in(const char *words, const char *w)
{
    size_t n = strlen(w);
    for (const char *p = words; *p;) {
        size_t k = strcspn(p, " ");
        if (k == n && n && strncmp(p, w, n) == 0)
            return true;
        p += k;
        p += strspn(p, " ");
    }
    return false;
}

/* Option argv[*i] of table opts: its index (value in *val, "" for a flag,
 * *i moved past a separate value), -1 when not in the table, -2 with err. */
static int take_option(const struct cli_option *opts, int argc, char **argv, int *i, const char **val, char *err,
                       size_t errlen)
{
    static char empty[] = "";
    const char *a = argv[*i], *inline_val = NULL;
    int idx;
    if (a[0] != '-' || a[1] == '\0') /* "-" alone is an argument, not an option */
        return -1;
    if (a[1] == '-') {
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        if ((idx = find_long(opts, name, len)) < 0)
            return -1;
        if (eq)
            inline_val = eq + 1;
    } else {
        if ((idx = find_short(opts, a[1])) < 0)
            return -1;
        if (a[2] != '\0') {
            if (!opts[idx].arg) {
                snprintf(err, errlen, "option '-%c' takes no value", a[1]);
                return -2;
            }
            inline_val = a + 2;
        }
    }
    const struct cli_option *o = &opts[idx];
    if (o->arg) {
        if (!inline_val) {
            if (*i + 1 >= argc) {
                snprintf(err, errlen, "option '--%s' needs a value (%s)", o->name, o->arg);
                return -2;
            }
            inline_val = argv[++*i];
        }
        *val = inline_val;
        if (o->complete == CLI_COMPLETE_WORDS && o->words && !word_in(o->words, inline_val)) {
            snprintf(err, errlen, "option '--%s' takes one of: %s", o->name, o->words);
            return -2;
        }
    } else {
        if (inline_val) {
            snprintf(err, errlen, "option '--%s' takes no value", o->name);
            return -2;
        }
        *val = empty;
    }
    return idx;
}

int cli_parse_global(int argc, char **argv, int *i, const char **values, char *err, size_t errlen)
{
    const char *v = NULL;
    int g = take_option(cli_global_options, argc, argv, i, &v, err, errlen);
    if (g == -2)
        return -1;
    if (g < 0)
        return 0;
    values[g] = v;
    return 1;
}

/* An argument past max_args where a command to run belongs after "--":
 * say so, with the line as it should have been. */
static void misplaced_command(const struct cli_command *cmd, char **positional, int npos, bool more,
                              char *err, size_t errlen)
{
    int n = snprintf(err, errlen, "unexpected argument '%.60s'; put the command after --: hoopctl %s",
                     positional[cmd->max_args], cmd->name);
    for (int k = 0; k < npos && n >= 0 && (size_t)n < errlen; k++) {
        int m = snprintf(err + n, errlen - (size_t)n, "%s%.40s", k == cmd->max_args ? " -- " : " ", positional[k]);
        n = m < 0 ? -1 : n + m;
    }
    if (more && n >= 0 && (size_t)n < errlen)
        snprintf(err + n, errlen - (size_t)n, " ...");
}

int cli_parse(const struct cli_command *cmd, int argc, char **argv,
              struct cli_args *out, char *err, size_t errlen)
{
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
        if (a[0] != '-' || a[1] == '\0') {
            if (npos >= CLI_MAX_POSITIONALS) {
                snprintf(err, errlen, "too many arguments");
                return -1;
            }
            positional[npos++] = a;
            continue;
        }
        const char *val = NULL;
        int idx = take_option(cmd->options, argc, argv, &i, &val, err, errlen);
        if (idx == -2)
            return -1;
        if (idx == -1) {
            /* Not the command's own: a global option given after it? */
            int g = take_option(cli_global_options, argc, argv, &i, &val, err, errlen);
            if (g == -2)
                return -1;
            if (g >= 0) {
                out->globals[g] = val;
                continue;
            }
            if (cmd->runs_command && cmd->max_args >= 0 && npos > cmd->max_args) {
                /* connect NAME psql -c ...: psql's option, not ours */
                misplaced_command(cmd, positional, npos, true, err, errlen);
                return -1;
            }
            if (a[1] == '-')
                snprintf(err, errlen, "unknown option '%.*s'", (int)strcspn(a, "="), a);
            else
                snprintf(err, errlen, "unknown option '-%c'", a[1]);
            return -1;
        }
        if (idx >= CLI_MAX_OPTIONS) {
            snprintf(err, errlen, "option table too large");
            return -1;
        }
        out->values[idx] = val;
        out->counts[idx]++;
    }
    out->rest = argv + i;
    out->nrest = argc - i;
    /* Move positionals to argv[1..npos] so out->pos can point into argv. */
    for (int k = 0; k < npos; k++)
        argv[1 + k] = positional[k];
    out->pos = argv + 1;
    out->npos = npos;
    if (out->globals[CLI_GLOBAL_HELP])
        return 0; /* the usage is asked for: the arguments need not be complete */
    if (npos < cmd->min_args) {
        snprintf(err, errlen, "missing argument");
        return -1;
    }
    if (cmd->max_args >= 0 && npos > cmd->max_args && cmd->runs_command) {
        misplaced_command(cmd, positional, npos, false, err, errlen);
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
    return find_long(args->cmd->options, name, strlen(name));
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
