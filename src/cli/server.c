/* server.c — `hoopctl server`: read the server config, pick the listen address,
 * store and master key, build the verifier chain and run the API server. */
#include "hoopctl/cli.h"
#include "hoopctl/config.h"
#include "hoopctl/identity.h"
#include "hoopctl/log.h"
#include "hoopctl/server.h"
#include "hoopctl/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "90d", "12h", "30m", "45s" -> ms; -1 when malformed. */
static int64_t parse_duration_ms(const char *s)
{
    char *end;
    long long n = strtoll(s, &end, 10);
    if (end == s || n <= 0)
        return -1;
    int64_t unit = 0;
    if (!strcmp(end, "d"))
        unit = 86400000;
    else if (!strcmp(end, "h"))
        unit = 3600000;
    else if (!strcmp(end, "m"))
        unit = 60000;
    else if (!strcmp(end, "s"))
        unit = 1000;
    return unit ? n * unit : -1;
}

static const char *pick(const struct cli_args *a, const char *opt, json_t *cfg, const char *key)
{
    const char *v = cli_get(a, opt);
    return v ? v : config_get_string(cfg, key);
}

static int server_cmd_run(const struct cli_args *args, struct cli_context *ctx)
{
    (void)ctx;
    char err[512];
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
    struct server_options opt = {.config = cfg};
    char dflt_store[1100];
    opt.listen = pick(args, "listen", cfg, "listen");
    if (!opt.listen)
        opt.listen = "127.0.0.1:8780";
    opt.store_url = pick(args, "store", cfg, "store");
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
        json_decref(cfg);
        return cli_usage_error(args->cmd, "--retention takes a duration like 90d, 12h, 30m or 45s");
    }
    int mk = server_master_key_load(pick(args, "master-key-file", cfg, "master_key_file"), opt.master_key,
                                    err, sizeof err);
    if (mk < 0) {
        fprintf(stderr, "hoopctl server: %s\n", err);
        json_decref(cfg);
        return CLI_EXIT_FAILURE;
    }
    opt.have_master_key = mk == 1;
    if (!opt.have_master_key)
        log_warn("server", "no master key (--master-key-file or HOOPCTL_MASTER_KEY): connection "
                           "secrets cannot be stored");
    /* OpenID Connect tokens: the JWT verifier of src/identity, after API keys
     * and dev tokens. Its JWKS fetches block the server's loop for their
     * duration (first use, and an unknown kid at most once a minute). */
    struct auth_verifier oidc = {0};
    const char *issuer = config_get_string(cfg, "auth.issuer");
    if (issuer) {
        const char *audience = config_get_string(cfg, "auth.audience");
        if (!audience) {
            fprintf(stderr, "hoopctl server: auth.issuer needs auth.audience\n");
            json_decref(cfg);
            return CLI_EXIT_FAILURE;
        }
        struct identity_jwt_config jc = {.issuer = issuer,
                                         .audience = audience,
                                         .jwks_uri = config_get_string(cfg, "auth.jwks_uri"),
                                         .groups_claim = config_get_string(cfg, "auth.groups_claim")};
        if (identity_jwt_verifier_new(&jc, &oidc, err, sizeof err) < 0) {
            fprintf(stderr, "hoopctl server: auth: %s\n", err);
            json_decref(cfg);
            return CLI_EXIT_FAILURE;
        }
        opt.verifiers[opt.nverifiers++] = &oidc;
    }
    if (log_get_level() < LOG_INFO && !ctx->debug)
        log_set_level(LOG_WARN);
    int rc = server_run(&opt, err, sizeof err);
    util_secure_zero(opt.master_key, sizeof opt.master_key);
    if (oidc.destroy)
        oidc.destroy(oidc.ctx);
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
    {"retention", 0, "AGE", "delete audit events older than AGE (e.g. 90d)", CLI_COMPLETE_NONE, NULL},
    {0},
};

const struct cli_command cli_cmd_server = {
    .name = "server",
    .summary = "Run the shared server: identity, connections, audit store and reviews",
    .usage = "[--config FILE] [--listen ADDR] [--store URL] [--tls-cert F --tls-key F]",
    .description = "Serves the JSON API under /api/v1 until SIGTERM; see hoopctl-server(8).",
    .options = server_options,
    .min_args = 0,
    .max_args = 0,
    .run = server_cmd_run,
};
