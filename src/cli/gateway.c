/* gateway.c — `hoopctl gateway`: run the wire-protocol gateway on its own
 * (offline mode) in front of one upstream PostgreSQL, optionally writing a
 * minimal JSON-lines audit of every client statement. */
#include "hoopctl/cli.h"
#include "hoopctl/config.h"
#include "hoopctl/gateway.h"
#include "hoopctl/log.h"

#include <errno.h>
#include <event2/event.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gateway_cli {
    FILE *audit;
    struct event_base *base;
    struct gateway *gw;
};

/* Standard base64 of len bytes, NUL-terminated (malloc'd; NULL when out of memory). */
static char *audit_base64(const uint8_t *data, size_t len)
{
    if (len > (size_t)INT32_MAX / 2)
        return NULL;
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (out)
        EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

/* Text from the client as JSON, losslessly: a string when it is valid UTF-8
 * (PostgreSQL's client_encoding may be LATIN1 and others), else an object
 * {"b64": base64 of the bytes}. NULL only when memory runs out. */
static json_t *audit_text(const void *data, size_t len)
{
    json_t *v = json_stringn(data, len); /* NULL for invalid UTF-8 */
    if (v)
        return v;
    char *b64 = audit_base64(data, len);
    v = b64 ? json_pack("{s:s}", "b64", b64) : NULL;
    free(b64);
    return v;
}

/* Set key to a string when s is valid UTF-8; otherwise key is null and
 * key_b64 holds the bytes in base64 (so nothing the client sent is lost). */
static void audit_set_text(json_t *o, const char *key, const char *s)
{
    json_t *v = json_string(s);
    if (v) {
        json_object_set_new(o, key, v);
        return;
    }
    char name[64], *b64 = audit_base64((const uint8_t *)s, strlen(s));
    snprintf(name, sizeof name, "%s_b64", key);
    json_object_set_new(o, key, json_null());
    if (b64)
        json_object_set_new(o, name, json_string(b64));
    free(b64);
}

static void audit_line(struct gateway_cli *c, const char *event,
                       const struct gateway_session_info *si, json_t *extra)
{
    char ts[40];
    util_iso8601_ms(util_now_ms(), ts, sizeof ts);
    json_t *o = json_pack("{s:s, s:s, s:I}", "time", ts, "event", event, "session", (json_int_t)si->id);
    if (o) {
        audit_set_text(o, "user", si->client_user);
        audit_set_text(o, "database", si->client_database);
        audit_set_text(o, "application_name", si->application_name);
        audit_set_text(o, "client", si->client_addr);
    }
    if (o && extra)
        json_object_update(o, extra);
    char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (line) {
        fprintf(c->audit, "%s\n", line);
        fflush(c->audit);
    } else {
        log_error("gateway", "session %llu: cannot write an audit line (out of memory)",
                  (unsigned long long)si->id);
    }
    free(line);
    json_decref(o);
    json_decref(extra);
}

static void audit_session_start(void *user, const struct gateway_session_info *si)
{
    audit_line(user, "session_start", si, json_pack("{s:I}", "backend_pid", (json_int_t)si->backend_pid));
}

static void audit_session_end(void *user, const struct gateway_session_info *si)
{
    audit_line(user, "session_end", si, NULL);
}

static enum gateway_verdict audit_statement(void *user, const struct gateway_session_info *si,
                                            const struct gateway_statement *st, uint64_t hold_id,
                                            struct gateway_refusal *refusal)
{
    (void)hold_id;
    (void)refusal;
    static const char *const kinds[] = {"query", "execute", "function_call"};
    json_t *params = json_array();
    for (int i = 0; params && i < st->nparams; i++) {
        if (!st->param_values[i])
            json_array_append_new(params, json_null());
        else if (st->param_formats && st->param_formats[i] == 1) {
            char *hex = malloc((size_t)st->param_lengths[i] * 2 + 4);
            if (hex) {
                memcpy(hex, "\\x", 2);
                util_hex_encode(st->param_values[i], (size_t)st->param_lengths[i], hex + 2);
                json_array_append_new(params, json_string(hex));
            }
            free(hex);
        } else {
            json_array_append_new(params, audit_text(st->param_values[i], (size_t)st->param_lengths[i]));
        }
    }
    json_t *extra = json_pack("{s:s, s:o?}", "kind", kinds[st->kind], "params", params);
    if (extra) {
        if (st->sql)
            audit_set_text(extra, "sql", st->sql);
        else
            json_object_set_new(extra, "sql", json_null());
        if (st->portal_name)
            audit_set_text(extra, "portal", st->portal_name);
    }
    audit_line(user, "statement", si, extra);
    return GATEWAY_ALLOW;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct gateway_cli *c = arg;
    log_info("gateway", "signal %d: closing sessions", (int)sig);
    gateway_shutdown(c->gw);
    struct timeval tv = {0, 200000};
    event_base_loopexit(c->base, &tv);
}

static int read_password_file(const char *path, char **out)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[1024];
    if (!fgets(line, sizeof line, f)) {
        fclose(f);
        return -1;
    }
    fclose(f);
    line[strcspn(line, "\r\n")] = 0;
    *out = strdup(line);
    util_secure_zero(line, sizeof line);
    return *out ? 0 : -1;
}

static int gateway_run(const struct cli_args *args, struct cli_context *ctx)
{
    (void)ctx;
    struct gateway_config cfg = {0};
    char err[512];
    const char *listen = cli_get(args, "listen");
    const char *upstream = cli_get(args, "upstream");
    if (!listen || !upstream)
        return cli_usage_error(args->cmd, "--listen and --upstream are required");
    char host[128];
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof host)
        return cli_usage_error(args->cmd, "--listen takes HOST:PORT, e.g. 127.0.0.1:6432");
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = 0;
    cfg.listen_host = host;
    cfg.listen_port = colon + 1;
    if (pgwire_conninfo_parse(upstream, &cfg.upstream, err, sizeof err) < 0)
        return cli_usage_error(args->cmd, err);
    const char *maxs = cli_get(args, "max-message-size");
    if (maxs) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(maxs, &end, 10);
        if (errno || *end || v < 1024 || v > PGWIRE_DEFAULT_MAX_MESSAGE)
            return cli_usage_error(args->cmd, "--max-message-size takes bytes, 1024 to 1073741824");
        cfg.max_message_size = (size_t)v;
    }
    cfg.tls_cert_file = cli_get(args, "tls-cert");
    cfg.tls_key_file = cli_get(args, "tls-key");
    if (!cfg.tls_cert_file != !cfg.tls_key_file)
        return cli_usage_error(args->cmd, "--tls-cert and --tls-key go together");

    char *password = NULL;
    const char *pwfile = cli_get(args, "upstream-password-file");
    if (pwfile) {
        if (read_password_file(pwfile, &password) < 0) {
            fprintf(stderr, "hoopctl gateway: cannot read the password file %s\n", pwfile);
            return CLI_EXIT_FAILURE;
        }
    } else if (getenv("HOOPCTL_UPSTREAM_PASSWORD") && *getenv("HOOPCTL_UPSTREAM_PASSWORD")) {
        password = strdup(getenv("HOOPCTL_UPSTREAM_PASSWORD"));
    }
    cfg.upstream_password = password;

    /* A password for this run only: made here, handed out once, never logged. */
    char client_password[GATEWAY_PASSWORD_LEN + 2];
    const char *client_pwfile = cli_get(args, "client-password-file");
    if (client_pwfile) {
        if (gateway_password_generate(client_password) < 0) {
            fprintf(stderr, "hoopctl gateway: cannot generate a password (no randomness)\n");
            free(password);
            return CLI_EXIT_FAILURE;
        }
        cfg.client_password = client_password;
    }

    struct gateway_cli c = {0};
    const char *audit = cli_get(args, "audit-log");
    if (audit) {
        c.audit = fopen(audit, "a");
        if (!c.audit) {
            fprintf(stderr, "hoopctl gateway: cannot open the audit log %s: %s\n", audit, strerror(errno));
            free(password);
            return CLI_EXIT_FAILURE;
        }
        cfg.hooks.user = &c;
        cfg.hooks.session_start = audit_session_start;
        cfg.hooks.session_end = audit_session_end;
        cfg.hooks.statement = audit_statement;
    }
    int rc = CLI_EXIT_OK;
    c.base = event_base_new();
    c.gw = c.base ? gateway_new(c.base, &cfg, err, sizeof err) : NULL;
    if (password) {
        util_secure_zero(password, strlen(password));
        free(password);
    }
    if (!c.gw) {
        fprintf(stderr, "hoopctl gateway: %s\n", c.base ? err : "cannot create the event loop");
        rc = CLI_EXIT_FAILURE;
        goto out;
    }
    if (client_pwfile) {
        int wrc = 0;
        if (strcmp(client_pwfile, "-") == 0) {
            printf("%s\n", client_password);
            wrc = fflush(stdout) == 0 ? 0 : -1;
        } else {
            size_t n = strlen(client_password);
            client_password[n] = '\n';
            wrc = config_write_atomic(client_pwfile, client_password, n + 1, 0600);
        }
        util_secure_zero(client_password, sizeof client_password);
        if (wrc < 0) {
            fprintf(stderr, "hoopctl gateway: cannot write the client password to %s\n", client_pwfile);
            rc = CLI_EXIT_FAILURE;
            goto out;
        }
        fprintf(stderr, "hoopctl gateway: clients must log in with the password made for this run (%s)\n",
                strcmp(client_pwfile, "-") == 0 ? "printed on standard output" : client_pwfile);
    }
    struct event *sigint = evsignal_new(c.base, SIGINT, on_signal, &c);
    struct event *sigterm = evsignal_new(c.base, SIGTERM, on_signal, &c);
    event_add(sigint, NULL);
    event_add(sigterm, NULL);
    fprintf(stderr, "hoopctl gateway: listening on %s\n", gateway_listen_address(c.gw));
    event_base_dispatch(c.base);
    event_free(sigint);
    event_free(sigterm);
out:
    util_secure_zero(client_password, sizeof client_password);
    gateway_free(c.gw);
    if (c.base)
        event_base_free(c.base);
    if (c.audit)
        fclose(c.audit);
    return rc;
}

static const struct cli_option gateway_options[] = {
    {"listen", 0, "HOST:PORT", "loopback address to accept clients on", CLI_COMPLETE_NONE, NULL},
    {"upstream", 0, "CONNINFO", "upstream 'host=H port=P dbname=D user=U sslmode=M sslrootcert=F'",
     CLI_COMPLETE_NONE, NULL},
    {"upstream-password-file", 0, "FILE", "file holding the upstream password (first line)",
     CLI_COMPLETE_FILE, NULL},
    {"tls-cert", 0, "FILE", "certificate for TLS to clients (with --tls-key)", CLI_COMPLETE_FILE, NULL},
    {"tls-key", 0, "FILE", "private key for TLS to clients", CLI_COMPLETE_FILE, NULL},
    {"max-message-size", 0, "BYTES", "largest protocol message accepted (default 1 GiB)",
     CLI_COMPLETE_NONE, NULL},
    {"client-password-file", 0, "FILE",
     "make a password for this run, write it to FILE ('-': stdout) and require it from clients",
     CLI_COMPLETE_FILE, NULL},
    {"audit-log", 0, "FILE", "append one JSON line per session event and statement", CLI_COMPLETE_FILE, NULL},
    {0},
};

const struct cli_command cli_cmd_gateway = {
    .name = "gateway",
    .summary = "Run the PostgreSQL wire-protocol gateway on its own (offline mode)",
    .usage = "--listen HOST:PORT --upstream CONNINFO [options]",
    .description = "Relays PostgreSQL clients on a loopback port to one upstream server. The upstream\n"
                   "password comes from --upstream-password-file or HOOPCTL_UPSTREAM_PASSWORD.\n"
                   "Clients are trusted unless --client-password-file makes a password for the run.",
    .options = gateway_options,
    .min_args = 0,
    .max_args = 0,
    .run = gateway_run,
};
