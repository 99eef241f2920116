/* cli.c — small helpers the command files share, so that each command
 * reports a failure the same way. */
#include "hoopctl/cli.h"
#include "hoopctl/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cli_fail(const char *name, int code, const char *msg)
{
    /* msg may quote what a server, a store or a file said: on one line, and
     * with no control reaching the terminal */
    fprintf(stderr, "hoopctl %s: %s\n", name, cli_safe(msg));
    return code;
}

/* The strings cli_safe made, freed at exit (a command prints a few dozen). */
static char **safe_pool;
static size_t safe_n, safe_cap;

static void safe_pool_free(void)
{
    for (size_t i = 0; i < safe_n; i++)
        free(safe_pool[i]);
    free(safe_pool);
    safe_pool = NULL;
    safe_n = safe_cap = 0;
}

const char *cli_safe(const char *s)
{
    if (!s)
        return NULL;
    if (safe_n == safe_cap) {
        size_t cap = safe_cap ? safe_cap * 2 : 64;
        char **p = realloc(safe_pool, cap * sizeof *p);
        if (!p)
            return "?";
        if (!safe_pool)
            atexit(safe_pool_free);
        safe_pool = p;
        safe_cap = cap;
    }
    char *t = util_terminal_safe(s, false);
    if (!t)
        return "?";
    return safe_pool[safe_n++] = t;
}

void cli_note_env_token(const char *name)
{
    const char *t = getenv("HOOPCTL_TOKEN");
    if (t && *t)
        fprintf(stderr, "hoopctl %s: note: HOOPCTL_TOKEN is set, and the other commands use it, not this login\n",
                name);
}

void cli_drop_pg_env(void)
{
    size_t i = 0;
    while (environ[i]) {
        const char *entry = environ[i];
        if (strncmp(entry, "PG", 2) != 0) {
            i++;
            continue;
        }
        char *name = strndup(entry, strcspn(entry, "="));
        if (name)
            unsetenv(name);
        free(name);
        if (environ[i] == entry) /* not removed (no memory, or no '=' in it): go on past it */
            i++;
    }
}

int cli_verb_args(const struct cli_args *a, int want, const char *what)
{
    char msg[200];
    if (a->npos == want)
        return 0;
    if (a->npos < want)
        snprintf(msg, sizeof msg, "%s needs %s", a->pos[0], what);
    else
        snprintf(msg, sizeof msg, "unexpected argument '%.80s' (%s takes %s)", a->pos[want], a->pos[0],
                 want > 1 ? what : "no argument");
    return cli_usage_error(a->cmd, msg);
}

int cli_check_limit(const struct cli_args *a, long max)
{
    const char *v = cli_get(a, "limit");
    char *end = NULL;
    long n = v ? strtol(v, &end, 10) : 1;
    if (v && (end == v || *end || n < 1 || n > max)) {
        char msg[80];
        snprintf(msg, sizeof msg, "--limit takes a number from 1 to %ld", max);
        return cli_usage_error(a->cmd, msg);
    }
    return 0;
}

int cli_put_statement(struct buf *b, const char *text, const char *cont)
{
    int rc = 0;
    for (const char *p = text;;) {
        size_t n = strcspn(p, "\n");
        rc |= buf_append_terminal_safe(b, p, n, false);
        if (!p[n])
            return rc;
        rc |= buf_append_str(b, cont);
        p += n + 1;
    }
}
