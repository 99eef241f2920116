/* text.c — cutting text for messages: a cut never ends inside a UTF-8
 * character, so that the text stays valid for a JSON string (jansson refuses
 * invalid UTF-8, and a refused message would leave a request unanswered). */
#include "mcp_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

size_t mcp_utf8_cut(const char *s, size_t n)
{
    /* Back over at most 3 continuation bytes to the character's first byte. */
    size_t i = n;
    while (i > 0 && n - i < 3 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
        i--;
    if (i == 0)
        return n; /* no first byte within reach: not UTF-8 we could mend */
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    return n - (i - 1) < need ? i - 1 : n;
}

int mcp_utf8_prefix(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n > max)
        n = mcp_utf8_cut(s, max);
    return n > 0x7fffffff ? 0x7fffffff : (int)n;
}

void mcp_textf(char *buf, size_t len, const char *fmt, ...)
{
    if (len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    if (n < 0)
        buf[0] = '\0';
    else if ((size_t)n >= len)
        buf[mcp_utf8_cut(buf, len - 1)] = '\0';
}
