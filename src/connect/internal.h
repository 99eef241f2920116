/* internal.h — state shared by the files of src/connect: the running connect
 * context, its client sessions and its review holds. */
#ifndef HOOPCTL_CONNECT_INTERNAL_H
#define HOOPCTL_CONNECT_INTERNAL_H

#include "hoopctl/api.h"
#include "hoopctl/connect.h"
#include "hoopctl/gateway.h"
#include "hoopctl/policy.h"
#include "hoopctl/util.h"
#include "hoopctl/policy_guard.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

struct event;
struct evconnlistener;
struct spool;
struct shipper;

#define CN_INFLIGHT_MAX 64

/* One client session of the gateway, with its audit and policy state. */
struct cn_session {
    uint64_t gw_id;
    char id[37];                  /* the audit session id (a UUID) */
    int64_t seq;                  /* last event seq of this session */
    uint64_t statements;
    /* The session's policy: its statements judged, its results masked. */
    struct policy_guard guard;
    /* The result set being recorded for replay (NULL columns: none). */
    int64_t statement_seq;        /* seq of the last statement event */
    json_t *rec_columns, *rec_rows, *rec_row;
    json_t *notices;          /* "NOTICE:  text" lines since the last completion, or NULL */
    json_t *rec_types;          /* the columns' type OIDs (replay aligns numbers as psql does) */
    int16_t *rec_formats;
    size_t rec_bytes;
    bool rec_truncated;
    /* Statements forwarded and not yet finished, oldest first: the gateway's
     * statement id and the seq of the statement's event. */
    struct { uint64_t id; int64_t seq; } inflight[CN_INFLIGHT_MAX];
    size_t ninflight;
    struct connect *c;
    struct cn_session *next;
};

/* A statement held for review: a thread long-polls the server until the
 * review is decided, then the loop resolves the gateway's hold. */
struct cn_hold {
    struct connect *c;
    uint64_t hold_id, gw_session_id;
    char review_id[64];
    char hash[65];
    json_t *event_data;           /* the statement event, completed on resolution */
    int64_t deadline_ms;
    int wait_seconds;             /* until deadline_ms: ours, or the server's ttl if shorter */
    pthread_t thread;
    bool thread_started;
    /* under c->lock */
    bool abandoned, finished, approved;
    char reason[400];
    char status[32], decided_by[128], review_reason[256]; /* the review as decided */
    struct cn_hold *next;
};

struct connect {
    struct event_base *base;
    struct identity_session *identity;
    struct gateway *gw;
    struct policy *policy;
    char policy_digest[65];       /* of the policy document it was loaded from (policy_doc_digest) */
    const char *const *groups;    /* NULL-terminated, for the policy engine */
    char **group_store;
    char connection[128], database[128], db_user[128], host[256];
    char system_roots[1024];     /* the system trust store's file when verify-* has no sslrootcert */
    char listen_host[64];
    char client_user[64];         /* "" or the only startup user served (connect_options) */
    bool read_only;               /* deny what is not a plain read (connect_options) */
    int listen_port;
    char socket_dir[108]; /* --socket-dir, "" without one */
    char catalog_conninfo[2048 + 2 * UTIL_SECRET_MAX]; /* holds the upstream password: wiped on free */
    char reviewers_hint[256];
    int review_wait_seconds;
    struct spool *spool;
    char *dump;           /* an event's JSON text, reused (grown as needed) */
    size_t dump_cap;
    struct shipper *shipper;
    struct event *refresh_timer, *wake_event, *kick_timer;
    /* Group commit: statements appended to the spool wait (held silently)
     * for one commit after the loop's next poll. */
    struct event *commit_event;
    struct cn_commit_hold {
        uint64_t id;    /* the gateway's hold id of the statement */
        uint64_t group; /* the spool group its event joined */
    } *commit_holds;
    size_t ncommit_holds, commit_holds_cap;
    bool commit_scheduled;
    int wake_pipe[2];
    struct cn_session *sessions;
    struct cn_hold *holds;
    struct connect_stats stats;
    /* The login's refresh runs on a thread of its own, as it may wait out a
     * hung identity provider; while it runs, identity is that thread's. The
     * loop joins it when it reports (wake_pipe) and copies the new access
     * token into api.token. One at a time; the timer is re-armed on reaping. */
    pthread_t refresher;
    bool refreshing;              /* loop thread: started, not yet joined */
    atomic_bool refresh_abort;    /* stop: abandon the refresh's transfers */
    bool refresh_done;            /* under lock: the thread's outcome follows */
    int refresh_next;             /* seconds to the next refresh, or -1 (refresh_err) */
    char refresh_err[512];
    struct api_client api;        /* for calls from the loop thread; token under lock */
    pthread_mutex_t lock;         /* api.token, holds' result fields, stopping */
    /* Withdrawals of abandoned holds still under way (under lock), and their
     * end signalled: a session's end waits briefly for them, so its held
     * statement's event reaches the server after the review is withdrawn. */
    int withdrawals;
    pthread_cond_t withdrawn;
    bool stopping;
};

/* Copy the current access token (any thread). */
void cn_token_copy(struct connect *c, char *out, size_t len);
/* Append one event to the spool and commit it (durable before returning 0);
 * steals data. */
int cn_emit(struct connect *c, struct cn_session *s, const char *type, json_t *data, char *err,
            size_t errlen);
struct cn_session *cn_session_find(struct connect *c, uint64_t gw_id);
/* The statement (gateway id) whose event is seq went upstream. */
void cn_inflight_add(struct cn_session *s, uint64_t statement_id, int64_t seq);
/* Audit a refused statement (its event data gets error and SQLSTATE 42501;
 * steals data) and count the denial. 0, or -1 when the spool failed (logged). */
int cn_audit_refusal(struct connect *c, struct cn_session *s, json_t *data, const char *error);

/* review.c */
/* Ask the server for a review of sql (with params, its bound values as
 * the reviewers read them, or NULL) and start waiting for it. Fills the
 * refusal's hold_notice. Returns 0, or -1 with err (refuse the statement). */
int cn_review_start(struct connect *c, struct cn_session *s, const char *sql, json_t *params, uint64_t hold_id,
                    const struct policy_decision *d, json_t *event_data, struct gateway_refusal *ref,
                    char *err, size_t errlen);
void cn_review_abandon(struct connect *c, uint64_t hold_id);
/* With c->lock held: wait up to max_ms for the withdrawals under way. */
void cn_review_wait_withdrawals(struct connect *c, int max_ms);
/* Loop side: resolve every hold whose thread finished. */
void cn_review_reap(struct connect *c);
/* Stop and join every waiter thread. */
void cn_review_stop_all(struct connect *c);
uint64_t cn_review_pending(struct connect *c);

#endif
