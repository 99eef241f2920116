/* admin.c — `hoopctl admin`: manage connections (add, list, show, rm,
 * set-policy), API keys (create, list, revoke) and apply a declarative file,
 * through the server API. Secrets come from a prompt, a file or an env var. */
#include "hoopctl/api.h"
#include "hoopctl/cli.h"
#include "hoopctl/config.h"
#include "hoopctl/server.h"
#include "hoopctl/store.h"
#include "hoopctl/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static json_t *split_groups(const char *s)
{
    json_t *a = json_array();
    if (!s)
        return a;
    char *copy = strdup(s), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (*t)
            json_array_append_new(a, json_string(t));
    free(copy);
    return a;
}

/* Read a secret: from a file (first line), an env var, or a prompt with echo
 * off. Returns malloc'd text, NULL with err set, or NULL and no error when no
 * source was named. A secret longer than the server keeps is an error, not
 * cut short. */
static char *read_secret(const char *file, const char *env, bool prompt, char *err, size_t errlen)
{
    err[0] = '\0';
    char *out = NULL;
    bool too_long = false;
    if (file) {
        FILE *f = fopen(file, "r");
        if (!f) {
            snprintf(err, errlen, "secret file %s: %s", file, strerror(errno));
            return NULL;
        }
        out = util_read_secret_line(f, UTIL_SECRET_MAX, &too_long);
        int rerr = ferror(f) ? errno : 0;
        fclose(f);
        if (too_long)
            snprintf(err, errlen, "secret file %s: the secret is longer than %d bytes (the server's limit)", file,
                     UTIL_SECRET_MAX);
        else if (!out && rerr)
            snprintf(err, errlen, "secret file %s: %s", file, strerror(rerr));
        else if (!out)
            snprintf(err, errlen, "secret file %s is empty", file);
        return out;
    } else if (env) {
        const char *v = getenv(env);
        if (!v || !*v) {
            snprintf(err, errlen, "environment variable %s is not set", env);
            return NULL;
        }
        size_t n = strcspn(v, "\r\n");
        if (n > UTIL_SECRET_MAX) {
            snprintf(err, errlen, "environment variable %s: the secret is longer than %d bytes (the server's limit)",
                     env, UTIL_SECRET_MAX);
            return NULL;
        }
        out = strndup(v, n);
    } else if (prompt) {
        FILE *tty = fopen("/dev/tty", "r+");
        if (!tty) {
            snprintf(err, errlen, "no terminal to prompt on; use --secret-file or --secret-env");
            return NULL;
        }
        struct termios old, quiet;
        tcgetattr(fileno(tty), &old);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        fputs("Secret (not echoed): ", tty);
        fflush(tty);
        tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
        out = util_read_secret_line(tty, UTIL_SECRET_MAX, &too_long);
        tcsetattr(fileno(tty), TCSAFLUSH, &old);
        fputs("\n", tty);
        fclose(tty);
        if (too_long)
            snprintf(err, errlen, "the secret entered is longer than %d bytes (the server's limit)",
                     UTIL_SECRET_MAX);
        else if (!out)
            snprintf(err, errlen, "no secret entered");
        return out;
    } else {
        return NULL;
    }
    if (!out)
        snprintf(err, errlen, "out of memory");
    return out;
}

static json_t *load_json_file(const char *path, char *err, size_t errlen)
{
    return config_load(path, 0, err, errlen);
}

static void print_groups(json_t *a)
{
    size_t i;
    json_t *g;
    json_array_foreach(a, i, g) printf("%s%s", i ? "," : "", cli_safe(json_string_value(g)));
    if (json_array_size(a) == 0)
        printf("-");
}

static void print_connection_row(json_t *c)
{
    /* every string is the server's: escaped, each on one line */
    printf("%-20s %-28s %-16s %-16s ", cli_safe(json_string_value(json_object_get(c, "name"))),
           cli_safe(json_string_value(json_object_get(c, "host"))),
           cli_safe(json_string_value(json_object_get(c, "database"))),
           cli_safe(json_string_value(json_object_get(c, "user"))));
    print_groups(json_object_get(c, "allowed_groups"));
    printf(" ");
    print_groups(json_object_get(c, "reviewer_groups"));
    printf("\n");
}

/* The server's warnings about a connection it saved (review rules nobody
 * can decide), on stderr. */
static void print_warnings(const char *name, json_t *resp)
{
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(resp, "warnings"), i, w) if (json_is_string(w))
        fprintf(stderr, "hoopctl admin: warning: connection %s: %s\n", cli_safe(name), cli_safe(json_string_value(w)));
}

static int secret_into(const struct cli_args *a, json_t *body, char *err, size_t errlen)
{
    char *secret = read_secret(cli_get(a, "secret-file"), cli_get(a, "secret-env"),
                               cli_flag(a, "secret-prompt"), err, errlen);
    if (!secret && err[0])
        return -1;
    if (secret) {
        json_object_set_new(body, "secret", json_string(secret));
        util_secure_zero(secret, strlen(secret));
        free(secret);
    }
    return 0;
}

static int admin_connection(const struct cli_args *a, struct cli_context *ctx, struct api_client *api)
{
    char err[600], path[256], esc[200];
    json_t *resp = NULL;
    int rc;
    if (a->npos < 2)
        return cli_usage_error(a->cmd, "connection needs add, list, show, rm or set-policy");
    const char *verb = a->pos[1];
    if (!strcmp(verb, "list")) {
        if ((rc = api_do(api, "GET", "/api/v1/connections", NULL, &resp, err, sizeof err)))
            return cli_fail("admin", rc, err);
        json_t *list = json_object_get(resp, "connections");
        if (!strcmp(ctx->output, "json"))
            api_print_json(stdout, list);
        else {
            printf("%-20s %-28s %-16s %-16s %s\n", "NAME", "HOST", "DATABASE", "USER", "ALLOWED REVIEWERS");
            size_t i;
            json_t *c;
            json_array_foreach(list, i, c) print_connection_row(c);
        }
        json_decref(resp);
        return 0;
    }
    if (a->npos < 3)
        return cli_usage_error(a->cmd, "name the connection");
    api_escape(a->pos[2], esc, sizeof esc);
    snprintf(path, sizeof path, "/api/v1/connections/%s", esc);
    if (!strcmp(verb, "show")) {
        if ((rc = api_do(api, "GET", path, NULL, &resp, err, sizeof err)) && api->last_status == 404)
            snprintf(err, sizeof err, "no connection %.200s on the server", a->pos[2]);
        if (rc)
            return cli_fail("admin", rc, err);
        if (!strcmp(ctx->output, "json"))
            api_print_json(stdout, resp);
        else {
            printf("name:      %s\nupstream:  %s:%lld/%s as %s (sslmode %s)\nsecret:    %s\nallowed:   ",
                   cli_safe(json_string_value(json_object_get(resp, "name"))),
                   cli_safe(json_string_value(json_object_get(resp, "host"))),
                   (long long)json_integer_value(json_object_get(resp, "port")),
                   cli_safe(json_string_value(json_object_get(resp, "database"))),
                   cli_safe(json_string_value(json_object_get(resp, "user"))),
                   cli_safe(json_string_value(json_object_get(resp, "sslmode"))),
                   json_is_true(json_object_get(resp, "has_secret")) ? "set" : "none");
            print_groups(json_object_get(resp, "allowed_groups"));
            printf("\nreviewers: ");
            print_groups(json_object_get(resp, "reviewer_groups"));
            printf("\npolicy:    ");
            /* JSON escapes the C0 controls; C1 and bidirectional ones it keeps */
            char *pol = json_dumps(json_object_get(resp, "policy"), JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
            printf("%s\n", pol ? cli_safe(pol) : "?");
            free(pol);
        }
        json_decref(resp);
        return 0;
    }
    if (!strcmp(verb, "rm")) {
        if ((rc = api_do(api, "DELETE", path, NULL, &resp, err, sizeof err)) && api->last_status == 404)
            snprintf(err, sizeof err, "no connection %.200s on the server", a->pos[2]);
        if (rc)
            return cli_fail("admin", rc, err);
        json_decref(resp);
        printf("connection %s removed\n", a->pos[2]);
        return 0;
    }
    if (!strcmp(verb, "set-policy")) {
        const char *pf = cli_get(a, "policy-file");
        if (!pf)
            return cli_usage_error(a->cmd, "set-policy needs --policy-file FILE");
        json_t *pol = load_json_file(pf, err, sizeof err);
        if (!pol)
            return cli_fail("admin", 1, err);
        json_t *body = json_pack("{s:o}", "policy", pol);
        snprintf(path + strlen(path), sizeof path - strlen(path), "/policy");
        rc = api_do(api, "PUT", path, body, &resp, err, sizeof err);
        json_decref(body);
        if (rc)
            return cli_fail("admin", rc, err);
        print_warnings(a->pos[2], resp);
        json_decref(resp);
        printf("policy of %s set\n", a->pos[2]);
        return 0;
    }
    if (!strcmp(verb, "add")) {
        const char *host = cli_get(a, "host"), *port = cli_get(a, "port");
        const char *db = cli_get(a, "database"), *user = cli_get(a, "user");
        if (!host || !db || !user)
            return cli_usage_error(a->cmd, "add needs --host, --database and --user");
        char *end = NULL;
        long p = port ? strtol(port, &end, 10) : 5432;
        if (port && (*end || p < 1 || p > 65535))
            return cli_usage_error(a->cmd, "--port must be 1..65535");
        json_t *body = json_pack("{s:s,s:i,s:s,s:s,s:o,s:o}", "host", host, "port", (int)p, "database", db,
                                 "user", user, "allowed_groups", split_groups(cli_get(a, "allowed-groups")),
                                 "reviewer_groups", split_groups(cli_get(a, "reviewer-groups")));
        if (cli_get(a, "sslmode"))
            json_object_set_new(body, "sslmode", json_string(cli_get(a, "sslmode")));
        if (cli_get(a, "policy-file")) {
            json_t *pol = load_json_file(cli_get(a, "policy-file"), err, sizeof err);
            if (!pol) {
                json_decref(body);
                return cli_fail("admin", 1, err);
            }
            json_object_set_new(body, "policy", pol);
        }
        if (secret_into(a, body, err, sizeof err) < 0) {
            json_decref(body);
            return cli_fail("admin", 1, err);
        }
        rc = api_do(api, "PUT", path, body, &resp, err, sizeof err);
        json_decref(body);
        if (rc)
            return cli_fail("admin", rc, err);
        print_warnings(a->pos[2], resp);
        if (!strcmp(ctx->output, "json"))
            api_print_json(stdout, resp);
        else
            printf("connection %s saved\n", a->pos[2]);
        json_decref(resp);
        return 0;
    }
    return cli_usage_error(a->cmd, "connection takes add, list, show, rm or set-policy");
}

/* admin apikey create with --store: straight into the store (bootstrap). */
static int apikey_create_local(const char *url, const char *name, json_t *groups, struct cli_context *ctx)
{
    char err[512], token[64], hash[65], id[37];
    struct store *st = store_open(url, err, sizeof err);
    if (!st)
        return cli_fail("admin", 5, err);
    int rc = 1;
    if (!server_valid_name(name)) {
        snprintf(err, sizeof err, "a key name has letters, digits, '.', '_' and '-' only");
    } else if (server_apikey_mint(token, hash) == 0 && util_uuid_v4(id) == 0 &&
               store_apikey_create(st, id, name, hash, groups, "local-admin", err, sizeof err) == 0) {
        if (!strcmp(ctx->output, "json")) {
            json_t *o = json_pack("{s:s,s:s,s:O,s:s}", "id", id, "name", name, "groups", groups, "token", token);
            api_print_json(stdout, o);
            json_decref(o);
        } else {
            printf("%s\n", token);
        }
        rc = 0;
    }
    util_secure_zero(token, sizeof token);
    store_close(st);
    return rc ? cli_fail("admin", rc, err) : 0;
}

static int admin_apikey(const struct cli_args *a, struct cli_context *ctx, struct api_client *api)
{
    char err[600], path[256], esc[200];
    json_t *resp = NULL;
    int rc;
    const char *verb = a->npos >= 2 ? a->pos[1] : "";
    if (!strcmp(verb, "create")) {
        const char *name = cli_get(a, "name");
        if (!name)
            return cli_usage_error(a->cmd, "apikey create needs --name");
        json_t *groups = split_groups(cli_get(a, "groups"));
        if (cli_get(a, "store")) {
            if (store_url_check(cli_get(a, "store"), err, sizeof err) < 0) {
                json_decref(groups);
                return cli_usage_error(a->cmd, err);
            }
            rc = apikey_create_local(cli_get(a, "store"), name, groups, ctx);
            json_decref(groups);
            return rc;
        }
        json_t *body = json_pack("{s:s,s:o}", "name", name, "groups", groups);
        rc = api_do(api, "POST", "/api/v1/admin/apikeys", body, &resp, err, sizeof err);
        json_decref(body);
        if (rc)
            return cli_fail("admin", rc, err);
        if (!strcmp(ctx->output, "json"))
            api_print_json(stdout, resp);
        else {
            printf("%s\n", json_string_value(json_object_get(resp, "token")));
            fprintf(stderr, "hoopctl admin: this is the only time the key is shown; keep it safe\n");
        }
        json_decref(resp);
        return 0;
    }
    if (!strcmp(verb, "list")) {
        if ((rc = api_do(api, "GET", "/api/v1/admin/apikeys", NULL, &resp, err, sizeof err)))
            return cli_fail("admin", rc, err);
        json_t *keys = json_object_get(resp, "apikeys");
        if (!strcmp(ctx->output, "json"))
            api_print_json(stdout, keys);
        else {
            printf("%-36s %-20s %-8s %s\n", "ID", "NAME", "REVOKED", "GROUPS");
            size_t i;
            json_t *k;
            json_array_foreach(keys, i, k) {
                printf("%-36s %-20s %-8s ", cli_safe(json_string_value(json_object_get(k, "id"))),
                       cli_safe(json_string_value(json_object_get(k, "name"))),
                       json_is_true(json_object_get(k, "revoked")) ? "yes" : "no");
                print_groups(json_object_get(k, "groups"));
                printf("\n");
            }
        }
        json_decref(resp);
        return 0;
    }
    if (!strcmp(verb, "revoke") && a->npos >= 3) {
        api_escape(a->pos[2], esc, sizeof esc);
        snprintf(path, sizeof path, "/api/v1/admin/apikeys/%s", esc);
        if ((rc = api_do(api, "DELETE", path, NULL, &resp, err, sizeof err)))
            return cli_fail("admin", rc, err);
        json_decref(resp);
        printf("API key %s revoked\n", a->pos[2]);
        return 0;
    }
    return cli_usage_error(a->cmd, "apikey takes create, list or revoke ID");
}

/* admin apply -f FILE: {"connections": [{name, host, ..., secret_env | secret_file}]} */
static int admin_apply(const struct cli_args *a, struct api_client *api)
{
    const char *file = cli_get(a, "file");
    if (!file)
        return cli_usage_error(a->cmd, "apply needs -f FILE");
    char err[600];
    json_t *doc = load_json_file(file, err, sizeof err);
    if (!doc)
        return cli_fail("admin", 1, err);
    json_t *conns = json_object_get(doc, "connections");
    const char *k;
    json_t *v;
    json_object_foreach(doc, k, v) if (strcmp(k, "connections") != 0) {
        fprintf(stderr, "hoopctl admin: %s: unknown key '%s' (only \"connections\")\n", file, k);
        json_decref(doc);
        return 1;
    }
    if (!json_is_array(conns)) {
        json_decref(doc);
        return cli_fail("admin", 1, "the file needs a \"connections\" array");
    }
    size_t i;
    json_t *c;
    int rc = 0, applied = 0;
    json_array_foreach(conns, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        if (!json_is_object(c) || !name) {
            fprintf(stderr, "hoopctl admin: %s: connection %zu has no name\n", file, i);
            rc = 1;
            break;
        }
        if (json_object_get(c, "secret")) {
            fprintf(stderr, "hoopctl admin: %s: connection %s holds a plain secret; use secret_env or "
                            "secret_file\n", file, name);
            rc = 1;
            break;
        }
        json_t *body = json_deep_copy(c);
        const char *se = json_string_value(json_object_get(c, "secret_env"));
        const char *sf = json_string_value(json_object_get(c, "secret_file"));
        json_object_del(body, "secret_env");
        json_object_del(body, "secret_file");
        char *secret = read_secret(sf, se, false, err, sizeof err);
        if (!secret && err[0]) {
            json_decref(body);
            fprintf(stderr, "hoopctl admin: %s: %s\n", name, err);
            rc = 1;
            break;
        }
        if (secret) {
            json_object_set_new(body, "secret", json_string(secret));
            util_secure_zero(secret, strlen(secret));
            free(secret);
        }
        char path[256], esc[200];
        api_escape(name, esc, sizeof esc);
        snprintf(path, sizeof path, "/api/v1/connections/%s", esc);
        json_t *resp = NULL;
        rc = api_do(api, "PUT", path, body, &resp, err, sizeof err);
        json_decref(body);
        print_warnings(name, resp);
        json_decref(resp);
        if (rc) {
            fprintf(stderr, "hoopctl admin: %s: %s\n", name, err);
            break;
        }
        applied++;
        printf("connection %s applied\n", name);
    }
    json_decref(doc);
    if (!rc)
        printf("%d connection(s) applied\n", applied);
    return rc;
}

static int admin_run(const struct cli_args *a, struct cli_context *ctx)
{
    const char *what = a->pos[0];
    bool local = !strcmp(what, "apikey") && a->npos >= 2 && !strcmp(a->pos[1], "create") && cli_get(a, "store");
    struct api_client api;
    char err[600];
    int irc = local ? 0 : api_client_init(&api, cli_get(a, "server"), err, sizeof err);
    if (irc)
        return cli_fail("admin", irc, err);
    int rc;
    if (!strcmp(what, "connection"))
        rc = admin_connection(a, ctx, &api);
    else if (!strcmp(what, "apikey"))
        rc = admin_apikey(a, ctx, &api);
    else if (!strcmp(what, "apply"))
        rc = admin_apply(a, &api);
    else
        rc = cli_usage_error(a->cmd, "admin takes connection, apikey or apply");
    if (!local)
        api_client_free(&api);
    return rc;
}

static const struct cli_option admin_options[] = {
    {"host", 0, "HOST", "upstream PostgreSQL host", CLI_COMPLETE_NONE, NULL},
    {"port", 0, "PORT", "upstream port (default 5432)", CLI_COMPLETE_NONE, NULL},
    {"database", 0, "DB", "upstream database", CLI_COMPLETE_NONE, NULL},
    {"user", 0, "USER", "upstream user", CLI_COMPLETE_NONE, NULL},
    {"sslmode", 0, "MODE", "upstream sslmode (default verify-full)", CLI_COMPLETE_WORDS,
     "disable prefer require verify-ca verify-full"},
    {"allowed-groups", 0, "G,G", "groups that may use the connection", CLI_COMPLETE_NONE, NULL},
    {"reviewer-groups", 0, "G,G", "groups that decide its reviews", CLI_COMPLETE_NONE, NULL},
    {"policy-file", 0, "FILE", "policy JSON object", CLI_COMPLETE_FILE, NULL},
    {"secret-file", 0, "FILE", "read the upstream password from FILE", CLI_COMPLETE_FILE, NULL},
    {"secret-env", 0, "VAR", "read the upstream password from environment variable VAR",
     CLI_COMPLETE_NONE, NULL},
    {"secret-prompt", 0, NULL, "prompt for the upstream password with echo off", CLI_COMPLETE_NONE, NULL},
    {"name", 0, "NAME", "API key name", CLI_COMPLETE_NONE, NULL},
    {"groups", 0, "G,G", "API key groups", CLI_COMPLETE_NONE, NULL},
    {"file", 'f', "FILE", "declarative file for apply", CLI_COMPLETE_FILE, NULL},
    {"store", 0, "URL", "apikey create straight into a store (bootstrap)", CLI_COMPLETE_NONE, NULL},
    CLI_OPTION_SERVER,
    {0},
};

static const struct cli_verb_complete admin_verb_complete[] = {
    {"connection", CLI_COMPLETE_WORDS, "add list show rm set-policy"},
    {"apikey", CLI_COMPLETE_WORDS, "create list revoke"},
    {"apply", CLI_COMPLETE_NONE, NULL},
    {0},
};

const struct cli_command cli_cmd_admin = {
    .name = "admin",
    .summary = "Manage connections, API keys and declarative config on the server",
    .usage = "connection add|list|show|rm|set-policy [NAME] [options] | apikey create|list|revoke | apply -f FILE",
    .description = "Admin operations through the server API. Changes and API keys need the admin group;\n"
                   "connection list and show do not (non-admins see the connections they may use or\n"
                   "review). Secrets are read from --secret-file, --secret-env or --secret-prompt,\n"
                   "never from the command line.",
    .options = admin_options,
    .arg_complete = CLI_COMPLETE_WORDS,
    .arg_words = "connection apikey apply",
    .verb_complete = admin_verb_complete,
    .min_args = 1,
    .max_args = 3,
    .run = admin_run,
};
