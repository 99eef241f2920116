/* builtins.c — one list of PostgreSQL built-ins whose effect reaches beyond
 * the value they return, with what each does (enum policy_builtin_effect):
 * the policy's masked-copy guard, the classifier's server-file fact and
 * hoopctl mcp's read-only check all read it. And that check itself
 * (policy_analysis_not_read, policy_stmt_not_read) with what it lets
 * hoopctl mcp itself send (policy_stmt_is_session_control). */
#include "policy_internal.h"

#include <stdio.h>
#include <strings.h>

#define KEEPS POLICY_BUILTIN_KEEPS_VALUE
#define OUTSIDE POLICY_BUILTIN_OUTSIDE_TX
#define FILES POLICY_BUILTIN_SERVER_FILE

/* A name ending in '*' matches every name that starts with the rest. */
static const struct {
    const char *name;
    unsigned effects;
} builtins[] = {
    /* Values kept where a later statement reads them: a setting (and the
     * ParameterStatus it sends), a large object, a sequence, a WAL message. */
    {"pg_notify", KEEPS},
    {"set_config", KEEPS},
    {"lo_from_bytea", KEEPS},
    {"lo_put", KEEPS},
    {"lowrite", KEEPS},
    {"lo_create", KEEPS},
    {"lo_truncate", KEEPS},
    {"lo_truncate64", KEEPS},
    {"setval", KEEPS},
    {"pg_advisory_xact_lock", KEEPS},
    {"pg_advisory_xact_lock_shared", KEEPS},
    {"pg_try_advisory_xact_lock", KEEPS},
    {"pg_try_advisory_xact_lock_shared", KEEPS},
    /* Session locks: they outlive the transaction. */
    {"pg_advisory_lock", KEEPS | OUTSIDE},
    {"pg_advisory_lock_shared", KEEPS | OUTSIDE},
    {"pg_try_advisory_lock", KEEPS | OUTSIDE},
    {"pg_try_advisory_lock_shared", KEEPS | OUTSIDE},
    /* Replication slots and origins, WAL, backups, the server's state. */
    {"pg_create_physical_replication_slot", KEEPS | OUTSIDE},
    {"pg_create_logical_replication_slot", KEEPS | OUTSIDE},
    {"pg_copy_physical_replication_slot", KEEPS | OUTSIDE},
    {"pg_copy_logical_replication_slot", KEEPS | OUTSIDE},
    {"pg_drop_replication_slot", OUTSIDE},
    {"pg_replication_slot_advance", OUTSIDE},
    {"pg_logical_slot_get_changes", OUTSIDE},
    {"pg_logical_slot_get_binary_changes", OUTSIDE},
    {"pg_replication_origin_create", KEEPS | OUTSIDE},
    {"pg_replication_origin_advance", KEEPS | OUTSIDE},
    {"pg_replication_origin_session_setup", KEEPS | OUTSIDE},
    {"pg_replication_origin_xact_setup", KEEPS | OUTSIDE},
    {"pg_replication_origin_*", OUTSIDE},
    {"pg_create_restore_point", KEEPS | OUTSIDE},
    {"pg_logical_emit_message", KEEPS | OUTSIDE},
    {"pg_backup_start", KEEPS | OUTSIDE},
    {"pg_backup_stop", OUTSIDE},
    {"pg_start_backup", OUTSIDE},
    {"pg_stop_backup", OUTSIDE},
    {"pg_switch_wal", OUTSIDE},
    {"pg_switch_xlog", OUTSIDE},
    {"pg_reload_conf", OUTSIDE},
    {"pg_rotate_logfile", OUTSIDE},
    {"pg_promote", OUTSIDE},
    {"pg_wal_replay_pause", OUTSIDE},
    {"pg_wal_replay_resume", OUTSIDE},
    {"pg_log_backend_memory_contexts", OUTSIDE},
    {"pg_stat_reset*", OUTSIDE},
    {"pg_stat_statements_reset", OUTSIDE},
    /* Other sessions. */
    {"pg_terminate_backend", OUTSIDE},
    {"pg_cancel_backend", OUTSIDE},
    /* Connections of their own (dblink_exec and dblink run SQL text too:
     * the classifier's dynamic_sql). */
    {"dblink*", OUTSIDE},
    /* The server's files (adminpack's too). */
    {"pg_read_file", FILES},
    {"pg_read_binary_file", FILES},
    {"pg_ls_dir", FILES},
    {"pg_stat_file", FILES},
    {"lo_import", KEEPS | FILES},
    {"lo_export", KEEPS | FILES},
    {"pg_file_write", KEEPS | FILES},
    {"pg_file_rename", FILES},
    {"pg_file_unlink", FILES},
    {"pg_file_sync", FILES},
    {"pg_logdir_ls", FILES},
};

unsigned policy_builtin_effects(const char *name)
{
    const char *dot = strrchr(name, '.');
    const char *base = dot ? dot + 1 : name;
    unsigned effects = 0;
    for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
        const char *b = builtins[i].name;
        size_t n = strlen(b);
        bool hit = b[n - 1] == '*' ? strncasecmp(base, b, n - 1) == 0 : strcasecmp(base, b) == 0;
        if (hit)
            effects |= builtins[i].effects;
    }
    return effects;
}

/* The function name of a "attribute(" f ")" record (f of q.f, which may be
 * f(q)), or name itself; NULL for operators and casts. */
static const char *called_name(const char *name, char *buf, size_t buflen)
{
    size_t pl = strlen(POLICY_ATTRIBUTE_PREFIX), n = strlen(name);
    if (strncmp(name, POLICY_ATTRIBUTE_PREFIX, pl) == 0 && n > pl && name[n - 1] == ')') {
        snprintf(buf, buflen, "%.*s", (int)(n - pl - 1), name + pl);
        return buf;
    }
    if (strncmp(name, POLICY_OPERATOR_PREFIX, strlen(POLICY_OPERATOR_PREFIX)) == 0 ||
        strncmp(name, POLICY_CAST_PREFIX, strlen(POLICY_CAST_PREFIX)) == 0 ||
        strncmp(name, POLICY_EVENT_TRIGGER_PREFIX, strlen(POLICY_EVENT_TRIGGER_PREFIX)) == 0)
        return NULL;
    return name;
}

const char *policy_stmt_not_read(const struct policy_stmt *st, char *what, size_t whatlen)
{
    static const char *const reads[] = {"SELECT", "EXPLAIN", "SHOW", NULL};
    for (size_t k = 0; k < st->nkinds; k++) {
        bool ok = false;
        for (size_t r = 0; reads[r] && !ok; r++)
            ok = strcmp(st->kinds[k], reads[r]) == 0;
        /* set_config() in a query is judged as SET (SET_ROLE, ...): the
         * READ ONLY transaction's ROLLBACK undoes it. SET itself is a
         * utility statement, refused. */
        if (!ok && k > 0 && strcmp(st->kinds[0], "SELECT") == 0)
            ok = strcmp(st->kinds[k], "SET") == 0 || strncmp(st->kinds[k], "SET_", 4) == 0;
        if (!ok) {
            snprintf(what, whatlen, "%s", st->kinds[k]);
            return "a statement that is not a plain read";
        }
    }
    if (st->facts & (POLICY_FACT_WRITES | POLICY_FACT_MODIFYING_CTE)) {
        snprintf(what, whatlen, "%s", "a write");
        return "a statement that is not a plain read";
    }
    if (st->locks_rows) {
        snprintf(what, whatlen, "%s", "SELECT ... FOR UPDATE/SHARE");
        return "a statement that locks rows";
    }
    for (size_t i = 0; i < st->nfunctions; i++) {
        char buf[3 * POLICY_NAME_MAX + 16];
        const char *f = called_name(st->functions[i], buf, sizeof(buf));
        unsigned e = f ? policy_builtin_effects(f) : 0;
        if (e & (POLICY_BUILTIN_OUTSIDE_TX | POLICY_BUILTIN_SERVER_FILE)) {
            snprintf(what, whatlen, "%s", f);
            return e & POLICY_BUILTIN_SERVER_FILE ? "a function that reads or writes the server's files"
                                                  : "a function whose effect outlives the transaction";
        }
    }
    if (st->facts & (POLICY_FACT_COPY_OUT | POLICY_FACT_COPY_PROGRAM)) {
        snprintf(what, whatlen, "%s", "COPY or a server file");
        return "a statement that reaches outside the database";
    }
    if (st->facts & (POLICY_FACT_RUNS_CODE | POLICY_FACT_DYNAMIC_SQL)) {
        snprintf(what, whatlen, "%s", "SQL run from text");
        return "a statement that runs SQL the check cannot see";
    }
    return NULL;
}

const char *policy_analysis_not_read(const struct policy_analysis *a, char *what, size_t whatlen)
{
    for (size_t s = 0; s < a->nstmts; s++) {
        const char *why = policy_stmt_not_read(&a->stmts[s], what, whatlen);
        if (why)
            return why;
    }
    return NULL;
}

bool policy_stmt_is_session_control(const struct policy_stmt *st)
{
    /* Not PREPARE TRANSACTION, COMMIT/ROLLBACK PREPARED (two-phase commit
     * outlives the session), SET ROLE, SET SESSION AUTHORIZATION, nor the
     * settings that change how literals parse (SET_PARSER_OPTION). */
    static const char *const kinds[] = {"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "ROLLBACK_TO",
                                        "SET", "RESET", "SHOW", NULL};
    if (st->nkinds == 0 || (st->facts & (POLICY_FACT_RUNS_CODE | POLICY_FACT_DYNAMIC_SQL)))
        return false;
    for (size_t k = 0; k < st->nkinds; k++) {
        bool ok = false;
        for (size_t i = 0; kinds[i] && !ok; i++)
            ok = strcmp(st->kinds[k], kinds[i]) == 0;
        if (!ok)
            return false;
    }
    return st->nfunctions == 0;
}
