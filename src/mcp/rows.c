/* rows.c — result rows as JSON for an agent: one object per row keyed by
 * column name, values typed where that is safe, and the row/byte limits with
 * a note saying when a result was cut short. */
#include "mcp_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Type OIDs from pg_type.h (stable across PostgreSQL versions). */
enum {
    OID_BOOL = 16, OID_INT8 = 20, OID_INT2 = 21, OID_INT4 = 23, OID_OID = 26,
    OID_JSON = 114, OID_FLOAT4 = 700, OID_FLOAT8 = 701, OID_JSONB = 3802,
};

static json_t *text_json(const char *text, size_t len)
{
    json_t *s = json_stringn(text, len);
    if (s)
        return s;
    /* Not valid UTF-8 (a non-UTF8 server encoding reached us): keep the
     * valid prefix and say the rest was replaced rather than fail the row. */
    char *copy = malloc(len * 3 + 1);
    if (!copy)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x80 && c != 0) {
            copy[o++] = (char)c;
        } else {
            memcpy(copy + o, "\xEF\xBF\xBD", 3); /* U+FFFD */
            o += 3;
        }
    }
    s = json_stringn(copy, o);
    free(copy);
    return s;
}

json_t *mcp_value_json(unsigned int type_oid, const char *text, size_t len, bool is_null)
{
    if (is_null)
        return json_null();
    char num[64];
    switch (type_oid) {
    case OID_BOOL:
        if (len == 1 && (text[0] == 't' || text[0] == 'f'))
            return json_boolean(text[0] == 't');
        break;
    case OID_INT2: case OID_INT4: case OID_INT8: case OID_OID:
        if (len > 0 && len < sizeof num) {
            memcpy(num, text, len);
            num[len] = '\0';
            char *end;
            errno = 0;
            long long v = strtoll(num, &end, 10);
            if (errno == 0 && *end == '\0' && end != num)
                return json_integer(v);
        }
        break;
    case OID_FLOAT4: case OID_FLOAT8:
        if (len > 0 && len < sizeof num) {
            memcpy(num, text, len);
            num[len] = '\0';
            char *end;
            errno = 0;
            double v = strtod(num, &end);
            if (errno == 0 && *end == '\0' && end != num && isfinite(v))
                return json_real(v);
        }
        break;
    case OID_JSON: case OID_JSONB: {
        json_t *j = json_loadb(text, len, JSON_DECODE_ANY, NULL);
        if (j)
            return j;
        break;
    }
    default:
        break;
    }
    /* numeric stays a string: JSON numbers would lose its precision. */
    return text_json(text, len);
}

void mcp_rows_init(struct mcp_rows *r, long max_rows, size_t max_bytes)
{
    memset(r, 0, sizeof *r);
    r->max_rows = max_rows;
    r->max_bytes = max_bytes;
}

void mcp_rows_free(struct mcp_rows *r)
{
    json_decref(r->columns);
    json_decref(r->rows);
    r->columns = r->rows = NULL;
}

int mcp_rows_set_columns(struct mcp_rows *r, const PGresult *res)
{
    if (r->columns)
        return 0;
    r->columns = json_array();
    r->rows = json_array();
    if (!r->columns || !r->rows)
        return -1;
    /* The names count against max_bytes as rows do ("name", at the least):
     * a list that does not fit is cut, and no row follows. */
    for (int c = 0; c < PQnfields(res); c++) {
        size_t len = strlen(PQfname(res, c));
        if (r->bytes + len + 3 > r->max_bytes) {
            r->truncated = r->columns_cut = true;
            r->truncated_by = "max_bytes";
            break;
        }
        r->bytes += len + 3;
        if (json_array_append_new(r->columns, text_json(PQfname(res, c), len)) < 0)
            return -1;
    }
    return 0;
}

/* The key for column c: its name, or name_N when an earlier column of the
 * row already used that name ("select 1 as a, 2 as a"). */
static void column_key(const PGresult *res, json_t *row, int c, char *key, size_t keylen)
{
    const char *name = PQfname(res, c);
    snprintf(key, keylen, "%s", name);
    for (int n = 2; json_object_get(row, key); n++)
        snprintf(key, keylen, "%s_%d", name, n);
}

int mcp_rows_add(struct mcp_rows *r, const PGresult *res, int i)
{
    if (r->truncated)
        return 0;
    if (r->count >= r->max_rows) {
        r->truncated = true;
        r->truncated_by = "max_rows";
        return 0;
    }
    /* What the row's JSON takes at the least, from the lengths libpq has:
     * a row that cannot fit is refused before any JSON of it is built (one
     * value may be hundreds of megabytes). Strings take their length or
     * more; compact JSON of a jsonb value at least half its text (it drops
     * the spaces jsonb prints), of a json value (kept as written: its own
     * blanks, \uXXXX escapes) a sixth; a number or boolean one byte. */
    size_t least = 3; /* {}, and the separator or newline */
    for (int c = 0; c < PQnfields(res); c++) {
        Oid type = PQftype(res, c);
        size_t len = PQgetisnull(res, i, c) ? 4 : (size_t)PQgetlength(res, i, c);
        if (type == OID_JSONB)
            len /= 2;
        else if (type == OID_JSON)
            len /= 6;
        else if (type == OID_BOOL || type == OID_INT2 || type == OID_INT4 || type == OID_INT8 ||
                 type == OID_OID || type == OID_FLOAT4 || type == OID_FLOAT8)
            len = 1;
        least += strlen(PQfname(res, c)) + 3 + len; /* "name": */
    }
    if (least > r->max_bytes || r->bytes + least > r->max_bytes) {
        r->truncated = true;
        r->truncated_by = "max_bytes";
        return 0;
    }
    json_t *row = json_object();
    if (!row)
        return -1;
    for (int c = 0; c < PQnfields(res); c++) {
        char key[256];
        column_key(res, row, c, key, sizeof key);
        json_t *v = mcp_value_json(PQftype(res, c), PQgetvalue(res, i, c),
                                   (size_t)PQgetlength(res, i, c), PQgetisnull(res, i, c));
        if (!v || json_object_set_new(row, key, v) < 0) {
            json_decref(row);
            return -1;
        }
    }
    char *text = json_dumps(row, JSON_COMPACT);
    size_t size = text ? strlen(text) + 1 : 0;
    free(text);
    if (size == 0 || r->bytes + size > r->max_bytes) {
        json_decref(row);
        if (size == 0)
            return -1;
        r->truncated = true;
        r->truncated_by = "max_bytes";
        return 0;
    }
    r->bytes += size;
    r->count++;
    if (json_array_append_new(r->rows, row) < 0)
        return -1;
    return 1;
}

json_t *mcp_rows_finish(struct mcp_rows *r, const char *command)
{
    json_t *out = json_object();
    if (!out)
        return NULL;
    json_object_set_new(out, "columns", r->columns ? r->columns : json_array());
    json_object_set_new(out, "rows", r->rows ? r->rows : json_array());
    r->columns = r->rows = NULL;
    json_object_set_new(out, "row_count", json_integer(r->count));
    if (command && *command)
        json_object_set_new(out, "command", json_string(command));
    json_object_set_new(out, "truncated", json_boolean(r->truncated));
    if (r->truncated) {
        char note[256];
        if (strcmp(r->truncated_by, "max_rows") == 0)
            snprintf(note, sizeof note,
                     "result truncated: only the first %ld rows are shown (the row limit is %ld); "
                     "narrow the query (WHERE, LIMIT, fewer columns) to see the rest",
                     r->count, r->max_rows);
        else if (r->columns_cut)
            snprintf(note, sizeof note,
                     "result truncated: the column names alone are over the result limit of %zu "
                     "bytes (only the first %zu are shown, and no rows); select fewer columns",
                     r->max_bytes, json_array_size(r->columns ? r->columns : json_object_get(out, "columns")));
        else
            snprintf(note, sizeof note,
                     "result truncated: only the first %ld rows are shown (the result limit is "
                     "%zu bytes); narrow the query (WHERE, LIMIT, fewer columns) to see the rest",
                     r->count, r->max_bytes);
        json_object_set_new(out, "note", json_string(note));
    }
    return out;
}

void mcp_outcome_clear(struct mcp_outcome_info *o)
{
    json_decref(o->body);
    memset(o, 0, sizeof *o);
}
