/* results.c — which statement a result set belongs to: the statements a
 * session forwarded whose results may still come, each under the position
 * the gateway names when upstream answers it (the statement hook's id, and
 * the statement's index in its Query), so that a RowDescription or COPY is
 * masked as its own statement says. Errors and notices are judged by every
 * statement since the session was last idle. */
#include "policy_internal.h"

#include <stdlib.h>
#include <string.h>

#define RESULTS_MAX 256   /* beyond this the oldest entries are folded together */

struct results_entry {
    struct policy_stmt stmt;
    enum policy_action action;      /* its own decision: MASK matters here */
    enum policy_mask_style style;
    bool may_return_rows;
    bool layouts_differ;            /* folded from COPYs of different layouts */
    struct policy_result_pos first, last; /* the statements it stands for: one, or more once folded */
};

struct policy_results {
    struct results_entry *entries;  /* oldest first */
    size_t n, cap;
};

/* Whether a statement of this kind may return rows. */
static bool kind_may_return_rows(const char *kind)
{
    static const char *const none[] = {"INSERT", "UPDATE", "DELETE", "MERGE", "SET", "RESET", "DISCARD",
                                       "PREPARE", "DEALLOCATE", "DECLARE_CURSOR", "CLOSE", "MOVE", "LISTEN",
                                       "UNLISTEN", "NOTIFY", "DO", NULL};
    for (size_t i = 0; none[i]; i++)
        if (strcmp(kind, none[i]) == 0)
            return false;
    const char *cat = policy_kind_category(kind);
    return !(strcmp(cat, "transaction") == 0 || strcmp(cat, "ddl") == 0 || strcmp(cat, "system") == 0);
}

bool policy_stmt_may_return_rows(const struct policy_stmt *st)
{
    if (st->returning || (st->facts & (POLICY_FACT_EXPLAIN_ANALYZE | POLICY_FACT_COPY_OUT |
                                       POLICY_FACT_UNKNOWN_PREPARED | POLICY_FACT_UNKNOWN_CURSOR)))
        return true;
    if (!st->kind || st->nkinds == 0)
        return true;
    if (policy_stmt_has_kind(st, POLICY_KINDS("SELECT_INTO")))
        return false;
    if (strcmp(st->kind, "EXECUTE") != 0)
        return kind_may_return_rows(st->kind);
    /* EXECUTE runs the prepared statement, whose kinds it holds; a name
     * prepared twice holds both, so any of them may be what runs. */
    bool known = false;
    for (size_t i = 0; i < st->nkinds; i++) {
        if (strcmp(st->kinds[i], "EXECUTE") == 0)
            continue;
        if (kind_may_return_rows(st->kinds[i]))
            return true;
        known = true;
    }
    return !known;
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

static int pos_cmp(const struct policy_result_pos *a, const struct policy_result_pos *b)
{
    if (a->id != b->id)
        return a->id < b->id ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* Fold the second entry into the first: their union stands for both. A
 * COPY's layout goes with it; two that differ are told apart no more
 * (copy_layout). 0 or -1 when memory runs out. */
static int fold_oldest(struct policy_results *r)
{
    struct results_entry *e0 = &r->entries[0], *e1 = &r->entries[1];
    bool copy0 = e0->stmt.facts & POLICY_FACT_COPY_OUT, copy1 = e1->stmt.facts & POLICY_FACT_COPY_OUT;
    e0->layouts_differ = e0->layouts_differ || e1->layouts_differ ||
                         (copy0 && copy1 && (e0->stmt.copy_csv != e1->stmt.copy_csv ||
                                             e0->stmt.copy_header != e1->stmt.copy_header));
    if (copy1 && !copy0) {
        e0->stmt.copy_csv = e1->stmt.copy_csv;
        e0->stmt.copy_header = e1->stmt.copy_header;
    }
    if (policy_stmt_merge(&e0->stmt, &e1->stmt) < 0)
        return -1;
    if (e1->action == POLICY_MASK && e0->action != POLICY_MASK) {
        e0->action = POLICY_MASK;
        e0->style = e1->style;
    }
    e0->may_return_rows = e0->may_return_rows || e1->may_return_rows;
    e0->last = e1->last;
    drop(r, 1);
    return 0;
}

/* The candidates for a result answered at pos: entries [*from, *to). The
 * one that stands for pos (none when pos is no statement of ours, or one
 * not kept); every entry when pos is NULL (the gateway lost count). What
 * upstream has moved past is folded into the first entry, which owns no
 * result any more but still counts for errors and notices until the
 * session is idle: they may come from what an earlier statement did (a
 * deferred trigger, the implicit commit at the end of a Query). 0, or -1
 * when memory runs out. */
static int find(struct policy_results *r, const struct policy_result_pos *pos, size_t *from, size_t *to)
{
    *from = 0;
    *to = r->n;
    if (!pos)
        return 0;
    *to = 0;
    if (!pos->id)
        return 0;
    while (r->n >= 2 && pos_cmp(&r->entries[1].last, pos) < 0)
        if (fold_oldest(r) < 0)
            return -1;
    for (size_t i = 0; i < r->n && i < 2; i++)
        if (pos_cmp(&r->entries[i].last, pos) >= 0) {
            if (pos_cmp(&r->entries[i].first, pos) <= 0) {
                *from = i;
                *to = i + 1;
            }
            break;
        }
    return 0;
}

/* Take a's statements, with their actions and styles from p for groups (p
 * NULL: allow). */
static int push(struct policy_results *r, struct policy_analysis *a, const struct policy *p,
                const char *const *groups, const struct policy_decision *whole, uint64_t id)
{
    for (size_t i = 0; i < a->nstmts; i++) {
        if (r->n == RESULTS_MAX && fold_oldest(r) < 0)
            return -1;
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
        e->layouts_differ = false;
        e->first = e->last = (struct policy_result_pos){id, (uint32_t)i};
        e->stmt = a->stmts[i]; /* taken */
        memset(&a->stmts[i], 0, sizeof(a->stmts[i]));
    }
    return 0;
}

int policy_results_push(struct policy_results *r, const struct policy *p, struct policy_analysis *a,
                        const char *const *groups, const struct policy_decision *d, uint64_t id)
{
    return push(r, a, p, groups, d, id);
}

int policy_results_push_unknown(struct policy_results *r, uint64_t id)
{
    struct policy_stmt st = {.facts = POLICY_FACT_UNKNOWN_CURSOR};
    struct policy_analysis a = {.stmts = &st, .nstmts = 1};
    if (policy_stmt_add_kind(&st, "FETCH") < 0)
        return -1;
    st.category = "data";
    /* No rule decides here (the DECLARE was decided): ALLOW, masked as unknown. */
    int rc = push(r, &a, NULL, NULL, NULL, id);
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
static bool copy_layout(const struct policy_results *r, size_t from, size_t to, bool *csv, bool *header)
{
    bool seen = false;
    *csv = *header = false;
    for (size_t i = from; i < to; i++) {
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

/* The plan of the statement at pos (any in flight with pos NULL: their
 * plans folded), into out. With none, or none that may return rows (rows
 * a rule returned for an INSERT), the result is nobody's known one. */
static int plan_candidates(const struct policy *p, struct policy_catalog *catalog, struct policy_results *r,
                           const struct policy_result_pos *pos, const struct policy_column_desc *cols,
                           size_t ncols, struct policy_mask_plan *out, char err[POLICY_ERR_MAX])
{
    size_t from, to;
    if (find(r, pos, &from, &to) < 0) {
        snprintf(err, POLICY_ERR_MAX, "out of memory");
        return -1;
    }
    bool owned = false;
    for (size_t i = from; i < to && !owned; i++)
        owned = r->entries[i].may_return_rows;
    if (!owned) /* nothing known: every computed column is masked */
        return plan_one(p, catalog, NULL, POLICY_ALLOW, POLICY_STYLE_FULL, cols, ncols, out, err);
    bool csv = false, header = false, layout_known = cols || copy_layout(r, from, to, &csv, &header);
    for (size_t i = from; i < to; i++) {
        const struct results_entry *e = &r->entries[i];
        struct policy_mask_plan one;
        if (plan_one(p, catalog, &e->stmt, e->action, e->style, cols, ncols, i == from ? out : &one, err) < 0) {
            if (i > from)
                policy_mask_plan_free(out);
            return -1;
        }
        if (i > from) {
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
                                   struct policy_results *r, const struct policy_result_pos *pos,
                                   const struct policy_column_desc *cols, size_t ncols,
                                   struct policy_mask_plan *out, char err[POLICY_ERR_MAX])
{
    static const struct policy_column_desc none = {0};
    return plan_candidates(p, catalog, r, pos, cols ? cols : &none, ncols, out, err);
}

int policy_mask_plan_build_copy_results(const struct policy *p, struct policy_catalog *catalog,
                                        struct policy_results *r, const struct policy_result_pos *pos,
                                        size_t ncols, struct policy_mask_plan *out, char err[POLICY_ERR_MAX])
{
    return plan_candidates(p, catalog, r, pos, NULL, ncols, out, err);
}

/* Statements whose errors may quote values their text does not name:
 * those at whose end deferred triggers and constraints run, with whatever
 * values the transaction's earlier statements touched, and REINDEX, whose
 * unique index fails with a duplicated key of a table it may not name (an
 * index, a schema, the database). */
static bool fires_deferred(const struct policy_stmt *st)
{
    return policy_stmt_has_kind(st, POLICY_KINDS("COMMIT", "PREPARE_TRANSACTION", "CONSTRAINTS_SET", "REINDEX"));
}

/* Whether a write of st may quote what its text does not read: an error of
 * a write quotes the failing row or key ("Failing row contains (...)",
 * "Key (email)=(...) is still referenced"), which holds every column of
 * the relation written, or of one a cascade or rule writes; and code
 * someone wrote on a write (a trigger, a default) may quote any column.
 * Without a catalog that can tell, every write may. With p NULL: only
 * whether a write may run code someone wrote. */
static bool write_may_quote_masked(const struct policy *p, struct policy_catalog *catalog,
                                   const struct policy_stmt *st)
{
    for (size_t i = 0; i < st->nrelations; i++) {
        const struct policy_relation *rel = &st->relations[i];
        if (!rel->write)
            continue;
        bool code = true;
        const struct policy_column_ref *cols = NULL;
        size_t ncols = 0;
        char err[POLICY_ERR_MAX];
        if (!catalog || !catalog->writes ||
            catalog->writes(catalog, rel->schema, rel->name, &code, &cols, &ncols, err) < 0 || code ||
            (p && policy_columns_masked(p, cols, ncols)))
            return true;
    }
    return false;
}


bool policy_stmt_may_quote_masked(const struct policy *p, struct policy_catalog *catalog,
                                  const struct policy_stmt *st)
{
    if (!policy_stmt_may_read_masked(p, catalog, NULL)) /* nothing is masked: no look-up */
        return false;
    return policy_stmt_may_read_masked(p, catalog, !st || write_may_quote_masked(p, catalog, st) ? NULL : st);
}

bool policy_results_may_read_masked(const struct policy *p, struct policy_catalog *catalog,
                                    struct policy_results *r)
{
    /* Every statement since the session was last idle counts: an INSERT ...
     * SELECT fails with the value it read as well, and a deferred check
     * fails at the commit that ends the Query or at COMMIT, which are
     * judged as unknown (an earlier Query of the transaction is not kept). */
    if (r->n == 0 || !policy_stmt_may_read_masked(p, catalog, NULL)) /* the latter: nothing is masked */
        return policy_stmt_may_read_masked(p, catalog, NULL);
    for (size_t i = 0; i < r->n; i++) {
        const struct policy_stmt *st = &r->entries[i].stmt;
        if (fires_deferred(st) || policy_stmt_may_quote_masked(p, catalog, st))
            return true;
    }
    return false;
}

bool policy_sqlstate_may_quote_values(const char *sqlstate)
{
    /* Only classes whose texts come from the session's state, not from data:
     * a cast or a name look-up quotes its input whatever its class
     * ("relation \"<value>\" does not exist", 42P01; 0A000, 3D000, 3F000,
     * 42704, 55000 for currval, 58P01 for a file name likewise). */
    static const char *const quiet[] = {"08", "25", "28", "40", "53", "57"};
    if (!sqlstate || strlen(sqlstate) != 5)
        return true;
    for (size_t i = 0; i < sizeof quiet / sizeof quiet[0]; i++)
        if (strncmp(sqlstate, quiet[i], 2) == 0)
            return false;
    return true;
}

/* Whether st may run code someone wrote (a function, an operator, a cast, a
 * trigger, code or SQL as text), which may raise any SQLSTATE with any
 * text. Without a catalog that can tell, any call or write may. */
static bool may_run_user_code(struct policy_catalog *catalog, const struct policy_stmt *st)
{
    if (st->facts & (POLICY_FACT_RUNS_CODE | POLICY_FACT_DYNAMIC_SQL | POLICY_FACT_UNKNOWN_CURSOR |
                     POLICY_FACT_UNKNOWN_PREPARED))
        return true;
    return policy_stmt_calls_user_code(catalog, st) || write_may_quote_masked(NULL, catalog, st);
}

/* Whether st is ANALYZE, VACUUM, CLUSTER or REINDEX, which run index and
 * statistics code over every row of what they name, or of the database
 * when they name nothing. */
static bool maintains_rows(const struct policy_stmt *st)
{
    return policy_stmt_has_kind(st, POLICY_KINDS("ANALYZE", "VACUUM", "CLUSTER", "REINDEX"));
}

/* Whether touching relation schema.name (name NULL: the whole database)
 * runs code someone wrote that the statement does not name (relation_code's
 * on_read; under maintenance, its on_maintenance too). */
static bool relation_runs_code(struct policy_catalog *catalog, const char *schema, const char *name,
                               bool maintenance)
{
    char err[POLICY_ERR_MAX];
    bool on_read = true, on_maintenance = true;
    if (!catalog || !catalog->relation_code ||
        catalog->relation_code(catalog, schema, name, &on_read, &on_maintenance, err) < 0)
        return true;
    return on_read || (maintenance && on_maintenance);
}

bool policy_stmt_calls_user_code(struct policy_catalog *catalog, const struct policy_stmt *st)
{
    char err[POLICY_ERR_MAX];
    for (size_t i = 0; i < st->nfunctions; i++) {
        bool user = true;
        if (!catalog || !catalog->function || catalog->function(catalog, st->functions[i], &user, err) < 0 || user)
            return true;
    }
    bool maintenance = maintains_rows(st);
    for (size_t i = 0; i < st->nrelations; i++)
        if (relation_runs_code(catalog, st->relations[i].schema, st->relations[i].name, maintenance))
            return true;
    return maintenance && !st->nrelations && relation_runs_code(catalog, NULL, NULL, true);
}

bool policy_error_must_hide(const struct policy *p, struct policy_catalog *catalog, struct policy_results *r,
                            const char *sqlstate)
{
    if (!policy_results_may_read_masked(p, catalog, r))
        return false;
    if (policy_sqlstate_may_quote_values(sqlstate))
        return true;
    /* A class whose server texts quote no data, but user code picks its
     * own SQLSTATE (RAISE ... USING ERRCODE), and dblink passes libpq's
     * message, input and all, under 08001. */
    for (size_t i = 0; i < r->n; i++)
        if (may_run_user_code(catalog, &r->entries[i].stmt))
            return true;
    return false;
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
