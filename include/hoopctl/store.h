/* store.h — the server's durable state behind one interface: connections,
 * API keys, sessions, hash-chained audit events and reviews. Backed by SQLite
 * (default, WAL) or PostgreSQL (libpq); versioned migrations run at open. */
#ifndef HOOPCTL_STORE_H
#define HOOPCTL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

enum store_status {
    STORE_OK = 0,
    STORE_NOT_FOUND = 1,   /* no such row */
    STORE_CONFLICT = 2,    /* unique name taken, or the row is not in the state asked for */
    STORE_FORBIDDEN = 3,   /* e.g. a session owned by someone else */
    STORE_BUSY = 4,        /* a lock held elsewhere did not come free in time: try again */
    STORE_ERROR = -1,      /* the database failed; err says how */
};

struct store;

/* url: "sqlite:PATH" or "postgres://..." / "postgresql://..."; anything
 * else is refused (a misspelt scheme must not become a file name). The
 * SQLite file is created, and the schema migrated, as needed. */
struct store *store_open(const char *url, char *err, size_t errlen);
/* 0 when url has one of the forms above, else -1 with err naming them (and
 * the scheme given, never the rest of the URL). */
/* The store URL to show a person: a PostgreSQL URL without its password
 * (user:***@) and without its query (which may hold one). */
void store_url_display(const char *url, char *out, size_t outlen);
int store_url_check(const char *url, char *err, size_t errlen);
/* A store as it is, to read (audit verify): nothing is created or migrated,
 * SQLite is opened read only and PostgreSQL in read-only transactions.
 * NULL when it cannot be used; *status is STORE_NOT_FOUND when the file is
 * missing or holds no hoopctl schema, else STORE_ERROR. */
struct store *store_open_existing(const char *url, int *status, char *err, size_t errlen);
void store_close(struct store *s);
const char *store_kind(const struct store *s);       /* "sqlite" or "postgres" */
int store_schema_version(struct store *s);

/* Cross-process change notices (PostgreSQL LISTEN/NOTIFY on channel
 * "hoopctl_reviews"). store_listen_fd returns a socket to watch, or -1 when
 * the store has no such channel (SQLite). store_listen_drain consumes what
 * arrived and returns how many notices, or -1 when the listening connection
 * is lost; store_listen_reset drops it so that store_listen_fd reconnects. */
int store_listen_fd(struct store *s, char *err, size_t errlen);
int store_listen_drain(struct store *s);
void store_listen_reset(struct store *s);

/* Connections. A connection is a JSON object: name, host, port, database,
 * user, sslmode, allowed_groups[], reviewer_groups[], policy{}, and
 * secret_enc (sealed secret, never handed out by the API) when set.
 * store_connection_put inserts or replaces; without secret_enc the old
 * sealed secret is kept. */
int store_connection_put(struct store *s, json_t *conn, char *err, size_t errlen);
int store_connection_get(struct store *s, const char *name, json_t **out, char *err, size_t errlen);
int store_connection_list(struct store *s, json_t **out, char *err, size_t errlen);
int store_connection_delete(struct store *s, const char *name, char *err, size_t errlen);
int store_connection_set_policy(struct store *s, const char *name, json_t *policy, char *err,
                                size_t errlen);

/* API keys: only the SHA-256 of the token is kept. A key object is
 * {id, name, groups[], created_by, created_at, revoked}. */
int store_apikey_create(struct store *s, const char *id, const char *name, const char *token_hash,
                        json_t *groups, const char *created_by, char *err, size_t errlen);
int store_apikey_lookup(struct store *s, const char *token_hash, json_t **out, char *err, size_t errlen);
int store_apikey_list(struct store *s, json_t **out, char *err, size_t errlen);
int store_apikey_revoke(struct store *s, const char *id, char *err, size_t errlen);

/* Who sent a batch: every event and new session is attributed to it. */
struct store_actor {
    const char *issuer, *subject, *name;
    const char *groups_json;     /* JSON array text */
};

/* One audit event, already validated by the caller. */
struct store_event {
    const char *id;              /* sender-chosen, unique: a repeat is ignored */
    const char *session_id;
    int64_t seq;                 /* the sender's order within the session */
    const char *type;            /* session_start, session_end, statement, result */
    int64_t ts;                  /* ms since the epoch */
    const char *data;            /* JSON object text, stored as sent */
    /* Session attributes the event carries (NULL when absent). */
    const char *connection, *client_addr, *application, *gateway_host;
    bool denial, review;         /* a denied statement / one that went to review */
    const char *review_id;       /* the review the server joined to this statement, or NULL */
    bool review_claimed;         /* ...claimed for it by this request (given back if not stored) */
    int64_t sample_rows;         /* result rows in data (type "result") */
    /* What to store instead once the session's sample budget is spent:
     * capped(capped_arg), called only then; a malloc'd JSON text the store
     * frees. NULL (either): {"truncated":true}. */
    char *(*capped)(void *arg);
    void *capped_arg;
};

struct store_ingest_result {
    size_t accepted, duplicates;
};

/* Append a batch in one committed transaction: each new event joins the hash
 * chain. sample_cap: result rows kept per session. STORE_FORBIDDEN when a
 * session belongs to another subject (nothing is written then). */
int store_events_append(struct store *s, const struct store_actor *actor,
                        const struct store_event *ev, size_t n, int64_t sample_cap,
                        struct store_ingest_result *res, char *err, size_t errlen);

struct store_session_filter {
    const char *issuer, *subject;  /* restrict to this owner (NULL: all) */
    const char *user, *connection; /* filters from the query */
    int64_t since, until;          /* started_at range in ms; 0: open */
    int has_denials, has_reviews;  /* -1 any, 0 no, 1 yes */
    int limit;
    const char *cursor;            /* "started_at:id" of the last row seen, or NULL */
};
/* *out = {"sessions": [...], "next": cursor or null} */
int store_sessions_list(struct store *s, const struct store_session_filter *f, json_t **out,
                        char *err, size_t errlen);
int store_session_get(struct store *s, const char *id, json_t **out, char *err, size_t errlen);
/* A page of events holds at most limit events and stops early once their
 * data passes STORE_PAGE_BYTES (a page always has at least one event), so
 * that reading a session of huge events costs a bounded amount of memory;
 * readers page on after a short page. */
#define STORE_PAGE_BYTES (4 * 1024 * 1024)
/* Events of one session in order (seq, then arrival), offset/limit paged. */
int store_session_events(struct store *s, const char *id, int64_t offset, int limit, json_t **out,
                         char *err, size_t errlen);

/* Events by arrival (chain position n > after_n) within [since, until) ms,
 * at most limit; for streaming exports page by page. */
int store_events_page(struct store *s, int64_t after_n, int64_t since, int64_t until, int limit,
                      json_t **out, char *err, size_t errlen);

/* Walk the whole chain from the last checkpoint. *report = {"ok": bool,
 * "checked": n, "problems": [{"n":..,"id":..,"problem":".."}...]}. */
int store_audit_verify(struct store *s, json_t **report, char *err, size_t errlen);

/* Retention: drop events older than cutoff_ms (a prefix of the chain), the
 * sessions left without events and the reviews whose life ended before the
 * cutoff, recording a checkpoint. With webhook_key (the configured endpoint's
 * cursor key), no event the webhook has not pushed yet is dropped: *held
 * counts the old events kept for it. */
struct store_retention_report {
    int64_t events;  /* events deleted */
    int64_t reviews; /* reviews deleted */
    int64_t held;    /* old events kept until the webhook has pushed them */
};
int store_retention(struct store *s, int64_t cutoff_ms, const char *webhook_key,
                    struct store_retention_report *out, char *err, size_t errlen);

/* Reviews. A review object: id, connection, session_id, statement,
 * statement_hash, requester, requester_name, status (pending, approved,
 * denied, expired, consumed), reason, decided_by, created_at, decided_at,
 * expires_at, consumed_at, rule, params (the bound values: an array of
 * strings and nulls, or null). */
int store_review_create(struct store *s, json_t *review, char *err, size_t errlen);
/* store_review_create, only if the requester (requester_issuer, requester)
 * has fewer than max_pending reviews that count against the cap
 * (store_review_pending_of, at created_at), checked and inserted atomically
 * across servers sharing the store. *pending: that count. Returns
 * STORE_FORBIDDEN, storing nothing, when the cap is reached. */
int store_review_create_capped(struct store *s, json_t *review, int64_t max_pending, int64_t *pending, char *err,
                               size_t errlen);
int store_review_get(struct store *s, const char *id, json_t **out, char *err, size_t errlen);
/* How many reviews count against a requester's pending cap: unexpired pending
 * ones, and undecided ones created within the last hour. */
int store_review_pending_of(struct store *s, const char *issuer, const char *subject, int64_t now,
                            int64_t *count, char *err, size_t errlen);
/* Which reviews a list may hold: scope NULL or all for every review; else
 * those of requester (issuer, subject; NULL for none) and those on the
 * connections named. */
struct store_review_scope {
    bool all;
    const char *issuer, *subject;
    const char *const *connections;
    size_t nconnections;
};
/* Paging of a review list: at most limit (1..1000; 0: 1000) after cursor
 * ("created_at:id" of the last review seen), oldest or newest first; next is
 * set to the cursor of the following page, or JSON null after the last. */
struct store_review_page {
    bool newest_first;
    int limit;
    const char *cursor;
    json_t *next; /* out, the caller's */
};
/* Reviews with a status (NULL: any) created after created_after ms, within
 * scope; page NULL: the oldest 1000. */
int store_review_list(struct store *s, const char *status, int64_t created_after,
                      const struct store_review_scope *scope, struct store_review_page *page, json_t **out,
                      char *err, size_t errlen);
/* pending -> approved|denied; STORE_CONFLICT when no longer pending. */
int store_review_decide(struct store *s, const char *id, const char *status, const char *reason,
                        const char *decided_by, int64_t now_ms, char *err, size_t errlen);
/* approved -> consumed by its requester for that statement hash, once. */
int store_review_consume(struct store *s, const char *id, const char *requester,
                         const char *statement_hash, int64_t now_ms, char *err, size_t errlen);
/* Join review id to statement event event_id: the first event to claim it
 * keeps it (a resend of that event claims it again). 0 with *fresh when
 * this call made the claim, or STORE_CONFLICT when another event has it. */
int store_review_claim(struct store *s, const char *id, const char *event_id, bool *fresh, char *err,
                       size_t errlen);
/* Give back a fresh claim whose event was not stored after all. */
int store_review_unclaim(struct store *s, const char *id, const char *event_id, char *err, size_t errlen);
/* pending past expires_at -> expired; returns how many (or -1). */
int store_review_expire(struct store *s, int64_t now_ms, char *err, size_t errlen);
int64_t store_review_count(struct store *s, const char *status);

/* The webhook's cursor for an endpoint (key: a hash of its URL), held by one
 * server instance at a time under a lease. claim takes the lease for owner
 * (or renews it) until now + lease_ms and sets *last_n, the last event
 * pushed (a new endpoint starts at the chain's head); STORE_CONFLICT while
 * another owner's lease runs. advance records the last event pushed and
 * renews; STORE_CONFLICT when the lease was lost (stop pushing). */
int store_webhook_claim(struct store *s, const char *key, const char *owner, int64_t now_ms, int64_t lease_ms,
                        int64_t *last_n, char *err, size_t errlen);
int store_webhook_advance(struct store *s, const char *key, const char *owner, int64_t last_n, int64_t now_ms,
                          int64_t lease_ms, char *err, size_t errlen);

#endif
