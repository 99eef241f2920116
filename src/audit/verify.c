/* verify.c — the walk along the hash chain that every check of the audit
 * trail makes (the store's `audit verify` and this file's), and the check of
 * an exported trail (`hoopctl audit export`, JSON lines) on its own, without
 * the server or its store: every event's hash against its content, every link
 * to the event before it, and positions without gaps. The file's last hash
 * can then be compared with the head that `hoopctl audit verify` reports:
 * when they are equal, the file holds the store's events from its first one
 * to the head, unaltered (the head's hash covers every link before it). It
 * is the whole trail only if that first event is the one after the
 * checkpoint `audit verify` reports (event 1 without retention): a file cut
 * at its start still ends at the head. */
#include "hoopctl/audit.h"
#include "hoopctl/util.h"

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

/* The keys of an exported event, and no others. */
static const char *const export_keys[] = {"n", "id", "session_id", "seq", "type", "time", "user",
                                          "data", "prev_hash", "hash", "received_at"};

static bool known_key(const char *k)
{
    for (size_t i = 0; i < sizeof export_keys / sizeof export_keys[0]; i++)
        if (!strcmp(k, export_keys[i]))
            return true;
    return false;
}

/* One line at a time, read in pieces: at most AUDIT_MAX_LINE bytes are
 * kept; the rest of a longer line is read past, not held. */
struct line_reader {
    FILE *in;
    struct buf line;
    bool too_long;             /* the line went past AUDIT_MAX_LINE */
    char block[65536];         /* read ahead from in */
    size_t pos, end;
};

static int keep(struct line_reader *r, const char *p, size_t n)
{
    if (r->too_long || r->line.len + n > AUDIT_MAX_LINE) {
        r->too_long = true;
        return 0;
    }
    return buf_append(&r->line, p, n);
}

/* 1 with a line in r->line ('\0' after it; the newline and a '\r' before
 * it dropped; any byte, NUL too, kept as read; empty when too long), 0 at
 * the end, -1 out of memory. */
static int read_line(struct line_reader *r)
{
    buf_reset(&r->line);
    r->too_long = false;
    bool any = false;
    for (;;) {
        if (r->pos == r->end) {
            r->pos = 0;
            r->end = fread(r->block, 1, sizeof r->block, r->in);
            if (r->end == 0)
                break;
        }
        any = true;
        char *p = r->block + r->pos, *nl = memchr(p, '\n', r->end - r->pos);
        size_t n = nl ? (size_t)(nl - p) : r->end - r->pos;
        if (keep(r, p, n) < 0)
            return -1;
        r->pos += n + (nl ? 1 : 0);
        if (nl)
            break;
    }
    if (!any)
        return 0;
    if (r->too_long)
        buf_reset(&r->line);
    else if (r->line.len && r->line.data[r->line.len - 1] == '\r')
        r->line.len--;
    return buf_cstr(&r->line) ? 1 : -1;
}

int audit_verify_jsonl(FILE *in, json_t **report, char *err, size_t errlen)
{
    struct audit_walk w;
    audit_walk_init(&w, 0, NULL, "are not in the file (deleted, or left out by --since/--until)");
    struct line_reader *lr = malloc(sizeof *lr);
    if (!lr) {
        json_decref(w.problems);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    *lr = (struct line_reader){.in = in};
    int64_t lineno = 0, cut_n = -1; /* the checkpoint the last retention event names */
    char cut_hash[65] = "";
    int got;
    while ((got = read_line(lr)) > 0) {
        lineno++;
        if (lr->too_long) {
            audit_walk_problem(&w, w.last, NULL, "line %" PRId64 " is longer than %d MiB: not an exported"
                               " event (not read)", lineno, AUDIT_MAX_LINE >> 20);
            continue;
        }
        if (lr->line.len == 0)
            continue;
        json_error_t jerr;
        /* Duplicate keys are refused: parsers differ on which one counts. */
        json_t *ev = json_loadb((const char *)lr->line.data, lr->line.len, JSON_REJECT_DUPLICATES, &jerr);
        if (!ev) {
            audit_walk_problem(&w, w.last, NULL, "line %" PRId64 " is not an exported event (%s)", lineno,
                               jerr.text);
            continue;
        }
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
        /* A key no export writes is not covered by the hash: an event with
         * one is not as it was exported. */
        const char *key;
        json_t *val;
        json_object_foreach(ev, key, val) {
            if (!known_key(key)) {
                audit_walk_problem(&w, json_integer_value(n), id, "line %" PRId64 " has a key an exported event"
                                   " does not have (added): %.60s", lineno, key);
                break;
            }
        }
        if (json_integer_value(n) == 1 && strcmp(prev, AUDIT_GENESIS_HASH) != 0)
            audit_walk_problem(&w, 1, id, "event 1 does not link to the start of the chain");
        /* The store hashed the data as the server wrote it: compact, keys sorted. */
        char *text = json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        if (!text) {
            json_decref(ev);
            buf_free(&lr->line);
            free(lr);
            json_decref(w.problems);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        struct audit_record r = {.n = json_integer_value(n), .id = id, .session_id = str(ev, "session_id"),
                                 .type = str(ev, "type"), .subject = str(ev, "user"), .data = text,
                                 .seq = json_integer_value(seq), .ts = json_integer_value(ts), .prev_hash = prev,
                                 .received_at = json_is_integer(recv) ? json_integer_value(recv) : 0};
        audit_walk_event(&w, &r, hash);
        if (strcmp(r.type, AUDIT_RETENTION_TYPE) == 0) {
            const char *ch = str(data, "checkpoint_hash");
            cut_n = json_integer_value(json_object_get(data, "checkpoint_n"));
            snprintf(cut_hash, sizeof cut_hash, "%s", ch ? ch : "");
        }
        free(text);
        json_decref(ev);
    }
    buf_free(&lr->line);
    free(lr);
    if (got < 0) {
        json_decref(w.problems);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (ferror(in)) {
        json_decref(w.problems);
        snprintf(err, errlen, "cannot read the file");
        return -1;
    }
    /* Where the file starts: at the trail's beginning (event 1, linked to
     * the genesis), or later, with the events before it not in the file. */
    bool from_start = w.checked > 0 && w.first == 1 && !strcmp(w.first_prev, AUDIT_GENESIS_HASH);
    /* Or right after the checkpoint that the file's own last retention event
     * names (chained, so it is the server's word): the whole trail kept. */
    bool from_checkpoint = w.checked > 0 && cut_n >= 0 && w.first == cut_n + 1 &&
                           !strcmp(w.first_prev, cut_hash);
    *report = json_pack("{s:b,s:I,s:I,s:I,s:s,s:s,s:b,s:b,s:o}", "ok",
                        w.checked > 0 && json_array_size(w.problems) == 0, "checked", (json_int_t)w.checked,
                        "first", (json_int_t)w.first, "last", (json_int_t)w.last, "first_prev_hash",
                        w.first_prev, "last_hash", w.last_hash, "from_start", from_start, "from_checkpoint",
                        from_checkpoint, "problems", w.problems);
    return 0;
}
