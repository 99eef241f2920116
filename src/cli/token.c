/* token.c — `hoopctl token`: print the current access token for scripts,
 * refreshing it first when it is about to expire. The only command that
 * prints a token. */
#include "hoopctl/cli.h"
#include "hoopctl/identity.h"
#include "hoopctl/util.h"

#include <stdio.h>
#include <stdlib.h>

static int token_run(const struct cli_args *args, struct cli_context *ctx)
{
    (void)ctx;
    char err[512];
    const char *profile = cli_get(args, "server") ? cli_get(args, "server") : cli_get(args, "issuer");
    struct identity_session *s = calloc(1, sizeof *s);
    if (!s)
        return CLI_EXIT_FAILURE;
    int rc = identity_store_load(profile, s, err, sizeof err);
    if (rc == 0 && identity_session_ensure_fresh(s, IDENTITY_REFRESH_MARGIN, err, sizeof err) < 0)
        rc = 1;
    if (rc == 0)
        printf("%s\n", s->tokens.access_token);
    else
        fprintf(stderr, "hoopctl token: %s\n", err);
    util_secure_zero(s, sizeof *s);
    free(s);
    return rc == 0 ? CLI_EXIT_OK : rc > 0 ? CLI_EXIT_AUTH : CLI_EXIT_FAILURE;
}

static const struct cli_option token_options[] = {
    {"server", 0, "URL", "the server whose token to print (default: server.url, else the last login)",
     CLI_COMPLETE_NONE, NULL},
    {"issuer", 0, "URL", "the issuer of a login made with --issuer", CLI_COMPLETE_NONE, NULL},
    {0},
};

const struct cli_command cli_cmd_token = {
    .name = "token",
    .summary = "Print the current access token for scripts, refreshing it first",
    .usage = "[--server URL | --issuer URL]",
    .description = "For example: curl -H \"Authorization: Bearer $(hoopctl token)\" ...\n"
                   "Exits 3 when not logged in or when the session can no longer be refreshed.",
    .options = token_options,
    .max_args = 0,
    .run = token_run,
};
