/* test_shipper.c — the shipper against a real HTTP endpoint on loopback
 * (libevent's evhttp in a thread): ordered exactly-once delivery, retry after
 * server errors, failover across URLs, and events kept while no server answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hoopctl/shipper.h"
#include "hoopctl/spool.h"
#include "spool_tmpdir.h"

/* The fake-free receiving end: a real HTTP server that records what arrives. */
struct receiver {
    struct event_base *base;
    struct evhttp *http;
    pthread_t thread;
    int port;
    pthread_mutex_t lock;
    int fail_next;           /* answer 503 to this many requests */
    int proxy_next;          /* answer as a proxy would (404, an HTML page) to this many */
    int requests, received, duplicates, out_of_order, bad_auth, refused;
    long last_n;
    char seen[4096];         /* received[n] flags for ids "e<n>" */
};

static void on_events(struct evhttp_request *req, void *arg)
{
    struct receiver *r = arg;
    pthread_mutex_lock(&r->lock);
    r->requests++;
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (!auth || strcmp(auth, "Bearer test-token") != 0) {
        r->bad_auth++;
        pthread_mutex_unlock(&r->lock);
        evhttp_send_reply(req, 401, "Unauthorized", NULL);
        return;
    }
    if (r->fail_next > 0) {
        r->fail_next--;
        pthread_mutex_unlock(&r->lock);
        evhttp_send_reply(req, 503, "Unavailable", NULL);
        return;
    }
    if (r->proxy_next > 0) {
        r->proxy_next--;
        pthread_mutex_unlock(&r->lock);
        struct evbuffer *page = evbuffer_new();
        evbuffer_add_printf(page, "<html><body><h1>404 Not Found</h1>nginx</body></html>");
        evhttp_send_reply(req, 404, "Not Found", page);
        evbuffer_free(page);
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    char *body = malloc(len + 1);
    evbuffer_remove(in, body, len);
    body[len] = '\0';
    json_t *root = json_loads(body, 0, NULL);
    free(body);
    json_t *events = json_object_get(root, "events");
    size_t i;
    json_t *e;
    /* Like the server: a batch with one invalid event is refused whole (400). */
    json_array_foreach(events, i, e) {
        if (json_is_true(json_object_get(e, "poison"))) {
            r->refused++;
            pthread_mutex_unlock(&r->lock);
            json_decref(root);
            struct evbuffer *msg = evbuffer_new();
            evbuffer_add_printf(msg, "{\"error\": \"event %zu: unknown field 'poison'\"}", i);
            evhttp_send_reply(req, 400, "Bad Request", msg);
            evbuffer_free(msg);
            return;
        }
    }
    json_array_foreach(events, i, e) {
        long n = atol(json_string_value(json_object_get(e, "id")) + 1);
        if (n < 0 || n >= (long)sizeof r->seen)
            continue;
        if (r->seen[n]) {
            r->duplicates++;
        } else {
            r->seen[n] = 1;
            r->received++;
            if (n < r->last_n)
                r->out_of_order++;
            r->last_n = n;
        }
    }
    json_decref(root);
    pthread_mutex_unlock(&r->lock);
    evhttp_send_reply(req, 200, "OK", NULL);
}

static void *receiver_main(void *arg)
{
    struct receiver *r = arg;
    event_base_dispatch(r->base);
    return NULL;
}

static struct receiver *receiver_start(void)
{
    struct receiver *r = calloc(1, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    r->last_n = -1;
    r->base = event_base_new();
    r->http = evhttp_new(r->base);
    evhttp_set_cb(r->http, "/api/v1/events", on_events, r);
    struct evhttp_bound_socket *sock = evhttp_bind_socket_with_handle(r->http, "127.0.0.1", 0);
    assert_non_null(sock);
    struct sockaddr_in sin;
    socklen_t slen = sizeof sin;
    getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&sin, &slen);
    r->port = ntohs(sin.sin_port);
    pthread_create(&r->thread, NULL, receiver_main, r);
    return r;
}

static void receiver_stop(struct receiver *r)
{
    event_base_loopbreak(r->base);
    pthread_join(r->thread, NULL);
    evhttp_free(r->http);
    event_base_free(r->base);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* A receiver and its base URL (with `tail` appended, e.g. "/"). */
static struct receiver *receiver_at(char url[64], const char *tail)
{
    struct receiver *r = receiver_start();
    snprintf(url, 64, "http://127.0.0.1:%d%s", r->port, tail);
    return r;
}

static int give_token(void *arg, char *buf, size_t len)
{
    (void)arg;
    snprintf(buf, len, "test-token");
    return 0;
}

static char err[256];

static void spool_events(int from, int to)
{
    struct spool *s = spool_open(spool_path, SPOOL_SURVIVE_PROCESS_CRASH, err, sizeof err);
    assert_non_null(s);
    for (int i = from; i < to; i++) {
        char id[16], json[64];
        snprintf(id, sizeof id, "e%d", i);
        int n = snprintf(json, sizeof json, "{\"id\":\"%s\",\"type\":\"statement\"}", id);
        assert_int_equal(spool_append(s, id, "s1", json, (size_t)n, err, sizeof err), 0);
        if (i % 37 == 0)
            assert_int_equal(spool_commit(s, err, sizeof err), 0);
    }
    assert_int_equal(spool_commit(s, err, sizeof err), 0);
    spool_close(s);
}

static int closed_port(void)
{
    /* Bind, learn the port, close: nothing listens there now. */
    struct event_base *b = event_base_new();
    struct evhttp *h = evhttp_new(b);
    struct evhttp_bound_socket *sock = evhttp_bind_socket_with_handle(h, "127.0.0.1", 0);
    struct sockaddr_in sin;
    socklen_t slen = sizeof sin;
    getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&sin, &slen);
    evhttp_free(h);
    event_base_free(b);
    return ntohs(sin.sin_port);
}

static size_t bytes_max; /* 0: the shipper's default */

static struct shipper *start(const char *const *urls, int n)
{
    struct shipper_config cfg = {
        .spool_path = spool_path, .urls = urls, .nurls = n, .batch_max = 100, .batch_bytes_max = bytes_max,
        .backoff_min_ms = 10, .backoff_max_ms = 50, .token = give_token,
    };
    struct shipper *s = shipper_start(&cfg, err, sizeof err);
    assert_non_null(s);
    return s;
}

static void delivers_in_order_exactly_once(void **state)
{
    (void)state;
    char url[64];
    struct receiver *r = receiver_at(url, "/");
    const char *urls[] = {url};
    spool_events(0, 1000);
    struct shipper *s = start(urls, 1);
    assert_int_equal(shipper_drain(s, 30000), 0);
    struct shipper_stats st;
    shipper_get_stats(s, &st);
    assert_int_equal(st.shipped, 1000);
    assert_int_equal(st.pending, 0);
    shipper_stop(s);
    assert_int_equal(r->received, 1000);
    assert_int_equal(r->duplicates, 0);
    assert_int_equal(r->out_of_order, 0);
    assert_int_equal(r->bad_auth, 0);
    assert_true(r->requests >= 10); /* batches of at most 100 */
    receiver_stop(r);
}

/* A request body stays under batch_bytes_max: each event here is 31 to 33
 * bytes of JSON and a comma, so a 400-byte body ({"events":[...]} included)
 * takes at most 12 of them; every event still arrives once and in order. */
static void batches_are_bounded_in_bytes(void **state)
{
    (void)state;
    char url[64];
    struct receiver *r = receiver_at(url, "/");
    const char *urls[] = {url};
    spool_events(0, 300);
    bytes_max = 400;
    struct shipper *s = start(urls, 1);
    bytes_max = 0;
    assert_int_equal(shipper_drain(s, 30000), 0);
    shipper_stop(s);
    assert_int_equal(r->received, 300);
    assert_int_equal(r->duplicates, 0);
    assert_int_equal(r->out_of_order, 0);
    assert_true(r->requests >= 25); /* at most 12 events a request */
    assert_true(r->requests <= 60); /* and not one a request */
    receiver_stop(r);
}

static void retries_after_server_errors(void **state)
{
    (void)state;
    char url[64];
    struct receiver *r = receiver_at(url, "");
    r->fail_next = 3;
    const char *urls[] = {url};
    spool_events(0, 250);
    struct shipper *s = start(urls, 1);
    assert_int_equal(shipper_drain(s, 30000), 0);
    struct shipper_stats st;
    shipper_get_stats(s, &st);
    assert_int_equal(st.failures, 3);
    assert_string_equal(st.last_error, "");
    shipper_stop(s);
    assert_int_equal(r->received, 250);
    assert_int_equal(r->out_of_order, 0);
    receiver_stop(r);
}

/* A proxy's 4xx says nothing about the events: they are retried, never
 * quarantined (only the server's own JSON refusal is final). */
static void a_proxy_error_is_retried_not_quarantined(void **state)
{
    (void)state;
    char url[64];
    struct receiver *r = receiver_at(url, "");
    r->proxy_next = 3;
    const char *urls[] = {url};
    spool_events(0, 200);
    struct shipper *s = start(urls, 1);
    assert_int_equal(shipper_drain(s, 30000), 0);
    struct shipper_stats st;
    shipper_get_stats(s, &st);
    assert_int_equal(st.quarantined, 0);
    assert_int_equal(st.shipped, 200);
    assert_true(st.failures >= 3);
    shipper_stop(s);
    assert_int_equal(r->received, 200);
    assert_int_equal(r->duplicates, 0);
    receiver_stop(r);
}

static void fails_over_and_keeps_events_while_down(void **state)
{
    (void)state;
    char dead[64], live[64];
    snprintf(dead, sizeof dead, "http://127.0.0.1:%d", closed_port());
    /* Nobody answers: events stay in the spool across a stop. */
    const char *only_dead[] = {dead};
    spool_events(0, 120);
    struct shipper *s = start(only_dead, 1);
    assert_int_equal(shipper_drain(s, 300), -1);
    struct shipper_stats st;
    shipper_get_stats(s, &st);
    assert_int_equal(st.shipped, 0);
    assert_int_equal(st.pending, 120);
    assert_true(st.failures >= 1);
    assert_non_null(strstr(st.last_error, "127.0.0.1"));
    shipper_stop(s);

    struct receiver *r = receiver_start();
    snprintf(live, sizeof live, "http://127.0.0.1:%d", r->port);
    const char *urls[] = {dead, live};
    spool_events(120, 300);
    s = start(urls, 2);
    assert_int_equal(shipper_drain(s, 30000), 0);
    shipper_get_stats(s, &st);
    assert_int_equal(st.current_url, 1);
    assert_int_equal(st.shipped, 300);
    shipper_stop(s);
    assert_int_equal(r->received, 300);
    assert_int_equal(r->duplicates, 0);
    assert_int_equal(r->out_of_order, 0);
    receiver_stop(r);
}

static void quarantines_an_event_the_server_refuses(void **state)
{
    (void)state;
    char url[64];
    struct receiver *r = receiver_at(url, "");
    const char *urls[] = {url};
    spool_events(0, 60);
    struct spool *w = spool_open(spool_path, SPOOL_SURVIVE_PROCESS_CRASH, err, sizeof err);
    assert_non_null(w);
    const char *bad = "{\"id\":\"e60\",\"type\":\"statement\",\"poison\":true}";
    assert_int_equal(spool_append(w, "e60", "s1", bad, strlen(bad), err, sizeof err), 0);
    assert_int_equal(spool_commit(w, err, sizeof err), 0);
    spool_close(w);
    spool_events(61, 250);
    struct shipper *s = start(urls, 1);
    assert_int_equal(shipper_drain(s, 30000), 0);
    struct shipper_stats st;
    shipper_get_stats(s, &st);
    assert_int_equal(st.shipped, 249);
    assert_int_equal(st.quarantined, 1);
    assert_int_equal(st.pending, 0);
    assert_string_equal(st.last_error, "");
    assert_non_null(strstr(st.last_quarantined, "e60: "));
    assert_non_null(strstr(st.last_quarantined, "HTTP 400: event 0: unknown field 'poison'"));
    shipper_stop(s);
    assert_int_equal(r->received, 249);
    assert_false(r->seen[60]);
    assert_int_equal(r->duplicates, 0);
    assert_int_equal(r->out_of_order, 0);
    assert_true(r->refused >= 2); /* the batch, then halves of it, then the event alone */
    receiver_stop(r);
    /* The refused event is kept in the spool, outside the queue. */
    struct spool *q = spool_open(spool_path, SPOOL_SURVIVE_PROCESS_CRASH, err, sizeof err);
    assert_non_null(q);
    assert_int_equal(spool_quarantined(q), 1);
    assert_int_equal(spool_pending(q), 0);
    spool_close(q);
}

static void refuses_incomplete_config(void **state)
{
    (void)state;
    struct shipper_config cfg = {.spool_path = spool_path};
    assert_null(shipper_start(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "server URL"));
}

int main(void)
{
    evthread_use_pthreads();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(delivers_in_order_exactly_once, setup, teardown),
        cmocka_unit_test_setup_teardown(batches_are_bounded_in_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(retries_after_server_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(a_proxy_error_is_retried_not_quarantined, setup, teardown),
        cmocka_unit_test_setup_teardown(fails_over_and_keeps_events_while_down, setup, teardown),
        cmocka_unit_test_setup_teardown(quarantines_an_event_the_server_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(refuses_incomplete_config, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
