/* catalog.c — what the agent may learn about the schema: the tables it can
 * see and one table's columns, read from pg_catalog through the same
 * connection (and so the same gateway, policy and audit) as its queries. */
#include "mcp_internal.h"

#include <stdio.h>
#include <string.h>

static const char SQL_LIST_TABLES[] =
    "SELECT n.nspname AS schema, c.relname AS name,\n"
    "  CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table' WHEN 'v' THEN 'view'\n"
    "    WHEN 'm' THEN 'materialized view' WHEN 'f' THEN 'foreign table' END AS kind,\n"
    "  pg_catalog.obj_description(c.oid, 'pg_class') AS comment\n"
    "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace\n"
    "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')\n"
    "  AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'\n"
    "  AND ($1::text IS NULL OR n.nspname = $1)\n"
    "ORDER BY 1, 2";

static const char SQL_DESCRIBE_TABLE[] =
    "WITH t AS (\n"
    "  SELECT c.oid, n.nspname, c.relname\n"
    "  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace\n"
    "  WHERE c.relname = $2 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')\n"
    "    AND (($1::text IS NOT NULL AND n.nspname = $1)\n"
    "      OR ($1::text IS NULL AND n.nspname = ANY (pg_catalog.current_schemas(false))))\n"
    "  ORDER BY pg_catalog.array_position(pg_catalog.current_schemas(false), n.nspname::text)\n"
    "  LIMIT 1)\n"
    "SELECT t.nspname AS schema, t.relname AS table, a.attname AS column,\n"
    "  pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,\n"
    "  NOT a.attnotnull AS nullable,\n"
    "  pg_catalog.pg_get_expr(d.adbin, d.adrelid) AS default,\n"
    "  EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = t.oid AND i.indisprimary\n"
    "          AND a.attnum = ANY (i.indkey)) AS primary_key,\n"
    "  pg_catalog.col_description(t.oid, a.attnum) AS comment\n"
    "FROM t JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped\n"
    "LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = t.oid AND d.adnum = a.attnum\n"
    "ORDER BY a.attnum";

int mcp_catalog_list(struct mcp_db *db, const char *schema, struct mcp_outcome_info *out)
{
    const char *params[1] = {schema};
    return mcp_db_run(db, SQL_LIST_TABLES, 1, params, true, true, out);
}

int mcp_catalog_describe(struct mcp_db *db, const char *schema, const char *table,
                         struct mcp_outcome_info *out)
{
    const char *params[2] = {schema, table};
    mcp_db_run(db, SQL_DESCRIBE_TABLE, 2, params, true, true, out);
    if (out->kind != MCP_OUTCOME_ROWS)
        return 0;
    json_t *rows = json_object_get(out->body, "rows");
    if (json_array_size(rows) == 0) {
        mcp_outcome_clear(out);
        out->kind = MCP_OUTCOME_ERROR;
        snprintf(out->sqlstate, sizeof out->sqlstate, "42P01");
        if (!schema)
            schema = "";
        mcp_textf(out->message, sizeof out->message,
                  "no table, view or materialized view named '%.*s'%s%.*s%s is visible; "
                  "list_tables shows what there is", mcp_utf8_prefix(table, 200), table,
                  schema[0] ? " in schema '" : "", mcp_utf8_prefix(schema, 200), schema,
                  schema[0] ? "'" : "");
        return 0;
    }
    json_t *first = json_array_get(rows, 0);
    json_t *body = json_pack("{s:O, s:O, s:O, s:O*, s:O*}", "schema", json_object_get(first, "schema"),
                             "table", json_object_get(first, "table"), "columns", rows, "truncated",
                             json_object_get(out->body, "truncated"), "note", json_object_get(out->body, "note"));
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        json_object_del(row, "schema");
        json_object_del(row, "table");
    }
    json_decref(out->body);
    out->body = body;
    if (!body) {
        out->kind = MCP_OUTCOME_ERROR;
        snprintf(out->message, sizeof out->message, "out of memory");
    }
    return 0;
}
