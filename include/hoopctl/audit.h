/* audit.h — the audit trail's tamper evidence: every stored event carries the
 * SHA-256 of its predecessor, and its own hash covers its position, content and
 * that predecessor hash. */
#ifndef HOOPCTL_AUDIT_H
#define HOOPCTL_AUDIT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* The predecessor of the first event: 64 zeros. */
#define AUDIT_GENESIS_HASH "0000000000000000000000000000000000000000000000000000000000000000"

/* The event the server appends to the chain each time retention moves the
 * checkpoint: data {"checkpoint_n", "checkpoint_hash", "cutoff",
 * "deleted_events"}, in a session of its own that no gateway can name (':'
 * is not allowed in the ids they send), by the subject "hoopctl-server".
 * Gateways cannot send this type. A checkpoint that the last such event does
 * not name was moved by hand. */
#define AUDIT_RETENTION_TYPE "retention"
#define AUDIT_SERVER_SESSION ":server"
#define AUDIT_SERVER_SUBJECT "hoopctl-server"

/* The fields an event's hash covers. */
struct audit_record {
    int64_t n;                 /* position in the chain, 1-based */
    const char *id, *session_id, *type, *subject, *data;
    int64_t seq, ts;
    const char *prev_hash;     /* 64 hex */
    /* When the server stored it (ms since the epoch, the server's clock), or
     * 0 for events stored before the server recorded it: those keep the
     * first hash ("hoopctl-audit-v1"), the others hash it too (v2). */
    int64_t received_at;
};

/* hex SHA-256 over the record, each field length-prefixed so that no two
 * different records hash alike by moving bytes between fields. */
void audit_chain_hash(const struct audit_record *r, char out[65]);

/* A walk along the chain, one event at a time in the order of position: the
 * checks that both `hoopctl audit verify` (the store) and `audit verify
 * --file` (an export) make. Each event must come right after the one before
 * it, link to its hash, and match its own hash; what is wrong goes into
 * problems as {"n", "id", "problem"}, at most AUDIT_WALK_MAX_PROBLEMS. */
#define AUDIT_WALK_MAX_PROBLEMS 100

struct audit_walk {
    int64_t checked;           /* events walked */
    int64_t first, last;       /* positions of the first and the last one */
    char first_prev[65];       /* what the first one links to */
    char last_hash[65];        /* the last one's hash (the anchor's before any) */
    const char *gap;           /* how missing positions are named, e.g. "are missing (deleted)" */
    bool anchored;
    json_t *problems;
};

/* Start a walk. With anchor_hash, the first event must be anchor_n + 1 and
 * link to anchor_hash (the store: the genesis or the retention checkpoint);
 * with NULL, the walk starts wherever the first event is (an export, which
 * may begin anywhere). The problems array is the caller's to keep or free. */
void audit_walk_init(struct audit_walk *w, int64_t anchor_n, const char *anchor_hash, const char *gap);
/* The next event: its recorded fields and its recorded hash (NULL when absent). */
void audit_walk_event(struct audit_walk *w, const struct audit_record *r, const char *hash);
/* A problem found outside the walk (the head, the checkpoint, a bad line). */
void audit_walk_problem(struct audit_walk *w, int64_t n, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Check an exported trail (JSON lines of `hoopctl audit export`) on its own:
 * *report = {"ok", "checked", "first", "last", "first_prev_hash",
 * "last_hash", "from_start", "problems": [{"n", "id", "problem"}...]}; ok
 * needs at least one event; from_start says the first event is event 1,
 * linked to the genesis (otherwise the events before "first" are not in the
 * file). Lines are parsed with duplicate keys refused; a key an export does
 * not write, and a line longer than AUDIT_MAX_LINE (read past, never held
 * whole), are problems. Returns 0, or -1 with err when the file cannot be
 * read. */
#define AUDIT_MAX_LINE (64 * 1024 * 1024)
int audit_verify_jsonl(FILE *in, json_t **report, char *err, size_t errlen);

#endif
