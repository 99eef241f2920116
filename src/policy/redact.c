/* redact.c — what the audit record and a review keep of a statement's
 * values, decided on PostgreSQL's own scanner (libpg_query's tokens), never
 * on words anywhere in the text: a comment cannot make code disappear.
 *
 * Secrets: a string constant right after PASSWORD, or after a name that
 * says password or secret (an option, a column: "x 'v'", "x = 'v'",
 * "x := 'v'"), and a string constant that holds a conninfo password
 * ("password=..." or a URI's "user:pw@") become <redacted>; a parameter in
 * such a place is reported so that its value is left out.
 * Literals (redact_literals): every constant becomes $n, except code bodies
 * (DO's and a function's AS '...'), which are code, not values. */
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
        size_t n = res->n_tokens, at = 0;
        int next_param = 1;
        for (size_t i = 0; i < n; i++)
            if (tok[i]->token == PG_QUERY__TOKEN__PARAM) {
                int v = atoi(sql + tok[i]->start + 1);
                if (v >= next_param)
                    next_param = v + 1;
            }
        size_t prev = SIZE_MAX, prev2 = SIZE_MAX; /* the last two tokens that are not comments */
        PgQuery__Token first = PG_QUERY__TOKEN__NUL; /* the statement's first token */
        for (size_t i = 0; i < n && rc == 0; i++) {
            const PgQuery__ScanToken *t = tok[i];
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
            const char *replace = NULL;
            char num[24];
            if (t->token == PG_QUERY__TOKEN__PARAM && after_secret_name) {
                int v = atoi(sql + t->start + 1);
                if (v > 0 && v <= POLICY_REDACT_MAX_PARAMS)
                    out->secret_params[(v - 1) / 64] |= 1ull << ((v - 1) % 64);
                else
                    out->all_params = true;
            } else if (body) {
                /* kept */
            } else if (is_string(t->token) &&
                       (after_secret_name ||
                        policy_value_holds_secret(sql + t->start, (size_t)(t->end - t->start)))) {
                replace = REDACTED;
            } else if (mode == POLICY_REDACT_LITERALS && is_const(t->token)) {
                snprintf(num, sizeof num, "$%d", next_param++);
                replace = num;
            }
            if (replace) {
                size_t start = (size_t)t->start, end = (size_t)t->end;
                /* a U&'' constant's UESCAPE 'c' clause goes with it */
                if (t->token == PG_QUERY__TOKEN__USCONST && i + 2 < n &&
                    tok[i + 1]->token == PG_QUERY__TOKEN__UESCAPE && tok[i + 2]->token == PG_QUERY__TOKEN__SCONST) {
                    end = (size_t)tok[i + 2]->end;
                    i += 2;
                }
                rc |= buf_append(&b, sql + at, start - at);
                rc |= buf_append_str(&b, replace);
                at = end;
                out->changed = true;
            }
            prev2 = prev;
            prev = i;
        }
        rc |= buf_append_str(&b, sql + at);
        if (mode == POLICY_REDACT_LITERALS)
            out->all_params = true;
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
    struct policy_redaction sec;
    if (policy_redact(sql, POLICY_REDACT_SECRETS, &sec) < 0)
        return -1;
    if (!literals) {
        *r = sec;
        return 0;
    }
    int rc = policy_redact(sec.text, POLICY_REDACT_LITERALS, r);
    r->changed |= sec.changed;
    free(sec.text);
    return rc;
}
