/* whoami.c — `hoopctl whoami`: who the cached tokens say you are (subject,
 * email, groups, issuer, expiry, server), refreshing them first when due. */
#include "hoopctl/api.h"
#include "hoopctl/cli.h"
#include "hoopctl/identity.h"
#include "hoopctl/util.h"

extern const struct cli_option cli_login_profile_options[];

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A claim from the ID token, else from the access token. */
static json_t *whoami_claim(json_t *idc, json_t *atc, const char *name)
{
    json_t *v = idc ? json_object_get(idc, name) : NULL;
    return v ? v : json_object_get(atc, name);
}

/* Ask the login's server whether it still takes the access token (a dev
 * server's restart, a revoked or rotated key: the cached tokens look fine
 * while every call gets 401). 3 when the server refuses it, else 0; a
 * server that cannot be reached is noted and the local view stands. */
static int whoami_check_server(const struct identity_session *s)
{
    if (!s->login.server[0])
        return CLI_EXIT_OK; /* a login made at an issuer: no server to ask */
    struct api_client api;
    char err[600];
    if (api_client_init(&api, s->login.server, err, sizeof err))
        return CLI_EXIT_OK;
    snprintf(api.token, sizeof api.token, "%s", s->tokens.access_token); /* this login's, not HOOPCTL_TOKEN */
    api.token_source = API_TOKEN_LOGIN;
    api.timeout_s = 5;
    json_t *r = NULL;
    int rc = api_do(&api, "GET", "/api/v1/whoami", NULL, &r, err, sizeof err);
    int out = CLI_EXIT_OK;
    if (rc == 3) {
        fprintf(stderr, "hoopctl whoami: the server %s refuses this login: %s\n", cli_safe(api.base), cli_safe(err));
        out = CLI_EXIT_AUTH;
    } else if (rc != 0) { /* unreachable, or an answer that says nothing of the token (a 5xx, a 404) */
        fprintf(stderr, "hoopctl whoami: note: %s; the login was checked only locally\n", cli_safe(err));
    }
    json_decref(r);
    api_client_free(&api);
    return out;
}

static int whoami_run(const struct cli_args *args, struct cli_context *ctx)
{
    char err[512];
    const char *profile = cli_get(args, "server") ? cli_get(args, "server") : cli_get(args, "issuer");
    struct identity_session *s;
    int rc = identity_session_open(profile, IDENTITY_REFRESH_MARGIN, &s, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "hoopctl whoami: %s\n", cli_safe(err));
        return rc > 0 ? CLI_EXIT_AUTH : CLI_EXIT_FAILURE;
    }
    cli_note_env_token("whoami");
    json_t *h1 = NULL, *idc = NULL, *h2 = NULL, *atc = NULL;
    if (s->tokens.id_token[0])
        identity_jwt_peek(s->tokens.id_token, &h1, &idc, err, sizeof err);
    if (identity_jwt_peek(s->tokens.access_token, &h2, &atc, err, sizeof err) < 0)
        atc = json_object(); /* an opaque access token */
    json_t *groups = whoami_claim(idc, atc, "groups");
    json_t *out = json_object();
    json_object_set(out, "subject", whoami_claim(idc, atc, "sub"));
    json_object_set(out, "email", whoami_claim(idc, atc, "email"));
    json_object_set(out, "name", whoami_claim(idc, atc, "name"));
    json_object_set_new(out, "groups", json_is_array(groups) ? json_incref(groups) : json_array());
    json_object_set_new(out, "issuer", json_string(s->login.issuer));
    json_object_set_new(out, "server", s->login.server[0] ? json_string(s->login.server) : json_null());
    json_object_set_new(out, "client_id", json_string(s->login.client_id));
    json_object_set_new(out, "grant", json_string(s->grant));
    json_object_set_new(out, "expires_at", json_integer(s->tokens.expires_at));
    char when[40] = "unknown";
    if (s->tokens.expires_at)
        util_iso8601_ms(s->tokens.expires_at * 1000, when, sizeof when);
    json_object_set_new(out, "expires", json_string(when));
    if (ctx->output && strcmp(ctx->output, "json") == 0) {
        char *text = json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (text)
            puts(text);
        free(text);
    } else {
        const char *keys[] = {"subject", "email", "name", "issuer", "server", "grant"};
        for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
            const char *v = json_string_value(json_object_get(out, keys[i]));
            printf("%-10s %s\n", keys[i], v && *v ? cli_safe(v) : "-"); /* the IdP's claims, the profile */
        }
        printf("%-10s ", "groups");
        size_t i;
        json_t *g;
        json_array_foreach(json_object_get(out, "groups"), i, g) printf("%s%s", i ? ", " : "",
                                                                      json_string_value(g) ? cli_safe(json_string_value(g)) : "?");
        if (json_array_size(json_object_get(out, "groups")) == 0)
            printf("-");
        long long left = s->tokens.expires_at ? (long long)(s->tokens.expires_at - util_now_ms() / 1000) : 0;
        printf("\n%-10s %s", "expires", when);
        if (s->tokens.expires_at)
            printf(" (in %lld min %lld s)", left / 60, left % 60);
        printf("\n");
    }
    json_decref(out);
    json_decref(h1);
    json_decref(idc);
    json_decref(h2);
    json_decref(atc);
    fflush(stdout);
    int checked = whoami_check_server(s);
    identity_session_close(s);
    return checked;
}

const struct cli_command cli_cmd_whoami = {
    .name = "whoami",
    .summary = "Show who you are logged in as: subject, email, groups, issuer, expiry",
    .usage = "[--server URL | --issuer URL]",
    .description = "Reads the cached tokens (refreshing them first when they are about to expire),\n"
                   "then asks the login's server whether it still takes them (exit 3 when it does not,\n"
                   "as after a dev server's restart). With -o json, prints one JSON object.",
    .options = cli_login_profile_options,
    .max_args = 0,
    .run = whoami_run,
};
