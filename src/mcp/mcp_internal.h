/* mcp_internal.h — what the files of src/mcp share and nothing outside uses:
 * the database session (db.c), result rows as JSON (rows.c), the tools
 * (tools.c) and JSON-RPC message helpers (rpc.c). */
#ifndef HOOPCTL_MCP_INTERNAL_H
#define HOOPCTL_MCP_INTERNAL_H

#include "hoopctl/mcp.h"
#include "hoopctl/util.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#define MCP_REVIEW_ID_MAX 128
#define MCP_MESSAGE_MAX 2048
#define MCP_MAX_NOTICES 16

/* What one statement came to. */
enum mcp_outcome {
    MCP_OUTCOME_ROWS,    /* ran: body holds columns/rows/command */
    MCP_OUTCOME_HELD,    /* held for review: review_id and message */
    MCP_OUTCOME_PENDING, /* (check_review) still waiting */
    MCP_OUTCOME_ERROR,   /* refused or failed: sqlstate and message */
};

struct mcp_outcome_info {
    enum mcp_outcome kind;
    json_t *body;        /* MCP_OUTCOME_ROWS: owned by the caller afterwards */
    char review_id[MCP_REVIEW_ID_MAX];
    char sqlstate[6];
    char message[MCP_MESSAGE_MAX];
};
void mcp_outcome_clear(struct mcp_outcome_info *o);

/* The database side of one MCP server: an idle connection and the
 * connections whose statement is held for review. */
struct mcp_db;
struct mcp_db *mcp_db_new(const struct mcp_config *cfg);
void mcp_db_free(struct mcp_db *db);
/* Run one statement (with text parameters, NULL for SQL NULL). read_only runs
 * it in a READ ONLY transaction. allow_hold lets a held statement return
 * MCP_OUTCOME_HELD at once, its connection kept pending. Returns 0 with out
 * filled (MCP_OUTCOME_ERROR included). */
int mcp_db_run(struct mcp_db *db, const char *sql, int nparams, const char *const *params,
               bool read_only, bool allow_hold, struct mcp_outcome_info *out);
/* The state of a held statement, waiting up to wait_ms for it to finish.
 * Unknown id: MCP_OUTCOME_ERROR with sqlstate "". */
int mcp_db_check_review(struct mcp_db *db, const char *review_id, long wait_ms,
                        struct mcp_outcome_info *out);
const struct mcp_config *mcp_db_config(const struct mcp_db *db);

/* Result rows as JSON within the limits (rows.c). */
struct mcp_rows {
    json_t *columns;     /* array of names */
    json_t *rows;        /* array of objects */
    long count;
    size_t bytes;
    long max_rows;
    size_t max_bytes;
    bool truncated;
    bool columns_cut;         /* the column names alone did not fit max_bytes */
    const char *truncated_by; /* "max_rows" or "max_bytes" */
};
void mcp_rows_init(struct mcp_rows *r, long max_rows, size_t max_bytes);
void mcp_rows_free(struct mcp_rows *r);
/* Take the column names of a result (once). Returns 0 or -1 (memory). */
int mcp_rows_set_columns(struct mcp_rows *r, const PGresult *res);
/* Add row i of res; returns 1 when added, 0 when it did not fit (truncated
 * is set), -1 on memory failure. */
int mcp_rows_add(struct mcp_rows *r, const PGresult *res, int row);
/* One value as JSON by its type: numbers, booleans and json as such, NULL
 * as null, everything else (and anything that does not parse) as a string. */
json_t *mcp_value_json(unsigned int type_oid, const char *text, size_t len, bool is_null);
/* Build {"columns","rows","row_count","command","truncated","note"}; takes
 * the arrays out of r. */
json_t *mcp_rows_finish(struct mcp_rows *r, const char *command);

/* The schema, through the same session as queries (catalog.c). Both fill
 * out like mcp_db_run; describe's body is {"schema","table","columns"}, and a
 * table that is not visible is MCP_OUTCOME_ERROR with SQLSTATE 42P01. */
int mcp_catalog_list(struct mcp_db *db, const char *schema, struct mcp_outcome_info *out);
int mcp_catalog_describe(struct mcp_db *db, const char *schema, const char *table,
                         struct mcp_outcome_info *out);

/* Resources: table descriptions at hoopctl://tables/<schema>/<table>
 * (resources.c). NULL with *code and msg set on an error. */
json_t *mcp_resources_list(struct mcp_db *db, int *code, char *msg, size_t msglen);
json_t *mcp_resources_read(struct mcp_db *db, const char *uri, int *code, char *msg, size_t msglen);
json_t *mcp_resource_templates(void);

/* Cutting text at UTF-8 character boundaries (text.c). */
/* n, or less when the first n bytes of s end inside a UTF-8 character. */
size_t mcp_utf8_cut(const char *s, size_t n);
/* For "%.*s": the length of s, or of its longest prefix of at most max bytes
 * that ends on a character boundary. */
int mcp_utf8_prefix(const char *s, size_t max);
/* snprintf, except that text it must cut is cut on a character boundary. */
void mcp_textf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The tools (tools.c). */
json_t *mcp_tools_list(const struct mcp_config *cfg);
/* Call a tool. Returns the CallToolResult, or NULL with *code and msg set
 * for a protocol error (unknown tool, bad arguments). */
json_t *mcp_tools_call(struct mcp_db *db, const char *name, json_t *arguments,
                       int *code, char *msg, size_t msglen);

#endif
