/* results.c — which statement a result set belongs to: the statements a
 * session forwarded whose results may still come, so that a RowDescription
 * or COPY is masked against every statement that may own it. A statement is
 * retired when a result that carried rows ended (the oldest first; every
 * older row-bearing result belongs to an older statement, so the owner of a
 * result still to come is never retired before it). */
#include "policy_internal.h"

#include <stdlib.h>
#include <string.h>

#define RESULTS_MAX 256   /* beyond this the oldest entries are folded together */

struct results_entry {
    struct policy_stmt stmt;
    enum policy_action action;      /* its own decision: MASK matters here */
    enum policy_mask_style style;
    bool may_return_rows;
    size_t owners;                  /* the results it may own: one, or more once folded */
    bool layouts_differ;            /* folded from COPYs of different layouts */
};

struct policy_results {
    struct results_entry *entries;  /* oldest first */
    size_t n, cap;
};

bool policy_stmt_may_return_rows(const struct policy_stmt *st)
{
    if (st->returning || (st->facts & (POLICY_FACT_EXPLAIN_ANALYZE | POLICY_FACT_COPY_OUT |
                                       POLICY_FACT_UNKNOWN_PREPARED | POLICY_FACT_UNKNOWN_CURSOR)))
        return true;
    if (!st->kind || st->nkinds == 0)
        return true;
    /* EXECUTE runs the prepared statement, whose kinds follow its own; a
     * name prepared twice holds both, so any of them may be what runs. */
    const char *kind = st->kind;
    if (strcmp(kind, "EXECUTE") == 0)
        return true;
    for (size_t i = 0; i < st->nkinds; i++)
        if (strcmp(st->kinds[i], "SELECT_INTO") == 0)
            return false;
    static const char *const none[] = {"INSERT", "UPDATE", "DELETE", "MERGE", "SET", "RESET", "DISCARD",
                                       "PREPARE", "DEALLOCATE", "DECLARE_CURSOR", "CLOSE", "MOVE", "LISTEN",
                                       "UNLISTEN", "NOTIFY", "DO", NULL};
    for (size_t i = 0; none[i]; i++)
        if (strcmp(kind, none[i]) == 0)
            return false;
    const char *cat = policy_kind_category(kind);
    return !(strcmp(cat, "transaction") == 0 || strcmp(cat, "ddl") == 0 || strcmp(cat, "system") == 0);
}

struct policy_results *policy_results_new(void)
{
    return calloc(1, sizeof(struct policy_results));
}

void policy_results_free(struct policy_results *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        policy_stmt_clear(&r->entries[i].stmt);
    free(r->entries);
    free(r);
}

/* Retire entry i. */
static void drop(struct policy_results *r, size_t i)
{
    policy_stmt_clear(&r->entries[i].stmt);
    memmove(&r->entries[i], &r->entries[i + 1], (r->n - i - 1) * sizeof(*r->entries));
    r->n--;
}

/* Statements at the head that cannot return rows are done by now. */
static void drop_done(struct policy_results *r)
{
    while (r->n && !r->entries[0].may_return_rows)
        drop(r, 0);
}

/* Take a's statements, with their actions and styles from p for groups (p
 * NULL: allow). */
static int push(struct policy_results *r, struct policy_analysis *a, const struct policy *p,
                const char *const *groups, const struct policy_decision *whole)
{
    for (size_t i = 0; i < a->nstmts; i++) {
        if (r->n == RESULTS_MAX) {
            /* Fold the two oldest together: their union may own the next result.
             * A COPY's layout goes with it; two that differ are told apart no
             * more (copy_layout). */
            struct results_entry *e0 = &r->entries[0], *e1 = &r->entries[1];
            bool copy0 = e0->stmt.facts & POLICY_FACT_COPY_OUT, copy1 = e1->stmt.facts & POLICY_FACT_COPY_OUT;
            e0->layouts_differ = e0->layouts_differ || e1->layouts_differ ||
                                 (copy0 && copy1 && (e0->stmt.copy_csv != e1->stmt.copy_csv ||
                                                     e0->stmt.copy_header != e1->stmt.copy_header));
            if (copy1 && !copy0) {
                e0->stmt.copy_csv = e1->stmt.copy_csv;
                e0->stmt.copy_header = e1->stmt.copy_header;
            }
            if (policy_stmt_merge(&r->entries[0].stmt, &r->entries[1].stmt) < 0)
                return -1;
            if (r->entries[1].action == POLICY_MASK && r->entries[0].action != POLICY_MASK) {
                r->entries[0].action = POLICY_MASK;
                r->entries[0].style = r->entries[1].style;
            }
            /* It stays until as many results as both may own have ended. */
            size_t owners = (r->entries[0].may_return_rows ? r->entries[0].owners : 0) +
                            (r->entries[1].may_return_rows ? r->entries[1].owners : 0);
            r->entries[0].owners = owners ? owners : 1;
            r->entries[0].may_return_rows = true;
            drop(r, 1);
        }
        if (r->n == r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 8;
            struct results_entry *ne = realloc(r->entries, cap * sizeof(*ne));
            if (!ne)
                return -1;
            r->entries = ne;
            r->cap = cap;
        }
        struct results_entry *e = &r->entries[r->n++];
        struct policy_decision d = {.action = POLICY_ALLOW};
        if (whole && a->nstmts == 1)
            d = *whole; /* one statement: the string's decision is its own */
        else if (p)
            policy_decide_stmt(p, &a->stmts[i], groups, &d);
        e->action = d.action;
        e->style = d.mask_style;
        e->may_return_rows = policy_stmt_may_return_rows(&a->stmts[i]);
        e->owners = 1;
        e->layouts_differ = false;
        e->stmt = a->stmts[i]; /* taken */
        memset(&a->stmts[i], 0, sizeof(a->stmts[i]));
    }
    return 0;
}

int policy_results_push(struct policy_results *r, const struct policy *p, struct policy_analysis *a,
                        const char *const *groups, const struct policy_decision *d)
{
    return push(r, a, p, groups, d);
}

int policy_results_push_unknown(struct policy_results *r)
{
    struct policy_stmt st = {.facts = POLICY_FACT_UNKNOWN_CURSOR};
    struct policy_analysis a = {.stmts = &st, .nstmts = 1};
    if (policy_stmt_add_kind(&st, "FETCH") < 0)
        return -1;
    st.category = "data";
    /* No rule decides here (the DECLARE was decided): ALLOW, masked as unknown. */
    int rc = push(r, &a, NULL, NULL, NULL);
    policy_stmt_clear(&st);
    return rc;
}

/* Fold plan b into a: a column is masked when either masks it (full when
 * their styles differ), detected when either detects. */
static void plan_fold(struct policy_mask_plan *a, const struct policy_mask_plan *b)
{
    for (size_t i = 0; i < a->ncols && i < b->ncols; i++) {
        struct policy_column_plan *x = &a->cols[i];
        const struct policy_column_plan *y = &b->cols[i];
        if (y->action == POLICY_COL_MASK) {
            if (x->action == POLICY_COL_MASK && x->style != y->style)
                x->style = POLICY_STYLE_FULL;
            else if (x->action != POLICY_COL_MASK)
                x->style = y->style;
            x->action = POLICY_COL_MASK;
            x->detect = false;
            if (strcmp(x->label, y->label) != 0 && strchr(y->label, '.'))
                memcpy(x->label, y->label, sizeof(x->label));
        } else if (y->detect && x->action != POLICY_COL_MASK) {
            x->detect = true;
            x->style = y->style;
        }
        a->any = a->any || b->any;
    }
}

/* The plan of one candidate: for a RowDescription (cols) or a COPY (ncols). */
static int plan_one(const struct policy *p, struct policy_catalog *catalog, const struct policy_stmt *st,
                    enum policy_action action, enum policy_mask_style style, const struct policy_column_desc *cols,
                    size_t ncols, struct policy_mask_plan *out, char err[POLICY_ERR_MAX])
{
    if (cols)
        return policy_mask_plan_build(p, catalog, st, action, style, cols, ncols, out, err);
    return policy_mask_plan_build_copy_catalog(p, catalog, st, action, ncols, out, err);
}

/* The layout of a COPY's rows (CSV or text, a header or not), the same for
 * every candidate COPY TO; false when they differ (which one sent the rows
 * cannot be told, and a header taken for data, or data for a header, would
 * pass unmasked: refused when there is something to mask). */
static bool copy_layout(const struct policy_results *r, bool *csv, bool *header)
{
    bool seen = false;
    *csv = *header = false;
    for (size_t i = 0; i < r->n; i++) {
        const struct policy_stmt *st = &r->entries[i].stmt;
        if (!(st->facts & POLICY_FACT_COPY_OUT))
            continue;
        if (r->entries[i].layouts_differ || (seen && (st->copy_csv != *csv || st->copy_header != *header)))
            return false;
        seen = true;
        *csv = st->copy_csv;
        *header = st->copy_header;
    }
    return true;
}

/* Every candidate's plan, folded into out. Statements that cannot return
 * rows stay candidates here: a RowDescription may answer a client's
 * Describe while they have not run yet (their errors and notices come
 * later, and are judged by what is left). They only add masking; but when
 * no statement left may return rows (rows a rule returned for an INSERT),
 * the result is nobody's known one. */
static int plan_candidates(const struct policy *p, struct policy_catalog *catalog, struct policy_results *r,
                           const struct policy_column_desc *cols, size_t ncols, struct policy_mask_plan *out,
                           char err[POLICY_ERR_MAX])
{
    bool owned = false;
    for (size_t i = 0; i < r->n && !owned; i++)
        owned = r->entries[i].may_return_rows;
    if (!owned) /* nothing known: every computed column is masked */
        return plan_one(p, catalog, NULL, POLICY_ALLOW, POLICY_STYLE_FULL, cols, ncols, out, err);
    bool csv = false, header = false, layout_known = cols || copy_layout(r, &csv, &header);
    for (size_t i = 0; i < r->n; i++) {
        const struct results_entry *e = &r->entries[i];
        struct policy_mask_plan one;
        if (plan_one(p, catalog, &e->stmt, e->action, e->style, cols, ncols, i == 0 ? out : &one, err) < 0) {
            if (i > 0)
                policy_mask_plan_free(out);
            return -1;
        }
        if (i > 0) {
            plan_fold(out, &one);
            policy_mask_plan_free(&one);
        }
    }
    if (!cols) {
        out->csv = csv;
        out->header = header;
    }
    if (!layout_known && out->any) {
        policy_mask_plan_free(out);
        snprintf(err, POLICY_ERR_MAX, "COPY statements of different layouts may have sent these rows");
        return -1;
    }
    return 0;
}

int policy_mask_plan_build_results(const struct policy *p, struct policy_catalog *catalog,
                                   struct policy_results *r, const struct policy_column_desc *cols, size_t ncols,
                                   struct policy_mask_plan *out, char err[POLICY_ERR_MAX])
{
    static const struct policy_column_desc none = {0};
    return plan_candidates(p, catalog, r, cols ? cols : &none, ncols, out, err);
}

int policy_mask_plan_build_copy_results(const struct policy *p, struct policy_catalog *catalog,
                                        struct policy_results *r, size_t ncols, struct policy_mask_plan *out,
                                        char err[POLICY_ERR_MAX])
{
    return plan_candidates(p, catalog, r, NULL, ncols, out, err);
}

bool policy_results_may_read_masked(const struct policy *p, struct policy_catalog *catalog,
                                    struct policy_results *r)
{
    /* Statements that cannot return rows stay candidates here: an INSERT ...
     * SELECT fails with the value it read as well. */
    if (r->n == 0)
        return policy_stmt_may_read_masked(p, catalog, NULL);
    for (size_t i = 0; i < r->n; i++)
        if (policy_stmt_may_read_masked(p, catalog, &r->entries[i].stmt))
            return true;
    return false;
}

bool policy_sqlstate_may_quote_values(const char *sqlstate)
{
    static const char *const quiet[] = {"08", "0A", "25", "26", "28", "3D", "3F", "40",
                                        "42", "53", "54", "55", "57", "58"};
    if (!sqlstate || strlen(sqlstate) != 5)
        return true;
    for (size_t i = 0; i < sizeof quiet / sizeof quiet[0]; i++)
        if (strncmp(sqlstate, quiet[i], 2) == 0)
            return false;
    return true;
}

bool policy_error_must_hide(const struct policy *p, struct policy_catalog *catalog, struct policy_results *r,
                            const char *sqlstate)
{
    return policy_sqlstate_may_quote_values(sqlstate) && policy_results_may_read_masked(p, catalog, r);
}

bool policy_results_empty(const struct policy_results *r)
{
    return r->n == 0;
}

bool policy_notification_must_hide(const struct policy *p, struct policy_catalog *catalog,
                                   struct policy_results *r)
{
    return !policy_results_empty(r) && policy_results_may_read_masked(p, catalog, r);
}

void policy_results_clear(struct policy_results *r)
{
    while (r->n)
        drop(r, r->n - 1);
}

void policy_results_done(struct policy_results *r)
{
    drop_done(r);
    if (r->n && r->entries[0].owners > 1)
        r->entries[0].owners--;
    else if (r->n)
        drop(r, 0);
}
