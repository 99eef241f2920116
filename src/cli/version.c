/* version.c — `hoopctl version`: the version and the library versions it runs with. */
#include "hoopctl/cli.h"
#include "hoopctl/version.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static int version_run(const struct cli_args *args, struct cli_context *ctx)
{
    (void)args;
    if (ctx->output && strcmp(ctx->output, "json") == 0)
        printf("{\"version\":\"%s\",\"jansson\":\"%s\"}\n", HOOPCTL_VERSION, JANSSON_VERSION);
    else
        printf("hoopctl %s\n", HOOPCTL_VERSION);
    return CLI_EXIT_OK;
}

const struct cli_command cli_cmd_version = {
    .name = "version",
    .summary = "Print the version",
    .usage = "",
    .max_args = 0,
    .run = version_run,
};
