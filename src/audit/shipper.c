/* shipper.c — a background thread that moves events from the local spool to
 * the server in ordered batches (libcurl), with backoff and URL failover. */
#include "hoopctl/shipper.h"
#include "hoopctl/log.h"
#include "hoopctl/spool.h"
#include "hoopctl/util.h"

#include <curl/curl.h>
#include <jansson.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct shipper {
    struct shipper_config cfg;
    char **urls;
    struct spool *spool;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;     /* kicks and stop */
    pthread_cond_t drained;  /* signalled after each successful batch */
    bool stop, kicked;
    struct shipper_stats stats;
    CURL *curl;              /* kept between batches: its connection is reused */
};

/* Keep the head of the server's answer (its error message), drop the rest. */
struct answer_head {
    char text[300];
    size_t len;
};

static size_t keep_head(char *p, size_t size, size_t n, void *arg)
{
    struct answer_head *a = arg;
    size_t got = size * n, room = sizeof a->text - 1 - a->len;
    size_t take = got < room ? got : room;
    memcpy(a->text + a->len, p, take);
    a->len += take;
    a->text[a->len] = '\0';
    return got;
}

/* A refusal that sending again cannot fix: the hoopctl server's own answer
 * (a JSON object with "error") that the events are malformed (400, 422),
 * too large (413), or hold an id another session has (409). Any other
 * status, and any answer from something else on the way (a proxy's 404 or
 * 502, a load balancer's HTML), is worth retrying, or failing over: it says
 * nothing about the events, and quarantining the backlog for it would take
 * the events out of the queue for good. */
static bool status_is_permanent(long status, const char *answer)
{
    while (*answer == ' ' || *answer == '\n' || *answer == '\r' || *answer == '\t')
        answer++;
    bool from_server = answer[0] == '{' && strstr(answer, "\"error\"") != NULL;
    return from_server && (status == 400 || status == 409 || status == 413 || status == 422);
}

/* How many of the batch's first events fit in one request body of at most
 * max bytes (at least one: a single event larger than that is the server's
 * to refuse, and then goes to the quarantine). */
static int batch_prefix(const struct spool_batch *b, size_t max)
{
    size_t total = 16; /* {"events":[ and ]} */
    int n = 0;
    while (n < b->n) {
        total += strlen(b->events[n].json) + 1;
        if (n > 0 && total > max)
            break;
        n++;
    }
    return n;
}

/* POST the first n events of a batch; returns 0 when the server acknowledged
 * them, -2 when it refused them for good (see status_is_permanent), -3 when
 * something on the way found the request too large (413: a smaller batch may
 * pass), else -1. */
static int post_batch(struct shipper *s, const struct spool_batch *b, int n, char *err, size_t errlen)
{
    struct buf body = {0};
    buf_append_str(&body, "{\"events\":[");
    for (int i = 0; i < n; i++) {
        if (i)
            buf_append(&body, ",", 1);
        buf_append_str(&body, b->events[i].json);
    }
    if (buf_append_str(&body, "]}") < 0) {
        buf_free(&body);
        snprintf(err, errlen, "out of memory building a batch");
        return -1;
    }
    char token[8192];
    if (s->cfg.token(s->cfg.token_arg, token, sizeof token) < 0) {
        buf_free(&body);
        snprintf(err, errlen, "no access token available (log in again?)");
        return -1;
    }
    char auth[8300];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    util_secure_zero(token, sizeof token);

    char url[2048];
    pthread_mutex_lock(&s->lock);
    int idx = s->stats.current_url;
    pthread_mutex_unlock(&s->lock);
    snprintf(url, sizeof url, "%s%s", s->urls[idx], s->cfg.ingest_path);

    /* One handle for the shipper's life: libcurl keeps its connection to
     * the server open between batches (no new TCP or TLS handshake each). */
    if (!s->curl && !(s->curl = curl_easy_init())) {
        buf_free(&body);
        snprintf(err, errlen, "out of memory (curl)");
        return -1;
    }
    CURL *c = s->curl;
    curl_easy_reset(c);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, auth);
    util_secure_zero(auth, sizeof auth);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)body.data);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body.len);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, s->cfg.timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    struct answer_head answer = {.len = 0};
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep_head);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &answer);
    if (s->cfg.ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, s->cfg.ca_file);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    util_curl_slist_free_wiped(h); /* the list held the token: wipe and free it now */
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    buf_free(&body);
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "%s: %s", s->urls[idx], curl_easy_strerror(rc));
        return -1;
    }
    if (status < 200 || status > 299) {
        json_t *j = json_loads(answer.text, 0, NULL);
        const char *msg = json_string_value(json_object_get(j, "error"));
        snprintf(err, errlen, "%s: HTTP %ld%s%.200s", s->urls[idx], status, msg ? ": " : "", msg ? msg : "");
        json_decref(j);
        return status_is_permanent(status, answer.text) ? -2 : status == 413 ? -3 : -1;
    }
    return 0;
}

static void *shipper_main(void *arg)
{
    struct shipper *s = arg;
    int64_t backoff = 0;
    /* After a permanent refusal the batch is halved until the refused event
     * is alone: that one goes to the quarantine, the others are delivered. */
    int limit = s->cfg.batch_max;
    char err[256];
    for (;;) {
        pthread_mutex_lock(&s->lock);
        if (s->stop) {
            pthread_mutex_unlock(&s->lock);
            break;
        }
        pthread_mutex_unlock(&s->lock);

        struct spool_batch b;
        int got = spool_fetch(s->spool, limit, &b, err, sizeof err);
        int delivered = -1;
        bool quarantined = false;
        char qid[64] = "";
        int posted = 0;
        if (got == 0 && b.n > 0) {
            posted = batch_prefix(&b, s->cfg.batch_bytes_max);
            delivered = post_batch(s, &b, posted, err, sizeof err);
            if (delivered == 0 && spool_ack(s->spool, &b, posted, err, sizeof err) < 0)
                delivered = -1; /* acked on the server; redelivery is harmless */
            if ((delivered == -2 || delivered == -3) && posted > 1) {
                limit = posted / 2; /* find the refused event: no backoff, try again at once */
                delivered = -2;
                log_debug("shipper", "batch of %d refused (%s); trying %d", posted, err, limit);
            } else if (delivered == -3) {
                delivered = -1; /* one event, too large for what is on the way: retried, kept */
            } else if (delivered == -2) {
                char e2[256];
                if (spool_quarantine(s->spool, b.events[0].seq, err, util_now_ms(), e2, sizeof e2) == 0) {
                    log_error("shipper", "event %s quarantined in the spool: the server refuses it: %s",
                              b.events[0].id, err);
                    quarantined = true;
                    snprintf(qid, sizeof qid, "%s", b.events[0].id);
                    limit = s->cfg.batch_max;
                } else {
                    snprintf(err, sizeof err, "%s", e2);
                    delivered = -1;
                }
            }
        }
        int n = posted;
        if (got == 0)
            spool_batch_free(&b);
        /* The appender leaves checkpoints to us (spool_defer_checkpoints). */
        char cerr[256];
        if (spool_checkpoint(s->spool, cerr, sizeof cerr) < 0)
            log_warn("shipper", "%s", cerr);

        pthread_mutex_lock(&s->lock);
        s->stats.pending = spool_pending(s->spool);
        int64_t wait_ms;
        if (quarantined || delivered == -2) {
            if (quarantined) {
                s->stats.quarantined = spool_quarantined(s->spool);
                snprintf(s->stats.last_quarantined, sizeof s->stats.last_quarantined, "%.40s: %.200s", qid, err);
            }
            backoff = 0;
            wait_ms = 0;
        } else if (got == 0 && n > 0 && delivered == 0) {
            s->stats.shipped += n;
            s->stats.last_error[0] = '\0';
            backoff = 0;
            wait_ms = 0; /* more may be waiting */
            pthread_cond_broadcast(&s->drained);
        } else if (got == 0 && n == 0) {
            backoff = 0;
            wait_ms = 250; /* idle: a kick wakes us sooner */
            pthread_cond_broadcast(&s->drained);
        } else {
            s->stats.failures++;
            snprintf(s->stats.last_error, sizeof s->stats.last_error, "%s", err);
            /* Fail over to the next URL and back off, with jitter. */
            s->stats.current_url = (s->stats.current_url + 1) % s->cfg.nurls;
            backoff = backoff ? backoff * 2 : s->cfg.backoff_min_ms;
            if (backoff > s->cfg.backoff_max_ms)
                backoff = s->cfg.backoff_max_ms;
            uint32_t r = 0;
            util_random_bytes(&r, sizeof r);
            wait_ms = backoff / 2 + (int64_t)(r % (uint32_t)(backoff / 2 + 1));
            log_debug("shipper", "delivery failed (%s); retrying in %lld ms", err, (long long)wait_ms);
        }
        if (wait_ms > 0 && !s->stop && !s->kicked) {
            struct timespec ts;
            util_deadline_ms(&ts, wait_ms);
            pthread_cond_timedwait(&s->wake, &s->lock, &ts);
        }
        /* A kick during backoff must not defeat the backoff. */
        if (backoff == 0)
            s->kicked = false;
        pthread_mutex_unlock(&s->lock);
    }
    return NULL;
}

struct shipper *shipper_start(const struct shipper_config *cfg, char *err, size_t errlen)
{
    if (!cfg->spool_path || cfg->nurls <= 0 || !cfg->urls || !cfg->token) {
        snprintf(err, errlen, "shipper: a spool path, at least one server URL and a token source are needed");
        return NULL;
    }
    struct shipper *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "shipper: out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    if (!s->cfg.ingest_path)
        s->cfg.ingest_path = "/api/v1/events";
    if (s->cfg.batch_max <= 0)
        s->cfg.batch_max = 500;
    if (s->cfg.batch_bytes_max == 0)
        s->cfg.batch_bytes_max = 4 << 20;
    if (s->cfg.backoff_min_ms <= 0)
        s->cfg.backoff_min_ms = 100;
    if (s->cfg.backoff_max_ms < s->cfg.backoff_min_ms)
        s->cfg.backoff_max_ms = 5000;
    if (s->cfg.timeout_ms <= 0)
        s->cfg.timeout_ms = 10000;
    s->urls = calloc((size_t)cfg->nurls, sizeof *s->urls);
    for (int i = 0; s->urls && i < cfg->nurls; i++) {
        size_t n = strlen(cfg->urls[i]);
        while (n > 0 && cfg->urls[i][n - 1] == '/')
            n--; /* "https://h/" and "https://h" mean the same server */
        s->urls[i] = strndup(cfg->urls[i], n);
    }
    s->cfg.urls = NULL;
    s->spool = spool_open(cfg->spool_path, SPOOL_SURVIVE_PROCESS_CRASH, err, errlen);
    if (!s->spool || !s->urls) {
        shipper_stop(s);
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    pthread_cond_init(&s->drained, NULL);
    s->stats.pending = spool_pending(s->spool);
    s->stats.quarantined = spool_quarantined(s->spool);
    if (pthread_create(&s->thread, NULL, shipper_main, s) != 0) {
        snprintf(err, errlen, "shipper: cannot start a thread: %s", strerror(errno));
        spool_close(s->spool);
        s->spool = NULL;
        shipper_stop(s);
        return NULL;
    }
    return s;
}

void shipper_kick(struct shipper *s)
{
    pthread_mutex_lock(&s->lock);
    s->kicked = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
}

int shipper_drain(struct shipper *s, int timeout_ms)
{
    struct timespec deadline;
    util_deadline_ms(&deadline, timeout_ms);
    shipper_kick(s);
    pthread_mutex_lock(&s->lock);
    int rc = 0;
    while (s->stats.pending != 0 || s->kicked) {
        if (pthread_cond_timedwait(&s->drained, &s->lock, &deadline) == ETIMEDOUT) {
            rc = s->stats.pending == 0 ? 0 : -1;
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

void shipper_get_stats(struct shipper *s, struct shipper_stats *out)
{
    pthread_mutex_lock(&s->lock);
    *out = s->stats;
    pthread_mutex_unlock(&s->lock);
}

void shipper_stop(struct shipper *s)
{
    if (!s)
        return;
    if (s->spool) {
        pthread_mutex_lock(&s->lock);
        s->stop = true;
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->thread, NULL);
        spool_close(s->spool);
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->wake);
        pthread_cond_destroy(&s->drained);
    }
    if (s->curl)
        curl_easy_cleanup(s->curl);
    for (int i = 0; s->urls && i < s->cfg.nurls; i++)
        free(s->urls[i]);
    free(s->urls);
    free(s);
}
