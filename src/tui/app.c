/* app.c — the ncurses screens of `hoopctl tui`: Sessions (filter, search,
 * open, replay), a session's statements, the Reviews queue (approve, deny with
 * a reason typed through readline's callback interface) and its History; a
 * help overlay; drawn with erase + wnoutrefresh/doupdate so nothing flickers. */
#include "internal.h"

#include <curses.h>
#include <errno.h>
#include <locale.h>
#include <poll.h>
#include <readline/readline.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

enum app_view { VIEW_SESSIONS, VIEW_SESSION, VIEW_TEXT, VIEW_REVIEWS, VIEW_HISTORY };
enum app_prompt {
    PROMPT_NONE,
    PROMPT_SEARCH,
    PROMPT_USER,
    PROMPT_CONNECTION,
    PROMPT_SINCE,
    PROMPT_UNTIL,
    PROMPT_REASON,
    PROMPT_CONFIRM_APPROVE,
    PROMPT_CONFIRM_DENY,
};
enum app_color { COLOR_DENY = 1, COLOR_REVIEW, COLOR_MASK, COLOR_ERROR, COLOR_OK, COLOR_TITLE };

struct app {
    struct tui_model *m;
    const struct tui_options *opt;
    bool color;
    bool quit;
    bool help;
    enum app_view view, back_view;
    struct tui_filter filter;
    int sel[5], top[5];              /* per view: selected row, first row shown */
    int *idx;                        /* filtered session indices */
    int nidx;
    int stmt_scroll;                 /* the review's statement pane */
    char review_sel_id[80];          /* the selected review, kept across refreshes */
    char text_title[256];
    struct buf text;                 /* VIEW_TEXT's content */
    enum app_prompt prompt;
    char prompt_id[80];              /* the review a prompt is about */
    char prompt_summary[200];
    char reason[512];
    bool rl_line_done;
    char *rl_line;
    char flash[300];                 /* a message from the screen itself */
    bool flash_error;
    int redraws;                     /* ^L presses, counted in the status bar */
};

/* readline's callbacks take no argument: the one app whose prompt is open. */
static struct app *app_readline_owner;
static int app_readline_char = EOF;

/* ---- small drawing helpers ---- */

/* Bytes of s that fit in width columns (UTF-8 aware). */
static size_t fit_bytes(const char *s, int width, int *used)
{
    mbstate_t st;
    memset(&st, 0, sizeof st);
    size_t i = 0, len = strlen(s);
    int w = 0;
    while (i < len) {
        wchar_t wc;
        size_t n = mbrtowc(&wc, s + i, len - i, &st);
        if (n == (size_t)-1 || n == (size_t)-2) {
            n = 1;
            wc = '?';
            memset(&st, 0, sizeof st);
        }
        if (n == 0)
            break;
        int cw = wc < 32 ? 1 : wcwidth(wc);
        if (cw < 0)
            cw = 1;
        if (w + cw > width)
            break;
        w += cw;
        i += n;
    }
    if (used)
        *used = w;
    return i;
}

/* Text at (y, x) clipped to width: C0 controls shown as spaces, and DEL,
 * C1 controls, bidirectional overrides and bytes that are not UTF-8 as
 * escapes (buf_append_terminal_safe), so that text from the server can
 * neither steer the terminal nor reorder what a reviewer reads. */
static void put_n(int y, int x, int width, const char *s, size_t len)
{
    if (width <= 0 || y < 0 || y >= LINES || x >= COLS)
        return;
    if (x + width > COLS)
        width = COLS - x;
    struct buf line = {0}, safe = {0};
    int rc = buf_append(&line, s, strnlen(s, len));
    for (size_t i = 0; rc == 0 && i < line.len; i++)
        if (line.data[i] < 32)
            line.data[i] = ' ';
    if (rc == 0 && buf_append_terminal_safe(&safe, (const char *)line.data, line.len, false) == 0 &&
        buf_cstr(&safe)) {
        size_t n = fit_bytes(buf_cstr(&safe), width, NULL);
        mvaddnstr(y, x, buf_cstr(&safe), (int)n);
    }
    buf_free(&line);
    buf_free(&safe);
}

static void put(int y, int x, int width, const char *s) { put_n(y, x, width, s, strlen(s)); }

/* One line of a pane filled by tui_sql_pretty / tui_hard_wrap: a line that
 * goes on from the one above starts with a reverse-video '>', a mark no
 * text can draw, so a reader sees it continues and nothing was cut. */
static void put_pane_line(int y, int x, int width, const char *s, size_t n)
{
    size_t mark = strlen(TUI_WRAP_MARK);
    if (n >= mark && strncmp(s, TUI_WRAP_MARK, mark) == 0) {
        if (y >= 0 && y < LINES && x >= 0 && x < COLS && width > 0) {
            attron(A_REVERSE);
            mvaddch(y, x, '>');
            attroff(A_REVERSE);
        }
        s += mark;
        n -= mark;
        x += 2;
        width -= 2;
    }
    put_n(y, x, width, s, n);
}

static void putf(int y, int x, int width, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void putf(int y, int x, int width, const char *fmt, ...)
{
    char b[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof b, fmt, ap);
    va_end(ap);
    put(y, x, width, b);
}

static attr_t attr_for(struct app *a, int color, attr_t mono)
{
    return a->color ? (attr_t)COLOR_PAIR(color) | (mono & A_BOLD) : mono;
}

static void fill_line(int y, attr_t at)
{
    attron(at);
    mvhline(y, 0, ' ', COLS);
    attroff(at);
}

static void format_time(int64_t ms, char *out, size_t len)
{
    if (ms <= 0) {
        snprintf(out, len, "-");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(out, len, "%m-%d %H:%M", &tm);
}

static void format_count(int n, char *out, size_t len)
{
    if (n < 0)
        snprintf(out, len, "yes");
    else if (n == 0)
        snprintf(out, len, "-");
    else
        snprintf(out, len, "%d", n);
}

/* The first line of a statement, its blanks squeezed. */
static void one_line(const char *sql, char *out, size_t len)
{
    size_t j = 0;
    bool space = false;
    for (const char *p = sql; *p && j + 1 < len; p++) {
        if (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') {
            space = j > 0;
            continue;
        }
        if (space && j + 2 < len)
            out[j++] = ' ';
        space = false;
        out[j++] = *p;
    }
    out[j] = 0;
}

/* ---- the table used by every list ---- */

struct app_table {
    const struct tui_column *cols;
    int ncols;
    int widths[TUI_MAX_COLUMNS];
};

static void table_layout(struct app_table *t)
{
    tui_layout_columns(t->cols, t->ncols, COLS - 1, t->widths);
}

static void table_header(struct app_table *t, int y)
{
    fill_line(y, A_BOLD | A_UNDERLINE);
    attron(A_BOLD | A_UNDERLINE);
    int x = 1;
    for (int i = 0; i < t->ncols; i++) {
        if (!t->widths[i])
            continue;
        put(y, x, t->widths[i], t->cols[i].title);
        x += t->widths[i] + 1;
    }
    attroff(A_BOLD | A_UNDERLINE);
}

static void table_row(struct app_table *t, int y, const char *const *cells, bool selected, attr_t at)
{
    if (selected)
        fill_line(y, A_REVERSE);
    attron(at | (selected ? A_REVERSE : 0));
    int x = 1;
    for (int i = 0; i < t->ncols; i++) {
        if (!t->widths[i])
            continue;
        put(y, x, t->widths[i], cells[i] ? cells[i] : "");
        x += t->widths[i] + 1;
    }
    attroff(at | (selected ? A_REVERSE : 0));
}

/* ---- views ---- */

static void list_area(int *y0, int *rows);

/* Lay a list out: its columns, header line, and the selection of view kept
 * within count and on screen (rows: the lines it may use, 0 for all). */
static int list_begin(struct app *a, enum app_view view, struct app_table *t, int count, int rows,
                      int *y0)
{
    table_layout(t);
    table_header(t, 2);
    int all;
    list_area(y0, &all);
    if (rows <= 0 || rows > all)
        rows = all;
    int *sel = &a->sel[view], *top = &a->top[view];
    if (*sel >= count)
        *sel = count - 1;
    if (*sel < 0)
        *sel = 0;
    *top = tui_scroll_for(*sel, *top, rows, count);
    return rows;
}

static const struct tui_column session_cols[] = {
    {"USER", 6, 12, 1},    {"CONNECTION", 6, 12, 1}, {"STARTED", 11, 11, 0}, {"DURATION", 8, 8, 0},
    {"EVENTS", 6, 6, 0},   {"DENIED", 6, 6, 0},      {"REVIEWS", 7, 7, 0},   {"STATE", 6, 6, 0},
    {"SESSION ID", 36, 36, 0},
};

static void list_area(int *y0, int *rows)
{
    *y0 = 3;
    *rows = LINES - 5;
    if (*rows < 1)
        *rows = 1;
}

static void draw_sessions(struct app *a)
{
    struct tui_model *m = a->m;
    free(a->idx);
    a->idx = calloc((size_t)m->nrows + 1, sizeof *a->idx);
    a->nidx = a->idx ? tui_filter_apply(&a->filter, m->rows, m->nrows, a->idx) : 0;
    const struct tui_filter *f = &a->filter;
    char since[32] = "", until[32] = "";
    if (f->since_ms)
        format_time(f->since_ms, since, sizeof since);
    if (f->until_ms)
        format_time(f->until_ms, until, sizeof until);
    putf(1, 1, COLS - 2, "%d of %d%s sessions  filter: user=%s conn=%s from=%s to=%s%s search=%s", a->nidx,
         m->nrows, m->rows_next[0] ? "+" : "", f->user[0] ? f->user : "*", f->connection[0] ? f->connection : "*",
         since[0] ? since : "*", until[0] ? until : "*", f->only_denials ? " denials-only" : "",
         f->search[0] ? f->search : "-");
    struct app_table t = {session_cols, (int)(sizeof session_cols / sizeof session_cols[0]), {0}};
    int y0, rows = list_begin(a, VIEW_SESSIONS, &t, a->nidx, 0, &y0);
    int *sel = &a->sel[VIEW_SESSIONS], *top = &a->top[VIEW_SESSIONS];
    /* the worker refreshes the page on screen with the first page */
    snprintf(m->shown_id, sizeof m->shown_id, "%s", *top < a->nidx ? m->rows[a->idx[*top]].id : "");
    /* within a screen of the end of what is loaded: the worker fetches the
     * next page while the list stays usable */
    if (m->rows_loaded && m->rows_next[0] && !m->rows_more_loading && !m->want_more_sessions &&
        *sel >= a->nidx - rows) {
        m->want_more_sessions = true;
        tui_model_kick(m);
    }
    if (!m->rows_loaded)
        put(y0, 1, COLS - 2, "loading sessions...");
    else if (a->nidx == 0)
        put(y0, 1, COLS - 2, m->rows_next[0] ? "no session matches the filter so far; loading older ones..."
                             : m->nrows   ? "no session matches the filter (x clears it)"
                                          : "no sessions");
    int64_t now = util_now_ms();
    if (m->rows_more_loading && a->nidx > 0 && a->nidx - *top < rows)
        put(y0 + a->nidx - *top, 1, COLS - 2, "loading more sessions...");
    for (int i = *top; i < a->nidx && i - *top < rows; i++) {
        const struct tui_session_row *r = &m->rows[a->idx[i]];
        char started[32], dur[32], ev[16], den[16], rev[16];
        format_time(r->started_ms, started, sizeof started);
        tui_format_duration((r->ended_ms ? r->ended_ms : now) - r->started_ms, dur, sizeof dur);
        snprintf(ev, sizeof ev, "%d", r->events);
        format_count(r->denials, den, sizeof den);
        format_count(r->reviews, rev, sizeof rev);
        const char *cells[] = {r->user, r->connection, started, dur, ev, den, rev, r->state, r->id};
        table_row(&t, y0 + i - *top, cells, i == *sel, r->denials ? attr_for(a, COLOR_DENY, A_BOLD) : 0);
    }
}

static const struct tui_column stmt_cols[] = {
    {"#", 3, 4, 0},       {"AT", 7, 8, 0},      {"DECISION", 8, 8, 0}, {"RULE", 4, 10, 0},
    {"DUR", 6, 7, 0},     {"ROWS", 4, 6, 0},    {"MASKED", 6, 6, 0},   {"STATEMENT", 10, 20, 1},
};

static attr_t decision_attr(struct app *a, const char *d)
{
    if (strcmp(d, "deny") == 0)
        return attr_for(a, COLOR_DENY, A_BOLD);
    if (strcmp(d, "review") == 0)
        return attr_for(a, COLOR_REVIEW, A_UNDERLINE);
    if (strcmp(d, "mask") == 0)
        return attr_for(a, COLOR_MASK, 0);
    return 0;
}

static void draw_session(struct app *a)
{
    struct tui_model *m = a->m;
    const struct replay_session *s = &m->session;
    if (!m->session_loaded) {
        put(1, 1, COLS - 2, "loading the session...");
        return;
    }
    int masked = 0;
    for (int i = 0; i < s->nstatements; i++)
        masked += (int)s->statements[i].masked;
    char started[32], dur[32];
    format_time(s->started_ms, started, sizeof started);
    tui_format_duration((s->ended_ms ? s->ended_ms : util_now_ms()) - s->started_ms, dur, sizeof dur);
    putf(1, 1, COLS - 2, "%s on %s  started %s  %s  %s  %d statements  %d denied  %d reviewed  %d masked",
         s->user, s->connection, started, dur, s->state, s->nstatements, replay_session_count(s, "deny"),
         replay_session_count(s, "review"), masked);
    struct app_table t = {stmt_cols, (int)(sizeof stmt_cols / sizeof stmt_cols[0]), {0}};
    int y0, rows = list_begin(a, VIEW_SESSION, &t, s->nstatements, 0, &y0);
    int *sel = &a->sel[VIEW_SESSION], *top = &a->top[VIEW_SESSION];
    if (s->nstatements == 0)
        put(y0, 1, COLS - 2, "no statements in this session");
    for (int i = *top; i < s->nstatements && i - *top < rows; i++) {
        const struct replay_statement *st = &s->statements[i];
        char num[16], at[32], durs[32], rowsb[24], maskb[24], sql[512];
        snprintf(num, sizeof num, "%d", i + 1);
        snprintf(at, sizeof at, "+%llds", (long long)((st->ts_ms - s->started_ms) / 1000));
        if (st->duration_ms >= 0)
            snprintf(durs, sizeof durs, "%lldms", (long long)st->duration_ms);
        else
            snprintf(durs, sizeof durs, "-");
        if (st->rows >= 0)
            snprintf(rowsb, sizeof rowsb, "%lld", (long long)st->rows);
        else
            snprintf(rowsb, sizeof rowsb, "-");
        snprintf(maskb, sizeof maskb, "%lld", (long long)st->masked);
        one_line(st->sql, sql, sizeof sql);
        const char *cells[] = {num, at, st->decision, st->rule ? st->rule : "-", durs, rowsb,
                               st->masked ? maskb : "-", sql};
        table_row(&t, y0 + i - *top, cells, i == *sel, decision_attr(a, st->decision));
    }
}

static void draw_text(struct app *a)
{
    put(1, 1, COLS - 2, a->text_title);
    int y0, rows;
    list_area(&y0, &rows);
    y0 = 2;
    rows += 1;
    const char *p = buf_cstr(&a->text);
    int line = 0, *top = &a->top[VIEW_TEXT];
    int total = 1;
    for (const char *q = p; *q; q++)
        total += *q == '\n';
    if (*top > total - rows)
        *top = total - rows;
    if (*top < 0)
        *top = 0;
    while (*p) {
        size_t n = strcspn(p, "\n");
        if (line >= *top && line - *top < rows) {
            attr_t at = n >= 9 && strncmp(p, "[hoopctl]", 9) == 0 ? attr_for(a, COLOR_REVIEW, A_BOLD)
                        : n >= 6 && strncmp(p, "ERROR:", 6) == 0 ? attr_for(a, COLOR_DENY, A_BOLD)
                                                                 : 0;
            attron(at);
            put_pane_line(y0 + line - *top, 1, COLS - 2, p, n);
            attroff(at);
        }
        line++;
        p += n + (p[n] == '\n');
    }
}

static const struct tui_column review_cols[] = {
    {"REQUESTER", 8, 14, 1}, {"CONNECTION", 8, 12, 1}, {"AGE", 6, 7, 0}, {"RULE", 4, 10, 0},
    {"STATEMENT", 10, 30, 2},
};

/* Index of the selected review, following its id across refreshes. */
static int review_selected(struct app *a, const struct tui_review *r, int n, int *sel)
{
    if (a->review_sel_id[0])
        for (int i = 0; i < n; i++)
            if (strcmp(r[i].id, a->review_sel_id) == 0)
                *sel = i;
    if (*sel >= n)
        *sel = n - 1;
    if (*sel < 0)
        *sel = 0;
    if (n > 0)
        snprintf(a->review_sel_id, sizeof a->review_sel_id, "%s", r[*sel].id);
    return *sel;
}

static void draw_reviews(struct app *a)
{
    struct tui_model *m = a->m;
    putf(1, 1, COLS - 2, "%d pending review%s you may decide  (a approve, d deny, J/K scroll the statement)",
         m->npending, m->npending == 1 ? "" : "s");
    struct app_table t = {review_cols, (int)(sizeof review_cols / sizeof review_cols[0]), {0}};
    int y0, rows;
    list_area(&y0, &rows);
    int list_rows = rows / 3 < 3 ? (rows < 3 ? rows : 3) : rows / 3;
    int *sel = &a->sel[VIEW_REVIEWS], *top = &a->top[VIEW_REVIEWS];
    review_selected(a, m->pending, m->npending, sel);
    list_rows = list_begin(a, VIEW_REVIEWS, &t, m->npending, list_rows, &y0);
    if (!m->pending_loaded)
        put(y0, 1, COLS - 2, "loading reviews...");
    else if (m->npending == 0)
        put(y0, 1, COLS - 2, "no pending reviews: new ones appear here as they arrive");
    int64_t now = util_now_ms();
    for (int i = *top; i < m->npending && i - *top < list_rows; i++) {
        const struct tui_review *r = &m->pending[i];
        char age[32], sql[512];
        tui_format_duration(now - r->created_ms, age, sizeof age);
        one_line(r->statement, sql, sizeof sql);
        const char *cells[] = {r->requester, r->connection, age, r->rule[0] ? r->rule : "-", sql};
        table_row(&t, y0 + i - *top, cells, i == *sel, 0);
    }
    if (m->npending == 0)
        return;
    const struct tui_review *r = &m->pending[*sel];
    int y = y0 + list_rows;
    mvhline(y, 0, ACS_HLINE, COLS);
    char age[32];
    tui_format_duration(now - r->created_ms, age, sizeof age);
    attron(A_BOLD);
    putf(y + 1, 1, COLS - 2, "Requester: %s   Connection: %s   Age: %s   Rule: %s", r->requester,
         r->connection, age, r->rule[0] ? r->rule : "(not recorded)");
    attroff(A_BOLD);
    putf(y + 2, 1, COLS - 2, "Review %s   Session %s", r->id, r->session_id[0] ? r->session_id : "-");
    struct buf pretty = {0};
    tui_sql_pretty(r->statement, COLS - 4, &pretty);
    if (r->params && r->params[0]) { /* the values an approval runs it with, each seen whole, */
        struct buf shown = {0};
        buf_append_str(&pretty, "\n\nParameters:\n");
        if (buf_append_terminal_safe(&shown, r->params, strlen(r->params), true) == 0 && buf_cstr(&shown))
            tui_hard_wrap(buf_cstr(&shown), COLS - 4, &pretty); /* a long one behind the mark */
        buf_free(&shown);
    }
    const char *p = buf_cstr(&pretty);
    int avail = y0 + rows - (y + 3);
    int total = 1;
    for (const char *q = p; *q; q++)
        total += *q == '\n';
    if (a->stmt_scroll > total - avail)
        a->stmt_scroll = total - avail;
    if (a->stmt_scroll < 0)
        a->stmt_scroll = 0;
    int line = 0;
    while (*p) {
        size_t n = strcspn(p, "\n");
        if (line >= a->stmt_scroll && line - a->stmt_scroll < avail)
            put_pane_line(y + 3 + line - a->stmt_scroll, 2, COLS - 3, p, n);
        line++;
        p += n + (p[n] == '\n');
    }
    if (total > avail && avail > 0)
        putf(y0 + rows - 1, COLS - 16, 15, "[%d-%d of %d]", a->stmt_scroll + 1,
             a->stmt_scroll + avail < total ? a->stmt_scroll + avail : total, total);
    buf_free(&pretty);
}

static const struct tui_column history_cols[] = {
    {"STATUS", 8, 8, 0},   {"DECIDED BY", 8, 12, 0}, {"REQUESTER", 8, 12, 0}, {"CONNECTION", 8, 12, 0},
    {"WHEN", 11, 11, 0},   {"REASON", 6, 40, 2},     {"STATEMENT", 10, 30, 1},
};

static void draw_history(struct app *a)
{
    struct tui_model *m = a->m;
    putf(1, 1, COLS - 2, "%d decided review%s", m->nhistory, m->nhistory == 1 ? "" : "s");
    struct app_table t = {history_cols, (int)(sizeof history_cols / sizeof history_cols[0]), {0}};
    int y0, rows = list_begin(a, VIEW_HISTORY, &t, m->nhistory, 0, &y0);
    int *sel = &a->sel[VIEW_HISTORY], *top = &a->top[VIEW_HISTORY];
    if (m->nhistory == 0)
        put(y0, 1, COLS - 2, "no decided reviews yet");
    for (int i = *top; i < m->nhistory && i - *top < rows; i++) {
        const struct tui_review *r = &m->history[i];
        char when[32], sql[512];
        format_time(r->decided_ms ? r->decided_ms : r->created_ms, when, sizeof when);
        one_line(r->statement, sql, sizeof sql);
        const char *cells[] = {r->status, r->decided_by[0] ? r->decided_by : "-", r->requester, r->connection,
                               when, r->reason[0] ? r->reason : "-", sql};
        attr_t at = strcmp(r->status, "denied") == 0 ? attr_for(a, COLOR_DENY, A_BOLD) : 0;
        table_row(&t, y0 + i - *top, cells, i == *sel, at);
    }
}

static const char *const help_lines[] = {
    "hoopctl tui - keys",
    "",
    "1 2 3 / Tab     Sessions, Reviews, History",
    "Up Down j k     move;  PgUp PgDn Home End",
    "Enter           open a session / a statement",
    "Esc q           back (q on a top view quits)",
    "r               replay the session (in the terminal)",
    "/               search sessions",
    "u c             filter by user / connection",
    "f t             from / to time (15m, 2h, 3d, 2026-11-26)",
    "D               only sessions with denials",
    "x               clear the filter",
    "a d             approve / deny the review (asks first)",
    "J K             scroll the review's statement",
    "g               refresh now;  Ctrl-L redraw",
    "?               this help (any key closes it)",
};

static void draw_help(struct app *a)
{
    int n = (int)(sizeof help_lines / sizeof help_lines[0]);
    int h = n + 2 < LINES ? n + 2 : LINES, w = 60 < COLS ? 60 : COLS;
    WINDOW *win = newwin(h, w, (LINES - h) / 2, (COLS - w) / 2);
    if (!win)
        return;
    werase(win);
    box(win, 0, 0);
    for (int i = 0; i < n && i + 1 < h - 1; i++) {
        if (i == 0)
            wattron(win, A_BOLD);
        mvwaddnstr(win, i + 1, 2, help_lines[i], w - 4);
        if (i == 0)
            wattroff(win, A_BOLD);
    }
    (void)a;
    wnoutrefresh(win);
    delwin(win);
}

static void draw_frame(struct app *a)
{
    struct tui_model *m = a->m;
    /* title and tabs */
    attr_t title = a->color ? (attr_t)COLOR_PAIR(COLOR_TITLE) | A_BOLD : A_REVERSE | A_BOLD;
    fill_line(0, title);
    attron(title);
    char tabs[256];
    snprintf(tabs, sizeof tabs, " hoopctl tui  %s1 Sessions%s  %s2 Reviews (%d)%s  %s3 History%s",
             a->view <= VIEW_TEXT ? "[" : " ", a->view <= VIEW_TEXT ? "]" : " ",
             a->view == VIEW_REVIEWS ? "[" : " ", m->npending, a->view == VIEW_REVIEWS ? "]" : " ",
             a->view == VIEW_HISTORY ? "[" : " ", a->view == VIEW_HISTORY ? "]" : " ");
    put(0, 0, COLS, tabs);
    int tw = 0;
    fit_bytes(tabs, COLS, &tw);
    int dw = 0;
    fit_bytes(m->src->description, COLS, &dw);
    if (tw + dw + 3 < COLS)
        put(0, COLS - dw - 1, dw, m->src->description);
    attroff(title);
    /* key hints */
    const char *hints = a->view == VIEW_SESSIONS ? "Enter open  r replay  / search  u c f t filter  D denials  x clear  ? help  q quit"
                        : a->view == VIEW_SESSION ? "Enter statement  r replay  Esc back  ? help"
                        : a->view == VIEW_TEXT    ? "Up/Down scroll  Esc back  ? help"
                        : a->view == VIEW_REVIEWS ? "a approve  d deny  J/K scroll statement  ? help  q quit"
                                                  : "Up/Down move  ? help  q quit";
    attron(A_DIM);
    put(LINES - 2, 1, COLS - 2, hints);
    attroff(A_DIM);
    /* status bar (or the prompt) */
    if (a->prompt == PROMPT_NONE) {
        bool err = a->flash[0] ? a->flash_error : m->status_error;
        const char *msg = a->flash[0] ? a->flash : m->status[0] ? m->status : "ready";
        attr_t at = err ? attr_for(a, COLOR_ERROR, A_REVERSE | A_BOLD) : A_REVERSE;
        fill_line(LINES - 1, at);
        attron(at);
        putf(LINES - 1, 0, COLS, " %s%s", err ? "error: " : "", msg);
        attroff(at);
    } else if (a->prompt == PROMPT_CONFIRM_APPROVE || a->prompt == PROMPT_CONFIRM_DENY) {
        fill_line(LINES - 1, A_REVERSE | A_BOLD);
        attron(A_REVERSE | A_BOLD);
        putf(LINES - 1, 0, COLS, " %s [y/N]", a->prompt_summary);
        attroff(A_REVERSE | A_BOLD);
    }
}

static void draw(struct app *a)
{
    erase();
    pthread_mutex_lock(&a->m->mu);
    switch (a->view) {
    case VIEW_SESSIONS: draw_sessions(a); break;
    case VIEW_SESSION: draw_session(a); break;
    case VIEW_TEXT: draw_text(a); break;
    case VIEW_REVIEWS: draw_reviews(a); break;
    case VIEW_HISTORY: draw_history(a); break;
    }
    draw_frame(a);
    pthread_mutex_unlock(&a->m->mu);
    bool prompting = a->prompt >= PROMPT_SEARCH && a->prompt <= PROMPT_REASON;
    if (prompting && rl_line_buffer) {
        fill_line(LINES - 1, A_NORMAL);
        int pw = 0;
        const char *pr = rl_display_prompt ? rl_display_prompt : "";
        fit_bytes(pr, COLS, &pw);
        put(LINES - 1, 0, COLS, pr);
        /* keep the cursor on screen: show the tail of a long line */
        int room = COLS - pw - 1;
        const char *line = rl_line_buffer;
        int cw = 0;
        char before[1024];
        snprintf(before, sizeof before, "%.*s", rl_point, line);
        fit_bytes(before, 1 << 20, &cw);
        int skip = cw > room ? cw - room : 0;
        const char *start = line;
        while (skip > 0 && *start) {
            int w1 = 0;
            size_t n1 = fit_bytes(start, 1, &w1);
            if (!n1)
                n1 = 1;
            start += n1;
            skip -= w1 ? w1 : 1;
        }
        put(LINES - 1, pw, COLS - pw, start);
        snprintf(before, sizeof before, "%.*s", (int)(rl_point - (start - line)), start);
        fit_bytes(before, 1 << 20, &cw);
        move(LINES - 1, pw + cw < COLS ? pw + cw : COLS - 1);
        curs_set(1);
    } else {
        curs_set(0);
    }
    wnoutrefresh(stdscr);
    if (a->help)
        draw_help(a);
    doupdate();
}

/* ---- readline on the status line ---- */

static int app_rl_getc(FILE *f)
{
    (void)f;
    int c = app_readline_char;
    app_readline_char = EOF;
    return c;
}

static int app_rl_input_available(void)
{
    return app_readline_char != EOF;
}

static void app_rl_redisplay(void)
{
    if (app_readline_owner)
        draw(app_readline_owner);
}

static void app_rl_line(char *line)
{
    struct app *a = app_readline_owner;
    if (!a) {
        free(line);
        return;
    }
    a->rl_line_done = true;
    free(a->rl_line);
    a->rl_line = line; /* NULL on ^D */
    rl_callback_handler_remove();
}

static void app_readline_setup(FILE *devnull)
{
    rl_catch_signals = 0;
    rl_catch_sigwinch = 0;
    rl_change_environment = 0;
    rl_prep_term_function = NULL;
    rl_deprep_term_function = NULL;
    rl_getc_function = app_rl_getc;
    rl_input_available_hook = app_rl_input_available;
    rl_redisplay_function = app_rl_redisplay;
    rl_outstream = devnull;
    rl_instream = devnull;
    rl_readline_name = "hoopctl-tui";
    rl_inhibit_completion = 1;
}

static void prompt_begin(struct app *a, enum app_prompt p, const char *text, const char *initial)
{
    a->prompt = p;
    a->rl_line_done = false;
    app_readline_owner = a;
    rl_callback_handler_install(text, app_rl_line);
    if (initial && *initial) {
        rl_insert_text(initial);
        rl_point = rl_end;
    }
    draw(a);
}

static void prompt_cancel(struct app *a)
{
    if (a->prompt >= PROMPT_SEARCH && a->prompt <= PROMPT_REASON)
        rl_callback_handler_remove();
    a->prompt = PROMPT_NONE;
    snprintf(a->flash, sizeof a->flash, "cancelled");
    a->flash_error = false;
}

static void set_flash(struct app *a, bool error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_flash(struct app *a, bool error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->flash, sizeof a->flash, fmt, ap);
    va_end(ap);
    a->flash_error = error;
}

/* Selected review (lock held by caller) or NULL. */
static const struct tui_review *selected_review(struct app *a)
{
    struct tui_model *m = a->m;
    if (m->npending == 0)
        return NULL;
    int sel = a->sel[VIEW_REVIEWS];
    review_selected(a, m->pending, m->npending, &sel);
    return &m->pending[sel];
}

static void send_decision(struct app *a, bool approve)
{
    struct tui_model *m = a->m;
    pthread_mutex_lock(&m->mu);
    m->want_decide = true;
    m->decide_approve = approve;
    snprintf(m->decide_id, sizeof m->decide_id, "%s", a->prompt_id);
    snprintf(m->decide_reason, sizeof m->decide_reason, "%s", approve ? "" : a->reason);
    tui_model_status(m, false, "%s review %.8s...", approve ? "approving" : "denying", a->prompt_id);
    tui_model_kick(m);
    pthread_mutex_unlock(&m->mu);
    a->flash[0] = 0;
}

/* A line typed at a prompt is done. */
static void prompt_finish(struct app *a)
{
    enum app_prompt p = a->prompt;
    a->prompt = PROMPT_NONE;
    char *line = a->rl_line;
    a->rl_line = NULL;
    if (!line) {
        set_flash(a, false, "cancelled");
        return;
    }
    struct tui_filter *f = &a->filter;
    int64_t t = 0;
    switch (p) {
    case PROMPT_SEARCH:
        snprintf(f->search, sizeof f->search, "%s", line);
        break;
    case PROMPT_USER:
        snprintf(f->user, sizeof f->user, "%s", line);
        break;
    case PROMPT_CONNECTION:
        snprintf(f->connection, sizeof f->connection, "%s", line);
        break;
    case PROMPT_SINCE:
    case PROMPT_UNTIL:
        if (!*line)
            t = 0;
        else if (tui_parse_time(line, util_now_ms(), &t) < 0) {
            set_flash(a, true, "not a time: \"%s\" (try 15m, 2h, 3d or 2026-11-26 10:00)", line);
            break;
        }
        if (p == PROMPT_SINCE)
            f->since_ms = t;
        else
            f->until_ms = t;
        break;
    case PROMPT_REASON:
        if (!*line) {
            set_flash(a, true, "a denial needs a reason; nothing was sent");
            break;
        }
        snprintf(a->reason, sizeof a->reason, "%s", line);
        snprintf(a->prompt_summary, sizeof a->prompt_summary, "Deny review %.8s with reason \"%.80s\"?",
                 a->prompt_id, a->reason);
        a->prompt = PROMPT_CONFIRM_DENY;
        break;
    default:
        break;
    }
    a->sel[VIEW_SESSIONS] = p == PROMPT_REASON ? a->sel[VIEW_SESSIONS] : 0;
    free(line);
}

/* ---- actions ---- */

static void open_session(struct app *a, bool replay)
{
    struct tui_model *m = a->m;
    const char *id = NULL;
    char chosen[80] = "";
    pthread_mutex_lock(&m->mu);
    /* the list may have been refreshed since it was drawn: filter it again */
    int *idx = calloc((size_t)m->nrows + 1, sizeof *idx);
    int n = idx ? tui_filter_apply(&a->filter, m->rows, m->nrows, idx) : 0;
    if (a->view == VIEW_SESSIONS && a->sel[VIEW_SESSIONS] < n)
        id = m->rows[idx[a->sel[VIEW_SESSIONS]]].id;
    else if (a->view == VIEW_SESSION && m->session_loaded)
        id = m->session.id;
    if (id) {
        snprintf(chosen, sizeof chosen, "%s", id); /* the rows may go once unlocked */
        snprintf(m->want_session, sizeof m->want_session, "%s", id);
        m->want_session_replay = replay;
        if (!replay) {
            m->session_loaded = false;
            a->sel[VIEW_SESSION] = a->top[VIEW_SESSION] = 0;
        }
        tui_model_kick(m);
    }
    pthread_mutex_unlock(&m->mu);
    free(idx);
    if (!chosen[0])
        return;
    if (!replay)
        a->view = VIEW_SESSION;
    else
        set_flash(a, false, "loading session %s for replay...", chosen);
}

static void open_statement(struct app *a)
{
    struct tui_model *m = a->m;
    pthread_mutex_lock(&m->mu);
    int i = a->sel[VIEW_SESSION];
    if (m->session_loaded && i >= 0 && i < m->session.nstatements) {
        const struct replay_statement *st = &m->session.statements[i];
        buf_reset(&a->text);
        tui_sql_pretty(st->sql, COLS - 4, &a->text);
        buf_append_str(&a->text, "\n\n");
        replay_statement_output(st, 1, &a->text);
        char dur[32] = "";
        if (st->duration_ms >= 0)
            snprintf(dur, sizeof dur, "  %lld ms", (long long)st->duration_ms);
        snprintf(a->text_title, sizeof a->text_title, "Statement %d of %d  %s%s%s%s", i + 1,
                 m->session.nstatements, st->decision, st->rule ? " by " : "", st->rule ? st->rule : "", dur);
        a->top[VIEW_TEXT] = 0;
        a->view = VIEW_TEXT;
    }
    pthread_mutex_unlock(&m->mu);
}

/* Play the loaded session on the terminal, outside curses, then come back. */
static void run_replay(struct app *a)
{
    struct tui_model *m = a->m;
    struct replay_script sc;
    struct replay_options o = {.markers = 1};
    char err[256];
    pthread_mutex_lock(&m->mu);
    m->session_replay_ready = false;
    int rc = replay_script_build(&m->session, &o, &sc, err, sizeof err);
    pthread_mutex_unlock(&m->mu);
    if (rc < 0) {
        set_flash(a, true, "%s", err);
        return;
    }
    def_prog_mode();
    endwin();
    fputs("\033[H\033[2J", stdout);
    replay_play_terminal(&sc, 1.0, stdout, STDIN_FILENO);
    fputs("\n-- end of replay: press a key to go back --", stdout);
    fflush(stdout);
    replay_script_free(&sc);
    reset_prog_mode();
    unsigned char c;
    struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
    if (poll(&pfd, 1, -1) > 0 && read(STDIN_FILENO, &c, 1) < 0)
        c = 0;
    clearok(curscr, TRUE);
    set_flash(a, false, "replay finished");
}

static void move_sel(struct app *a, int delta, int count)
{
    int *sel = &a->sel[a->view];
    *sel += delta;
    if (*sel >= count)
        *sel = count - 1;
    if (*sel < 0)
        *sel = 0;
    if (a->view == VIEW_REVIEWS) {
        a->stmt_scroll = 0;
        pthread_mutex_lock(&a->m->mu);
        if (*sel < a->m->npending)
            snprintf(a->review_sel_id, sizeof a->review_sel_id, "%s", a->m->pending[*sel].id);
        pthread_mutex_unlock(&a->m->mu);
    }
}

static int view_count(struct app *a)
{
    struct tui_model *m = a->m;
    switch (a->view) {
    case VIEW_SESSIONS: return a->nidx;
    case VIEW_SESSION: return m->session_loaded ? m->session.nstatements : 0;
    case VIEW_REVIEWS: return m->npending;
    case VIEW_HISTORY: return m->nhistory;
    default: return 0;
    }
}

static void handle_mouse(struct app *a)
{
    MEVENT ev;
    if (getmouse(&ev) != OK || !(ev.bstate & (BUTTON1_CLICKED | BUTTON1_PRESSED)))
        return;
    int y0, rows;
    list_area(&y0, &rows);
    if (ev.y == 0) { /* the tabs */
        a->view = ev.x < 27 ? VIEW_SESSIONS : ev.x < 45 ? VIEW_REVIEWS : VIEW_HISTORY;
        return;
    }
    if (ev.y >= y0 && ev.y < y0 + rows && a->view != VIEW_TEXT) {
        int target = a->top[a->view] + ev.y - y0;
        move_sel(a, target - a->sel[a->view], view_count(a));
    }
}

static void handle_key(struct app *a, int c)
{
    if (a->help) {
        a->help = false;
        return;
    }
    if (a->prompt == PROMPT_CONFIRM_APPROVE || a->prompt == PROMPT_CONFIRM_DENY) {
        bool approve = a->prompt == PROMPT_CONFIRM_APPROVE;
        a->prompt = PROMPT_NONE;
        if (c == 'y' || c == 'Y')
            send_decision(a, approve);
        else
            set_flash(a, false, "not %s", approve ? "approved" : "denied");
        return;
    }
    if (a->prompt != PROMPT_NONE) { /* a line being typed: readline edits it */
        if (c == 27 || c == 7) {
            prompt_cancel(a);
            return;
        }
        int ch = c == KEY_BACKSPACE ? 127 : c == KEY_LEFT ? 2 : c == KEY_RIGHT ? 6 : c == KEY_HOME ? 1
               : c == KEY_END ? 5 : c == KEY_DC ? 4 : c == KEY_ENTER ? '\r' : c;
        if (ch < 0 || ch > 255)
            return;
        app_readline_char = ch;
        rl_callback_read_char();
        if (a->rl_line_done) {
            a->rl_line_done = false;
            prompt_finish(a);
        }
        return;
    }
    a->flash[0] = 0;
    int count;
    pthread_mutex_lock(&a->m->mu);
    count = view_count(a);
    pthread_mutex_unlock(&a->m->mu);
    int page = LINES - 6 > 1 ? LINES - 6 : 1;
    switch (c) {
    case 'q':
        if (a->view == VIEW_SESSION || a->view == VIEW_TEXT)
            a->view = a->view == VIEW_TEXT ? VIEW_SESSION : VIEW_SESSIONS;
        else
            a->quit = true;
        return;
    case 27:
    case KEY_BACKSPACE:
        if (a->view == VIEW_TEXT)
            a->view = VIEW_SESSION;
        else if (a->view == VIEW_SESSION)
            a->view = VIEW_SESSIONS;
        return;
    case '?':
        a->help = true;
        return;
    case '1':
        a->view = VIEW_SESSIONS;
        return;
    case '2':
        a->view = VIEW_REVIEWS;
        return;
    case '3':
        a->view = VIEW_HISTORY;
        return;
    case '\t':
        a->view = a->view <= VIEW_TEXT ? VIEW_REVIEWS : a->view == VIEW_REVIEWS ? VIEW_HISTORY : VIEW_SESSIONS;
        return;
    case 12: /* ^L */
        clearok(curscr, TRUE);
        set_flash(a, false, "screen redrawn (%d)", ++a->redraws);
        return;
    case 'g':
        pthread_mutex_lock(&a->m->mu);
        a->m->want_sessions = true;
        a->m->want_history = true;
        tui_model_kick(a->m);
        pthread_mutex_unlock(&a->m->mu);
        set_flash(a, false, "refreshing...");
        return;
    case KEY_UP:
    case 'k':
        if (a->view == VIEW_TEXT)
            a->top[VIEW_TEXT]--;
        else
            move_sel(a, -1, count);
        return;
    case KEY_DOWN:
    case 'j':
        if (a->view == VIEW_TEXT)
            a->top[VIEW_TEXT]++;
        else
            move_sel(a, 1, count);
        return;
    case KEY_PPAGE:
        if (a->view == VIEW_TEXT)
            a->top[VIEW_TEXT] -= page;
        else
            move_sel(a, -page, count);
        return;
    case KEY_NPAGE:
    case ' ':
        if (a->view == VIEW_TEXT)
            a->top[VIEW_TEXT] += page;
        else
            move_sel(a, page, count);
        return;
    case KEY_HOME:
        move_sel(a, -count, count);
        return;
    case KEY_END:
        move_sel(a, count, count);
        return;
    case KEY_MOUSE:
        handle_mouse(a);
        return;
    default:
        break;
    }
    if (a->view == VIEW_SESSIONS) {
        switch (c) {
        case '\n':
        case '\r':
        case KEY_ENTER:
            open_session(a, false);
            return;
        case 'r':
            open_session(a, true);
            return;
        case '/':
            prompt_begin(a, PROMPT_SEARCH, "Search: ", a->filter.search);
            return;
        case 'u':
            prompt_begin(a, PROMPT_USER, "User: ", a->filter.user);
            return;
        case 'c':
            prompt_begin(a, PROMPT_CONNECTION, "Connection: ", a->filter.connection);
            return;
        case 'f':
            prompt_begin(a, PROMPT_SINCE, "From (15m, 2h, 3d, 2026-11-26 10:00; empty: any): ", "");
            return;
        case 't':
            prompt_begin(a, PROMPT_UNTIL, "To (15m, 2h, 3d, 2026-11-26 10:00; empty: any): ", "");
            return;
        case 'D':
            a->filter.only_denials = !a->filter.only_denials;
            a->sel[VIEW_SESSIONS] = 0;
            return;
        case 'x':
            memset(&a->filter, 0, sizeof a->filter);
            set_flash(a, false, "filter cleared");
            return;
        }
    } else if (a->view == VIEW_SESSION) {
        if (c == '\n' || c == '\r' || c == KEY_ENTER)
            open_statement(a);
        else if (c == 'r')
            open_session(a, true);
    } else if (a->view == VIEW_REVIEWS) {
        if (c == 'J')
            a->stmt_scroll++;
        else if (c == 'K')
            a->stmt_scroll--;
        else if (c == 'a' || c == 'd') {
            pthread_mutex_lock(&a->m->mu);
            const struct tui_review *r = selected_review(a);
            if (r) {
                snprintf(a->prompt_id, sizeof a->prompt_id, "%s", r->id);
                snprintf(a->prompt_summary, sizeof a->prompt_summary, "Approve review %.8s by %.40s on %.40s?",
                         r->id, r->requester, r->connection);
            }
            pthread_mutex_unlock(&a->m->mu);
            if (!r)
                set_flash(a, true, "no pending review selected");
            else if (c == 'a')
                a->prompt = PROMPT_CONFIRM_APPROVE;
            else
                prompt_begin(a, PROMPT_REASON, "Reason for denying: ", "");
        }
    }
}

/* ---- setup and the loop ---- */

static void app_colors(struct app *a)
{
    a->color = a->opt->color && has_colors();
    if (!a->color)
        return;
    start_color();
    use_default_colors();
    init_pair(COLOR_DENY, COLOR_RED, -1);
    init_pair(COLOR_REVIEW, COLOR_YELLOW, -1);
    init_pair(COLOR_MASK, COLOR_CYAN, -1);
    init_pair(COLOR_ERROR, COLOR_WHITE, COLOR_RED);
    init_pair(COLOR_OK, COLOR_GREEN, -1);
    init_pair(COLOR_TITLE, COLOR_BLACK, COLOR_CYAN);
}

int tui_run(struct tui_source *src, const struct tui_options *o, char *err, size_t errlen)
{
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        snprintf(err, errlen, "hoopctl tui needs a terminal");
        return -1;
    }
    setlocale(LC_ALL, "");
    struct tui_model m;
    if (tui_model_start(&m, src, err, errlen) < 0)
        return -1;
    FILE *devnull = fopen("/dev/null", "r+");
    struct app a = {.m = &m, .opt = o};
    if (o->start_view && strcmp(o->start_view, "reviews") == 0)
        a.view = VIEW_REVIEWS;
    SCREEN *screen = newterm(NULL, stdout, stdin);
    if (!screen) {
        snprintf(err, errlen, "cannot start the terminal UI (TERM=%s)", getenv("TERM") ? getenv("TERM") : "");
        tui_model_stop(&m);
        if (devnull)
            fclose(devnull);
        return -1;
    }
    app_colors(&a);
    cbreak();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    nodelay(stdscr, TRUE);
    set_escdelay(25);
    curs_set(0);
    if (o->mouse)
        mousemask(BUTTON1_CLICKED | BUTTON1_PRESSED, NULL);
    app_readline_setup(devnull ? devnull : stdin);
    while (!a.quit) {
        pthread_mutex_lock(&m.mu);
        bool replay = m.session_replay_ready;
        pthread_mutex_unlock(&m.mu);
        if (replay)
            run_replay(&a);
        draw(&a);
        struct pollfd pfd[2] = {{.fd = STDIN_FILENO, .events = POLLIN}, {.fd = m.wake_fd[0], .events = POLLIN}};
        int rc = poll(pfd, 2, 1000); /* a tick keeps ages and durations current */
        if (rc < 0 && errno != EINTR)
            break;
        if (rc > 0 && (pfd[1].revents & POLLIN)) {
            char drain[64];
            while (read(m.wake_fd[0], drain, sizeof drain) > 0) {
            }
        }
        if (rc > 0 && (pfd[0].revents & (POLLHUP | POLLERR)) && !(pfd[0].revents & POLLIN))
            break; /* the terminal went away */
        int c;
        while ((c = getch()) != ERR) {
            if (c == KEY_RESIZE) {
                /* ncurses has the new size; the next draw lays everything out again */
                continue;
            }
            handle_key(&a, c);
            if (a.quit)
                break;
        }
    }
    if (a.prompt >= PROMPT_SEARCH && a.prompt <= PROMPT_REASON)
        rl_callback_handler_remove();
    app_readline_owner = NULL;
    endwin();
    delscreen(screen);
    free(a.idx);
    free(a.rl_line);
    buf_free(&a.text);
    tui_model_stop(&m);
    if (devnull)
        fclose(devnull);
    return 0;
}
