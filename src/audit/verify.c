/* verify.c — the walk along the hash chain that every check of the audit
 * trail makes (the store's `audit verify` and this file's), and the check of
 * an exported trail (`hoopctl audit export`, JSON lines) on its own, without
 * the server or its store: every event's hash against its content, every link
 * to the event before it, and positions without gaps. The file's last hash
 * can then be compared with the head that `hoopctl audit verify` reports, to
 * show that the file is the whole trail up to that point. */
#include "hoopctl/audit.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the walk along the chain ---------------------------------------------- */

void audit_walk_init(struct audit_walk *w, int64_t anchor_n, const char *anchor_hash, const char *gap)
{
    *w = (struct audit_walk){.first = anchor_hash ? anchor_n + 1 : 0, .last = anchor_n, .gap = gap,
                             .anchored = anchor_hash != NULL, .problems = json_array()};
    snprintf(w->last_hash, sizeof w->last_hash, "%s", anchor_hash ? anchor_hash : "");
    snprintf(w->first_prev, sizeof w->first_prev, "%s", anchor_hash ? anchor_hash : "");
}

void audit_walk_problem(struct audit_walk *w, int64_t n, const char *id, const char *fmt, ...)
{
    if (json_array_size(w->problems) >= AUDIT_WALK_MAX_PROBLEMS)
        return;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_array_append_new(w->problems, json_pack("{s:I,s:s?,s:s}", "n", (json_int_t)n, "id", id, "problem", msg));
}

void audit_walk_event(struct audit_walk *w, const struct audit_record *r, const char *hash)
{
    const char *prev = r->prev_hash ? r->prev_hash : "";
    if (w->checked == 0 && !w->anchored) {
        w->first = r->n;
        snprintf(w->first_prev, sizeof w->first_prev, "%s", prev);
    } else if (r->n > w->last + 1) {
        audit_walk_problem(w, r->n, r->id, "events %" PRId64 "..%" PRId64 " %s", w->last + 1, r->n - 1, w->gap);
    } else if (r->n <= w->last) {
        audit_walk_problem(w, r->n, r->id, "position repeats or goes back (inserted or reordered event)");
    } else if (!r->prev_hash || strcmp(prev, w->last_hash) != 0) {
        audit_walk_problem(w, r->n, r->id, "link to the previous event is broken (an event before it was"
                           " deleted, inserted or reordered)");
    }
    char h[65];
    audit_chain_hash(r, h);
    if (!hash || strcmp(h, hash) != 0)
        audit_walk_problem(w, r->n, r->id, "content does not match its hash (edited)");
    snprintf(w->last_hash, sizeof w->last_hash, "%s", hash ? hash : "");
    w->last = r->n;
    w->checked++;
}

/* ---- an exported file ----------------------------------------------------- */

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
    struct audit_walk w;
    audit_walk_init(&w, 0, NULL, "are not in the file (deleted, or left out by --since/--until)");
    char *line = NULL;
    size_t cap = 0;
    int64_t lineno = 0;
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
            audit_walk_problem(&w, w.last, NULL, "line %" PRId64 " is not an exported event", lineno);
            json_decref(ev);
            continue;
        }
        /* The store hashed the data as the server wrote it: compact, keys sorted. */
        char *text = json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        if (!text) {
            json_decref(ev);
            free(line);
            json_decref(w.problems);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        struct audit_record r = {.n = json_integer_value(n), .id = id, .session_id = str(ev, "session_id"),
                                 .type = str(ev, "type"), .subject = str(ev, "user"), .data = text,
                                 .seq = json_integer_value(seq), .ts = json_integer_value(ts), .prev_hash = prev,
                                 .received_at = json_is_integer(recv) ? json_integer_value(recv) : 0};
        audit_walk_event(&w, &r, hash);
        free(text);
        json_decref(ev);
    }
    free(line);
    if (ferror(in)) {
        json_decref(w.problems);
        snprintf(err, errlen, "cannot read the file");
        return -1;
    }
    *report = json_pack("{s:b,s:I,s:I,s:I,s:s,s:s,s:o}", "ok", w.checked > 0 && json_array_size(w.problems) == 0,
                        "checked", (json_int_t)w.checked, "first", (json_int_t)w.first, "last",
                        (json_int_t)w.last, "first_prev_hash", w.first_prev, "last_hash", w.last_hash,
                        "problems", w.problems);
    return 0;
}
