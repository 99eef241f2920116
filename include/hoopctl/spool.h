/* spool.h — the gateway's durable local audit spool (SQLite, WAL). Events are
 * appended as JSON with a caller-chosen id, made durable in group commits
 * before their statement is forwarded, and removed once the server has them. */
#ifndef HOOPCTL_SPOOL_H
#define HOOPCTL_SPOOL_H

#include <stddef.h>
#include <stdint.h>

enum spool_durability {
    SPOOL_SURVIVE_PROCESS_CRASH = 0, /* WAL, synchronous=NORMAL: survives kill -9 */
    SPOOL_SURVIVE_POWER_LOSS = 1,    /* WAL, synchronous=FULL: fsync every commit */
};

struct spool;

/* Open (creating if needed) the spool at path. Two handles on one path are
 * fine: the gateway appends through one, the shipper reads through another. */
struct spool *spool_open(const char *path, enum spool_durability durability, char *err,
                         size_t errlen);
void spool_close(struct spool *s);

/* Queue one event into the open group (a transaction). Ids are the
 * caller's to keep unique (the spool does not check them; the server ignores
 * an id it has). Nothing is durable until spool_commit returns 0. */
int spool_append(struct spool *s, const char *event_id, const char *session_id,
                 const char *json, size_t len, char *err, size_t errlen);
/* Commit the open group: every event appended since the last commit becomes
 * durable at once. Returns 0 (also when nothing was pending) or -1, and then
 * the group is rolled back (its events are not in the spool). */
int spool_commit(struct spool *s, char *err, size_t errlen);
/* Events appended since the last commit. */
int spool_uncommitted(const struct spool *s);

/* Groups are numbered; an append joins the open group, spool_group(). A
 * group ends at spool_commit (durable, or lost when the commit fails), or
 * lost at once when an append error rolled the transaction back. Whoever
 * waits for an event to be durable remembers its group and asks its state
 * after a commit, since a commit made by anyone ends the group. */
enum spool_group_state { SPOOL_GROUP_OPEN, SPOOL_GROUP_DURABLE, SPOOL_GROUP_LOST };
uint64_t spool_group(const struct spool *s);
/* The state of group; for a lost one, *why says why (the spool's message).
 * A group ended more than 64 groups ago counts as lost. */
enum spool_group_state spool_group_state(const struct spool *s, uint64_t group, const char **why);

/* One spooled event, in order of appending. */
struct spool_event {
    int64_t seq;
    char id[64];
    char session_id[64];
    char *json;   /* owned by the batch */
};
struct spool_batch {
    int n;
    struct spool_event *events;
};
/* Read up to max committed events not yet acknowledged, oldest first. */
int spool_fetch(struct spool *s, int max, struct spool_batch *out, char *err, size_t errlen);
void spool_batch_free(struct spool_batch *b);
/* The server has the first n events of batch b: forget exactly those (by
 * seq and id: a seq may be reused once the queue was empty, and another
 * process's shipper may have emptied it). Not inside an open group. */
int spool_ack(struct spool *s, const struct spool_batch *b, int n, char *err, size_t errlen);
/* Committed events waiting to be shipped, or -1 on error. */
int64_t spool_pending(struct spool *s);
/* The server refuses event seq for good: move it out of the queue into the
 * quarantine (kept in the spool file, with the reason and time), so the
 * events after it go on. Not inside an open group. */
int spool_quarantine(struct spool *s, int64_t seq, const char *reason, int64_t now_ms, char *err,
                     size_t errlen);
/* Events in the quarantine, or -1 on error. */
int64_t spool_quarantined(struct spool *s);
/* This handle's commits no longer copy the log into the database (the
 * checkpoint, with its fsync): the appender on a latency-critical thread
 * leaves that to another handle's spool_checkpoint. */
int spool_defer_checkpoints(struct spool *s, char *err, size_t errlen);
/* Copy what the log holds into the database, as far as readers allow
 * (never waits for them). 0, or -1 with a message. */
int spool_checkpoint(struct spool *s, char *err, size_t errlen);

/* Who the spool's events are for, as the connect that made it recorded
 * (key "server": its server URL, "subject", "connection"). */
int spool_set_meta(struct spool *s, const char *key, const char *value, char *err, size_t errlen);
struct spool_meta {
    char server[256], subject[128], connection[64]; /* "" when not recorded */
};
/* The events waiting in the spool at path, and its meta, without creating
 * or changing the file. 0, or -1 with a message (no such file, not a
 * spool). */
int spool_peek(const char *path, int64_t *pending, struct spool_meta *meta, char *err, size_t errlen);

#endif
