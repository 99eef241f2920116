/* resources.c — MCP resources: each visible table's description (its
 * columns as JSON) at hoopctl://tables/<schema>/<table>, listed, read, and
 * offered as a URI template. */
#include "mcp_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESOURCE_PREFIX "hoopctl://tables/"
#define RESOURCE_NOT_FOUND (-32002)

/* Percent-encode a name into out (every byte but unreserved characters). */
static void name_encode(const char *name, struct buf *out)
{
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if (isalnum(*p) || strchr("-._~", *p))
            buf_append(out, p, 1);
        else
            buf_printf(out, "%%%02X", *p);
    }
}

/* Decode one path segment [s, end) into out; -1 on a bad escape or NUL. */
static int segment_decode(const char *s, const char *end, char *out, size_t outlen)
{
    size_t o = 0;
    for (; s < end; s++) {
        int c = (unsigned char)*s;
        if (c == '%') {
            char hex[3] = {0};
            if (end - s < 3 || !isxdigit((unsigned char)s[1]) || !isxdigit((unsigned char)s[2]))
                return -1;
            memcpy(hex, s + 1, 2);
            c = (int)strtol(hex, NULL, 16);
            s += 2;
        }
        if (c == 0 || o + 1 >= outlen)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return o > 0 ? 0 : -1;
}

static char *table_uri(const char *schema, const char *table)
{
    struct buf b = {0};
    buf_append_str(&b, RESOURCE_PREFIX);
    name_encode(schema, &b);
    buf_append_str(&b, "/");
    name_encode(table, &b);
    char *s = strdup(buf_cstr(&b));
    buf_free(&b);
    return s;
}

static void set_error(int *code, char *msg, size_t msglen, int c, const struct mcp_outcome_info *o)
{
    *code = c;
    if (o->kind == MCP_OUTCOME_HELD)
        snprintf(msg, msglen, "the catalog query is held for review %s", o->review_id);
    else
        mcp_textf(msg, msglen, "%s%s%s", o->sqlstate, o->sqlstate[0] ? ": " : "", o->message);
}

json_t *mcp_resources_list(struct mcp_db *db, int *code, char *msg, size_t msglen)
{
    struct mcp_outcome_info o;
    mcp_catalog_list(db, NULL, &o);
    if (o.kind != MCP_OUTCOME_ROWS) {
        set_error(code, msg, msglen, MCP_RPC_INTERNAL_ERROR, &o);
        mcp_outcome_clear(&o);
        return NULL;
    }
    json_t *list = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(o.body, "rows"), i, row) {
        const char *schema = json_string_value(json_object_get(row, "schema"));
        const char *name = json_string_value(json_object_get(row, "name"));
        const char *kind = json_string_value(json_object_get(row, "kind"));
        const char *comment = json_string_value(json_object_get(row, "comment"));
        if (!schema || !name)
            continue;
        char *uri = table_uri(schema, name);
        char title[600], desc[800];
        mcp_textf(title, sizeof title, "%s.%s", schema, name);
        mcp_textf(desc, sizeof desc, "columns of the %s %s.%s%s%s", kind ? kind : "table", schema, name,
                 comment ? ": " : "", comment ? comment : "");
        if (uri)
            json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s}", "uri", uri, "name", title,
                                                  "description", desc, "mimeType", "application/json"));
        free(uri);
    }
    /* A list cut short by the row or byte limit says so (as list_tables does). */
    json_t *note = json_object_get(o.body, "note");
    json_t *res = json_pack("{s:o, s:{s:O*}}", "resources", list, "_meta", "note", note);
    if (res && !note)
        json_object_del(res, "_meta");
    mcp_outcome_clear(&o);
    return res;
}

json_t *mcp_resources_read(struct mcp_db *db, const char *uri, int *code, char *msg, size_t msglen)
{
    char schema[256], table[256];
    size_t plen = strlen(RESOURCE_PREFIX);
    const char *slash = strncmp(uri, RESOURCE_PREFIX, plen) == 0 ? strchr(uri + plen, '/') : NULL;
    if (!slash || strchr(slash + 1, '/') ||
        segment_decode(uri + plen, slash, schema, sizeof schema) < 0 ||
        segment_decode(slash + 1, slash + strlen(slash), table, sizeof table) < 0) {
        *code = RESOURCE_NOT_FOUND;
        snprintf(msg, msglen, "resource not found: %.*s (expected " RESOURCE_PREFIX "<schema>/<table>)",
                 mcp_utf8_prefix(uri, 200), uri);
        return NULL;
    }
    struct mcp_outcome_info o;
    mcp_catalog_describe(db, schema, table, &o);
    if (o.kind != MCP_OUTCOME_ROWS) {
        set_error(code, msg, msglen, strcmp(o.sqlstate, "42P01") == 0 ? RESOURCE_NOT_FOUND
                                                                        : MCP_RPC_INTERNAL_ERROR, &o);
        mcp_outcome_clear(&o);
        return NULL;
    }
    char *text = json_dumps(o.body, JSON_COMPACT);
    mcp_outcome_clear(&o);
    json_t *r = text ? json_pack("{s:[{s:s, s:s, s:s}]}", "contents", "uri", uri, "mimeType",
                                 "application/json", "text", text)
                     : NULL;
    free(text);
    return r;
}

json_t *mcp_resource_templates(void)
{
    return json_pack("{s:[{s:s, s:s, s:s, s:s}]}", "resourceTemplates", "uriTemplate",
                     RESOURCE_PREFIX "{schema}/{table}", "name", "table",
                     "description", "the columns of a table, view or materialized view",
                     "mimeType", "application/json");
}
