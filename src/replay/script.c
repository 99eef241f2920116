/* script.c — a recorded session turned into what its terminal showed and
 * when: psql's prompt, the statement as typed, then the result table, command
 * tag, notices and errors as psql prints them, with hoopctl's markers for
 * denials, reviews and masking; idle gaps capped so a replay never drags. */
#include "hoopctl/replay.h"

#include <stdlib.h>
#include <string.h>

int64_t replay_cap_gap(int64_t gap_ms, int64_t cap_ms)
{
    if (gap_ms < 0)
        return 0;
    return gap_ms > cap_ms ? cap_ms : gap_ms;
}

void replay_prompt(const struct replay_session *s, int continuation, char *out, size_t len)
{
    /* psql's default PROMPT1 "%/%R%# " for a non-superuser: "db=> ", "db-> " */
    snprintf(out, len, "%s%s ", s->database[0] ? s->database : "postgres",
             continuation ? "->" : "=>");
}

/* psql prints a server message as "SEVERITY:  text" (two spaces). */
static int append_message(struct buf *out, const char *line, const char *dflt_severity)
{
    const char *colon = strstr(line, ":  ");
    int has_severity = colon && colon > line;
    for (const char *p = line; has_severity && p < colon; p++)
        if (!(*p >= 'A' && *p <= 'Z'))
            has_severity = 0;
    if (has_severity)
        return buf_printf(out, "%s\n", line);
    return buf_printf(out, "%s:  %s\n", dflt_severity, line);
}

/* The next word of sql (letters only, upper-cased) after skipping blanks and
 * comments; returns where it ends. */
static const char *next_word(const char *p, char *w, size_t len)
{
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '(')
            p++;
        if (p[0] == '-' && p[1] == '-') {
            p += strcspn(p, "\n");
            continue;
        }
        if (p[0] == '/' && p[1] == '*') {
            const char *e = strstr(p + 2, "*/");
            p = e ? e + 2 : p + strlen(p);
            continue;
        }
        break;
    }
    size_t n = 0;
    while (((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_') && n + 1 < len) {
        w[n++] = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        p++;
    }
    w[n] = 0;
    return p;
}

void replay_command_tag(const char *sql, int64_t rows, char *out, size_t len)
{
    char w1[32], w2[32], w3[32];
    const char *p = next_word(sql, w1, sizeof w1);
    p = next_word(p, w2, sizeof w2);
    next_word(p, w3, sizeof w3);
    long long n = rows < 0 ? 0 : (long long)rows;
    out[0] = 0;
    if (!w1[0] || strcmp(w1, "SELECT") == 0 || strcmp(w1, "WITH") == 0 ||
        strcmp(w1, "VALUES") == 0 || strcmp(w1, "TABLE") == 0)
        return; /* a query without a recorded result: nothing to show */
    if (strcmp(w1, "INSERT") == 0)
        snprintf(out, len, "INSERT 0 %lld", n);
    else if (!strcmp(w1, "UPDATE") || !strcmp(w1, "DELETE") || !strcmp(w1, "MERGE") ||
             !strcmp(w1, "COPY") || !strcmp(w1, "FETCH") || !strcmp(w1, "MOVE"))
        snprintf(out, len, "%s %lld", w1, n);
    else if (!strcmp(w1, "CREATE") || !strcmp(w1, "DROP") || !strcmp(w1, "ALTER")) {
        /* CREATE UNIQUE INDEX, CREATE OR REPLACE FUNCTION, CREATE TEMP TABLE */
        const char *obj = w2;
        if (!strcmp(w2, "UNIQUE") || !strcmp(w2, "TEMP") || !strcmp(w2, "TEMPORARY") ||
            !strcmp(w2, "UNLOGGED") || !strcmp(w2, "MATERIALIZED"))
            obj = !strcmp(w2, "MATERIALIZED") ? "MATERIALIZED VIEW" : w3;
        else if (!strcmp(w2, "OR"))
            obj = "";
        if (!strcmp(w2, "OR")) {
            char w4[32], w5[32];
            const char *q = next_word(next_word(next_word(sql, w4, sizeof w4), w4, sizeof w4), w4, sizeof w4);
            next_word(q, w5, sizeof w5);
            snprintf(out, len, "%s %s", w1, w5);
        } else {
            snprintf(out, len, "%s %s", w1, obj);
        }
    } else if (!strcmp(w1, "START") || !strcmp(w1, "BEGIN"))
        snprintf(out, len, "%s", !strcmp(w1, "START") ? "START TRANSACTION" : "BEGIN");
    else if (!strcmp(w1, "END"))
        snprintf(out, len, "COMMIT");
    else if (!strcmp(w1, "ABORT"))
        snprintf(out, len, "ROLLBACK");
    else
        snprintf(out, len, "%s", w1); /* SET, COMMIT, TRUNCATE, VACUUM, DO, GRANT, ... */
}

int replay_statement_output(const struct replay_statement *st, int markers, struct buf *out)
{
    int rc = 0;
    for (int i = 0; i < st->nnotices; i++)
        rc |= append_message(out, st->notices[i], "NOTICE");
    if (markers && st->review_id) {
        rc |= buf_printf(out, "[hoopctl] held for review %s", st->review_id);
        if (st->rule)
            rc |= buf_printf(out, " (rule %s)", st->rule);
        if (st->review_status)
            rc |= buf_printf(out, ": %s", st->review_status);
        if (st->review_decided_by)
            rc |= buf_printf(out, " by %s", st->review_decided_by);
        if (st->review_reason && *st->review_reason)
            rc |= buf_printf(out, " (\"%s\")", st->review_reason);
        rc |= buf_append_str(out, "\n");
    }
    if (st->error_message) {
        rc |= buf_printf(out, "%s:  %s\n", st->error_severity ? st->error_severity : "ERROR",
                         st->error_message);
    } else if (st->ncols > 0) {
        struct replay_result r = {st->ncols, (const char *const *)st->col_names, st->col_oids,
                                  st->nrows, (const char *const *)st->cells};
        rc |= replay_render_table(&r, out);
    } else if (st->command_tag) {
        rc |= buf_printf(out, "%s\n", st->command_tag);
    } else if (strcmp(st->decision, "deny") != 0) {
        char tag[64];
        replay_command_tag(st->sql, st->rows, tag, sizeof tag);
        if (tag[0])
            rc |= buf_printf(out, "%s\n", tag);
    }
    if (markers && strcmp(st->decision, "deny") == 0)
        rc |= buf_printf(out, "[hoopctl] denied%s%s\n", st->rule ? " by rule " : "",
                         st->rule ? st->rule : "");
    if (markers && st->masked > 0)
        rc |= buf_printf(out, "[hoopctl] %lld value%s masked%s%s%s\n", (long long)st->masked,
                         st->masked == 1 ? "" : "s", st->rule ? " (rule " : "",
                         st->rule ? st->rule : "", st->rule ? ")" : "");
    return rc ? -1 : 0;
}

static int add_frame(struct replay_script *sc, size_t *cap, int64_t at, int stmt, struct buf *text)
{
    if ((size_t)sc->nframes == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        struct replay_frame *f = realloc(sc->frames, ncap * sizeof *f);
        if (!f)
            return -1;
        sc->frames = f;
        *cap = ncap;
    }
    char *t = strdup(buf_cstr(text));
    if (!t)
        return -1;
    sc->frames[sc->nframes++] = (struct replay_frame){at, stmt, t};
    buf_reset(text);
    return 0;
}

/* The statement as typed: continuation lines get psql's "db-> " prompt. */
static int append_typed(const struct replay_session *s, const char *sql, struct buf *out)
{
    char cont[160];
    replay_prompt(s, 1, cont, sizeof cont);
    int rc = 0;
    for (const char *p = sql; *p; p++) {
        rc |= buf_append(out, p, 1);
        if (*p == '\n' && p[1])
            rc |= buf_append_str(out, cont);
    }
    size_t n = strlen(sql);
    if (n == 0 || sql[n - 1] != '\n')
        rc |= buf_append_str(out, "\n");
    return rc;
}

int replay_script_build(const struct replay_session *s, const struct replay_options *o,
                        struct replay_script *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    int from = o->from_statement > 1 ? o->from_statement - 1 : 0;
    if (from > 0 && from >= s->nstatements) {
        snprintf(err, errlen, "--from %d: the session has %d statement%s", o->from_statement,
                 s->nstatements, s->nstatements == 1 ? "" : "s");
        return -1;
    }
    int64_t cap_ms = o->idle_cap_ms > 0 ? o->idle_cap_ms : REPLAY_IDLE_CAP_MS;
    out->nstatements = s->nstatements;
    out->first_frame = calloc((size_t)s->nstatements + 1, sizeof *out->first_frame);
    if (!out->first_frame)
        goto oom;
    size_t cap = 0;
    struct buf text = {0};
    char prompt[160];
    replay_prompt(s, 0, prompt, sizeof prompt);
    int64_t t = 0;
    int64_t prev_ms = from < s->nstatements ? s->statements[from].ts_ms : s->started_ms;
    if (from == 0 && s->started_ms && s->started_ms <= prev_ms)
        prev_ms = s->started_ms;
    for (int i = 0; i < from; i++)
        out->first_frame[i] = 0;
    if (buf_append_str(&text, prompt) < 0 || add_frame(out, &cap, 0, from, &text) < 0)
        goto oom_text;
    for (int i = from; i < s->nstatements; i++) {
        const struct replay_statement *st = &s->statements[i];
        t += replay_cap_gap(st->ts_ms - prev_ms, cap_ms);
        out->first_frame[i] = out->nframes;
        if (append_typed(s, st->sql, &text) < 0 || add_frame(out, &cap, o->no_timing ? 0 : t, i, &text) < 0)
            goto oom_text;
        int64_t dur = st->duration_ms > 0 ? st->duration_ms : 0;
        t += replay_cap_gap(dur, cap_ms);
        if (replay_statement_output(st, o->markers, &text) < 0 || buf_append_str(&text, prompt) < 0 ||
            add_frame(out, &cap, o->no_timing ? 0 : t, i, &text) < 0)
            goto oom_text;
        prev_ms = st->ts_ms + dur;
    }
    out->first_frame[s->nstatements] = out->nframes;
    buf_free(&text);
    return 0;
oom_text:
    buf_free(&text);
oom:
    replay_script_free(out);
    snprintf(err, errlen, "out of memory building the replay");
    return -1;
}

void replay_script_free(struct replay_script *sc)
{
    for (int i = 0; i < sc->nframes; i++)
        free(sc->frames[i].text);
    free(sc->frames);
    free(sc->first_frame);
    memset(sc, 0, sizeof *sc);
}
