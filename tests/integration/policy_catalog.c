/* policy_catalog.c — test driver: runs SQL against the harness's PostgreSQL
 * (PG* environment) and passes every result through the policy engine the
 * way the gateway will: RowDescription -> mask plan via the libpq catalog
 * resolver, every value -> policy_mask_value, COPY rows -> policy_mask_copy_row.
 *   policy_catalog [--binary] POLICY_FILE SQL...
 * Prints "decision: ..." per SQL, then "row: v1|v2|..." per row (NULL for SQL
 * NULL, hex:... for binary values of non-text types), then the counters. */
#include "hoopctl/policy.h"
#include "hoopctl/util.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_text_oid(Oid t)
{
    return t == 25 || t == 1043 || t == 1042 || t == 19 || t == 114;
}

static void print_value(const uint8_t *v, size_t len, Oid type, int format)
{
    if (format == 0 || is_text_oid(type)) {
        fwrite(v, 1, len, stdout);
    } else if (type == 3802 && len > 0) {
        fwrite(v + 1, 1, len - 1, stdout); /* jsonb binary: version byte */
    } else {
        fputs("hex:", stdout);
        for (size_t i = 0; i < len; i++)
            printf("%02x", v[i]);
    }
}

static void print_counters(const struct policy_mask_plan *plan)
{
    json_t *c = policy_mask_counters_json(plan);
    char *s = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
    printf("counters: %s\n", s);
    free(s);
    json_decref(c);
}

static int run_copy(PGconn *conn, struct policy *p, const struct policy_stmt *st, enum policy_action action,
                    PGresult *res)
{
    char err[POLICY_ERR_MAX];
    struct policy_mask_plan plan;
    if (policy_mask_plan_build_copy(p, st, action, (size_t)PQnfields(res), &plan, err) < 0) {
        fprintf(stderr, "copy plan: %s\n", err);
        return -1;
    }
    char *row;
    int n, rc = 0;
    while ((n = PQgetCopyData(conn, &row, 0)) > 0) {
        struct buf out = {0};
        if (policy_mask_copy_row(p, &plan, (uint8_t *)row, (size_t)n, &out, err) < 0) {
            fprintf(stderr, "copy row refused: %s\n", err);
            rc = -1;
        } else {
            fputs("copy: ", stdout);
            fwrite(out.data, 1, out.len, stdout);
        }
        buf_free(&out);
        PQfreemem(row);
    }
    PGresult *end = PQgetResult(conn);
    PQclear(end);
    print_counters(&plan);
    policy_mask_plan_free(&plan);
    return rc;
}

static int run_one(PGconn *conn, struct policy *p, struct policy_catalog *cat, const char *sql, bool binary)
{
    char err[POLICY_ERR_MAX];
    struct policy_decision d;
    struct policy_analysis a;
    if (policy_check(p, NULL, sql, NULL, &d, &a) < 0)
        return -1;
    printf("decision: %s %s\n", policy_action_name(d.action), d.rule_name);
    if (d.action == POLICY_DENY || d.action == POLICY_REVIEW) {
        policy_analysis_free(&a);
        return 0;
    }
    const struct policy_stmt *st = a.nstmts ? &a.stmts[a.nstmts - 1] : NULL;
    PGresult *res = PQexecParams(conn, sql, 0, NULL, NULL, NULL, NULL, binary ? 1 : 0);
    int rc = 0;
    if (PQresultStatus(res) == PGRES_COPY_OUT) {
        rc = run_copy(conn, p, st, d.action, res);
    } else if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        int nf = PQnfields(res);
        struct policy_column_desc *cols = calloc((size_t)nf + 1, sizeof(*cols));
        for (int i = 0; i < nf; i++)
            cols[i] = (struct policy_column_desc){PQfname(res, i), PQftable(res, i), (int16_t)PQftablecol(res, i),
                                                  PQftype(res, i), (int16_t)PQfformat(res, i)};
        struct policy_mask_plan plan;
        if (policy_mask_plan_build(p, cat, st, d.action, d.mask_style, cols, (size_t)nf, &plan, err) < 0) {
            fprintf(stderr, "plan: %s\n", err);
            rc = -1;
        } else {
            for (int r = 0; r < PQntuples(res); r++) {
                fputs("row: ", stdout);
                for (int c = 0; c < nf; c++) {
                    if (c)
                        fputc('|', stdout);
                    if (PQgetisnull(res, r, c)) {
                        fputs("NULL", stdout);
                        continue;
                    }
                    const uint8_t *v = (const uint8_t *)PQgetvalue(res, r, c);
                    size_t len = (size_t)PQgetlength(res, r, c);
                    uint8_t *out = NULL;
                    size_t outlen = 0;
                    int m = plan.any ? policy_mask_value(p, &plan, (size_t)c, v, len, &out, &outlen, err) : 0;
                    if (m < 0) {
                        fprintf(stderr, "mask: %s\n", err);
                        rc = -1;
                    } else if (m == 2) {
                        fputs("NULL", stdout);
                    } else if (m == 1) {
                        print_value(out, outlen, PQftype(res, c), PQfformat(res, c));
                    } else {
                        print_value(v, len, PQftype(res, c), PQfformat(res, c));
                    }
                    free(out);
                }
                fputc('\n', stdout);
            }
            print_counters(&plan);
            policy_mask_plan_free(&plan);
        }
        free(cols);
    } else if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        fprintf(stderr, "query failed: %s", PQerrorMessage(conn));
        rc = -1;
    } else if (cat && cat->forget && st && strcmp(st->category, "ddl") == 0) {
        cat->forget(cat); /* as the gateway does after DDL ran */
    }
    PQclear(res);
    policy_analysis_free(&a);
    return rc;
}

int main(int argc, char **argv)
{
    bool binary = argc > 1 && strcmp(argv[1], "--binary") == 0;
    int first = binary ? 2 : 1;
    if (argc < first + 2) {
        fprintf(stderr, "usage: %s [--binary] POLICY_FILE SQL...\n", argv[0]);
        return 2;
    }
    char err[POLICY_ERR_MAX];
    struct policy *p = policy_load_file(argv[first], err);
    if (!p) {
        fprintf(stderr, "policy: %s\n", err);
        return 1;
    }
    PGconn *conn = PQconnectdb("");
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "connect: %s", PQerrorMessage(conn));
        return 1;
    }
    const char *catinfo = getenv("POLICY_CATALOG_CONNINFO");
    struct policy_catalog *cat = policy_catalog_pg_new(catinfo ? catinfo : "", err);
    if (!cat)
        fprintf(stderr, "catalog: %s (masking fails closed)\n", err);
    int rc = 0;
    for (int i = first + 1; i < argc; i++)
        if (run_one(conn, p, cat, argv[i], binary) < 0)
            rc = 1;
    policy_catalog_free(cat);
    PQfinish(conn);
    policy_free(p);
    return rc;
}
