/* tui.h — the terminal UI (`hoopctl tui`): where its sessions and reviews come
 * from (a data-source interface the screens do not look behind), the list
 * logic the screens use (filters, column layout, SQL pretty-printing), and the
 * entry point that runs the ncurses program. */
#ifndef HOOPCTL_TUI_H
#define HOOPCTL_TUI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "hoopctl/replay.h"
#include "hoopctl/util.h"

/* ---- What a source answers with ----------------------------------------- */

enum tui_status {
    TUI_OK = 0,
    TUI_ERR_FAILED = -1,       /* anything else; err says what */
    TUI_ERR_UNAVAILABLE = -2,  /* could not reach the source: retried */
    TUI_ERR_AUTH = -3,         /* 401: not logged in, token refused */
    TUI_ERR_FORBIDDEN = -4,    /* 403: not allowed to see or decide this */
    TUI_ERR_NOT_FOUND = -5,
    TUI_ERR_CONFLICT = -6,     /* e.g. the review was decided already */
    TUI_ERR_READ_ONLY = -7,    /* the source cannot decide reviews */
    TUI_ERR_INVALID = -8,      /* the source sent something malformed */
};

/* One row of the sessions list. */
struct tui_session_row {
    char id[80];
    char user[128];
    char connection[128];
    char state[16];
    int64_t started_ms, ended_ms; /* ended_ms 0 while active */
    int events;                /* audit events recorded */
    /* counts; -1 when the source only knows "some" (denials, reviews) or
     * does not know (statements) until the session is opened */
    int statements, denials, reviews;
};

struct tui_review {
    char id[80];
    char requester[128];
    char connection[128];
    char session_id[80];
    char status[16];           /* pending, approved, denied, expired, consumed */
    char rule[128];
    char decided_by[128];
    char reason[512];
    int64_t created_ms, decided_ms;
    char *statement;           /* owned */
    char *params;              /* owned: the bound values as lines "  $1 = '...'", "" for none */
};
/* Fill r from a review object (the server's shape); 0, or -1 when it has no
 * id or memory ran out (r is then empty). */
int tui_review_from_json(const json_t *o, struct tui_review *r);
void tui_review_clear(struct tui_review *r);
void tui_reviews_free(struct tui_review *r, int n);

/* A source of sessions and reviews. Every call may block (network); the UI
 * calls them from its worker thread only. */
#define TUI_CURSOR_MAX 256
struct tui_source_ops {
    /* One page of sessions, newest first: cursor "" asks for the first page;
     * next gets the cursor of the following page, "" after the last one. */
    int (*sessions)(void *self, const char *cursor, struct tui_session_row **rows, int *n,
                    char next[TUI_CURSOR_MAX], char *err, size_t errlen);
    /* The cursor of the page that begins right after row (for refreshing a
     * page loaded by scrolling); NULL when the source has one page only. */
    void (*cursor_after)(void *self, const struct tui_session_row *row, char out[TUI_CURSOR_MAX]);
    int (*session)(void *self, const char *id, struct replay_session *out, char *err,
                   size_t errlen);
    /* Reviews with status "pending" (those this user may decide) or
     * "decided". For pending with wait_ms > 0: first hold until a review newer
     * than *cursor arrives or the time is up (long-poll); *cursor advances. */
    int (*reviews)(void *self, const char *status, int64_t *cursor, int wait_ms,
                   struct tui_review **out, int *n, char *err, size_t errlen);
    int (*decide)(void *self, const char *id, bool approve, const char *reason, char *err,
                  size_t errlen);
    void (*close)(void *self);
};
struct tui_source {
    const struct tui_source_ops *ops;
    void *self;
    char description[1024];    /* shown in the status bar */
};

/* The server's API (api.h): server_url or NULL for the configured one, the
 * bearer token from HOOPCTL_TOKEN or the configured token file. Asks the
 * server who we are first, so a bad token or URL fails here. */
int tui_source_open_api(struct tui_source *src, const char *server_url, char *err, size_t errlen);
/* A directory of exported session documents (*.json, as replay.h describes)
 * and an optional reviews.json ({"reviews": [...]}): browsing offline. It is
 * read-only: deciding a review answers TUI_ERR_READ_ONLY. */
int tui_source_open_dir(struct tui_source *src, const char *dir, char *err, size_t errlen);
/* One session document file (for `hoopctl replay FILE`). */
int tui_source_read_session_file(const char *path, struct replay_session *out, char *err,
                                 size_t errlen);
void tui_source_close(struct tui_source *src);
/* A short word for a status ("forbidden (403)", ...). */
const char *tui_status_name(int status);
/* hoopctl's exit code for a status: 3 not authenticated, 4 forbidden,
 * 5 unreachable, 1 anything else. */
int tui_status_exit_code(int status);

/* ---- Sessions list: filtering and searching ----------------------------- */

struct tui_filter {
    char user[128];            /* substring, case-insensitive; "" any */
    char connection[128];
    int64_t since_ms, until_ms;/* started within [since, until); 0 open */
    bool only_denials;
    char search[128];          /* substring of id, user, connection or state */
};
bool tui_filter_match(const struct tui_filter *f, const struct tui_session_row *row);
/* Indices of rows that match, in order; returns how many (idx has n slots). */
int tui_filter_apply(const struct tui_filter *f, const struct tui_session_row *rows, int n,
                     int *idx);
/* The sessions list after a refresh of its first page: fresh (the newest
 * nfresh rows) followed by the rows of old (the list as loaded, several pages
 * perhaps) that come after fresh's last row, so that pages loaded by
 * scrolling stay. *kept_tail says whether old's tail could be joined on (it
 * cannot when fresh's last row is not in old: then the list is fresh alone,
 * and paging starts again from fresh's cursor). Returns the row count of
 * *out (malloc'd), or -1 when out of memory. */
int tui_sessions_merge(const struct tui_session_row *fresh, int nfresh, const struct tui_session_row *old,
                       int nold, struct tui_session_row **out, bool *kept_tail);
/* A page fetched again from the middle of the list (the one on screen): each
 * of its rows replaces the row of rows[from..] with the same id, in order (a
 * row the list does not hold there is left out: the list's shape stays).
 * Returns how many rows were replaced. */
int tui_sessions_update(struct tui_session_row *rows, int nrows, int from, const struct tui_session_row *fresh,
                        int nfresh);
/* Parse "15m", "2h", "3d" (ago) or an ISO date "2026-11-26[THH:MM]" (UTC)
 * into ms since the epoch. Returns 0 or -1. */
int tui_parse_time(const char *text, int64_t now_ms, int64_t *out_ms);
/* "1h02m", "45s", "3d04h" */
void tui_format_duration(int64_t ms, char *out, size_t len);

/* ---- Layout ------------------------------------------------------------- */

#define TUI_MAX_COLUMNS 12
struct tui_column {
    const char *title;
    int min, want;             /* minimum and wished-for widths */
    int flex;                  /* share of the spare width (0: fixed) */
};
/* Fit columns into width (one space between them): columns with the lowest
 * priority (last) are dropped when even their minimum does not fit; spare
 * width goes to flex columns. widths[i] = 0 for a dropped column. Returns the
 * number of visible columns. */
int tui_layout_columns(const struct tui_column *cols, int ncols, int width, int *widths);
/* First visible item so that `selected` is on screen in a list of `rows`. */
int tui_scroll_for(int selected, int top, int rows, int count);

/* ---- SQL pretty-printing ------------------------------------------------ */

/* Break a statement onto lines at its major clauses (SELECT, FROM, WHERE,
 * JOIN, GROUP BY, ORDER BY, ...), indent continuation, and wrap at width.
 * Tokens are PostgreSQL's (a '$' continues a name, block comments nest);
 * quoted strings, identifiers and comments are not reflowed, and every
 * character is shown: escaped as buf_append_terminal_safe does, and a line
 * still wider than width hard-wrapped (tui_hard_wrap), so nothing is ever
 * cut at the edge. Returns 0 or -1 (out of memory). */
int tui_sql_pretty(const char *sql, int width, struct buf *out);
/* A line wider than width display columns goes on on the next, which
 * starts with TUI_WRAP_MARK (a byte no shown text has: the screen draws a
 * mark there that text cannot imitate) and holds width - 2 columns. */
#define TUI_WRAP_MARK "\x01"
int tui_hard_wrap(const char *text, int width, struct buf *out);

/* ---- The program -------------------------------------------------------- */

struct tui_options {
    bool color;                /* false under NO_COLOR */
    bool mouse;
    const char *start_view;    /* "sessions" (default) or "reviews" */
};
/* Run the UI until the user quits. Returns 0, or -1 with err set. */
int tui_run(struct tui_source *src, const struct tui_options *o, char *err, size_t errlen);

#endif
