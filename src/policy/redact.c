/* redact.c — what the audit record and a review keep of a statement's
 * values, decided on PostgreSQL's own scanner (libpg_query's tokens), never
 * on words in comments or strings: a comment cannot make code disappear,
 * and code bodies (DO's, a function's AS '...') are always kept whole.
 *
 * REVIEW (what reviewers read, narrow, so that a requester can hide nothing
 * but a value in a password's place): a string constant right after
 * PASSWORD, or after a name that says password or secret ("x 'v'",
 * "x = 'v'", "x := 'v'") becomes <redacted>; a parameter there is secret.
 * AUDIT (the record, broad): the same, and a string holding a conninfo
 * password ("password=...", "scheme://user:pw@host"); and when any token
 * names a password or secret (INSERT INTO users (name, password) VALUES
 * ...), every other constant becomes $n and every parameter is secret.
 * LITERALS (redact_literals): AUDIT, always broad. */
#include "hoopctl/policy.h"
#include "hoopctl/util.h"

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define REDACTED "<redacted>"

bool policy_value_holds_secret(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (n - i >= 8 && strncasecmp(s + i, "password", 8) == 0) {
            size_t j = i + 8;
            while (j < n && (s[j] == ' ' || s[j] == '\t'))
                j++;
            if (j < n && s[j] == '=')
                return true;
        }
        if (n - i >= 3 && memcmp(s + i, "://", 3) == 0) { /* scheme://user:password@host */
            size_t j = i + 3;
            bool colon = false;
            while (j < n && s[j] != '/' && s[j] != '@' && s[j] != ' ')
                colon |= s[j++] == ':';
            if (j < n && s[j] == '@' && colon)
                return true;
        }
    }
    return false;
}

static bool is_const(PgQuery__Token t)
{
    return t == PG_QUERY__TOKEN__SCONST || t == PG_QUERY__TOKEN__USCONST || t == PG_QUERY__TOKEN__BCONST ||
           t == PG_QUERY__TOKEN__XCONST || t == PG_QUERY__TOKEN__ICONST || t == PG_QUERY__TOKEN__FCONST;
}

static bool is_string(PgQuery__Token t)
{
    return t == PG_QUERY__TOKEN__SCONST || t == PG_QUERY__TOKEN__USCONST;
}

static bool is_comment(PgQuery__Token t)
{
    return t == PG_QUERY__TOKEN__SQL_COMMENT || t == PG_QUERY__TOKEN__C_COMMENT;
}

/* A token that names a password or a secret: the keyword PASSWORD, or an
 * identifier (a column, an option) that contains one of the words. */
static bool names_secret(const char *sql, const PgQuery__ScanToken *t)
{
    if (t->token == PG_QUERY__TOKEN__PASSWORD)
        return true;
    if (t->token != PG_QUERY__TOKEN__IDENT && t->token != PG_QUERY__TOKEN__UIDENT &&
        t->keyword_kind == PG_QUERY__KEYWORD_KIND__NO_KEYWORD)
        return false;
    char word[128];
    size_t n = (size_t)(t->end - t->start);
    if (n >= sizeof word)
        n = sizeof word - 1;
    memcpy(word, sql + t->start, n);
    word[n] = '\0';
    return strcasestr(word, "passw") || strcasestr(word, "secret");
}

/* Where a constant token ends. The scanner gives U&'' strings (USCONST) an
 * empty span: their text is found here, quote by quote ('' is a quote). */
static size_t const_end(const char *sql, const PgQuery__ScanToken *t)
{
    size_t end = (size_t)t->end;
    if (t->token != PG_QUERY__TOKEN__USCONST || end > (size_t)t->start)
        return end;
    const char *p = sql + t->start;
    if ((p[0] == 'U' || p[0] == 'u') && p[1] == '&' && p[2] == '\'') {
        p += 3;
        for (;;) {
            const char *q = strchr(p, '\'');
            if (!q)
                return strlen(sql); /* unterminated: to the end (the scan would have failed) */
            if (q[1] != '\'')
                return (size_t)(q + 1 - sql);
            p = q + 2;
        }
    }
    return strlen(sql);
}

/* A parameter's number ($n), capped far above PostgreSQL's own limit. */
static long param_number(const char *sql, const PgQuery__ScanToken *t)
{
    long v = strtol(sql + t->start + 1, NULL, 10);
    return v < 0 ? 0 : v > 1000000000L ? 1000000000L : v;
}

int policy_redact(const char *sql, enum policy_redact_mode mode, struct policy_redaction *out)
{
    memset(out, 0, sizeof *out);
    PgQueryScanResult scan = pg_query_scan(sql);
    PgQuery__ScanResult *res = NULL;
    if (!scan.error)
        res = pg_query__scan_result__unpack(NULL, scan.pbuf.len, (const uint8_t *)scan.pbuf.data);
    struct buf b = {0};
    int rc = 0;
    if (!res) {
        /* What does not scan is withheld whole: a scan error quotes text. */
        rc = buf_printf(&b, "-- (statement withheld: its %zu bytes do not scan, so its values cannot be told"
                            " from the rest)", strlen(sql));
        out->changed = true;
        out->all_params = true;
    } else {
        PgQuery__ScanToken **tok = res->tokens;
        size_t n = res->n_tokens, at = 0, len = strlen(sql);
        long next_param = 1;
        for (size_t i = 0; i < n; i++)
            if (tok[i]->token == PG_QUERY__TOKEN__PARAM && param_number(sql, tok[i]) >= next_param)
                next_param = param_number(sql, tok[i]) + 1;
        /* broad: every constant but code bodies goes (LITERALS; AUDIT when a
         * token, not a comment or a string, of the same statement names a
         * password or secret: one statement cannot hide another's values) */
        bool broad = false;
        size_t seg_end = 0; /* the token after the current statement's ';' */
        size_t prev = SIZE_MAX, prev2 = SIZE_MAX; /* the last two tokens that are not comments */
        size_t redacted_string = SIZE_MAX;           /* the last string replaced by <redacted> */
        PgQuery__Token first = PG_QUERY__TOKEN__NUL; /* the statement's first token */
        for (size_t i = 0; i < n && rc == 0; i++) {
            const PgQuery__ScanToken *t = tok[i];
            if (i >= seg_end) { /* a statement starts: is it broad? */
                broad = mode == POLICY_REDACT_LITERALS;
                for (seg_end = i; seg_end < n && tok[seg_end]->token != PG_QUERY__TOKEN__ASCII_59; seg_end++)
                    broad = broad || (mode == POLICY_REDACT_AUDIT && names_secret(sql, tok[seg_end]));
                seg_end++;
                if (broad)
                    out->all_params = true;
            }
            if (is_comment(t->token))
                continue;
            if (prev == SIZE_MAX || tok[prev]->token == PG_QUERY__TOKEN__ASCII_59)
                first = t->token;
            /* A code body (DO's, a function's AS '...') is code: shown and
             * recorded whole, whatever it holds. */
            bool body = is_string(t->token) &&
                        (first == PG_QUERY__TOKEN__DO || (prev != SIZE_MAX && tok[prev]->token == PG_QUERY__TOKEN__AS));
            bool after_secret_name =
                prev != SIZE_MAX &&
                (names_secret(sql, tok[prev]) ||
                 ((tok[prev]->token == PG_QUERY__TOKEN__ASCII_61 || tok[prev]->token == PG_QUERY__TOKEN__COLON_EQUALS) &&
                  prev2 != SIZE_MAX && names_secret(sql, tok[prev2])));
            size_t start = (size_t)t->start, end = is_const(t->token) ? const_end(sql, t) : (size_t)t->end;
            const char *replace = NULL;
            char num[24];
            if (t->token == PG_QUERY__TOKEN__PARAM && after_secret_name) {
                long v = param_number(sql, t);
                if (v > 0 && v <= POLICY_REDACT_MAX_PARAMS)
                    out->secret_params[(v - 1) / 64] |= 1ull << ((v - 1) % 64);
                else
                    out->all_params = true;
            } else if (body) {
                /* kept */
            } else if (is_string(t->token) &&
                       (after_secret_name || (prev != SIZE_MAX && prev == redacted_string) ||
                        (mode != POLICY_REDACT_REVIEW && policy_value_holds_secret(sql + start, end - start)))) {
                /* (a string right after a redacted one continues it: 'a' -- c
                 * newline 'b' is one constant to PostgreSQL) */
                replace = REDACTED;
                redacted_string = i;
            } else if (broad && is_const(t->token)) {
                snprintf(num, sizeof num, "$%ld", next_param++);
                replace = num;
            }
            if (replace && (start < at || start > len)) /* not where a token can be: keep the text */
                replace = NULL;
            if (replace) {
                /* a U&'' constant's UESCAPE 'c' clause goes with it */
                if (t->token == PG_QUERY__TOKEN__USCONST) {
                    size_t j = i + 1;
                    while (j < n && is_comment(tok[j]->token))
                        j++;
                    if (j + 1 < n && tok[j]->token == PG_QUERY__TOKEN__UESCAPE &&
                        tok[j + 1]->token == PG_QUERY__TOKEN__SCONST) {
                        end = (size_t)tok[j + 1]->end;
                        i = j + 1;
                    }
                }
                rc |= buf_append(&b, sql + at, start - at);
                rc |= buf_append_str(&b, replace);
                at = end < start ? start : end > len ? len : end;
                out->changed = true;
            }
            prev2 = prev;
            prev = i;
        }
        rc |= buf_append_str(&b, sql + at);
    }
    if (res)
        pg_query__scan_result__free_unpacked(res, NULL);
    pg_query_free_scan_result(scan);
    if (rc || !(out->text = strdup(buf_cstr(&b)))) {
        buf_free(&b);
        return -1;
    }
    buf_free(&b);
    return 0;
}

bool policy_param_is_secret(const struct policy_redaction *r, int index)
{
    if (r->all_params)
        return true;
    return index >= 0 && index < POLICY_REDACT_MAX_PARAMS && (r->secret_params[index / 64] >> (index % 64) & 1);
}

bool policy_text_may_hold_secret(const char *sql)
{
    return sql && (strcasestr(sql, "passw") || strcasestr(sql, "secret") || strstr(sql, "://"));
}

int policy_audit_redaction(const char *sql, bool literals, struct policy_redaction *r)
{
    memset(r, 0, sizeof *r);
    if (!sql || (!literals && !policy_text_may_hold_secret(sql)))
        return 0;
    return policy_redact(sql, literals ? POLICY_REDACT_LITERALS : POLICY_REDACT_AUDIT, r);
}

int policy_review_redaction(const char *sql, struct policy_redaction *r)
{
    memset(r, 0, sizeof *r);
    if (!sql || !policy_text_may_hold_secret(sql))
        return 0;
    return policy_redact(sql, POLICY_REDACT_REVIEW, r);
}

/* One line of a review's preface: control characters (a newline in a quoted
 * name, say) cannot start a line of their own. */
static int append_line(struct buf *b, const char *prefix, const char *s, size_t n)
{
    int rc = buf_append_str(b, prefix);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = buf_append(b, (unsigned char)s[i] < 0x20 && s[i] != '\t' ? "?" : &s[i], 1);
    return rc | buf_append(b, "\n", 1);
}

#define REVIEW_PREFACE_HEAD " was prepared in this session as:"

const char *policy_review_statement(const char *text)
{
    for (;;) {
        const char *nl = strchr(text, '\n');
        size_t hl = strlen(REVIEW_PREFACE_HEAD);
        if (strncmp(text, "-- ", 3) != 0 || !nl || (size_t)(nl - text) < 3 + hl ||
            strncmp(nl - hl, REVIEW_PREFACE_HEAD, hl) != 0)
            return text;
        text = nl + 1;
        while (strncmp(text, "--   ", 5) == 0 && (nl = strchr(text, '\n')))
            text = nl + 1;
    }
}

char *policy_review_text(const struct policy_analysis *a, const char *reviewed)
{
    struct buf b = {0};
    int rc = 0;
    for (size_t i = 0; a && i < a->nstmts && rc == 0; i++) {
        const struct policy_stmt *st = &a->stmts[i];
        if (!(st->facts & POLICY_FACT_PREPARED) || (st->facts & POLICY_FACT_UNKNOWN_PREPARED) || !st->prepared_name)
            continue;
        char head[POLICY_NAME_MAX + 64];
        snprintf(head, sizeof head, "%s" REVIEW_PREFACE_HEAD, st->prepared_name);
        rc = append_line(&b, "-- ", head, strlen(head));
        if (!st->prepared_text) {
            static const char lost[] = "(its text was not kept: the session prepared too much)";
            rc |= append_line(&b, "--   ", lost, sizeof lost - 1);
            continue;
        }
        for (const char *e = st->prepared_text; rc == 0 && e;) { /* each PREPARE's text */
            const char *sep = strchr(e, POLICY_TEXT_SEP);
            char *one = strndup(e, sep ? (size_t)(sep - e) : strlen(e));
            struct policy_redaction r;
            if (!one || policy_review_redaction(one, &r) < 0) {
                free(one);
                rc = -1;
                break;
            }
            for (const char *line = r.changed ? r.text : one; rc == 0 && line;) {
                size_t n = strcspn(line, "\n");
                rc = append_line(&b, "--   ", line, n);
                line = line[n] ? line + n + 1 : NULL;
            }
            free(r.text);
            free(one);
            e = sep ? sep + 1 : NULL;
        }
    }
    if (rc < 0 || buf_append(&b, reviewed, strlen(reviewed) + 1) < 0) {
        buf_free(&b);
        return NULL;
    }
    return (char *)b.data;
}
