/* gateway.c — `hoopctl mcp <connection>`: the engine of `hoopctl connect`
 * (policy, masking, reviews, spool and shipper, under the saved login) run
 * in-process on its own event loop thread, on an ephemeral loopback port
 * that runs statements only for a per-run secret startup user. */
#include "hoopctl/mcp.h"
#include "hoopctl/identity.h"
#include "hoopctl/log.h"
#include "hoopctl/util.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct mcp_gateway {
    struct identity_session *identity;
    struct event_base *base;
    struct connect *conn;
    struct event *stop_event;
    int stop_pipe[2];
    pthread_t thread;
    bool thread_started;
    char conninfo[640];
};

static void *gateway_loop(void *arg)
{
    struct mcp_gateway *g = arg;
    event_base_dispatch(g->base);
    return NULL;
}

/* On the loop thread: close every session and leave the loop. */
static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct mcp_gateway *g = arg;
    connect_shutdown(g->conn);
    struct timeval tv = {0, 200000};
    event_base_loopexit(g->base, &tv);
}

struct mcp_gateway *mcp_gateway_start(const struct mcp_gateway_options *o, enum connect_error *why,
                                      char *err, size_t errlen)
{
    *why = CONNECT_ERR_FAILED;
    struct mcp_gateway *g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    g->stop_pipe[0] = g->stop_pipe[1] = -1;
    /* An API key in HOOPCTL_TOKEN, or the saved login (as hoopctl connect). */
    const char *token = getenv("HOOPCTL_TOKEN");
    if (!(token && *token)) {
        int rc = identity_session_open(o->server, IDENTITY_REFRESH_MARGIN, &g->identity, err, errlen);
        if (rc != 0) {
            *why = rc > 0 ? CONNECT_ERR_AUTH : CONNECT_ERR_FAILED;
            goto fail;
        }
    }
    if (!(g->base = event_base_new())) {
        snprintf(err, errlen, "cannot create the event loop");
        goto fail;
    }
    /* Only our own sessions may run statements: they present a random
     * startup user that no other local client knows. */
    unsigned char secret[16];
    char client_user[64];
    if (util_random_bytes(secret, sizeof secret) < 0) {
        snprintf(err, errlen, "no randomness for the listener's client secret");
        goto fail;
    }
    memcpy(client_user, "hoopctl-mcp-", 12);
    util_hex_encode(secret, sizeof secret, client_user + 12);
    struct connect_options co = {
        .connection = o->connection,
        .identity = g->identity,
        .token = g->identity ? NULL : token,
        .server = o->server,
        .listen_host = "127.0.0.1",
        .listen_ephemeral = true,
        .review_wait_seconds = o->review_wait_seconds,
        .client_user = client_user,
        .read_only = o->read_only,
    };
    if (!(g->conn = connect_start(g->base, &co, why, err, errlen)))
        goto fail;
    if (pipe2(g->stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0 ||
        !(g->stop_event = event_new(g->base, g->stop_pipe[0], EV_READ, on_stop, g)) ||
        event_add(g->stop_event, NULL) < 0) {
        *why = CONNECT_ERR_FAILED;
        snprintf(err, errlen, "cannot set up the event loop: %s", strerror(errno));
        goto fail;
    }
    connect_client_conninfo(g->conn, g->conninfo, sizeof g->conninfo);

    /* Signals are the main thread's business: the loop thread blocks them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int terr = pthread_create(&g->thread, NULL, gateway_loop, g);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (terr != 0) {
        *why = CONNECT_ERR_FAILED;
        snprintf(err, errlen, "cannot start the gateway thread: %s", strerror(terr));
        goto fail;
    }
    g->thread_started = true;
    log_info("mcp", "gateway for connection %s on %s:%d (in-process)", o->connection,
             connect_listen_host(g->conn), connect_listen_port(g->conn));
    *why = CONNECT_OK;
    return g;
fail:
    mcp_gateway_stop(g, 0);
    return NULL;
}

const char *mcp_gateway_conninfo(const struct mcp_gateway *g)
{
    return g->conninfo;
}

void mcp_gateway_stop(struct mcp_gateway *g, int drain_timeout_ms)
{
    if (!g)
        return;
    if (g->thread_started) {
        ssize_t w;
        do
            w = write(g->stop_pipe[1], "x", 1);
        while (w < 0 && errno == EINTR);
        pthread_join(g->thread, NULL);
    }
    /* The loop no longer runs: the rest happens on this thread. */
    connect_free(g->conn, drain_timeout_ms);
    if (g->stop_event)
        event_free(g->stop_event);
    for (int i = 0; i < 2; i++)
        if (g->stop_pipe[i] >= 0)
            close(g->stop_pipe[i]);
    if (g->base)
        event_base_free(g->base);
    identity_session_close(g->identity);
    free(g);
}
