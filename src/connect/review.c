/* review.c — statements held for review: request the review on the server,
 * long-poll it from a thread per hold (other sessions keep running), consume
 * an approval bound to the statement's hash, then resolve the gateway's hold
 * on the loop thread. */
#include "internal.h"

#include "hoopctl/log.h"
#include "hoopctl/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MOD "connect"
#define REVIEW_POLL_SECONDS 5

static void hold_free(struct cn_hold *h)
{
    json_decref(h->event_data);
    free(h);
}

/* An API client for this thread: the shared base and CA, the current token. */
static void thread_client(struct connect *c, struct api_client *out)
{
    memset(out, 0, sizeof *out);
    memcpy(out->base, c->api.base, sizeof out->base);
    memcpy(out->cafile, c->api.cafile, sizeof out->cafile);
    out->timeout_s = REVIEW_POLL_SECONDS + 10;
    cn_token_copy(c, out->token, sizeof out->token);
}

static bool hold_cancelled(struct cn_hold *h)
{
    pthread_mutex_lock(&h->c->lock);
    bool r = h->abandoned || h->c->stopping;
    pthread_mutex_unlock(&h->c->lock);
    return r;
}

/* Note the review's outcome for the audit event (under c->lock). */
static void review_note(struct cn_hold *h, const char *status, const char *by, const char *why)
{
    pthread_mutex_lock(&h->c->lock);
    snprintf(h->status, sizeof h->status, "%s", status ? status : "");
    snprintf(h->decided_by, sizeof h->decided_by, "%s", by ? by : "");
    snprintf(h->review_reason, sizeof h->review_reason, "%s", why ? why : "");
    pthread_mutex_unlock(&h->c->lock);
}

/* A held statement that will never run (its client cancelled it or went
 * away, or the gateway stops) leaves the reviewers' queue: withdrawn, by its
 * requester, if the review is still pending. Best effort, briefly. api is
 * a client for this thread; freed. */
static void review_withdraw(struct api_client *api, const char *review_id)
{
    api->timeout_s = 5;
    char path[256], err[256];
    snprintf(path, sizeof path, "/api/v1/reviews/%s/withdraw", review_id);
    json_t *body = json_pack("{s:s}", "reason", "the statement was cancelled, or its session or gateway closed");
    json_t *r = NULL;
    long status = 0;
    int rc = api_call(api, "POST", path, body, &status, &r, err, sizeof err);
    if (rc < 0 || (status != 200 && status != 409))
        log_warn(MOD, "withdrawing review %s: %s", review_id, rc < 0 ? err : api_error_message(r));
    json_decref(body);
    json_decref(r);
    api_client_free(api);
}

/* At once, from a thread of its own, when the hold is abandoned: the hold's
 * poller sees it only between long polls, and meanwhile a reviewer could
 * approve what will never run. */
struct withdraw_job {
    struct connect *c;
    struct api_client api;
    char review_id[64];
};

static void *withdraw_thread(void *arg)
{
    struct withdraw_job *j = arg;
    struct connect *c = j->c;
    review_withdraw(&j->api, j->review_id);
    util_secure_zero(&j->api, sizeof j->api);
    free(j);
    pthread_mutex_lock(&c->lock);
    c->withdrawals--;
    pthread_cond_broadcast(&c->withdrawn);
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

void cn_review_wait_withdrawals(struct connect *c, int max_ms)
{
    struct timespec until;
    util_deadline_ms(&until, max_ms);
    while (c->withdrawals > 0)
        if (pthread_cond_timedwait(&c->withdrawn, &c->lock, &until) != 0)
            break;
}

/* Wait for the review to be decided; returns with h->approved / h->reason set. */
static void review_wait(struct cn_hold *h, bool *approved, char *reason, size_t rlen)
{
    struct connect *c = h->c;
    char path[256], err[512];
    *approved = false;
    snprintf(reason, rlen, "review %s was not decided", h->review_id);
    while (!hold_cancelled(h)) {
        if (util_now_ms() >= h->deadline_ms) {
            snprintf(reason, rlen, "review %s expired after waiting %d s", h->review_id, h->wait_seconds);
            return;
        }
        struct api_client api;
        thread_client(c, &api);
        snprintf(path, sizeof path, "/api/v1/reviews/%s/wait?timeout=%d", h->review_id, REVIEW_POLL_SECONDS);
        long status = 0;
        json_t *r = NULL;
        int rc = api_call(&api, "GET", path, NULL, &status, &r, err, sizeof err);
        if (rc < 0 || status != 200) {
            log_warn(MOD, "waiting for review %s: %s", h->review_id,
                     rc < 0 ? err : api_error_message(r));
            json_decref(r);
            api_client_free(&api);
            sleep(1);
            continue;
        }
        const char *st = json_string_value(json_object_get(r, "status"));
        const char *why = json_string_value(json_object_get(r, "reason"));
        const char *by = json_string_value(json_object_get(r, "decided_by"));
        if (!st || !strcmp(st, "pending")) {
            json_decref(r);
            api_client_free(&api);
            continue;
        }
        review_note(h, st, by, why);
        if (!strcmp(st, "approved") && hold_cancelled(h)) {
            /* cancelled meanwhile: the approval stays unused (it expires) */
            snprintf(reason, rlen, "review %s was approved after the statement was cancelled", h->review_id);
        } else if (!strcmp(st, "approved")) {
            json_t *body = json_pack("{s:s}", "statement_hash", h->hash), *cr = NULL;
            snprintf(path, sizeof path, "/api/v1/reviews/%s/consume", h->review_id);
            rc = api_call(&api, "POST", path, body, &status, &cr, err, sizeof err);
            json_decref(body);
            if (rc == 0 && status >= 200 && status < 300)
                *approved = true;
            else
                snprintf(reason, rlen, "review %s was approved but could not be used: %.200s", h->review_id,
                         rc < 0 ? err : api_error_message(cr));
            json_decref(cr);
        } else if (!strcmp(st, "denied")) {
            snprintf(reason, rlen, "review %s denied by %s: %s", h->review_id, by ? by : "a reviewer",
                     why && *why ? why : "no reason given");
        } else {
            snprintf(reason, rlen, "review %s %s%s%s", h->review_id, st, why && *why ? ": " : "",
                     why ? why : "");
        }
        json_decref(r);
        api_client_free(&api);
        return;
    }
    struct api_client api;
    thread_client(c, &api);
    review_withdraw(&api, h->review_id);
    snprintf(reason, rlen, "review %s withdrawn: the statement was cancelled, or its session or the gateway closed",
             h->review_id);
}

static void *review_thread(void *arg)
{
    struct cn_hold *h = arg;
    bool approved;
    char reason[400];
    review_wait(h, &approved, reason, sizeof reason);
    /* The reason reaches the client's terminal (psql prints it) and holds
     * what a reviewer or the server wrote: controls and text-steering
     * characters are shown as escapes, and a cut falls between characters. */
    char *safe = util_terminal_safe(reason, false);
    pthread_mutex_lock(&h->c->lock);
    h->approved = approved;
    const char *text = safe ? safe : "the review's answer could not be shown (out of memory)";
    size_t n = strlen(text);
    if (n >= sizeof h->reason) {
        n = sizeof h->reason - 1;
        while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(h->reason, text, n);
    h->reason[n] = 0;
    free(safe);
    h->finished = true;
    pthread_mutex_unlock(&h->c->lock);
    char one = 1;
    while (write(h->c->wake_pipe[1], &one, 1) < 0 && errno == EINTR)
        ;
    return NULL;
}

int cn_review_start(struct connect *c, struct cn_session *s, const char *sql, json_t *params, uint64_t hold_id,
                    const struct policy_decision *d, json_t *event_data, struct gateway_refusal *ref,
                    char *err, size_t errlen)
{
    struct cn_hold *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    h->c = c;
    h->hold_id = hold_id;
    h->gw_session_id = s->gw_id;
    util_sha256_hex(sql, strlen(sql), h->hash);
    /* The request is a short blocking call on the loop thread (the server is
     * local or near); the long wait happens on the hold's own thread. */
    json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:O?}", "connection", c->connection, "statement",
                             sql, "statement_hash", h->hash, "session_id", s->id, "ttl_seconds",
                             c->review_wait_seconds, "rule", d->rule_name[0] ? d->rule_name : "default",
                             "params", params);
    /* Which rules' reviewers must agree (the server reads them in its own
     * copy of the policy). */
    json_t *rules = json_array();
    for (size_t i = 0; rules && i < d->nreview_rules; i++)
        json_array_append_new(rules, json_integer(d->review_rules[i]));
    if (body && rules) {
        json_object_set_new(body, "rules", rules);
        json_object_set_new(body, "policy_digest", json_string(c->policy_digest));
    } else {
        json_decref(rules);
    }
    json_t *r = NULL;
    char e2[512];
    long status = 0;
    int rc = body ? api_call(&c->api, "POST", "/api/v1/reviews", body, &status, &r, e2, sizeof e2) : -1;
    json_decref(body);
    const char *id = json_string_value(json_object_get(r, "id"));
    if (rc < 0 || status < 200 || status > 299 || !id || strlen(id) >= sizeof h->review_id) {
        snprintf(err, errlen, "the review could not be requested: %s",
                 rc < 0 ? e2 : api_error_message(r));
        json_decref(r);
        free(h);
        return -1;
    }
    snprintf(h->review_id, sizeof h->review_id, "%s", id);
    /* The server may keep a review for less than we would wait. */
    int wait_s = c->review_wait_seconds;
    json_int_t ttl_ms = json_integer_value(json_object_get(r, "expires_at")) -
                        json_integer_value(json_object_get(r, "created_at"));
    if (ttl_ms > 0 && ttl_ms / 1000 < wait_s)
        wait_s = ttl_ms < 1000 ? 1 : (int)(ttl_ms / 1000);
    json_decref(r);
    h->wait_seconds = wait_s;
    h->deadline_ms = util_now_ms() + (int64_t)wait_s * 1000;
    h->event_data = event_data;
    json_incref(event_data);
    json_object_set_new(event_data, "review_id", json_string(h->review_id));
    /* the text reviewers read, by hash: the server joins the review by it
     * when the event's own text is redacted otherwise (redact_literals) */
    json_object_set_new(event_data, "review_hash", json_string(h->hash));
    char wait[32];
    if (wait_s % 60 == 0)
        snprintf(wait, sizeof wait, "%dm", wait_s / 60);
    else
        snprintf(wait, sizeof wait, "%ds", wait_s);
    /* ... and why: a DBA may not know that EXPLAIN ANALYZE runs its UPDATE */
    int shown = snprintf(ref->hold_notice, sizeof ref->hold_notice,
             "hoopctl: statement held for review %s (reviewers: %s); waiting up to %s; rule %s%s%.300s", h->review_id,
             d->reviewers[0] ? d->reviewers : "any reviewer", wait, d->rule_name[0] ? d->rule_name : "default",
             d->message[0] ? ": " : "", d->message);
    if (shown >= (int)sizeof ref->hold_notice) { /* cut: drop a last character that may be partial */
        size_t i = strlen(ref->hold_notice);
        while (i > 0 && ((unsigned char)ref->hold_notice[i - 1] & 0xC0) == 0x80)
            i--;
        if (i > 0 && ((unsigned char)ref->hold_notice[i - 1] & 0xC0) == 0xC0)
            ref->hold_notice[i - 1] = 0;
    }
    if (pthread_create(&h->thread, NULL, review_thread, h) != 0) {
        snprintf(err, errlen, "cannot start a thread to wait for review %s", h->review_id);
        hold_free(h);
        return -1;
    }
    h->thread_started = true;
    pthread_mutex_lock(&c->lock);
    h->next = c->holds;
    c->holds = h;
    pthread_mutex_unlock(&c->lock);
    return 0;
}

void cn_review_abandon(struct connect *c, uint64_t hold_id)
{
    char id[64] = "";
    pthread_mutex_lock(&c->lock);
    for (struct cn_hold *h = c->holds; h; h = h->next)
        if (h->hold_id == hold_id) {
            h->abandoned = true;
            if (!h->finished)
                snprintf(id, sizeof id, "%s", h->review_id);
        }
    pthread_mutex_unlock(&c->lock);
    struct withdraw_job *j = id[0] ? calloc(1, sizeof *j) : NULL;
    if (!j)
        return; /* (the hold's poller withdraws it after its current poll) */
    thread_client(c, &j->api);
    j->c = c;
    snprintf(j->review_id, sizeof j->review_id, "%s", id);
    pthread_t t;
    pthread_attr_t attr;
    pthread_mutex_lock(&c->lock);
    c->withdrawals++;
    pthread_mutex_unlock(&c->lock);
    if (pthread_attr_init(&attr) == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, withdraw_thread, j) == 0)
            j = NULL;
        pthread_attr_destroy(&attr);
    }
    if (j) {
        pthread_mutex_lock(&c->lock);
        c->withdrawals--;
        pthread_mutex_unlock(&c->lock);
        util_secure_zero(&j->api, sizeof j->api);
        free(j);
    }
}

/* The audit event of a decided hold, then the gateway's resolution. */
static void hold_resolve(struct connect *c, struct cn_hold *h)
{
    struct cn_session *s = cn_session_find(c, h->gw_session_id);
    if (!s)
        return;
    if (h->abandoned) { /* its session is here: cancelled (the gateway answered the client) */
        json_t *data = h->event_data;
        h->event_data = NULL;
        json_object_set_new(data, "error", json_string(h->reason));
        json_object_set_new(data, "sqlstate", json_string("57014"));
        char err[256];
        if (cn_emit(c, s, "statement", data, err, sizeof err) < 0)
            log_error(MOD, "session %s: audit spool: %s", s->id, err);
        return;
    }
    struct gateway_refusal ref = {0};
    snprintf(ref.sqlstate, sizeof ref.sqlstate, "42501");
    enum gateway_verdict v = h->approved ? GATEWAY_ALLOW : GATEWAY_REFUSE;
    json_t *data = h->event_data;
    h->event_data = NULL;
    /* Who decided, and how (the server checks it against its own record). */
    json_t *rv = json_pack("{s:s}", "id", h->review_id);
    if (rv && h->status[0])
        json_object_set_new(rv, "status", json_string(h->status));
    if (rv && h->decided_by[0])
        json_object_set_new(rv, "decided_by", json_string(h->decided_by));
    if (rv && h->review_reason[0])
        json_object_set_new(rv, "reason", json_string(h->review_reason));
    if (rv)
        json_object_set_new(data, "review", rv);
    char err[256];
    if (!h->approved) {
        snprintf(ref.message, sizeof ref.message, "hoopctl: %s", h->reason);
        cn_audit_refusal(c, s, data, h->reason);
    } else if (cn_emit(c, s, "statement", data, err, sizeof err) < 0) {
        v = GATEWAY_REFUSE;
        snprintf(ref.message, sizeof ref.message,
                 "hoopctl: the audit spool cannot be written, statement refused (fail closed): %s", err);
    } else {
        cn_inflight_add(s, h->hold_id, s->statement_seq);
    }
    if (gateway_resolve(c->gw, h->hold_id, v, &ref) < 0)
        log_debug(MOD, "hold %llu was gone before review %s was decided", (unsigned long long)h->hold_id,
                  h->review_id);
}

void cn_review_reap(struct connect *c)
{
    for (;;) {
        struct cn_hold *done = NULL, **pp;
        pthread_mutex_lock(&c->lock);
        for (pp = &c->holds; *pp; pp = &(*pp)->next)
            if ((*pp)->finished) {
                done = *pp;
                *pp = done->next;
                break;
            }
        pthread_mutex_unlock(&c->lock);
        if (!done)
            return;
        pthread_join(done->thread, NULL);
        hold_resolve(c, done);
        hold_free(done);
    }
}

void cn_review_stop_all(struct connect *c)
{
    pthread_mutex_lock(&c->lock);
    c->stopping = true;
    struct cn_hold *h = c->holds;
    c->holds = NULL;
    pthread_mutex_unlock(&c->lock);
    while (h) {
        struct cn_hold *next = h->next;
        pthread_join(h->thread, NULL);
        hold_free(h);
        h = next;
    }
}

uint64_t cn_review_pending(struct connect *c)
{
    uint64_t n = 0;
    pthread_mutex_lock(&c->lock);
    for (struct cn_hold *h = c->holds; h; h = h->next)
        n += !h->finished;
    pthread_mutex_unlock(&c->lock);
    return n;
}
