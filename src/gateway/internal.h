/* internal.h — the gateway's private structures, shared by its source files
 * (listener.c, session.c, upstream.c, tracking.c). Not part of the public face. */
#ifndef HOOPCTL_GATEWAY_INTERNAL_H
#define HOOPCTL_GATEWAY_INTERNAL_H

#include "hoopctl/gateway.h"

#include <event2/bufferevent.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

struct gw_session;
struct gw_cancel;

/* conn.c — a session's socket (plain, or TLS straight on the fd) with input
 * and output evbuffers. Events (BEV_EVENT_CONNECTED, _EOF, _ERROR) and the
 * writecb (a flush from the loop sent bytes) come from the loop, never from
 * inside a gw_conn call. */
struct gw_conn;
typedef void (*gw_conn_cb)(struct gw_conn *c, void *arg);
typedef void (*gw_conn_event_cb)(struct gw_conn *c, short what, void *arg);
/* Wrap a connected socket (owned from here on; closed by gw_conn_free). */
struct gw_conn *gw_conn_new(struct event_base *base, evutil_socket_t fd);
/* A nonblocking connect; BEV_EVENT_CONNECTED or _ERROR follows. NULL (errno
 * set) when it fails at once. */
struct gw_conn *gw_conn_connect(struct event_base *base, const struct sockaddr *sa, socklen_t len);
void gw_conn_setcb(struct gw_conn *c, gw_conn_cb readcb, gw_conn_cb writecb, gw_conn_event_cb eventcb,
                   void *arg);
/* Start TLS on the socket (it owns ssl from here, also on failure: -1);
 * BEV_EVENT_CONNECTED when the handshake is done, _ERROR when it failed. */
int gw_conn_start_tls(struct gw_conn *c, SSL *ssl, bool server);
SSL *gw_conn_ssl(const struct gw_conn *c);
unsigned long gw_conn_tls_error(const struct gw_conn *c); /* first OpenSSL error of a failure */
int gw_conn_socket_error(const struct gw_conn *c);        /* errno of a failure */
struct evbuffer *gw_conn_input(const struct gw_conn *c);
struct evbuffer *gw_conn_output(const struct gw_conn *c);
/* Queue bytes; they are sent from the loop (or by the next gw_conn_flush). */
void gw_conn_write(struct gw_conn *c, const void *data, size_t len);
/* Send what the output holds now (what the socket takes; the rest when it is writable). */
void gw_conn_flush(struct gw_conn *c);
void gw_conn_flush_later(struct gw_conn *c);
void gw_conn_read_on(struct gw_conn *c);
void gw_conn_read_off(struct gw_conn *c);
/* A TLS close_notify when everything queued is sent (best effort). */
void gw_conn_close_notify(struct gw_conn *c);
void gw_conn_free(struct gw_conn *c);

/* listener.c: a client connected to one of the gateway's listeners (arg:
 * the gateway); it becomes a session unless the gateway is shutting down. */
void gw_on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *addr, int alen, void *arg);
/* listener.c: accept() failed (out of descriptors, say): accepts pause a
 * moment instead of failing again at once. */
void gw_on_accept_error(struct evconnlistener *l, void *arg);
/* listener.c: a session ended (a descriptor came back): paused accepts
 * resume now. On the listeners' loop only. */
void gw_accepts_maybe_resume(struct gateway *gw);
/* unixsock.c: stop listening on the Unix socket and remove it. */
void gw_unix_close(struct gateway *gw);

/* An event loop that owns sessions. Worker 0 is the caller's loop (the
 * listeners' too); with gateway_config.threads > 1 the others each run on a
 * thread of their own, and accepted sockets are handed to them in turn. A
 * session lives on its worker's loop from accept to free. */
struct gw_handoff {
    struct gw_handoff *next;
    evutil_socket_t fd;
    struct sockaddr_storage addr;
    int alen;
};
struct gw_worker {
    struct gateway *gw;
    struct event_base *base;
    pthread_t thread;
    bool started;
    struct event *wake;            /* handoffs, shutdown and stop (threads only) */
    struct gw_handoff *queue;      /* sockets accepted for it (gw->lock) */
    bool want_shutdown, want_stop; /* (gw->lock) */
    struct gw_session *sessions;   /* its sessions, doubly linked; changed only by its
                                      own thread, under gw->lock */
    /* TLS to clients and to upstream (NULL: none), one pair per loop, so that
     * no TLS state (the trust store, its certificates' caches) is shared
     * between threads. */
    SSL_CTX *client_tls, *upstream_tls;
    struct gw_cancel *cancels;     /* forwarded cancels on their way (its own thread only) */
};

struct gateway {
    struct event_base *base;
    pthread_mutex_t lock;         /* the session lists, the counters below, handoffs */
    struct gw_worker *workers;
    int nworkers;
    unsigned next_worker;         /* round robin of accepts (listener's thread) */
    struct evconnlistener *listener;
    struct evconnlistener *unix_listener; /* gateway_listen_unix, or NULL */
    char socket_path[108];                /* its path, "" without one */
    struct event *accept_retry;           /* resumes accepts paused by an accept() error */
    bool accepts_paused;
    uint64_t accept_errors;               /* since the last message about them */
    int64_t accept_logged_us;
    struct gateway_config cfg;
    char *upstream_password;
    struct pgwire_scram_salted scram_salted; /* (lock) the last SCRAM login's, reused by the next */
    char *only_user;             /* cfg.only_user points here */
    char listen_address[64];
    size_t nsessions;             /* (lock) every session, those past the cap too */
    size_t nover;                 /* (lock) sessions past the cap (over_cap), in nsessions */
    uint64_t cap_refusals;        /* (lock) connections refused at the cap since the last message */
    int64_t cap_logged_us;        /* (lock) when the last message about them was logged */
    uint64_t next_session_id;     /* (lock) */
    _Atomic uint64_t next_hold_id; /* numbers every statement decision, on any loop */
    char refusal_marker[40];      /* "hoopctl_refused_<random hex>" */
    bool client_auth;             /* clients must prove client_verifier's password */
    struct pgwire_scram_secret client_verifier;
    bool shutting_down;           /* (lock) */
};

/* A chained hash table of names (tracking.c): buckets double as it fills,
 * and a per-session random key seeds the hash, so that no choice of names
 * makes a chain long. */
struct gw_hnode {
    struct gw_hnode *next;
    uint64_t hash;
    char *name;               /* at most GW_NAME_MAX bytes, as upstream keeps it */
};
struct gw_htab {
    struct gw_hnode **b;
    size_t nb, count;
};

/* PostgreSQL keeps the first NAMEDATALEN-1 bytes of a prepared statement's
 * or portal's name (its hash tables' key): names that differ only after
 * them are one statement upstream, and one in tracking. */
#define GW_NAME_MAX 63

/* Pending extended-protocol operations whose outcome upstream has not yet
 * reported: tracking commits a Parse/Bind/Close only when upstream confirms. */
struct gw_pkey;
struct gw_pending {
    struct gw_pending *next;
    char kind;                /* 'P', 'B', 'C' (close), 'D' (Describe), 'd' (a Describe the
                                 gateway added), 'S' (Sync), 'Q' (Query/FunctionCall) */
    char sub;
    uint64_t segment;
    uint64_t seq;             /* numbers every pending entry, from 1 */
    char *name;               /* cut to GW_NAME_MAX bytes */
    uint64_t full;            /* a name longer than that: a keyed hash of all of it (else 0) */
    struct gw_pkey *key;      /* P, B: the index entry of its (kind, name) */
    char *sql;                /* P: the text; B: the statement's text (NULL: unknown) */
    uint8_t *bind;            /* B: a copy of the Bind body */
    size_t bind_len;
    uint32_t *types;          /* P: the parameter types Parse gave; B: its statement's */
    int ntypes;
};

/* The pending Parses (or Binds) of one name: the latest, in O(1). Entries
 * of a kind leave the pending list oldest first, so the latest is the last
 * to go. */
struct gw_pkey {
    struct gw_hnode h;
    struct gw_pending *latest;
    size_t refs;              /* its pending entries */
    uint64_t forgot_upto;     /* entries with seq <= this are forgotten: a statement since may
                                 have redefined or dropped the name behind the protocol's back,
                                 so they commit as unknown */
    char name[];              /* h.name points here */
};

struct gw_named {             /* a committed statement or portal */
    struct gw_hnode h;        /* h.name: its name */
    uint64_t full;
    char *sql;
    uint8_t *bind;
    size_t bind_len;
    uint32_t *types;          /* parameter types given by the Parse (0: unspecified) */
    int ntypes;
    uint64_t segment;         /* a portal: the segment its Bind was in */
};

struct gw_tracking {
    struct gw_htab statements, portals;   /* of gw_named */
    struct gw_htab pending_p, pending_b;  /* of gw_pkey: pending Parses and Binds by name */
    uint64_t key[2];          /* the hash's key (random per session; zero works too) */
    struct gw_pending *head, *tail;
    size_t npending;
    uint64_t seq;             /* the last pending entry's seq */
    uint64_t forgot_p, forgot_b; /* pending entries with seq <= these are forgotten (all names) */
    uint64_t segment;         /* the segment the client is writing (bumped at Sync/Query) */
    uint64_t ended;           /* segments before this one have had their ReadyForQuery */
    size_t held;              /* bytes of names, SQL text and Bind bodies kept, pending and committed */
    size_t max_held;          /* what held may reach by a Parse or Bind (0: no bound) */
    uint64_t portal_closes;   /* Close messages of named portals the client sent */
};

/* What was forwarded upstream and awaits its answer, oldest first, for the
 * statement_complete hook and the answer position: 'Q' (a Query or
 * FunctionCall), 'E' (an Execute), 'S' (a Sync); refused ones were replaced
 * by a marker and report nothing. */
struct gw_inflight_item {
    char type;
    bool refused;
    uint64_t statement_id;    /* the id the statement hook was given */
    int64_t since_us;         /* forwarded (or the previous completion of its Query) */
    enum gateway_statement_kind kind;
    uint32_t done;            /* a Query's statements completed so far */
    bool may_copy;            /* a Query or Execute whose text may start COPY FROM STDIN */
    uint32_t copies;          /* the COPY FROM STDINs it started so far */
    uint64_t copy_ends_at;    /* the client's CopyDone/CopyFail count when it was forwarded */
};
struct gw_inflight {
    struct gw_inflight_item *items;  /* a ring */
    size_t cap, head, len;
};

enum gw_phase {
    GW_CLIENT_STARTUP = 0,
    GW_CLIENT_AUTH,                   /* SCRAM with the client (client_password) */
    GW_UPSTREAM_CONNECTING,
    GW_UPSTREAM_SSL_ANSWER,
    GW_UPSTREAM_TLS,
    GW_UPSTREAM_AUTH,
    GW_UPSTREAM_STARTUP,
    GW_RELAY,
    GW_CLOSING,
};

struct gw_session {
    struct gateway *gw;
    struct gw_worker *worker;         /* whose loop runs it */
    struct event_base *base;          /* worker->base */
    struct gw_session *prev, *next;
    uint64_t id;
    enum gw_phase phase;
    struct gw_conn *client, *upstream;
    struct event *timer;
    struct event *resume;             /* activated when a paused direction's output drained */
    struct pgwire_startup *startup;   /* until the upstream startup is sent */
    char client_user[128], client_database[128], application_name[128], client_addr[64];
    struct gateway_session_info info;
    bool started;                     /* session_start hook ran */
    bool over_cap;                    /* past max_sessions: a CancelRequest is carried out,
                                         anything else is answered 53300 */
    uint32_t backend_pid, backend_secret, client_secret;
    bool cancel_ready;                /* in relay: a cancel may name it (gw->lock) */
    struct gw_cancel *cancel;         /* a CancelRequest of this connection, on its way upstream */
    struct gw_charmap *charmap;       /* client_encoding's bytes as UTF-8 when it is converted; else NULL */
    char client_encoding[16];         /* its name then */
    bool encoding_unsettled;          /* a statement ran since the last ReadyForQuery: client_encoding may
                                         have changed, and its ParameterStatus not come yet */
    struct pgwire_auth auth;
    size_t startup_bytes;             /* upstream's messages between AuthenticationOk and ReadyForQuery */
    struct pgwire_scram_server client_scram;
    /* relay state */
    size_t c2u_remaining, u2c_remaining;
    bool c2u_discard;                 /* the streamed client message is being dropped */
    bool c2u_paused, u2c_paused;
    bool skip_to_sync;                /* an Execute was refused: drop until Sync */
    bool held, waiting_barrier;
    uint64_t hold_id;
    /* With a statement hook: the Parse, Bind, Describe and Close messages
     * before an Execute, kept back until its verdict, so that a held
     * statement has not begun upstream (no parse locks, no snapshot, no
     * error from its Bind) while it waits. Sent first by anything else. */
    struct evbuffer *staged;
    /* Refusals travel upstream as a marker statement that fails there (so the
     * transaction state is PostgreSQL's own); its error is rewritten on the way back. */
    unsigned refusals_outstanding;
    uint32_t refusal_seq;
    struct { uint32_t seq; char sqlstate[6]; char message[512]; } refusals[16];
    bool have_verdict;                /* a hold was resolved: use `verdict` once */
    enum gateway_verdict verdict;
    struct gateway_refusal verdict_refusal;
    struct evbuffer *client_inject;   /* messages for the client, written at a message boundary */
    struct gateway_row_filter filter;
    bool filter_active;
    struct gateway_copy_filter copy_filter;
    bool copy_filter_active;
    bool upstream_said_fatal;         /* upstream sent a FATAL/PANIC ErrorResponse */
    struct gw_tracking tracking;
    struct gw_inflight inflight;      /* for the statement_complete hook and the answer position */
    struct buf redacted;              /* the last ErrorResponse whose text error_redact hid */
    /* COPY FROM STDIN: upstream ignores a Sync in copy-in mode, or answers
     * it when the COPY failed first, so none reaches it then (see
     * copy_may_start) */
    size_t copy_items;                /* in-flight items with may_copy */
    uint64_t copy_ends;               /* the client's CopyDone and CopyFail forwarded */
    bool copy_in;                     /* upstream is in copy-in mode, the client has not ended it */
    bool copy_data_sent;              /* CopyData, CopyDone or CopyFail went since the last CopyInResponse */
    unsigned copy_syncs_dropped;      /* Syncs dropped in copy-in mode before any CopyData */
    bool flush_sent;                  /* a Flush went upstream for the message waiting at a barrier */
    uint64_t awaiting_ready;          /* Query/FunctionCall/Sync sent upstream, not yet answered by 'Z' */
    bool unsynced;                    /* an extended-protocol message went upstream after the last Sync */
    bool upstream_skipping;           /* an extended-protocol message failed: upstream skips to Sync */
    uint64_t decided_id;              /* the id of the last statement hook call */
    bool decided_may_copy;            /* that call's Execute: its portal's SQL may start COPY */
};

/* session.c */
void gw_session_accept(struct gw_worker *w, evutil_socket_t fd, const struct sockaddr *addr, int alen);
void gw_session_fail(struct gw_session *s, const char *sqlstate, const char *message);
/* The same with a DETAIL and a HINT for the client (either may be NULL). */
void gw_session_fail_detail(struct gw_session *s, const char *sqlstate, const char *message, const char *detail,
                            const char *hint);
void gw_session_free(struct gw_session *s);
void gw_session_upstream_ready(struct gw_session *s);
void gw_session_resume(struct gw_session *s, enum gateway_verdict v, const struct gateway_refusal *r);
void gw_session_shutdown(struct gw_session *s);

/* upstream.c */
int gw_upstream_start(struct gw_session *s, char *err, size_t errlen);
/* *out: a TLS context for upstream, or NULL when sslmode is disable. 0 or -1. */
int gw_upstream_tls_context(struct gateway *gw, SSL_CTX **out, char *err, size_t errlen);
/* Each step of a forwarded cancel (connect and send, then upstream's close)
 * may take this long. */
#define GW_CANCEL_TIMEOUT_S 10

/* Forward a cancel upstream on a new connection, from worker w's loop. The
 * returned cancel calls gw_session_cancel_done(requester) once upstream has
 * closed it (the cancel was delivered), failed or timed out; NULL when it
 * could not start. gw_cancel_detach forgets the requester (it went away
 * first); gw_cancels_free ends the worker's cancels still on their way (the
 * gateway stops). */
struct gw_cancel *gw_cancel_send(struct gw_worker *w, uint32_t pid, uint32_t secret, struct gw_session *requester);
void gw_cancel_detach(struct gw_cancel *cancel);
void gw_cancels_free(struct gw_worker *w);
void gw_session_cancel_done(struct gw_session *s);

/* params.c: with a policy, the startup packet's settings and upstream's
 * ParameterStatus must keep the server reading SQL as the policy does. Each
 * returns NULL when all is well, else msg filled with why not. */
const char *gw_startup_duplicate(const struct pgwire_startup *st, char *msg, size_t msglen); /* always */
/* NULL when the startup may go on; *search_path tells whether it sets one. */
const char *gw_startup_refusal(const struct pgwire_startup *st, bool *search_path, char *msg, size_t msglen);
const char *gw_parameter_status_refusal(const uint8_t *body, size_t len, char *msg, size_t msglen);

/* params.c: the session's client_encoding, from upstream's ParameterStatus,
 * so that the statement hook reads a statement's text as UTF-8 whatever
 * single-byte encoding the client writes in (gw_text_utf8). */
void gw_note_parameter_status(struct gw_session *s, const uint8_t *body, size_t len);
/* The text as UTF-8: text itself when the client writes UTF-8 (or in an
 * encoding not converted), or it is ASCII, longer than GW_CONVERT_MAX, holds
 * a byte with no character, or the encoding may be changing (a statement
 * ran since the last ReadyForQuery, so upstream may read the text in another
 * encoding than the one last reported: as before any conversion, the text is
 * then read as the bytes it is, and refused unless they are UTF-8); else a
 * copy in *copy (the caller frees it). */
#define GW_CONVERT_MAX (1u << 20)
const char *gw_text_utf8(struct gw_session *s, const char *text, char **copy);
void gw_encoding_free(struct gw_session *s);

/* tracking.c */
void gw_tracking_free(struct gw_tracking *t);
/* Whether need more bytes fit what the session may hold (names, SQL text
 * and Bind bodies of its statements and portals, pending too) under max_held. */
bool gw_tracking_room(const struct gw_tracking *t, size_t need, size_t max_held);
/* gw_tracking_client's answer for a Parse or Bind past t->max_held (a Bind
 * counts the SQL and types its portal copies from its statement): nothing
 * was recorded. */
#define GW_TRACKING_FULL 2
/* Client sent a message (body); record what tracking needs. Returns 0, -1
 * on a malformed body, 1 when a Bind must wait for an earlier segment's
 * ReadyForQuery, or GW_TRACKING_FULL. */
int gw_tracking_client(struct gw_tracking *t, char type, const uint8_t *body, size_t len);
/* The gateway sent its own Describe of a portal (to learn an Execute's columns). */
int gw_tracking_injected_describe(struct gw_tracking *t);
/* Upstream sent a message of this type. For a RowDescription or NoData,
 * returns 1 when it answers a Describe the gateway added (so it is not the
 * client's to see), else 0. */
int gw_tracking_upstream(struct gw_tracking *t, char type);
/* Upstream's ParameterDescription (the answer to a Describe of a statement):
 * the statement's parameter types as the server resolved them, for the ones
 * its Parse left unspecified (asyncpg's, say). */
void gw_tracking_param_description(struct gw_tracking *t, const uint8_t *body, size_t len);
/* Upstream's ReadyForQuery said the session is idle (no transaction block):
 * PostgreSQL has dropped every portal, so tracking does too. */
void gw_tracking_idle(struct gw_tracking *t);
/* A statement the client sent may define or drop names behind the
 * protocol's back (SQL PREPARE, DEALLOCATE, DECLARE, CLOSE, DISCARD, the end
 * of a transaction): those names, committed or pending, become unknown. */
void gw_tracking_forget(struct gw_tracking *t, const struct gateway_forget *f);
/* The SQL, Bind body and types behind a portal for an Execute. Returns 1 when
 * found (sql NULL when its statement is unknown), 0 when the portal is unknown, -1
 * when the answer waits on an earlier pipeline segment: a pending Bind, or a
 * portal bound in a segment whose ReadyForQuery has not come (the end of an
 * implicit transaction drops it). */
struct gw_portal_info {
    const char *sql;          /* NULL when its statement is unknown */
    const uint8_t *bind;
    size_t bind_len;
    const uint32_t *types;    /* the parameter types its Parse gave (ntypes of them) */
    int ntypes;
};
int gw_tracking_portal(struct gw_tracking *t, const char *portal, struct gw_portal_info *out);

#endif
