/* guard.c — one client session's policy at the gateway's hook points (see
 * policy_guard.h): judging statements, building and applying mask plans,
 * and the redaction of errors and notifications. */
#include "hoopctl/policy_guard.h"
#include "policy_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hoopctl/log.h"

int policy_guard_init(struct policy_guard *g, struct policy *p, const char *catalog_conninfo,
                      const char *log_module, const char *label)
{
    memset(g, 0, sizeof *g);
    g->policy = p;
    g->catalog_conninfo = catalog_conninfo;
    g->log_module = log_module;
    snprintf(g->label, sizeof g->label, "%s", label);
    g->tracker = policy_session_new();
    g->results = policy_results_new();
    if (!g->tracker || !g->results) {
        policy_guard_free(g);
        return -1;
    }
    return 0;
}

bool policy_guard_is_dump_client(const char *application_name)
{
    return application_name &&
           (strcmp(application_name, "pg_dump") == 0 || strcmp(application_name, "pg_dumpall") == 0);
}

void policy_guard_set_client(struct policy_guard *g, const char *application_name)
{
    g->dump_client = policy_guard_is_dump_client(application_name);
}

static void forget_plans(struct policy_guard *g)
{
    if (g->have_plan)
        policy_mask_plan_free(&g->plan);
    if (g->have_copy_plan)
        policy_mask_plan_free(&g->copy_plan);
    g->have_plan = g->have_copy_plan = false;
    memset(&g->plan, 0, sizeof g->plan);
    memset(&g->copy_plan, 0, sizeof g->copy_plan);
}

void policy_guard_forget_statement(struct policy_guard *g)
{
    if (g->have_analysis)
        policy_analysis_free(&g->analysis);
    g->have_analysis = false;
    memset(&g->analysis, 0, sizeof g->analysis);
}

void policy_guard_free(struct policy_guard *g)
{
    policy_guard_forget_statement(g);
    forget_plans(g);
    if (g->catalog)
        policy_catalog_free(g->catalog);
    policy_results_free(g->results);
    policy_session_free(g->tracker);
    memset(g, 0, sizeof *g);
}

struct policy_catalog *policy_guard_catalog(struct policy_guard *g)
{
    if (!g->catalog && !g->catalog_failed) {
        char err[POLICY_ERR_MAX];
        g->catalog = policy_catalog_pg_new(g->catalog_conninfo, err);
        if (!g->catalog) {
            g->catalog_failed = true; /* every table and computed column is then masked (fail closed) */
            log_warn(g->log_module, "%s: catalog look-ups unavailable: %s", g->label, err);
        }
    }
    return g->catalog;
}

/* The catalog caches names, views and functions; DDL may change them. */
static void catalog_forget(struct policy_guard *g)
{
    if (g->catalog && g->catalog->forget)
        g->catalog->forget(g->catalog);
}

/* The catalog to mask by: none while the session's own DDL may be
 * uncommitted, which the catalog's connection cannot see (every table
 * column is then masked: fail closed). */
static struct policy_catalog *mask_catalog(struct policy_guard *g)
{
    return g->ddl_pending ? NULL : policy_guard_catalog(g);
}

static void deny(struct policy_decision *d, const char *rule, const char *message)
{
    d->action = POLICY_DENY;
    snprintf(d->rule_name, sizeof d->rule_name, "%s", rule);
    snprintf(d->message, sizeof d->message, "%s", message);
}

/* A COPY TO STDOUT in a format that cannot be masked, of data that needs
 * masking the parse tree alone cannot see (a view, user code): refused now
 * rather than failing (and closing the session) once rows flow. The policy
 * has refused those whose masking the text shows already. */
static void deny_unmaskable_copy(struct policy_guard *g)
{
    struct policy_decision *d = &g->decision;
    for (size_t i = 0; d->action != POLICY_DENY && i < g->analysis.nstmts; i++) {
        const struct policy_stmt *ps = &g->analysis.stmts[i];
        if (!(ps->facts & POLICY_FACT_COPY_OUT) || !(ps->facts & POLICY_FACT_COPY_CUSTOM))
            continue;
        struct policy_mask_plan plan;
        char err[POLICY_ERR_MAX];
        if (policy_mask_plan_build_copy_catalog(g->policy, mask_catalog(g), ps, d->action, 0, &plan, err) < 0)
            deny(d, "masked-copy-format", err);
        else
            policy_mask_plan_free(&plan);
    }
}

/* pg_dump and pg_dumpall write what they read into a dump that is meant to
 * restore: a COPY whose every field is masked comes as \N (COPY carries no
 * column types to mask by), which they take for the data, exit 0 on, and
 * show the NOTICE that says so only with -v; the dump then fails at
 * restore (NOT NULL) or restores NULLs. Refused for them before it runs,
 * saying what dumps the table (the same plan as policy_guard_copy_out's:
 * every column masked). */
static void deny_dump_masked_copy(struct policy_guard *g)
{
    struct policy_decision *d = &g->decision;
    for (size_t i = 0; g->dump_client && d->action != POLICY_DENY && i < g->analysis.nstmts; i++) {
        const struct policy_stmt *ps = &g->analysis.stmts[i];
        if (!(ps->facts & POLICY_FACT_COPY_OUT))
            continue;
        struct policy_mask_plan plan;
        char err[POLICY_ERR_MAX];
        bool masked = true; /* no plan: refused (deny_unmaskable_copy has said why for a custom format) */
        if (policy_mask_plan_build_copy_catalog(g->policy, mask_catalog(g), ps, d->action, 1, &plan, err) == 0) {
            masked = plan.ncols == 1 && plan.cols[0].action == POLICY_COL_MASK;
            policy_mask_plan_free(&plan);
        }
        if (!masked)
            continue;
        char name[2 * POLICY_NAME_MAX + 2] = "";
        for (size_t r = 0; !name[0] && r < ps->nrelations; r++)
            if (ps->relations[r].read && ps->relations[r].name)
                snprintf(name, sizeof name, "%s%s%s", ps->relations[r].schema ? ps->relations[r].schema : "",
                         ps->relations[r].schema ? "." : "", ps->relations[r].name);
        char msg[POLICY_ERR_MAX];
        if (name[0] && strlen(name) <= 56) /* (the message fits twice 56 bytes) */
            snprintf(msg, sizeof msg,
                     "%.56s has masked columns, and COPY cannot mask them; dump it with pg_dump --inserts (masked"
                     " values) or leave its data out with --exclude-table-data=%.56s",
                     name, name);
        else if (name[0])
            snprintf(msg, sizeof msg,
                     "%.100s has masked columns, and COPY cannot mask them; dump it with pg_dump --inserts (masked"
                     " values) or leave its data out with --exclude-table-data",
                     name);
        else
            snprintf(msg, sizeof msg, "this COPY reads masked data, and COPY cannot mask it; dump with pg_dump"
                                      " --inserts (masked values) or leave the table's data out with"
                                      " --exclude-table-data");
        deny(d, "masked-copy-dump", msg);
        d->stmt_index = i;
    }
}

/* The masked-copy refusal through the catalog: a statement that copies
 * values from a view, partition or child table of a masked table, which
 * names alone do not show (the policy refused those they show). */
static void deny_catalog_masked_copy(struct policy_guard *g, const char *const *groups)
{
    struct policy_decision *d = &g->decision;
    for (size_t i = 0; d->action != POLICY_DENY && i < g->analysis.nstmts; i++) {
        const struct policy_stmt *ps = &g->analysis.stmts[i];
        char err[POLICY_ERR_MAX];
        /* After DDL in this transaction (admitted, committed or not) the
         * side connection may not see what it made. */
        if (policy_stmt_copy_guarded(g->policy, ps, groups) &&
            policy_stmt_reads_masked_via_catalog(g->policy, g->ddl_seen ? NULL : policy_guard_catalog(g), ps,
                                                 err) != 0)
            deny(d, "masked-data-copy", err);
    }
}

/* Whether st calls a function or operator that may be user code, or
 * touches a relation whose view, rules or row security run some (no
 * catalog, or DDL it cannot see yet: any), which may close a cursor and open
 * another under its name. */
static bool calls_user_code(struct policy_guard *g, const struct policy_stmt *st)
{
    return (st->nfunctions || st->nrelations) && policy_stmt_calls_user_code(mask_catalog(g), st);
}

/* A cursor that is gone leaves its name to the next portal, which its
 * DECLARE no longer describes: CLOSE drops it (CLOSE ALL every one), COMMIT
 * those not WITH HOLD, ROLLBACK (TO SAVEPOINT) those and the ones its
 * transaction declared, DISCARD and code that may close cursors (DO, CALL,
 * a user function: all but the statement's own) every one. This runs when
 * the statement is judged, before it runs (fail closed: a FETCH after it is
 * judged as of an unknown cursor), cached decisions too; the idle hook's end
 * of a transaction catches the rest. Sessions with no cursor pay nothing. */
static void forget_closed_cursors(struct policy_guard *g)
{
    struct policy_session *t = g->tracker;
    for (size_t i = 0; i < g->analysis.nstmts && policy_session_has_cursors(t); i++) {
        const struct policy_stmt *st = &g->analysis.stmts[i];
        const char *own = st->cursor_name ? st->cursor_name : "";
        if ((st->facts & (POLICY_FACT_RUNS_CODE | POLICY_FACT_DYNAMIC_SQL)) ||
            policy_stmt_has_kind(st, POLICY_KINDS("DISCARD")) ||
            (policy_stmt_has_kind(st, POLICY_KINDS("CLOSE")) && !own[0]))
            policy_session_forget_cursors(t, NULL, POLICY_CURSORS_ALL);
        else if (policy_stmt_has_kind(st, POLICY_KINDS("ROLLBACK", "ROLLBACK_TO")))
            policy_session_forget_cursors(t, NULL, POLICY_CURSORS_THIS_TXN);
        else if (policy_stmt_has_kind(st, POLICY_KINDS("COMMIT", "PREPARE_TRANSACTION")))
            policy_session_forget_cursors(t, NULL, POLICY_CURSORS_UNHELD);
        else if (policy_stmt_has_kind(st, POLICY_KINDS("CLOSE")))
            policy_session_forget_cursors(t, own, POLICY_CURSORS_NAMED);
        else if (calls_user_code(g, st))
            policy_session_forget_cursors(t, own, POLICY_CURSORS_BUT_NAMED);
    }
}

int policy_guard_decide(struct policy_guard *g, enum gateway_statement_kind kind, const char *sql,
                        const char *const *groups)
{
    struct policy_decision *d = &g->decision;
    policy_guard_forget_statement(g);
    memset(d, 0, sizeof *d);
    if (kind == GATEWAY_STATEMENT_FUNCTION_CALL) {
        deny(d, "function-call", "the FunctionCall protocol message is not allowed");
        return 0;
    }
    if (!sql) {
        /* An Execute of a portal whose SQL the gateway does not know: one
         * DECLAREd or PREPAREd in SQL, or redefined that way since the
         * protocol defined it, or dropped. Judging it by a guess could run
         * anything, or show masked columns: refused. */
        deny(d, "untracked-portal", "Execute of a portal or prepared statement that the gateway did not see"
                                    " defined by Parse and Bind (or that SQL may have changed since): use FETCH"
                                    " for cursors and EXECUTE for statements prepared in SQL");
        return 0;
    }
    if (policy_check(g->policy, g->tracker, sql, groups, d, &g->analysis) < 0) {
        deny(d, "", "out of memory while checking the statement");
        return -1;
    }
    g->have_analysis = true;
    forget_closed_cursors(g);
    deny_unmaskable_copy(g);
    deny_catalog_masked_copy(g, groups);
    deny_dump_masked_copy(g);
    return 0;
}

void policy_guard_deny_unless_read(struct policy_guard *g, bool session_control)
{
    struct policy_decision *d = &g->decision;
    if (d->action == POLICY_DENY)
        return;
    if (!g->have_analysis) { /* (policy_guard_decide denies whatever it could not analyse) */
        deny(d, "read-only", "hoopctl mcp is read-only: a statement it could not analyse is refused");
        return;
    }
    for (size_t i = 0; i < g->analysis.nstmts; i++) {
        const struct policy_stmt *st = &g->analysis.stmts[i];
        char what[3 * POLICY_NAME_MAX + 16] = "", msg[POLICY_ERR_MAX];
        const char *why = session_control && policy_stmt_is_session_control(st)
                              ? NULL
                              : policy_stmt_not_read(st, what, sizeof what);
        if (!why)
            continue;
        snprintf(msg, sizeof msg, "hoopctl mcp is read-only (started without --allow-writes) and refused %.80s: %s",
                 what, why);
        deny(d, "read-only", msg);
        d->stmt_index = i;
        return;
    }
}

void policy_guard_set_portals(struct policy_guard *g, bool (*exists)(void *ctx, const char *name), void *ctx,
                              uint64_t portal_closes)
{
    policy_session_set_portal_check(g->tracker, exists, ctx);
    if (portal_closes != g->portal_closes) { /* a protocol Close may have closed a SQL cursor */
        policy_session_forget_cursors(g->tracker, NULL, POLICY_CURSORS_ALL);
        g->portal_closes = portal_closes;
    }
}

/* One name into f: the first sets it, a second of the same kind means all. */
static void forget_one(bool *all, const char **one, const char *name)
{
    if (!name || !name[0] || (*one && strcmp(*one, name) != 0))
        *all = true; /* "" is ALL; two different names: both (all, simply) */
    else
        *one = name;
}

void policy_guard_forget_names(const struct policy_guard *g, struct gateway_forget *f)
{
    memset(f, 0, sizeof *f);
    for (size_t i = 0; g->have_analysis && i < g->analysis.nstmts; i++) {
        const struct policy_stmt *st = &g->analysis.stmts[i];
        const char *k = st->kind ? st->kind : "";
        if (st->facts & (POLICY_FACT_RUNS_CODE | POLICY_FACT_DYNAMIC_SQL))
            f->statements = f->portals = true;
        else if (strcmp(k, "PREPARE") == 0 || strcmp(k, "DEALLOCATE") == 0)
            forget_one(&f->statements, &f->statement, st->prepared_name);
        else if (strcmp(k, "DECLARE_CURSOR") == 0 || strcmp(k, "CLOSE") == 0)
            forget_one(&f->portals, &f->portal, st->cursor_name);
        else if (strcmp(k, "DISCARD") == 0)
            f->statements = f->portals = true;
        else if (strncmp(k, "COMMIT", 6) == 0 || strncmp(k, "ROLLBACK", 8) == 0 ||
                 strcmp(k, "PREPARE_TRANSACTION") == 0 || strcmp(k, "TRANSACTION") == 0)
            f->portals = true; /* the end of a transaction (or of a savepoint) drops portals */
    }
    if (f->statements)
        f->statement = NULL;
    if (f->portals)
        f->portal = NULL;
}


/* DDL that only adds a table, index or sequence of its own (CREATE TABLE,
 * with AS too, CREATE INDEX, CREATE SEQUENCE): it leaves every committed
 * relation as the catalog's connection sees it, and what it adds has an OID
 * that connection does not know yet, whose columns are masked (fail closed)
 * until the transaction commits. */
static bool only_adds_relations(const struct policy_stmt *st)
{
    static const char *const adds[] = {"CREATE_TABLE", "CREATE_INDEX", "CREATE_SEQUENCE", NULL};
    if (st->nkinds == 0 || (st->facts & (POLICY_FACT_RUNS_CODE | POLICY_FACT_DYNAMIC_SQL)))
        return false;
    for (size_t i = 0; i < st->nkinds; i++) {
        bool found = false;
        for (size_t k = 0; adds[k] && !found; k++)
            found = strcmp(st->kinds[i], adds[k]) == 0;
        if (!found)
            return false;
    }
    return true;
}

/* DDL that may change what the catalog's connection sees of committed
 * relations, or code that may run DDL the parser cannot see (DO, CALL, a
 * function body, EXECUTE of a string). */
static bool may_run_ddl(const struct policy_stmt *st)
{
    return (strcmp(st->category, "ddl") == 0 && !only_adds_relations(st)) ||
           (st->facts & (POLICY_FACT_RUNS_CODE | POLICY_FACT_DYNAMIC_SQL));
}

int policy_guard_admit(struct policy_guard *g, const char *const *groups, uint64_t id)
{
    /* After DDL that may not be committed yet, later statements are masked
     * without the catalog; so is a string that holds DDL and more. The DDL's
     * own answers (its notices) keep the catalog. */
    if (g->ddl_seen)
        g->ddl_pending = true;
    for (size_t i = 0; g->have_analysis && i < g->analysis.nstmts; i++)
        g->relations_added = g->relations_added || (strcmp(g->analysis.stmts[i].category, "ddl") == 0 &&
                                                    only_adds_relations(&g->analysis.stmts[i]));
    for (size_t i = 0; g->have_analysis && i < g->analysis.nstmts; i++)
        if (may_run_ddl(&g->analysis.stmts[i])) {
            g->ddl_seen = true;
            g->ddl_pending = g->ddl_pending || g->analysis.nstmts > 1;
            break;
        }
    /* PostgreSQL sends a session the notifications it sent itself when its
     * transaction ends, after the statement that sent them has answered: a
     * listening session remembers that its transaction may have read
     * masked data. (Sessions that never listen pay nothing.) */
    for (size_t i = 0; g->have_analysis && i < g->analysis.nstmts; i++)
        g->listening = g->listening || policy_stmt_has_kind(&g->analysis.stmts[i], POLICY_KINDS("LISTEN"));
    if (g->listening && !g->txn_read_masked)
        for (size_t i = 0; i < (g->have_analysis ? g->analysis.nstmts : 1); i++)
            g->txn_read_masked = g->txn_read_masked ||
                                 policy_stmt_may_quote_masked(g->policy, mask_catalog(g),
                                                              g->have_analysis ? &g->analysis.stmts[i] : NULL);
    return g->have_analysis ? policy_results_push(g->results, g->policy, &g->analysis, groups, &g->decision, id)
                            : policy_results_push_unknown(g->results, id);
}

/* Whose answer upstream is sending, as the gateway counted it; NULL when it
 * is not known, and then any statement in flight may be. */
static const struct policy_result_pos *answer_pos(const struct gateway_session_info *si,
                                                  struct policy_result_pos *pos)
{
    if (!si)
        return NULL;
    *pos = (struct policy_result_pos){si->answer_id, si->answer_index};
    return pos;
}

int policy_guard_row_filter(void *guard, const struct gateway_session_info *si, int column, const uint8_t *value,
                            int32_t length, int16_t format, struct buf *out, bool *is_null)
{
    (void)si;
    (void)format;
    struct policy_guard *g = guard;
    if (!g || !g->have_plan || column < 0 || (size_t)column >= g->plan.ncols)
        return -1; /* no plan for this result: close rather than show it unmasked */
    if (length < 0) { /* SQL NULL stays NULL */
        *is_null = true;
        return 0;
    }
    const struct policy_column_plan *cp = &g->plan.cols[column];
    if (cp->action != POLICY_COL_MASK && !cp->detect)
        return buf_append(out, value, (size_t)length);
    uint8_t *masked = NULL;
    size_t n = 0;
    char err[POLICY_ERR_MAX];
    int r = policy_mask_value(g->policy, &g->plan, (size_t)column, value, (size_t)length, &masked, &n, err);
    if (r < 0) {
        log_error(g->log_module, "%s: masking failed: %s", g->label, err);
        return -1;
    }
    int rc = 0;
    if (r == 0)
        rc = buf_append(out, value, (size_t)length);
    else if (r == 1)
        rc = buf_append(out, masked, n);
    else
        *is_null = true;
    free(masked);
    return rc;
}

void policy_guard_row_description(struct policy_guard *g, const struct gateway_session_info *si,
                                  const struct pgwire_column *cols, int ncols, bool all_columns,
                                  struct gateway_row_filter *f)
{
    /* Until the mask is set, the filter is incomplete: the gateway fails the
     * session rather than pass the rows (when g is NULL or memory runs out). */
    *f = (struct gateway_row_filter){.filter = policy_guard_row_filter, .user = g, .ncols = ncols};
    if (!g)
        return;
    forget_plans(g);
    uint8_t *mask = calloc((size_t)ncols, 1);
    struct policy_column_desc *desc = calloc((size_t)ncols, sizeof *desc);
    if (!mask || !desc) {
        free(desc);
        free(mask);
        log_error(g->log_module, "%s: out of memory for a result's mask plan", g->label);
        return;
    }
    for (int i = 0; i < ncols; i++)
        desc[i] = (struct policy_column_desc){cols[i].name, cols[i].table_oid, cols[i].attnum, cols[i].type_oid,
                                              cols[i].format};
    char err[POLICY_ERR_MAX];
    struct policy_result_pos pos;
    if (policy_mask_plan_build_results(g->policy, mask_catalog(g), g->results, answer_pos(si, &pos), desc,
                                       (size_t)ncols, &g->plan, err) < 0) {
        log_error(g->log_module, "%s: no mask plan: %s", g->label, err);
        memset(&g->plan, 0, sizeof g->plan); /* the filter then fails (fail closed) */
    } else {
        g->have_plan = true;
    }
    free(desc);
    /* Without a plan every column goes through the filter, which fails. */
    for (int i = 0; i < ncols; i++)
        mask[i] = i == 0 || all_columns || !g->have_plan || g->plan.cols[i].action == POLICY_COL_MASK ||
                  g->plan.cols[i].detect;
    f->mask = mask;
}

static int copy_filter(void *guard, const struct gateway_session_info *si, const uint8_t *row, size_t length,
                       struct buf *out)
{
    (void)si;
    struct policy_guard *g = guard;
    if (!g || !g->have_copy_plan)
        return -1; /* no plan (or no guard): close rather than show the rows */
    char err[POLICY_ERR_MAX];
    if (policy_mask_copy_row(g->policy, &g->copy_plan, row, length, out, err) < 0) {
        log_error(g->log_module, "%s: COPY row masking failed: %s", g->label, err);
        return -1;
    }
    return 0;
}

void policy_guard_copy_out(struct policy_guard *g, const struct gateway_session_info *si, int ncols,
                           struct gateway_copy_filter *f)
{
    *f = (struct gateway_copy_filter){.filter = copy_filter, .user = g};
    if (!g)
        return;
    forget_plans(g);
    char err[POLICY_ERR_MAX];
    struct policy_result_pos pos;
    if (policy_mask_plan_build_copy_results(g->policy, mask_catalog(g), g->results, answer_pos(si, &pos),
                                            ncols > 0 ? (size_t)ncols : 0, &g->copy_plan, err) < 0) {
        log_error(g->log_module, "%s: COPY cannot be masked: %s", g->label, err);
        memset(&g->copy_plan, 0, sizeof g->copy_plan); /* the filter then fails (fail closed) */
    } else {
        g->have_copy_plan = true;
        /* A COPY out of masked data comes as all NULLs: a file that looks
         * whole must not pass for the data. */
        bool all = g->copy_plan.ncols > 0;
        for (size_t i = 0; all && i < g->copy_plan.ncols; i++)
            all = g->copy_plan.cols[i].action == POLICY_COL_MASK;
        if (all)
            f->notice = "hoopctl: this COPY reads masked data, so every field of it is sent as NULL (COPY carries"
                        " no column types to mask by); SELECT the rows (psql --csv) for masked values of the"
                        " right types";
    }
}

bool policy_guard_error_redact(struct policy_guard *g, const char *sqlstate)
{
    return policy_error_must_hide(g->policy, mask_catalog(g), g->results, sqlstate);
}

bool policy_guard_notification_redact(struct policy_guard *g)
{
    if (g->txn_read_masked)
        return true;
    if (policy_results_empty(g->results))
        return false; /* between statements: another session's, no catalog needed */
    return policy_notification_must_hide(g->policy, mask_catalog(g), g->results);
}

void policy_guard_idle(struct policy_guard *g, char txn_status)
{
    policy_results_clear(g->results);
    g->txn_failed = g->txn_failed || txn_status == 'E';
    if (txn_status == 'I') {
        g->txn_read_masked = false;
        policy_session_end_transaction(g->tracker, g->txn_failed);
        g->txn_failed = false;
    }
    if ((g->ddl_seen || g->relations_added) && txn_status == 'I') { /* committed or rolled back: the catalog sees it now */
        catalog_forget(g);
        policy_catalog_changed(); /* and the other sessions' catalogs too */
        g->ddl_seen = g->ddl_pending = g->relations_added = false;
    }
}

int policy_guard_text_mask(struct policy_guard *g, const char *text, size_t len, char **out, size_t *outlen)
{
    return policy_mask_detected_text(g->policy, text, len, out, outlen);
}
