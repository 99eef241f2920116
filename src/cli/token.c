/* token.c — `hoopctl token`: print the current access token for scripts,
 * refreshing it first when it is about to expire. The only command that
 * prints a token. */
#include "hoopctl/cli.h"
#include "hoopctl/identity.h"

#include <stdio.h>

/* --server / --issuer: which login whoami, token and logout use. */
const struct cli_option cli_login_profile_options[] = {
    {"server", 0, "URL", "the server of the login to use (default: server.url, else the last login)",
     CLI_COMPLETE_NONE, NULL},
    {"issuer", 0, "URL", "the issuer of a login made with --issuer", CLI_COMPLETE_NONE, NULL},
    {0},
};

static int token_run(const struct cli_args *args, struct cli_context *ctx)
{
    (void)ctx;
    char err[512];
    const char *profile = cli_get(args, "server") ? cli_get(args, "server") : cli_get(args, "issuer");
    struct identity_session *s;
    int rc = identity_session_open(profile, IDENTITY_REFRESH_MARGIN, &s, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "hoopctl token: %s\n", cli_safe(err));
        return rc > 0 ? CLI_EXIT_AUTH : CLI_EXIT_FAILURE;
    }
    cli_note_env_token("token");
    printf("%s\n", s->tokens.access_token);
    identity_session_close(s);
    return CLI_EXIT_OK;
}

const struct cli_command cli_cmd_token = {
    .name = "token",
    .summary = "Print the current access token for scripts, refreshing it first",
    .usage = "[--server URL | --issuer URL]",
    .description = "For example: curl -H \"Authorization: Bearer $(hoopctl token)\" ...\n"
                   "Exits 3 when not logged in or when the session can no longer be refreshed.",
    .options = cli_login_profile_options,
    .max_args = 0,
    .run = token_run,
};
