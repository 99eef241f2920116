/* audit.h — the audit trail's tamper evidence: every stored event carries the
 * SHA-256 of its predecessor, and its own hash covers its position, content and
 * that predecessor hash. */
#ifndef HOOPCTL_AUDIT_H
#define HOOPCTL_AUDIT_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

/* The predecessor of the first event: 64 zeros. */
#define AUDIT_GENESIS_HASH "0000000000000000000000000000000000000000000000000000000000000000"

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

/* Check an exported trail (JSON lines of `hoopctl audit export`) on its own:
 * *report = {"ok", "checked", "first", "last", "first_prev_hash",
 * "last_hash", "problems": [{"n", "id", "problem"}...]}; ok needs at least
 * one event. Returns 0, or -1 with err when the file cannot be read. */
int audit_verify_jsonl(FILE *in, json_t **report, char *err, size_t errlen);

#endif
