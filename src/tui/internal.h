/* internal.h — what the TUI's screen code and its network workers share: the
 * model (lists, the open session, status), guarded by one mutex, requests
 * from the screen, and a pipe that wakes the screen when something changed. */
#ifndef HOOPCTL_TUI_INTERNAL_H
#define HOOPCTL_TUI_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "hoopctl/tui.h"

#define TUI_REFRESH_MS 5000      /* the sessions list is refreshed this often */
#define TUI_LONG_POLL_MS 5000    /* how long one review long-poll may hold */
#define TUI_RETRY_MIN_MS 500
#define TUI_RETRY_MAX_MS 15000
#define TUI_RULE_CACHE 128        /* reviews whose asking rule was looked up */
#define TUI_SESSIONS_MAX 50000    /* sessions kept in memory, pages loaded by scrolling included */

struct tui_model {
    pthread_mutex_t mu;
    pthread_cond_t cond;         /* wakes the request worker */
    int wake_fd[2];              /* written by workers, read by the screen */
    bool stop;
    struct tui_source *src;

    /* requests from the screen (cleared by the worker when taken) */
    bool want_sessions;
    char want_session[80];
    bool want_session_replay;    /* replay it when it arrives */
    bool want_history;
    bool want_decide;
    char decide_id[80];
    bool decide_approve;
    char decide_reason[512];

    bool want_more_sessions;     /* load the next page (the user scrolled near the end) */
    char shown_id[80];           /* the first session on screen ("" none): its page is refreshed too */

    /* results */
    struct tui_session_row *rows;
    int nrows;
    bool rows_loaded;
    char rows_next[TUI_CURSOR_MAX]; /* the next page's cursor; "" when all are loaded */
    bool rows_more_loading;
    struct replay_session session; /* the open session */
    bool session_loaded;
    bool session_replay_ready;   /* the screen should replay `session` */
    struct tui_review *pending;
    int npending;
    bool pending_loaded;
    struct tui_review *history;
    int nhistory;
    uint64_t generation;         /* bumped on every change */

    /* The rule that asked for each review, found in its session's events
     * (the review itself does not carry it); a ring, "" when not found. */
    struct {
        char id[80];
        char rule[128];
    } rules[TUI_RULE_CACHE];
    int nrules_seen;
    bool want_rules;

    /* the status bar: the latest message, and whether it is an error */
    char status[600];
    bool status_error;

    pthread_t request_thread, review_thread;
    bool threads_started;
};

/* Start the two workers (requests; the review long-poll). 0 or -1. */
int tui_model_start(struct tui_model *m, struct tui_source *src, char *err, size_t errlen);
/* Stop and join them, free everything. */
void tui_model_stop(struct tui_model *m);
/* Ask the request worker to look (after setting a want_* under the lock). */
void tui_model_kick(struct tui_model *m);
/* Set the status bar (caller holds the lock). */
void tui_model_status(struct tui_model *m, bool error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
