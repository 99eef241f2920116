/* cli.c — small helpers the command files share, so that each command
 * reports a failure the same way. */
#include "hoopctl/cli.h"

#include <stdio.h>

int cli_fail(const char *name, int code, const char *msg)
{
    fprintf(stderr, "hoopctl %s: %s\n", name, msg);
    return code;
}
