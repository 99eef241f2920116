/* login.c — `hoopctl login`: OIDC device-code login (RFC 8628) against the
 * server's identity provider, or a named issuer; client credentials for
 * non-human callers. Tokens go to the 0600 token store, never to the screen. */
#include "hoopctl/cli.h"
#include "hoopctl/config.h"
#include "hoopctl/identity.h"
#include "hoopctl/util.h"

#include <jansson.h>
#include <qrencode.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t login_cancelled;

static void login_on_signal(int sig)
{
    (void)sig;
    login_cancelled = 1;
}

/* A QR code of text drawn with half blocks: two modules rows per line. */
static void login_print_qr(const char *text)
{
    QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_L, QR_MODE_8, 1);
    if (!qr)
        return;
    int w = qr->width, quiet = 2;
    for (int y = -quiet; y < w + quiet; y += 2) {
        fputs("  ", stdout);
        for (int x = -quiet; x < w + quiet; x++) {
            int top = y >= 0 && y < w && x >= 0 && x < w && (qr->data[y * w + x] & 1);
            int bot = y + 1 >= 0 && y + 1 < w && x >= 0 && x < w && (qr->data[(y + 1) * w + x] & 1);
            /* dark modules are drawn as spaces on a light background, inverted */
            fputs(top && bot ? " " : top ? "\u2584" : bot ? "\u2580" : "\u2588", stdout);
        }
        fputc('\n', stdout);
    }
    QRcode_free(qr);
}

/* Who the new tokens name, for the closing line. */
static void login_print_who(const struct identity_session *s)
{
    json_t *h = NULL, *c = NULL;
    char e[128];
    const char *tok = s->tokens.id_token[0] ? s->tokens.id_token : s->tokens.access_token;
    if (identity_jwt_peek(tok, &h, &c, e, sizeof e) == 0) {
        const char *sub = json_string_value(json_object_get(c, "sub"));
        const char *email = json_string_value(json_object_get(c, "email"));
        printf("Logged in to %s as %s%s%s%s.\n", cli_safe(s->profile), sub ? cli_safe(sub) : "(unknown)",
               email ? " <" : "", email ? cli_safe(email) : "", email ? ">" : ""); /* the IdP's claims */
    } else {
        printf("Logged in to %s.\n", cli_safe(s->profile));
    }
    json_decref(h);
    json_decref(c);
}

/* Whether a server or issuer URL names its scheme: without one ("host:port")
 * it would be fetched as a relative path and refused for want of https. */
static bool url_has_scheme(const char *url)
{
    return strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0;
}

static int scheme_error(const struct cli_args *args, const char *what, const char *url)
{
    /* The likely meaning: plain http is allowed on loopback only. */
    bool loopback = strncmp(url, "127.", 4) == 0 || strncmp(url, "localhost", 9) == 0 ||
                    strncmp(url, "[::1]", 5) == 0;
    char msg[700];
    snprintf(msg, sizeof msg, "%s '%.250s' needs http:// or https:// (%s://%.250s?)", what, url,
             loopback ? "http" : "https", url);
    return cli_usage_error(args->cmd, msg);
}

/* Fill lc from the server's config or the command line. */
static int login_config(const struct cli_args *args, struct identity_login_config *lc)
{
    char err[512];
    const char *issuer = cli_get(args, "issuer"), *server = cli_get(args, "server");
    memset(lc, 0, sizeof *lc);
    if (issuer) {
        if (server)
            return cli_usage_error(args->cmd, "give --server or --issuer, not both");
        const char *cid = cli_get(args, "client-id");
        if (!cid && !cli_flag(args, "client-credentials"))
            return cli_usage_error(args->cmd, "--issuer needs --client-id");
        if (strlen(issuer) >= sizeof lc->issuer || (cid && strlen(cid) >= sizeof lc->client_id))
            return cli_usage_error(args->cmd, "issuer or client id too long");
        if (!url_has_scheme(issuer))
            return scheme_error(args, "--issuer", issuer);
        strcpy(lc->issuer, issuer);
        if (cid)
            strcpy(lc->client_id, cid);
        strcpy(lc->scopes, "openid email profile offline_access");
    } else {
        json_t *cfg = NULL;
        if (server && !url_has_scheme(server))
            return scheme_error(args, "--server", server);
        if (!server) {
            if (!(cfg = config_load_client(err, sizeof err))) {
                fprintf(stderr, "hoopctl login: %s\n", cli_safe(err));
                return CLI_EXIT_FAILURE;
            }
            server = config_get_string(cfg, "server.url");
        }
        if (!server) {
            json_decref(cfg);
            return cli_usage_error(args->cmd, "give --server URL (or set server.url), or --issuer URL --client-id ID");
        }
        if (!url_has_scheme(server)) { /* from the config or HOOPCTL_SERVER_URL: not the command line */
            fprintf(stderr, "hoopctl login: the server URL '%.250s' (server.url or HOOPCTL_SERVER_URL) needs "
                            "http:// or https://\n", server);
            json_decref(cfg);
            return CLI_EXIT_FAILURE;
        }
        int rc = identity_fetch_server_config(server, lc, err, sizeof err);
        json_decref(cfg);
        if (rc < 0) {
            fprintf(stderr, "hoopctl login: %s\n", cli_safe(err));
            return CLI_EXIT_UNAVAILABLE;
        }
    }
    const char *aud = cli_get(args, "audience"), *scope = cli_get(args, "scope");
    if ((aud && strlen(aud) >= sizeof lc->audience) || (scope && strlen(scope) >= sizeof lc->scopes))
        return cli_usage_error(args->cmd, "audience or scope too long");
    if (aud)
        strcpy(lc->audience, aud);
    if (scope)
        strcpy(lc->scopes, scope);
    return CLI_EXIT_OK;
}

static int login_device(const struct cli_args *args, const struct identity_provider *p,
                        struct identity_session *s)
{
    char err[512];
    struct identity_device_auth dev;
    if (identity_device_start(p, &s->login, &dev, err, sizeof err) < 0) {
        fprintf(stderr, "hoopctl login: %s\n", cli_safe(err));
        return CLI_EXIT_FAILURE;
    }
    /* Catch Ctrl-C before the code is shown: a user who sees it may press it at once. */
    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = login_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    /* the IdP's device answer: escaped, so that it cannot steer the terminal */
    printf("\nTo sign in, open this page in a browser:\n\n    %s\n\nand enter the code:\n\n    %s\n\n",
           cli_safe(dev.verification_uri), cli_safe(dev.user_code));
    if (dev.verification_uri_complete[0]) {
        printf("Or open this link, which carries the code:\n\n    %s\n\n", cli_safe(dev.verification_uri_complete));
        if (!cli_flag(args, "no-qr") && isatty(STDOUT_FILENO))
            login_print_qr(dev.verification_uri_complete);
    }
    printf("Waiting for approval (the code expires in %d min; Ctrl-C cancels)...\n",
           (dev.expires_in + 59) / 60);
    fflush(stdout);

    enum identity_device_result r = identity_device_wait(p, &s->login, &dev, &login_cancelled, &s->tokens,
                                                          err, sizeof err);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    util_secure_zero(dev.device_code, sizeof dev.device_code);
    switch (r) {
    case IDENTITY_DEVICE_OK:
        return CLI_EXIT_OK;
    case IDENTITY_DEVICE_CANCELLED:
        fprintf(stderr, "hoopctl login: cancelled; nothing was saved\n");
        return 130;
    case IDENTITY_DEVICE_DENIED:
    case IDENTITY_DEVICE_EXPIRED:
        fprintf(stderr, "hoopctl login: %s\n", cli_safe(err));
        return CLI_EXIT_AUTH;
    default:
        fprintf(stderr, "hoopctl login: %s\n", cli_safe(err));
        return CLI_EXIT_FAILURE;
    }
}

static int login_run(const struct cli_args *args, struct cli_context *ctx)
{
    (void)ctx;
    char err[512];
    struct identity_session *s = calloc(1, sizeof *s);
    if (!s)
        return CLI_EXIT_FAILURE;
    int rc = login_config(args, &s->login);
    if (rc != CLI_EXIT_OK)
        goto out;
    snprintf(s->profile, sizeof s->profile, "%s", s->login.server[0] ? s->login.server : s->login.issuer);
    /* One login per server, however its URL ends: no trailing slash. */
    for (size_t n = strlen(s->profile); n > 1 && s->profile[n - 1] == '/' && s->profile[n - 2] != '/'; n--)
        s->profile[n - 1] = '\0';
    /* Before anyone approves a login that could not be kept. */
    if (identity_store_check_writable(err, sizeof err) < 0) {
        fprintf(stderr, "hoopctl login: cannot save a login: %s\n", cli_safe(err));
        rc = CLI_EXIT_FAILURE;
        goto out;
    }
    struct identity_provider p;
    if (identity_discover(s->login.issuer, &p, err, sizeof err) < 0) {
        fprintf(stderr, "hoopctl login: %s\n", cli_safe(err));
        rc = CLI_EXIT_UNAVAILABLE;
        goto out;
    }
    if (cli_flag(args, "client-credentials")) {
        struct identity_client_secret cs;
        if (identity_client_secret_load(cli_get(args, "secret-file"), &cs, err, sizeof err) < 0 ||
            identity_client_credentials(&p, &s->login, &cs, &s->tokens, err, sizeof err) < 0) {
            util_secure_zero(&cs, sizeof cs);
            fprintf(stderr, "hoopctl login: %s\n", cli_safe(err));
            rc = CLI_EXIT_AUTH;
            goto out;
        }
        snprintf(s->login.client_id, sizeof s->login.client_id, "%s", cs.client_id);
        snprintf(s->secret_source, sizeof s->secret_source, "%s", cs.source);
        util_secure_zero(&cs, sizeof cs);
        strcpy(s->grant, "client_credentials");
    } else {
        if (cli_get(args, "secret-file")) {
            rc = cli_usage_error(args->cmd, "--secret-file goes with --client-credentials");
            goto out;
        }
        rc = login_device(args, &p, s);
        if (rc != CLI_EXIT_OK)
            goto out;
        strcpy(s->grant, "device");
    }
    if (identity_store_save(s, err, sizeof err) < 0) {
        fprintf(stderr, "hoopctl login: %s\n", cli_safe(err));
        rc = CLI_EXIT_FAILURE;
        goto out;
    }
    login_print_who(s);
    rc = CLI_EXIT_OK;
out:
    identity_session_close(s);
    return rc;
}

static const struct cli_option login_options[] = {
    {"server", 0, "URL", "the hoopctl server to log in to (default: server.url)", CLI_COMPLETE_NONE, NULL},
    {"issuer", 0, "URL", "log in straight at this OpenID issuer instead", CLI_COMPLETE_NONE, NULL},
    {"client-id", 0, "ID", "OAuth client id (with --issuer)", CLI_COMPLETE_NONE, NULL},
    {"audience", 0, "URI", "resource indicator: the audience of the access token", CLI_COMPLETE_NONE, NULL},
    {"scope", 0, "SCOPES", "space-separated scopes to ask for", CLI_COMPLETE_NONE, NULL},
    {"client-credentials", 0, NULL, "non-human login with a client id and secret", CLI_COMPLETE_NONE, NULL},
    {"secret-file", 0, "FILE", "file with client_id= and client_secret= lines", CLI_COMPLETE_FILE, NULL},
    {"no-qr", 0, NULL, "do not draw a QR code of the login link", CLI_COMPLETE_NONE, NULL},
    {0},
};

const struct cli_command cli_cmd_login = {
    .name = "login",
    .summary = "Sign in with OpenID Connect (device code) and cache the tokens",
    .usage = "[--server URL | --issuer URL --client-id ID] [--audience URI] [--scope SCOPES] "
             "[--client-credentials [--secret-file FILE]] [--no-qr]",
    .description = "Shows a link and a code to approve in a browser, waits for the approval, and stores\n"
                   "the tokens in a 0600 file under the config directory. With --client-credentials the\n"
                   "client id and secret come from HOOPCTL_CLIENT_ID and HOOPCTL_CLIENT_SECRET or from\n"
                   "--secret-file, never from the command line.",
    .options = login_options,
    .max_args = 0,
    .run = login_run,
};
