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

#endif
