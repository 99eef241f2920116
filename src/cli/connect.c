/* connect.c — `hoopctl connect <connection>`: open the local gateway for a
 * server connection, print how to reach it or run a command against it, show
 * a status line, and close everything cleanly on Ctrl-C or when the command exits. */
#include "hoopctl/cli.h"
#include "hoopctl/connect.h"
#include "hoopctl/gateway.h"
#include "hoopctl/identity.h"
#include "hoopctl/log.h"
#include "hoopctl/util.h"

#include <errno.h>
#include <stdbool.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct connect_cli {
    struct event_base *base;
    struct connect *conn;
    bool quiet, tty;
    pid_t child;
    int child_status;
    bool child_done;
    char last_status[256];
};

static void stop_soon(struct connect_cli *c)
{
    connect_shutdown(c->conn);
    struct timeval tv = {0, 200000};
    event_base_loopexit(c->base, &tv);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct connect_cli *c = arg;
    if (sig == SIGCHLD) {
        int st;
        if (c->child > 0 && waitpid(c->child, &st, WNOHANG) == c->child) {
            c->child_done = true;
            c->child_status = st;
            stop_soon(c);
        }
        return;
    }
    if (c->child > 0 && !c->child_done) {
        /* The command decides how to end, and we follow when it exits. A
         * terminal's Ctrl-C already reached it (one process group). */
        if (sig != SIGINT)
            kill(c->child, (int)sig);
    } else
        stop_soon(c);
}

static void on_status(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct connect_cli *c = arg;
    struct connect_stats st;
    connect_get_stats(c->conn, &st);
    char line[256];
    snprintf(line, sizeof line,
             "hoopctl: sessions %llu (%llu total) | statements %llu | denials %llu | pending reviews %llu"
             " | unshipped %lld",
             (unsigned long long)st.sessions_active, (unsigned long long)st.sessions_total,
             (unsigned long long)st.statements, (unsigned long long)st.denials,
             (unsigned long long)st.reviews_pending, (long long)st.spool_pending);
    if (st.quarantined > 0) {
        size_t n = strlen(line);
        snprintf(line + n, sizeof line - n, " | quarantined %lld (see the log)", (long long)st.quarantined);
    }
    if (strcmp(line, c->last_status) != 0) {
        fprintf(stderr, c->tty ? "\r\033[K%s" : "%s\n", line);
        snprintf(c->last_status, sizeof c->last_status, "%s", line);
    }
}

static void child_env_free(char **env)
{
    if (!env)
        return;
    for (size_t i = 0; env[i]; i++) {
        bool ours = false;
        for (size_t j = 0; environ[j] && !ours; j++)
            ours = env[i] == environ[j];
        if (!ours)
            free(env[i]);
    }
    free(env);
}

/* The command's environment: ours without the names dropped below, then the
 * gateway's PG* variables. Every other PG* variable goes too: libpq reads
 * them all, and many break the loopback hop or send the command elsewhere
 * (PGHOSTADDR, PGSERVICE, PGCHANNELBINDING=require, PGGSSENCMODE=require,
 * PGTARGETSESSIONATTRS=standby, PGSSLCERT, ...). Built before fork: connect
 * has threads, and after fork the child may only call what is
 * async-signal-safe (setenv and malloc are not: a lock another thread held
 * at the fork stays held, and the child hung there once under ASan). */
static char **child_env(struct connect *conn, const char *port)
{
    static const char *const drop[] = {"PG",
                                       /* the command gets the database through the gateway, not
                                        * the key: with it, it could fetch the upstream secret
                                        * (/credentials) and connect around the gateway */
                                       "HOOPCTL_TOKEN=",
                                       /* and no other credential it could log in with or
                                        * read secrets by: a CI job's client secret (login
                                        * --client-credentials), an upstream password, a key */
                                       "HOOPCTL_CLIENT_SECRET=", "HOOPCTL_UPSTREAM_PASSWORD=",
                                       "HOOPCTL_MASTER_KEY="};
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 6, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool dropped = false;
        for (size_t d = 0; d < sizeof drop / sizeof *drop && !dropped; d++)
            dropped = strncmp(environ[i], drop[d], strlen(drop[d])) == 0;
        if (!dropped)
            env[k++] = environ[i];
    }
    const char *dir = connect_socket_dir(conn);
    const char *set[][2] = {{"PGHOST", dir ? dir : connect_listen_host(conn)}, {"PGPORT", port},
                            {"PGDATABASE", connect_database(conn)}, {"PGUSER", connect_db_user(conn)},
                            /* loopback, plain: the gateway holds the TLS upstream */
                            {"PGSSLMODE", "disable"}};
    for (size_t i = 0; i < 5; i++) {
        size_t len = strlen(set[i][0]) + strlen(set[i][1]) + 2;
        if (!(env[k] = malloc(len))) { /* fail closed: no command without its PGHOST */
            child_env_free(env);
            return NULL;
        }
        snprintf(env[k++], len, "%s=%s", set[i][0], set[i][1]);
    }
    env[k] = NULL;
    return env;
}

/* The program's path, searched in PATH as execvp would, before fork. */
static char *find_program(const char *name)
{
    if (strchr(name, '/'))
        return strdup(name);
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        size_t len = strcspn(path, ":");
        char *cand = malloc(len + strlen(name) + 3);
        if (!cand)
            return NULL;
        if (len) /* an empty entry is the current directory */
            snprintf(cand, len + strlen(name) + 3, "%.*s/%s", (int)len, path, name);
        else
            snprintf(cand, len + strlen(name) + 3, "./%s", name);
        if (access(cand, X_OK) == 0)
            return cand;
        free(cand);
        path += len + (path[len] == ':');
    }
    return NULL;
}

static pid_t run_child(const struct cli_args *a, struct connect *conn, char *err, size_t errlen)
{
    char port[16];
    snprintf(port, sizeof port, "%d", connect_listen_port(conn));
    /* The child's messages, whole, before fork (the child formats nothing):
     * one per errno execve may give, chosen by the child after it fails. */
    static const int errs[] = {ENOENT, EACCES, ENOEXEC, ENOTDIR, ELOOP, ENAMETOOLONG, 0};
    enum { NERRS = sizeof errs / sizeof errs[0] };
    char fail[NERRS][600];
    size_t fail_len[NERRS];
    int fail_code[NERRS];
    char *prog = find_program(a->rest[0]);
    for (size_t i = 0; i < NERRS; i++) {
        snprintf(fail[i], sizeof fail[i], "hoopctl connect: cannot run %.500s: %s\n", a->rest[0],
                 !prog ? "not found in PATH" : errs[i] ? strerror(errs[i]) : "it cannot be executed");
        fail_len[i] = strlen(fail[i]);
        /* as shells do: 127 when there is no such command, 126 when it is
         * there but cannot be executed */
        fail_code[i] = !prog || errs[i] == ENOENT ? 127 : 126;
    }
    char **env = child_env(conn, port);
    if (!env) {
        free(prog);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        child_env_free(env);
        free(prog);
        return -1;
    }
    if (pid == 0) { /* async-signal-safe calls only, up to the exec */
        struct sigaction dfl = {0};
        dfl.sa_handler = SIG_DFL;
        sigaction(SIGPIPE, &dfl, NULL);
        sigaction(SIGXFSZ, &dfl, NULL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int e = 0;
        if (prog) {
            execve(prog, a->rest, env);
            e = errno;
        }
        size_t m = 0;
        while (errs[m] && errs[m] != e)
            m++;
        if (write(STDERR_FILENO, fail[m], fail_len[m]) < 0)
            _exit(fail_code[m]);
        _exit(fail_code[m]);
    }
    child_env_free(env);
    free(prog);
    return pid;
}

/* One conninfo keyword and value, as libpq reads it: a value that is empty
 * or holds a blank, a quote or a backslash is single-quoted, its quotes and
 * backslashes escaped. */
static void conninfo_put(struct buf *b, const char *key, const char *value)
{
    bool plain = *value != '\0';
    for (const char *p = value; *p && plain; p++)
        plain = !(*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' || *p == '\v' ||
                  *p == '\'' || *p == '\\');
    buf_printf(b, "%s%s=%s", b->len ? " " : "", key, plain ? "" : "'");
    for (const char *p = value; *p; p++) {
        if (!plain && (*p == '\'' || *p == '\\'))
            buf_append(b, "\\", 1);
        buf_append(b, p, 1);
    }
    if (!plain)
        buf_append(b, "'", 1);
}

/* "  psql \"host=... port=... dbname=... sslmode=disable\"", to paste into a
 * POSIX shell: the conninfo in double quotes, with $, `, " and \ escaped.
 * sslmode=disable since the loopback listener has no TLS (a PGSSLMODE of
 * require in the user's shell would fail otherwise). */
static void print_psql_line(struct connect *conn, const char *host, const char *note)
{
    char port[16];
    snprintf(port, sizeof port, "%d", connect_listen_port(conn));
    struct buf ci = {0}, line = {0};
    conninfo_put(&ci, "host", host);
    conninfo_put(&ci, "port", port);
    conninfo_put(&ci, "dbname", connect_database(conn));
    conninfo_put(&ci, "sslmode", "disable");
    buf_append_str(&line, "  psql \"");
    for (size_t i = 0; i < ci.len; i++) {
        char ch = (char)ci.data[i];
        if (ch == '"' || ch == '\\' || ch == '$' || ch == '`')
            buf_append(&line, "\\", 1);
        buf_append(&line, &ch, 1);
    }
    buf_printf(&line, "\"%s\n", note);
    if (line.data)
        fwrite(line.data, 1, line.len, stdout);
    buf_free(&ci);
    buf_free(&line);
}

static int connect_run(const struct cli_args *a, struct cli_context *ctx)
{
    (void)ctx;
    /* Everything the gateway's own libpq connection (the catalog's) needs
     * comes from the server: the user's PG* variables must not redirect or
     * break it (PGSERVICE=x made it fail, and then every column was
     * masked). The command gets PG* variables of the gateway's only. */
    cli_drop_pg_env();
    char err[1024];
    struct connect_options o = {.connection = a->pos[0], .listen_host = "127.0.0.1"};
    char host[64];
    const char *listen = cli_get(a, "listen"), *port = cli_get(a, "port");
    o.socket_dir = cli_get(a, "socket-dir");
    if (o.socket_dir && gateway_check_socket_dir(o.socket_dir, err, sizeof err) < 0)
        return cli_usage_error(a->cmd, err);
    if (listen && port)
        return cli_usage_error(a->cmd, "give --listen or --port, not both");
    if (listen) {
        const char *colon = strrchr(listen, ':');
        if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof host)
            return cli_usage_error(a->cmd, "--listen takes 127.0.0.1:PORT");
        memcpy(host, listen, (size_t)(colon - listen));
        host[colon - listen] = '\0';
        if (strcmp(host, "127.0.0.1") && strcmp(host, "::1") && strcmp(host, "localhost"))
            return cli_usage_error(a->cmd, "--listen: the gateway binds loopback addresses only");
        o.listen_host = strcmp(host, "localhost") ? host : "127.0.0.1";
        port = colon + 1;
    }
    if (port) {
        char *end;
        long v = strtol(port, &end, 10);
        if (*end || v < 1 || v > 65535)
            return cli_usage_error(a->cmd, "the port must be a number from 1 to 65535");
        o.listen_port = (int)v;
    }
    const char *wait = cli_get(a, "review-wait");
    if (wait) {
        char *end;
        long v = strtol(wait, &end, 10);
        if (end == wait || v < 1 || (*end && strcmp(end, "s") && strcmp(end, "m")) || v > 86400)
            return cli_usage_error(a->cmd, "--review-wait takes seconds (e.g. 90 or 90s) or minutes (10m)");
        o.review_wait_seconds = (int)(*end == 'm' ? v * 60 : v);
    }
    if (cli_get_max_sessions(a, &o.max_sessions) < 0)
        return cli_usage_error(a->cmd, "--max-sessions takes 1 to 1000000");

    /* An API key (or another token that needs no refresh) in HOOPCTL_TOKEN
     * takes the place of the saved login: CI jobs and agents. */
    struct identity_session *id = NULL;
    const char *token = getenv("HOOPCTL_TOKEN");
    if (token && *token) {
        o.token = token;
        o.server = cli_get(a, "server");
    } else {
        int rc = identity_session_open(cli_get(a, "server"), IDENTITY_REFRESH_MARGIN, &id, err, sizeof err);
        if (rc != 0) {
            fprintf(stderr, "hoopctl connect: %s\n", cli_safe(err));
            return rc > 0 ? CLI_EXIT_AUTH : CLI_EXIT_FAILURE;
        }
        o.identity = id;
    }

    /* Signals arrive through the loop; the command we start gets them too. */
    signal(SIGPIPE, SIG_IGN);
    /* A spool that hits the file-size limit must fail its write (and so
     * refuse statements), not kill the gateway. */
    signal(SIGXFSZ, SIG_IGN);
    struct connect_cli c = {.quiet = cli_flag(a, "quiet"), .tty = isatty(2) == 1};
    c.base = event_base_new();
    enum connect_error why = CONNECT_ERR_FAILED;
    c.conn = c.base ? connect_start(c.base, &o, &why, err, sizeof err) : NULL;
    if (!c.conn) {
        /* err may quote the server (a hint of several lines names its
         * connections): controls escaped, its lines kept */
        char *shown = c.base ? util_terminal_safe(err, true) : NULL;
        fprintf(stderr, "hoopctl connect: %s\n",
                !c.base ? "cannot create the event loop" : shown ? shown : "(an error that cannot be shown: out of memory)");
        free(shown);
        if (c.base && port && strstr(err, strerror(EADDRINUSE))) /* the port named is taken */
            fprintf(stderr, "hint: give another %s, or leave it out to take the first free port from 5433\n",
                    listen ? "port in --listen" : "--port");
        if (c.base)
            event_base_free(c.base);
        identity_session_close(id);
        static const int codes[] = {CLI_EXIT_OK, CLI_EXIT_FAILURE, CLI_EXIT_AUTH, CLI_EXIT_DENIED,
                                    CLI_EXIT_UNAVAILABLE};
        return codes[why];
    }
    struct event *sigs[4] = {evsignal_new(c.base, SIGINT, on_signal, &c),
                             evsignal_new(c.base, SIGTERM, on_signal, &c),
                             evsignal_new(c.base, SIGHUP, on_signal, &c),
                             evsignal_new(c.base, SIGCHLD, on_signal, &c)};
    for (int i = 0; i < 4; i++)
        event_add(sigs[i], NULL);
    struct event *status = event_new(c.base, -1, EV_PERSIST, on_status, &c);
    struct timeval sec = {1, 0};
    /* The status line shares the terminal with the command: none while one
     * runs (it would overwrite psql's prompt). */
    if (!c.quiet && a->nrest == 0)
        event_add(status, &sec);

    /* What to run, on stdout, when there is no command to run: with one,
     * stdout is the command's (psql --csv > file, pg_dump -Fc > file). */
    if (a->nrest == 0) {
        printf("hoopctl: connection %s on %s:%d; run:\n", a->pos[0], connect_listen_host(c.conn),
               connect_listen_port(c.conn));
        print_psql_line(c.conn, connect_listen_host(c.conn), "");
        if (connect_socket_dir(c.conn))
            print_psql_line(c.conn, connect_socket_dir(c.conn), "   (Unix socket)");
        fflush(stdout);
    } else if (!c.quiet)
        fprintf(stderr, "hoopctl: connection %s on %s:%d\n", a->pos[0], connect_listen_host(c.conn),
                connect_listen_port(c.conn));
    /* A certificate verify failure reaches the client as the gateway's
     * error; say here which CAs it was checked against. */
    if (connect_system_roots(c.conn) && !c.quiet)
        fprintf(stderr, "hoopctl connect: the upstream's certificate is checked against the system trust "
                        "store (%s), as the connection names no CA of its own\n",
                connect_system_roots(c.conn));
    int exit_code = CLI_EXIT_OK;
    if (a->nrest > 0 && (c.child = run_child(a, c.conn, err, sizeof err)) < 0) {
        fprintf(stderr, "hoopctl connect: %s\n", err);
        exit_code = CLI_EXIT_FAILURE;
        c.child = 0;
        stop_soon(&c);
    }
    event_base_dispatch(c.base);
    if (c.tty && !c.quiet && c.last_status[0])
        fputc('\n', stderr);
    if (c.child > 0 && !c.child_done && waitpid(c.child, &c.child_status, 0) == c.child)
        c.child_done = true;
    if (c.child_done)
        exit_code = WIFEXITED(c.child_status) ? WEXITSTATUS(c.child_status) : 128 + WTERMSIG(c.child_status);
    connect_free(c.conn, 3000);
    event_free(status);
    for (int i = 0; i < 4; i++)
        event_free(sigs[i]);
    event_base_free(c.base);
    identity_session_close(id);
    return exit_code;
}

static const struct cli_option connect_options[] = {
    {"port", 'p', "N", "local port (default 5433, or the next free one)", CLI_COMPLETE_NONE, NULL},
    {"listen", 0, "127.0.0.1:N", "loopback address and port to listen on", CLI_COMPLETE_NONE, NULL},
    {"socket-dir", 0, "DIR", "also listen on the Unix socket DIR/.s.PGSQL.<port> (DIR: 0700, yours)",
     CLI_COMPLETE_DIR, NULL},
    {"quiet", 'q', NULL, "no status line", CLI_COMPLETE_NONE, NULL},
    {"server", 0, "URL", "the hoopctl server logged in to (default: server.url, else the last login)", CLI_COMPLETE_NONE, NULL},
    {"review-wait", 0, "TIME", "how long a held statement waits for its review (default 10m)",
     CLI_COMPLETE_NONE, NULL},
    {"max-sessions", 0, "N",
     "sessions at a time; one more gets SQLSTATE 53300 (default: what ulimit -n leaves room for, 293 at 1024)",
     CLI_COMPLETE_NONE, NULL},
    {0},
};

const struct cli_command cli_cmd_connect = {
    .name = "connect",
    .summary = "Open the local gateway to a connection: policy, masking, audit and reviews",
    .usage = "<connection> [--port N] [--listen 127.0.0.1:N] [--socket-dir DIR] [--quiet] [--server URL] "
             "[--review-wait TIME] [--max-sessions N] [-- command args...]",
    .description = "Fetches the connection, its policy and its secret from the server, listens on\n"
                   "loopback and prints what to run; with `-- command`, runs it with PGHOST, PGPORT,\n"
                   "PGDATABASE and PGUSER set and exits with its exit code.",
    .options = connect_options,
    .arg_complete = CLI_COMPLETE_DYNAMIC,
    .arg_words = "connections",
    .min_args = 1,
    .max_args = 1,
    .runs_command = true,
    .run = connect_run,
};
