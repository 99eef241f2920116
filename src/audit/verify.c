/* verify.c — check an exported audit trail (`hoopctl audit export`, JSON
 * lines) on its own, without the server or its store: every event's hash
 * against its content, every link to the event before it, and positions
 * without gaps. The last hash can then be compared with the head that
 * `hoopctl audit verify` reports, to show that the file is the whole trail up
 * to that point. */
#include "hoopctl/audit.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PROBLEMS 100

static void problem(json_t *problems, int64_t n, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void problem(json_t *problems, int64_t n, const char *id, const char *fmt, ...)
{
    if (json_array_size(problems) >= MAX_PROBLEMS)
        return;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_array_append_new(problems, json_pack("{s:I,s:s?,s:s}", "n", (json_int_t)n, "id", id, "problem", msg));
}

static const char *str(json_t *ev, const char *key)
{
    return json_string_value(json_object_get(ev, key));
}

static bool is_hash(const char *h)
{
    return h && strlen(h) == 64 && strspn(h, "0123456789abcdef") == 64;
}

int audit_verify_jsonl(FILE *in, json_t **report, char *err, size_t errlen)
{
    json_t *problems = json_array();
    char *line = NULL, last_hash[65] = "", first_prev[65] = "";
    size_t cap = 0;
    int64_t lineno = 0, checked = 0, first = 0, last = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, in)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        json_error_t jerr;
        json_t *ev = json_loadb(line, (size_t)len, 0, &jerr);
        json_t *n = json_object_get(ev, "n"), *seq = json_object_get(ev, "seq"), *ts = json_object_get(ev, "time");
        json_t *recv = json_object_get(ev, "received_at"), *data = json_object_get(ev, "data");
        const char *id = str(ev, "id"), *prev = str(ev, "prev_hash"), *hash = str(ev, "hash");
        if (!json_is_object(ev) || !json_is_integer(n) || json_integer_value(n) < 1 || !json_is_integer(seq) ||
            !json_is_integer(ts) || !id || !str(ev, "session_id") || !str(ev, "type") || !str(ev, "user") ||
            !data || !is_hash(prev) || !is_hash(hash) || !(json_is_integer(recv) || json_is_null(recv) || !recv)) {
            problem(problems, last, NULL, "line %" PRId64 " is not an exported event", lineno);
            json_decref(ev);
            continue;
        }
        /* The store hashed the data as the server wrote it: compact, keys sorted. */
        char *text = json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        if (!text) {
            json_decref(ev);
            free(line);
            json_decref(problems);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        int64_t pos = json_integer_value(n);
        struct audit_record r = {.n = pos, .id = id, .session_id = str(ev, "session_id"), .type = str(ev, "type"),
                                 .subject = str(ev, "user"), .data = text, .seq = json_integer_value(seq),
                                 .ts = json_integer_value(ts), .prev_hash = prev,
                                 .received_at = json_is_integer(recv) ? json_integer_value(recv) : 0};
        char h[65];
        audit_chain_hash(&r, h);
        free(text);
        if (checked == 0) {
            first = pos;
            snprintf(first_prev, sizeof first_prev, "%s", prev);
        } else if (pos > last + 1) {
            problem(problems, pos, id, "events %" PRId64 "..%" PRId64 " are not in the file (deleted, or left out"
                    " by --since/--until)", last + 1, pos - 1);
        } else if (pos <= last) {
            problem(problems, pos, id, "position repeats or goes back (inserted or reordered event)");
        } else if (strcmp(prev, last_hash) != 0) {
            problem(problems, pos, id, "link to the previous event is broken (an event before it was deleted,"
                    " inserted or reordered)");
        }
        if (strcmp(h, hash) != 0)
            problem(problems, pos, id, "content does not match its hash (edited)");
        snprintf(last_hash, sizeof last_hash, "%s", hash);
        last = pos;
        checked++;
        json_decref(ev);
    }
    free(line);
    if (ferror(in)) {
        json_decref(problems);
        snprintf(err, errlen, "cannot read the file");
        return -1;
    }
    *report = json_pack("{s:b,s:I,s:I,s:I,s:s,s:s,s:o}", "ok", checked > 0 && json_array_size(problems) == 0,
                        "checked", (json_int_t)checked, "first", (json_int_t)first, "last", (json_int_t)last,
                        "first_prev_hash", first_prev, "last_hash", last_hash, "problems", problems);
    return 0;
}
