/* classify.c — statement classification with PostgreSQL's own parser: parse
 * once with libpg_query, walk the JSON tree (jansson) and record per statement
 * the command kinds, relations read and written, functions, columns and facts. */
#include "hoopctl/pgwire.h"
#include "hoopctl/policy.h"
#include "policy_internal.h"

#include <ctype.h>
#include <fnmatch.h>
#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CLASSIFY_MAX_DEPTH 4   /* nested bodies (DO, functions) classified this deep */

/* ---- growable string sets owned by a statement ---- */

static int strv_add(char ***v, size_t *n, const char *s, size_t len)
{
    for (size_t i = 0; i < *n; i++)
        if (strlen((*v)[i]) == len && memcmp((*v)[i], s, len) == 0)
            return 0;
    char **nv = realloc(*v, (*n + 1) * sizeof(*nv));
    if (!nv)
        return -1;
    *v = nv;
    if (!(nv[*n] = strndup(s, len)))
        return -1;
    (*n)++;
    return 0;
}

void policy_strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

int policy_stmt_add_kind(struct policy_stmt *st, const char *kind)
{
    if (strv_add(&st->kinds, &st->nkinds, kind, strlen(kind)) < 0)
        return -1;
    st->kind = st->kinds[0];
    return 0;
}

bool policy_stmt_has_kind(const struct policy_stmt *st, const char *const *kinds)
{
    for (size_t i = 0; i < st->nkinds; i++)
        for (size_t k = 0; kinds[k]; k++)
            if (strcmp(st->kinds[i], kinds[k]) == 0)
                return true;
    return false;
}

static int stmt_add_relation(struct policy_stmt *st, const char *schema, const char *name, bool write)
{
    for (size_t i = 0; i < st->nrelations; i++) {
        struct policy_relation *r = &st->relations[i];
        bool same_schema = (!r->schema && !schema) || (r->schema && schema && strcmp(r->schema, schema) == 0);
        if (same_schema && strcmp(r->name, name) == 0) {
            r->write = r->write || write;
            r->read = r->read || !write;
            return 0;
        }
    }
    struct policy_relation *nr = realloc(st->relations, (st->nrelations + 1) * sizeof(*nr));
    if (!nr)
        return -1;
    st->relations = nr;
    struct policy_relation *r = &nr[st->nrelations];
    r->schema = schema ? strdup(schema) : NULL;
    r->name = strdup(name);
    r->write = write;
    r->read = !write;
    if (!r->name || (schema && !r->schema)) {
        free(r->schema);
        free(r->name);
        return -1;
    }
    st->nrelations++;
    return 0;
}

/* Merge what `from` runs into `into` (EXECUTE of a prepared statement, the
 * statements inside a DO body). The primary kind of `into` stays. */
int policy_stmt_merge(struct policy_stmt *into, const struct policy_stmt *from)
{
    for (size_t i = 0; i < from->nkinds; i++)
        if (policy_stmt_add_kind(into, from->kinds[i]) < 0)
            return -1;
    for (size_t i = 0; i < from->nrelations; i++) {
        const struct policy_relation *r = &from->relations[i];
        if ((r->write && stmt_add_relation(into, r->schema, r->name, true) < 0) ||
            (r->read && stmt_add_relation(into, r->schema, r->name, false) < 0))
            return -1;
    }
    for (size_t i = 0; i < from->nfunctions; i++)
        if (strv_add(&into->functions, &into->nfunctions, from->functions[i], strlen(from->functions[i])) < 0)
            return -1;
    for (size_t i = 0; i < from->ncolumns; i++)
        if (strv_add(&into->columns, &into->ncolumns, from->columns[i], strlen(from->columns[i])) < 0)
            return -1;
    for (size_t i = 0; i < from->naliases; i++)
        if (strv_add(&into->aliases, &into->naliases, from->aliases[i], strlen(from->aliases[i])) < 0)
            return -1;
    for (size_t i = 0; i < from->nsources; i++)
        if (strv_add(&into->sources, &into->nsources, from->sources[i], strlen(from->sources[i])) < 0)
            return -1;
    into->facts |= from->facts;
    into->returning = into->returning || from->returning;
    into->locks_rows = into->locks_rows || from->locks_rows;
    return 0;
}

void policy_stmt_clear(struct policy_stmt *st)
{
    free(st->text);
    policy_strv_free(st->kinds, st->nkinds);
    for (size_t i = 0; i < st->nrelations; i++) {
        free(st->relations[i].schema);
        free(st->relations[i].name);
    }
    free(st->relations);
    policy_strv_free(st->functions, st->nfunctions);
    policy_strv_free(st->columns, st->ncolumns);
    policy_strv_free(st->aliases, st->naliases);
    policy_strv_free(st->sources, st->nsources);
    free(st->prepared_name);
    free(st->cursor_name);
    free(st->normalized);
    free(st->prepared_text);
    memset(st, 0, sizeof(*st));
}

int policy_stmt_copy(struct policy_stmt *dst, const struct policy_stmt *src)
{
    memset(dst, 0, sizeof(*dst));
    if ((src->text && !(dst->text = strdup(src->text))) ||
        (src->prepared_name && !(dst->prepared_name = strdup(src->prepared_name))) ||
        (src->cursor_name && !(dst->cursor_name = strdup(src->cursor_name))) ||
        (src->normalized && !(dst->normalized = strdup(src->normalized))) ||
        (src->prepared_text && !(dst->prepared_text = strdup(src->prepared_text))) ||
        policy_stmt_merge(dst, src) < 0) {
        policy_stmt_clear(dst);
        return -1;
    }
    dst->category = src->category;
    dst->copy_csv = src->copy_csv;
    dst->copy_header = src->copy_header;
    dst->locks_rows = src->locks_rows;
    memcpy(dst->fingerprint, src->fingerprint, sizeof(dst->fingerprint));
    return 0;
}

int policy_analysis_copy(struct policy_analysis *dst, const struct policy_analysis *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->cacheable = src->cacheable;
    dst->stmts = calloc(src->nstmts ? src->nstmts : 1, sizeof(*dst->stmts));
    if (!dst->stmts)
        return -1;
    for (size_t i = 0; i < src->nstmts; i++) {
        if (policy_stmt_copy(&dst->stmts[i], &src->stmts[i]) < 0) {
            policy_analysis_free(dst);
            return -1;
        }
        dst->nstmts++;
    }
    return 0;
}

void policy_analysis_free(struct policy_analysis *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->nstmts; i++)
        policy_stmt_clear(&a->stmts[i]);
    free(a->stmts);
    memset(a, 0, sizeof(*a));
}

/* ---- names ---- */

/* "OBJECT_MATVIEW" -> "MATERIALIZED_VIEW", "OBJECT_TABLE" -> "TABLE". */
static const char *object_type_name(const char *objtype)
{
    if (!objtype)
        return "OBJECT";
    if (strncmp(objtype, "OBJECT_", 7) == 0)
        objtype += 7;
    if (strcmp(objtype, "MATVIEW") == 0)
        return "MATERIALIZED_VIEW";
    return objtype;
}

/* "CreateConversionStmt" -> "CREATE_CONVERSION": the fallback kind for node
 * types without an explicit entry. */
static void camel_to_kind(const char *node, char *out, size_t outlen)
{
    size_t n = strlen(node), o = 0;
    if (n > 4 && strcmp(node + n - 4, "Stmt") == 0)
        n -= 4;
    for (size_t i = 0; i < n && o + 2 < outlen; i++) {
        if (i && isupper((unsigned char)node[i]) && !isupper((unsigned char)node[i - 1]))
            out[o++] = '_';
        out[o++] = (char)toupper((unsigned char)node[i]);
    }
    out[o] = '\0';
}

/* A statement node's fallback kind (its name) and the name of the same
 * thing elsewhere (DROP SEQUENCE is DROP_SEQUENCE, so CREATE SEQUENCE is
 * CREATE_SEQUENCE as well as CREATE_SEQ): a statement carries both. */
static const struct { const char *fallback, *natural; } kind_aliases[] = {
    {"CREATE_SEQ", "CREATE_SEQUENCE"}, {"ALTER_SEQ", "ALTER_SEQUENCE"},
    {"CREATE_TABLE_SPACE", "CREATE_TABLESPACE"}, {"DROP_TABLE_SPACE", "DROP_TABLESPACE"},
    {"ALTER_TABLE_SPACE_OPTIONS", "ALTER_TABLESPACE"}, {"ALTER_TABLE_MOVE_ALL", "ALTER_TABLE"},
    {"CREATE_EVENT_TRIG", "CREATE_EVENT_TRIGGER"}, {"ALTER_EVENT_TRIG", "ALTER_EVENT_TRIGGER"},
    {"CREATE_AM", "CREATE_ACCESS_METHOD"}, {"CREATE_STATS", "CREATE_STATISTIC_EXT"},
    {"ALTER_STATS", "ALTER_STATISTIC_EXT"}, {"CREATE_OP_CLASS", "CREATE_OPCLASS"},
    {"CREATE_OP_FAMILY", "CREATE_OPFAMILY"}, {"ALTER_OP_FAMILY", "ALTER_OPFAMILY"},
    {"COMPOSITE_TYPE", "CREATE_TYPE"}, {"CREATE_ENUM", "CREATE_TYPE"}, {"CREATE_RANGE", "CREATE_TYPE"},
    {"ALTER_ENUM", "ALTER_TYPE"}, {"CREATE_FDW", "CREATE_FOREIGN_DATA_WRAPPER"},
    {"ALTER_FDW", "ALTER_FOREIGN_DATA_WRAPPER"},
};

/* Whether a kind pattern (a glob) matches any kind the classifier can give:
 * the kinds it names, ALTER_ and DROP_ of every object type PostgreSQL has
 * (CREATE_ of those DefineStmt and CREATE TABLE AS make), the natural names
 * above, and the kind of every statement node (the fallback), so that a
 * misspelt kind in a policy is an error rather than a rule that never fires. */
bool policy_kind_pattern_known(const char *pattern)
{
    static const char *const named[] = {
        "SELECT", "SELECT_INTO", "INSERT", "UPDATE", "DELETE", "MERGE", "COPY_TO", "COPY_FROM",
        "DECLARE_CURSOR", "FETCH", "MOVE", "CLOSE", "EXPLAIN", "VACUUM", "ANALYZE", "LOCK", "LISTEN",
        "UNLISTEN", "NOTIFY", "LOAD", "DO", "CALL", "PREPARE", "EXECUTE", "DEALLOCATE", "DISCARD", "SET",
        "RESET", "SHOW", "SET_ROLE", "RESET_ROLE", "SET_SESSION_AUTHORIZATION",
        "RESET_SESSION_AUTHORIZATION", "SET_PARSER_OPTION", "BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT",
        "RELEASE", "ROLLBACK_TO", "PREPARE_TRANSACTION", "COMMIT_PREPARED", "ROLLBACK_PREPARED",
        "TRANSACTION", "TRUNCATE", "COMMENT", "GRANT", "REVOKE", "GRANT_ROLE", "REVOKE_ROLE",
        "CREATE_TRIGGER", "CREATE_RULE", "CREATE_FUNCTION", "CREATE_PROCEDURE", "CREATE_VIEW",
        "CREATE_TABLE", "CREATE_INDEX", "CREATE_SCHEMA", "CREATE_DATABASE", "CREATE_EXTENSION", "CREATE_ROLE",
        "CREATE_MATERIALIZED_VIEW", "CREATE_AGGREGATE", "CREATE_OPERATOR", "CREATE_TYPE", "CREATE_TSPARSER",
        "CREATE_TSDICTIONARY", "CREATE_TSTEMPLATE", "CREATE_TSCONFIGURATION", "CREATE_COLLATION",
        "REFRESH_MATERIALIZED_VIEW", "ALTER_SYSTEM", "EMPTY", "UNKNOWN", NULL};
    static const char *const verbs[] = {"ALTER", "DROP"};
    for (size_t i = 0; named[i]; i++)
        if (fnmatch(pattern, named[i], 0) == 0)
            return true;
    for (size_t i = 0; i < sizeof kind_aliases / sizeof kind_aliases[0]; i++)
        if (fnmatch(pattern, kind_aliases[i].natural, 0) == 0)
            return true;
    char k[128];
    const ProtobufCEnumDescriptor *ot = &pg_query__object_type__descriptor;
    for (size_t v = 0; v < sizeof verbs / sizeof verbs[0]; v++)
        for (unsigned i = 0; i < ot->n_values; i++) {
            snprintf(k, sizeof k, "%s_%s", verbs[v], object_type_name(ot->values[i].name));
            if (fnmatch(pattern, k, 0) == 0)
                return true;
        }
    /* Statement nodes, named as the fallback kind: "create_conversion_stmt"
     * is CREATE_CONVERSION. */
    const ProtobufCMessageDescriptor *nd = &pg_query__node__descriptor;
    for (unsigned i = 0; i < nd->n_fields; i++) {
        const char *f = nd->fields[i].name;
        size_t n = strlen(f);
        if (n <= 5 || n - 5 >= sizeof k || strcmp(f + n - 5, "_stmt") != 0)
            continue;
        for (size_t c = 0; c < n - 5; c++)
            k[c] = (char)toupper((unsigned char)f[c]);
        k[n - 5] = '\0';
        if (fnmatch(pattern, k, 0) == 0)
            return true;
    }
    return false;
}

const char *policy_kind_category(const char *kind)
{
    static const struct { const char *prefix; const char *category; } map[] = {
        {"SELECT", "data"}, {"INSERT", "data"}, {"UPDATE", "data"}, {"DELETE", "data"},
        {"MERGE", "data"}, {"COPY", "data"}, {"VALUES", "data"}, {"TABLE", "data"},
        {"DECLARE_CURSOR", "data"}, {"FETCH", "data"}, {"MOVE", "data"}, {"CLOSE", "data"},
        {"ALTER_SYSTEM", "system"}, {"CREATE_ROLE", "system"}, {"ALTER_ROLE", "system"},
        {"DROP_ROLE", "system"}, {"GRANT_ROLE", "system"}, {"REVOKE_ROLE", "system"},
        {"LOAD", "system"}, {"CHECKPOINT", "system"}, {"REASSIGN_OWNED", "system"},
        {"SET", "session"}, {"RESET", "session"}, {"SHOW", "session"}, {"DISCARD", "session"},
        {"DO", "code"}, {"CALL", "code"},
        {"PREPARE_TRANSACTION", "transaction"}, {"PREPARE", "prepared"}, {"EXECUTE", "prepared"},
        {"DEALLOCATE", "prepared"},
        {"BEGIN", "transaction"}, {"COMMIT", "transaction"}, {"ROLLBACK", "transaction"},
        {"SAVEPOINT", "transaction"}, {"RELEASE", "transaction"},
        {"CREATE", "ddl"}, {"ALTER", "ddl"}, {"DROP", "ddl"}, {"TRUNCATE", "ddl"},
        {"COMMENT", "ddl"}, {"GRANT", "ddl"}, {"REVOKE", "ddl"}, {"SEC_LABEL", "ddl"},
        {"REFRESH", "ddl"}, {"IMPORT", "ddl"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        size_t n = strlen(map[i].prefix);
        if (strncmp(kind, map[i].prefix, n) == 0 && (kind[n] == '\0' || kind[n] == '_'))
            return map[i].category;
    }
    return "utility";
}

/* Functions that run SQL given as text (the parser cannot see it: it runs
 * code). Matched by the last part of the name, whatever the schema. (Those
 * that read or write files on the server: policy_builtin_effects.) */
static const char *const sql_text_functions[] = {
    "dblink", "dblink_exec", "dblink_open", "dblink_send_query", "query_to_xml", "query_to_xmlschema",
    "query_to_xml_and_xmlschema", "table_to_xml", "table_to_xmlschema", "table_to_xml_and_xmlschema",
    "cursor_to_xml", "schema_to_xml", "schema_to_xml_and_xmlschema", "database_to_xml",
    "database_to_xml_and_xmlschema", "ts_stat", "crosstab", "crosstab2", "crosstab3", "crosstab4", "connectby",
    "xpath_table", NULL,
};

/* pg_catalog's functions that take a whole row as their one argument (a
 * record, a polymorphic or "any" type; from pg_proc of PostgreSQL 15), and
 * so can be written as u.f (attribute notation) for f(u). */
static const char *const row_functions[] = {
    "to_json", "to_jsonb", "row_to_json", "record_out", "record_send", "quote_literal", "quote_nullable",
    "concat", "json_build_array", "jsonb_build_array", "json_build_object", "jsonb_build_object",
    "array_agg", "json_agg", "jsonb_agg", "count", "first_value", "last_value", "lag", "lead", "mode",
    "hash_record", "pg_column_size", "pg_column_compression", "pg_collation_for", "pg_typeof", "num_nulls",
    "num_nonnulls", NULL,
};

static void join_names(json_t *list, char *out, size_t outlen);

/* Record name as called, under prefix (POLICY_OPERATOR_PREFIX,
 * POLICY_ATTRIBUTE_PREFIX, POLICY_CAST_PREFIX or
 * POLICY_EVENT_TRIGGER_PREFIX): "prefix" name ")". */
static int add_called(struct policy_stmt *st, const char *prefix, const char *name)
{
    char rec[3 * POLICY_NAME_MAX + 16];
    int len = snprintf(rec, sizeof(rec), "%s%s)", prefix, name);
    if (!name[0] || len < 0 || (size_t)len >= sizeof(rec))
        return 0;
    return strv_add(&st->functions, &st->nfunctions, rec, (size_t)len);
}

/* Whether st runs a command that fires event triggers: DDL (TRUNCATE, which
 * fires none, too) and SELECT INTO. */
static bool fires_event_triggers(const struct policy_stmt *st)
{
    for (size_t i = 0; i < st->nkinds; i++)
        if (strcmp(policy_kind_category(st->kinds[i]), "ddl") == 0 || strcmp(st->kinds[i], "SELECT_INTO") == 0)
            return true;
    return false;
}

/* An operator given as a name list (A_Expr, a subquery's ANY/ALL, ORDER BY
 * USING) runs its function: a user one may read anything. */
static int add_operator(struct policy_stmt *st, json_t *names)
{
    char op[3 * POLICY_NAME_MAX];
    join_names(names, op, sizeof(op));
    return add_called(st, POLICY_OPERATOR_PREFIX, op);
}

static bool name_in(const char *name, const char *const *list)
{
    const char *dot = strrchr(name, '.');
    const char *base = dot ? dot + 1 : name;
    for (size_t i = 0; list[i]; i++)
        if (strcmp(base, list[i]) == 0)
            return true;
    return false;
}

/* ---- the tree walk ---- */

struct walker {
    struct policy_stmt *st;
    struct policy_session *session;
    char **ctes;           /* CTE names in scope: an unqualified RangeVar read of that name is no
                            * relation (a WITH's names end with the statement that holds it) */
    size_t nctes;
    int stmt_depth;        /* nesting of data statements (CTEs, subqueries) */
    int in_returning;      /* inside a RETURNING list */
    int body_depth;        /* nesting of code bodies */
    json_t *skip_with;     /* the withClause walk_with has walked (walk_member skips it) */
    const char *settings_name; /* in `select set_config(name, ...) from pg_settings where name =
                                * 'x'` (pg_dump's form), the x that `name` holds */
    json_t *root;          /* the statement's tree */
    bool catalog_moves;    /* a search_path this statement sets may put a schema before pg_catalog */
    char *err;
};

static int walk(struct walker *w, json_t *node, bool write);
static int walk_members(struct walker *w, json_t *obj, const char *const *write_keys, bool write);
static int classify_body(struct walker *w, const char *body, const char *language);

static const char *jstr(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* A list of {"String":{"sval":..}} joined with '.', e.g. a function name.
 * A part that holds a dot or a quote is written in double quotes, so that
 * the parts stay apart ("pg_catalog.now"() is no call of pg_catalog.now);
 * a name too long for out is written as '"' alone. The catalog counts a
 * name with a quote as user code. */
static void join_names(json_t *list, char *out, size_t outlen)
{
    size_t o = 0, i;
    json_t *item;
    out[0] = '\0';
    json_array_foreach(list, i, item) {
        const char *s = jstr(json_object_get(item, "String"), "sval");
        if (!s)
            continue;
        const char *q = strpbrk(s, ".\"") ? "\"" : "";
        int n = snprintf(out + o, outlen - o, "%s%s%s%s", o ? "." : "", q, s, q);
        if (n < 0 || (size_t)n >= outlen - o) {
            snprintf(out, outlen, "\"");
            return;
        }
        o += (size_t)n;
    }
}

/* Note an Alias node. With column names (users u(a, b)) the relation's
 * columns go on under other names, so the statement may read any of them,
 * as with a star. */
static int note_alias(struct walker *w, json_t *alias_node)
{
    const char *alias = jstr(alias_node, "aliasname");
    if (!alias)
        return 0;
    if (strv_add(&w->st->aliases, &w->st->naliases, alias, strlen(alias)) < 0)
        return -1;
    if (json_array_size(json_object_get(alias_node, "colnames")) > 0 &&
        (strv_add(&w->st->columns, &w->st->ncolumns, "*", 1) < 0 ||
         (!w->in_returning && strv_add(&w->st->sources, &w->st->nsources, "*", 1) < 0)))
        return -1;
    return 0;
}

/* A string constant ('x'), or NULL. */
static const char *const_string(json_t *node)
{
    return jstr(json_object_get(json_object_get(node, "A_Const"), "sval"), "sval");
}

/* pg_settings: updating it is set_config() for each row. */
static bool is_pg_settings(const char *schema, const char *name)
{
    return strcmp(name, "pg_settings") == 0 && (!schema || strcmp(schema, "pg_catalog") == 0);
}

/* Whether what the walker is in runs when the statement does (a query, a
 * write, CALL's and EXECUTE's arguments, a cursor's query, judged when it is
 * declared), not stored to run later in other statements (a view, a default,
 * a check, a trigger's WHEN, a policy, a function's body) nor in a code body
 * (the session cannot follow what it sets). */
static bool runs_now(const struct walker *w)
{
    static const char *const kinds[] = {"SELECT", "SELECT_INTO", "INSERT", "UPDATE", "DELETE", "MERGE",
                                        "COPY_TO", "COPY_FROM", "CALL", "EXECUTE", "DECLARE_CURSOR", NULL};
    if (w->body_depth || !w->st->nkinds)
        return false;
    for (size_t i = 0; kinds[i]; i++)
        if (strcmp(w->st->kinds[0], kinds[i]) == 0)
            return true;
    return false;
}

/* `name`, or `q.name` where q is how the FROM item is called. */
static bool is_name_column(json_t *node, const char *qualifier)
{
    json_t *fields = json_object_get(json_object_get(node, "ColumnRef"), "fields");
    size_t n = json_array_size(fields);
    const char *last = jstr(json_object_get(json_array_get(fields, n - 1), "String"), "sval");
    if (!last || strcmp(last, "name") != 0)
        return false;
    if (n == 1)
        return true;
    const char *q = jstr(json_object_get(json_array_get(fields, 0), "String"), "sval");
    return n == 2 && q && strcmp(q, qualifier) == 0;
}

/* Whether a WITH anywhere in tree names a CTE `name` (a RECURSIVE one may
 * be named after the CTE that reads it). */
static bool has_cte_named(json_t *tree, const char *name)
{
    if (json_is_array(tree)) {
        size_t i;
        json_t *v;
        json_array_foreach(tree, i, v)
            if (has_cte_named(v, name))
                return true;
        return false;
    }
    const char *ctename = jstr(tree, "ctename");
    if (ctename && strcmp(ctename, name) == 0)
        return true;
    const char *k;
    json_t *v;
    json_object_foreach(tree, k, v)
        if ((json_is_object(v) || json_is_array(v)) && has_cte_named(v, name))
            return true;
    return false;
}

/* pg_dump sets a setting that may not exist on the server with `SELECT
 * set_config(name, 'v', false) FROM pg_settings WHERE name =
 * 'restrict_nonsystem_relation_kind'`. When a SelectStmt has exactly that
 * FROM and WHERE, `name` in its target list is that setting: returned, else
 * NULL. Only while the relation, and the = operator, are pg_catalog's: no
 * WITH of the statement names pg_settings, the session's search_path keeps
 * pg_catalog first (it cannot put a schema of pg_settings or = before it),
 * and no relation called pg_settings can be made (a temporary one would
 * shadow pg_catalog's even so: add_range_var refuses them). */
static const char *settings_filter(const struct walker *w, json_t *select)
{
    static const char setting[] = "restrict_nonsystem_relation_kind";
    json_t *from = json_object_get(select, "fromClause");
    json_t *rv = json_object_get(json_array_get(from, 0), "RangeVar");
    const char *schema = jstr(rv, "schemaname"), *rel = jstr(rv, "relname");
    /* In a code body, `name` may be a variable (plpgsql's use_variable);
     * a prepared statement is analysed again when it runs, under the
     * search_path of then. So only a statement that runs now, in a session
     * whose search_path is known to keep pg_catalog first. */
    if (w->body_depth || !w->session || !w->root || !policy_session_catalog_first(w->session) ||
        json_array_size(from) != 1 || !rel || !is_pg_settings(schema, rel) || jstr(rv, "catalogname"))
        return NULL;
    const char *alias = jstr(json_object_get(rv, "alias"), "aliasname");
    json_t *eq = json_object_get(json_object_get(select, "whereClause"), "A_Expr");
    json_t *op = json_object_get(eq, "name");
    const char *kind = jstr(eq, "kind"), *opname = jstr(json_object_get(json_array_get(op, 0), "String"), "sval");
    if (!kind || strcmp(kind, "AEXPR_OP") != 0 || json_array_size(op) != 1 || !opname || strcmp(opname, "=") != 0)
        return NULL;
    json_t *l = json_object_get(eq, "lexpr"), *r = json_object_get(eq, "rexpr");
    const char *x = is_name_column(l, alias ? alias : rel) ? const_string(r)
                    : is_name_column(r, alias ? alias : rel) ? const_string(l)
                                                             : NULL;
    if (!x || strcmp(x, setting) != 0)
        return NULL;
    for (const char *k = "groupClause\0havingClause\0distinctClause\0withClause\0"; *k; k += strlen(k) + 1)
        if (json_object_get(select, k))
            return NULL;
    return has_cte_named(w->root, rel) ? NULL : setting;
}

/* A search_path of these values (SET's list, or set_config's one string)
 * keeps pg_catalog first: none names it (then it is searched first). */
static bool keeps_catalog_first(json_t *values)
{
    size_t i;
    json_t *v;
    json_array_foreach(values, i, v) {
        const char *s = const_string(v);
        if (!s || strcasestr(s, "pg_catalog"))
            return false;
    }
    return true;
}

/* A setting is changed whose name cannot be known here (set_config() of a
 * computed name, a write to pg_settings): it counts as a call of
 * set_config() that may change the role, search_path or anything else. */
static int unknown_setting(struct walker *w)
{
    w->st->facts |= POLICY_FACT_SEARCH_PATH | POLICY_FACT_UNKNOWN_SETTING;
    w->catalog_moves = true;
    return strv_add(&w->st->functions, &w->st->nfunctions, "set_config", 10);
}

static int add_range_var(struct walker *w, json_t *rv, bool write)
{
    const char *schema = jstr(rv, "schemaname"), *name = jstr(rv, "relname");
    if (!name)
        return 0;
    if (note_alias(w, json_object_get(rv, "alias")) < 0)
        return -1;
    /* Writing pg_settings is set_config() for each row (search_path, role,
     * ...): it counts as a call of it. */
    /* So does making a relation of that name anywhere: a temporary one would
     * shadow pg_catalog's for unqualified reads (see settings_filter). And a
     * write to a catalog table may rename set_config or rewrite a role
     * (pg_proc, pg_authid: a superuser's). */
    if (write && (strcmp(name, "pg_settings") == 0 || (schema && strcmp(schema, "pg_catalog") == 0) ||
                  (!schema && strncmp(name, "pg_", 3) == 0)) &&
        unknown_setting(w) < 0)
        return -1;
    /* A write's target is never a CTE, whatever the WITH names. */
    if (!schema && !write)
        for (size_t i = 0; i < w->nctes; i++)
            if (strcmp(w->ctes[i], name) == 0)
                return 0;
    return stmt_add_relation(w->st, schema, name, write);
}

/* Whether a column reference in node may name a column of the relation
 * called name (or alias): qualified by either, or not qualified at all. */
static bool refers_to(json_t *node, const char *name, const char *alias)
{
    if (json_is_array(node)) {
        size_t i;
        json_t *v;
        json_array_foreach(node, i, v)
            if (refers_to(v, name, alias))
                return true;
        return false;
    }
    if (!json_is_object(node))
        return false;
    json_t *fields = json_object_get(json_object_get(node, "ColumnRef"), "fields");
    if (fields) {
        if (json_array_size(fields) < 2)
            return true;
        const char *q = jstr(json_object_get(json_array_get(fields, json_array_size(fields) - 2), "String"), "sval");
        return !q || (alias ? strcmp(q, alias) == 0 : name && strcmp(q, name) == 0);
    }
    const char *k;
    json_t *v;
    json_object_foreach(node, k, v)
        if (refers_to(v, name, alias))
            return true;
    return false;
}

/* Leave a WITH's scope: its names no longer hide relations. */
static void ctes_end(struct walker *w, size_t keep)
{
    while (w->nctes > keep)
        free(w->ctes[--w->nctes]);
}

/* A WITH: each CTE's name is in scope for the CTEs after it and for the
 * statement that holds the WITH (ctes_end at its end); in its own body only
 * when RECURSIVE (otherwise that name there is a relation). */
static int walk_with(struct walker *w, json_t *with)
{
    bool recursive = json_is_true(json_object_get(with, "recursive"));
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(with, "ctes"), i, item) {
        json_t *cte = json_object_get(item, "CommonTableExpr");
        const char *name = jstr(cte, "ctename");
        if (!cte || !name) {
            if (walk(w, item, false) < 0)
                return -1;
            continue;
        }
        if (recursive && strv_add(&w->ctes, &w->nctes, name, strlen(name)) < 0)
            return -1;
        if (strv_add(&w->st->aliases, &w->st->naliases, name, strlen(name)) < 0 ||
            walk_members(w, cte, NULL, false) < 0)
            return -1;
        if (!recursive && strv_add(&w->ctes, &w->nctes, name, strlen(name)) < 0)
            return -1;
    }
    return 0;
}

/* EXPLAIN's ANALYZE option: PostgreSQL takes the last one given. */
static bool has_analyze_option(json_t *options)
{
    bool analyze = false;
    size_t i;
    json_t *o;
    json_array_foreach(options, i, o) {
        json_t *d = json_object_get(o, "DefElem");
        const char *name = jstr(d, "defname");
        if (!name || strcmp(name, "analyze") != 0)
            continue;
        json_t *arg = json_object_get(d, "arg");
        analyze = true;
        if (!arg)
            continue;
        /* ANALYZE false / off / 0 */
        const char *sv = jstr(json_object_get(arg, "String"), "sval");
        json_t *ac = json_object_get(arg, "A_Const");
        if (!sv && ac)
            sv = jstr(json_object_get(ac, "sval"), "sval");
        if (sv && (strcmp(sv, "false") == 0 || strcmp(sv, "off") == 0 || strcmp(sv, "0") == 0))
            analyze = false;
        json_t *bv = ac ? json_object_get(json_object_get(ac, "boolval"), "boolval") : NULL;
        if (ac && json_object_get(ac, "boolval") && !json_is_true(bv))
            analyze = false;
        json_t *iv = ac ? json_object_get(ac, "ival") : NULL;
        if (iv && json_integer_value(json_object_get(iv, "ival")) == 0)
            analyze = false;
    }
    return analyze;
}

static int walk_node(struct walker *w, const char *type, json_t *n, bool write);

/* One member of an object: a typed node ("SelectStmt": {...}) or a field.
 * Aliases are noted; column references inside RETURNING are told apart. */
static int walk_member(struct walker *w, const char *key, json_t *val, bool write)
{
    if (strcmp(key, "alias") == 0 && note_alias(w, val) < 0)
        return -1;
    /* The five statements with a WITH walk it first (walk_with) and skip it
     * here (the walker's skip_with); anywhere else it is walked like the rest. */
    if (w->skip_with == val)
        return 0;
    /* A set operation's sides come as SelectStmts without their wrapper. */
    if ((strcmp(key, "larg") == 0 || strcmp(key, "rarg") == 0) && json_is_object(val))
        return walk_node(w, "SelectStmt", val, write);
    bool returning = strcmp(key, "returningList") == 0;
    if (returning && json_array_size(val) > 0)
        w->st->returning = true;
    w->in_returning += returning;
    int rc = isupper((unsigned char)key[0]) && json_is_object(val) ? walk_node(w, key, val, write)
                                                                   : walk(w, val, write);
    w->in_returning -= returning;
    return rc;
}

/* Walk every member of an object; `write_keys` members are walked as writes. */
static int walk_members(struct walker *w, json_t *obj, const char *const *write_keys, bool write)
{
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val) {
        bool wr = write;
        for (size_t i = 0; write_keys && write_keys[i]; i++)
            if (strcmp(key, write_keys[i]) == 0)
                wr = true;
        if (walk_member(w, key, val, wr) < 0)
            return -1;
    }
    return 0;
}

/* The relation a DROP (or ALTER EXTENSION ... ADD) names as obj, a List of
 * name parts, when objtype is one of a relation: written. */
static int add_named_relation(struct policy_stmt *st, const char *objtype, json_t *obj)
{
    const char *on = object_type_name(objtype);
    bool relation_like = strcmp(on, "TABLE") == 0 || strcmp(on, "VIEW") == 0 ||
                         strcmp(on, "MATERIALIZED_VIEW") == 0 || strcmp(on, "SEQUENCE") == 0 ||
                         strcmp(on, "FOREIGN_TABLE") == 0 || strcmp(on, "INDEX") == 0;
    json_t *items = json_object_get(json_object_get(obj, "List"), "items");
    size_t k = json_array_size(items);
    if (!relation_like || k == 0)
        return 0;
    const char *name = jstr(json_object_get(json_array_get(items, k - 1), "String"), "sval");
    const char *schema = k >= 2 ? jstr(json_object_get(json_array_get(items, k - 2), "String"), "sval") : NULL;
    return name ? stmt_add_relation(st, schema, name, true) : 0;
}

static int set_kind(struct walker *w, const char *kind)
{
    return policy_stmt_add_kind(w->st, kind);
}

static int set_kind_obj(struct walker *w, const char *verb, const char *objtype)
{
    char k[96];
    snprintf(k, sizeof(k), "%s_%s", verb, object_type_name(objtype));
    return set_kind(w, k);
}

/* SET name (RESET name), or set_config('name', value, ...): what the
 * setting makes the statement. Names as PostgreSQL finds them: case does not
 * matter ("ROLE"). value is the new one when value_known. */
static int judge_setting(struct walker *w, const char *name, const char *value, bool value_known, bool reset,
                         json_t *values)
{
    if (name && strcasecmp(name, "role") == 0)
        return set_kind(w, reset ? "RESET_ROLE" : "SET_ROLE");
    if (name && strcasecmp(name, "session_authorization") == 0)
        return set_kind(w, reset ? "RESET_SESSION_AUTHORIZATION" : "SET_SESSION_AUTHORIZATION");
    /* Settings that change how the server reads string literals: the parser
     * here assumes the defaults, so changing them could make the server see
     * statements hidden in what looked like a literal. So does a client
     * encoding whose characters can swallow a quote (SET NAMES too), or one
     * that cannot be known here. */
    /* Setting them to the defaults the parser assumes is harmless (every
     * pg_dump file starts with SET standard_conforming_strings = on); RESET
     * may restore a role's or database's other default. */
    if (name && strcasecmp(name, "standard_conforming_strings") == 0 &&
        !(!reset && value_known && value &&
          (!strcasecmp(value, "on") || !strcasecmp(value, "true") || !strcasecmp(value, "yes") || !strcmp(value, "1"))))
        return set_kind(w, "SET_PARSER_OPTION");
    if (name && strcasecmp(name, "backslash_quote") == 0 &&
        !(!reset && value_known && value && (!strcasecmp(value, "safe_encoding") || !strcasecmp(value, "off") ||
                                             !strcasecmp(value, "false") || !strcasecmp(value, "no") ||
                                             !strcmp(value, "0"))))
        return set_kind(w, "SET_PARSER_OPTION");
    if (name && strcasecmp(name, "client_encoding") == 0 &&
        (!value_known || (value && pgwire_encoding_hides_ascii(value))))
        return set_kind(w, "SET_PARSER_OPTION");
    if (name && strcasecmp(name, "search_path") == 0) {
        w->st->facts |= POLICY_FACT_SEARCH_PATH;
        w->catalog_moves = w->catalog_moves || !keeps_catalog_first(values);
    }
    return set_kind(w, reset ? "RESET" : "SET");
}

/* COPY's header option as PostgreSQL reads a boolean: 1, 0, or -1 for
 * anything else ("match", which only COPY FROM takes). */
static int copy_header_option(json_t *defelem)
{
    json_t *arg = json_object_get(defelem, "arg");
    if (!arg)
        return 1;
    json_t *b = json_object_get(arg, "Boolean"), *i = json_object_get(arg, "Integer");
    const char *s = jstr(json_object_get(arg, "String"), "sval");
    if (b)
        return json_is_true(json_object_get(b, "boolval")) ? 1 : 0;
    if (i) {
        json_int_t v = json_integer_value(json_object_get(i, "ival")); /* absent: 0 */
        return v == 0 || v == 1 ? (int)v : -1;
    }
    if (s && (strcasecmp(s, "true") == 0 || strcasecmp(s, "on") == 0))
        return 1;
    if (s && (strcasecmp(s, "false") == 0 || strcasecmp(s, "off") == 0))
        return 0;
    return -1;
}

/* DO / CREATE FUNCTION: the body's language and text. */
static int walk_code_options(struct walker *w, json_t *options)
{
    const char *body = NULL, *language = "plpgsql";
    size_t i;
    json_t *o;
    json_array_foreach(options, i, o) {
        json_t *d = json_object_get(o, "DefElem");
        const char *name = jstr(d, "defname");
        json_t *arg = json_object_get(d, "arg");
        if (!name)
            continue;
        if (strcmp(name, "language") == 0 && jstr(json_object_get(arg, "String"), "sval"))
            language = jstr(json_object_get(arg, "String"), "sval");
        else if (strcmp(name, "as") == 0) {
            body = jstr(json_object_get(arg, "String"), "sval");
            json_t *items = json_object_get(json_object_get(arg, "List"), "items");
            if (!body && json_array_size(items) == 1)
                body = jstr(json_object_get(json_array_get(items, 0), "String"), "sval");
            else if (json_array_size(items) > 1)
                w->st->facts |= POLICY_FACT_DYNAMIC_SQL; /* C: object file + symbol */
        }
    }
    w->st->facts |= POLICY_FACT_RUNS_CODE;
    if (body)
        return classify_body(w, body, language);
    return 0;
}

/* Whether tree names set_config anywhere as a name ({"String": "set_config"}:
 * a function list of CREATE AGGREGATE, OPERATOR, CAST ...). */
static bool names_set_config(json_t *tree)
{
    if (json_is_array(tree)) {
        size_t i;
        json_t *v;
        json_array_foreach(tree, i, v)
            if (names_set_config(v))
                return true;
        return false;
    }
    const char *sval = jstr(json_object_get(tree, "String"), "sval");
    if (sval && strcmp(sval, "set_config") == 0)
        return true;
    const char *k;
    json_t *v;
    json_object_foreach(tree, k, v)
        if ((json_is_object(v) || json_is_array(v)) && names_set_config(v))
            return true;
    return false;
}

static int walk_node(struct walker *w, const char *type, json_t *n, bool write)
{
    static const char *const rel_keys[] = {"relation", "relations", "table", NULL};
    /* Statements that name functions to be called later (an aggregate's
     * step, an operator's, a cast's): set_config among them runs with any
     * setting name. */
    static const char *const names_functions[] = {"DefineStmt", "CreateCastStmt", "CreateTransformStmt",
                                                  "CreateOpClassStmt", "AlterOpFamilyStmt", "AlterOperatorStmt",
                                                  "AlterTypeStmt", "CreateRangeStmt", "CreateConversionStmt",
                                                  /* ALTER FUNCTION set_config RENAME TO ... */
                                                  "RenameStmt", "AlterObjectSchemaStmt", "AlterFunctionStmt",
                                                  NULL};
    struct policy_stmt *st = w->st;

    if (strcmp(type, "RangeVar") == 0)
        return add_range_var(w, n, write);
    /* (Statements only: every node of the tree comes through here.) */
    size_t tl = strlen(type);
    for (size_t i = 0; tl > 4 && strcmp(type + tl - 4, "Stmt") == 0 && names_functions[i]; i++)
        if (strcmp(type, names_functions[i]) == 0 && names_set_config(n) && unknown_setting(w) < 0)
            return -1;
    /* A sequence or foreign table is made as a table is (its name checked
     * as one). */
    if (strcmp(type, "CreateSeqStmt") == 0 && add_range_var(w, json_object_get(n, "sequence"), true) < 0)
        return -1;
    if (strcmp(type, "CreateForeignTableStmt") == 0) {
        if (set_kind(w, "CREATE_FOREIGN_TABLE") < 0)
            return -1;
        return walk_members(w, json_object_get(n, "base"), rel_keys, false);
    }
    if (strcmp(type, "A_Expr") == 0) {
        /* BETWEEN is <= and >= (< and > when NOT); the others name theirs. */
        const char *k = jstr(n, "kind");
        if (k && strstr(k, "BETWEEN")) {
            static const char *const cmp[] = {"<=", ">=", "<", ">"};
            for (size_t i = 0; i < 4; i++)
                if (add_called(st, POLICY_OPERATOR_PREFIX, cmp[i]) < 0)
                    return -1;
        } else if (add_operator(st, json_object_get(n, "name")) < 0) {
            return -1;
        }
        return walk_members(w, n, NULL, write);
    }
    /* Comparisons with no operator in the text: CASE x WHEN y, x IN
     * (subquery), JOIN ... USING and NATURAL JOIN compare with =. */
    bool implicit_eq = (strcmp(type, "CaseExpr") == 0 && json_object_get(n, "arg")) ||
                       (strcmp(type, "SubLink") == 0 && !json_array_size(json_object_get(n, "operName")) &&
                        jstr(n, "subLinkType") && strcmp(jstr(n, "subLinkType"), "ANY_SUBLINK") == 0) ||
                       (strcmp(type, "JoinExpr") == 0 &&
                        (json_array_size(json_object_get(n, "usingClause")) || json_is_true(json_object_get(n, "isNatural"))));
    if ((strcmp(type, "SubLink") == 0 && add_operator(st, json_object_get(n, "operName")) < 0) ||
        (strcmp(type, "SortBy") == 0 && add_operator(st, json_object_get(n, "useOp")) < 0) ||
        (implicit_eq && add_called(st, POLICY_OPERATOR_PREFIX, "=") < 0))
        return -1;
    if (strcmp(type, "TypeCast") == 0) { /* a cast may run a function */
        char tname[3 * POLICY_NAME_MAX];
        join_names(json_object_get(json_object_get(n, "typeName"), "names"), tname, sizeof(tname));
        if (add_called(st, POLICY_CAST_PREFIX, tname) < 0)
            return -1;
    }
    if (strcmp(type, "A_Indirection") == 0) {
        /* (expr).f is a field of expr, or f(expr) as u.f is. */
        size_t i;
        json_t *item;
        json_array_foreach(json_object_get(n, "indirection"), i, item) {
            const char *f = jstr(json_object_get(item, "String"), "sval");
            if (f && add_called(st, POLICY_ATTRIBUTE_PREFIX, f) < 0)
                return -1;
        }
    }
    if (strcmp(type, "FuncCall") == 0) {
        char name[3 * POLICY_NAME_MAX];
        join_names(json_object_get(n, "funcname"), name, sizeof(name));
        if (name[0] && strv_add(&st->functions, &st->nfunctions, name, strlen(name)) < 0)
            return -1;
        /* ts_rewrite(query, 'select ...') runs its text; its three-argument
         * form does not. */
        static const char *const ts_rewrite[] = {"ts_rewrite", NULL};
        if (name_in(name, sql_text_functions) ||
            (name_in(name, ts_rewrite) && json_array_size(json_object_get(n, "args")) == 2))
            st->facts |= POLICY_FACT_RUNS_CODE | POLICY_FACT_DYNAMIC_SQL;
        if (policy_builtin_effects(name) & POLICY_BUILTIN_SERVER_FILE)
            st->facts |= POLICY_FACT_COPY_PROGRAM;
        /* set_config('name', value, is_local) is SET name: judged as that
         * setting when its name is written out (pg_dump's
         * set_config('search_path', '', false)); with any other name it may
         * change anything, the role included. */
        /* Any name whose last part is set_config: pg_catalog's (as
         * written, or db.pg_catalog.set_config), or another schema's. */
        const char *dot = strrchr(name, '.'), *base = dot ? dot + 1 : name;
        if (strcmp(base, "set_config") == 0) {
            size_t ql = dot ? (size_t)(dot - name) : 0;
            bool catalog = !dot || (ql >= 10 && strncmp(dot - 10, "pg_catalog", 10) == 0 &&
                                    (ql == 10 || dot[-11] == '.'));
            json_t *args = json_object_get(n, "args");
            json_t *arg0 = json_array_get(args, 0), *arg1 = json_array_get(args, 1), *values = json_array();
            const char *setting = const_string(arg0), *value = const_string(arg1);
            if (!setting && w->settings_name && is_name_column(arg0, ""))
                setting = w->settings_name;
            if (!values || (arg1 && json_array_append(values, arg1) < 0)) {
                json_decref(values);
                return -1;
            }
            int rc = catalog && setting && json_array_size(args) == 3 && runs_now(w)
                         ? judge_setting(w, setting, value, value != NULL, false, values)
                         : unknown_setting(w);
            json_decref(values);
            if (rc < 0)
                return -1;
        }
        return walk_members(w, n, NULL, false);
    }
    if (strcmp(type, "ColumnRef") == 0) {
        json_t *fields = json_object_get(n, "fields"), *last = json_array_get(fields, json_array_size(fields) - 1);
        const char *c = jstr(json_object_get(last, "String"), "sval");
        if (!c && json_object_get(last, "A_Star"))
            c = "*";
        /* A lone name may be a whole-row reference (row_to_json(t)): recorded too. */
        if (c && strv_add(&st->columns, &st->ncolumns, c, strlen(c)) < 0)
            return -1;
        if (c && !w->in_returning && strv_add(&st->sources, &st->nsources, c, strlen(c)) < 0)
            return -1;
        /* q.f is column f of q, or else f(q) (attribute notation): f is
         * recorded as called that way (a user function of a row is user
         * code), and for the built-ins that take any row, q as read whole. */
        const char *q = json_array_size(fields) >= 2
                            ? jstr(json_object_get(json_array_get(fields, json_array_size(fields) - 2), "String"), "sval")
                            : NULL;
        if (c && q && strcmp(c, "*") != 0) {
            if (add_called(st, POLICY_ATTRIBUTE_PREFIX, c) < 0)
                return -1;
            if (name_in(c, row_functions) && (strv_add(&st->columns, &st->ncolumns, q, strlen(q)) < 0 ||
                                              (!w->in_returning && strv_add(&st->sources, &st->nsources, q, strlen(q)) < 0)))
                return -1;
        }
        return 0;
    }
    if (strcmp(type, "InsertStmt") == 0 || strcmp(type, "UpdateStmt") == 0 ||
        strcmp(type, "DeleteStmt") == 0 || strcmp(type, "MergeStmt") == 0) {
        char kind[16];
        camel_to_kind(type, kind, sizeof(kind));
        if (set_kind(w, kind) < 0)
            return -1;
        st->facts |= POLICY_FACT_WRITES;
        if (w->stmt_depth > 0)
            st->facts |= POLICY_FACT_MODIFYING_CTE;
        /* An UPDATE or DELETE whose WHERE names no column of its target
         * (WHERE true, WHERE 1 = 1, WHERE EXISTS (SELECT 1)), like a MERGE
         * ... ON true or on the source's columns only, touches every row of
         * it (or none). WHERE CURRENT OF a cursor touches one. */
        json_t *rel = json_object_get(n, "relation");
        json_t *cond = strcmp(type, "MergeStmt") == 0 ? json_object_get(n, "joinCondition")
                       : strcmp(type, "InsertStmt") == 0 ? NULL
                                                         : json_object_get(n, "whereClause");
        if (strcmp(type, "InsertStmt") != 0 && !json_object_get(cond, "CurrentOfExpr") &&
            !refers_to(cond, jstr(rel, "relname"), jstr(json_object_get(rel, "alias"), "aliasname")))
            st->facts |= POLICY_FACT_NO_WHERE;
        /* CTEs first, so their names are known before the FROM list. */
        json_t *with = json_object_get(n, "withClause");
        size_t scope = w->nctes;
        json_t *outer_skip = w->skip_with;
        w->stmt_depth++;
        int rc = with ? walk_with(w, with) : 0;
        w->skip_with = with;
        if (rc == 0)
            rc = walk_members(w, n, rel_keys, false);
        w->skip_with = outer_skip;
        w->stmt_depth--;
        ctes_end(w, scope);
        return rc;
    }
    if (strcmp(type, "SelectStmt") == 0) {
        /* INSERT ... VALUES carries its rows as a VALUES list: no SELECT. */
        bool values_only = json_object_get(n, "valuesLists") && !json_object_get(n, "fromClause");
        if (!(values_only && w->stmt_depth > 0) && set_kind(w, "SELECT") < 0)
            return -1;
        if (json_array_size(json_object_get(n, "lockingClause")))
            st->locks_rows = true;
        json_t *into = json_object_get(n, "intoClause");
        if (into) {
            if (set_kind(w, "SELECT_INTO") < 0)
                return -1;
            st->facts |= POLICY_FACT_WRITES;
        }
        json_t *with = json_object_get(n, "withClause");
        size_t scope = w->nctes;
        json_t *outer_skip = w->skip_with;
        const char *outer_settings = w->settings_name;
        w->settings_name = settings_filter(w, n);
        w->stmt_depth++;
        int rc = with ? walk_with(w, with) : 0;
        w->skip_with = with;
        if (rc == 0) {
            static const char *const into_keys[] = {"intoClause", NULL};
            rc = walk_members(w, n, into_keys, false);
        }
        w->skip_with = outer_skip;
        w->settings_name = outer_settings;
        w->stmt_depth--;
        ctes_end(w, scope);
        return rc;
    }
    if (strcmp(type, "IntoClause") == 0) {
        json_t *rel = json_object_get(n, "rel");
        return add_range_var(w, rel, true);
    }
    if (strcmp(type, "CopyStmt") == 0) {
        bool from = json_is_true(json_object_get(n, "is_from"));
        if (set_kind(w, from ? "COPY_FROM" : "COPY_TO") < 0)
            return -1;
        if (from)
            st->facts |= POLICY_FACT_WRITES;
        else
            st->facts |= POLICY_FACT_COPY_OUT;
        if (json_object_get(n, "filename") || json_is_true(json_object_get(n, "is_program")))
            st->facts |= POLICY_FACT_COPY_PROGRAM;
        /* The layouts COPY TO can be masked in: text or CSV with their
         * default delimiter, quote and NULL string, with or without a header;
         * any other option is copy_custom_format. */
        size_t oi;
        json_t *opt;
        bool format_seen = false, header_seen = false;
        json_array_foreach(json_object_get(n, "options"), oi, opt) {
            json_t *d = json_object_get(opt, "DefElem");
            const char *name = jstr(d, "defname");
            const char *val = jstr(json_object_get(json_object_get(d, "arg"), "String"), "sval");
            int header = name && strcmp(name, "header") == 0 && !header_seen ? copy_header_option(d) : -1;
            if (name && strcmp(name, "format") == 0 && !format_seen && val &&
                (strcmp(val, "text") == 0 || strcmp(val, "csv") == 0)) {
                format_seen = true;
                st->copy_csv = strcmp(val, "csv") == 0;
            } else if (header >= 0) {
                header_seen = true;
                st->copy_header = header == 1;
            } else if (name && strcmp(name, "freeze") != 0 && strcmp(name, "encoding") != 0) {
                st->facts |= POLICY_FACT_COPY_CUSTOM;
            }
        }
        json_t *rel = json_object_get(n, "relation");
        if (rel && add_range_var(w, rel, from) < 0)
            return -1;
        json_t *where = json_object_get(n, "whereClause"); /* COPY FROM's filter runs per row */
        if (where && walk(w, where, false) < 0)
            return -1;
        json_t *q = json_object_get(n, "query");
        return q ? walk(w, q, false) : 0;
    }
    if (strcmp(type, "ExplainStmt") == 0) {
        json_t *q = json_object_get(n, "query");
        if (has_analyze_option(json_object_get(n, "options"))) {
            /* Judged as the inner statement: it runs. */
            st->facts |= POLICY_FACT_EXPLAIN_ANALYZE;
            return walk(w, q, false);
        }
        /* Plain EXPLAIN runs nothing: keep what it reads, not what it would do. */
        struct policy_stmt inner = {0};
        struct walker iw = *w;
        iw.st = &inner;
        if (set_kind(w, "EXPLAIN") < 0 || walk(&iw, q, false) < 0) {
            policy_stmt_clear(&inner);
            w->ctes = iw.ctes;
            w->nctes = iw.nctes;
            return -1;
        }
        w->ctes = iw.ctes;
        w->nctes = iw.nctes;
        int rc = 0;
        for (size_t i = 0; i < inner.nrelations && rc == 0; i++)
            rc = stmt_add_relation(st, inner.relations[i].schema, inner.relations[i].name, false);
        policy_stmt_clear(&inner);
        /* ...but EXPLAIN [CREATE TABLE AS] EXECUTE p(args) evaluates the args. */
        json_t *ctas = json_object_get(json_object_get(q, "CreateTableAsStmt"), "query");
        json_t *ex = json_object_get(ctas ? ctas : q, "ExecuteStmt");
        json_t *params = json_object_get(ex, "params");
        if (rc == 0 && params)
            rc = walk(w, params, false);
        return rc;
    }
    if (strcmp(type, "DoStmt") == 0) {
        if (set_kind(w, "DO") < 0)
            return -1;
        return walk_code_options(w, json_object_get(n, "args"));
    }
    if (strcmp(type, "CreateFunctionStmt") == 0) {
        if (set_kind(w, json_is_true(json_object_get(n, "is_procedure")) ? "CREATE_PROCEDURE"
                                                                         : "CREATE_FUNCTION") < 0)
            return -1;
        if (walk_code_options(w, json_object_get(n, "options")) < 0)
            return -1;
        json_t *sql_body = json_object_get(n, "sql_body");
        return sql_body ? walk(w, sql_body, false) : 0;
    }
    if (strcmp(type, "CallStmt") == 0) {
        if (set_kind(w, "CALL") < 0)
            return -1;
        st->facts |= POLICY_FACT_RUNS_CODE;
        json_t *fc = json_object_get(n, "funccall"); /* a FuncCall without its wrapper */
        return fc ? walk_node(w, "FuncCall", fc, false) : 0;
    }
    if (strcmp(type, "DropStmt") == 0) {
        const char *ot = jstr(n, "removeType");
        const char *behavior = jstr(n, "behavior");
        if (behavior && strcmp(behavior, "DROP_CASCADE") == 0)
            st->facts |= POLICY_FACT_CASCADE;
        if (set_kind_obj(w, "DROP", ot) < 0)
            return -1;
        size_t i;
        json_t *obj;
        json_array_foreach(json_object_get(n, "objects"), i, obj) {
            if (add_named_relation(st, ot, obj) < 0)
                return -1;
        }
        return 0;
    }
    if (strcmp(type, "AlterExtensionContentsStmt") == 0) {
        /* A table (schema, view, ...) made a member of an extension is
         * dropped by DROP EXTENSION, no CASCADE needed: so this is also an
         * ALTER of that object (ALTER_TABLE, ALTER_SCHEMA, ...). */
        const char *ot = jstr(n, "objtype");
        if (set_kind(w, "ALTER_EXTENSION_CONTENTS") < 0 || set_kind_obj(w, "ALTER", ot) < 0)
            return -1;
        return add_named_relation(st, ot, json_object_get(n, "object"));
    }
    if (strcmp(type, "AlterTableStmt") == 0) {
        if (set_kind_obj(w, "ALTER", jstr(n, "objtype")) < 0)
            return -1;
        return walk_members(w, n, rel_keys, false);
    }
    if (strcmp(type, "RenameStmt") == 0) {
        /* RENAME COLUMN / CONSTRAINT alter the relation that holds them. */
        const char *rt = jstr(n, "renameType");
        if (rt && (strcmp(rt, "OBJECT_COLUMN") == 0 || strcmp(rt, "OBJECT_TABCONSTRAINT") == 0) &&
            jstr(n, "relationType"))
            rt = jstr(n, "relationType");
        if (set_kind_obj(w, "ALTER", rt) < 0)
            return -1;
        const char *newname = jstr(n, "newname");
        if (newname && (strcmp(newname, "pg_settings") == 0 || strcmp(newname, "set_config") == 0) &&
            unknown_setting(w) < 0)
            return -1; /* see add_range_var; a function called set_config */
        /* PostgreSQL renames a table through ALTER INDEX ... RENAME TO, and
         * its columns through ALTER VIEW / MATERIALIZED VIEW / FOREIGN TABLE
         * ... RENAME COLUMN and ALTER TYPE ... RENAME ATTRIBUTE: the words
         * do not tell, so each of these is also an ALTER TABLE. */
        const char *ren = jstr(n, "renameType");
        if (ren && (strcmp(ren, "OBJECT_INDEX") == 0 || strcmp(ren, "OBJECT_COLUMN") == 0 ||
                    strcmp(ren, "OBJECT_ATTRIBUTE") == 0) &&
            set_kind(w, "ALTER_TABLE") < 0)
            return -1;
        return walk_members(w, n, rel_keys, false);
    }
    if (strcmp(type, "AlterObjectSchemaStmt") == 0 || strcmp(type, "AlterOwnerStmt") == 0) {
        if (set_kind_obj(w, "ALTER", jstr(n, "objectType")) < 0)
            return -1;
        return walk_members(w, n, rel_keys, false);
    }
    if (strcmp(type, "TruncateStmt") == 0) {
        if (set_kind(w, "TRUNCATE") < 0)
            return -1;
        st->facts |= POLICY_FACT_WRITES;
        return walk_members(w, n, rel_keys, false);
    }
    if (strcmp(type, "CreateStmt") == 0) {
        if (set_kind(w, "CREATE_TABLE") < 0)
            return -1;
        return walk_members(w, n, rel_keys, false);
    }
    if (strcmp(type, "CreateTableAsStmt") == 0) {
        if (set_kind_obj(w, "CREATE", jstr(n, "objtype")) < 0)
            return -1;
        static const char *const into_keys[] = {"into", NULL};
        return walk_members(w, n, into_keys, false);
    }
    if (strcmp(type, "ViewStmt") == 0) {
        if (set_kind(w, "CREATE_VIEW") < 0)
            return -1;
        static const char *const view_keys[] = {"view", NULL};
        if (walk_members(w, n, view_keys, false) < 0)
            return -1;
        /* A view over pg_settings can be updated like it: set_config(). */
        for (size_t i = 0; i < st->nrelations; i++)
            if (st->relations[i].read && is_pg_settings(st->relations[i].schema, st->relations[i].name))
                return unknown_setting(w);
        return 0;
    }
    if (strcmp(type, "IndexStmt") == 0) {
        if (set_kind(w, "CREATE_INDEX") < 0)
            return -1;
        return walk_members(w, n, rel_keys, false);
    }
    if (strcmp(type, "CreateSchemaStmt") == 0)
        return set_kind(w, "CREATE_SCHEMA") < 0 ? -1 : walk_members(w, n, NULL, false);
    if (strcmp(type, "CreatedbStmt") == 0)
        return set_kind(w, "CREATE_DATABASE");
    if (strcmp(type, "DropdbStmt") == 0)
        return set_kind(w, "DROP_DATABASE");
    if (strcmp(type, "AlterDatabaseStmt") == 0 || strcmp(type, "AlterDatabaseSetStmt") == 0 ||
        strcmp(type, "AlterDatabaseRefreshCollStmt") == 0)
        return set_kind(w, "ALTER_DATABASE");
    if (strcmp(type, "CreateRoleStmt") == 0)
        return set_kind(w, "CREATE_ROLE");
    if (strcmp(type, "AlterRoleStmt") == 0 || strcmp(type, "AlterRoleSetStmt") == 0)
        return set_kind(w, "ALTER_ROLE");
    if (strcmp(type, "DropRoleStmt") == 0)
        return set_kind(w, "DROP_ROLE");
    if (strcmp(type, "GrantRoleStmt") == 0)
        return set_kind(w, json_is_true(json_object_get(n, "is_grant")) ? "GRANT_ROLE" : "REVOKE_ROLE");
    if (strcmp(type, "GrantStmt") == 0) {
        if (set_kind(w, json_is_true(json_object_get(n, "is_grant")) ? "GRANT" : "REVOKE") < 0)
            return -1;
        return walk_members(w, n, NULL, false);
    }
    if (strcmp(type, "CommentStmt") == 0)
        return set_kind(w, "COMMENT");
    if (strcmp(type, "AlterSystemStmt") == 0)
        return set_kind(w, "ALTER_SYSTEM");
    if (strcmp(type, "VariableSetStmt") == 0) {
        const char *name = jstr(n, "name"), *k = jstr(n, "kind");
        bool reset = k && strncmp(k, "VAR_RESET", 9) == 0;
        /* SET client_encoding TO DEFAULT names no value: the database's
         * default, which a ParameterStatus reports (and gateway/params.c
         * checks). */
        json_t *args = json_object_get(n, "args"), *arg = json_array_get(args, 0);
        return judge_setting(w, name, const_string(arg), !arg || const_string(arg), reset, args);
    }
    if (strcmp(type, "VariableShowStmt") == 0)
        return set_kind(w, "SHOW");
    if (strcmp(type, "TransactionStmt") == 0) {
        static const struct { const char *k, *kind; } map[] = {
            {"TRANS_STMT_BEGIN", "BEGIN"}, {"TRANS_STMT_START", "BEGIN"},
            {"TRANS_STMT_COMMIT", "COMMIT"}, {"TRANS_STMT_ROLLBACK", "ROLLBACK"},
            {"TRANS_STMT_SAVEPOINT", "SAVEPOINT"}, {"TRANS_STMT_RELEASE", "RELEASE"},
            {"TRANS_STMT_ROLLBACK_TO", "ROLLBACK_TO"}, {"TRANS_STMT_PREPARE", "PREPARE_TRANSACTION"},
            {"TRANS_STMT_COMMIT_PREPARED", "COMMIT_PREPARED"},
            {"TRANS_STMT_ROLLBACK_PREPARED", "ROLLBACK_PREPARED"},
        };
        const char *k = jstr(n, "kind");
        for (size_t i = 0; k && i < sizeof(map) / sizeof(map[0]); i++)
            if (strcmp(k, map[i].k) == 0)
                return set_kind(w, map[i].kind);
        return set_kind(w, "TRANSACTION");
    }
    if (strcmp(type, "VacuumStmt") == 0) {
        if (set_kind(w, json_is_true(json_object_get(n, "is_vacuumcmd")) ? "VACUUM" : "ANALYZE") < 0)
            return -1;
        return walk_members(w, n, NULL, false);
    }
    if (strcmp(type, "PrepareStmt") == 0) {
        if (set_kind(w, "PREPARE") < 0)
            return -1;
        const char *name = jstr(n, "name");
        if (name && !(st->prepared_name = strdup(name)))
            return -1;
        return 0; /* the inner statement is classified by the caller (tracker) */
    }
    if (strcmp(type, "ExecuteStmt") == 0) {
        if (set_kind(w, "EXECUTE") < 0)
            return -1;
        const char *name = jstr(n, "name");
        if (name && !(st->prepared_name = strdup(name)))
            return -1;
        return walk(w, json_object_get(n, "params"), false);
    }
    if (strcmp(type, "DeallocateStmt") == 0) {
        if (set_kind(w, "DEALLOCATE") < 0)
            return -1;
        const char *name = jstr(n, "name");
        if (!(st->prepared_name = strdup(name ? name : "")))
            return -1;
        return 0;
    }
    if (strcmp(type, "DeclareCursorStmt") == 0) {
        if (set_kind(w, "DECLARE_CURSOR") < 0)
            return -1;
        const char *name = jstr(n, "portalname");
        if (!(st->cursor_name = strdup(name ? name : "")))
            return -1;
        return walk_members(w, n, NULL, false);
    }
    if (strcmp(type, "FetchStmt") == 0) {
        const char *name = jstr(n, "portalname");
        if (!st->cursor_name && !(st->cursor_name = strdup(name ? name : "")))
            return -1;
        return set_kind(w, json_is_true(json_object_get(n, "ismove")) ? "MOVE" : "FETCH");
    }
    if (strcmp(type, "ClosePortalStmt") == 0) {
        const char *name = jstr(n, "portalname");
        if (!(st->cursor_name = strdup(name ? name : "")))
            return -1;
        return set_kind(w, "CLOSE");
    }
    if (strcmp(type, "ListenStmt") == 0)
        return set_kind(w, "LISTEN");
    if (strcmp(type, "UnlistenStmt") == 0)
        return set_kind(w, "UNLISTEN");
    if (strcmp(type, "NotifyStmt") == 0)
        return set_kind(w, "NOTIFY");
    if (strcmp(type, "CreateCastStmt") == 0)
        st->facts |= POLICY_FACT_RUNS_CODE; /* a cast that runs a function wherever a value is cast */
    if (strcmp(type, "LoadStmt") == 0) {
        st->facts |= POLICY_FACT_RUNS_CODE; /* loads a shared library into the backend */
        return set_kind(w, "LOAD");
    }
    if (strcmp(type, "CreateExtensionStmt") == 0) {
        st->facts |= POLICY_FACT_RUNS_CODE; /* runs the extension's script */
        return set_kind(w, "CREATE_EXTENSION");
    }
    if (strcmp(type, "DiscardStmt") == 0)
        return set_kind(w, "DISCARD");
    if (strcmp(type, "LockStmt") == 0) {
        if (set_kind(w, "LOCK") < 0)
            return -1;
        return walk_members(w, n, NULL, false);
    }
    if (strcmp(type, "RefreshMatViewStmt") == 0) {
        if (set_kind(w, "REFRESH_MATERIALIZED_VIEW") < 0)
            return -1;
        return walk_members(w, n, rel_keys, false);
    }
    if (strcmp(type, "DefineStmt") == 0)
        return set_kind_obj(w, "CREATE", jstr(n, "kind"));
    if (strcmp(type, "CreateTrigStmt") == 0 || strcmp(type, "RuleStmt") == 0 ||
        strcmp(type, "CreatePolicyStmt") == 0 || strcmp(type, "AlterPolicyStmt") == 0) {
        char kind[64];
        if (strcmp(type, "CreateTrigStmt") == 0)
            snprintf(kind, sizeof(kind), "CREATE_TRIGGER");
        else if (strcmp(type, "RuleStmt") == 0) {
            /* A rule is code the server runs on later statements (its
             * actions may even return rows to an INSERT): as CREATE FUNCTION. */
            snprintf(kind, sizeof(kind), "CREATE_RULE");
            st->facts |= POLICY_FACT_RUNS_CODE;
        }
        else
            camel_to_kind(type, kind, sizeof(kind));
        if (set_kind(w, kind) < 0)
            return -1;
        return walk_members(w, n, rel_keys, false);
    }
    if (strlen(type) > 4 && strcmp(type + strlen(type) - 4, "Stmt") == 0 && st->nkinds == 0) {
        /* Any other statement: a kind from its node name, tree walked for
         * relations; and its natural name where it has another. */
        char kind[96];
        camel_to_kind(type, kind, sizeof(kind));
        if (set_kind(w, kind) < 0)
            return -1;
        for (size_t i = 0; i < sizeof kind_aliases / sizeof kind_aliases[0]; i++)
            if (strcmp(kind, kind_aliases[i].fallback) == 0 && set_kind(w, kind_aliases[i].natural) < 0)
                return -1;
        /* ALTER FUNCTION's node also serves ALTER PROCEDURE and ALTER ROUTINE. */
        if (strcmp(type, "AlterFunctionStmt") == 0 && jstr(n, "objtype") && set_kind_obj(w, "ALTER", jstr(n, "objtype")) < 0)
            return -1;
    }
    return walk_members(w, n, NULL, write);
}

static int walk(struct walker *w, json_t *node, bool write)
{
    if (json_is_array(node)) {
        size_t i;
        json_t *v;
        json_array_foreach(node, i, v)
            if (walk(w, v, write) < 0)
                return -1;
        return 0;
    }
    if (!json_is_object(node))
        return 0;
    /* A RangeVar in a typed field ("relation": {...}) comes without its wrapper. */
    if (json_is_string(json_object_get(node, "relname")))
        return add_range_var(w, node, write);
    const char *key;
    json_t *val;
    json_object_foreach(node, key, val)
        if (walk_member(w, key, val, write) < 0)
            return -1;
    return 0;
}

/* ---- code bodies (DO, CREATE FUNCTION) ---- */

static int classify_embedded(struct walker *w, const char *sql)
{
    struct policy_analysis a = {0};
    char err[POLICY_ERR_MAX];
    int rc = policy_classify_depth(sql, NULL, &a, err, w->body_depth + 1);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < a.nstmts && rc == 0; i++)
        rc = policy_stmt_merge(w->st, &a.stmts[i]);
    policy_analysis_free(&a);
    return rc;
}

/* Every PLpgSQL_expr in a plpgsql tree: SQL statements and expressions. An
 * expression the parser cannot take marks the body as unknowable. */
static int walk_plpgsql(struct walker *w, json_t *node)
{
    if (json_is_array(node)) {
        size_t i;
        json_t *v;
        json_array_foreach(node, i, v)
            if (walk_plpgsql(w, v) < 0)
                return -1;
        return 0;
    }
    if (!json_is_object(node))
        return 0;
    const char *key;
    json_t *val;
    json_object_foreach(node, key, val) {
        if (strcmp(key, "PLpgSQL_stmt_dynexecute") == 0 || strcmp(key, "PLpgSQL_stmt_dynfors") == 0 ||
            strcmp(key, "PLpgSQL_stmt_open") == 0)
            w->st->facts |= POLICY_FACT_DYNAMIC_SQL;
        if (strcmp(key, "PLpgSQL_expr") == 0) {
            const char *q = jstr(val, "query");
            if (!q)
                continue;
            if (classify_embedded(w, q) == 0)
                continue;
            /* An expression: "x > 1", or an assignment "x := expr". */
            const char *assign = strstr(q, ":=");
            struct buf b = {0};
            buf_printf(&b, "SELECT %s", assign ? assign + 2 : q);
            int rc = b.data ? classify_embedded(w, buf_cstr(&b)) : -1;
            buf_free(&b);
            if (rc != 0)
                w->st->facts |= POLICY_FACT_DYNAMIC_SQL;
            continue;
        }
        if (walk_plpgsql(w, val) < 0)
            return -1;
    }
    return 0;
}

static int classify_body(struct walker *w, const char *body, const char *language)
{
    if (strcmp(language, "sql") == 0) {
        if (w->body_depth >= CLASSIFY_MAX_DEPTH || classify_embedded(w, body) != 0)
            w->st->facts |= POLICY_FACT_DYNAMIC_SQL;
        return 0;
    }
    if (strcmp(language, "plpgsql") != 0 || w->body_depth >= CLASSIFY_MAX_DEPTH) {
        w->st->facts |= POLICY_FACT_DYNAMIC_SQL; /* a language we cannot read */
        return 0;
    }
    /* Wrap the body in a function so the plpgsql parser takes it; the dollar
     * tag must not occur in the body. */
    char tag[32];
    for (unsigned i = 0;; i++) {
        snprintf(tag, sizeof(tag), "$hoopctl%u$", i);
        if (!strstr(body, tag))
            break;
    }
    struct buf b = {0};
    buf_printf(&b, "CREATE FUNCTION hoopctl_body() RETURNS void LANGUAGE plpgsql AS %s%s%s", tag, body, tag);
    if (!b.data)
        return -1;
    /* Note: libpg_query 15-4.0.0 leaks one byte per body that fails to parse. */
    PgQueryPlpgsqlParseResult r = pg_query_parse_plpgsql(buf_cstr(&b));
    buf_free(&b);
    int rc = 0;
    if (r.error || !r.plpgsql_funcs) {
        w->st->facts |= POLICY_FACT_DYNAMIC_SQL; /* the server may still run it: unknowable */
    } else {
        json_t *tree = json_loads(r.plpgsql_funcs, 0, NULL);
        if (!tree)
            w->st->facts |= POLICY_FACT_DYNAMIC_SQL;
        else {
            rc = walk_plpgsql(w, tree);
            json_decref(tree);
        }
    }
    pg_query_free_plpgsql_parse_result(r);
    return rc;
}

/* ---- entry ---- */

static void set_parse_error(char err[POLICY_ERR_MAX], PgQueryError *e)
{
    if (e->cursorpos > 0)
        snprintf(err, POLICY_ERR_MAX, "%s%s (at position %d)", strncmp(e->message, "syntax error", 12) ? "syntax error: " : "",
                 e->message, e->cursorpos);
    else
        snprintf(err, POLICY_ERR_MAX, "%s%s", strncmp(e->message, "syntax error", 12) ? "syntax error: " : "",
                 e->message);
}

static void fill_audit_text(struct policy_stmt *st)
{
    PgQueryNormalizeResult nr = pg_query_normalize(st->text);
    if (!nr.error && nr.normalized_query)
        st->normalized = strdup(nr.normalized_query);
    pg_query_free_normalize_result(nr);
    PgQueryFingerprintResult fr = pg_query_fingerprint(st->text);
    if (!fr.error && fr.fingerprint_str)
        snprintf(st->fingerprint, sizeof(st->fingerprint), "%s", fr.fingerprint_str);
    pg_query_free_fingerprint_result(fr);
}

/* Classify a PREPARE's inner statement and hand it to the session tracker. */
static int track_prepare(struct policy_session *s, struct policy_stmt *st, json_t *prep, int depth,
                         char err[POLICY_ERR_MAX])
{
    struct policy_stmt inner = {0};
    struct walker w = {.st = &inner, .body_depth = depth};
    /* The PREPARE's own text goes with it: a review of an EXECUTE shows it. */
    if (st->text && !(inner.text = strdup(st->text))) {
        snprintf(err, POLICY_ERR_MAX, "out of memory");
        return -1;
    }
    int rc = walk(&w, json_object_get(prep, "query"), false);
    policy_strv_free(w.ctes, w.nctes);
    if (rc == 0 && s)
        rc = policy_session_remember(s, st->prepared_name ? st->prepared_name : "", &inner, err);
    else if (rc < 0)
        snprintf(err, POLICY_ERR_MAX, "out of memory");
    policy_stmt_clear(&inner);
    return rc;
}

#define CURSOR_OPT_HOLD 0x0020 /* DeclareCursorStmt.options: WITH HOLD (PostgreSQL's parsenodes.h) */

/* What a FETCH or MOVE reads: the declared query's relations, functions,
 * columns and aliases (for masking), or the unknown_cursor fact. */
static int track_fetch(struct policy_session *s, struct policy_stmt *st, json_t *fetch)
{
    const struct policy_stmt *d = s ? policy_session_lookup_cursor(s, jstr(fetch, "portalname")) : NULL;
    if (!d) {
        st->facts |= POLICY_FACT_UNKNOWN_CURSOR;
        return 0;
    }
    for (size_t i = 0; i < d->nrelations; i++)
        if (stmt_add_relation(st, d->relations[i].schema, d->relations[i].name, false) < 0)
            return -1;
    for (size_t i = 0; i < d->nfunctions; i++)
        if (strv_add(&st->functions, &st->nfunctions, d->functions[i], strlen(d->functions[i])) < 0)
            return -1;
    for (size_t i = 0; i < d->ncolumns; i++)
        if (strv_add(&st->columns, &st->ncolumns, d->columns[i], strlen(d->columns[i])) < 0)
            return -1;
    for (size_t i = 0; i < d->naliases; i++)
        if (strv_add(&st->aliases, &st->naliases, d->aliases[i], strlen(d->aliases[i])) < 0)
            return -1;
    st->facts |= d->facts & (POLICY_FACT_DYNAMIC_SQL | POLICY_FACT_SEARCH_PATH | POLICY_FACT_UNKNOWN_CURSOR |
                             POLICY_FACT_UNKNOWN_PREPARED);
    return 0;
}

/* A DROP, TRUNCATE or ALTER of tables, views, sequences or indexes whose
 * every relation is written pg_temp.name: that schema is always the
 * session's own temporary one, so nothing it names outlives the session or
 * is seen by another (PostgreSQL refuses to move objects into or out of it,
 * to tie a permanent table to a temporary one by a foreign key or a
 * partition, and a view over a temporary table is temporary). A relation of
 * another schema anywhere in the statement (ALTER TABLE pg_temp.t INHERIT
 * public.orders) or unqualified (which may be a permanent one) makes it
 * false. */
static bool only_temp_relations(const struct policy_stmt *st)
{
    static const char *const kinds[] = {"DROP_TABLE", "DROP_VIEW", "DROP_SEQUENCE", "DROP_INDEX", "TRUNCATE",
                                        "ALTER_TABLE", "ALTER_VIEW", "ALTER_SEQUENCE", "ALTER_INDEX", NULL};
    if (st->nkinds == 0 || st->nrelations == 0)
        return false;
    for (size_t i = 0; i < st->nkinds; i++) {
        size_t k = 0;
        while (kinds[k] && strcmp(kinds[k], st->kinds[i]) != 0)
            k++;
        if (!kinds[k])
            return false;
    }
    for (size_t i = 0; i < st->nrelations; i++)
        if (!st->relations[i].schema || strcmp(st->relations[i].schema, "pg_temp") != 0)
            return false;
    return true;
}

int policy_classify_depth(const char *sql, struct policy_session *session,
                          struct policy_analysis *out, char err[POLICY_ERR_MAX], int depth)
{
    memset(out, 0, sizeof(*out));
    out->cacheable = true;
    size_t sql_len = strlen(sql);
    if (sql_len > POLICY_MAX_SQL) {
        snprintf(err, POLICY_ERR_MAX, "statement too long (%zu bytes, limit %u)", sql_len, POLICY_MAX_SQL);
        return -1;
    }
    if (!util_utf8_valid(sql, sql_len)) {
        snprintf(err, POLICY_ERR_MAX, "the statement's text is not valid UTF-8, and the policy reads UTF-8 "
                                      "only: set client_encoding to UTF8");
        return -1;
    }
    PgQueryParseResult r = pg_query_parse(sql);
    if (r.error) {
        set_parse_error(err, r.error);
        pg_query_free_parse_result(r);
        return -1;
    }
    json_error_t jerr;
    json_t *tree = json_loads(r.parse_tree, 0, &jerr);
    pg_query_free_parse_result(r);
    if (!tree) {
        snprintf(err, POLICY_ERR_MAX, "cannot read the parse tree: %s", jerr.text);
        return -1;
    }
    json_t *stmts = json_object_get(tree, "stmts");
    size_t n = json_array_size(stmts);
    out->stmts = calloc(n ? n : 1, sizeof(*out->stmts));
    if (!out->stmts) {
        json_decref(tree);
        snprintf(err, POLICY_ERR_MAX, "out of memory");
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        json_t *raw = json_array_get(stmts, i);
        struct policy_stmt *st = &out->stmts[i];
        out->nstmts++;
        size_t loc = (size_t)json_integer_value(json_object_get(raw, "stmt_location"));
        size_t len = (size_t)json_integer_value(json_object_get(raw, "stmt_len"));
        if (loc > sql_len)
            loc = sql_len;
        if (len == 0 || loc + len > sql_len)
            len = sql_len - loc;
        if (!(st->text = strndup(sql + loc, len))) {
            rc = -1;
            break;
        }
        json_t *node = json_object_get(raw, "stmt");
        struct walker w = {.st = st, .session = session, .body_depth = depth, .root = node};
        rc = walk(&w, node, false);
        policy_strv_free(w.ctes, w.nctes);
        if (rc < 0) {
            snprintf(err, POLICY_ERR_MAX, "out of memory");
            break;
        }
        if (st->nkinds == 0 && policy_stmt_add_kind(st, "UNKNOWN") < 0) {
            rc = -1;
            break;
        }
        st->category = policy_kind_category(st->kind);
        if (only_temp_relations(st))
            st->facts |= POLICY_FACT_TEMP_ONLY;
        if (fires_event_triggers(st) && add_called(st, POLICY_EVENT_TRIGGER_PREFIX, "ddl") < 0) {
            snprintf(err, POLICY_ERR_MAX, "out of memory");
            rc = -1;
            break;
        }
        if (depth == 0)
            fill_audit_text(st);

        /* search_path: once changed, every later statement of the session
         * may resolve unqualified names anywhere. */
        if (st->facts & POLICY_FACT_SEARCH_PATH) {
            out->cacheable = false;
            if (session)
                policy_session_note_search_path(session, w.catalog_moves);
        }
        if (session && policy_session_search_path_changed(session))
            st->facts |= POLICY_FACT_SEARCH_PATH;

        /* Session state: prepared statements. */
        const char *k = st->kind;
        if (strcmp(k, "PREPARE") == 0) {
            out->cacheable = false;
            rc = track_prepare(session, st, json_object_get(node, "PrepareStmt"), depth, err);
        } else if (policy_stmt_has_kind(st, POLICY_KINDS("EXECUTE"))) {
            /* EXECUTE, EXPLAIN ANALYZE EXECUTE, CREATE TABLE AS EXECUTE. */
            out->cacheable = false;
            st->facts |= POLICY_FACT_PREPARED;
            const struct policy_stmt *p = session ? policy_session_lookup(session, st->prepared_name) : NULL;
            if (p) {
                rc = policy_stmt_merge(st, p);
                if (rc == 0 && p->text && !st->prepared_text && !(st->prepared_text = strdup(p->text)))
                    rc = -1;
            } else
                st->facts |= POLICY_FACT_UNKNOWN_PREPARED;
            /* What the prepared statement sets, it sets now. */
            if (p && (p->facts & POLICY_FACT_SEARCH_PATH))
                policy_session_note_search_path(session, true);
        } else if (strcmp(k, "DEALLOCATE") == 0) {
            out->cacheable = false; /* the entry stays: DEALLOCATE may fail at the server */
        } else if (strcmp(k, "DISCARD") == 0) {
            out->cacheable = false;
        } else if (strcmp(k, "DECLARE_CURSOR") == 0) {
            out->cacheable = false; /* a cache hit would skip remembering it */
            json_t *decl = json_object_get(node, "DeclareCursorStmt");
            bool hold = json_integer_value(json_object_get(decl, "options")) & CURSOR_OPT_HOLD;
            if (session)
                rc = policy_session_remember_cursor(session, jstr(decl, "portalname"), st, hold, err);
        } else if (strcmp(k, "FETCH") == 0 || strcmp(k, "MOVE") == 0) {
            out->cacheable = false; /* judged by session state */
            rc = track_fetch(session, st, json_object_get(node, "FetchStmt"));
        }
        if (rc < 0 && !err[0])
            snprintf(err, POLICY_ERR_MAX, "out of memory");
    }
    json_decref(tree);
    if (rc < 0) {
        policy_analysis_free(out);
        return -1;
    }
    return 0;
}

int policy_classify(const char *sql, struct policy_session *session,
                    struct policy_analysis *out, char err[POLICY_ERR_MAX])
{
    err[0] = '\0';
    return policy_classify_depth(sql, session, out, err, 0);
}

char *policy_redact_literals(const char *sql, char err[POLICY_ERR_MAX])
{
    PgQueryNormalizeResult nr = pg_query_normalize(sql);
    char *out = NULL;
    if (nr.error)
        set_parse_error(err, nr.error);
    else if (!(out = strdup(nr.normalized_query)))
        snprintf(err, POLICY_ERR_MAX, "out of memory");
    pg_query_free_normalize_result(nr);
    return out;
}

const char *policy_fact_name(unsigned fact_bit)
{
    switch (fact_bit) {
    case POLICY_FACT_NO_WHERE: return "no_where";
    case POLICY_FACT_RUNS_CODE: return "runs_code";
    case POLICY_FACT_DYNAMIC_SQL: return "dynamic_sql";
    case POLICY_FACT_EXPLAIN_ANALYZE: return "explain_analyze";
    case POLICY_FACT_WRITES: return "writes";
    case POLICY_FACT_MODIFYING_CTE: return "modifying_cte";
    case POLICY_FACT_COPY_OUT: return "copy_out";
    case POLICY_FACT_COPY_PROGRAM: return "copy_server_file";
    case POLICY_FACT_PREPARED: return "prepared";
    case POLICY_FACT_UNKNOWN_PREPARED: return "unknown_prepared";
    case POLICY_FACT_UNKNOWN_CURSOR: return "unknown_cursor";
    case POLICY_FACT_SEARCH_PATH: return "search_path_changed";
    case POLICY_FACT_CASCADE: return "cascade";
    case POLICY_FACT_COPY_CUSTOM: return "copy_custom_format";
    case POLICY_FACT_UNKNOWN_SETTING: return "unknown_setting";
    case POLICY_FACT_TEMP_ONLY: return "temp_only";
    default: return NULL;
    }
}

static json_t *strv_json(char **v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

json_t *policy_stmt_to_json(const struct policy_stmt *st)
{
    json_t *o = json_object();
    json_object_set_new(o, "text", json_string(st->text ? st->text : ""));
    json_object_set_new(o, "kind", json_string(st->kind ? st->kind : "UNKNOWN"));
    json_object_set_new(o, "category", json_string(st->category ? st->category : "utility"));
    json_object_set_new(o, "kinds", strv_json(st->kinds, st->nkinds));
    json_t *rels = json_array();
    for (size_t i = 0; i < st->nrelations; i++) {
        const struct policy_relation *r = &st->relations[i];
        json_t *ro = json_object();
        json_object_set_new(ro, "schema", json_string(r->schema ? r->schema : "public"));
        json_object_set_new(ro, "name", json_string(r->name));
        json_object_set_new(ro, "schema_defaulted", json_boolean(r->schema == NULL));
        json_object_set_new(ro, "access", json_string(r->write ? "write" : "read"));
        json_array_append_new(rels, ro);
    }
    json_object_set_new(o, "relations", rels);
    json_object_set_new(o, "functions", strv_json(st->functions, st->nfunctions));
    json_t *facts = json_array();
    for (unsigned b = 1; b && b <= POLICY_FACT_LAST; b <<= 1)
        if (st->facts & b)
            json_array_append_new(facts, json_string(policy_fact_name(b)));
    json_object_set_new(o, "facts", facts);
    if (st->prepared_name)
        json_object_set_new(o, "prepared_name", json_string(st->prepared_name));
    if (st->normalized)
        json_object_set_new(o, "normalized", json_string(st->normalized));
    if (st->fingerprint[0])
        json_object_set_new(o, "fingerprint", json_string(st->fingerprint));
    return o;
}

json_t *policy_analysis_to_json(const struct policy_analysis *a)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < a->nstmts; i++)
        json_array_append_new(arr, policy_stmt_to_json(&a->stmts[i]));
    return arr;
}
