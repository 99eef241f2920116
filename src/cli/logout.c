/* logout.c — `hoopctl logout`: revoke the tokens at the identity provider
 * when it advertises a revocation endpoint, then delete them locally. */
#include "hoopctl/cli.h"
#include "hoopctl/identity.h"
#include "hoopctl/util.h"

extern const struct cli_option cli_login_profile_options[];

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int logout_run(const struct cli_args *args, struct cli_context *ctx)
{
    (void)ctx;
    char err[512];
    const char *profile = cli_get(args, "server") ? cli_get(args, "server") : cli_get(args, "issuer");
    struct identity_session *s = calloc(1, sizeof *s);
    if (!s) {
        fprintf(stderr, "hoopctl logout: out of memory\n");
        return CLI_EXIT_FAILURE;
    }
    int rc = identity_store_load(profile, s, err, sizeof err);
    char only[IDENTITY_URL_LEN];
    if (!profile && (rc > 0 || (rc < 0 && !s->profile[0]))) {
        /* The current login could not be found: a damaged `current` must not
         * keep the saved tokens on disk. */
        char list[2048], e2[512];
        size_t saved = 0;
        int fix = identity_store_repair_current(only, sizeof only, &saved, list, sizeof list, e2, sizeof e2);
        if (fix < 0) {
            fprintf(stderr, "hoopctl logout: %s\n", cli_safe(e2));
            identity_session_close(s);
            return CLI_EXIT_FAILURE;
        }
        if (fix > 0) {
            fprintf(stderr, "hoopctl logout: %s\n", cli_safe(e2));
            if (fix == 2) {
                fprintf(stderr, "hoopctl logout: not logged in; there is no login to end%s%s%s\n",
                        saved ? " (other saved logins: " : "", saved ? cli_safe(list) : "", saved ? ")" : "");
                identity_session_close(s);
                return CLI_EXIT_OK;
            }
            if (saved > 1 || (saved == 1 && !only[0])) {
                fprintf(stderr, "hoopctl logout: which login was current is not known; %zu saved: %s; name one: "
                                "hoopctl logout --server URL\n", saved, cli_safe(list));
                identity_session_close(s);
                return CLI_EXIT_FAILURE;
            }
            if (saved == 0) {
                fprintf(stderr, "hoopctl logout: not logged in; there is no login to end\n");
                identity_session_close(s);
                return CLI_EXIT_OK;
            }
            profile = only; /* the one saved login */
            rc = identity_store_load(profile, s, err, sizeof err);
        }
    }
    if (rc < 0 && s->profile[0]) {
        /* The token file is there but damaged: its tokens cannot be sent to
         * be revoked, but the file can still go. */
        fprintf(stderr, "hoopctl logout: %s\n", cli_safe(err));
        fprintf(stderr, "hoopctl logout: cannot revoke the tokens at the identity provider (the saved login "
                        "cannot be read); they stay valid until they expire\n");
        rc = identity_store_delete(s->profile, err, sizeof err);
        if (rc < 0)
            fprintf(stderr, "hoopctl logout: %s\n", cli_safe(err));
        else
            printf("Logged out of %s; local tokens deleted.\n", s->profile);
        identity_session_close(s);
        return CLI_EXIT_FAILURE;
    }
    if (rc > 0) { /* nothing to log out of: no advice to log in */
        if (s->profile[0])
            fprintf(stderr, "hoopctl logout: not logged in to %s; there is no login to end\n", s->profile);
        else
            fprintf(stderr, "hoopctl logout: not logged in; there is no login to end\n");
        identity_session_close(s);
        return CLI_EXIT_OK;
    }
    if (rc != 0) {
        fprintf(stderr, "hoopctl logout: %s\n", cli_safe(err));
        identity_session_close(s);
        return CLI_EXIT_FAILURE;
    }
    int exit_code = CLI_EXIT_OK;
    struct identity_provider p;
    if (identity_discover(s->login.issuer, &p, err, sizeof err) < 0) {
        fprintf(stderr, "hoopctl logout: cannot reach the identity provider, tokens not revoked: %s\n", cli_safe(err));
        exit_code = CLI_EXIT_UNAVAILABLE;
    } else if (!p.revocation_endpoint[0]) {
        printf("The identity provider offers no revocation; the tokens stay valid until they expire.\n");
    } else {
        int bad = 0, at = 0;
        struct identity_client_secret cs = {0};
        const char *secret = NULL;
        if (strcmp(s->grant, "client_credentials") == 0) {
            if (identity_session_client_secret(s, &cs, err, sizeof err) == 0)
                secret = cs.client_secret;
            else
                fprintf(stderr, "hoopctl logout: %s\n", cli_safe(err));
        }
        if (s->tokens.refresh_token[0] &&
            identity_revoke(&p, s->login.client_id, secret, s->tokens.refresh_token, "refresh_token", err, sizeof err) < 0) {
            fprintf(stderr, "hoopctl logout: revoking the refresh token: %s\n", cli_safe(err));
            bad = 1;
        }
        at = identity_revoke(&p, s->login.client_id, secret, s->tokens.access_token, "access_token", err, sizeof err);
        if (at < 0) {
            fprintf(stderr, "hoopctl logout: revoking the access token: %s\n", cli_safe(err));
            bad = 1;
        }
        util_secure_zero(&cs, sizeof cs);
        if (bad)
            exit_code = CLI_EXIT_FAILURE;
        else
            printf("Tokens revoked at %s%s.\n", s->login.issuer,
                   at == 2 ? " (the provider cannot revoke its self-contained access token; it lapses at expiry)" : "");
    }
    if (identity_store_delete(s->profile, err, sizeof err) < 0) {
        fprintf(stderr, "hoopctl logout: %s\n", cli_safe(err));
        exit_code = CLI_EXIT_FAILURE;
    } else {
        printf("Logged out of %s; local tokens deleted.\n", s->profile);
    }
    identity_session_close(s);
    return exit_code;
}

const struct cli_command cli_cmd_logout = {
    .name = "logout",
    .summary = "Revoke the cached tokens at the identity provider and delete them",
    .usage = "[--server URL | --issuer URL]",
    .description = "The local tokens are deleted even when the revocation fails, or cannot be tried\n"
                   "because the saved login is damaged; the exit status then says so (1, or 5 when\n"
                   "the provider could not be reached). A damaged record of the current login\n"
                   "(<config dir>/tokens/current) is removed; when only one login is saved, that\n"
                   "one is logged out of, else name one with --server.",
    .options = cli_login_profile_options,
    .max_args = 0,
    .run = logout_run,
};
