/* webhook.c — optional push of each stored audit event as JSON to a webhook
 * or SIEM endpoint (audit.webhook_url), from a thread with its own store
 * handle, in chain order, retrying with backoff until the endpoint takes it
 * (an event the endpoint refuses for good, while it takes the next, is left
 * out and logged).
 * Where it is in the chain is kept in the store, so a restart resumes there,
 * and one server instance of those sharing a store pushes at a time. */
#include "internal.h"
#include "hoopctl/config.h"
#include "hoopctl/log.h"
#include "hoopctl/util.h"

#include <curl/curl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MOD "webhook"

/* One instance pushes at a time (a lease on the endpoint's cursor in the
 * store, renewed well within its term); the others stand by and take over
 * when it lapses. Posts take at most 10 s and backoff at most 30 s, so a
 * live holder always renews in time. */
#define HOOK_LEASE_MS 60000
#define HOOK_RENEW_MS (HOOK_LEASE_MS / 4)
#define HOOK_STANDBY_MS 5000
/* Events in a row that the endpoint may refuse (a 4xx) before a later one
 * decides whether the endpoint or those events are at fault. */
#define HOOK_MAX_REJECTED 16

struct hook_ctx {
    struct srv *srv;
    struct store *store;
    char url[1024];
    char key[65];          /* SHA-256 of the URL: the cursor's key (the URL may hold a secret) */
    char owner[512];       /* this instance, for the lease (hook_owner) */
    bool holder;
    int64_t after;         /* the last event pushed */
    int64_t saved;         /* ...as the store has it */
    int64_t renew_at;
};

static size_t hook_discard(char *p, size_t s, size_t n, void *u)
{
    (void)p;
    (void)u;
    return s * n;
}

enum hook_result { HOOK_TAKEN, HOOK_RETRY, HOOK_REJECTED };

/* POST one event. 400, 413, 415 and 422 are about the body: the endpoint's
 * refusal of this event (HOOK_REJECTED). Anything else that is not 2xx (an
 * expired credential's 401, a proxy's 403 or 404, a timeout, a 5xx) may
 * pass another time, so it is tried again. */
static enum hook_result hook_post(CURL *c, const char *url, const char *body, long *status)
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
    *status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(h);
    if (rc != CURLE_OK)
        return HOOK_RETRY;
    if (*status >= 200 && *status < 300)
        return HOOK_TAKEN;
    bool refused = *status == 400 || *status == 413 || *status == 415 || *status == 422;
    return refused ? HOOK_REJECTED : HOOK_RETRY;
}

static enum hook_result hook_post_event(CURL *c, const char *url, json_t *e, long *status)
{
    char *body = json_dumps(e, JSON_COMPACT);
    *status = 0;
    enum hook_result r = body ? hook_post(c, url, body, status) : HOOK_RETRY;
    free(body);
    return r;
}

static bool hook_stopping(struct srv *srv)
{
    pthread_mutex_lock(&srv->hook_lock);
    bool stop = srv->hook_stop;
    pthread_mutex_unlock(&srv->hook_lock);
    return stop;
}

/* Sleep up to ms, waking early on stop. Returns true when stopping. */
static bool hook_wait(struct srv *srv, int ms)
{
    struct timespec ts;
    util_deadline_ms(&ts, ms);
    pthread_mutex_lock(&srv->hook_lock);
    if (!srv->hook_stop)
        pthread_cond_timedwait(&srv->hook_cond, &srv->hook_lock, &ts);
    bool stop = srv->hook_stop;
    pthread_mutex_unlock(&srv->hook_lock);
    return stop;
}

/* Take (or renew) the lease; on taking it, resume from the stored cursor. */
static bool hook_claim(struct hook_ctx *h)
{
    char err[256];
    int64_t now = util_now_ms(), at = 0;
    int rc = store_webhook_claim(h->store, h->key, h->owner, now, HOOK_LEASE_MS, &at, err, sizeof err);
    if (rc == 0) {
        if (!h->holder)
            log_warn(MOD, "this instance pushes the audit events, from event %lld on", (long long)at + 1);
        if (!h->holder || at != h->saved)
            h->after = h->saved = at;
        h->holder = true;
        h->renew_at = now + HOOK_RENEW_MS;
        return true;
    }
    if (h->holder)
        log_warn(MOD, "another server instance pushes the audit events now");
    else if (rc != STORE_CONFLICT)
        log_warn(MOD, "claiming the webhook's cursor: %s", err);
    h->holder = false;
    return false;
}

/* Record what was pushed (and renew the lease for lease_ms). */
static void hook_save(struct hook_ctx *h, int64_t lease_ms)
{
    char err[256];
    int64_t now = util_now_ms();
    int rc = store_webhook_advance(h->store, h->key, h->owner, h->after, now, lease_ms, err, sizeof err);
    if (rc == 0) {
        h->saved = h->after;
        h->renew_at = now + HOOK_RENEW_MS;
    } else if (rc == STORE_CONFLICT) {
        log_warn(MOD, "%s", err);
        h->holder = false;
    } else {
        log_warn(MOD, "saving the webhook's cursor: %s", err); /* kept in memory; saved next time */
    }
}

/* The endpoint refused events (a 4xx) and then took the later event `taken`:
 * it works, and refuses those events themselves (too large, say). Each is
 * tried once more, now that the endpoint takes events: taken then, it is
 * pushed late (after `taken`, still at least once); refused again, it is
 * left out of the push, with an error in the log, and stays in the store for
 * an export. An endpoint that refuses every event never gets here, so a
 * wrong URL or credential holds the push instead of skipping events.
 * Returns -1 when a try could not be decided (the endpoint went away): the
 * push resumes at the first of them. */
static int hook_settle_rejected(struct hook_ctx *h, CURL *c, json_t *const *rejected, size_t n, json_t *taken,
                                long *status)
{
    long long later = (long long)json_integer_value(json_object_get(taken, "n"));
    for (size_t k = 0; k < n; k++) {
        enum hook_result r = hook_post_event(c, h->url, rejected[k], status);
        long long en = (long long)json_integer_value(json_object_get(rejected[k], "n"));
        if (r == HOOK_RETRY)
            return -1;
        if (r == HOOK_TAKEN)
            log_warn(MOD, "event %lld was pushed after event %lld: the endpoint refused it at first", en, later);
        else
            log_error(MOD, "the endpoint refuses event %lld (id %s) with HTTP %ld but took event %lld: event %lld "
                      "is left out of the push (it stays in the store: hoopctl audit export)",
                      en, json_string_value(json_object_get(rejected[k], "id")) ?: "?", *status, later, en);
    }
    return 0;
}

static void *hook_main(void *arg)
{
    struct hook_ctx *h = arg;
    CURL *c = curl_easy_init();
    char err[256];
    int backoff = 0;
    while (c && !hook_stopping(h->srv)) {
        if ((!h->holder || util_now_ms() >= h->renew_at) && !hook_claim(h)) {
            if (hook_wait(h->srv, HOOK_STANDBY_MS))
                break;
            continue;
        }
        json_t *rows = NULL;
        if (store_events_page(h->store, h->after, 0, 0, 100, &rows, err, sizeof err) != 0) {
            log_warn(MOD, "reading events: %s", err);
            rows = json_array();
        }
        size_t i;
        json_t *e;
        bool failed = false;
        json_t *rejected[HOOK_MAX_REJECTED];
        size_t nrejected = 0;
        long status = 0;
        json_array_foreach(rows, i, e) {
            enum hook_result r = hook_post_event(c, h->url, e, &status);
            if (r == HOOK_REJECTED && nrejected < HOOK_MAX_REJECTED) {
                rejected[nrejected++] = e; /* decided once a later event is taken */
                continue;
            }
            if (r != HOOK_TAKEN || (nrejected && hook_settle_rejected(h, c, rejected, nrejected, e, &status) < 0)) {
                failed = true;
                break;
            }
            nrejected = 0;
            h->after = json_integer_value(json_object_get(e, "n"));
            backoff = 0;
            if (util_now_ms() >= h->renew_at)
                hook_save(h, HOOK_LEASE_MS);
            if (!h->holder || hook_stopping(h->srv))
                break;
        }
        failed = failed || nrejected > 0; /* no later event taken yet: the first is tried again */
        size_t got = json_array_size(rows);
        json_decref(rows);
        if (h->holder && h->after != h->saved)
            hook_save(h, HOOK_LEASE_MS);
        if (!h->holder)
            continue;
        if (failed) {
            backoff = backoff ? (backoff * 2 > 30000 ? 30000 : backoff * 2) : 500;
            char why[32] = "no answer";
            if (status)
                snprintf(why, sizeof why, "HTTP %ld", status);
            log_warn(MOD, "push failed; retrying event %lld in %d ms (%s)", (long long)h->after + 1, backoff, why);
            if (hook_wait(h->srv, backoff))
                break;
        } else if (got == 0 && hook_wait(h->srv, 1000)) {
            break;
        }
    }
    if (h->holder)
        hook_save(h, 0); /* the lease ends now: a standby takes over at once */
    curl_easy_cleanup(c);
    store_close(h->store);
    free(h);
    return NULL;
}

/* The first line of a file under /proc, or "" (not Linux, no /proc). */
static void hook_read_line(const char *path, char *out, size_t len)
{
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    if (fgets(out, (int)len, f))
        out[strcspn(out, "\r\n")] = '\0';
    fclose(f);
}

/* This instance's name on the lease. Two live processes must never share it
 * (both would push every event), yet a restart after kill -9 should take its
 * lease back at once. "host:port" was not unique: containers with a fixed
 * host name, or 127.0.0.1:P and 127.0.0.2:P on one host, shared it. So the
 * name is the address and port this server is bound to, in its network
 * namespace, in this boot of the kernel: the kernel lets one listening socket
 * at a time have that (the listener has no SO_REUSEPORT, and it stays bound
 * until the webhook thread has stopped), and a restart that binds the same
 * address and port in the same namespace is that instance again. Without
 * /proc (no boot id or namespace to go by) the name gets a random part: unique,
 * but then a restart waits out the lease. */
static void hook_owner(struct srv *srv, char *owner, size_t len)
{
    char host[256] = "", addr[INET6_ADDRSTRLEN] = "?", boot[64], net[64];
    gethostname(host, sizeof host - 1);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    int port = srv_bound_address(srv, &ss);
    if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr, sizeof addr);
    else if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr, sizeof addr);
    hook_read_line("/proc/sys/kernel/random/boot_id", boot, sizeof boot);
    ssize_t nl = readlink("/proc/self/ns/net", net, sizeof net - 1);
    net[nl > 0 ? nl : 0] = '\0';
    if (port <= 0 || !boot[0] || !net[0]) {
        unsigned char r[8] = {0};
        util_random_bytes(r, sizeof r);
        snprintf(boot, sizeof boot, "pid %ld random %02x%02x%02x%02x%02x%02x%02x%02x", (long)getpid(), r[0], r[1],
                 r[2], r[3], r[4], r[5], r[6], r[7]);
        net[0] = '\0';
    }
    snprintf(owner, len, "%.200s [%s]:%d boot %s %s", host, addr, port, boot, net);
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
    util_sha256_hex(url, strlen(url), h->key);
    memcpy(srv->hook_key, h->key, sizeof srv->hook_key);
    hook_owner(srv, h->owner, sizeof h->owner);
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
