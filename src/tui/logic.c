/* logic.c — what the TUI's screens compute without a terminal: which sessions
 * a filter keeps, how a refreshed first page joins the pages loaded, how
 * columns fit a width, scrolling, times typed by the user, durations, and SQL
 * broken onto lines at its clauses for reading. */
#include "hoopctl/tui.h"
#include "hoopctl/util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static bool contains_nocase(const char *hay, const char *needle)
{
    if (!needle[0])
        return true;
    return strcasestr(hay, needle) != NULL;
}

bool tui_filter_match(const struct tui_filter *f, const struct tui_session_row *row)
{
    if (!contains_nocase(row->user, f->user) || !contains_nocase(row->connection, f->connection))
        return false;
    if (f->since_ms && row->started_ms < f->since_ms)
        return false;
    if (f->until_ms && row->started_ms >= f->until_ms)
        return false;
    if (f->only_denials && row->denials == 0)
        return false;
    if (f->search[0] && !contains_nocase(row->id, f->search) &&
        !contains_nocase(row->user, f->search) && !contains_nocase(row->connection, f->search) &&
        !contains_nocase(row->state, f->search))
        return false;
    return true;
}

int tui_sessions_merge(const struct tui_session_row *fresh, int nfresh, const struct tui_session_row *old,
                       int nold, struct tui_session_row **out, bool *kept_tail)
{
    int tail = nold; /* where old's rows after fresh's last begin */
    *kept_tail = false;
    if (nfresh > 0) {
        for (int i = nold - 1; i >= 0; i--)
            if (strcmp(old[i].id, fresh[nfresh - 1].id) == 0) {
                tail = i + 1;
                *kept_tail = true;
                break;
            }
    }
    int n = nfresh + (nold - tail);
    *out = malloc(((size_t)n + 1) * sizeof **out);
    if (!*out)
        return -1;
    if (nfresh)
        memcpy(*out, fresh, (size_t)nfresh * sizeof **out);
    if (n > nfresh)
        memcpy(*out + nfresh, old + tail, (size_t)(n - nfresh) * sizeof **out);
    return n;
}

int tui_sessions_update(struct tui_session_row *rows, int nrows, int from, const struct tui_session_row *fresh,
                        int nfresh)
{
    int updated = 0, j = from < 0 ? 0 : from;
    for (int i = 0; i < nfresh && j < nrows; i++) {
        /* both lists are in the listing's order: look ahead for this id a
         * little (rows gone from the server), never back */
        int k = j;
        while (k < nrows && k - j < 64 && strcmp(rows[k].id, fresh[i].id) != 0)
            k++;
        if (k == nrows || strcmp(rows[k].id, fresh[i].id) != 0)
            continue; /* not in the list here (a late arrival): left out */
        rows[k] = fresh[i];
        updated++;
        j = k + 1;
    }
    return updated;
}

int tui_filter_apply(const struct tui_filter *f, const struct tui_session_row *rows, int n, int *idx)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        if (tui_filter_match(f, &rows[i]))
            idx[k++] = i;
    return k;
}

int tui_parse_time(const char *text, int64_t now_ms, int64_t *out_ms)
{
    while (isspace((unsigned char)*text))
        text++;
    char *end;
    long long v = strtoll(text, &end, 10);
    if (end != text && v >= 0 && end[0] && !end[1] && !strchr(text, '-')) {
        int64_t unit = end[0] == 's' ? 1000 : end[0] == 'm' ? 60000 : end[0] == 'h' ? 3600000
                     : end[0] == 'd' ? 86400000 : 0;
        if (!unit || v > 100000)
            return -1;
        *out_ms = now_ms - (int64_t)v * unit;
        return 0;
    }
    struct tm tm = {0};
    int y, mo, d, h = 0, mi = 0, used = 0;
    if (sscanf(text, "%4d-%2d-%2d%n", &y, &mo, &d, &used) != 3)
        return -1;
    const char *rest = text + used;
    if (*rest == 'T' || *rest == ' ') {
        int used2 = 0;
        if (sscanf(rest + 1, "%2d:%2d%n", &h, &mi, &used2) != 2)
            return -1;
        rest += 1 + used2;
    }
    if (*rest || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || y < 1970)
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    *out_ms = (int64_t)timegm(&tm) * 1000;
    return 0;
}

void tui_format_duration(int64_t ms, char *out, size_t len)
{
    if (ms < 0)
        ms = 0;
    int64_t s = ms / 1000;
    if (s < 60)
        snprintf(out, len, "%llds", (long long)s);
    else if (s < 3600)
        snprintf(out, len, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
    else if (s < 86400)
        snprintf(out, len, "%lldh%02lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
    else
        snprintf(out, len, "%lldd%02lldh", (long long)(s / 86400), (long long)(s % 86400 / 3600));
}

int tui_layout_columns(const struct tui_column *cols, int ncols, int width, int *widths)
{
    if (ncols > TUI_MAX_COLUMNS)
        ncols = TUI_MAX_COLUMNS;
    int visible = ncols, used;
    for (;;) {
        used = visible > 0 ? visible - 1 : 0;
        for (int i = 0; i < visible; i++)
            used += cols[i].min;
        if (used <= width || visible <= 1)
            break;
        visible--;
    }
    for (int i = 0; i < ncols; i++)
        widths[i] = i < visible ? cols[i].min : 0;
    int spare = width - used;
    if (visible == 1 && spare < 0) { /* even one column does not fit: clip it */
        widths[0] = width > 0 ? width : 0;
        return 1;
    }
    for (int i = 0; i < visible && spare > 0; i++) {
        int grow = cols[i].want - widths[i];
        if (grow > spare)
            grow = spare;
        if (grow > 0) {
            widths[i] += grow;
            spare -= grow;
        }
    }
    int shares = 0, last_flex = -1;
    for (int i = 0; i < visible; i++)
        if (cols[i].flex > 0) {
            shares += cols[i].flex;
            last_flex = i;
        }
    if (shares > 0 && spare > 0) {
        int given = 0;
        for (int i = 0; i < visible; i++) {
            if (cols[i].flex <= 0)
                continue;
            int extra = i == last_flex ? spare - given : spare * cols[i].flex / shares;
            widths[i] += extra;
            given += extra;
        }
    }
    return visible;
}

int tui_scroll_for(int selected, int top, int rows, int count)
{
    if (rows <= 0)
        return selected > 0 ? selected : 0;
    if (selected < top)
        top = selected;
    if (selected >= top + rows)
        top = selected - rows + 1;
    int max_top = count - rows > 0 ? count - rows : 0;
    if (top > max_top)
        top = max_top;
    return top < 0 ? 0 : top;
}

/* ---- SQL pretty-printing ---- */

enum sql_token_kind { TOK_WORD, TOK_QUOTED, TOK_LINE_COMMENT, TOK_PUNCT, TOK_OPEN, TOK_CLOSE };
struct sql_token {
    enum sql_token_kind kind;
    const char *s;
    size_t len;
    bool space_before;         /* blanks separated it from the previous token */
};

/* The characters PostgreSQL's scanner lets start an identifier (and a
 * dollar quote's tag), and continue one: a '$' continues an identifier, so
 * "x$a$" is one name, never the start of a dollar quote. */
static bool ident_start(unsigned char c) { return isalpha(c) || c == '_' || c >= 0x80; }
static bool ident_cont(unsigned char c) { return ident_start(c) || isdigit(c) || c == '$'; }
/* Operator characters, written together as one token ("<=", "||", "->>"). */
static bool op_char(char c) { return c && strchr("~!@#^&|`?+-*/%<>=", c) != NULL; }

/* A quoted string or identifier from s (at its quote); backslash: an E''
 * string, where \' does not end it. */
static const char *skip_quoted(const char *s, bool backslash)
{
    char q = *s++;
    while (*s) {
        if (backslash && *s == '\\' && s[1])
            s += 2;
        else if (*s == q && s[1] == q)
            s += 2;
        else if (*s++ == q)
            break;
    }
    return s;
}

/* Scan one token at *p (after whitespace); returns 0 at the end. Tokens
 * follow PostgreSQL's scanner where it matters for reading: what it takes
 * for one string, identifier or comment is one token here too. */
static int sql_next_token(const char **p, struct sql_token *t)
{
    const char *s = *p;
    t->space_before = false;
    while (isspace((unsigned char)*s)) {
        s++;
        t->space_before = true;
    }
    if (!*s)
        return 0;
    const char *start = s;
    t->kind = TOK_PUNCT;
    if (s[0] == '-' && s[1] == '-') {
        while (*s && *s != '\n')
            s++;
        t->kind = TOK_LINE_COMMENT;
    } else if (s[0] == '/' && s[1] == '*') { /* block comments nest */
        int depth = 0;
        while (*s) {
            if (s[0] == '/' && s[1] == '*') {
                depth++;
                s += 2;
            } else if (s[0] == '*' && s[1] == '/') {
                s += 2;
                if (--depth == 0)
                    break;
            } else
                s++;
        }
        t->kind = TOK_QUOTED;
    } else if (*s == '\'' || *s == '"') {
        s = skip_quoted(s, false);
        t->kind = TOK_QUOTED;
    } else if ((*s == 'e' || *s == 'E') && s[1] == '\'') {
        s = skip_quoted(s + 1, true); /* E'...': backslash escapes */
        t->kind = TOK_QUOTED;
    } else if (*s == '$' && isdigit((unsigned char)s[1])) {
        s++; /* $1: a parameter */
        while (isdigit((unsigned char)*s))
            s++;
        t->kind = TOK_WORD;
    } else if (*s == '$' && (s[1] == '$' || ident_start((unsigned char)s[1]))) {
        /* a dollar quote: here no identifier goes on (one would have taken the '$') */
        const char *tag_end = s + 1;
        while (*tag_end != '$' && *tag_end && ident_cont((unsigned char)*tag_end))
            tag_end++;
        if (*tag_end == '$') {
            size_t taglen = (size_t)(tag_end - s + 1);
            const char *body = tag_end + 1, *e = body;
            while ((e = strchr(e, '$')) && strncmp(e, s, taglen) != 0)
                e++;
            s = e ? e + taglen : body + strlen(body);
            t->kind = TOK_QUOTED;
        } else {
            s++;
        }
    } else if (*s == '(') {
        s++;
        t->kind = TOK_OPEN;
    } else if (*s == ')') {
        s++;
        t->kind = TOK_CLOSE;
    } else if (ident_start((unsigned char)*s) || isdigit((unsigned char)*s)) {
        /* names (a.b.c, x$y) and numbers (1.5e3); a '$' goes on a name, not a number or a '.' */
        bool name = ident_start((unsigned char)*s);
        while (*s && (ident_cont((unsigned char)*s) || *s == '.')) {
            if (*s == '$' && (!name || s[-1] == '.'))
                break;
            if (*s == '.')
                name = ident_start((unsigned char)s[1]);
            s++;
        }
        t->kind = TOK_WORD;
    } else if (op_char(*s)) {
        /* an operator runs to the start of a comment, as in PostgreSQL */
        while (op_char(*s) && !(s > start && ((s[0] == '-' && s[1] == '-') || (s[0] == '/' && s[1] == '*'))))
            s++;
    } else {
        s++;
    }
    t->s = start;
    t->len = (size_t)(s - start);
    *p = s;
    return 1;
}

static bool word_is(const struct sql_token *t, const char *w)
{
    return t->kind == TOK_WORD && strlen(w) == t->len && strncasecmp(t->s, w, t->len) == 0;
}

static bool is_clause_start(const struct sql_token *t, const struct sql_token *prev)
{
    static const char *const clauses[] = {"select", "from", "where", "group", "order", "having",
                                          "limit", "offset", "union", "intersect", "except",
                                          "values", "set", "returning", "on", "with", "window",
                                          "left", "right", "inner", "full", "cross", "natural",
                                          "join", "insert", "update", "delete", "using", NULL};
    if (t->kind != TOK_WORD)
        return false;
    bool hit = false;
    for (int i = 0; clauses[i]; i++)
        if (word_is(t, clauses[i]))
            hit = true;
    if (!hit || !prev)
        return false;
    /* "LEFT JOIN", "UNION ALL", "DELETE FROM", "ON CONFLICT" stay together */
    if (word_is(t, "join") || word_is(t, "from") || word_is(t, "on") || word_is(t, "set") ||
        word_is(t, "select"))
        for (int i = 0; clauses[i]; i++)
            if (word_is(prev, clauses[i]) && !word_is(prev, "select") && !word_is(prev, "values") &&
                !word_is(prev, "on") && !word_is(prev, "returning") && !word_is(prev, "set") &&
                !word_is(prev, "using"))
                return false;
    if (word_is(prev, "outer") && word_is(t, "join"))
        return false;
    if (word_is(t, "on") && (word_is(prev, "distinct") || word_is(prev, "do")))
        return false;
    if (word_is(t, "update") && (word_is(prev, "do") || word_is(prev, "for")))
        return false;
    return true;
}

static bool is_op(const struct sql_token *t) { return t->kind == TOK_PUNCT && op_char(*t->s); }

/* A token as the pane shows it: escaped like all text from the server
 * (buf_append_terminal_safe), a tab as a blank. */
static int token_shown(const struct sql_token *t, struct buf *shown)
{
    buf_reset(shown);
    if (buf_append_terminal_safe(shown, t->s, t->len, true) < 0)
        return -1;
    for (size_t i = 0; i < shown->len; i++)
        if (shown->data[i] == '\t')
            shown->data[i] = ' ';
    return 0;
}

/* The clause layout, each token as shown; lines may be longer than width. */
static int sql_layout(const char *sql, int width, struct buf *out)
{
    const char *p = sql;
    struct sql_token t, prev = {0};
    struct buf shown = {0};
    bool have_prev = false, line_empty = true, force_break = false;
    int depth = 0, col = 0, rc = 0;
    int max_indent = width / 2;
    while (sql_next_token(&p, &t)) {
        if (token_shown(&t, &shown) < 0) {
            rc = -1;
            break;
        }
        const char *ts = buf_cstr(&shown);
        const char *last_nl = strrchr(ts, '\n'); /* a string or comment of several lines */
        int w = replay_display_width(ts, last_nl ? (size_t)(last_nl - ts) : shown.len);
        bool clause = is_clause_start(&t, have_prev ? &prev : NULL);
        int indent = depth * 2;
        if (t.kind == TOK_CLOSE && depth > 0)
            indent = --depth * 2;
        if (have_prev && (force_break || clause || (col + 1 + w > width && !line_empty))) {
            rc |= buf_append_str(out, "\n");
            int ind = clause || force_break ? indent : indent + 4;
            if (ind > max_indent)
                ind = max_indent;
            rc |= buf_printf(out, "%*s", ind, "");
            col = ind;
            line_empty = true;
            force_break = false;
        }
        bool glue_left = t.kind == TOK_CLOSE || (t.kind == TOK_PUNCT && (*t.s == ',' || *t.s == ';' ||
                                                                        *t.s == '.' || *t.s == ':')) ||
                         (have_prev && prev.kind == TOK_OPEN) ||
                         (have_prev && prev.kind == TOK_PUNCT && (*prev.s == '.' || *prev.s == ':')) ||
                         (have_prev && !t.space_before && prev.kind == TOK_WORD && prev.s[prev.len - 1] == '.') ||
                         /* count(*) stays glued, "t (a, b)" keeps its blank, as written */
                         (t.kind == TOK_OPEN && have_prev && !t.space_before && !clause) ||
                         /* an operator written against its operands stays so: -1, a||b */
                         (!t.space_before && (is_op(&t) || (have_prev && is_op(&prev))));
        if (!line_empty && !glue_left) {
            rc |= buf_append_str(out, " ");
            col++;
        }
        rc |= buf_append(out, shown.data, shown.len);
        col = last_nl ? replay_display_width(last_nl + 1, strlen(last_nl + 1)) : col + w;
        line_empty = false;
        if (t.kind == TOK_OPEN)
            depth++;
        if (t.kind == TOK_LINE_COMMENT || (t.kind == TOK_PUNCT && *t.s == ';' && t.len == 1))
            force_break = true; /* after a comment, and each statement of several on its line */
        prev = t;
        have_prev = true;
    }
    buf_free(&shown);
    return rc ? -1 : 0;
}

/* A line break before any character that would pass width columns (width - 2
 * on a continued line, which starts with TUI_WRAP_MARK and a blank). */
int tui_hard_wrap(const char *text, int width, struct buf *out)
{
    int rc = 0, col = 0, first = width < 1 ? 1 : width, more = width - 2 < 1 ? 1 : width - 2, lim = first;
    for (const char *p = text; *p;) {
        size_t n = 1; /* one UTF-8 character */
        while (p[n] && ((unsigned char)p[n] & 0xC0) == 0x80)
            n++;
        if (*p == '\n') {
            col = 0;
            lim = first;
        } else {
            int w = replay_display_width(p, n);
            if (col + w > lim && col > 0) { /* never silently past the edge: go on below */
                rc |= buf_append_str(out, "\n" TUI_WRAP_MARK);
                col = 0;
                lim = more;
            }
            col += w;
        }
        rc |= buf_append(out, p, n);
        p += n;
    }
    return rc ? -1 : 0;
}

int tui_sql_pretty(const char *sql, int width, struct buf *out)
{
    struct buf laid = {0};
    int rc = sql_layout(sql, width, &laid);
    if (rc == 0)
        rc = tui_hard_wrap(buf_cstr(&laid) ? buf_cstr(&laid) : "", width, out);
    if (rc == 0 && out->len == 0)
        rc = buf_append_str(out, "");
    buf_free(&laid);
    return rc ? -1 : 0;
}
