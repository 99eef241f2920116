/* worker.c — the TUI's network side, off the screen's thread: one worker
 * serves the screen's requests (session list every few seconds, a session,
 * decisions, history) and one long-polls for new pending reviews. Failures go
 * to the status bar and are retried with backoff; the screen never waits. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void tui_model_status(struct tui_model *m, bool error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->status, sizeof m->status, fmt, ap);
    va_end(ap);
    m->status_error = error;
}

/* Tell the screen something changed (caller holds the lock). */
static void model_changed(struct tui_model *m)
{
    m->generation++;
    char c = 1;
    ssize_t w = write(m->wake_fd[1], &c, 1); /* a full pipe already wakes it */
    (void)w;
}

void tui_model_kick(struct tui_model *m)
{
    pthread_cond_broadcast(&m->cond);
}

/* Wait on the condition until ms pass or stop; caller holds the lock. */
static void model_sleep(struct tui_model *m, int64_t ms)
{
    struct timespec ts;
    util_deadline_ms(&ts, ms);
    if (!m->stop)
        pthread_cond_timedwait(&m->cond, &m->mu, &ts);
}

/* The cached rule of review id, or NULL (caller holds the lock). */
static const char *rule_cached(struct tui_model *m, const char *id)
{
    int n = m->nrules_seen < TUI_RULE_CACHE ? m->nrules_seen : TUI_RULE_CACHE;
    for (int i = 0; i < n; i++)
        if (strcmp(m->rules[i].id, id) == 0)
            return m->rules[i].rule;
    return NULL;
}

/* Fill the pending reviews' rules from the cache; true when some are unknown. */
static bool rules_apply(struct tui_model *m)
{
    bool missing = false;
    for (int i = 0; i < m->npending; i++) {
        struct tui_review *r = &m->pending[i];
        if (r->rule[0] || !r->session_id[0])
            continue;
        const char *rule = rule_cached(m, r->id);
        if (rule)
            snprintf(r->rule, sizeof r->rule, "%s", rule);
        else
            missing = true;
    }
    return missing;
}

/* Look the rules of up to a few pending reviews up in their sessions. */
static void rules_lookup(struct tui_model *m)
{
    struct tui_source *src = m->src;
    char ids[8][80], sids[8][80], err[256];
    int n = 0;
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < m->npending && n < 8; i++) {
        const struct tui_review *r = &m->pending[i];
        if (!r->rule[0] && r->session_id[0] && !rule_cached(m, r->id)) {
            snprintf(ids[n], sizeof ids[n], "%s", r->id);
            snprintf(sids[n], sizeof sids[n], "%s", r->session_id);
            n++;
        }
    }
    pthread_mutex_unlock(&m->mu);
    for (int k = 0; k < n; k++) {
        struct replay_session s;
        char rule[128] = "";
        if (src->ops->session(src->self, sids[k], &s, err, sizeof err) == TUI_OK) {
            for (int i = s.nstatements - 1; i >= 0; i--)
                if (s.statements[i].review_id && strcmp(s.statements[i].review_id, ids[k]) == 0 &&
                    s.statements[i].rule) {
                    snprintf(rule, sizeof rule, "%s", s.statements[i].rule);
                    break;
                }
            replay_session_free(&s);
        }
        /* remembered even when not found, so it is not asked again */
        pthread_mutex_lock(&m->mu);
        int slot = m->nrules_seen++ % TUI_RULE_CACHE;
        snprintf(m->rules[slot].id, sizeof m->rules[slot].id, "%.79s", ids[k]);
        snprintf(m->rules[slot].rule, sizeof m->rules[slot].rule, "%s", rule);
        rules_apply(m);
        model_changed(m);
        pthread_mutex_unlock(&m->mu);
    }
}

static int64_t backoff_next(int64_t cur)
{
    int64_t n = cur ? cur * 2 : TUI_RETRY_MIN_MS;
    return n > TUI_RETRY_MAX_MS ? TUI_RETRY_MAX_MS : n;
}

/* The next page of sessions (cursor), joined on the list unless a refresh
 * changed where the list ends meanwhile. */
static void sessions_more(struct tui_model *m, const char *cursor, int64_t *backoff, int64_t *next_try)
{
    struct tui_session_row *rows = NULL;
    int n = 0;
    char next[TUI_CURSOR_MAX], err[512] = "";
    int rc = m->src->ops->sessions(m->src->self, cursor, &rows, &n, next, err, sizeof err);
    pthread_mutex_lock(&m->mu);
    m->rows_more_loading = false;
    if (rc != TUI_OK) {
        *backoff = backoff_next(*backoff);
        *next_try = util_monotonic_us() / 1000 + *backoff;
        m->want_more_sessions = true; /* asked again after the backoff */
        tui_model_status(m, true, "sessions, more: retrying in %.1fs: %s", (double)*backoff / 1000.0,
                         err[0] ? err : tui_status_name(rc));
    } else if (strcmp(cursor, m->rows_next) == 0) {
        *backoff = 0;
        int room = TUI_SESSIONS_MAX - m->nrows;
        if (n > room)
            n = room > 0 ? room : 0;
        struct tui_session_row *all = realloc(m->rows, ((size_t)m->nrows + (size_t)n + 1) * sizeof *all);
        if (all) {
            memcpy(all + m->nrows, rows, (size_t)n * sizeof *rows);
            m->rows = all;
            m->nrows += n;
            snprintf(m->rows_next, sizeof m->rows_next, "%s", m->nrows >= TUI_SESSIONS_MAX ? "" : next);
            if (m->nrows >= TUI_SESSIONS_MAX)
                tui_model_status(m, false, "showing the newest %d sessions; older ones: hoopctl sessions list --cursor",
                                 TUI_SESSIONS_MAX);
        }
    }
    free(rows);
    model_changed(m);
    pthread_mutex_unlock(&m->mu);
}

static int row_index(const struct tui_model *m, const char *id)
{
    for (int i = 0; id[0] && i < m->nrows; i++)
        if (strcmp(m->rows[i].id, id) == 0)
            return i;
    return -1;
}

/* The page on screen, when it lies past the first page (nfirst rows, just
 * refreshed): fetched again so that its counts and states stay current. Only
 * that page, so a list scrolled deep costs one more request per refresh, not
 * one per page loaded. Called without the lock. */
static void sessions_refresh_shown(struct tui_model *m, int nfirst)
{
    if (!m->src->ops->cursor_after)
        return;
    char cursor[TUI_CURSOR_MAX], next[TUI_CURSOR_MAX], err[512] = "", shown[80];
    pthread_mutex_lock(&m->mu);
    int at = row_index(m, m->shown_id);
    snprintf(shown, sizeof shown, "%s", m->shown_id);
    bool past_first = at > 0 && at >= nfirst; /* rows [0, nfirst) came with the first page */
    if (past_first)
        m->src->ops->cursor_after(m->src->self, &m->rows[at - 1], cursor);
    pthread_mutex_unlock(&m->mu);
    if (!past_first)
        return;
    struct tui_session_row *rows = NULL;
    int n = 0;
    if (m->src->ops->sessions(m->src->self, cursor, &rows, &n, next, err, sizeof err) == TUI_OK) {
        pthread_mutex_lock(&m->mu);
        at = row_index(m, shown); /* the list may have changed meanwhile */
        if (at >= 0 && tui_sessions_update(m->rows, m->nrows, at, rows, n) > 0)
            model_changed(m);
        pthread_mutex_unlock(&m->mu);
    } /* else: the next refresh tries again; the first page's errors are shown */
    free(rows);
}

static void *request_main(void *arg)
{
    struct tui_model *m = arg;
    struct tui_source *src = m->src;
    int64_t next_list = 0, list_backoff = 0, hist_backoff = 0, next_hist = 0, more_backoff = 0, next_more = 0;
    char err[512];
    pthread_mutex_lock(&m->mu);
    while (!m->stop) {
        int64_t now = util_monotonic_us() / 1000;
        bool do_list = m->want_sessions || now >= next_list;
        bool do_more = m->want_more_sessions && !do_list && m->rows_next[0] && now >= next_more;
        char more_cursor[TUI_CURSOR_MAX];
        snprintf(more_cursor, sizeof more_cursor, "%s", m->rows_next);
        if (do_more) {
            m->want_more_sessions = false;
            m->rows_more_loading = true;
        }
        bool do_hist = m->want_history && now >= next_hist;
        bool do_decide = m->want_decide;
        bool do_rules = m->want_rules;
        m->want_rules = false;
        char sid[80] = "";
        bool replay = false;
        if (m->want_session[0]) {
            snprintf(sid, sizeof sid, "%s", m->want_session);
            replay = m->want_session_replay;
            m->want_session[0] = 0;
            m->want_session_replay = false;
        }
        char did[80] = "", reason[512] = "";
        bool approve = m->decide_approve;
        if (do_decide) {
            snprintf(did, sizeof did, "%s", m->decide_id);
            snprintf(reason, sizeof reason, "%s", m->decide_reason);
            m->want_decide = false;
        }
        if (!do_list && !do_hist && !do_decide && !do_rules && !sid[0] && !do_more) {
            int64_t until = next_list - now;
            if (m->want_more_sessions && m->rows_next[0] && next_more - now < until)
                until = next_more - now;
            if (m->want_history && next_hist - now < until)
                until = next_hist - now;
            model_sleep(m, until > 0 ? until : 1);
            continue;
        }
        m->want_sessions = false;
        pthread_mutex_unlock(&m->mu);

        if (do_rules)
            rules_lookup(m);

        if (do_decide) {
            err[0] = 0;
            int rc = src->ops->decide(src->self, did, approve, reason, err, sizeof err);
            pthread_mutex_lock(&m->mu);
            if (rc == TUI_OK) {
                tui_model_status(m, false, "review %.8s %s", did, approve ? "approved" : "denied");
                /* it leaves the queue now, not at the next poll */
                for (int i = 0; i < m->npending; i++)
                    if (strcmp(m->pending[i].id, did) == 0) {
                        tui_review_clear(&m->pending[i]);
                        memmove(&m->pending[i], &m->pending[i + 1],
                                (size_t)(m->npending - i - 1) * sizeof *m->pending);
                        m->npending--;
                        break;
                    }
                m->want_history = true;
                next_hist = 0;
            } else {
                tui_model_status(m, true, "could not %s review %.8s: %s", approve ? "approve" : "deny", did,
                                 err[0] ? err : tui_status_name(rc));
            }
            model_changed(m);
            pthread_mutex_unlock(&m->mu);
            do_hist = do_hist || rc == TUI_OK;
        }
        if (sid[0]) {
            struct replay_session s;
            err[0] = 0;
            int rc = src->ops->session(src->self, sid, &s, err, sizeof err);
            pthread_mutex_lock(&m->mu);
            if (rc == TUI_OK) {
                replay_session_free(&m->session);
                m->session = s;
                m->session_loaded = true;
                m->session_replay_ready = replay;
            } else {
                tui_model_status(m, true, "session %s: %s (%s)", sid, err, tui_status_name(rc));
            }
            model_changed(m);
            pthread_mutex_unlock(&m->mu);
        }
        if (do_more)
            sessions_more(m, more_cursor, &more_backoff, &next_more);
        if (do_list) {
            struct tui_session_row *rows = NULL;
            int n = 0;
            char next[TUI_CURSOR_MAX];
            err[0] = 0;
            int rc = src->ops->sessions(src->self, "", &rows, &n, next, err, sizeof err);
            int nfirst = n;
            pthread_mutex_lock(&m->mu);
            if (rc == TUI_OK) {
                /* the first page refreshed; pages loaded by scrolling stay */
                struct tui_session_row *merged = NULL;
                bool kept_tail = false;
                int nm = next[0] && m->nrows > n
                             ? tui_sessions_merge(rows, n, m->rows, m->nrows, &merged, &kept_tail)
                             : -1;
                if (nm >= 0) {
                    free(rows);
                    rows = merged;
                    n = nm;
                }
                if (!kept_tail) /* the list is this page alone: page on from it */
                    snprintf(m->rows_next, sizeof m->rows_next, "%s", next);
                free(m->rows);
                m->rows = rows;
                m->nrows = n;
                m->rows_loaded = true;
                list_backoff = 0;
                next_list = util_monotonic_us() / 1000 + TUI_REFRESH_MS;
                if (err[0])
                    tui_model_status(m, true, "%s", err);
                else if (m->status_error && strncmp(m->status, "sessions,", 9) == 0)
                    tui_model_status(m, false, "sessions: reconnected");
            } else {
                free(rows);
                list_backoff = backoff_next(list_backoff);
                next_list = util_monotonic_us() / 1000 + list_backoff;
                tui_model_status(m, true, "sessions, retrying in %.1fs: %s", (double)list_backoff / 1000.0,
                                 err[0] ? err : tui_status_name(rc));
            }
            model_changed(m);
            pthread_mutex_unlock(&m->mu);
            if (rc == TUI_OK)
                sessions_refresh_shown(m, nfirst);
        }
        if (do_hist) {
            struct tui_review *h = NULL;
            int n = 0;
            int64_t cursor = 0;
            err[0] = 0;
            int rc = src->ops->reviews(src->self, "decided", &cursor, 0, &h, &n, err, sizeof err);
            pthread_mutex_lock(&m->mu);
            if (rc == TUI_OK) {
                tui_reviews_free(m->history, m->nhistory);
                m->history = h;
                m->nhistory = n;
                m->want_history = false;
                hist_backoff = 0;
            } else {
                hist_backoff = backoff_next(hist_backoff);
                next_hist = util_monotonic_us() / 1000 + hist_backoff;
                tui_model_status(m, true, "history, retrying in %.1fs: %s", (double)hist_backoff / 1000.0,
                                 err[0] ? err : tui_status_name(rc));
            }
            model_changed(m);
            pthread_mutex_unlock(&m->mu);
        }
        pthread_mutex_lock(&m->mu);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

static void *review_main(void *arg)
{
    struct tui_model *m = arg;
    struct tui_source *src = m->src;
    int64_t cursor = 0, backoff = 0;
    char err[512];
    bool first = true;
    pthread_mutex_lock(&m->mu);
    while (!m->stop) {
        pthread_mutex_unlock(&m->mu);
        int64_t started = util_monotonic_us() / 1000;
        struct tui_review *r = NULL;
        int n = 0;
        err[0] = 0;
        /* the first call answers at once; later ones hold until a new review */
        int rc = src->ops->reviews(src->self, "pending", &cursor, first ? 0 : TUI_LONG_POLL_MS, &r, &n,
                                   err, sizeof err);
        pthread_mutex_lock(&m->mu);
        if (rc == TUI_OK) {
            int before = m->npending;
            tui_reviews_free(m->pending, m->npending);
            m->pending = r;
            m->npending = n;
            m->pending_loaded = true;
            if (rules_apply(m)) {
                m->want_rules = true;
                tui_model_kick(m);
            }
            if (n > before && !first)
                tui_model_status(m, false, "%d review%s waiting for a decision", n, n == 1 ? "" : "s");
            else if (backoff)
                tui_model_status(m, false, "reviews: reconnected");
            backoff = 0;
            first = false;
            model_changed(m);
            /* at most one round a second, whatever the source does */
            int64_t spent = util_monotonic_us() / 1000 - started;
            if (spent < 1000)
                model_sleep(m, 1000 - spent);
        } else {
            backoff = backoff_next(backoff);
            tui_model_status(m, true, "reviews, retrying in %.1fs: %s", (double)backoff / 1000.0,
                             err[0] ? err : tui_status_name(rc));
            model_changed(m);
            model_sleep(m, backoff);
        }
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

int tui_model_start(struct tui_model *m, struct tui_source *src, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    m->src = src;
    m->want_sessions = true;
    m->want_history = true;
    if (pipe(m->wake_fd) < 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        fcntl(m->wake_fd[i], F_SETFL, O_NONBLOCK);
        fcntl(m->wake_fd[i], F_SETFD, FD_CLOEXEC);
    }
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cond, NULL);
    /* the workers leave SIGWINCH and friends to the screen's thread */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&m->request_thread, NULL, request_main, m);
    if (rc == 0 && (rc = pthread_create(&m->review_thread, NULL, review_main, m)) != 0) {
        pthread_mutex_lock(&m->mu);
        m->stop = true;
        pthread_cond_broadcast(&m->cond);
        pthread_mutex_unlock(&m->mu);
        pthread_join(m->request_thread, NULL);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the network thread: %s", strerror(rc));
        close(m->wake_fd[0]);
        close(m->wake_fd[1]);
        return -1;
    }
    m->threads_started = true;
    return 0;
}

void tui_model_stop(struct tui_model *m)
{
    if (m->threads_started) {
        pthread_mutex_lock(&m->mu);
        m->stop = true;
        pthread_cond_broadcast(&m->cond);
        pthread_mutex_unlock(&m->mu);
        /* a long-poll in flight ends within TUI_LONG_POLL_MS */
        pthread_join(m->request_thread, NULL);
        pthread_join(m->review_thread, NULL);
        m->threads_started = false;
    }
    free(m->rows);
    replay_session_free(&m->session);
    tui_reviews_free(m->pending, m->npending);
    tui_reviews_free(m->history, m->nhistory);
    close(m->wake_fd[0]);
    close(m->wake_fd[1]);
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cond);
}
