/* tools.c — the MCP tools an agent sees: query, list_tables, describe_table
 * and check_review; their schemas, argument checks, and how each outcome
 * (rows, held for review, refused) becomes a CallToolResult. */
#include "mcp_internal.h"
#include "hoopctl/log.h"
#include "hoopctl/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MCP_MAX_PARAMS 64
#define MCP_MAX_WAIT_SECONDS 60

static json_t *prop(const char *type, const char *description)
{
    return json_pack("{s:s, s:s}", "type", type, "description", description);
}

static json_t *tool(const char *name, const char *title, const char *description,
                    json_t *properties, json_t *required, bool read_only)
{
    return json_pack("{s:s, s:s, s:s, s:{s:s, s:o, s:o}, s:{s:b, s:b, s:b}}",
                     "name", name, "title", title, "description", description,
                     "inputSchema", "type", "object", "properties", properties,
                     "required", required,
                     "annotations", "readOnlyHint", read_only, "destructiveHint", !read_only,
                     "openWorldHint", 0);
}

json_t *mcp_tools_list(const struct mcp_config *cfg)
{
    json_t *params = json_pack("{s:s, s:s, s:{s:[s,s,s,s]}}", "type", "array", "description",
                               "values for $1, $2, ... in the SQL (strings, numbers, booleans or null)",
                               "items", "type", "string", "number", "boolean", "null");
    const char *query_desc = cfg->allow_writes
        ? "Run one SQL statement on PostgreSQL through hoopctl and get the rows back as JSON. "
          "Writes are allowed where the connection's policy allows them. Results are limited in "
          "rows and bytes; a truncated result carries a note. A statement that needs a human's "
          "approval comes back as held, with a review id to poll with check_review."
        : "Run one read-only SQL statement on PostgreSQL through hoopctl and get the rows back as "
          "JSON. Only plain reads are accepted (SELECT, VALUES, TABLE, WITH of reads, EXPLAIN, "
          "SHOW); COPY, CHECKPOINT and other utility statements, SELECT ... FOR UPDATE, and "
          "functions that act outside the transaction or on the server's files "
          "(pg_terminate_backend, pg_cancel_backend, session advisory locks, replication slots, "
          "pg_reload_conf, pg_read_file, dblink, ...) are refused, and it runs in a READ ONLY "
          "transaction. Results are limited in "
          "rows and bytes; a truncated result carries a note. A statement that needs a human's "
          "approval comes back as held, with a review id to poll with check_review.";
    return json_pack(
        "{s:[o,o,o,o]}", "tools",
        tool("query", "Run SQL", query_desc,
             json_pack("{s:o, s:o}", "sql", prop("string", "one SQL statement"), "params", params),
             json_pack("[s]", "sql"), !cfg->allow_writes),
        tool("list_tables", "List tables",
             "List the tables, views and materialized views you may see, with their schema, kind and comment.",
             json_pack("{s:o}", "schema", prop("string", "only this schema (default: all)")),
             json_array(), true),
        tool("describe_table", "Describe a table",
             "Describe a table's columns: name, type, nullability, default, primary key and comment.",
             json_pack("{s:o, s:o}", "table", prop("string", "table name, or schema.table"),
                       "schema", prop("string", "schema (default: the search path)")),
             json_pack("[s]", "table"), true),
        tool("check_review", "Check a held statement",
             "Check a statement that query reported as held for review: pending, approved (with its "
             "result) or denied (with the reason). Optionally wait up to wait_seconds for a decision.",
             json_pack("{s:o, s:{s:s, s:s, s:i, s:i}}", "review_id",
                       prop("string", "the review id that query returned"), "wait_seconds",
                       "type", "integer", "description", "seconds to wait for a decision (0-60, default 0)",
                       "minimum", 0, "maximum", MCP_MAX_WAIT_SECONDS),
             json_pack("[s]", "review_id"), true));
}

/* A CallToolResult with one text item. */
static json_t *tool_text(const char *text, bool is_error)
{
    json_t *r = json_pack("{s:[{s:s, s:s}], s:b}", "content", "type", "text", "text", text,
                          "isError", is_error);
    if (!r) /* not UTF-8 (or no memory): a tool error still answers the call */
        r = json_pack("{s:[{s:s, s:s}], s:b}", "content", "type", "text", "text",
                      "internal error: the result could not be encoded", "isError", 1);
    return r;
}

static json_t *tool_json(json_t *body, bool is_error)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text)
        return tool_text("internal error: could not encode the result", true);
    json_t *r = tool_text(text, is_error);
    free(text);
    return r;
}

static json_t *error_result(const struct mcp_outcome_info *o)
{
    char text[MCP_MESSAGE_MAX + 32];
    if (o->sqlstate[0])
        mcp_textf(text, sizeof text, "ERROR %s: %s", o->sqlstate, o->message);
    else
        mcp_textf(text, sizeof text, "ERROR: %s", o->message);
    return tool_text(text, true);
}

static json_t *held_result(const struct mcp_outcome_info *o)
{
    return tool_json(json_pack("{s:s, s:s, s:s, s:s}", "status", "held", "review_id", o->review_id,
                               "message", o->message, "next",
                               "the statement waits for a human's approval; call check_review with "
                               "this review_id to learn whether it was approved (and get its result) "
                               "or denied"),
                     false);
}

/* The CallToolResult for what a statement came to. */
static json_t *outcome_result(struct mcp_outcome_info *o)
{
    switch (o->kind) {
    case MCP_OUTCOME_ROWS: {
        json_t *body = o->body;
        o->body = NULL;
        return tool_json(body, false);
    }
    case MCP_OUTCOME_HELD:
        return held_result(o);
    default:
        return error_result(o);
    }
}

static int bad_args(int *code, char *msg, size_t msglen, const char *text)
{
    *code = MCP_RPC_INVALID_PARAMS;
    snprintf(msg, msglen, "%s", text);
    return -1;
}

/* An optional string argument: 0 (absent or a string), -1 (wrong type). */
static int arg_string(json_t *args, const char *name, const char **out)
{
    json_t *v = json_object_get(args, name);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return -1;
    *out = json_string_value(v);
    return 0;
}

#define READ_ONLY_HINT                                                                                     \
    "Only plain reads run: SELECT, VALUES, TABLE, WITH of reads, EXPLAIN, SHOW, without functions that act " \
    "outside the transaction or on the server's files. Restart hoopctl mcp with --allow-writes to let the "   \
    "connection's policy decide instead."

/* What read-only mode does with a statement. */
enum read_only_verdict {
    RO_SEND,         /* a plain read */
    RO_REFUSE,       /* refused here, never sent */
    RO_SEND_REFUSED, /* sent: our gateway refuses and audits it */
};

/* Read-only mode (no --allow-writes): before the READ ONLY transaction,
 * which does not stop what acts outside it (pg_terminate_backend, session
 * advisory locks, COPY TO PROGRAM, replication slots, pg_reload_conf,
 * CHECKPOINT), the statement must parse as a plain read. Otherwise fills o
 * with the refusal.
 *
 * With --dsn that refusal is made here (RO_REFUSE). Through our gateway
 * (gateway_read_only) the gateway makes the same check in its policy path,
 * and refuses (42501, rule read-only, or the policy's own deny, a parse error
 * among them) and audits what fails it: that is sent (RO_SEND_REFUSED), so
 * the audit trail has the agent's attempt. That covers transaction control
 * and SET/RESET too (a SET default_transaction_read_only = off, a COMMIT of
 * our READ ONLY transaction): the gateway lets those through only in a
 * simple Query, which is how we send ours, never the agent's SQL. */
static enum read_only_verdict read_only_check(const char *sql, bool gateway, struct mcp_outcome_info *o)
{
    struct policy_analysis a;
    char err[POLICY_ERR_MAX], what[3 * POLICY_NAME_MAX + 16] = "";
    memset(o, 0, sizeof *o);
    if (policy_classify(sql, NULL, &a, err) < 0) {
        o->kind = MCP_OUTCOME_ERROR;
        snprintf(o->sqlstate, sizeof o->sqlstate, "42601");
        mcp_textf(o->message, sizeof o->message,
                  "%s (hoopctl mcp is read-only: it sends only SQL it has parsed and found to be a "
                  "plain read)", err);
        return gateway ? RO_SEND_REFUSED : RO_REFUSE;
    }
    const char *why = policy_analysis_not_read(&a, what, sizeof what);
    policy_analysis_free(&a);
    if (!why)
        return RO_SEND;
    o->kind = MCP_OUTCOME_ERROR;
    snprintf(o->sqlstate, sizeof o->sqlstate, "25006");
    mcp_textf(o->message, sizeof o->message,
              "hoopctl mcp is read-only (started without --allow-writes) and refused %s: %s. " READ_ONLY_HINT,
              what, why);
    if (gateway)
        return RO_SEND_REFUSED;
    /* (With --dsn there is no gateway, so no audit trail: this line on
     * stderr is the only record.) */
    log_info("mcp", "read-only mode refused %.*s: %s", mcp_utf8_prefix(what, 100), what, why);
    return RO_REFUSE;
}

/* The gateway's read-only refusal ("hoopctl: statement refused by rule
 * read-only: ...", 42501) gets the hint of the local one. */
static void read_only_hint(struct mcp_outcome_info *o)
{
    static const char prefix[] = "hoopctl: statement refused by rule read-only: ";
    if (o->kind != MCP_OUTCOME_ERROR || strcmp(o->sqlstate, "42501") != 0 ||
        strncmp(o->message, prefix, strlen(prefix)) != 0)
        return;
    size_t n = strlen(o->message);
    mcp_textf(o->message + n, sizeof o->message - n, ". %s", READ_ONLY_HINT);
}

static json_t *call_query(struct mcp_db *db, json_t *args, int *code, char *msg, size_t msglen)
{
    const char *sql;
    if (arg_string(args, "sql", &sql) < 0 || !sql) {
        bad_args(code, msg, msglen, "query needs \"sql\": one SQL statement as a string");
        return NULL;
    }
    json_t *params = json_object_get(args, "params");
    if (params && !json_is_null(params) && !json_is_array(params)) {
        bad_args(code, msg, msglen, "\"params\" must be an array");
        return NULL;
    }
    size_t n = params ? json_array_size(params) : 0;
    if (n > MCP_MAX_PARAMS) {
        bad_args(code, msg, msglen, "too many \"params\" (at most 64)");
        return NULL;
    }
    char *texts[MCP_MAX_PARAMS] = {0};
    const char *values[MCP_MAX_PARAMS] = {0};
    json_t *result = NULL;
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(params, i);
        if (json_is_null(v))
            continue;
        if (json_is_string(v))
            texts[i] = strdup(json_string_value(v));
        else if (json_is_true(v) || json_is_false(v))
            texts[i] = strdup(json_is_true(v) ? "true" : "false");
        else if (json_is_number(v))
            texts[i] = json_dumps(v, JSON_ENCODE_ANY);
        else {
            bad_args(code, msg, msglen, "\"params\" items must be strings, numbers, booleans or null");
            goto out;
        }
        if (!texts[i]) {
            bad_args(code, msg, msglen, "out of memory");
            *code = MCP_RPC_INTERNAL_ERROR;
            goto out;
        }
        values[i] = texts[i];
    }
    struct mcp_outcome_info o, refusal;
    const struct mcp_config *cfg = mcp_db_config(db);
    bool read_only = !cfg->allow_writes;
    enum read_only_verdict v = read_only ? read_only_check(sql, cfg->gateway_read_only, &refusal) : RO_SEND;
    if (v == RO_REFUSE) {
        o = refusal;
    } else {
        mcp_db_run(db, sql, (int)n, values, read_only, true, &o);
        if (v == RO_SEND_REFUSED && o.kind == MCP_OUTCOME_ERROR && strcmp(o.sqlstate, "42601") == 0) {
            /* The gateway judges a statement at its Execute, after
             * PostgreSQL's Parse: SQL that does not parse, or several
             * statements, fail there first, and the gateway hides that
             * message; its refusal is audited but not seen. Ours says why. */
            mcp_outcome_clear(&o);
            o = refusal;
        }
        if (cfg->gateway_read_only)
            read_only_hint(&o);
    }
    result = outcome_result(&o);
    mcp_outcome_clear(&o);
out:
    for (size_t i = 0; i < n; i++)
        free(texts[i]);
    return result;
}

static json_t *call_list_tables(struct mcp_db *db, json_t *args, int *code, char *msg, size_t msglen)
{
    const char *schema;
    if (arg_string(args, "schema", &schema) < 0) {
        bad_args(code, msg, msglen, "\"schema\" must be a string");
        return NULL;
    }
    struct mcp_outcome_info o;
    mcp_catalog_list(db, schema, &o);
    json_t *r = outcome_result(&o);
    mcp_outcome_clear(&o);
    return r;
}

static json_t *call_describe_table(struct mcp_db *db, json_t *args, int *code, char *msg, size_t msglen)
{
    const char *table, *schema;
    if (arg_string(args, "table", &table) < 0 || !table || !*table ||
        arg_string(args, "schema", &schema) < 0) {
        bad_args(code, msg, msglen, "describe_table needs \"table\" (a name or schema.table) and "
                 "an optional \"schema\", both strings");
        return NULL;
    }
    char split[512];
    const char *dot = strchr(table, '.');
    if (!schema && dot && !strchr(dot + 1, '.') && (size_t)(dot - table) < sizeof split) {
        memcpy(split, table, (size_t)(dot - table));
        split[dot - table] = '\0';
        schema = split;
        table = dot + 1;
    }
    struct mcp_outcome_info o;
    mcp_catalog_describe(db, schema, table, &o);
    json_t *r = outcome_result(&o);
    mcp_outcome_clear(&o);
    return r;
}

static json_t *call_check_review(struct mcp_db *db, json_t *args, int *code, char *msg, size_t msglen)
{
    const char *id;
    if (arg_string(args, "review_id", &id) < 0 || !id || !*id) {
        bad_args(code, msg, msglen, "check_review needs \"review_id\": the id query returned");
        return NULL;
    }
    json_t *w = json_object_get(args, "wait_seconds");
    long wait = 0;
    if (w && !json_is_null(w)) {
        if (!json_is_integer(w) || json_integer_value(w) < 0 ||
            json_integer_value(w) > MCP_MAX_WAIT_SECONDS) {
            bad_args(code, msg, msglen, "\"wait_seconds\" must be an integer from 0 to 60");
            return NULL;
        }
        wait = (long)json_integer_value(w);
    }
    struct mcp_outcome_info o;
    mcp_db_check_review(db, id, wait * 1000, &o);
    json_t *r;
    switch (o.kind) {
    case MCP_OUTCOME_PENDING:
        r = tool_json(json_pack("{s:s, s:s, s:s}", "status", "pending", "review_id", id,
                                "message", o.message),
                      false);
        break;
    case MCP_OUTCOME_ROWS:
        r = tool_json(json_pack("{s:s, s:s, s:O}", "status", "approved", "review_id", id,
                                "result", o.body),
                      false);
        break;
    default:
        if (!o.sqlstate[0] && strstr(o.message, "no statement of this session")) {
            r = error_result(&o);
        } else {
            /* The gateway refuses a denied or expired review with 42501 and
             * "hoopctl: review <id> denied by ..." (or "... expired ...");
             * an approved statement can still fail when it runs, even with
             * 42501 (a permission error of its own). */
            bool denied = strcmp(o.sqlstate, "42501") == 0 &&
                          strncmp(o.message, "hoopctl: review ", strlen("hoopctl: review ")) == 0;
            r = tool_json(json_pack("{s:s, s:s, s:s, s:s}", "status", denied ? "denied" : "failed",
                                    "review_id", id, "sqlstate", o.sqlstate, "message", o.message),
                          true);
        }
        break;
    }
    mcp_outcome_clear(&o);
    return r;
}

json_t *mcp_tools_call(struct mcp_db *db, const char *name, json_t *arguments,
                       int *code, char *msg, size_t msglen)
{
    static const struct {
        const char *name;
        json_t *(*call)(struct mcp_db *, json_t *, int *, char *, size_t);
    } table[] = {
        {"query", call_query},
        {"list_tables", call_list_tables},
        {"describe_table", call_describe_table},
        {"check_review", call_check_review},
    };
    if (arguments && !json_is_object(arguments)) {
        bad_args(code, msg, msglen, "\"arguments\" must be an object");
        return NULL;
    }
    json_t *empty = NULL;
    if (!arguments)
        arguments = empty = json_object();
    json_t *r = NULL;
    bool found = false;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(table[i].name, name) == 0) {
            found = true;
            r = table[i].call(db, arguments, code, msg, msglen);
            break;
        }
    json_decref(empty);
    if (!found) {
        *code = MCP_RPC_INVALID_PARAMS;
        snprintf(msg, msglen, "unknown tool '%.*s'", mcp_utf8_prefix(name, 100), name);
    } else if (!r && !*code) {
        *code = MCP_RPC_INTERNAL_ERROR;
        snprintf(msg, msglen, "out of memory");
    }
    return r;
}
