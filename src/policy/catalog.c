/* catalog.c — the catalog resolver over a libpq side connection: table OID +
 * attribute number -> schema.table.column; for a view column, its base column
 * (from the view rule's target list in pg_rewrite) or, for an expression,
 * every column the view reads (pg_depend); views of views are followed; for
 * a table in an inheritance tree or a partitioned one, its ancestors' and
 * descendants' column of that name too (pg_inherits).
 * by name, whether a relation is a view (and what it reads) and whether a
 * function may be user code. Answers are cached until forget(). */
#include "hoopctl/policy.h"

#include "hoopctl/log.h"
#include "hoopctl/util.h"

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CATALOG_MAX_VIEW_DEPTH 8
/* Answers are kept this long: a view another client replaces (through
 * another gateway, or straight to the database) is seen within it. One this
 * process's sessions change is seen at once (policy_catalog_changed). */
#define CATALOG_TTL_MS 2000

static atomic_uint_fast64_t catalog_generation;
static _Atomic int64_t catalog_failed_logged_ms; /* when a failed query was last logged, by any session */

void policy_catalog_changed(void)
{
    atomic_fetch_add(&catalog_generation, 1);
}
#define CATALOG_MAX_ENTRIES 65536
#define CATALOG_MAX_WRITE_COLUMNS 4096
/* PostgreSQL's FirstNormalObjectId: objects below it came with the server
 * (pg_catalog, information_schema); any other was made by someone, also
 * when moved into a system schema. */
#define FIRST_NORMAL_OID "16384"

struct catalog_entry {
    uint32_t oid;
    int16_t attnum;
    struct policy_column_info info;
};

/* An answer about a name: a relation (view or not, its base columns) or a
 * function (user code or not). */
struct catalog_name {
    char kind;                    /* 'r' relation, 'f' function, 'o' operator, 'a' a function of a
                                   * row, 'k' a cast to a type, 'c' view column, 'w' a write's reach,
                                   * 'x' code a relation runs unnamed */
    char schema[POLICY_NAME_MAX]; /* "" for any */
    char name[2 * POLICY_NAME_MAX + 2]; /* a view column: "<length of view>:<view><column>" */
    bool flag;                    /* relation: is a view; 'x': row security code; others: user code */
    bool maint;                   /* 'x': code that maintenance runs over the rows */
    struct policy_column_info info;
};

struct catalog_pg {
    struct policy_catalog base;   /* first: the interface */
    PGconn *conn;
    struct catalog_entry *entries;
    size_t n, cap;
    struct catalog_name *names;
    size_t nnames, capnames;
    uint_fast64_t generation;     /* catalog_generation when the answers were cached */
    int64_t since_ms;             /* when the first of them was */
    bool seeds_known;             /* code_seeds_sql was asked since the answers were dropped */
    bool code_everywhere;         /* an implicit cast between built-in types runs code someone wrote */
    char *read_seeds, *maint_seeds; /* its relation OIDs, as oid[] text ("{}": none) */
};

static void catalog_forget(struct policy_catalog *self);

/* Drop the cached answers when DDL here committed since, or when they are
 * older than CATALOG_TTL_MS. Answers handed out before are the caller's to
 * have used (they are not kept across calls). */
static void catalog_refresh(struct catalog_pg *c)
{
    uint_fast64_t g = atomic_load(&catalog_generation);
    int64_t now = util_now_ms();
    if (g != c->generation || now - c->since_ms > CATALOG_TTL_MS) {
        catalog_forget(&c->base);
        c->generation = g;
        c->since_ms = now;
    }
}

static const char column_sql[] =
    "SELECT n.nspname, c.relname, a.attname, c.relkind "
    "FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid "
    "WHERE c.oid = $1::oid AND a.attnum = $2::int2";

/* Every column a view's rewrite rule depends on, with its relation's kind.
 * A whole-row reference (u::text, row_to_json(u): a Var of attribute 0 in
 * the rule) records no column, so a rule that holds one reads every column
 * of every relation it depends on. */
static const char view_sql[] =
    "SELECT DISTINCT d.refobjid, a.attnum, c.relkind "
    "FROM pg_catalog.pg_rewrite r "
    "JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass "
    "  AND d.objid = r.oid AND d.refclassid = 'pg_catalog.pg_class'::regclass "
    "JOIN pg_catalog.pg_class c ON c.oid = d.refobjid "
    "JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum > 0 AND NOT a.attisdropped "
    "  AND (a.attnum = d.refobjsubid OR r.ev_action ~ ':varattno 0 ') "
    "WHERE r.ev_class = $1::oid AND d.refobjid <> $1::oid";

/* The ancestors of relation $1 (partitions and inheritance children: a rule
 * on a parent covers them) and its descendants (whose rows a read of it
 * returns: a rule on a partition or child covers them there), with their
 * column of the same name as $2. */
static const char family_sql[] =
    "WITH RECURSIVE anc(oid, depth) AS ("
    "  SELECT inhparent, 1 FROM pg_catalog.pg_inherits WHERE inhrelid = $1::oid"
    "  UNION SELECT i.inhparent, a.depth + 1 FROM pg_catalog.pg_inherits i"
    "  JOIN anc a ON i.inhrelid = a.oid WHERE a.depth < 32), "
    "des(oid, depth) AS ("
    "  SELECT inhrelid, 1 FROM pg_catalog.pg_inherits WHERE inhparent = $1::oid"
    "  UNION SELECT i.inhrelid, d.depth + 1 FROM pg_catalog.pg_inherits i"
    "  JOIN des d ON i.inhparent = d.oid WHERE d.depth < 32), "
    "fam(oid) AS (SELECT oid FROM anc UNION SELECT oid FROM des) "
    "SELECT DISTINCT n.nspname, c.relname, at.attname FROM fam anc "
    "JOIN pg_catalog.pg_class c ON c.oid = anc.oid "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "JOIN pg_catalog.pg_attribute at ON at.attrelid = c.oid AND NOT at.attisdropped "
    "  AND at.attnum > 0 AND ($2 = '' OR at.attname = $2)";

/* The view's _RETURN rule, as the server's node text. */
static const char rule_sql[] =
    "SELECT ev_action FROM pg_catalog.pg_rewrite WHERE ev_class = $1::oid AND rulename = '_RETURN'";

/* Where view column attnum comes from, read from the rule's node text: the
 * top-level query's TARGETENTRY with that :resno carries :resorigtbl and
 * :resorigcol, which the server sets for plain column references (through
 * subqueries and CTEs too) and leaves 0 for expressions. Returns true with
 * *tbl != 0 when the column is a plain reference. Node text escapes
 * parentheses and braces in names with a backslash. */
static bool view_column_origin(const char *action, int attnum, uint32_t *tbl, int16_t *col)
{
    int depth = 0, entry_resno = -1;
    long entry_tbl = 0, entry_col = 0;
    bool in_list = false, key_may_start = false; /* after an unescaped space or '{' */
    for (const char *c = action; *c; c++) {
        if (*c == '\\') {
            if (c[1])
                c++; /* an escaped character is part of a name */
            key_may_start = false;
            continue;
        }
        if (*c == '(' || *c == '{') {
            depth++;
            if (in_list && depth == 4)
                entry_resno = -1, entry_tbl = 0, entry_col = 0;
            key_may_start = *c == '{';
            continue;
        }
        if (*c == ')' || *c == '}') {
            if (in_list && depth == 4 && entry_resno == attnum) {
                *tbl = (uint32_t)entry_tbl;
                *col = (int16_t)entry_col;
                return entry_tbl > 0 && entry_col > 0;
            }
            depth--;
            if (in_list && depth < 3)
                return false; /* the list ended without the column */
            key_may_start = false;
            continue;
        }
        if (*c != ':' || !key_may_start) {
            key_may_start = *c == ' ';
            continue;
        }
        const char *key = c + 1;
        size_t klen = strcspn(key, " (){}\\");
        const char *val = key + klen;
        while (*val == ' ')
            val++;
        if (!in_list && depth == 2 && klen == 10 && strncmp(key, "targetList", 10) == 0)
            in_list = true;
        else if (in_list && depth == 4 && klen == 5 && strncmp(key, "resno", 5) == 0)
            entry_resno = atoi(val);
        else if (in_list && depth == 4 && klen == 10 && strncmp(key, "resorigtbl", 10) == 0)
            entry_tbl = strtol(val, NULL, 10);
        else if (in_list && depth == 4 && klen == 10 && strncmp(key, "resorigcol", 10) == 0)
            entry_col = strtol(val, NULL, 10);
        key_may_start = false;
        c = key + klen - 1;
    }
    return false;
}

static void info_free(struct policy_column_info *info)
{
    free(info->base);
    memset(info, 0, sizeof(*info));
}

static PGresult *query(struct catalog_pg *c, const char *sql, int nparams, const char *const *params,
                       char err[POLICY_ERR_MAX])
{
    PGresult *r = PQexecParams(c->conn, sql, nparams, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(err, POLICY_ERR_MAX, "catalog query failed: %s", PQerrorMessage(c->conn));
        char *nl = strchr(err, '\n');
        if (nl)
            *nl = '\0';
        /* Its callers fail closed (the session's answers are masked or
         * hidden), some silently: say why here, at most once a minute in
         * the process (a client may connect per request). */
        int64_t now = util_now_ms(), last = atomic_load(&catalog_failed_logged_ms);
        if ((!last || now - last > 60000) && atomic_compare_exchange_strong(&catalog_failed_logged_ms, &last, now))
            log_warn("policy", "%s (masking fails closed meanwhile)", err);
        PQclear(r);
        return NULL;
    }
    return r;
}

static int push_base(struct policy_column_info *info, const struct policy_column_ref *ref)
{
    struct policy_column_ref *nb = realloc(info->base, (info->nbase + 1) * sizeof(*nb));
    if (!nb)
        return -1;
    info->base = nb;
    info->base[info->nbase++] = *ref;
    return 0;
}

static int add_base(struct policy_column_info *info, const struct policy_column_ref *ref)
{
    for (size_t i = 0; i < info->nbase; i++)
        if (memcmp(&info->base[i], ref, sizeof(*ref)) == 0)
            return 0;
    return push_base(info, ref);
}

static int lookup(struct catalog_pg *c, uint32_t oid, int16_t attnum, struct policy_column_info *info,
                  int depth, char err[POLICY_ERR_MAX]);

/* Look (oid, attnum) up and add what it stands for to info's base columns:
 * the column itself, or for a view column its own base columns. */
static int add_column_bases(struct catalog_pg *c, uint32_t oid, int16_t attnum, struct policy_column_info *info,
                            int depth, char err[POLICY_ERR_MAX])
{
    struct policy_column_info b = {0};
    if (lookup(c, oid, attnum, &b, depth + 1, err) < 0)
        return -1;
    int rc = 0;
    info->unknown = info->unknown || b.unknown;
    info->derived = info->derived || b.derived;
    if (!b.is_view)
        rc = add_base(info, &b.ref);
    for (size_t k = 0; k < b.nbase && rc == 0; k++)
        rc = add_base(info, &b.base[k]);
    info_free(&b);
    if (rc < 0)
        snprintf(err, POLICY_ERR_MAX, "out of memory");
    return rc;
}

/* The base columns of view `oid`, appended to info (views of views followed). */
static int view_bases(struct catalog_pg *c, uint32_t oid, struct policy_column_info *info, int depth,
                      char err[POLICY_ERR_MAX])
{
    if (depth >= CATALOG_MAX_VIEW_DEPTH) {
        info->unknown = true;
        return 0;
    }
    char soid[16];
    snprintf(soid, sizeof(soid), "%u", oid);
    const char *params[] = {soid};
    PGresult *r = query(c, view_sql, 1, params, err);
    if (!r)
        return -1;
    int rc = 0;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
        uint32_t boid = (uint32_t)strtoul(PQgetvalue(r, i, 0), NULL, 10);
        int16_t batt = (int16_t)atoi(PQgetvalue(r, i, 1));
        rc = add_column_bases(c, boid, batt, info, depth, err);
    }
    PQclear(r);
    return rc;
}

/* A view column that is a plain reference: its base column (followed
 * through views of views). 0 found, 1 not a plain reference, -1 error. */
static int view_origin(struct catalog_pg *c, uint32_t oid, int16_t attnum, struct policy_column_info *info,
                       int depth, char err[POLICY_ERR_MAX])
{
    if (depth >= CATALOG_MAX_VIEW_DEPTH)
        return 1;
    char soid[16];
    snprintf(soid, sizeof(soid), "%u", oid);
    const char *params[] = {soid};
    PGresult *r = query(c, rule_sql, 1, params, err);
    if (!r)
        return -1;
    uint32_t tbl = 0;
    int16_t col = 0;
    bool plain = PQntuples(r) == 1 && view_column_origin(PQgetvalue(r, 0, 0), attnum, &tbl, &col);
    PQclear(r);
    if (!plain)
        return 1;
    return add_column_bases(c, tbl, col, info, depth, err);
}

/* Relation oid's ancestors' and descendants' columns named column ("":
 * every column), added to info's base columns. */
static int family_bases(struct catalog_pg *c, const char *soid, const char *column,
                        struct policy_column_info *info, char err[POLICY_ERR_MAX])
{
    const char *params[] = {soid, column};
    PGresult *r = query(c, family_sql, 2, params, err);
    if (!r)
        return -1;
    int rc = 0;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
        struct policy_column_ref ref = {0};
        snprintf(ref.schema, sizeof ref.schema, "%s", PQgetvalue(r, i, 0));
        snprintf(ref.table, sizeof ref.table, "%s", PQgetvalue(r, i, 1));
        snprintf(ref.column, sizeof ref.column, "%s", PQgetvalue(r, i, 2));
        if ((rc = add_base(info, &ref)) < 0)
            snprintf(err, POLICY_ERR_MAX, "out of memory");
    }
    PQclear(r);
    return rc;
}

static int view_runs_code(struct catalog_pg *c, const char *soid, char err[POLICY_ERR_MAX]);

static int lookup(struct catalog_pg *c, uint32_t oid, int16_t attnum, struct policy_column_info *info,
                  int depth, char err[POLICY_ERR_MAX])
{
    char soid[16], satt[8];
    snprintf(soid, sizeof(soid), "%u", oid);
    snprintf(satt, sizeof(satt), "%d", attnum);
    const char *params[] = {soid, satt};
    memset(info, 0, sizeof(*info));
    PGresult *r = query(c, column_sql, 2, params, err);
    if (!r)
        return -1;
    if (PQntuples(r) != 1) {
        info->unknown = true; /* dropped meanwhile, or a system column: mask */
        PQclear(r);
        return 0;
    }
    snprintf(info->ref.schema, sizeof(info->ref.schema), "%s", PQgetvalue(r, 0, 0));
    snprintf(info->ref.table, sizeof(info->ref.table), "%s", PQgetvalue(r, 0, 1));
    snprintf(info->ref.column, sizeof(info->ref.column), "%s", PQgetvalue(r, 0, 2));
    char kind = PQgetvalue(r, 0, 3)[0];
    PQclear(r);
    if ((kind == 'r' || kind == 'p' || kind == 'f') &&
        family_bases(c, soid, info->ref.column, info, err) < 0) {
        info_free(info);
        return -1;
    }
    if (kind == 'v' || kind == 'm') {
        info->is_view = true;
        int rc = view_origin(c, oid, attnum, info, depth, err);
        if (rc == 0)
            return 0;
        /* An expression (or an unreadable rule): the column carries every
         * base column the view reads (over-masking, never under). */
        info->derived = true;
        if (rc < 0 || view_bases(c, oid, info, depth, err) < 0 || (rc = view_runs_code(c, soid, err)) < 0) {
            info_free(info);
            return -1;
        }
        info->unknown = info->unknown || rc > 0; /* an expression of code someone wrote: any value (masked) */
    }
    return 0;
}

/* Relations of a name (any schema when schema is ""): views and materialized
 * views, and tables that have ancestors or descendants (partitions,
 * inheritance parents and children). */
static const char relations_by_name_sql[] =
    "SELECT c.oid, c.relkind IN ('v', 'm') FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relname = $2 AND ($1 = '' OR n.nspname = $1) AND (c.relkind IN ('v', 'm') OR "
    "  (c.relkind IN ('r', 'p', 'f') AND EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i "
    "    WHERE i.inhrelid = c.oid OR i.inhparent = c.oid)))";

/* Functions someone made that are not C (an extension's C code reads no
 * tables), as a subquery of their OIDs. */
#define USER_PROCS                                                                                              \
    "(SELECT p.oid FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_language l ON l.oid = p.prolang "           \
    "WHERE p.oid >= " FIRST_NORMAL_OID " AND l.lanname NOT IN ('c', 'internal'))"

/* The types of START (a SELECT of type OIDs) and every type a value of them
 * holds or stands on, as the CTE ty: a domain's base, an array's element, a
 * composite's fields, a range's subtype, a multirange's range, on and on.
 * Each step goes through a catalog index. */
#define TYPE_CLOSURE(start)                                                                                     \
    "WITH RECURSIVE ty(oid) AS (" start " UNION SELECT n.oid FROM ty "                                         \
    "  JOIN pg_catalog.pg_type t ON t.oid = ty.oid CROSS JOIN LATERAL ("                                       \
    "    SELECT t.typbasetype UNION ALL SELECT t.typelem "                                                     \
    "    UNION ALL SELECT a.atttypid FROM pg_catalog.pg_attribute a WHERE t.typrelid <> 0 "                    \
    "      AND a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped "                               \
    "    UNION ALL SELECT r.rngsubtype FROM pg_catalog.pg_range r WHERE r.rngtypid = t.oid "                   \
    "    UNION ALL SELECT r.rngtypid FROM pg_catalog.pg_range r WHERE r.rngmultitypid = t.oid"                 \
    "  ) n(oid) WHERE n.oid <> 0) "

/* A pg_depend row d (aliased so) that points at code of USER_PROCS: such a
 * function, or an operator whose function is one. */
#define DEPENDS_ON_USER_CODE                                                                                    \
    "((d.refclassid = 'pg_catalog.pg_proc'::regclass AND d.refobjid IN " USER_PROCS ") "                       \
    "  OR (d.refclassid = 'pg_catalog.pg_operator'::regclass AND d.refobjid IN "                               \
    "    (SELECT o.oid FROM pg_catalog.pg_operator o WHERE o.oprcode IN " USER_PROCS ")))"

/* Whether a value's coming to be of a type of ty runs code of USER_PROCS: a
 * domain's check or default that calls it, a range's canonical function,
 * subtype_diff or a support function of its subtype operator class. */
#define TYPE_RUNS_CODE                                                                                          \
    "EXISTS (SELECT 1 FROM ty JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_type'::regclass "      \
    "  AND d.objid = ty.oid WHERE " DEPENDS_ON_USER_CODE " UNION ALL "                                         \
    "  SELECT 1 FROM ty JOIN pg_catalog.pg_constraint co ON co.contypid = ty.oid "                              \
    "  JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_constraint'::regclass AND d.objid = co.oid "  \
    "  WHERE " DEPENDS_ON_USER_CODE " UNION ALL "                                                               \
    "  SELECT 1 FROM ty JOIN pg_catalog.pg_range r ON r.rngtypid = ty.oid WHERE r.rngcanonical IN " USER_PROCS  \
    "  OR r.rngsubdiff IN " USER_PROCS " OR r.rngsubopc IN (SELECT oc.oid FROM pg_catalog.pg_opclass oc "     \
    "    JOIN pg_catalog.pg_amproc ap ON ap.amprocfamily = oc.opcfamily WHERE ap.amproc IN " USER_PROCS "))"

/* The types (src) that values of other types (dst) hold or stand on: a
 * domain's base, an array's element, a composite's fields, a range's
 * subtype, a multirange's range; for a walk from src to dst by one hash
 * join per step (no catalog index leads that way). */
#define TYPE_EDGES                                                                                              \
    "(SELECT typbasetype AS src, oid AS dst FROM pg_catalog.pg_type WHERE typbasetype <> 0 "                   \
    "  UNION ALL SELECT typelem, oid FROM pg_catalog.pg_type WHERE typelem <> 0 "                              \
    "  UNION ALL SELECT a.atttypid, t.oid FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t "           \
    "    ON t.typrelid = a.attrelid WHERE t.typrelid <> 0 AND a.attnum > 0 AND NOT a.attisdropped "           \
    "  UNION ALL SELECT rngsubtype, rngtypid FROM pg_catalog.pg_range "                                        \
    "  UNION ALL SELECT rngtypid, rngmultitypid FROM pg_catalog.pg_range)"

/* CTEs of a WITH RECURSIVE (after its first; ends without a comma):
 * - uproc, the functions of USER_PROCS; uop, the operators of one;
 * - ucast, the casts that run one (the parser adds the implicit and
 *   assignment ones where no statement names them);
 * - fam, the operator families with such a support function or operator;
 *   cls, their operator classes;
 * - ucode, what depends on uproc or uop; ctype, the types whose values'
 *   coming to be or comparing runs such code (a domain's check or default,
 *   a range's canonical, subtype_diff or subtype operator class) and the
 *   arrays, composites, domains and ranges over them;
 * - udep, the objects (classid, objid, objsubid) that depend on any of
 *   those, found through pg_depend's index on what is depended on;
 * - rcast, the types someone made that an implicit or assignment cast from
 *   them, or an implicit one to them, runs such code for, and their arrays
 *   and domains (the parser applies an element's or a base type's cast to
 *   them); wcast, those that an implicit or assignment cast to them does,
 *   likewise. */
#define CODE_CTES                                                                                               \
    "uproc(oid) AS " USER_PROCS ", "                                                                           \
    "uop(oid) AS (SELECT o.oid FROM pg_catalog.pg_operator o WHERE o.oprcode IN (SELECT oid FROM uproc)), "    \
    "ucast(oid, src, dst, ctx) AS (SELECT k.oid, k.castsource, k.casttarget, k.castcontext "                   \
    "  FROM pg_catalog.pg_cast k WHERE k.castfunc IN (SELECT oid FROM uproc)), "                               \
    "fam(oid) AS (SELECT ap.amprocfamily FROM pg_catalog.pg_amproc ap WHERE ap.amproc IN (SELECT oid FROM uproc) " \
    "  UNION SELECT ao.amopfamily FROM pg_catalog.pg_amop ao WHERE ao.amopopr IN (SELECT oid FROM uop)), "     \
    "cls(oid, typ, dflt) AS (SELECT oc.oid, oc.opcintype, oc.opcdefault FROM pg_catalog.pg_opclass oc "        \
    "  JOIN fam ON fam.oid = oc.opcfamily), "                                                                  \
    "ucode(classid, objid) AS (SELECT d.classid, d.objid FROM uproc JOIN pg_catalog.pg_depend d "              \
    "    ON d.refclassid = 'pg_catalog.pg_proc'::regclass AND d.refobjid = uproc.oid "                         \
    "  UNION ALL SELECT d.classid, d.objid FROM uop JOIN pg_catalog.pg_depend d "                              \
    "    ON d.refclassid = 'pg_catalog.pg_operator'::regclass AND d.refobjid = uop.oid), "                     \
    "ctype(oid) AS (SELECT co.contypid FROM ucode JOIN pg_catalog.pg_constraint co "                           \
    "    ON ucode.classid = 'pg_catalog.pg_constraint'::regclass AND co.oid = ucode.objid WHERE co.contypid <> 0 " \
    "  UNION SELECT objid FROM ucode WHERE classid = 'pg_catalog.pg_type'::regclass "                          \
    "  UNION SELECT r.rngtypid FROM pg_catalog.pg_range r WHERE r.rngsubopc IN (SELECT oid FROM cls) "         \
    "  UNION SELECT e.dst FROM ctype JOIN " TYPE_EDGES " e ON e.src = ctype.oid), "                            \
    "udep(classid, objid, objsubid) AS (SELECT d.classid, d.objid, d.objsubid FROM uproc "                     \
    "    JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.pg_proc'::regclass AND d.refobjid = uproc.oid " \
    "  UNION ALL SELECT d.classid, d.objid, d.objsubid FROM uop JOIN pg_catalog.pg_depend d "                  \
    "    ON d.refclassid = 'pg_catalog.pg_operator'::regclass AND d.refobjid = uop.oid "                       \
    "  UNION ALL SELECT d.classid, d.objid, d.objsubid FROM ucast JOIN pg_catalog.pg_depend d "                \
    "    ON d.refclassid = 'pg_catalog.pg_cast'::regclass AND d.refobjid = ucast.oid "                         \
    "  UNION ALL SELECT d.classid, d.objid, d.objsubid FROM ctype JOIN pg_catalog.pg_depend d "                \
    "    ON d.refclassid = 'pg_catalog.pg_type'::regclass AND d.refobjid = ctype.oid), "                       \
    "rcast(oid) AS (SELECT src FROM ucast WHERE ctx IN ('i', 'a') AND src >= " FIRST_NORMAL_OID " "            \
    "  UNION SELECT dst FROM ucast WHERE ctx = 'i' AND dst >= " FIRST_NORMAL_OID " "                           \
    "  UNION SELECT t.oid FROM rcast JOIN pg_catalog.pg_type t ON t.typelem = rcast.oid OR t.typbasetype = rcast.oid), " \
    "wcast(oid) AS (SELECT dst FROM ucast WHERE ctx IN ('i', 'a') AND dst >= " FIRST_NORMAL_OID " "            \
    "  UNION SELECT t.oid FROM wcast JOIN pg_catalog.pg_type t ON t.typelem = wcast.oid OR t.typbasetype = wcast.oid) "

/* Whether an index of relation REL (an OID expression) runs code of
 * CODE_CTES on a row it indexes: its expression or predicate calls it. */
#define INDEX_EXPR_RUNS_CODE(rel)                                                                               \
    "EXISTS (SELECT 1 FROM pg_catalog.pg_index i JOIN udep "                                                   \
    "  ON udep.classid = 'pg_catalog.pg_class'::regclass AND udep.objid = i.indexrelid WHERE i.indrelid = " rel ")"

/* Whether an index of relation REL has an operator class of cls
 * (CODE_CTES), whose code runs on a write and on a scan of the index. */
#define INDEX_CLASS_RUNS_CODE(rel)                                                                              \
    "EXISTS (SELECT 1 FROM pg_catalog.pg_index i JOIN cls ON cls.oid = ANY (i.indclass::pg_catalog.oid[]) "    \
    "  WHERE i.indrelid = " rel ")"

/* Whether relation REL (an OID expression) has row security on, under a
 * policy that calls code of CODE_CTES. */
#define ROW_SECURITY_RUNS_CODE(rel)                                                                             \
    "EXISTS (SELECT 1 FROM pg_catalog.pg_class rc JOIN pg_catalog.pg_policy po ON po.polrelid = rc.oid "       \
    "  JOIN udep ON udep.classid = 'pg_catalog.pg_policy'::regclass AND udep.objid = po.oid "                  \
    "  WHERE rc.oid = " rel " AND rc.relrowsecurity)"

/* Whether relation REL's rules (a view's query, a materialized view's,
 * which a REFRESH runs, a table's DO ALSO or INSTEAD actions) or its
 * partition key (an expression, an operator class of cls) call code of
 * CODE_CTES. */
#define RULES_OR_KEY_RUN_CODE(rel)                                                                              \
    "(EXISTS (SELECT 1 FROM pg_catalog.pg_rewrite r "                                                          \
    "  JOIN udep ON udep.classid = 'pg_catalog.pg_rewrite'::regclass AND udep.objid = r.oid "                  \
    "  WHERE r.ev_class = " rel ") "                                                                           \
    " OR EXISTS (SELECT 1 FROM udep WHERE udep.classid = 'pg_catalog.pg_class'::regclass "                     \
    "  AND udep.objid = " rel " AND udep.objsubid = 0) "                                                       \
    " OR EXISTS (SELECT 1 FROM pg_catalog.pg_partitioned_table pt "                                            \
    "  JOIN cls ON cls.oid = ANY (pt.partclass::pg_catalog.oid[]) WHERE pt.partrelid = " rel "))"

/* Whether a cast to a type of ty runs a function of USER_PROCS. */
#define TYPE_CAST_RUNS_CODE                                                                                     \
    "EXISTS (SELECT 1 FROM pg_catalog.pg_cast k JOIN ty ON k.casttarget = ty.oid WHERE k.castfunc IN " USER_PROCS ")"

/* A type of name $2 (in schema $1, any when ""). */
#define TYPES_NAMED                                                                                             \
    "SELECT t.oid FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace "         \
    "WHERE t.typname = $2 AND ($1 = '' OR n.nspname = $1)"

/* Whether a function of a name was made by someone (not with the server),
 * whatever its schema; or, when the name is a type's, whether a
 * function-style cast to it may run code someone wrote. PostgreSQL reads
 * dom(x) as x::dom when no function has the name, but only where no cast
 * function is needed (binary-compatible or through text): a domain's check
 * can run, a cast's function cannot. */
static const char user_function_sql[] =
    "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n "
    "ON n.oid = p.pronamespace WHERE p.proname = $2 AND ($1 = '' OR n.nspname = $1) "
    "AND p.oid >= " FIRST_NORMAL_OID ") OR CASE WHEN EXISTS (" TYPES_NAMED ") THEN "
    "(" TYPE_CLOSURE(TYPES_NAMED) "SELECT " TYPE_RUNS_CODE ") ELSE false END";

/* What a write to relations of a name (any schema when schema is "") may
 * write: those relations, their partitions and children, the relations
 * their rules (a view's too) name, and the referencing tables of foreign
 * keys that cascade, SET NULL or SET DEFAULT, on and on; then the
 * ancestors of all of them, under whose names column rules may name their
 * columns. One row per column (NULL for a relation without any), with
 * whether that relation runs code someone wrote on a write: a trigger, a
 * default or constraint that calls a function someone made, a column of a
 * type whose domain check or default calls one that is not C, a row
 * security policy or an index (its expression, predicate or operator class) that calls one, or a
 * column of a type someone made that an implicit or assignment cast to it
 * calls one for. */
static const char writes_sql[] =
    "WITH RECURSIVE w(oid) AS (SELECT c.oid FROM pg_catalog.pg_class c "
    "  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "  WHERE c.relname = $2 AND ($1 = '' OR n.nspname = $1) "
    "  UNION SELECT e.dst FROM w JOIN ("
    "    SELECT inhparent AS src, inhrelid AS dst FROM pg_catalog.pg_inherits "
    "    UNION ALL SELECT confrelid, conrelid FROM pg_catalog.pg_constraint WHERE contype = 'f' "
    "      AND (confdeltype IN ('c', 'n', 'd') OR confupdtype IN ('c', 'n', 'd')) "
    "    UNION ALL SELECT r.ev_class, d.refobjid FROM pg_catalog.pg_rewrite r "
    "      JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = r.oid "
    "      AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid <> r.ev_class"
    "  ) e ON e.src = w.oid), "
    "a(oid) AS (SELECT oid FROM w UNION SELECT i.inhparent FROM pg_catalog.pg_inherits i JOIN a ON i.inhrelid = a.oid), "
    CODE_CTES
    "SELECT n.nspname, c.relname, at.attname, "
    "  EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal) OR "
    "  " ROW_SECURITY_RUNS_CODE("c.oid") " OR " INDEX_EXPR_RUNS_CODE("c.oid") " OR "
    "  " INDEX_CLASS_RUNS_CODE("c.oid") " OR " RULES_OR_KEY_RUN_CODE("c.oid") " OR "
    "  EXISTS (SELECT 1 FROM pg_catalog.pg_constraint f WHERE f.conrelid = c.oid AND f.contype = 'f' "
    "    AND " INDEX_CLASS_RUNS_CODE("f.confrelid") ") OR "
    "  EXISTS (SELECT 1 FROM pg_catalog.pg_attribute ct WHERE ct.attrelid = c.oid AND ct.attnum > 0 "
    "    AND NOT ct.attisdropped AND ct.atttypid IN (SELECT oid FROM wcast)) OR "
    "  EXISTS (SELECT 1 FROM udep WHERE (udep.classid = 'pg_catalog.pg_attrdef'::regclass "
    "      AND udep.objid IN (SELECT oid FROM pg_catalog.pg_attrdef WHERE adrelid = c.oid)) "
    "    OR (udep.classid = 'pg_catalog.pg_constraint'::regclass "
    "      AND udep.objid IN (SELECT oid FROM pg_catalog.pg_constraint WHERE conrelid = c.oid))) OR "
    "  EXISTS (SELECT 1 FROM pg_catalog.pg_depend d "
    "    WHERE d.refclassid = 'pg_catalog.pg_proc'::regclass AND d.refobjid >= " FIRST_NORMAL_OID " "
    "    AND ((d.classid = 'pg_catalog.pg_attrdef'::regclass "
    "          AND d.objid IN (SELECT oid FROM pg_catalog.pg_attrdef WHERE adrelid = c.oid)) "
    "      OR (d.classid = 'pg_catalog.pg_constraint'::regclass "
    "          AND d.objid IN (SELECT oid FROM pg_catalog.pg_constraint WHERE conrelid = c.oid)))) OR "
    "  EXISTS (" TYPE_CLOSURE("SELECT ct.atttypid FROM pg_catalog.pg_attribute ct WHERE ct.attrelid = c.oid "
                              "AND ct.attnum > 0 AND NOT ct.attisdropped") "SELECT 1 WHERE " TYPE_RUNS_CODE ") "
    "FROM a JOIN pg_catalog.pg_class c ON c.oid = a.oid "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "LEFT JOIN pg_catalog.pg_attribute at ON at.attrelid = c.oid AND at.attnum > 0 AND NOT at.attisdropped";

/* Whether an operator of a name runs a function someone made that is not C
 * (an extension's type's operators are C: no table reads). */
static const char user_operator_sql[] =
    "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_operator o "
    "JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace "
    "JOIN pg_catalog.pg_proc p ON p.oid = o.oprcode "
    "JOIN pg_catalog.pg_language l ON l.oid = p.prolang "
    "WHERE o.oprname = $2 AND ($1 = '' OR n.nspname = $1) "
    "AND p.oid >= " FIRST_NORMAL_OID " AND l.lanname NOT IN ('c', 'internal'))";

/* Whether a cast to a type of a name may run a function someone made that
 * is not C: a cast to it, to the base type of a domain, to the element type
 * of an array or to a field of a composite (an array's cast runs its
 * elements' cast), on and on, or a domain's check or default; or no such
 * type is found. */
static const char user_cast_sql[] =
    TYPE_CLOSURE(TYPES_NAMED)
    "SELECT NOT EXISTS (SELECT 1 FROM ty) OR " TYPE_CAST_RUNS_CODE " OR " TYPE_RUNS_CODE;

/* Whether view $1's query calls code of CODE_CTES. */
static const char view_code_sql[] =
    "WITH RECURSIVE " CODE_CTES "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_rewrite r "
    "  JOIN udep ON udep.classid = 'pg_catalog.pg_rewrite'::regclass AND udep.objid = r.oid WHERE r.ev_class = $1::oid)";

/* 1 when view soid's query calls code someone wrote, 0 not, -1 error. */
static int view_runs_code(struct catalog_pg *c, const char *soid, char err[POLICY_ERR_MAX])
{
    const char *params[] = {soid};
    PGresult *r = query(c, view_code_sql, 1, params, err);
    if (!r)
        return -1;
    int rc = PQntuples(r) != 1 || PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    return rc;
}

/* The relations that run code of CODE_CTES that no statement names, in the
 * whole database, asked once per refresh: one row of two oid[] texts and a
 * flag. The first, on any statement that touches them: row security; a
 * rule (a view's query; not a materialized view's, whose read runs none of
 * it); a partition key's expression or operator class; an index's operator
 * class (a scan); a column whose type (or one it holds) has such a default
 * operator class or is such a range (sorting, grouping, DISTINCT); a column
 * of a type someone made that an implicit or assignment cast from it, or an
 * implicit one to it, runs such code for. The second, what ANALYZE,
 * VACUUM, CLUSTER and REINDEX evaluate: an index's expression or predicate,
 * an extended statistic's expression. The flag: an implicit or assignment
 * cast between two built-in types runs such code (it can apply anywhere). */
static const char code_seeds_sql[] =
    "WITH RECURSIVE " CODE_CTES ", "
    "sorttype(oid) AS (SELECT typ FROM cls WHERE dflt "
    "  UNION SELECT r.rngtypid FROM pg_catalog.pg_range r WHERE r.rngsubopc IN (SELECT oid FROM cls) "
    "    OR r.rngcanonical IN (SELECT oid FROM uproc) OR r.rngsubdiff IN (SELECT oid FROM uproc) "
    "  UNION SELECT e.dst FROM sorttype JOIN " TYPE_EDGES " e ON e.src = sorttype.oid), "
    "seedr(oid) AS (SELECT po.polrelid FROM pg_catalog.pg_policy po "
    "    JOIN pg_catalog.pg_class rc ON rc.oid = po.polrelid AND rc.relrowsecurity "
    "    JOIN udep ON udep.classid = 'pg_catalog.pg_policy'::regclass AND udep.objid = po.oid "
    "  UNION SELECT r.ev_class FROM pg_catalog.pg_rewrite r "
    "    JOIN pg_catalog.pg_class rr ON rr.oid = r.ev_class AND rr.relkind <> 'm' "
    "    JOIN udep ON udep.classid = 'pg_catalog.pg_rewrite'::regclass AND udep.objid = r.oid "
    "  UNION SELECT udep.objid FROM udep JOIN pg_catalog.pg_class k ON k.oid = udep.objid AND k.relkind IN ('r', 'p') "
    "    WHERE udep.classid = 'pg_catalog.pg_class'::regclass AND udep.objsubid = 0 "
    "  UNION SELECT pt.partrelid FROM pg_catalog.pg_partitioned_table pt "
    "    JOIN cls ON cls.oid = ANY (pt.partclass::pg_catalog.oid[]) "
    "  UNION SELECT i.indrelid FROM pg_catalog.pg_index i JOIN cls ON cls.oid = ANY (i.indclass::pg_catalog.oid[]) "
    "  UNION SELECT a.attrelid FROM pg_catalog.pg_attribute a WHERE a.attnum > 0 AND NOT a.attisdropped "
    "    AND (EXISTS (SELECT 1 FROM sorttype) OR EXISTS (SELECT 1 FROM ucast)) "
    "    AND a.atttypid IN (SELECT oid FROM sorttype UNION ALL SELECT oid FROM rcast)), "
    "seedm(oid) AS (SELECT i.indrelid FROM pg_catalog.pg_index i "
    "    JOIN udep ON udep.classid = 'pg_catalog.pg_class'::regclass AND udep.objid = i.indexrelid "
    "  UNION SELECT s.stxrelid FROM pg_catalog.pg_statistic_ext s "
    "    JOIN udep ON udep.classid = 'pg_catalog.pg_statistic_ext'::regclass AND udep.objid = s.oid) "
    "SELECT (SELECT coalesce(array_agg(oid), '{}') FROM seedr)::text, "
    "  (SELECT coalesce(array_agg(oid), '{}') FROM seedm)::text, "
    "  EXISTS (SELECT 1 FROM ucast WHERE ctx IN ('i', 'a') AND src < " FIRST_NORMAL_OID " AND dst < " FIRST_NORMAL_OID ")";

/* Whether relations of a name (schema $1, any when ""; name $2, every one
 * when ""), their partitions and children, an index's table, and the
 * relations their views (not materialized views) and row security policies
 * read, on and on, reach a relation of $3 (the first of code_seeds_sql),
 * and whether one of $4 (its second). Each step goes through a catalog index. */
static const char relation_code_sql[] =
    "WITH RECURSIVE rel(oid) AS (SELECT c.oid FROM pg_catalog.pg_class c "
    "  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "  WHERE $2 = '' OR (c.relname = $2 AND ($1 = '' OR n.nspname = $1)) "
    "  UNION SELECT e.dst FROM rel CROSS JOIN LATERAL ("
    "    SELECT i.inhrelid FROM pg_catalog.pg_inherits i WHERE i.inhparent = rel.oid "
    "    UNION ALL SELECT x.indrelid FROM pg_catalog.pg_index x WHERE x.indexrelid = rel.oid "
    "    UNION ALL SELECT d.refobjid FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_class rr ON rr.oid = r.ev_class "
    "      JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = r.oid "
    "      AND d.refclassid = 'pg_catalog.pg_class'::regclass "
    "      WHERE r.ev_class = rel.oid AND d.refobjid <> rel.oid AND rr.relkind <> 'm' "
    "    UNION ALL SELECT d.refobjid FROM pg_catalog.pg_policy po JOIN pg_catalog.pg_depend d "
    "      ON d.classid = 'pg_catalog.pg_policy'::regclass AND d.objid = po.oid "
    "      AND d.refclassid = 'pg_catalog.pg_class'::regclass WHERE po.polrelid = rel.oid AND d.refobjid <> rel.oid"
    "  ) e(dst)) "
    "SELECT EXISTS (SELECT 1 FROM rel WHERE rel.oid = ANY ($3::pg_catalog.oid[])), "
    "  EXISTS (SELECT 1 FROM rel WHERE rel.oid = ANY ($4::pg_catalog.oid[]))";

/* Whether the database has an enabled event trigger that runs a function of
 * USER_PROCS, whatever its tags (fail closed). No parameters. */
static const char event_trigger_sql[] =
    "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger e "
    "WHERE e.evtenabled <> 'D' AND e.evtfoid IN " USER_PROCS ")";

/* Whether a function of a name that someone made can be called with one
 * row (attribute notation: u.f for f(u)): its first argument a row type, a
 * record, or a polymorphic or "any" type, and no other it needs. */
static const char user_row_function_sql[] =
    "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n "
    "ON n.oid = p.pronamespace JOIN pg_catalog.pg_type t ON t.oid = p.proargtypes[0] "
    "WHERE p.proname = $2 AND ($1 = '' OR n.nspname = $1) AND p.oid >= " FIRST_NORMAL_OID " "
    "AND p.pronargs >= 1 AND p.pronargs - p.pronargdefaults <= 1 "
    "AND (t.typrelid <> 0 OR t.typtype = 'p'))";

/* The views of a name (any schema when schema is "") with a column of name $3. */
static const char view_column_sql[] =
    "SELECT c.oid, a.attnum FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
    "WHERE c.relname = $2 AND ($1 = '' OR n.nspname = $1) AND c.relkind IN ('v', 'm') AND a.attname = $3";

/* The look-ups are big queries over small catalogs: the planner's cost
 * estimates pass jit_above_cost, and compiling them took about 0.7 s a
 * write look-up on PostgreSQL 15 (they run in a few ms without). A pooler
 * may give later queries another server connection, where they are only
 * slower. */
static void catalog_session_setup(PGconn *conn)
{
    PQclear(PQexec(conn, "SET jit = off"));
}

static int catalog_connected(struct catalog_pg *c, char err[POLICY_ERR_MAX])
{
    if (PQstatus(c->conn) == CONNECTION_OK)
        return 0;
    PQreset(c->conn);
    if (PQstatus(c->conn) == CONNECTION_OK) {
        catalog_session_setup(c->conn);
        return 0;
    }
    snprintf(err, POLICY_ERR_MAX, "catalog connection lost");
    return -1;
}

/* The cached answer for (kind, schema, name[, column]), looked up on a miss. */
static const struct catalog_name *name_lookup(struct catalog_pg *c, char kind, const char *schema,
                                              const char *name, const char *column, char err[POLICY_ERR_MAX])
{
    struct catalog_name key = {.kind = kind};
    int n = column ? snprintf(key.name, sizeof(key.name), "%zu:%s%s", strlen(name), name, column)
                   : snprintf(key.name, sizeof(key.name), "%s", name);
    /* pg_temp is this session's temporary schema, pg_temp_N to the
     * catalog's own connection: any schema of the name (more, never less). */
    if (schema && strcmp(schema, "pg_temp") == 0)
        schema = "";
    if (snprintf(key.schema, sizeof(key.schema), "%s", schema ? schema : "") >= (int)sizeof(key.schema) ||
        n < 0 || n >= (int)sizeof(key.name)) {
        snprintf(err, POLICY_ERR_MAX, "name too long for the catalog");
        return NULL;
    }
    for (size_t i = 0; i < c->nnames; i++)
        if (c->names[i].kind == kind && strcmp(c->names[i].schema, key.schema) == 0 &&
            strcmp(c->names[i].name, key.name) == 0)
            return &c->names[i];
    if (c->nnames >= CATALOG_MAX_ENTRIES || catalog_connected(c, err) < 0) {
        if (c->nnames >= CATALOG_MAX_ENTRIES)
            snprintf(err, POLICY_ERR_MAX, "catalog cache full");
        return NULL;
    }
    const char *params[] = {key.schema, column ? name : key.name, kind == 'x' ? c->read_seeds : column,
                            c->maint_seeds};
    PGresult *r = query(c,
                        kind == 'r'   ? relations_by_name_sql
                        : kind == 'f' ? user_function_sql
                        : kind == 'o' ? user_operator_sql
                        : kind == 'a' ? user_row_function_sql
                        : kind == 'k' ? user_cast_sql
                        : kind == 'e' ? event_trigger_sql
                        : kind == 'w' ? writes_sql
                        : kind == 'x' ? relation_code_sql
                                      : view_column_sql,
                        kind == 'e' ? 0 : kind == 'x' ? 4 : column ? 3 : 2, params, err);
    if (!r)
        return NULL;
    int rc = 0;
    if (kind == 'c') {
        for (int i = 0; i < PQntuples(r) && rc == 0; i++)
            rc = add_column_bases(c, (uint32_t)strtoul(PQgetvalue(r, i, 0), NULL, 10),
                                  (int16_t)atoi(PQgetvalue(r, i, 1)), &key.info, 0, err);
    } else if (kind == 'f' || kind == 'o' || kind == 'a' || kind == 'k' || kind == 'e') {
        key.flag = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
    } else if (kind == 'x') {
        key.flag = PQntuples(r) != 1 || PQgetvalue(r, 0, 0)[0] == 't';
        key.maint = PQntuples(r) != 1 || PQgetvalue(r, 0, 1)[0] == 't';
    } else if (kind == 'w') {
        /* Past CATALOG_MAX_WRITE_COLUMNS the columns are not kept: such a
         * write counts as running code (may quote anything). */
        key.flag = PQntuples(r) > CATALOG_MAX_WRITE_COLUMNS;
        for (int i = 0; i < PQntuples(r) && rc == 0 && !key.flag; i++) {
            key.flag = PQgetvalue(r, i, 3)[0] == 't';
            struct policy_column_ref ref = {0};
            snprintf(ref.schema, sizeof ref.schema, "%s", PQgetvalue(r, i, 0));
            snprintf(ref.table, sizeof ref.table, "%s", PQgetvalue(r, i, 1));
            snprintf(ref.column, sizeof ref.column, "%s", PQgetvalue(r, i, 2));
            if (!PQgetisnull(r, i, 2) && (rc = push_base(&key.info, &ref)) < 0) /* rows are distinct */
                snprintf(err, POLICY_ERR_MAX, "out of memory");
        }
    } else {
        for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
            bool view = PQgetvalue(r, i, 1)[0] == 't';
            key.flag = key.flag || view;
            rc = view ? view_bases(c, (uint32_t)strtoul(PQgetvalue(r, i, 0), NULL, 10), &key.info, 0, err)
                      : family_bases(c, PQgetvalue(r, i, 0), "", &key.info, err);
        }
    }
    PQclear(r);
    if (rc == 0 && c->nnames == c->capnames) {
        size_t cap = c->capnames ? c->capnames * 2 : 32;
        struct catalog_name *nn = realloc(c->names, cap * sizeof(*nn));
        if (nn) {
            c->names = nn;
            c->capnames = cap;
        } else {
            snprintf(err, POLICY_ERR_MAX, "out of memory");
            rc = -1;
        }
    }
    if (rc < 0) {
        info_free(&key.info);
        return NULL;
    }
    c->names[c->nnames] = key;
    return &c->names[c->nnames++];
}

static int catalog_relation(struct policy_catalog *self, const char *schema, const char *name, bool *is_view,
                            const struct policy_column_ref **base, size_t *nbase, char err[POLICY_ERR_MAX])
{
    catalog_refresh((struct catalog_pg *)self);
    const struct catalog_name *e = name_lookup((struct catalog_pg *)self, 'r', schema, name, NULL, err);
    if (!e)
        return -1;
    *is_view = e->flag;
    *base = e->info.base;
    *nbase = e->info.nbase;
    return e->info.unknown ? (snprintf(err, POLICY_ERR_MAX, "views nested too deeply"), -1) : 0;
}

static int catalog_function(struct policy_catalog *self, const char *name, bool *user_code,
                            char err[POLICY_ERR_MAX])
{
    /* "operator(s.#@)": an operator s.#@; "attribute(f)": f of q.f, a name
     * that may hold a dot; "cast(s.t)": a cast to type s.t; "event_trigger(ddl)":
     * the event triggers DDL fires */
    static const struct { const char *prefix; char kind; } forms[] = {
        {POLICY_OPERATOR_PREFIX, 'o'}, {POLICY_ATTRIBUTE_PREFIX, 'a'}, {POLICY_CAST_PREFIX, 'k'},
        {POLICY_EVENT_TRIGGER_PREFIX, 'e'}};
    char schema[POLICY_NAME_MAX] = "", inner[2 * POLICY_NAME_MAX];
    char kind = 'f';
    size_t len = strlen(name);
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        size_t plen = strlen(forms[i].prefix);
        if (strncmp(name, forms[i].prefix, plen) == 0 && len > plen && name[len - 1] == ')' &&
            len - plen - 1 < sizeof(inner)) {
            memcpy(inner, name + plen, len - plen - 1);
            inner[len - plen - 1] = '\0';
            name = inner;
            kind = forms[i].kind;
            break;
        }
    }
    /* s.f, or db.s.f (the current database): the schema is the part before
     * the last dot. A part that holds a dot or a quote came in quotes (see
     * classify.c's join_names): not looked up, user code. */
    if (kind != 'a' && strchr(name, '"')) {
        *user_code = true;
        return 0;
    }
    const char *dot = kind == 'a' ? NULL : strrchr(name, '.');
    if (dot) {
        const char *from = dot;
        while (from > name && from[-1] != '.')
            from--;
        if ((size_t)(dot - from) < sizeof(schema)) {
            memcpy(schema, from, (size_t)(dot - from));
            schema[dot - from] = '\0';
        }
        name = dot + 1;
    }
    catalog_refresh((struct catalog_pg *)self);
    const struct catalog_name *e = name_lookup((struct catalog_pg *)self, kind, schema, name, NULL, err);
    if (!e)
        return -1;
    *user_code = e->flag;
    return 0;
}

static int catalog_writes(struct policy_catalog *self, const char *schema, const char *name, bool *code,
                          const struct policy_column_ref **columns, size_t *ncolumns, char err[POLICY_ERR_MAX])
{
    catalog_refresh((struct catalog_pg *)self);
    const struct catalog_name *e = name_lookup((struct catalog_pg *)self, 'w', schema, name, NULL, err);
    if (!e)
        return -1;
    *code = e->flag;
    *columns = e->info.base;
    *ncolumns = e->info.nbase;
    return 0;
}

static int catalog_view_column(struct policy_catalog *self, const char *schema, const char *name, const char *column,
                               const struct policy_column_ref **base, size_t *nbase, char err[POLICY_ERR_MAX])
{
    catalog_refresh((struct catalog_pg *)self);
    const struct catalog_name *e = name_lookup((struct catalog_pg *)self, 'c', schema, name, column, err);
    if (!e)
        return -1;
    *base = e->info.base;
    *nbase = e->info.nbase;
    return e->info.unknown ? (snprintf(err, POLICY_ERR_MAX, "cannot trace column %s of view %s", column, name), -1)
                           : 0;
}

static int catalog_resolve(struct policy_catalog *self, uint32_t oid, int16_t attnum,
                           struct policy_column_info *info, char err[POLICY_ERR_MAX])
{
    struct catalog_pg *c = (struct catalog_pg *)self;
    catalog_refresh(c);
    for (size_t i = 0; i < c->n; i++)
        if (c->entries[i].oid == oid && c->entries[i].attnum == attnum) {
            *info = c->entries[i].info;
            return 0;
        }
    if (catalog_connected(c, err) < 0)
        return -1;
    struct policy_column_info found;
    err[0] = '\0';
    if (lookup(c, oid, attnum, &found, 0, err) < 0)
        return -1;
    if (c->n < CATALOG_MAX_ENTRIES) {
        if (c->n == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 64;
            struct catalog_entry *ne = realloc(c->entries, cap * sizeof(*ne));
            if (!ne) {
                info_free(&found);
                snprintf(err, POLICY_ERR_MAX, "out of memory");
                return -1;
            }
            c->entries = ne;
            c->cap = cap;
        }
        c->entries[c->n++] = (struct catalog_entry){oid, attnum, found};
        *info = found;
        return 0;
    }
    /* Cache full: answer without caching is not possible with borrowed
     * pointers, so refuse (the caller masks). */
    info_free(&found);
    snprintf(err, POLICY_ERR_MAX, "catalog cache full");
    return -1;
}

static void catalog_forget(struct policy_catalog *self)
{
    struct catalog_pg *c = (struct catalog_pg *)self;
    for (size_t i = 0; i < c->n; i++)
        info_free(&c->entries[i].info);
    c->n = 0;
    for (size_t i = 0; i < c->nnames; i++)
        info_free(&c->names[i].info);
    c->nnames = 0;
    free(c->read_seeds);
    free(c->maint_seeds);
    c->read_seeds = c->maint_seeds = NULL;
    c->seeds_known = false;
}

static void catalog_free(struct policy_catalog *self)
{
    struct catalog_pg *c = (struct catalog_pg *)self;
    catalog_forget(self);
    free(c->entries);
    free(c->names);
    PQfinish(c->conn);
    free(c);
}

static int catalog_relation_code(struct policy_catalog *self, const char *schema, const char *name, bool *on_read,
                                 bool *on_maintenance, char err[POLICY_ERR_MAX])
{
    struct catalog_pg *c = (struct catalog_pg *)self;
    catalog_refresh(c);
    if (!c->seeds_known) {
        if (catalog_connected(c, err) < 0)
            return -1;
        PGresult *r = query(c, code_seeds_sql, 0, NULL, err);
        if (!r)
            return -1;
        bool one = PQntuples(r) == 1;
        c->read_seeds = strdup(one ? PQgetvalue(r, 0, 0) : "{}");
        c->maint_seeds = strdup(one ? PQgetvalue(r, 0, 1) : "{}");
        c->code_everywhere = !one || PQgetvalue(r, 0, 2)[0] == 't';
        PQclear(r);
        if (!c->read_seeds || !c->maint_seeds) {
            snprintf(err, POLICY_ERR_MAX, "out of memory");
            return -1;
        }
        c->seeds_known = true;
    }
    /* Most databases have none: no look-up per relation. */
    if (c->code_everywhere || (strcmp(c->read_seeds, "{}") == 0 && strcmp(c->maint_seeds, "{}") == 0)) {
        *on_read = *on_maintenance = c->code_everywhere;
        return 0;
    }
    const struct catalog_name *e = name_lookup(c, 'x', schema, name ? name : "", NULL, err);
    if (!e)
        return -1;
    *on_read = e->flag;
    *on_maintenance = e->maint;
    return 0;
}

struct policy_catalog *policy_catalog_pg_new(const char *conninfo, char err[POLICY_ERR_MAX])
{
    struct catalog_pg *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, POLICY_ERR_MAX, "out of memory");
        return NULL;
    }
    c->base.resolve = catalog_resolve;
    c->base.free = catalog_free;
    c->base.forget = catalog_forget;
    c->base.relation = catalog_relation;
    c->base.function = catalog_function;
    c->base.view_column = catalog_view_column;
    c->base.writes = catalog_writes;
    c->base.relation_code = catalog_relation_code;
    c->conn = PQconnectdb(conninfo);
    if (PQstatus(c->conn) != CONNECTION_OK) {
        snprintf(err, POLICY_ERR_MAX, "catalog connection failed: %s", PQerrorMessage(c->conn));
        char *nl = strchr(err, '\n');
        if (nl)
            *nl = '\0';
        catalog_free(&c->base);
        return NULL;
    }
    catalog_session_setup(c->conn);
    return &c->base;
}

void policy_catalog_free(struct policy_catalog *c)
{
    if (c)
        c->free(c);
}
