/* replay.h — rendering recorded results the way psql showed them (aligned
 * tables, row counts, errors) and writing asciinema v2 (asciicast) streams. */
#ifndef HOOPCTL_REPLAY_H
#define HOOPCTL_REPLAY_H

#include <stdint.h>
#include <stdio.h>

#include "hoopctl/util.h"

/* One result set: ncols names and type OIDs, nrows*ncols cells in row order
 * (NULL for SQL NULL). Cells are text as the client received it. */
struct replay_result {
    int ncols;
    const char *const *names;
    const uint32_t *type_oids;
    int nrows;
    const char *const *cells;
};

/* Append psql's aligned rendering (header, rule, rows, "(N rows)", blank
 * line) to out. Returns 0 or -1 when out of memory. */
int replay_render_table(const struct replay_result *r, struct buf *out);
/* Whether psql right-aligns values of this type (the numeric types). */
int replay_type_right_aligned(uint32_t type_oid);
/* Display width of a UTF-8 string in terminal columns (wide CJK = 2). */
int replay_display_width(const char *s, size_t len);

/* An asciicast v2 writer: a JSON header line, then [time, "o", text] lines. */
struct asciicast {
    FILE *out;
    double last_time;
};
int asciicast_begin(struct asciicast *a, FILE *out, int width, int height, int64_t timestamp,
                    const char *title);
/* Terminal output at `seconds` from the start; \n is written as \r\n, as a
 * terminal would receive it. Times never go backwards. */
int asciicast_output(struct asciicast *a, double seconds, const char *text, size_t len);

/* ---- Recorded sessions ------------------------------------------------
 * A session as the server's API returns it: {"session": {...}, "events": [...]}
 * where each event is {id, session_id, seq, type, time (ms), data{}} and type
 * is session_start, statement, result or session_end. A statement's data
 * carries text, decision (allow|deny|review|mask), rule, duration_us, rows,
 * masked_counts{column: n}, error (a message or {severity,message}),
 * review_id, and optionally command_tag, notices[] and review{id,status,
 * decided_by,reason}; a result's data carries columns[{name,type_oid}],
 * rows[[...]] and statement_seq (else it belongs to the statement before it).
 * "ts", "sql", "duration_ms" and "masked" are accepted as well. Unknown keys
 * are ignored. */

#define REPLAY_MAX_STATEMENTS 100000
#define REPLAY_MAX_COLUMNS 1600

struct replay_statement {
    int64_t seq;              /* the event's seq (results name it) */
    int64_t ts_ms;            /* when it was sent */
    int64_t duration_ms;      /* -1 when unknown */
    char *sql;
    char decision[16];        /* allow, deny, review, mask */
    char *rule;               /* may be NULL */
    int64_t rows;             /* -1 when unknown */
    int64_t masked;           /* values masked in the result */
    char *command_tag;        /* "INSERT 0 1", may be NULL */
    char *error_severity, *error_message; /* NULL when it succeeded */
    int nnotices;
    char **notices;           /* "NOTICE:  text" lines as psql prints them */
    char *review_id, *review_status, *review_decided_by, *review_reason;
    /* the result set, when one was recorded */
    int ncols, nrows;
    char **col_names;
    uint32_t *col_oids;
    char **cells;             /* nrows*ncols, NULL for SQL NULL */
};

struct replay_session {
    char id[80];
    char user[128];
    char connection[128];
    char database[128];
    char state[16];           /* active, ended */
    int64_t started_ms, ended_ms; /* ended_ms 0 while live */
    int nstatements;
    struct replay_statement *statements;
};

/* Build a session from its JSON document. Returns 0, or -1 with err set when
 * the document is malformed (nothing is half-built then). */
int replay_session_from_json(const char *text, size_t len, struct replay_session *out, char *err,
                             size_t errlen);
void replay_session_free(struct replay_session *s);
/* Counts over the statements. */
int replay_session_count(const struct replay_session *s, const char *decision);

/* ---- Scripts: what the terminal showed, and when ------------------------ */

#define REPLAY_IDLE_CAP_MS 2000

/* One piece of terminal output at a point in time (ms from the start, after
 * idle capping; speed is applied by the player). */
struct replay_frame {
    int64_t at_ms;
    int statement;            /* index of the statement it belongs to */
    char *text;
};
struct replay_script {
    int nframes;
    struct replay_frame *frames;
    int nstatements;
    int *first_frame;         /* per statement: index of its first frame */
};
struct replay_options {
    int from_statement;       /* 1-based; 0 or 1: from the start */
    int no_timing;            /* every frame at time 0 */
    int64_t idle_cap_ms;      /* 0: REPLAY_IDLE_CAP_MS */
    int markers;              /* show [hoopctl] markers (default on) */
};
/* Cap a gap between two events at cap_ms (negative gaps become 0). */
int64_t replay_cap_gap(int64_t gap_ms, int64_t cap_ms);
/* The prompt psql showed: "db=> " (or "db-> " on continuation lines). */
void replay_prompt(const struct replay_session *s, int continuation, char *out, size_t len);
/* The command tag psql prints for a statement that returned no rows, when
 * the recording has none: "INSERT 0 3", "UPDATE 2", "CREATE TABLE", ... */
void replay_command_tag(const char *sql, int64_t rows, char *out, size_t len);
/* Append what psql printed for statement i (prompt and echo excluded). */
int replay_statement_output(const struct replay_statement *st, int markers, struct buf *out);
int replay_script_build(const struct replay_session *s, const struct replay_options *o,
                        struct replay_script *out, char *err, size_t errlen);
void replay_script_free(struct replay_script *sc);

/* ---- The player: keys, pause and speed, independent of the terminal ----- */

enum replay_key_action {
    REPLAY_KEY_NONE = 0,
    REPLAY_KEY_QUIT,
    REPLAY_KEY_PAUSE_TOGGLED,
    REPLAY_KEY_SPEED_CHANGED,
    REPLAY_KEY_JUMP,          /* continue from player->next_frame at once */
    REPLAY_KEY_REWIND,        /* clear the screen, redraw up to next_frame */
};
struct replay_player {
    const struct replay_script *script;
    int next_frame;           /* the frame to show next */
    double speed;             /* 1.0 = original */
    int paused;
};
#define REPLAY_SPEED_MIN 0.25
#define REPLAY_SPEED_MAX 64.0
void replay_player_init(struct replay_player *p, const struct replay_script *sc, double speed);
/* Apply one key (space, '+', '-', 'n', 'p', 'q'). */
enum replay_key_action replay_player_key(struct replay_player *p, int key);
/* Real delay in ms before frame i, after frame i-1 was shown, at the speed. */
int64_t replay_player_delay(const struct replay_player *p, int frame);

/* Play the script to out with its timing; when key_fd >= 0 (a terminal in
 * raw mode) keys control it. Returns 0, or -1 on a write error. */
int replay_play(const struct replay_script *sc, double speed, FILE *out, int key_fd);
/* replay_play with keys read from the terminal in_fd (put in raw mode for
 * the time, then restored); without a terminal it plays without keys. */
int replay_play_terminal(const struct replay_script *sc, double speed, FILE *out, int in_fd);
/* Write the script as asciicast v2 at the speed (timing compressed by it). */
int replay_write_asciicast(const struct replay_script *sc, const struct replay_session *s,
                           double speed, int width, int height, FILE *out);

#endif
