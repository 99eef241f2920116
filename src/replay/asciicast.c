/* asciicast.c — asciinema v2 output: a header object on the first line, then
 * one [seconds, "o", data] event per line, JSON-encoded with jansson. */
#include "hoopctl/replay.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

int asciicast_begin(struct asciicast *a, FILE *out, int width, int height, int64_t timestamp,
                    const char *title)
{
    a->out = out;
    a->last_time = 0;
    json_t *h = json_pack("{s:i, s:i, s:i, s:I, s:{s:s, s:s}}", "version", 2, "width", width,
                          "height", height, "timestamp", (json_int_t)timestamp, "env", "TERM",
                          "xterm-256color", "SHELL", "/bin/sh");
    if (!h)
        return -1;
    if (title)
        json_object_set_new(h, "title", json_string(title));
    int rc = json_dumpf(h, out, JSON_COMPACT) == 0 && fputc('\n', out) != EOF ? 0 : -1;
    json_decref(h);
    return rc;
}

int asciicast_output(struct asciicast *a, double seconds, const char *text, size_t len)
{
    if (seconds < a->last_time)
        seconds = a->last_time;
    a->last_time = seconds;
    /* Terminals receive CR LF; convert lone LFs. */
    struct buf b = {0};
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r'))
            buf_append(&b, "\r", 1);
        if (buf_append(&b, &text[i], 1) < 0) {
            buf_free(&b);
            return -1;
        }
    }
    json_t *s = json_stringn(b.data ? (const char *)b.data : "", b.len);
    buf_free(&b);
    if (!s)
        return -1; /* not valid UTF-8 */
    json_t *ev = json_pack("[f, s, o]", seconds, "o", s);
    int rc = ev && json_dumpf(ev, a->out, JSON_COMPACT | JSON_REAL_PRECISION(12)) == 0 && fputc('\n', a->out) != EOF ? 0 : -1;
    json_decref(ev);
    return rc;
}
