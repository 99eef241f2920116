/* session.c — the per-session prepared-statement tracker: what each SQL
 * PREPARE name and extended-protocol statement name was prepared as, so that
 * EXECUTE / Execute are judged by the statement that runs; and what each SQL
 * cursor was declared as, for FETCH and MOVE, while it may still exist. */
#include "policy_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SESSION_MAX_STATEMENTS 8192
/* What the texts of SQL PREPAREs (kept for reviews of their EXECUTEs) may
 * take in all, over the session's life: past it they are not kept. */
#define SESSION_MAX_PREPARE_TEXT (16u << 20)

struct session_entry {
    char *name;
    struct policy_stmt stmt;
    bool cursor;                /* a DECLAREd cursor's (under cursor_key) */
    bool hold;                  /* ...WITH HOLD: it outlives a transaction that commits */
    uint64_t txn;               /* ...declared in transaction txn (policy_session.txn then) */
};

struct policy_session {
    struct session_entry *entries;
    size_t n, cap;
    bool (*portal_exists)(void *ctx, const char *name);
    void *portal_ctx;
    uint64_t txn;               /* counts the transactions that ended */
    size_t ncursors;            /* entries that are cursors */
    bool search_path_changed;   /* sticky: RESET may not restore what we assume */
    bool catalog_not_first;     /* sticky: a search_path may have put a schema before pg_catalog */
    size_t text_bytes;          /* of PREPARE texts kept (SESSION_MAX_PREPARE_TEXT) */
};

void policy_session_mark_search_path(struct policy_session *s)
{
    s->search_path_changed = true;
    s->catalog_not_first = true; /* the startup packet's: its value is not read */
}

void policy_session_note_search_path(struct policy_session *s, bool catalog_not_first)
{
    s->search_path_changed = true;
    s->catalog_not_first = s->catalog_not_first || catalog_not_first;
}

bool policy_session_catalog_first(const struct policy_session *s)
{
    return !s->catalog_not_first;
}

bool policy_session_search_path_changed(const struct policy_session *s)
{
    return s->search_path_changed;
}

struct policy_session *policy_session_new(void)
{
    return calloc(1, sizeof(struct policy_session));
}

void policy_session_free(struct policy_session *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->entries[i].name);
        policy_stmt_clear(&s->entries[i].stmt);
    }
    free(s->entries);
    free(s);
}

static struct session_entry *find(const struct policy_session *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->entries[i].name, name) == 0)
            return &s->entries[i];
    return NULL;
}

/* Whether the session may keep n more bytes of PREPARE text (and counts
 * them when it may). */
static bool text_budget(struct policy_session *s, size_t n)
{
    if (n > SESSION_MAX_PREPARE_TEXT - s->text_bytes)
        return false;
    s->text_bytes += n;
    return true;
}

/* Whether text is one of the POLICY_TEXT_SEP-separated entries of list. */
static bool has_entry(const char *list, const char *text)
{
    size_t n = strlen(text);
    for (const char *e = list; e; e = strchr(e, POLICY_TEXT_SEP), e = e ? e + 1 : NULL)
        if (strncmp(e, text, n) == 0 && (e[n] == '\0' || e[n] == POLICY_TEXT_SEP))
            return true;
    return false;
}

/* Add text (another PREPARE of the name, which the server may have refused)
 * to into's, an entry after POLICY_TEXT_SEP, unless it is one already. Past
 * the budget a last entry says that more were sent. */
static int merge_text(struct policy_session *s, struct policy_stmt *into, const char *text)
{
    static const char more[] = "-- (and more PREPAREs of this name, whose text was not kept)";
    if (!text || !into->text || has_entry(into->text, text) || has_entry(into->text, more))
        return 0;
    size_t have = strlen(into->text);
    const char *add = text_budget(s, strlen(text) + 1) ? text : more;
    char *t = realloc(into->text, have + 1 + strlen(add) + 1);
    if (!t)
        return -1;
    snprintf(t + have, 1 + strlen(add) + 1, "%c%s", POLICY_TEXT_SEP, add);
    into->text = t;
    return 0;
}

/* Store st under name. replace: the unnamed statement, or a name the protocol
 * closed; otherwise an existing entry keeps the union of both classifications,
 * because the server may have refused the second PREPARE (the name existed) —
 * judging EXECUTE by the newer text alone would let the older one through. */
static int store(struct policy_session *s, const char *name, const struct policy_stmt *st,
                 bool replace, char err[POLICY_ERR_MAX])
{
    struct session_entry *e = find(s, name);
    if (e && !replace) {
        if (policy_stmt_merge(&e->stmt, st) < 0 || merge_text(s, &e->stmt, st->text) < 0)
            goto oom;
        return 0;
    }
    struct policy_stmt copy;
    if (policy_stmt_copy(&copy, st) < 0)
        goto oom;
    if (e) {
        policy_stmt_clear(&e->stmt);
        e->stmt = copy;
        return 0;
    }
    if (s->n >= SESSION_MAX_STATEMENTS) {
        policy_stmt_clear(&copy);
        snprintf(err, POLICY_ERR_MAX, "too many prepared statements in this session (limit %d)",
                 SESSION_MAX_STATEMENTS);
        return -1;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        struct session_entry *ne = realloc(s->entries, cap * sizeof(*ne));
        if (!ne) {
            policy_stmt_clear(&copy);
            goto oom;
        }
        s->entries = ne;
        s->cap = cap;
    }
    s->entries[s->n] = (struct session_entry){0}; /* a dropped entry's flags may be left there */
    if (!(s->entries[s->n].name = strdup(name))) {
        policy_stmt_clear(&copy);
        goto oom;
    }
    s->entries[s->n++].stmt = copy;
    return 0;
oom:
    snprintf(err, POLICY_ERR_MAX, "out of memory");
    return -1;
}

int policy_session_remember(struct policy_session *s, const char *name,
                            const struct policy_stmt *st, char err[POLICY_ERR_MAX])
{
    struct policy_stmt shallow = *st; /* store copies what it keeps */
    if (!find(s, name) && st->text && !text_budget(s, strlen(st->text) + 1))
        shallow.text = NULL;
    return store(s, name, &shallow, false, err);
}

/* Cursors live beside prepared statements, under a name no statement can
 * take by accident (a collision only adds to what is masked). */
#define CURSOR_KEY_MAX (POLICY_NAME_MAX + 16)
static void cursor_key(const char *name, char out[CURSOR_KEY_MAX])
{
    snprintf(out, CURSOR_KEY_MAX, "\x1f" "cursor %s", name ? name : "");
}

int policy_session_remember_cursor(struct policy_session *s, const char *name, const struct policy_stmt *st,
                                   bool hold, char err[POLICY_ERR_MAX])
{
    char key[CURSOR_KEY_MAX];
    cursor_key(name, key);
    /* A FETCH is judged by the DECLARE's classification; its text is not
     * kept (a cursor declared again and again would pile texts up, in the
     * budget of the PREPAREs' texts that reviews show). */
    struct policy_stmt shallow = *st;
    shallow.text = NULL;
    if (store(s, key, &shallow, false, err) < 0)
        return -1;
    struct session_entry *e = find(s, key);
    s->ncursors += !e->cursor;
    e->cursor = true;
    e->hold = e->hold || hold; /* merged with an earlier DECLARE of the name: either may be the one */
    e->txn = s->txn;
    return 0;
}

const struct policy_stmt *policy_session_lookup_cursor(const struct policy_session *s, const char *name)
{
    if (s->portal_exists && s->portal_exists(s->portal_ctx, name ? name : ""))
        return NULL; /* Bind made a portal of that name: the DECLARE does not say what it reads */
    char key[CURSOR_KEY_MAX];
    cursor_key(name, key);
    return policy_session_lookup(s, key);
}

static void drop_entry(struct policy_session *s, struct session_entry *e)
{
    s->ncursors -= e->cursor;
    free(e->name);
    policy_stmt_clear(&e->stmt);
    *e = s->entries[--s->n];
}

void policy_session_forget_cursors(struct policy_session *s, const char *name, enum policy_cursors which)
{
    char key[CURSOR_KEY_MAX];
    cursor_key(name, key);
    bool one = which == POLICY_CURSORS_NAMED || which == POLICY_CURSORS_BUT_NAMED;
    for (size_t i = s->n; s->ncursors && i-- > 0;) {
        struct session_entry *e = &s->entries[i];
        bool named = one && strcmp(e->name, key) == 0;
        bool go = which == POLICY_CURSORS_NAMED       ? named
                  : which == POLICY_CURSORS_BUT_NAMED ? !named
                  : which == POLICY_CURSORS_UNHELD    ? !e->hold
                  : which == POLICY_CURSORS_THIS_TXN  ? !e->hold || e->txn == s->txn
                                                      : true;
        if (e->cursor && go)
            drop_entry(s, e);
    }
}

bool policy_session_has_cursors(const struct policy_session *s)
{
    return s->ncursors > 0;
}

void policy_session_end_transaction(struct policy_session *s, bool rolled_back)
{
    policy_session_forget_cursors(s, NULL, rolled_back ? POLICY_CURSORS_THIS_TXN : POLICY_CURSORS_UNHELD);
    s->txn++;
}

void policy_session_set_portal_check(struct policy_session *s, bool (*exists)(void *ctx, const char *name),
                                     void *ctx)
{
    s->portal_exists = exists;
    s->portal_ctx = ctx;
}

/* Classify sql for a Parse, through the policy's cache under a key no group
 * list can produce (the decision there is unused; only the classification). */
static int classify_for_parse(struct policy *p, struct policy_session *s, const char *sql,
                              struct policy_analysis *a, char err[POLICY_ERR_MAX])
{
    static const char parse_key[] = "\x1d";
    bool cache = p && !s->search_path_changed && strlen(sql) <= POLICY_CACHE_MAX_SQL;
    struct policy_decision unused;
    if (cache && policy_cache_get(&p->cache, parse_key, sql, &unused, a))
        return 0;
    if (policy_classify(sql, s, a, err) < 0)
        return -1;
    if (cache && a->cacheable) {
        memset(&unused, 0, sizeof(unused));
        policy_cache_put(&p->cache, parse_key, sql, &unused, a, false);
    }
    return 0;
}

int policy_session_parse(struct policy *p, struct policy_session *s, const char *name, const char *sql,
                         char err[POLICY_ERR_MAX])
{
    struct policy_analysis a;
    if (classify_for_parse(p, s, sql, &a, err) < 0)
        return -1;
    if (a.nstmts > 1) {
        policy_analysis_free(&a);
        snprintf(err, POLICY_ERR_MAX, "cannot insert multiple commands into a prepared statement");
        return -1;
    }
    struct policy_stmt empty = {0};
    int rc;
    if (a.nstmts == 0) {
        rc = policy_stmt_add_kind(&empty, "EMPTY");
        rc = rc < 0 ? rc : store(s, name, &empty, name[0] == '\0', err);
        policy_stmt_clear(&empty);
    } else {
        rc = store(s, name, &a.stmts[0], name[0] == '\0', err);
    }
    policy_analysis_free(&a);
    return rc;
}

void policy_session_close(struct policy_session *s, const char *name)
{
    /* A protocol Close always succeeds at the server, so the entry may go.
     * (SQL DEALLOCATE is not trusted the same way: it fails inside an aborted
     * transaction, so the classifier keeps the entry.) */
    struct session_entry *e = find(s, name);
    if (e)
        drop_entry(s, e);
}

const struct policy_stmt *policy_session_lookup(const struct policy_session *s, const char *name)
{
    const struct session_entry *e = name ? find(s, name) : NULL;
    return e ? &e->stmt : NULL;
}

size_t policy_session_count(const struct policy_session *s)
{
    return s->n;
}
