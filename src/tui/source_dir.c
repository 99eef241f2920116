/* source_dir.c — a tui_source over a directory of exported session documents
 * (one JSON file per session) and an optional reviews.json, for browsing and
 * replaying offline. Read-only: reviews cannot be decided from files. */
#include "hoopctl/api.h"
#include "hoopctl/tui.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <ctype.h>
#include <string.h>
#include <sys/stat.h>

#define SOURCE_FILE_MAX (64L * 1024 * 1024)
#define SOURCE_DIR_MAX_FILES 100000

struct dir_source {
    char dir[4096];
};

int tui_source_read_session_file(const char *path, struct replay_session *out, char *err,
                                 size_t errlen)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return TUI_ERR_NOT_FOUND;
    }
    struct buf b = {.max = SOURCE_FILE_MAX};
    char chunk[65536];
    size_t n;
    int rc = TUI_OK;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (buf_append(&b, chunk, n) < 0) {
            snprintf(err, errlen, "%s: larger than %ld MB", path, SOURCE_FILE_MAX >> 20);
            rc = TUI_ERR_INVALID;
            break;
        }
    if (rc == TUI_OK && ferror(f)) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        rc = TUI_ERR_FAILED;
    }
    if (f != stdin)
        fclose(f);
    if (rc == TUI_OK) {
        char why[256];
        if (replay_session_from_json(b.data ? (const char *)b.data : "", b.len, out, why,
                                     sizeof why) < 0) {
            snprintf(err, errlen, "%s: %s", path, why);
            rc = TUI_ERR_INVALID;
        }
    }
    buf_free(&b);
    return rc;
}

static bool is_session_file(const char *name)
{
    size_t n = strlen(name);
    return n > 5 && strcmp(name + n - 5, ".json") == 0 && strcmp(name, "reviews.json") != 0 &&
           name[0] != '.';
}

static int cmp_rows(const void *a, const void *b)
{
    const struct tui_session_row *x = a, *y = b;
    /* newest first */
    return x->started_ms < y->started_ms ? 1 : x->started_ms > y->started_ms ? -1 : strcmp(x->id, y->id);
}

static void row_from_session(const struct replay_session *s, struct tui_session_row *row)
{
    memset(row, 0, sizeof *row);
    snprintf(row->id, sizeof row->id, "%s", s->id);
    snprintf(row->user, sizeof row->user, "%s", s->user);
    snprintf(row->connection, sizeof row->connection, "%s", s->connection);
    snprintf(row->state, sizeof row->state, "%s", s->state);
    row->started_ms = s->started_ms;
    row->ended_ms = s->ended_ms;
    row->statements = s->nstatements;
    row->events = s->nstatements;
    row->denials = replay_session_count(s, "deny");
    row->reviews = replay_session_count(s, "review");
}

/* Read every session file of the directory in turn; visit returns nonzero to
 * stop (and keep the session: it then owns it). Unreadable files are counted
 * and the first one's error kept in firstbad. */
static int dir_walk(const struct dir_source *d, int (*visit)(void *arg, struct replay_session *s),
                    void *arg, int *bad, char *firstbad, size_t badlen, char *err, size_t errlen)
{
    DIR *dh = opendir(d->dir);
    if (!dh) {
        snprintf(err, errlen, "%s: %s", d->dir, strerror(errno));
        return TUI_ERR_UNAVAILABLE;
    }
    struct dirent *de;
    int files = 0, stop = 0;
    while (!stop && (de = readdir(dh)) && files < SOURCE_DIR_MAX_FILES) {
        if (!is_session_file(de->d_name))
            continue;
        files++;
        char path[8192], why[300];
        snprintf(path, sizeof path, "%s/%s", d->dir, de->d_name);
        struct replay_session s;
        if (tui_source_read_session_file(path, &s, why, sizeof why) != TUI_OK) {
            if (!(*bad)++)
                snprintf(firstbad, badlen, "%s", why);
            continue;
        }
        stop = visit(arg, &s);
        if (!stop)
            replay_session_free(&s);
    }
    closedir(dh);
    return TUI_OK;
}

struct rows_acc {
    struct tui_session_row *rows;
    int n, cap;
};

static int add_row(void *arg, struct replay_session *s)
{
    struct rows_acc *acc = arg;
    if (acc->n == acc->cap) {
        int cap = acc->cap ? acc->cap * 2 : 32;
        struct tui_session_row *r = realloc(acc->rows, (size_t)cap * sizeof *r);
        if (!r)
            return 0; /* out of memory: list what we have */
        acc->rows = r;
        acc->cap = cap;
    }
    row_from_session(s, &acc->rows[acc->n++]);
    return 0;
}

static int dir_sessions(void *self, const char *cursor, struct tui_session_row **rows, int *n,
                        char next[TUI_CURSOR_MAX], char *err, size_t errlen)
{
    (void)cursor; /* one page: the whole directory */
    next[0] = 0;
    struct rows_acc acc = {0};
    int bad = 0;
    char firstbad[300] = "";
    if (err && errlen)
        err[0] = 0;
    int rc = dir_walk(self, add_row, &acc, &bad, firstbad, sizeof firstbad, err, errlen);
    if (acc.n > 1)
        qsort(acc.rows, (size_t)acc.n, sizeof *acc.rows, cmp_rows);
    *rows = acc.rows;
    *n = acc.n;
    /* a broken file is reported, the good ones are still listed */
    if (rc == TUI_OK && bad)
        snprintf(err, errlen, "%d unreadable session file%s: %s", bad, bad == 1 ? "" : "s", firstbad);
    return rc;
}

struct find_acc {
    const char *id;
    struct replay_session *out;
    bool found;
};

static int find_session(void *arg, struct replay_session *s)
{
    struct find_acc *f = arg;
    if (strcmp(s->id, f->id) != 0)
        return 0;
    *f->out = *s;
    f->found = true;
    return 1;
}

static int dir_session(void *self, const char *id, struct replay_session *out, char *err,
                       size_t errlen)
{
    struct dir_source *d = self;
    struct find_acc f = {id, out, false};
    int bad = 0;
    char firstbad[300];
    int rc = dir_walk(d, find_session, &f, &bad, firstbad, sizeof firstbad, err, errlen);
    if (rc == TUI_OK && !f.found) {
        snprintf(err, errlen, "no session %s in %s", id, d->dir);
        rc = TUI_ERR_NOT_FOUND;
    }
    return rc;
}

void tui_review_clear(struct tui_review *r)
{
    free(r->statement);
    free(r->params);
    r->statement = r->params = NULL;
}

void tui_reviews_free(struct tui_review *r, int n)
{
    for (int i = 0; i < n && r; i++)
        tui_review_clear(&r[i]);
    free(r);
}

static void copy_member(char *dst, size_t len, const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    snprintf(dst, len, "%s", json_is_string(v) ? json_string_value(v) : "");
}

int tui_review_from_json(const json_t *o, struct tui_review *r)
{
    memset(r, 0, sizeof *r);
    if (!json_is_object(o) || !json_is_string(json_object_get(o, "id")))
        return -1;
    copy_member(r->id, sizeof r->id, o, "id");
    /* The verified subject first (a column or a prompt that cuts the text
     * keeps it); the display name, a claim the user may be able to edit at
     * the IdP, only after it, its blanks run together: "carol (Carol)". */
    const char *name = json_string_value(json_object_get(o, "requester_name"));
    const char *sub = json_string_value(json_object_get(o, "requester"));
    snprintf(r->requester, sizeof r->requester, "%s", sub ? sub : "");
    size_t at = strlen(r->requester);
    if (name && *name && sub && strcmp(name, sub) != 0 && at + 4 < sizeof r->requester) {
        r->requester[at++] = ' ';
        r->requester[at++] = '(';
        bool blank = false;
        for (const char *p = name; *p && at + 2 < sizeof r->requester; p++) {
            bool b = isspace((unsigned char)*p) || iscntrl((unsigned char)*p);
            if (!(b && blank))
                r->requester[at++] = b ? ' ' : *p;
            blank = b;
        }
        r->requester[at++] = ')';
        r->requester[at] = '\0';
    }
    copy_member(r->connection, sizeof r->connection, o, "connection");
    copy_member(r->session_id, sizeof r->session_id, o, "session_id");
    copy_member(r->status, sizeof r->status, o, "status");
    copy_member(r->rule, sizeof r->rule, o, "rule");
    copy_member(r->decided_by, sizeof r->decided_by, o, "decided_by");
    copy_member(r->reason, sizeof r->reason, o, "reason");
    const json_t *c = json_object_get(o, "created_at"), *dd = json_object_get(o, "decided_at");
    r->created_ms = json_is_integer(c) ? json_integer_value(c) : 0;
    r->decided_ms = json_is_integer(dd) ? json_integer_value(dd) : 0;
    const json_t *st = json_object_get(o, "statement");
    r->statement = strdup(json_is_string(st) ? json_string_value(st) : "");
    struct buf params = {0};
    bool ok = api_review_params_text(o, "  ", &params) == 0;
    r->params = ok ? strdup(buf_cstr(&params)) : NULL;
    buf_free(&params);
    if (!r->statement || !r->params) {
        tui_review_clear(r);
        return -1;
    }
    return 0;
}

static int dir_reviews(void *self, const char *status, int64_t *cursor, int wait_ms,
                       struct tui_review **out, int *n, char *err, size_t errlen)
{
    struct dir_source *d = self;
    (void)cursor;
    (void)wait_ms; /* files do not change under us: nothing to wait for */
    *out = NULL;
    *n = 0;
    char path[8192];
    snprintf(path, sizeof path, "%s/reviews.json", d->dir);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return TUI_OK; /* no reviews exported */
    if (sb.st_size > SOURCE_FILE_MAX) {
        snprintf(err, errlen, "%s: too large", path);
        return TUI_ERR_INVALID;
    }
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    /* The array `hoopctl -o json reviews list` prints, or {"reviews": [...]}
     * as the server's API answers. */
    const json_t *arr = json_is_array(root) ? root : json_object_get(root, "reviews");
    if (!root || !json_is_array(arr)) {
        snprintf(err, errlen, "%s: %s", path, root ? "neither an array of reviews nor {\"reviews\": [...]}" : je.text);
        json_decref(root);
        return TUI_ERR_INVALID;
    }
    size_t total = json_array_size(arr);
    *out = calloc(total + 1, sizeof **out);
    if (!*out) {
        json_decref(root);
        return TUI_ERR_FAILED;
    }
    bool want_pending = strcmp(status, "pending") == 0;
    for (size_t i = 0; i < total; i++) {
        struct tui_review *r = &(*out)[*n];
        if (tui_review_from_json(json_array_get(arr, i), r) < 0)
            continue;
        if ((strcmp(r->status, "pending") == 0) != want_pending) {
            tui_review_clear(r);
            continue;
        }
        (*n)++;
    }
    json_decref(root);
    return TUI_OK;
}

static int dir_decide(void *self, const char *id, bool approve, const char *reason, char *err,
                      size_t errlen)
{
    (void)self;
    (void)approve;
    (void)reason;
    (void)id;
    snprintf(err, errlen, "exported files are read-only; deciding needs a server");
    return TUI_ERR_READ_ONLY;
}

static void dir_close(void *self)
{
    free(self);
}

static const struct tui_source_ops dir_ops = {
    .sessions = dir_sessions,
    .session = dir_session,
    .reviews = dir_reviews,
    .decide = dir_decide,
    .close = dir_close,
};

int tui_source_open_dir(struct tui_source *src, const char *dir, char *err, size_t errlen)
{
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        snprintf(err, errlen, "%s: not a directory", dir);
        return TUI_ERR_NOT_FOUND;
    }
    struct dir_source *d = calloc(1, sizeof *d);
    if (!d)
        return TUI_ERR_FAILED;
    snprintf(d->dir, sizeof d->dir, "%s", dir);
    src->ops = &dir_ops;
    src->self = d;
    snprintf(src->description, sizeof src->description, "files in %s (read-only)", dir);
    return TUI_OK;
}

void tui_source_close(struct tui_source *src)
{
    if (src->ops && src->ops->close)
        src->ops->close(src->self);
    src->ops = NULL;
    src->self = NULL;
}

const char *tui_status_name(int status)
{
    switch (status) {
    case TUI_OK: return "ok";
    case TUI_ERR_UNAVAILABLE: return "unavailable";
    case TUI_ERR_AUTH: return "not authenticated (401)";
    case TUI_ERR_FORBIDDEN: return "forbidden (403)";
    case TUI_ERR_NOT_FOUND: return "not found";
    case TUI_ERR_CONFLICT: return "conflict";
    case TUI_ERR_READ_ONLY: return "read-only";
    case TUI_ERR_INVALID: return "invalid data";
    default: return "failed";
    }
}

int tui_status_exit_code(int status)
{
    switch (status) {
    case TUI_ERR_AUTH: return 3;
    case TUI_ERR_FORBIDDEN: return 4;
    case TUI_ERR_UNAVAILABLE: return 5;
    default: return 1;
    }
}
