/* session.c — a recorded session from its audit JSON (session attributes and
 * events in order) into statements with their results, checked field by field
 * so that a malformed document is refused with a message, not half-read. */
#include "hoopctl/replay.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Everything a recording holds was written by others (the session's user,
 * its database, the people whose data it read): every string is kept as
 * util_terminal_safe makes it, so that what is replayed cannot steer the
 * terminal it is shown on. Text of several lines keeps them. */
static char *shown_dup_lines(const char *s)
{
    return util_terminal_safe(s, true);
}

static void copy_str(char *dst, size_t len, const char *src)
{
    char *safe = util_terminal_safe(src, false);
    snprintf(dst, len, "%s", safe ? safe : "");
    free(safe);
}

/* A string member, or NULL when absent or not a string. */
static const char *jstr(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static char *dup_or_null(const char *s)
{
    return s ? util_terminal_safe(s, false) : NULL;
}

/* An integer member (a JSON integer), or dflt. */
static int64_t jint(const json_t *o, const char *key, int64_t dflt)
{
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

/* An event's time in ms: "time" (the API) or "ts". */
static int64_t event_time(const json_t *ev)
{
    int64_t t = jint(ev, "time", -1);
    return t >= 0 ? t : jint(ev, "ts", 0);
}

static void statement_free(struct replay_statement *st)
{
    free(st->sql);
    free(st->rule);
    free(st->command_tag);
    free(st->error_severity);
    free(st->error_message);
    for (int i = 0; i < st->nnotices; i++)
        free(st->notices[i]);
    free(st->notices);
    free(st->review_id);
    free(st->review_status);
    free(st->review_decided_by);
    free(st->review_reason);
    for (int i = 0; i < st->ncols; i++)
        free(st->col_names[i]);
    free(st->col_names);
    free(st->col_oids);
    if (st->cells)
        for (int64_t i = 0; i < (int64_t)st->nrows * st->ncols; i++)
            free(st->cells[i]);
    free(st->cells);
    memset(st, 0, sizeof *st);
}

void replay_session_free(struct replay_session *s)
{
    for (int i = 0; i < s->nstatements; i++)
        statement_free(&s->statements[i]);
    free(s->statements);
    memset(s, 0, sizeof *s);
}

static int statement_from_event(const json_t *ev, const json_t *data, struct replay_statement *st,
                                char *err, size_t errlen)
{
    const char *sql = jstr(data, "text");
    if (!sql)
        sql = jstr(data, "sql");
    if (!sql) {
        set_err(err, errlen, "statement event without \"sql\"");
        return -1;
    }
    st->seq = jint(ev, "seq", -1);
    st->ts_ms = event_time(ev);
    st->duration_ms = jint(data, "duration_ms", -1);
    if (st->duration_ms < 0 && jint(data, "duration_us", -1) >= 0)
        st->duration_ms = jint(data, "duration_us", 0) / 1000;
    st->rows = jint(data, "rows", -1);
    st->masked = jint(data, "masked", 0);
    const json_t *mc = json_object_get(data, "masked_counts");
    if (json_is_object(mc)) {
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)mc, k, v) if (json_is_integer(v) && json_integer_value(v) > 0)
            st->masked += json_integer_value(v);
    }
    copy_str(st->decision, sizeof st->decision, jstr(data, "decision") ? jstr(data, "decision") : "allow");
    st->sql = shown_dup_lines(sql);
    st->rule = dup_or_null(jstr(data, "rule"));
    st->command_tag = dup_or_null(jstr(data, "command_tag"));
    const json_t *e = json_object_get(data, "error");
    if (json_is_object(e)) {
        const char *sev = jstr(e, "severity");
        st->error_severity = shown_dup_lines(sev ? sev : "ERROR");
        st->error_message = shown_dup_lines(jstr(e, "message") ? jstr(e, "message") : "");
    } else if (json_is_string(e)) {
        st->error_severity = shown_dup_lines("ERROR");
        st->error_message = shown_dup_lines(json_string_value(e));
    }
    const json_t *ns = json_object_get(data, "notices");
    if (json_is_array(ns) && json_array_size(ns) > 0) {
        size_t n = json_array_size(ns);
        if (n > 10000) {
            set_err(err, errlen, "too many notices on one statement (%zu)", n);
            return -1;
        }
        st->notices = calloc(n, sizeof *st->notices);
        if (!st->notices)
            return -1;
        for (size_t i = 0; i < n; i++) {
            const json_t *x = json_array_get(ns, i);
            if (json_is_string(x))
                st->notices[st->nnotices++] = shown_dup_lines(json_string_value(x));
        }
    }
    const json_t *rv = json_object_get(data, "review");
    if (json_is_object(rv)) {
        st->review_id = dup_or_null(jstr(rv, "id"));
        st->review_status = dup_or_null(jstr(rv, "status"));
        st->review_decided_by = dup_or_null(jstr(rv, "decided_by"));
        st->review_reason = dup_or_null(jstr(rv, "reason"));
    }
    if (!st->review_id && jstr(data, "review_id"))
        st->review_id = shown_dup_lines(jstr(data, "review_id"));
    return 0;
}

/* The text of a cell: strings as they are, NULL as NULL, other JSON as text. */
static int cell_text(const json_t *v, char **out)
{
    *out = NULL;
    if (json_is_null(v))
        return 0;
    char *text = json_is_string(v) ? NULL : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    if (json_is_string(v) || text)
        *out = util_terminal_safe(text ? text : json_string_value(v), true);
    free(text);
    return *out ? 0 : -1;
}

/* The tag a completed statement reported ("UPDATE 4", "INSERT 0 1",
 * "SELECT 2"): shown for statements without rows (several, one a line, for a
 * multi-statement string); its last number is the statement's row count. */
static int command_tag_add(struct replay_statement *st, const char *tag)
{
    const char *num = strrchr(tag, ' ');
    if (num && num[1] >= '0' && num[1] <= '9' && strspn(num + 1, "0123456789") == strlen(num + 1) &&
        strlen(num + 1) < 19)
        st->rows = strtoll(num + 1, NULL, 10);
    char *safe = util_terminal_safe(tag, false);
    if (!safe)
        return -1;
    if (!st->command_tag) {
        st->command_tag = safe;
        return 0;
    }
    size_t a = strlen(st->command_tag), b = strlen(safe);
    char *joined = realloc(st->command_tag, a + b + 2);
    if (!joined) {
        free(safe);
        return -1;
    }
    joined[a] = '\n';
    memcpy(joined + a + 1, safe, b + 1);
    free(safe);
    st->command_tag = joined;
    return 0;
}

/* A "result" event (columns, rows) or a "completion" one (no columns), as
 * hoopctl connect records them: the command tag, row count, duration and
 * the database's own error ride on either. */
static int result_from_event(const json_t *data, bool completion, struct replay_statement *st, char *err,
                             size_t errlen)
{
    const json_t *cols = json_object_get(data, "columns");
    const json_t *rows = json_object_get(data, "rows");
    if ((!completion && !json_is_array(cols)) || (cols && !json_is_array(cols)) || (rows && !json_is_array(rows))) {
        set_err(err, errlen, "result event without a \"columns\" array");
        return -1;
    }
    size_t nc = json_array_size(cols), nr = json_array_size(rows);
    const char *tag = jstr(data, "command_tag");
    if (tag && command_tag_add(st, tag) < 0)
        return -1;
    const json_t *e = json_object_get(data, "error"); /* the database's own, as hoopctl connect records it */
    if (json_is_string(e) && !st->error_message) {
        st->error_severity = shown_dup_lines("ERROR");
        st->error_message = shown_dup_lines(json_string_value(e));
        if (!st->error_severity || !st->error_message)
            return -1;
    }
    const json_t *ns = json_object_get(data, "notices"); /* printed while it ran */
    if (json_is_array(ns) && json_array_size(ns) > 0) {
        size_t n = json_array_size(ns);
        if (n > 10000 || (size_t)st->nnotices > 10000) {
            set_err(err, errlen, "too many notices on one statement (%zu)", n);
            return -1;
        }
        char **more = realloc(st->notices, ((size_t)st->nnotices + n) * sizeof *more);
        if (!more)
            return -1;
        st->notices = more;
        for (size_t i = 0; i < n; i++) {
            const json_t *x = json_array_get(ns, i);
            if (json_is_string(x) && !(st->notices[st->nnotices++] = shown_dup_lines(json_string_value(x))))
                return -1;
        }
    }
    if (st->rows < 0 && jint(data, "row_count", -1) >= 0)
        st->rows = jint(data, "row_count", 0);
    if (jint(data, "duration_us", -1) >= 0)
        st->duration_ms = jint(data, "duration_us", 0) / 1000;
    if (nc == 0 && (completion || tag || json_is_string(e)))
        return 0; /* a statement without rows: its tag or error is all psql showed */
    if (nc == 0 || nc > REPLAY_MAX_COLUMNS) {
        set_err(err, errlen, "result with %zu columns", nc);
        return -1;
    }
    if (nr > 10000000 / nc) {
        set_err(err, errlen, "result with too many cells (%zu rows)", nr);
        return -1;
    }
    if (st->ncols) {
        set_err(err, errlen, "two results for one statement");
        return -1;
    }
    st->col_names = calloc(nc, sizeof *st->col_names);
    st->col_oids = calloc(nc, sizeof *st->col_oids);
    st->cells = calloc(nr * nc + 1, sizeof *st->cells);
    if (!st->col_names || !st->col_oids || !st->cells)
        return -1;
    st->ncols = (int)nc;
    st->nrows = (int)nr;
    for (size_t i = 0; i < nc; i++) {
        const json_t *c = json_array_get(cols, i);
        const char *name = json_is_string(c) ? json_string_value(c) : jstr(c, "name");
        st->col_names[i] = util_terminal_safe(name ? name : "?column?", false);
        const json_t *types = json_object_get(data, "column_types"); /* as hoopctl connect records */
        int64_t oid = json_is_object(c)              ? jint(c, "type_oid", 25)
                      : json_is_integer(json_array_get(types, i)) ? json_integer_value(json_array_get(types, i))
                                                                  : 25;
        st->col_oids[i] = oid >= 0 && oid <= UINT32_MAX ? (uint32_t)oid : 25;
        if (!st->col_names[i])
            return -1;
    }
    for (size_t r = 0; r < nr; r++) {
        const json_t *row = json_array_get(rows, r);
        if (!json_is_array(row) || json_array_size(row) != nc) {
            set_err(err, errlen, "result row %zu does not have %zu values", r + 1, nc);
            return -1;
        }
        for (size_t c = 0; c < nc; c++)
            if (cell_text(json_array_get(row, c), &st->cells[r * nc + c]) < 0)
                return -1;
    }
    if (st->rows < 0)
        st->rows = (int64_t)nr;
    return 0;
}

static void session_attrs(const json_t *o, struct replay_session *s)
{
    if (!json_is_object(o))
        return;
    const char *v;
    if ((v = jstr(o, "id")))
        copy_str(s->id, sizeof s->id, v);
    if ((v = jstr(o, "user")) || (v = jstr(o, "subject_name")) || (v = jstr(o, "subject")))
        copy_str(s->user, sizeof s->user, v);
    if ((v = jstr(o, "connection")))
        copy_str(s->connection, sizeof s->connection, v);
    if ((v = jstr(o, "database")))
        copy_str(s->database, sizeof s->database, v);
    if ((v = jstr(o, "state")))
        copy_str(s->state, sizeof s->state, v);
    int64_t t;
    if ((t = jint(o, "started_at", 0)))
        s->started_ms = t;
    if ((t = jint(o, "ended_at", 0)))
        s->ended_ms = t;
}

static int session_from_root(const json_t *root, struct replay_session *s, char *err, size_t errlen)
{
    if (!json_is_object(root)) {
        set_err(err, errlen, "a session document is a JSON object");
        return -1;
    }
    /* {"session": {...}, "events": [...]}, as the TUI builds it from the
     * API; or what `hoopctl -o json sessions show ID` writes: the session's
     * own fields ("events" there is their count) and every event of it, in
     * order, in "event_list". */
    const json_t *attrs = json_object_get(root, "session");
    const json_t *evs = json_object_get(root, "events");
    if (!json_is_array(evs) && json_is_array(json_object_get(root, "event_list"))) {
        attrs = root;
        evs = json_object_get(root, "event_list");
    }
    if (!json_is_array(evs)) {
        set_err(err, errlen,
                "session document without an \"events\" array (or the \"event_list\" of "
                "hoopctl -o json sessions show)");
        return -1;
    }
    session_attrs(attrs, s);
    size_t n = json_array_size(evs), nstmt = 0;
    for (size_t i = 0; i < n; i++)
        if (json_is_string(json_object_get(json_array_get(evs, i), "type")) &&
            strcmp(jstr(json_array_get(evs, i), "type"), "statement") == 0)
            nstmt++;
    if (nstmt > REPLAY_MAX_STATEMENTS) {
        set_err(err, errlen, "session with %zu statements (at most %d)", nstmt, REPLAY_MAX_STATEMENTS);
        return -1;
    }
    s->statements = calloc(nstmt + 1, sizeof *s->statements);
    if (!s->statements)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const json_t *ev = json_array_get(evs, i);
        const char *type = jstr(ev, "type");
        const json_t *data = json_object_get(ev, "data");
        if (!type) {
            set_err(err, errlen, "event %zu has no \"type\"", i + 1);
            return -1;
        }
        if (data && !json_is_object(data)) {
            set_err(err, errlen, "event %zu: \"data\" is not an object", i + 1);
            return -1;
        }
        if (strcmp(type, "session_start") == 0) {
            session_attrs(data, s);
            if (!s->started_ms)
                s->started_ms = event_time(ev);
        } else if (strcmp(type, "session_end") == 0) {
            s->ended_ms = event_time(ev);
        } else if (strcmp(type, "statement") == 0) {
            struct replay_statement *st = &s->statements[s->nstatements++];
            if (statement_from_event(ev, data, st, err, errlen) < 0) {
                if (err && !*err)
                    set_err(err, errlen, "out of memory");
                return -1;
            }
        } else if (strcmp(type, "result") == 0 || strcmp(type, "completion") == 0) {
            struct replay_statement *owner = NULL;
            int64_t of = jint(data, "statement_seq", -1);
            for (int k = s->nstatements - 1; k >= 0 && of >= 0 && !owner; k--)
                if (s->statements[k].seq == of)
                    owner = &s->statements[k];
            if (!owner && of < 0 && s->nstatements > 0)
                owner = &s->statements[s->nstatements - 1];
            if (!owner) {
                set_err(err, errlen, "event %zu: a result before its statement", i + 1);
                return -1;
            }
            if (result_from_event(data, strcmp(type, "completion") == 0, owner, err, errlen) < 0) {
                if (err && !*err)
                    set_err(err, errlen, "out of memory");
                return -1;
            }
            /* a completed statement's result came when it finished */
            if (jstr(data, "command_tag") && owner->duration_ms < 0 && event_time(ev) >= owner->ts_ms)
                owner->duration_ms = event_time(ev) - owner->ts_ms;
        }
        /* other event types are not part of what the terminal showed */
    }
    if (!s->started_ms && s->nstatements)
        s->started_ms = s->statements[0].ts_ms;
    if (!s->state[0])
        copy_str(s->state, sizeof s->state, s->ended_ms ? "ended" : "active");
    if (!s->database[0])
        copy_str(s->database, sizeof s->database, s->connection[0] ? s->connection : "postgres");
    return 0;
}

int replay_session_from_json(const char *text, size_t len, struct replay_session *out, char *err,
                             size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (err && errlen)
        err[0] = 0;
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        set_err(err, errlen, "not JSON: %s (line %d)", je.text, je.line);
        return -1;
    }
    int rc = session_from_root(root, out, err, errlen);
    json_decref(root);
    if (rc < 0) {
        if (err && !*err)
            set_err(err, errlen, "out of memory");
        replay_session_free(out);
    }
    return rc;
}

int replay_session_count(const struct replay_session *s, const char *decision)
{
    int n = 0;
    for (int i = 0; i < s->nstatements; i++)
        if (strcmp(s->statements[i].decision, decision) == 0)
            n++;
    return n;
}
