/* listener.c — the gateway object: the loopback listener, optional client
 * TLS, the session list, holds resolved by id, and an orderly shutdown. */
#include "internal.h"
#include "hoopctl/log.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

void gw_on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *addr, int alen, void *arg)
{
    (void)l;
    struct gateway *gw = arg;
    if (gw->shutting_down) {
        evutil_closesocket(fd);
        return;
    }
    gw_session_accept(gw, fd, addr, alen);
}

static int client_tls_context(struct gateway *gw, char *err, size_t errlen)
{
    const struct gateway_config *c = &gw->cfg;
    if (!c->tls_cert_file && !c->tls_key_file)
        return 0;
    if (!c->tls_cert_file || !c->tls_key_file) {
        snprintf(err, errlen, "--tls-cert and --tls-key go together");
        return -1;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, c->tls_cert_file) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, c->tls_key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "cannot load the TLS certificate %s and key %s", c->tls_cert_file,
                 c->tls_key_file);
        SSL_CTX_free(ctx);
        return -1;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    gw->client_tls = ctx;
    return 0;
}

struct gateway *gateway_new(struct event_base *base, const struct gateway_config *cfg, char *err,
                            size_t errlen)
{
    struct gateway *gw = calloc(1, sizeof *gw);
    if (!gw) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    gw->base = base;
    gw->cfg = *cfg;
    if (!gw->cfg.max_message_size)
        gw->cfg.max_message_size = PGWIRE_DEFAULT_MAX_MESSAGE;
    if (!gw->cfg.buffer_limit)
        gw->cfg.buffer_limit = 256 * 1024;
    if (cfg->upstream_password && !(gw->upstream_password = strdup(cfg->upstream_password))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    gw->cfg.upstream_password = NULL;
    if (cfg->client_password) {
        /* PostgreSQL's default iteration count; the derivation runs once per gateway. */
        if (!*cfg->client_password ||
            pgwire_scram_secret_make(cfg->client_password, 4096, &gw->client_verifier) < 0) {
            snprintf(err, errlen, "cannot set up the client password");
            goto fail;
        }
        gw->client_auth = true;
    }
    gw->cfg.client_password = NULL;
    uint8_t rnd[8];
    char hex[17];
    util_random_bytes(rnd, sizeof rnd);
    util_hex_encode(rnd, sizeof rnd, hex);
    snprintf(gw->refusal_marker, sizeof gw->refusal_marker, "hoopctl_refused_%s", hex);
    if (client_tls_context(gw, err, errlen) < 0 || gw_upstream_tls_context(gw, err, errlen) < 0)
        goto fail;

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICHOST}, *res = NULL;
    const char *host = cfg->listen_host ? cfg->listen_host : "127.0.0.1";
    if (getaddrinfo(host, cfg->listen_port ? cfg->listen_port : "0", &hints, &res) != 0 || !res) {
        snprintf(err, errlen, "invalid listen address %s (give an IP address)", host);
        goto fail;
    }
    gw->listener = evconnlistener_new_bind(base, gw_on_accept, gw,
                                           LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 128,
                                           res->ai_addr, (int)res->ai_addrlen);
    freeaddrinfo(res);
    if (!gw->listener) {
        snprintf(err, errlen, "cannot listen on %s:%s: %s", host, cfg->listen_port ? cfg->listen_port : "0",
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        goto fail;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(evconnlistener_get_fd(gw->listener), (struct sockaddr *)&ss, &sl);
    char ip[INET6_ADDRSTRLEN] = "";
    unsigned port = 0;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
        port = ntohs(in->sin_port);
        snprintf(gw->listen_address, sizeof gw->listen_address, "%s:%u", ip, port);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
        port = ntohs(in6->sin6_port);
        snprintf(gw->listen_address, sizeof gw->listen_address, "[%s]:%u", ip, port);
    }
    return gw;
fail:
    gateway_free(gw);
    return NULL;
}

int gateway_password_generate(char out[GATEWAY_PASSWORD_LEN + 1])
{
    uint8_t raw[GATEWAY_PASSWORD_LEN / 2];
    if (util_random_bytes(raw, sizeof raw) < 0)
        return -1;
    util_hex_encode(raw, sizeof raw, out);
    util_secure_zero(raw, sizeof raw);
    return 0;
}

const char *gateway_listen_address(const struct gateway *gw)
{
    return gw->listen_address;
}

size_t gateway_session_count(const struct gateway *gw)
{
    return gw->nsessions;
}

void gateway_shutdown(struct gateway *gw)
{
    gw->shutting_down = true;
    if (gw->listener) {
        evconnlistener_free(gw->listener);
        gw->listener = NULL;
    }
    gw_unix_close(gw);
    for (struct gw_session *s = gw->sessions; s; s = s->next)
        gw_session_shutdown(s);
}

void gateway_free(struct gateway *gw)
{
    if (!gw)
        return;
    if (gw->listener)
        evconnlistener_free(gw->listener);
    gw_unix_close(gw);
    while (gw->sessions)
        gw_session_free(gw->sessions);
    if (gw->upstream_password) {
        util_secure_zero(gw->upstream_password, strlen(gw->upstream_password));
        free(gw->upstream_password);
    }
    util_secure_zero(&gw->client_verifier, sizeof gw->client_verifier);
    SSL_CTX_free(gw->client_tls);
    SSL_CTX_free(gw->upstream_tls);
    free(gw);
}

int gateway_resolve(struct gateway *gw, uint64_t hold_id, enum gateway_verdict verdict,
                    const struct gateway_refusal *refusal)
{
    for (struct gw_session *s = gw->sessions; s; s = s->next) {
        if (s->held && s->hold_id == hold_id && s->phase == GW_RELAY) {
            gw_session_resume(s, verdict, refusal);
            return 0;
        }
    }
    return -1;
}
