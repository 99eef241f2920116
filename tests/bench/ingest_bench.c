/* ingest_bench.c — load driver for `hoopctl server`: audit ingest throughput
 * in events/s at a given batch size, and the wake-up latency of the review
 * long poll (approve on one connection, time until the waiter hears it).
 *   ingest_bench ingest URL TOKEN BATCH TOTAL [SESSIONS]   (events spread over SESSIONS, default 10)
 *   ingest_bench longpoll URL REQUESTER_TOKEN REVIEWER_TOKEN CONNECTION N */
#include "hoopctl/policy.h"
#include "hoopctl/util.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct http {
    CURL *h;
    struct curl_slist *hdrs;
    struct buf resp;
};

static size_t sink(char *p, size_t s, size_t n, void *u)
{
    struct buf *b = u;
    return buf_append(b, p, s * n) == 0 ? s * n : 0;
}

static void http_init(struct http *c, const char *token)
{
    char auth[512];
    memset(c, 0, sizeof *c);
    c->h = curl_easy_init();
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    c->hdrs = curl_slist_append(NULL, auth);
    c->hdrs = curl_slist_append(c->hdrs, "Content-Type: application/json");
}

static long http_do(struct http *c, const char *method, const char *url, const char *body)
{
    buf_reset(&c->resp);
    curl_easy_setopt(c->h, CURLOPT_URL, url);
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, c->hdrs);
    curl_easy_setopt(c->h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c->h, CURLOPT_HTTPGET, body ? 0L : 1L);
    if (!body)
        curl_easy_setopt(c->h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c->h, CURLOPT_WRITEDATA, &c->resp);
    long status = 0;
    if (curl_easy_perform(c->h) != CURLE_OK)
        return -1;
    curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

static int bench_ingest(const char *base, const char *token, int batch, int total, int nsessions)
{
    struct http c;
    http_init(&c, token);
    char url[512], run[16];
    snprintf(url, sizeof url, "%s/api/v1/events", base);
    unsigned char r[4];
    util_random_bytes(r, sizeof r);
    util_hex_encode(r, sizeof r, run);
    struct buf body = {0};
    int64_t now = util_now_ms(), t0 = util_monotonic_us();
    int sent = 0;
    while (sent < total) {
        buf_reset(&body);
        buf_append_str(&body, "{\"events\":[");
        for (int i = 0; i < batch && sent < total; i++, sent++) {
            int sess = sent % nsessions, seq = sent / nsessions;
            buf_printf(&body,
                       "%s{\"id\":\"%s-%d\",\"session_id\":\"%s-s%d\",\"seq\":%d,\"type\":\"statement\","
                       "\"time\":%lld,\"data\":{\"text\":\"select * from orders where id = $1\","
                       "\"params\":[\"%d\"],\"decision\":\"allow\",\"kind\":\"select\","
                       "\"relations\":[\"public.orders\"],\"rows\":1,\"duration_us\":250}}",
                       i ? "," : "", run, sent, run, sess, seq, (long long)(now + sent), sent);
        }
        buf_append_str(&body, "]}");
        long st = http_do(&c, "POST", url, buf_cstr(&body));
        if (st != 200) {
            fprintf(stderr, "ingest: HTTP %ld: %s\n", st, c.resp.len ? buf_cstr(&c.resp) : "");
            return 1;
        }
    }
    double secs = (double)(util_monotonic_us() - t0) / 1e6;
    printf("ingest batch=%d sessions=%d events=%d seconds=%.3f events_per_s=%.0f\n", batch, nsessions, total,
           secs, total / secs);
    buf_free(&body);
    buf_free(&c.resp);
    curl_slist_free_all(c.hdrs);
    curl_easy_cleanup(c.h);
    return 0;
}

struct waiter {
    const char *url;
    const char *token;
    int64_t done_us;
    long status;
};

static void *wait_thread(void *arg)
{
    struct waiter *w = arg;
    struct http c;
    http_init(&c, w->token);
    w->status = http_do(&c, "GET", w->url, NULL);
    w->done_us = util_monotonic_us();
    buf_free(&c.resp);
    curl_slist_free_all(c.hdrs);
    curl_easy_cleanup(c.h);
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int waiting_now(struct http *c, const char *base)
{
    char url[512];
    snprintf(url, sizeof url, "%s/metrics", base);
    if (http_do(c, "GET", url, NULL) != 200)
        return -1;
    const char *p = strstr(buf_cstr(&c->resp), "\nhoopctl_longpoll_waiting ");
    return p ? atoi(p + 26) : -1;
}

static int bench_longpoll(const char *base, const char *req_tok, const char *rev_tok, const char *conn, int n)
{
    struct http req, rev;
    http_init(&req, req_tok);
    http_init(&rev, rev_tok);
    int64_t *lat = calloc((size_t)n, sizeof *lat);
    char url[512], body[768], wurl[512], hash[65], rules[256] = "", digest[65] = "";
    /* A review names the rules that held it, as a gateway does: here every
     * rule of the connection's policy that reviews (the built-in default's
     * when it has none), with the policy's digest. */
    snprintf(url, sizeof url, "%s/api/v1/connections/%s", base, conn);
    if (http_do(&rev, "GET", url, NULL) != 200) {
        fprintf(stderr, "connection %s: %s\n", conn, buf_cstr(&rev.resp));
        return 1;
    }
    json_t *c = json_loads(buf_cstr(&rev.resp), 0, NULL), *pol = json_object_get(c, "policy");
    json_t *def = json_object_size(pol) ? NULL : policy_default_json(); /* {}: the default */
    if (!json_object_size(pol))
        pol = NULL;
    size_t k;
    json_t *rule;
    json_array_foreach(json_object_get(pol ? pol : def, "rules"), k, rule) {
        const char *a = json_string_value(json_object_get(rule, "action"));
        if (a && strcmp(a, "review") == 0)
            snprintf(rules + strlen(rules), sizeof rules - strlen(rules), "%s%zu", rules[0] ? "," : "", k);
    }
    snprintf(digest, sizeof digest, "%s", json_string_value(json_object_get(c, "policy_digest")) ?
             json_string_value(json_object_get(c, "policy_digest")) : "");
    json_decref(def);
    json_decref(c);
    for (int i = 0; i < n; i++) {
        char stmt[64];
        snprintf(stmt, sizeof stmt, "delete from t where id = %d", i);
        util_sha256_hex(stmt, strlen(stmt), hash);
        snprintf(url, sizeof url, "%s/api/v1/reviews", base);
        snprintf(body, sizeof body,
                 "{\"connection\":\"%s\",\"statement\":\"%s\",\"statement_hash\":\"%s\",\"rules\":[%s],"
                 "\"policy_digest\":\"%s\"}", conn, stmt, hash, rules, digest);
        if (http_do(&req, "POST", url, body) != 201) {
            fprintf(stderr, "create review: %s\n", buf_cstr(&req.resp));
            return 1;
        }
        json_t *r = json_loads(buf_cstr(&req.resp), 0, NULL);
        char id[64];
        snprintf(id, sizeof id, "%s", json_string_value(json_object_get(r, "id")));
        json_decref(r);
        snprintf(wurl, sizeof wurl, "%s/api/v1/reviews/%s/wait?timeout=30", base, id);
        struct waiter w = {wurl, req_tok, 0, 0};
        pthread_t th;
        pthread_create(&th, NULL, wait_thread, &w);
        int parked;
        while ((parked = waiting_now(&rev, base)) == 0) /* until parked on the server */
            usleep(1000);
        if (parked < 0) { /* /metrics wants the auditor group */
            fprintf(stderr, "metrics: %s\n", buf_cstr(&rev.resp));
            return 1;
        }
        snprintf(url, sizeof url, "%s/api/v1/reviews/%s/approve", base, id);
        int64_t t0 = util_monotonic_us();
        if (http_do(&rev, "POST", url, "{\"reason\":\"bench\"}") != 200) {
            fprintf(stderr, "approve: %s\n", buf_cstr(&rev.resp));
            return 1;
        }
        pthread_join(th, NULL);
        if (w.status != 200) {
            fprintf(stderr, "wait: HTTP %ld\n", w.status);
            return 1;
        }
        lat[i] = w.done_us - t0;
    }
    qsort(lat, (size_t)n, sizeof *lat, cmp_i64);
    printf("longpoll wakeups=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n", n, lat[n / 2] / 1000.0,
           lat[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1] / 1000.0, lat[n - 1] / 1000.0);
    free(lat);
    return 0;
}

int main(int argc, char **argv)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if ((argc == 6 || argc == 7) && strcmp(argv[1], "ingest") == 0)
        return bench_ingest(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]), argc == 7 ? atoi(argv[6]) : 10);
    if (argc == 7 && strcmp(argv[1], "longpoll") == 0)
        return bench_longpoll(argv[2], argv[3], argv[4], argv[5], atoi(argv[6]));
    fprintf(stderr, "usage: ingest_bench ingest URL TOKEN BATCH TOTAL [SESSIONS]\n"
                    "       ingest_bench longpoll URL REQ_TOKEN REVIEWER_TOKEN CONNECTION N\n");
    return 2;
}
