/* fuzz_startup_auth.c — libFuzzer target for the startup/auth state machine:
 * the first byte picks a password mode, then the input is read as a client
 * startup packet (length-prefixed) followed by backend messages fed to the
 * upstream authentication exchange (SCRAM with a fixed nonce, md5, cleartext),
 * or (mode bit 2) as frontend messages fed to the server side of SCRAM that
 * checks clients' per-run password. */
#include "hoopctl/pgwire.h"

#include <stdlib.h>
#include <string.h>

static struct pgwire_startup startup;
static struct pgwire_scram_secret secret; /* made once: PBKDF2 is slow by design */
static bool have_secret;

struct fuzz_peer {
    struct pgwire_auth *client;       /* upstream side (the gateway as a client) */
    struct pgwire_scram_server *server; /* or client side (the gateway as a server) */
};

/* Feed the framed messages in data to one side until it stops continuing. */
static void feed_messages(struct fuzz_peer *peer, const uint8_t *data, size_t size)
{
    char err[512];
    struct buf reply = {0};
    size_t pos = 0;
    while (size - pos >= PGWIRE_HEADER_LEN) {
        long blen = pgwire_check_header(data + pos, 4096, err, sizeof err);
        if (blen < 0 || (size_t)blen > size - pos - PGWIRE_HEADER_LEN)
            break;
        uint8_t *body = malloc((size_t)blen + 1);
        memcpy(body, data + pos + PGWIRE_HEADER_LEN, (size_t)blen);
        buf_reset(&reply);
        enum pgwire_auth_result r =
            peer->client ? pgwire_auth_step(peer->client, data[pos], body, (size_t)blen, &reply, err, sizeof err)
                         : pgwire_scram_server_step(peer->server, &secret, data[pos], body, (size_t)blen, &reply,
                                                    err, sizeof err);
        free(body);
        pos += PGWIRE_HEADER_LEN + (size_t)blen;
        if (r != PGWIRE_AUTH_CONTINUE)
            break;
    }
    buf_free(&reply);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char err[512];
    uint8_t mode = data[0];
    data++;
    size--;
    /* A startup packet, when the prefix says one fits. */
    if (size >= 4) {
        long blen = pgwire_startup_length(data, err, sizeof err);
        if (blen >= 0 && (size_t)blen <= size - 4) {
            uint8_t *body = malloc((size_t)blen + 1);
            memcpy(body, data + 4, (size_t)blen);
            if (pgwire_parse_startup(body, (size_t)blen, &startup, err, sizeof err) == 0)
                for (int i = 0; i < startup.nparams; i++)
                    (void)pgwire_startup_get(&startup, startup.params[i].name);
            free(body);
            data += 4 + blen;
            size -= 4 + (size_t)blen;
        }
    }
    if (mode & 2) { /* the gateway's SCRAM server against frontend messages */
        if (!have_secret && pgwire_scram_secret_make("pencil", 16, &secret) == 0)
            have_secret = true;
        struct pgwire_scram_server srv = {0};
        struct fuzz_peer peer = {.server = &srv};
        if (have_secret)
            feed_messages(&peer, data, size);
        pgwire_scram_server_free(&srv);
        return 0;
    }
    struct pgwire_auth a = {.user = "postgres", .password = (mode & 1) ? "pencil" : NULL};
    memcpy(a.client_nonce, "fuzznonce", 10);
    struct fuzz_peer peer = {.client = &a};
    feed_messages(&peer, data, size);
    pgwire_auth_free(&a);
    return 0;
}
