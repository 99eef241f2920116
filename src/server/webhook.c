/* webhook.c — optional push of each stored audit event as JSON to a webhook
 * or SIEM endpoint (audit.webhook_url), from a thread with its own store
 * handle, in chain order, retrying with backoff until the endpoint takes it. */
#include "internal.h"
#include "hoopctl/config.h"
#include "hoopctl/log.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MOD "webhook"

struct hook_ctx {
    struct srv *srv;
    struct store *store;
    char url[1024];
    int64_t after;
};

static size_t hook_discard(char *p, size_t s, size_t n, void *u)
{
    (void)p;
    (void)u;
    return s * n;
}

static int hook_post(CURL *c, const char *url, const char *body)
{
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, hook_discard);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    return rc == CURLE_OK && status >= 200 && status < 300 ? 0 : -1;
}

/* Sleep up to ms, waking early on stop. Returns true when stopping. */
static bool hook_wait(struct srv *srv, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&srv->hook_lock);
    if (!srv->hook_stop)
        pthread_cond_timedwait(&srv->hook_cond, &srv->hook_lock, &ts);
    bool stop = srv->hook_stop;
    pthread_mutex_unlock(&srv->hook_lock);
    return stop;
}

static void *hook_main(void *arg)
{
    struct hook_ctx *h = arg;
    CURL *c = curl_easy_init();
    char err[256];
    int backoff = 0;
    while (c) {
        json_t *rows = NULL;
        if (store_events_page(h->store, h->after, 0, 0, 100, &rows, err, sizeof err) != 0) {
            log_warn(MOD, "reading events: %s", err);
            rows = json_array();
        }
        size_t i;
        json_t *e;
        bool failed = false;
        json_array_foreach(rows, i, e) {
            char *body = json_dumps(e, JSON_COMPACT);
            int rc = body ? hook_post(c, h->url, body) : -1;
            free(body);
            if (rc < 0) {
                failed = true;
                break;
            }
            h->after = json_integer_value(json_object_get(e, "n"));
            backoff = 0;
        }
        size_t got = json_array_size(rows);
        json_decref(rows);
        if (failed) {
            backoff = backoff ? (backoff * 2 > 30000 ? 30000 : backoff * 2) : 500;
            log_warn(MOD, "push failed; retrying event %lld in %d ms", (long long)h->after + 1, backoff);
            if (hook_wait(h->srv, backoff))
                break;
        } else if (got == 0 && hook_wait(h->srv, 1000)) {
            break;
        } else if (got && h->srv->hook_stop) {
            break;
        }
    }
    curl_easy_cleanup(c);
    store_close(h->store);
    free(h);
    return NULL;
}

int srv_webhook_start(struct srv *srv, char *err, size_t errlen)
{
    pthread_mutex_init(&srv->hook_lock, NULL);
    pthread_cond_init(&srv->hook_cond, NULL);
    const char *url = config_get_string(srv->opt->config, "audit.webhook_url");
    if (!url || !*url)
        return 0;
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        snprintf(err, errlen, "audit.webhook_url must be an http(s) URL");
        return -1;
    }
    struct hook_ctx *h = calloc(1, sizeof *h);
    if (!h)
        return -1;
    h->srv = srv;
    snprintf(h->url, sizeof h->url, "%s", url);
    h->store = store_open(srv->opt->store_url, err, errlen);
    if (!h->store) {
        free(h);
        return -1;
    }
    /* Push what arrives from now on. */
    json_t *rep = NULL;
    if (store_audit_verify(h->store, &rep, err, errlen) == 0) {
        h->after = json_integer_value(json_object_get(rep, "head"));
        json_decref(rep);
    }
    if (pthread_create(&srv->hook_thread, NULL, hook_main, h) != 0) {
        store_close(h->store);
        free(h);
        snprintf(err, errlen, "cannot start the webhook thread");
        return -1;
    }
    srv->hook_running = true;
    return 0;
}

void srv_webhook_stop(struct srv *srv)
{
    if (srv->hook_running) {
        pthread_mutex_lock(&srv->hook_lock);
        srv->hook_stop = true;
        pthread_cond_broadcast(&srv->hook_cond);
        pthread_mutex_unlock(&srv->hook_lock);
        pthread_join(srv->hook_thread, NULL);
        srv->hook_running = false;
    }
}
