/* policy_internal.h — what the files of src/policy share and nobody else
 * sees: statement helpers, the nested classifier, the tracker's insert, the
 * policy object's layout. */
#ifndef HOOPCTL_POLICY_INTERNAL_H
#define HOOPCTL_POLICY_INTERNAL_H

#include "hoopctl/policy.h"
#include "hoopctl/util.h"

#include <pthread.h>
#include <string.h>

/* Free an array of n strings. */
void policy_strv_free(char **v, size_t n);
int policy_stmt_add_kind(struct policy_stmt *st, const char *kind);
/* Whether st runs one of kinds (a NULL-terminated list; POLICY_KINDS makes
 * one in place). */
bool policy_stmt_has_kind(const struct policy_stmt *st, const char *const *kinds);
#define POLICY_KINDS(...) ((const char *const[]){__VA_ARGS__, NULL})
int policy_stmt_merge(struct policy_stmt *into, const struct policy_stmt *from);
int policy_stmt_copy(struct policy_stmt *dst, const struct policy_stmt *src);
void policy_stmt_clear(struct policy_stmt *st);
const char *policy_kind_category(const char *kind);
bool policy_kind_pattern_known(const char *pattern);
json_t *policy_stmt_to_json(const struct policy_stmt *st);
int policy_classify_depth(const char *sql, struct policy_session *session,
                          struct policy_analysis *out, char err[POLICY_ERR_MAX], int depth);

/* Remember a prepared statement's classification under name (union with an
 * earlier one of the same name), and its text (the PREPARE's, which a review
 * of its EXECUTE shows) while the session's budget for them lasts. */
int policy_session_remember(struct policy_session *s, const char *name,
                            const struct policy_stmt *st, char err[POLICY_ERR_MAX]);

bool policy_session_search_path_changed(const struct policy_session *s);
/* search_path changed, by a value that may (or does not) put a schema before
 * pg_catalog; and whether none has so far. */
void policy_session_note_search_path(struct policy_session *s, bool catalog_not_first);
bool policy_session_catalog_first(const struct policy_session *s);

/* Whether st reads a column that a column rule masks (by name, star or
 * whole-row reference) outside RETURNING lists (mask.c). */
bool policy_stmt_reads_masked(const struct policy *p, const struct policy_stmt *st);
/* The masked-copy refusal, for what names alone do not show: 1 when st
 * reads (not writes) a view over a masked column, or a partition or child
 * table whose parent's masked column st may name, or when the catalog
 * cannot tell (err says why); 0 when not. */
int policy_stmt_reads_masked_via_catalog(const struct policy *p, struct policy_catalog *catalog,
                                         const struct policy_stmt *st, char err[POLICY_ERR_MAX]);
/* Whether st's own decision for groups leaves it to the masked-copy
 * refusal: it copies values, is allowed or masked, and no allow rule naming
 * groups trusted it. */
bool policy_stmt_copy_guarded(const struct policy *p, const struct policy_stmt *st, const char *const *groups);

/* Whether st (NULL: a statement not known) may read a masked column, by
 * its text or through a hidden source: a view, user code, dynamic SQL (mask.c). */
bool policy_stmt_may_read_masked(const struct policy *p, struct policy_catalog *catalog,
                                 const struct policy_stmt *st);

/* SQL cursors in the session tracker (session.c): remember one DECLAREd
 * (hold: WITH HOLD) in the current transaction; what a FETCH of a name
 * reads (NULL: not known, or Bind made a portal of that name); forget some
 * (which, with name for the first two); whether any is remembered. */
enum policy_cursors {
    POLICY_CURSORS_NAMED,      /* the one of that name */
    POLICY_CURSORS_BUT_NAMED,  /* all but the one of that name */
    POLICY_CURSORS_UNHELD,     /* those not WITH HOLD (a commit) */
    POLICY_CURSORS_THIS_TXN,   /* those and the ones this transaction declared (a rollback) */
    POLICY_CURSORS_ALL,
};
int policy_session_remember_cursor(struct policy_session *s, const char *name, const struct policy_stmt *st,
                                   bool hold, char err[POLICY_ERR_MAX]);
const struct policy_stmt *policy_session_lookup_cursor(const struct policy_session *s, const char *name);
void policy_session_forget_cursors(struct policy_session *s, const char *name, enum policy_cursors which);
bool policy_session_has_cursors(const struct policy_session *s);

/* Whether st calls a function, operator, q.f or cast that may be user code,
 * or touches a relation whose row security runs some, or maintains rows
 * (ANALYZE, VACUUM, CLUSTER, REINDEX) whose index or statistics code is
 * some (no catalog that can tell: any call or relation) (results.c). */
bool policy_stmt_calls_user_code(struct policy_catalog *catalog, const struct policy_stmt *st);

/* Whether a policy_stmt.functions entry is an operator, a q.f or a cast
 * (POLICY_OPERATOR_PREFIX and the others) rather than a call by name. */
static inline bool policy_called_form(const char *f)
{
    return strncmp(f, POLICY_OPERATOR_PREFIX, sizeof POLICY_OPERATOR_PREFIX - 1) == 0 ||
           strncmp(f, POLICY_ATTRIBUTE_PREFIX, sizeof POLICY_ATTRIBUTE_PREFIX - 1) == 0 ||
           strncmp(f, POLICY_CAST_PREFIX, sizeof POLICY_CAST_PREFIX - 1) == 0 ||
           strncmp(f, POLICY_EVENT_TRIGGER_PREFIX, sizeof POLICY_EVENT_TRIGGER_PREFIX - 1) == 0;
}

/* Whether a column rule masks one of cols (mask.c). */
bool policy_columns_masked(const struct policy *p, const struct policy_column_ref *cols, size_t n);

/* Whether an error, notice or notification that st causes may quote a
 * masked value: st may read one (as above), or is not known, or writes a
 * relation whose failing row may hold one, or that runs code someone wrote
 * (results.c). */
bool policy_stmt_may_quote_masked(const struct policy *p, struct policy_catalog *catalog,
                                  const struct policy_stmt *st);

/* Whether st reads a relation that a column rule names by table (mask.c). */
bool policy_stmt_reads_masked_table(const struct policy *p, const struct policy_stmt *st);

/* Glob match (fnmatch, case-sensitive; '*' crosses dots). */
bool policy_glob(const char *pattern, const char *s);

/* ---- the decision cache (cache.c) ---- */
#define POLICY_CACHE_SLOTS 1024
#define POLICY_CACHE_MAX_SQL 8192   /* longer statements are not cached */

struct policy_cache_entry {
    uint64_t hash;
    char *key;                 /* groups, '\x1f', sql */
    struct policy_decision decision;
    struct policy_analysis analysis;   /* a copy, handed out as copies */
};

struct policy_cache {
    pthread_mutex_t lock;
    struct policy_cache_entry slots[POLICY_CACHE_SLOTS];
    uint64_t hits, misses;
};

void policy_cache_init(struct policy_cache *c);
void policy_cache_destroy(struct policy_cache *c);
/* A hit fills out and, when analysis is not NULL, a copy of the
 * classification (the caller frees it). */
bool policy_cache_get(struct policy_cache *c, const char *groups_key, const char *sql,
                      struct policy_decision *out, struct policy_analysis *analysis);
/* Stores a copy of a, or a itself when take (a is then emptied). */
void policy_cache_put(struct policy_cache *c, const char *groups_key, const char *sql,
                      const struct policy_decision *d, struct policy_analysis *a, bool take);
int policy_analysis_copy(struct policy_analysis *dst, const struct policy_analysis *src);
/* The shape of sql: its tokens with every literal replaced by its token type
 * (comments kept, whitespace dropped), length-prefixed so that different
 * token lists never share a key. malloc'd; NULL when sql does not scan or
 * holds no literal (then the exact text is the better key). */
char *policy_shape_key(const char *sql);

/* ---- rules (rules.c) ---- */
struct policy_match {
    char **kinds; size_t nkinds;           /* globs over kinds */
    char **categories; size_t ncategories;
    char **relations; size_t nrelations;   /* globs over schema.name, any access */
    char **writes; size_t nwrites;         /* globs over written relations */
    char **functions; size_t nfunctions;   /* globs over function names */
    char **groups; size_t ngroups;         /* user in any of these */
    char **except_groups; size_t nexcept_groups;
    unsigned facts;                        /* all of these facts */
    unsigned except_facts;                 /* none of these */
};

struct policy_rule {
    char name[POLICY_NAME_MAX];
    struct policy_match match;
    enum policy_action action;
    char message[POLICY_ERR_MAX];
    char reviewers[POLICY_ERR_MAX];
    enum policy_mask_style style;
};

struct policy_column_rule {
    char *pattern;                          /* schema.table.column glob */
    enum policy_mask_style style;
};

struct policy {
    struct policy_rule *rules;
    size_t nrules;
    struct policy_rule fallback;            /* the default (action, message, reviewers) */
    bool redact_literals;
    struct policy_column_rule *columns;
    size_t ncolumns;
    unsigned detectors;                     /* POLICY_DETECT_* bits */
    enum policy_mask_style detector_style;
    uint8_t hash_key[32];                   /* HMAC key for POLICY_STYLE_HASH */
    size_t hash_key_len;
    struct evp_mac_ctx_st *hmac;            /* HMAC-SHA256 keyed with hash_key: copied per use */
    struct policy_cache cache;
};

/* mask.c: key the HMAC once the hash key is known (0, or -1); free it. */
int policy_hmac_init(struct policy *p);
void policy_hmac_free(struct policy *p);

#endif
