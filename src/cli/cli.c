/* cli.c — small helpers the command files share, so that each command
 * reports a failure the same way. */
#include "hoopctl/cli.h"
#include "hoopctl/util.h"

#include <stdarg.h>
#include <stdio.h>

int cli_fail(const char *name, int code, const char *msg)
{
    fprintf(stderr, "hoopctl %s: %s\n", name, msg);
    return code;
}

int cli_printf_safe(const char *fmt, ...)
{
    struct buf text = {0}, safe = {0};
    va_list ap;
    va_start(ap, fmt);
    char small[512];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    int rc = n < 0 ? -1 : 0;
    if (rc == 0 && (size_t)n < sizeof small) {
        rc = buf_append(&text, small, (size_t)n);
    } else if (rc == 0 && (rc = buf_reserve(&text, (size_t)n + 1)) == 0) {
        va_start(ap, fmt);
        vsnprintf((char *)text.data, (size_t)n + 1, fmt, ap);
        va_end(ap);
        text.len = (size_t)n;
    }
    if (rc == 0 && buf_append_terminal_safe(&safe, (const char *)text.data, text.len, true) == 0)
        rc = fwrite(safe.data, 1, safe.len, stdout) == safe.len ? 0 : -1;
    buf_free(&text);
    buf_free(&safe);
    return rc;
}
