/* server.c — `hoopctl server`: read the server config, pick the listen address,
 * store and master key, build the verifier chain and run the API server. */
#include "hoopctl/cli.h"
#include "hoopctl/config.h"
#include "hoopctl/devidp.h"
#include "hoopctl/identity.h"
#include "hoopctl/log.h"
#include "hoopctl/server.h"
#include "hoopctl/store.h"
#include "hoopctl/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* "90d", "12h", "30m", "45s" -> ms; -1 when malformed or past 1000 years. */
static int64_t parse_duration_ms(const char *s)
{
    int64_t ms;
    return util_parse_age_ms(s, &ms) == 0 ? ms : -1;
}

/* Every key of the server's configuration file (hoopctl-server(8)). */
static const struct config_key server_keys[] = {
    {"listen", 's'}, {"store", 's'}, {"master_key_file", 's'}, {"tls.cert", 's'}, {"tls.key", 's'},
    {"auth.issuer", 's'}, {"auth.audience", 's'}, {"auth.client_id", 's'}, {"auth.scopes", 's'},
    {"auth.groups_claim", 's'}, {"auth.jwks_uri", 's'}, {"auth.jwks_refetch_seconds", 'i'},
    {"auth.dev_tokens", 'o'}, {"rbac.admin_group", 's'}, {"rbac.auditor_group", 's'},
    {"limits.max_body_bytes", 'i'}, {"limits.max_string_bytes", 'i'}, {"limits.max_batch_events", 'i'},
    {"limits.max_connections", 'i'}, {"limits.max_unhandled_bytes", 'i'}, {"limits.max_connections_per_client", 'i'},
    {"limits.max_unhandled_bytes_per_client", 'i'}, {"audit.retention", 's'}, {"audit.webhook_url", 's'},
    {"audit.sample_rows_per_statement", 'i'}, {"audit.sample_rows_per_session", 'i'}, {"reviews.ttl_seconds", 'i'},
    {"reviews.max_pending_per_user", 'i'}, {"dev.users", 'o'}, {"dev.access_ttl", 'i'}, {"dev.device_ttl", 'i'},
    {"dev.idp_port", 'i'}, {NULL, 0}};

static const char *pick(const struct cli_args *a, const char *opt, json_t *cfg, const char *key)
{
    const char *v = cli_get(a, opt);
    return v ? v : config_get_string(cfg, key);
}

/* ---- dev mode: the built-in identity provider ---------------------------- */

/* `hoopctl server dev-approve CODE --as USER [--deny]`: decide a pending
 * login at the dev IdP of the server, found through its auth config. */
static int server_dev_approve(const struct cli_args *args)
{
    if (args->npos != 2)
        return cli_usage_error(args->cmd, "dev-approve takes the user code shown by hoopctl login");
    const char *user = cli_get(args, "as");
    if (!user || !user[0])
        return cli_usage_error(args->cmd, "dev-approve needs --as USER (a dev user, e.g. alice)");
    const char *server = cli_get(args, "server");
    if (!server)
        server = getenv("HOOPCTL_SERVER_URL");
    if (!server || !server[0])
        server = "http://127.0.0.1:8780";
    char err[700];
    struct identity_login_config lc;
    if (identity_fetch_server_config(server, &lc, err, sizeof err) < 0) {
        fprintf(stderr, "hoopctl server dev-approve: %s\n", err);
        return CLI_EXIT_UNAVAILABLE;
    }
    bool approve = !cli_flag(args, "deny");
    if (devidp_decide(lc.issuer, args->pos[1], user, approve, err, sizeof err) < 0) {
        fprintf(stderr, "hoopctl server dev-approve: %s\n", err);
        return CLI_EXIT_FAILURE;
    }
    printf("login %s %s as %s\n", args->pos[1], approve ? "approved" : "denied", user);
    return CLI_EXIT_OK;
}

/* The host part of "HOST:PORT" / "[::1]:PORT". */
static void listen_host(const char *listen, char *out, size_t len)
{
    const char *colon = strrchr(listen, ':');
    size_t n = colon ? (size_t)(colon - listen) : strlen(listen);
    if (listen[0] == '[' && n >= 2) {
        listen++;
        n -= 2;
    }
    snprintf(out, len, "%.*s", (int)(n < len ? n : len - 1), listen);
}

static void cfg_set(json_t *cfg, const char *section, const char *key, const char *value)
{
    json_t *s = json_object_get(cfg, section);
    if (!json_is_object(s)) {
        s = json_object();
        json_object_set_new(cfg, section, s);
    }
    json_object_set_new(s, key, json_string(value));
}



/* Where --dev remembers its provider's port: next to a SQLite database
 * ("<path>.dev-idp-port"), else (PostgreSQL) in <state>/dev under a hash of
 * the store URL. The issuer holds the port, and a login is an issuer and a
 * subject: the same port is the same users for the sessions, reviews and
 * spools of that store. 0, or -1 when there is no place for it. */
static int dev_port_file(const char *store_url, char *out, size_t len)
{
    if (strncmp(store_url, "sqlite:", 7) == 0) {
        const char *path = store_url + 7;
        int plen = (int)strcspn(path, "?");
        if (plen == 8 && strncmp(path, ":memory:", 8) == 0)
            return -1; /* a store that is not kept: nor is the port */
        if (strncmp(path, "file:", 5) != 0) { /* a SQLite URI goes by its hash below */
            int n = snprintf(out, len, "%.*s.dev-idp-port", plen, path);
            return n > 0 && (size_t)n < len ? 0 : -1;
        }
    }
    char dir[1024], hash[65];
    if (config_state_dir(dir, sizeof dir) < 0 || strlen(dir) > 900 ||
        (strcat(dir, "/dev"), config_mkdirs(dir, 0700) < 0))
        return -1;
    util_sha256_hex(store_url, strlen(store_url), hash);
    int n = snprintf(out, len, "%s/idp-port-%.16s", dir, hash);
    return n > 0 && (size_t)n < len ? 0 : -1;
}

/* The port remembered in path, or 0 (none, or not a port). */
/* The remembered port: 0 when there is none yet, -1 when the file is there
 * but unreadable or holds no port (1..65535, blanks after it allowed). */
static int dev_port_read(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[16] = "";
    if (!f)
        return errno == ENOENT ? 0 : -1;
    bool got = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    char *end;
    long v = got && line[0] >= '0' && line[0] <= '9' ? strtol(line, &end, 10) : 0;
    if (!v)
        return -1;
    while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
        end++;
    return !*end && v > 0 && v < 65536 ? (int)v : -1;
}

/* Start the dev IdP on a port that stays the same across restarts on the
 * same store (dev.idp_port when configured, and no fallback then): the one
 * remembered when it is free, else a free one, remembered for the next
 * start. A remembered port that is taken gets a warning, as the issuer and
 * so everyone's identity change. NULL with err. */
static struct devidp *dev_idp_start(struct devidp_options *o, const char *store_url, char *err, size_t errlen)
{
    char path[1200];
    if (o->port || dev_port_file(store_url, path, sizeof path) < 0)
        return devidp_start(o, err, errlen);
    int was = dev_port_read(path);
    if (was < 0) {
        fprintf(stderr, "hoopctl server: warning: --dev: %s holds no port (1..65535); the identity provider takes "
                        "another and keeps that one there, so its issuer changes: earlier logins, sessions and "
                        "reviews are those of other users, and everyone must log in again\n",
                path);
        was = 0;
    }
    o->port = was;
    struct devidp *idp = devidp_start(o, err, errlen);
    if (!idp && was) {
        fprintf(stderr, "hoopctl server: warning: --dev: the identity provider's port %d (kept in %s) cannot be "
                        "used (%s); it takes another, so its issuer changes: earlier logins, sessions and reviews "
                        "are those of other users, and everyone must log in again (free port %d and restart to "
                        "keep the old issuer)\n",
                was, path, err, was);
        o->port = 0;
        idp = devidp_start(o, err, errlen);
    }
    if (idp && devidp_port(idp) != was) {
        char text[16];
        int n = snprintf(text, sizeof text, "%d\n", devidp_port(idp));
        if (config_write_atomic(path, text, (size_t)n, 0600) < 0)
            fprintf(stderr, "hoopctl server: warning: --dev: cannot write %s (%s): the identity provider's port, "
                            "and so its issuer, will change at the next start\n", path, strerror(errno));
    }
    return idp;
}

/* --dev: check the address, start the IdP, point auth.* at it, and pick a
 * store and master key in <state>/dev unless given. 0, or an exit code. */
static int server_dev_setup(const struct cli_args *args, json_t *cfg, struct server_options *opt,
                            struct devidp **idp, char *store, size_t storelen, char *keyfile,
                            size_t keylen)
{
    if (!server_listen_is_loopback(opt->listen)) {
        fprintf(stderr, "hoopctl server: --dev is for development on this machine only; it listens on "
                        "loopback (127.0.0.1, [::1] or localhost), not on %s\n", opt->listen);
        return CLI_EXIT_USAGE;
    }
    if (config_get_string(cfg, "auth.issuer")) {
        fprintf(stderr, "hoopctl server: --dev brings its own identity provider; remove auth.issuer from "
                        "the config (or drop --dev)\n");
        return CLI_EXIT_USAGE;
    }
    char dir[1024], err[512];
    /* dev.*: 0 lets the provider pick its default. */
    int64_t idp_port, access_ttl, device_ttl;
    if (server_config_count(cfg, "dev", "idp_port", 0, 1, 65535, &idp_port, err, sizeof err) < 0 ||
        server_config_count(cfg, "dev", "access_ttl", 0, 1, 86400, &access_ttl, err, sizeof err) < 0 ||
        server_config_count(cfg, "dev", "device_ttl", 0, 1, 86400, &device_ttl, err, sizeof err) < 0) {
        fprintf(stderr, "hoopctl server: %s\n", err);
        return CLI_EXIT_FAILURE;
    }
    /* A master key given is used; only a missing one is made under dev/. */
    bool own_key = pick(args, "master-key-file", cfg, "master_key_file") != NULL;
    if (!opt->store_url || !own_key) {
        if (config_state_dir(dir, sizeof dir) < 0 || strlen(dir) > 900 ||
            (strcat(dir, "/dev"), config_mkdirs(dir, 0700) < 0)) {
            fprintf(stderr, "hoopctl server: no state directory for --dev; give --store\n");
            return CLI_EXIT_FAILURE;
        }
        if (!opt->store_url) {
            snprintf(store, storelen, "sqlite:%s/server.db", dir);
            opt->store_url = store;
        }
        if (!own_key)
            snprintf(keyfile, keylen, "%s/master.key", dir);
    }
    char host[256];
    listen_host(opt->listen, host, sizeof host);
    struct devidp_options o = {.host = host,
                               .port = (int)idp_port,
                               .client_id = "hoopctl",
                               .audience = "hoopctl-dev",
                               .users = json_object_get(json_object_get(cfg, "dev"), "users"),
                               .access_ttl = (int)access_ttl,
                               .device_ttl = (int)device_ttl};
    *idp = dev_idp_start(&o, opt->store_url, err, sizeof err);
    if (!*idp) {
        fprintf(stderr, "hoopctl server: --dev: %s\n", err);
        return CLI_EXIT_FAILURE;
    }
    cfg_set(cfg, "auth", "issuer", devidp_issuer(*idp));
    cfg_set(cfg, "auth", "audience", "hoopctl-dev");
    cfg_set(cfg, "auth", "client_id", "hoopctl");
    cfg_set(cfg, "auth", "scopes", "openid email profile groups offline_access");
    return 0;
}

/* A master key for --dev made on first use: 32 random bytes, mode 0600. */
static int server_dev_master_key(const char *path, unsigned char key[32], char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        unsigned char fresh[32];
        if (util_random_bytes(fresh, sizeof fresh) < 0 ||
            config_write_atomic(path, fresh, sizeof fresh, 0600) < 0) {
            util_secure_zero(fresh, sizeof fresh);
            snprintf(err, errlen, "cannot write the dev master key %.400s", path);
            return -1;
        }
        util_secure_zero(fresh, sizeof fresh);
    }
    return server_master_key_load(path, key, err, errlen);
}

/* Printed once the server is bound (a port in use fails first, without
 * telling anyone to log in to it). */
static void server_dev_banner(const struct devidp *idp, const struct server_options *opt, const char *url)
{
    char users[600], store[1024];
    devidp_describe_users(idp, users, sizeof users);
    store_url_display(opt->store_url, store, sizeof store);
    fprintf(stderr,
            "hoopctl server --dev: FOR DEVELOPMENT ONLY. Built-in identity provider at %s\n"
            "  dev users: %s\n"
            "  store: %s\n"
            "Next, in another terminal:\n"
            "  hoopctl login --server %s\n"
            "  hoopctl server dev-approve --server %s CODE --as alice   (or open the page it shows)\n",
            devidp_issuer(idp), users, store, url, url);
}

struct dev_banner_arg {
    const struct devidp *idp;
    const struct server_options *opt;
};

static void server_dev_on_listening(void *arg, const char *url)
{
    const struct dev_banner_arg *b = arg;
    server_dev_banner(b->idp, b->opt, url);
}

static int server_cmd_run(const struct cli_args *args, struct cli_context *ctx)
{
    (void)ctx;
    char err[512];
    if (args->npos > 0) {
        if (strcmp(args->pos[0], "dev-approve") != 0)
            return cli_usage_error(args->cmd, "the only subcommand is dev-approve");
        return server_dev_approve(args);
    }
    const char *cfgpath = cli_get(args, "config");
    json_t *cfg = json_object();
    if (cfgpath) {
        json_decref(cfg);
        cfg = config_load(cfgpath, 0, err, sizeof err);
        if (!cfg) {
            fprintf(stderr, "hoopctl server: %s\n", err);
            return CLI_EXIT_FAILURE;
        }
    }
    /* A misspelt or mistyped key must not quietly become its default (a
     * "tls.cert_file" served plain HTTP, a "store" object a fresh store). */
    if (config_check_keys(cfg, server_keys, cfgpath ? cfgpath : "the configuration", 1, 0, err, sizeof err) < 0) {
        fprintf(stderr, "hoopctl server: %s\n", err);
        json_decref(cfg);
        return CLI_EXIT_FAILURE;
    }
    struct server_options opt = {.config = cfg};
    char dflt_store[1100];
    opt.listen = pick(args, "listen", cfg, "listen");
    if (!opt.listen)
        opt.listen = "127.0.0.1:8780";
    opt.store_url = pick(args, "store", cfg, "store");
    if (opt.store_url && store_url_check(opt.store_url, err, sizeof err) < 0) {
        json_decref(cfg);
        return cli_usage_error(args->cmd, err);
    }
    struct devidp *idp = NULL;
    char dev_store[1100], dev_key[1100] = "";
    if (cli_flag(args, "dev")) {
        int drc = server_dev_setup(args, cfg, &opt, &idp, dev_store, sizeof dev_store, dev_key, sizeof dev_key);
        if (drc) {
            json_decref(cfg);
            return drc;
        }
    }
    if (!opt.store_url) {
        char dir[1024];
        if (config_state_dir(dir, sizeof dir) < 0 || config_mkdirs(dir, 0700) < 0) {
            fprintf(stderr, "hoopctl server: no state directory; give --store\n");
            json_decref(cfg);
            return CLI_EXIT_FAILURE;
        }
        snprintf(dflt_store, sizeof dflt_store, "sqlite:%s/server.db", dir);
        opt.store_url = dflt_store;
    }
    opt.tls_cert = pick(args, "tls-cert", cfg, "tls.cert");
    opt.tls_key = pick(args, "tls-key", cfg, "tls.key");
    const char *ret = pick(args, "retention", cfg, "audit.retention");
    if (ret && (opt.retention_ms = parse_duration_ms(ret)) < 0) {
        devidp_stop(idp);
        json_decref(cfg);
        return cli_usage_error(args->cmd, cli_get(args, "retention")
                                              ? "--retention takes a duration like 90d, 12h, 30m or 45s, up to "
                                                "1000 years"
                                              : "audit.retention in the configuration takes a duration like 90d, "
                                                "12h, 30m or 45s, up to 1000 years");
    }
    err[0] = '\0';
    int mk = dev_key[0] && !getenv("HOOPCTL_MASTER_KEY")
                 ? server_dev_master_key(dev_key, opt.master_key, err, sizeof err)
                 : server_master_key_load(pick(args, "master-key-file", cfg, "master_key_file"),
                                          opt.master_key, err, sizeof err);
    if (mk < 0) {
        fprintf(stderr, "hoopctl server: %s\n", err);
        devidp_stop(idp);
        json_decref(cfg);
        return CLI_EXIT_FAILURE;
    }
    opt.have_master_key = mk == 1;
    if (opt.have_master_key && err[0]) /* loaded, with a warning */
        log_warn("server", "%s: it unlocks every connection secret; chmod 600 it", err);
    if (!opt.have_master_key)
        log_warn("server", "no master key (--master-key-file or HOOPCTL_MASTER_KEY): connection "
                           "secrets cannot be stored");
    /* OpenID Connect tokens: the JWT verifier of src/identity, after API keys
     * and dev tokens. Its JWKS fetches run on a thread; a request waits for
     * one at most 250 ms (the loop is stalled no longer, whatever the issuer
     * does) and is answered 503 with Retry-After after that. */
    struct auth_verifier oidc = {0};
    const char *issuer = config_get_string(cfg, "auth.issuer");
    if (issuer) {
        const char *audience = config_get_string(cfg, "auth.audience");
        if (!audience) {
            fprintf(stderr, "hoopctl server: auth.issuer needs auth.audience\n");
            devidp_stop(idp);
            json_decref(cfg);
            return CLI_EXIT_FAILURE;
        }
        json_t *refetch = json_object_get(json_object_get(cfg, "auth"), "jwks_refetch_seconds");
        if (refetch && (!json_is_integer(refetch) || json_integer_value(refetch) < 1 ||
                        json_integer_value(refetch) > 86400)) {
            fprintf(stderr, "hoopctl server: auth.jwks_refetch_seconds must be a whole number of seconds, "
                            "1 to 86400\n");
            devidp_stop(idp);
            json_decref(cfg);
            return CLI_EXIT_FAILURE;
        }
        struct identity_jwt_config jc = {.issuer = issuer,
                                         .refetch_interval = refetch ? (int)json_integer_value(refetch) : 0,
                                         .audience = audience,
                                         .jwks_uri = config_get_string(cfg, "auth.jwks_uri"),
                                         .groups_claim = config_get_string(cfg, "auth.groups_claim"),
                                         .fetch_wait_ms = 250};
        if (identity_jwt_verifier_new(&jc, &oidc, err, sizeof err) < 0) {
            fprintf(stderr, "hoopctl server: auth: %s\n", err);
            devidp_stop(idp);
            json_decref(cfg);
            return CLI_EXIT_FAILURE;
        }
        opt.verifiers[opt.nverifiers++] = &oidc;
    }
    if (log_get_level() < LOG_INFO && !ctx->debug)
        log_set_level(LOG_WARN);
    struct dev_banner_arg banner = {idp, &opt};
    if (idp) {
        opt.on_listening = server_dev_on_listening;
        opt.on_listening_arg = &banner;
    }
    int rc = server_run(&opt, err, sizeof err);
    util_secure_zero(opt.master_key, sizeof opt.master_key);
    if (oidc.destroy)
        oidc.destroy(oidc.ctx);
    devidp_stop(idp);
    json_decref(cfg);
    if (rc < 0) {
        fprintf(stderr, "hoopctl server: %s\n", err);
        return strstr(err, "postgres") || strstr(err, "sqlite") ? CLI_EXIT_UNAVAILABLE : CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
}

static const struct cli_option server_options[] = {
    {"config", 'c', "FILE", "server config file (JSON)", CLI_COMPLETE_FILE, NULL},
    {"listen", 'l', "ADDR", "HOST:PORT to listen on (default 127.0.0.1:8780)", CLI_COMPLETE_NONE, NULL},
    {"store", 0, "URL", "sqlite:PATH (default) or postgres://...", CLI_COMPLETE_NONE, NULL},
    {"tls-cert", 0, "FILE", "TLS certificate chain (PEM)", CLI_COMPLETE_FILE, NULL},
    {"tls-key", 0, "FILE", "TLS private key (PEM)", CLI_COMPLETE_FILE, NULL},
    {"master-key-file", 0, "FILE", "key that encrypts connection secrets (32 bytes or 64 hex)",
     CLI_COMPLETE_FILE, NULL},
    {"retention", 0, "AGE", "delete audit events and ended reviews older than AGE (e.g. 90d)", CLI_COMPLETE_NONE, NULL},
    {"dev", 0, NULL, "development mode: built-in identity provider, loopback only", CLI_COMPLETE_NONE, NULL},
    {"as", 0, "USER", "dev-approve: the dev user who approves (alice, bob, admin, ...)", CLI_COMPLETE_NONE,
     NULL},
    {"deny", 0, NULL, "dev-approve: deny the login instead", CLI_COMPLETE_NONE, NULL},
    {"server", 's', "URL", "dev-approve: the server (default HOOPCTL_SERVER_URL, else 127.0.0.1:8780)",
     CLI_COMPLETE_NONE, NULL},
    {0},
};

static const struct cli_verb_complete server_verb_complete[] = {
    {"dev-approve", CLI_COMPLETE_NONE, NULL}, /* a code the login printed */
    {0},
};

const struct cli_command cli_cmd_server = {
    .name = "server",
    .summary = "Run the shared server: identity, connections, audit store and reviews",
    .usage = "[--dev] [--config FILE] [--listen ADDR] [--store URL] [--tls-cert F --tls-key F] "
             "[--master-key-file FILE] [--retention AGE] | "
             "dev-approve CODE --as USER [--deny] [--server URL]",
    .description = "Serves the JSON API under /api/v1 until SIGTERM; see hoopctl-server(8). With --dev, a "
                   "built-in identity provider for development; dev-approve decides a pending dev login.",
    .options = server_options,
    .arg_words = "dev-approve",
    .arg_complete = CLI_COMPLETE_WORDS,
    .verb_complete = server_verb_complete,
    .min_args = 0,
    .max_args = 2,
    .run = server_cmd_run,
};
