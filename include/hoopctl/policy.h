/* policy.h — the policy engine: classify SQL with PostgreSQL's own parser
 * (libpg_query), decide allow / deny / review / mask from JSON rules, and mask
 * result values (column rules resolved through the catalog, content detectors).
 * Nothing here prints or exits; errors come back as values with a message.
 *
 * How the gateway uses it (one struct policy per connection definition, shared
 * read-only by its sessions; one struct policy_session and one catalog per
 * client session):
 *   Query (simple protocol)   policy_check(p, s, sql, groups, &d, &analysis)
 *                             deny -> ErrorResponse with d.message, review -> hold;
 *                             analysis gives the audit its normalized text and
 *                             fingerprint (a cache hit copies them, no parsing).
 *   Parse name, sql           policy_session_parse(p, s, name, sql, err); -1 -> refuse
 *   Bind portal <- name       the gateway remembers which statement a portal runs;
 *                             parameters are values: audited, never judged
 *   Execute portal            policy_check_prepared(p, s, name, groups, &d)
 *   Close statement name      policy_session_close(s, name)
 *   RowDescription            policy_mask_plan_build(p, catalog, stmt, d.action,
 *                             d.mask_style, cols, n, &plan, err); plan.any false ->
 *                             forward DataRows untouched
 *   DataRow value (not NULL)  policy_mask_value(p, &plan, col, v, len, &out, &n, err)
 *   CopyOutResponse + rows    policy_mask_plan_build_copy + policy_mask_copy_row
 *   CommandComplete           policy_mask_counters_json(&plan) into the audit record
 * After a DDL statement ran, catalog->forget (when set) drops cached names. */
#ifndef HOOPCTL_POLICY_H
#define HOOPCTL_POLICY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POLICY_ERR_MAX 256          /* error buffers: callers pass char[POLICY_ERR_MAX] */
#define POLICY_MAX_SQL (1u << 20)   /* statements longer than this are refused */
#define POLICY_NAME_MAX 64          /* PostgreSQL identifiers are at most 63 bytes */

/* ------------------------------------------------------------------ */
/* Classification                                                      */

/* Facts about a statement, as a bit set. */
enum policy_fact {
    POLICY_FACT_NO_WHERE = 1u << 0,        /* UPDATE or DELETE without WHERE (anywhere, CTEs too) */
    POLICY_FACT_RUNS_CODE = 1u << 1,       /* DO, CALL, CREATE FUNCTION/PROCEDURE with a body */
    POLICY_FACT_DYNAMIC_SQL = 1u << 2,     /* SQL the parser cannot see: plpgsql EXECUTE of a string,
                                              functions that run SQL text (dblink_exec, query_to_xml) */
    POLICY_FACT_EXPLAIN_ANALYZE = 1u << 3, /* EXPLAIN ANALYZE: judged as its inner statement */
    POLICY_FACT_WRITES = 1u << 4,          /* modifies data (INSERT/UPDATE/DELETE/MERGE/COPY FROM, CTEs) */
    POLICY_FACT_MODIFYING_CTE = 1u << 5,   /* WITH x AS (INSERT/UPDATE/DELETE ...) */
    POLICY_FACT_COPY_OUT = 1u << 6,        /* COPY ... TO STDOUT or TO a file/program */
    POLICY_FACT_COPY_PROGRAM = 1u << 7,    /* COPY ... TO/FROM PROGRAM or a server file; functions
                                              that read or write server files (pg_read_file, lo_export) */
    POLICY_FACT_PREPARED = 1u << 8,        /* judged through a prepared statement */
    POLICY_FACT_UNKNOWN_PREPARED = 1u << 9,/* EXECUTE of a name the session never prepared */
    POLICY_FACT_SEARCH_PATH = 1u << 10,    /* search_path was changed (by this statement or earlier
                                              in the session): unqualified names may be anywhere */
    POLICY_FACT_CASCADE = 1u << 11,        /* DROP ... CASCADE: may drop what depends on it, tables too */
    POLICY_FACT_COPY_CUSTOM = 1u << 12,    /* COPY in CSV/binary format or with custom delimiter, NULL
                                              string, header, quoting: its rows cannot be masked */
    POLICY_FACT_UNKNOWN_CURSOR = 1u << 13, /* FETCH/MOVE of a cursor the session never DECLAREd (one a
                                              function opened): what it reads is unknown */
    POLICY_FACT_UNKNOWN_SETTING = 1u << 14,/* set_config() whose setting name is not written out, or a
                                              write to pg_settings: it may change the role */
    POLICY_FACT_TEMP_ONLY = 1u << 15,      /* a DROP, TRUNCATE or ALTER of tables, views, sequences or
                                              indexes that names every one in pg_temp (the session's
                                              own temporary schema) and nothing else */
};
#define POLICY_FACT_LAST POLICY_FACT_TEMP_ONLY

/* Unqualified names are taken to be in "public" (search_path "$user",
 * public) until the session changes search_path; from then on they match a
 * pattern in any schema (fail closed). */
struct policy_relation {
    char *schema;          /* as written; NULL when unqualified */
    char *name;
    bool write;            /* written (INSERT/UPDATE/DELETE/MERGE/COPY FROM/TRUNCATE/DDL) */
    bool read;             /* read too, or only (a write's source may be its own target) */
};

/* Between the texts in policy_stmt.prepared_text (a control character; a
 * text that holds one is shown split there, all of it still shown). */
#define POLICY_TEXT_SEP '\x1e'

/* One statement's classification. Strings are owned by the analysis. */
/* How policy_stmt.functions names an operator, "operator(" NAME ")", and
 * the f of a qualified name q.f, "attribute(" f ")" (PostgreSQL reads q.f
 * as f(q) when q has no column f). */
#define POLICY_OPERATOR_PREFIX "operator("
#define POLICY_ATTRIBUTE_PREFIX "attribute("
/* ...and a cast to a type (which may run a function), "cast(" TYPE ")". */
#define POLICY_CAST_PREFIX "cast("
/* ...and, for a statement that fires event triggers (DDL, SELECT INTO),
 * "event_trigger(ddl)": the database's event triggers run code. */
#define POLICY_EVENT_TRIGGER_PREFIX "event_trigger("

struct policy_stmt {
    char *text;            /* this statement's text, as split from the input */
    const char *kind;      /* primary command kind (kinds[0]), e.g. "SELECT", "DROP_TABLE" */
    const char *category;  /* "data", "ddl", "system", "session", "code", "prepared",
                              "transaction", "utility" */
    char **kinds;          /* every kind the statement runs (primary first), nkinds */
    size_t nkinds;
    struct policy_relation *relations;
    size_t nrelations;
    char **functions;      /* called functions, schema-qualified as written; an operator as
                              "operator(NAME)", and f of q.f as "attribute(f)" (it may be f(q)) */
    size_t nfunctions;
    char **columns;        /* column names the statement references ("*" for a star);
                              for computed-column masking */
    size_t ncolumns;
    char **aliases;        /* relation aliases (a lone alias in a column is a whole row) */
    size_t naliases;
    char **sources;        /* the column names referenced outside RETURNING lists: values
                              that may flow into what the statement writes */
    size_t nsources;
    unsigned facts;        /* enum policy_fact bits */
    char *prepared_name;   /* PREPARE/EXECUTE/DEALLOCATE target, NULL otherwise; "" for ALL */
    char *cursor_name;     /* DECLARE/CLOSE/FETCH/MOVE target, NULL otherwise; "" for CLOSE ALL */
    char *normalized;      /* libpg_query normalized text (literals as $n), may be NULL */
    char *prepared_text;   /* EXECUTE: the text of the PREPAREs of its name this session sent
                              (several, after POLICY_TEXT_SEP each, when the name was prepared
                              again: the server may have refused the later ones); NULL otherwise */
    char fingerprint[17];  /* libpg_query fingerprint, hex */
    bool returning;        /* has a non-empty RETURNING list (its own or a CTE's) */
    bool copy_csv;         /* COPY in CSV format (else text, or copy_custom_format) */
    bool copy_header;      /* COPY with a header line */
    bool locks_rows;       /* a SELECT ... FOR UPDATE/NO KEY UPDATE/SHARE/KEY SHARE (its own or a
                              subquery's or CTE's) */
};

/* The classification of one input string (one or more statements). */
struct policy_analysis {
    struct policy_stmt *stmts;
    size_t nstmts;
    bool cacheable;        /* no session state was read or changed (no PREPARE/EXECUTE/...) */
};

struct policy_session;
struct policy;

/* Classify sql (NUL-terminated). A parse error fails: -1 with the parser's
 * message (and position) in err. session may be NULL; with a session, SQL
 * PREPARE/EXECUTE/DEALLOCATE/DISCARD are tracked and EXECUTE is judged by the
 * prepared statement. */
int policy_classify(const char *sql, struct policy_session *session,
                    struct policy_analysis *out, char err[POLICY_ERR_MAX]);
void policy_analysis_free(struct policy_analysis *a);

/* What a built-in does beyond returning a value (src/policy/builtins.c, the
 * one list of them). */
enum policy_builtin_effect {
    POLICY_BUILTIN_KEEPS_VALUE = 1u << 0,  /* keeps a value where a later statement reads it (a
                                              setting, a large object, a lock's key, a slot's name) */
    POLICY_BUILTIN_OUTSIDE_TX = 1u << 1,   /* acts outside the transaction (ROLLBACK does not undo
                                              it) or on other sessions: session advisory locks,
                                              pg_terminate_backend, replication slots, WAL, reloads */
    POLICY_BUILTIN_SERVER_FILE = 1u << 2,  /* reads or writes the server's files (pg_read_file,
                                              lo_export, adminpack) */
};
/* The effects of the function called name (the last part of a qualified
 * name, matched without regard to case, whatever the schema); 0 for others. */
unsigned policy_builtin_effects(const char *name);
/* hoopctl mcp's read-only check: NULL when every statement of a is a plain
 * read (SELECT, VALUES, TABLE, WITH of reads, EXPLAIN, SHOW) that calls no
 * built-in with POLICY_BUILTIN_OUTSIDE_TX or POLICY_BUILTIN_SERVER_FILE, runs
 * no SQL from text and locks no rows. Otherwise why it is not one (static
 * text), with the statement kind or function refused in what. Functions that
 * views and user functions call are not seen. */
const char *policy_analysis_not_read(const struct policy_analysis *a, char *what, size_t whatlen);
/* The same check of one statement. */
const char *policy_stmt_not_read(const struct policy_stmt *st, char *what, size_t whatlen);
/* Whether st is only transaction control (BEGIN/START TRANSACTION, COMMIT,
 * ROLLBACK, SAVEPOINT, RELEASE, ROLLBACK TO) or SET/RESET/SHOW of an ordinary
 * setting, calling no function: what hoopctl mcp sends around each call in
 * read-only mode (BEGIN READ ONLY, SET statement_timeout, ROLLBACK), which
 * its gateway lets through and its tools refuse to the agent. Not two-phase
 * commit, SET ROLE, SET SESSION AUTHORIZATION nor the parser's settings. */
bool policy_stmt_is_session_control(const struct policy_stmt *st);
/* The facts as names ("no_where", "runs_code", ...), for output and rules. */
const char *policy_fact_name(unsigned fact_bit);
/* The classification as JSON (new reference). */
json_t *policy_analysis_to_json(const struct policy_analysis *a);
/* The text with every literal replaced by $n, for audit with redact_literals.
 * Returns a malloc'd string, or NULL with err set. */
char *policy_redact_literals(const char *sql, char err[POLICY_ERR_MAX]);
/* What an audit record or a review keeps of a statement (src/policy/redact.c,
 * on PostgreSQL's scanner; code bodies, DO's and a function's AS, are kept
 * whole in every mode, and comments decide nothing).
 * REVIEW: a string constant after PASSWORD or after a name that says
 * password or secret ("x 'v'", "x = 'v'", "x := 'v'") becomes <redacted>, a
 * parameter there is marked secret. AUDIT: the same, a string holding a
 * conninfo password too, and when any token names a password or secret,
 * every other constant becomes $n and every parameter is secret. LITERALS
 * (redact_literals): AUDIT as if a token always did. Text the scanner
 * rejects is withheld whole (its length only). */
enum policy_redact_mode { POLICY_REDACT_REVIEW, POLICY_REDACT_AUDIT, POLICY_REDACT_LITERALS };
#define POLICY_REDACT_MAX_PARAMS 256
struct policy_redaction {
    char *text;        /* malloc'd */
    bool changed;      /* something was replaced */
    bool all_params;   /* every parameter is secret */
    uint64_t secret_params[POLICY_REDACT_MAX_PARAMS / 64]; /* bit i: parameter $i+1 */
};
/* 0, or -1 when memory runs out. */
int policy_redact(const char *sql, enum policy_redact_mode mode, struct policy_redaction *out);
/* Whether parameter index (0-based) is to be left out. */
bool policy_param_is_secret(const struct policy_redaction *r, int index);
/* Whether a value reads as a conninfo holding a password ("password=...",
 * "scheme://user:pw@host"). */
bool policy_value_holds_secret(const char *s, size_t n);
/* A quick test of whether SECRETS redaction could change anything (the
 * words, or "://"): false lets the statement path skip the scan. */
bool policy_text_may_hold_secret(const char *sql);
/* What is recorded of a statement (AUDIT, scanned only when the quick test
 * says there may be a secret; LITERALS with the policy's redact_literals).
 * r->changed false: kept as sent (and r->text may be NULL). 0, or -1 when
 * memory runs out. */
int policy_audit_redaction(const char *sql, bool literals, struct policy_redaction *r);
/* What reviewers read of a statement (REVIEW), the same way. */
int policy_review_redaction(const char *sql, struct policy_redaction *r);
/* What a review shows of a statement whose review redaction is `reviewed`
 * and whose analysis is a: first, for each EXECUTE of a statement prepared
 * in SQL (reviewers cannot see the session), what it was PREPAREd as (the
 * same redaction), as SQL comments; then `reviewed`. malloc'd; NULL when
 * memory runs out. */
char *policy_review_text(const struct policy_analysis *a, const char *reviewed);
/* The statement part of a review's text, after the preface that
 * policy_review_text may have put before it. */
const char *policy_review_statement(const char *text);

/* ------------------------------------------------------------------ */
/* Per-session prepared-statement tracker (SQL PREPARE and protocol Parse) */

struct policy_session *policy_session_new(void);
void policy_session_free(struct policy_session *s);
/* The session's search_path is not the default one (a SET, or a startup
 * parameter): from now on an unqualified name may be in any schema. */
void policy_session_mark_search_path(struct policy_session *s);
/* Extended protocol Parse: name "" is the unnamed statement. Classifies sql
 * (through p's cache when p is not NULL: drivers Parse the same text again
 * and again) and remembers it. Re-using a name that may still exist keeps
 * the union of both (the server refuses a second Parse of a live name). */
int policy_session_parse(struct policy *p, struct policy_session *s, const char *name, const char *sql,
                         char err[POLICY_ERR_MAX]);
/* Extended protocol Close of a statement: the entry goes (a protocol Close
 * cannot fail). SQL DEALLOCATE keeps entries, since it can fail at the server. */
void policy_session_close(struct policy_session *s, const char *name);
/* The classification of a prepared statement, or NULL when unknown. */
const struct policy_stmt *policy_session_lookup(const struct policy_session *s, const char *name);
size_t policy_session_count(const struct policy_session *s);
/* Portals that Bind made share SQL cursors' names: a FETCH or MOVE of a
 * name for which exists(ctx, name) says true is judged as of an unknown
 * cursor (every column masked), whatever a DECLARE of that name said.
 * exists NULL: no such portals. */
void policy_session_set_portal_check(struct policy_session *s, bool (*exists)(void *ctx, const char *name),
                                     void *ctx);
/* The session is idle outside a transaction block: the cursors its
 * transaction declared are gone, the WITH HOLD ones too when it rolled back
 * or failed. A later portal may take their names. */
void policy_session_end_transaction(struct policy_session *s, bool rolled_back);

/* ------------------------------------------------------------------ */
/* Rules and decisions                                                  */

enum policy_action {
    POLICY_ALLOW = 0,
    POLICY_MASK,           /* allow, and mask every result column with the rule's style */
    POLICY_REVIEW,         /* hold for an approver in one of reviewers */
    POLICY_DENY,
};

enum policy_mask_style {
    POLICY_STYLE_FULL = 0, /* redact the whole value */
    POLICY_STYLE_PARTIAL,  /* keep a short prefix/suffix: a***@example.com */
    POLICY_STYLE_HASH,     /* HMAC-SHA-256 pseudonym, stable for joins/GROUP BY */
};

#define POLICY_MAX_REVIEW_RULES 16

struct policy_decision {
    enum policy_action action;
    int rule_index;        /* index in the rule list, -1 for the default */
    char rule_name[POLICY_NAME_MAX];
    char message[POLICY_ERR_MAX];  /* deny message or review reason */
    char reviewers[POLICY_ERR_MAX];/* comma-separated reviewer groups (review) */
    enum policy_mask_style mask_style; /* for POLICY_MASK */
    size_t stmt_index;     /* the statement that decided, in a multi-statement string */
    bool cached;           /* answered from the decision cache */
    /* Review: every rule whose review the string's statements need (indexes,
     * POLICY_RULE_DEFAULT for the default outcome). A decider must be among
     * the reviewers of each; `reviewers` then lists them all. */
    int review_rules[POLICY_MAX_REVIEW_RULES];
    size_t nreview_rules;
};

struct policy;

/* Parse and validate rules. On error returns NULL and err names the rule
 * index and field ("rules[2].match.kinds: ..."). */
struct policy *policy_load_json(const json_t *doc, char err[POLICY_ERR_MAX]);
struct policy *policy_load_file(const char *path, char err[POLICY_ERR_MAX]);
struct policy *policy_load_default(void);
/* The built-in default policy document (new reference). */
json_t *policy_default_json(void);
/* The SHA-256 (hex) of a connection's policy document as stored (its keys
 * sorted; "{}" for none, the built-in default): which version of a policy a
 * gateway judged a statement by, so that rule indexes mean the same rules. */
void policy_doc_digest(const json_t *doc, char out[65]);
void policy_free(struct policy *p);
/* Whether the policy asks for literal redaction in the audit record. */
bool policy_redacts_literals(const struct policy *p);

/* Decide on an analysed statement list for a user in groups (NULL-terminated
 * array, may be NULL). The most severe statement decides; ties go to the first. */
void policy_decide(const struct policy *p, const struct policy_analysis *a,
                   const char *const *groups, struct policy_decision *out);
/* One statement's own decision: for the result sets of a multi-statement
 * string, where statement i's rows follow statement i's rule (mask style). */
void policy_decide_stmt(const struct policy *p, const struct policy_stmt *st,
                        const char *const *groups, struct policy_decision *out);

/* The gateway's entry point for a statement: classify (or hit the decision
 * cache) and decide. A parse error is a deny carrying the parser's message,
 * returned as 0 with action DENY and rule_index POLICY_RULE_PARSE_ERROR.
 * analysis_out may be NULL; when given it receives the classification (the
 * caller frees it), with the normalized text and fingerprint for the audit
 * and the statement for computed-column masking. A cache hit (same groups,
 * same text, no session state involved) skips the parser either way.
 * Returns -1 only when memory runs out (out is a deny; refuse the statement). */
#define POLICY_RULE_DEFAULT (-1)
#define POLICY_RULE_PARSE_ERROR (-2)
#define POLICY_RULE_UNKNOWN_PREPARED (-3)
#define POLICY_RULE_MASKED_COPY (-4)   /* would copy masked values where masking cannot follow */
int policy_check(struct policy *p, struct policy_session *s, const char *sql,
                 const char *const *groups, struct policy_decision *out,
                 struct policy_analysis *analysis_out);
/* Decide on a protocol-level named statement at Execute time (Bind params do
 * not change the statement's shape, so they are audited, not judged). */
int policy_check_prepared(struct policy *p, struct policy_session *s, const char *name,
                          const char *const *groups, struct policy_decision *out);

/* Decision cache statistics (hits, misses) for tests and metrics. */
void policy_cache_stats(const struct policy *p, uint64_t *hits, uint64_t *misses);

const char *policy_action_name(enum policy_action a);
const char *policy_style_name(enum policy_mask_style s);

/* ------------------------------------------------------------------ */
/* Catalog resolver: table OID + attribute number -> names               */

struct policy_column_ref {
    char schema[POLICY_NAME_MAX];
    char table[POLICY_NAME_MAX];
    char column[POLICY_NAME_MAX];
};

/* What the resolver knows about one result column's source. */
struct policy_column_info {
    struct policy_column_ref ref;  /* the relation's own column */
    bool is_view;                  /* relation is a view / materialized view */
    bool derived;                  /* a view column computed by an expression: base holds
                                      every column the view reads */
    struct policy_column_ref *base;/* for views: base columns the view reads; for a
                                      table in an inheritance tree: its ancestors' and
                                      descendants' column of the same name (a rule on
                                      either covers the rows a read of it returns) */
    size_t nbase;
    bool unknown;                  /* could not be resolved: mask (fail closed) */
};

struct policy_catalog {
    /* Fill info for (table_oid, attnum); 0 or -1 with err. info->base is
     * owned by the catalog and valid until it is freed. */
    int (*resolve)(struct policy_catalog *self, uint32_t table_oid, int16_t attnum,
                   struct policy_column_info *info, char err[POLICY_ERR_MAX]);
    void (*free)(struct policy_catalog *self);
    /* Drop cached answers (after DDL renamed or replaced something); may be NULL. */
    void (*forget)(struct policy_catalog *self);
    /* For computed columns, whose RowDescription names no source. A NULL
     * member means "cannot tell": computed columns are then masked whenever
     * the statement reads a relation or calls a function (fail closed).
     * relation: a relation a statement names (schema NULL: any schema's) —
     * 0 with *is_view set and, for views and materialized views, every base
     * column they read (through views of views) in *base, owned by the
     * catalog until forget or free; for a table in an inheritance tree or
     * a partitioned one (not a view) every column of its ancestors and
     * descendants in *base; -1 with err. */
    int (*relation)(struct policy_catalog *self, const char *schema, const char *name, bool *is_view,
                    const struct policy_column_ref **base, size_t *nbase, char err[POLICY_ERR_MAX]);
    /* function: whether a function called by name (as written, maybe
     * schema-qualified) may be user code that reads tables: any function of
     * that name someone made (not with the server, whatever its schema), or
     * none of that name at all (a name the look-up could not read); for
     * "operator(NAME)", any operator of that name whose function someone
     * made, not in C; for "attribute(NAME)", any function someone made that
     * one row can be passed to; for "cast(TYPE)", any cast to that type
     * whose function someone made. 0 with *user_code, or -1 with err. */
    int (*function)(struct policy_catalog *self, const char *name, bool *user_code, char err[POLICY_ERR_MAX]);
    /* view_column: the base columns that column `column` of view `name`
     * (schema NULL: views of that name in any schema) stands for, through
     * views of views; an expression stands for every column its view reads.
     * 0 with *base (owned as for relation; none when the view has no such
     * column), or -1 with err. */
    int (*view_column)(struct policy_catalog *self, const char *schema, const char *name, const char *column,
                       const struct policy_column_ref **base, size_t *nbase, char err[POLICY_ERR_MAX]);
    /* writes: what a write to relation `name` (schema NULL: any schema's)
     * may write and an error of it quote: every column of the relation, of
     * its partitions and children, of what its rules (a view's) name and
     * of what foreign keys cascade to, on and on, also under their
     * ancestors' names (*columns, owned as for relation); *code when one of
     * those runs code someone wrote on a write (a trigger, or a default or
     * constraint calling a user function), which may read and quote any
     * column. 0, or -1 with err. NULL: cannot tell (a write counts as one
     * that may quote anything). */
    int (*writes)(struct policy_catalog *self, const char *schema, const char *name, bool *code,
                  const struct policy_column_ref **columns, size_t *ncolumns, char err[POLICY_ERR_MAX]);
    /* relation_code: code someone wrote (not C) that touching relation
     * `name` (schema NULL: any schema's; name NULL: every relation of the
     * database) runs without the statement naming it, in it, its
     * partitions and children, an index's table, and the relations its
     * views and row security policies read. *on_read, on any statement:
     * row security, a rule or a view's query, a partition key, an index's
     * operator class, a default operator class of a type a column holds,
     * an implicit cast from or to a column's type. *on_maintenance, what
     * ANALYZE, VACUUM, CLUSTER and REINDEX evaluate: an index's expression
     * or predicate, an extended statistic's expression. 0, or -1 with err.
     * NULL: cannot tell (both count). */
    int (*relation_code)(struct policy_catalog *self, const char *schema, const char *name, bool *on_read,
                         bool *on_maintenance, char err[POLICY_ERR_MAX]);
};

/* DDL that may change what the catalog answers has committed in one of
 * this process's sessions: every catalog drops its cached answers. */
void policy_catalog_changed(void);

/* The libpq implementation: a side connection (conninfo as for PQconnectdb),
 * answers cached per (OID, attnum). Returns NULL with err on failure. */
struct policy_catalog *policy_catalog_pg_new(const char *conninfo, char err[POLICY_ERR_MAX]);
void policy_catalog_free(struct policy_catalog *c);

/* ------------------------------------------------------------------ */
/* Masking of result values                                            */

enum policy_detector {
    POLICY_DETECT_EMAIL = 1u << 0,
    POLICY_DETECT_PHONE = 1u << 1,
    POLICY_DETECT_CARD = 1u << 2,
    POLICY_DETECT_SSN = 1u << 3,
    POLICY_DETECT_IBAN = 1u << 4,
    POLICY_DETECT_IP = 1u << 5,
    POLICY_DETECT_SECRET = 1u << 6,
    POLICY_DETECT_COUNT = 7,
};
#define POLICY_DETECT_ALL 0x7fu

/* A match of a detector in a text value: [start, end). */
struct policy_detection {
    enum policy_detector detector;
    size_t start, end;
};
/* Find matches of the detectors in mask (bit set) in text[0..len). Writes up
 * to max non-overlapping matches in order, returns how many were found (may
 * exceed max: then mask the whole value). */
size_t policy_detect(const char *text, size_t len, unsigned mask,
                     struct policy_detection *out, size_t max);
const char *policy_detector_name(enum policy_detector d);
/* Individual validators, exposed for tests. */
bool policy_luhn_ok(const char *digits, size_t n);
bool policy_iban_ok(const char *s, size_t n);

/* One column of a RowDescription. */
struct policy_column_desc {
    const char *name;      /* result column name (for the audit record) */
    uint32_t table_oid;    /* 0 for computed columns */
    int16_t attnum;
    uint32_t type_oid;
    int16_t format;        /* 0 text, 1 binary */
};

/* What to do with one result column. */
enum policy_column_action {
    POLICY_COL_PASS = 0,   /* forward untouched (detectors may still run on text) */
    POLICY_COL_MASK,       /* mask every value with style */
};

struct policy_column_plan {
    enum policy_column_action action;
    enum policy_mask_style style;
    bool detect;           /* run content detectors on this column's values */
    uint32_t type_oid;
    int16_t format;
    char label[3 * POLICY_NAME_MAX]; /* schema.table.column or result name, for counters */
    uint64_t masked;       /* values masked through the column rule */
    uint64_t detected[POLICY_DETECT_COUNT]; /* detector hits in this column */
};

/* A result set's plan: built from a RowDescription, used per DataRow. */
struct policy_mask_plan {
    struct policy_column_plan *cols;
    size_t ncols;
    bool any;              /* false: rows can be forwarded without looking at them */
    bool csv;              /* COPY rows are CSV (default quote, delimiter and NULL) */
    bool header;           /* the next COPY row is the header: forwarded as it is */
};

/* Build the plan for a RowDescription. stmt is the statement that produced it
 * (for computed columns; may be NULL: then computed columns are masked when
 * any column rule exists). catalog may be NULL: then every table column is
 * masked when any column rule exists (fail closed). Returns 0 or -1 with err. */
int policy_mask_plan_build(const struct policy *p, struct policy_catalog *catalog,
                           const struct policy_stmt *stmt, enum policy_action statement_action,
                           enum policy_mask_style statement_style,
                           const struct policy_column_desc *cols, size_t ncols,
                           struct policy_mask_plan *out, char err[POLICY_ERR_MAX]);
/* The plan for COPY ... TO STDOUT (CopyOutResponse carries no table OIDs or
 * types): every column is masked (as \N) when the statement reads a relation
 * that a column rule names by table, or when the action is POLICY_MASK;
 * detectors run on every field. Only the default text format can be masked:
 * when masking is needed and the COPY uses another format (or stmt is NULL,
 * so the format is unknown), -1 with err — the gateway refuses the COPY. */
int policy_mask_plan_build_copy(const struct policy *p, const struct policy_stmt *stmt,
                                enum policy_action statement_action, size_t ncols,
                                struct policy_mask_plan *out, char err[POLICY_ERR_MAX]);
/* The same with a catalog: a COPY whose query reads a view over a masked
 * column, calls a function that may be user code, or runs SQL from a string
 * is masked whole as well (without the catalog those go unseen). The catalog
 * cannot tell a COPY's columns apart: it answers after the COPY ran, when a
 * transaction that renamed them may be over. */
int policy_mask_plan_build_copy_catalog(const struct policy *p, struct policy_catalog *catalog,
                                        const struct policy_stmt *stmt, enum policy_action statement_action,
                                        size_t ncols, struct policy_mask_plan *out, char err[POLICY_ERR_MAX]);
void policy_mask_plan_free(struct policy_mask_plan *plan);

/* Mask one DataRow value of column col (not SQL NULL). Returns:
 *   0  forward the value unchanged (*out untouched),
 *   1  replace it with out[0..*outlen) (malloc'd; caller frees),
 *   2  replace it with SQL NULL (no valid masked value for this type),
 *  -1  error (err set): the caller must not forward the value. */
int policy_mask_value(const struct policy *p, struct policy_mask_plan *plan, size_t col,
                      const uint8_t *value, size_t len, uint8_t **out, size_t *outlen,
                      char err[POLICY_ERR_MAX]);

/* Mask a text value with a style (no type awareness). Returns malloc'd text. */
char *policy_mask_text(const struct policy *p, enum policy_mask_style style,
                       const char *value, size_t len, size_t *outlen);

/* Mask what the policy's detectors find in text that is no result value
 * (an error's or notice's fields, a notification's payload, a
 * ParameterStatus's value), each match in the detector style as in a text
 * column; past 64 matches the whole text becomes "****". Returns 0 when
 * nothing was found (or no detector is on), 1 with *out (malloc'd,
 * NUL-terminated, *outlen bytes), -1 when memory runs out. */
int policy_mask_detected_text(const struct policy *p, const char *text, size_t len, char **out, size_t *outlen);
/* Whether the policy turns on any content detector: without one, a gateway
 * needs no text_mask hook (and so rebuilds no notice, notification or
 * ParameterStatus for it). */
bool policy_has_detectors(const struct policy *p);

/* COPY TO STDOUT: mask one CopyData row and append it to out (a gateway
 * filter's output): in text format (tab-separated, \N for NULL, backslash
 * escapes) or, with plan->csv, CSV (comma-separated, NULL unquoted and empty,
 * "quoted" fields with "" inside); a header row passes as it is. Returns 0,
 * or -1 with err and out as it was. */
struct buf;
int policy_mask_copy_row(const struct policy *p, struct policy_mask_plan *plan,
                         const uint8_t *row, size_t len, struct buf *out, char err[POLICY_ERR_MAX]);

/* The plan's counters as JSON for the audit record: {"columns":{label:n},
 * "detectors":{name:n}} (new reference). */
json_t *policy_mask_counters_json(const struct policy_mask_plan *plan);

/* ------------------------------------------------------------------ */
/* Which statement a result set belongs to                               */

/* A client may send statements before the results of earlier ones came back
 * (pipelining, in either protocol), and not every statement returns rows,
 * so a result cannot be paired with the statement last seen. Upstream
 * answers in order, though, and each statement of a Query and each Execute
 * ends with one completion (or an error, which skips the rest up to its
 * ReadyForQuery or Sync): the gateway counts them and says whose answer is
 * coming (gateway_session_info's answer_id and answer_index). The tracker
 * keeps every forwarded statement under that name until the session is idle,
 * and a result is masked as its own statement says. It is bounded:
 * past 256 statements in flight the oldest are folded together, and a result
 * of a fold is masked as any of them would mask it. */
struct policy_results;
/* Statement `index` (from 0) of the string judged as `id` (the statement
 * hook's hold_id; 0 is no statement of ours). */
struct policy_result_pos {
    uint64_t id;
    uint32_t index;
};
struct policy_results *policy_results_new(void);
void policy_results_free(struct policy_results *r);
/* A statement string judged as id was forwarded: its statements, with their
 * decisions for groups (d, the string's decision from policy_check, is taken
 * as the statement's own when a holds one statement; may be NULL). The
 * statements are taken (a keeps empty ones; free it as usual). 0, or -1 when
 * memory runs out (then refuse the statement). */
int policy_results_push(struct policy_results *r, const struct policy *p, struct policy_analysis *a,
                        const char *const *groups, const struct policy_decision *d, uint64_t id);
/* A statement whose text is unknown was forwarded as id (an Execute of a
 * portal the gateway saw no Bind for: a cursor DECLAREd in SQL): its result
 * masks every computed column. 0 or -1 when memory runs out. */
int policy_results_push_unknown(struct policy_results *r, uint64_t id);
/* The plans for a RowDescription or CopyOutResponse that just arrived while
 * upstream answers pos (what comes before it is retired). The result is its
 * statement's: masked as that statement's rule says (a fold's: a column is
 * masked when any of its statements would mask it, full where their styles
 * differ). With no statement of ours at pos, or one that returns no rows (a
 * rule made rows for an INSERT), it is nobody's known one: as for a NULL
 * statement. pos NULL (the gateway lost count): any statement still in
 * flight may own it. Returns 0 or -1 with err (for COPY: a candidate's
 * format cannot be masked). */
int policy_mask_plan_build_results(const struct policy *p, struct policy_catalog *catalog,
                                   struct policy_results *r, const struct policy_result_pos *pos,
                                   const struct policy_column_desc *cols, size_t ncols,
                                   struct policy_mask_plan *out, char err[POLICY_ERR_MAX]);
int policy_mask_plan_build_copy_results(const struct policy *p, struct policy_catalog *catalog,
                                        struct policy_results *r, const struct policy_result_pos *pos,
                                        size_t ncols, struct policy_mask_plan *out, char err[POLICY_ERR_MAX]);
/* Whether a statement forwarded since the session was last idle (any in r;
 * none known counts; COMMIT, PREPARE TRANSACTION and SET CONSTRAINTS, where
 * deferred checks run, and a write to a relation with triggers someone
 * wrote, count as unknown) may read a masked column, by its text or through
 * a view, a function, a trigger or SQL run from a string: an error or
 * notice that comes now must then not show its text, which may quote the
 * value. */
bool policy_results_may_read_masked(const struct policy *p, struct policy_catalog *catalog,
                                    struct policy_results *r);
/* Whether an error of this SQLSTATE may quote data values in its text: all
 * but the classes known not to (connection, transaction state, auth,
 * rollback, resources, operator intervention): fail closed. */
bool policy_sqlstate_may_quote_values(const char *sqlstate);
/* Both of the above, for the gateway's error_redact hook; a quiet class is
 * hidden too while a statement that may run user code (which picks its own
 * SQLSTATE) is in flight. */
bool policy_error_must_hide(const struct policy *p, struct policy_catalog *catalog, struct policy_results *r,
                            const char *sqlstate);
/* Whether no forwarded statement can still answer (nothing in flight). */
bool policy_results_empty(const struct policy_results *r);
/* For the gateway's notification_redact hook: a notification that arrives
 * while a statement that may read a masked column is still in flight (such
 * a statement's own pg_notify(channel, email) comes then, before its
 * ReadyForQuery) must not show its payload. One that arrives when nothing
 * is in flight (another session's) is shown; callers check that first
 * (policy_results_empty), so that it needs no catalog. */
bool policy_notification_must_hide(const struct policy *p, struct policy_catalog *catalog,
                                   struct policy_results *r);
/* Every forwarded statement has been answered (the gateway's idle hook):
 * none can own a later result. */
void policy_results_clear(struct policy_results *r);
/* Whether st may return rows (a RowDescription or COPY data). */
bool policy_stmt_may_return_rows(const struct policy_stmt *st);

#endif
