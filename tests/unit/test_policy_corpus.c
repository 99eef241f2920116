/* test_policy_corpus.c — the classification corpus: every statement in
 * tests/unit/data/policy_corpus.txt is classified and decided under the
 * default policy, and compared with its expected kinds, relations, facts and
 * decision. The file format is described at its top. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "hoopctl/policy.h"
#include "hoopctl/util.h"
#include "../../src/policy/policy_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ITEMS 64

/* libpg_query 15-4.0.0 leaks one byte (a strdup in pg_query_raw_parse) when
 * pg_query_parse_plpgsql meets a body that does not parse; the corpus has
 * such a DO block on purpose. The library is built without frame pointers,
 * so the leak's stack ends in pg_query_raw_parse. Our own allocations are
 * not in that function. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:pg_query_raw_parse\n";
}

/* Sort a comma list of items so that sets compare equal. */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void sorted_set(const char *list, char *out, size_t outlen)
{
    char copy[1024], *items[MAX_ITEMS], *save = NULL;
    size_t n = 0, o = 0;
    snprintf(copy, sizeof(copy), "%s", list);
    for (char *t = strtok_r(copy, ",", &save); t && n < MAX_ITEMS; t = strtok_r(NULL, ",", &save))
        if (strcmp(t, "-") != 0)
            items[n++] = t;
    qsort(items, n, sizeof(items[0]), cmp_str);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(out + o, outlen - o, "%s%s", i ? "," : "", items[i]);
}

/* One statement's actual value of a field as a comma list. */
static void actual_field(const struct policy_stmt *st, const char *field, struct buf *b)
{
    if (strcmp(field, "kind") == 0) {
        buf_append_str(b, st->kind);
    } else if (strcmp(field, "kinds") == 0) {
        for (size_t i = 0; i < st->nkinds; i++)
            buf_printf(b, "%s%s", i ? "," : "", st->kinds[i]);
    } else if (strcmp(field, "rels") == 0) {
        for (size_t i = 0; i < st->nrelations; i++)
            buf_printf(b, "%s%s:%s.%s", i ? "," : "", st->relations[i].write ? "w" : "r",
                       st->relations[i].schema ? st->relations[i].schema : "public", st->relations[i].name);
    } else if (strcmp(field, "funcs") == 0) {
        for (size_t i = 0; i < st->nfunctions; i++)
            buf_printf(b, "%s%s", i ? "," : "", st->functions[i]);
    } else if (strcmp(field, "facts") == 0) {
        int n = 0;
        for (unsigned bit = 1; bit && bit <= POLICY_FACT_LAST; bit <<= 1)
            if ((st->facts & bit) && bit != POLICY_FACT_WRITES && bit != POLICY_FACT_PREPARED)
                buf_printf(b, "%s%s", n++ ? "," : "", policy_fact_name(bit));
    }
    buf_cstr(b);
}

struct corpus_stats {
    int records, statements, failures;
};

/* Check one record; returns the number of mismatches (printed). */
static int check_record(struct policy *p, const char *sql, const char *expect, int line,
                        struct corpus_stats *stats)
{
    int bad = 0;
    struct policy_session *s = policy_session_new();
    struct policy_decision d;
    struct policy_analysis a;
    assert_non_null(s);
    assert_int_equal(policy_check(p, s, sql, NULL, &d, &a), 0);
    stats->records++;
    stats->statements += (int)a.nstmts;
    /* Every kind the classifier gives is one a policy may name. */
    for (size_t i = 0; i < a.nstmts; i++)
        for (size_t k = 0; k < a.stmts[i].nkinds; k++)
            if (!policy_kind_pattern_known(a.stmts[i].kinds[k])) {
                printf("line %d: kind %s is not known to policy validation\n", line, a.stmts[i].kinds[k]);
                bad++;
            }
    char exp_copy[4096], *save = NULL;
    snprintf(exp_copy, sizeof(exp_copy), "%s", expect);
    for (char *tok = strtok_r(exp_copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) {
            printf("line %d: bad expectation token '%s'\n", line, tok);
            bad++;
            continue;
        }
        *eq = '\0';
        const char *field = tok;
        char *want = eq + 1;
        for (char *c = want; *c; c++)
            if (*c == '~')
                *c = ' '; /* '~' stands for a space inside an expected name */
        if (strcmp(field, "decision") == 0) {
            if (strcmp(policy_action_name(d.action), want) != 0) {
                printf("line %d: decision: want %s, got %s (%s: %s)\n", line, want,
                       policy_action_name(d.action), d.rule_name, d.message);
                bad++;
            }
            continue;
        }
        if (strcmp(field, "rule") == 0) {
            if (strcmp(d.rule_name, want) != 0) {
                printf("line %d: rule: want %s, got %s\n", line, want, d.rule_name);
                bad++;
            }
            continue;
        }
        if (strcmp(field, "stmts") == 0) {
            if ((size_t)atoi(want) != a.nstmts) {
                printf("line %d: stmts: want %s, got %zu\n", line, want, a.nstmts);
                bad++;
            }
            continue;
        }
        /* Per-statement fields: values for statements separated by '|'. */
        char wcopy[1024], *wsave = NULL;
        snprintf(wcopy, sizeof(wcopy), "%s", want);
        size_t idx = 0;
        for (char *part = strtok_r(wcopy, "|", &wsave); part; part = strtok_r(NULL, "|", &wsave), idx++) {
            if (idx >= a.nstmts) {
                printf("line %d: %s: expectation for statement %zu, only %zu statements\n", line, field,
                       idx + 1, a.nstmts);
                bad++;
                break;
            }
            struct buf got = {0};
            actual_field(&a.stmts[idx], field, &got);
            char ws[1024], gs[1024];
            if (strcmp(field, "kind") == 0) {
                snprintf(ws, sizeof(ws), "%s", part);
                snprintf(gs, sizeof(gs), "%s", got.data ? (char *)got.data : "");
            } else {
                sorted_set(part, ws, sizeof(ws));
                sorted_set(got.data ? (char *)got.data : "", gs, sizeof(gs));
            }
            if (strcmp(ws, gs) != 0) {
                printf("line %d: statement %zu %s: want [%s], got [%s]\n", line, idx + 1, field, ws, gs);
                bad++;
            }
            buf_free(&got);
        }
    }
    if (bad)
        printf("    sql: %s\n", sql);
    policy_analysis_free(&a);
    policy_session_free(s);
    return bad;
}

/* Kind patterns: a misspelt kind is unknown; globs and fallbacks are known. */
static void test_kind_patterns(void **state)
{
    (void)state;
    static const char *const known[] = {"DROP_TABLE", "DROP_*", "ALTER_MATERIALIZED_VIEW", "CREATE_CONVERSION",
                                        "CHECK_POINT", "CLUSTER", "REINDEX", "DROP_OWNED", "REASSIGN_OWNED",
                                        "CREATE_AGGREGATE", "SEC_LABEL", "IMPORT_FOREIGN_SCHEMA", "*",
                                        "CREATE_SEQUENCE", "CREATE_SEQ", "ALTER_PROCEDURE", "CREATE_TABLESPACE",
                                        "CREATE_TYPE", "ALTER_TYPE", NULL};
    /* CREATE_COLUMN: an object type, but no statement creates one by that name. */
    static const char *const unknown[] = {"DROP_TABL", "DROPTABLE", "SELEKT", "ALTER_TABLES", "X*", "CREATE_COLUMN",
                                          NULL};
    for (size_t i = 0; known[i]; i++)
        if (!policy_kind_pattern_known(known[i]))
            fail_msg("%s should be a known kind", known[i]);
    for (size_t i = 0; unknown[i]; i++)
        if (policy_kind_pattern_known(unknown[i]))
            fail_msg("%s should not be a known kind", unknown[i]);
}

static void test_corpus(void **state)
{
    (void)state;
    const char *root = getenv("HOOPCTL_ROOT");
    char path[1024];
    snprintf(path, sizeof(path), "%s/tests/unit/data/policy_corpus.txt", root ? root : ".");
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s", path);
    struct policy *p = policy_load_default();
    assert_non_null(p);
    struct corpus_stats stats = {0};
    struct buf sql = {0};
    char line[4096];
    int lineno = 0, sql_line = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        if (sql.len == 0 && (line[0] == '#' || line[0] == '\n'))
            continue;
        if (strncmp(line, "=> ", 3) == 0) {
            line[strcspn(line, "\n")] = '\0';
            if (sql.len && sql.data[sql.len - 1] == '\n')
                sql.len--; /* the record's last newline is not part of the SQL */
            stats.failures += check_record(p, buf_cstr(&sql), line + 3, sql_line, &stats);
            buf_reset(&sql);
            continue;
        }
        if (sql.len == 0)
            sql_line = lineno;
        buf_append_str(&sql, line);
    }
    fclose(f);
    assert_int_equal(sql.len, 0); /* no record without an expectation */
    buf_free(&sql);
    policy_free(p);
    printf("corpus: %d records, %d statements, %d mismatches\n", stats.records, stats.statements,
           stats.failures);
    assert_true(stats.statements >= 150);
    assert_int_equal(stats.failures, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind_patterns),
        cmocka_unit_test(test_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
