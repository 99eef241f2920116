/* test_mcp.c — the MCP server's logic without a database: JSON-RPC framing
 * and error codes, initialize's version negotiation, the tool list, argument
 * checks, the line reader's size cap, typed values, row/byte limits with
 * their note, and the parsers of durations, sizes and hold notices. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hoopctl/mcp.h"
#include "../../src/mcp/mcp_internal.h"

static struct mcp_server *new_uninitialized_server(bool allow_writes)
{
    /* A DSN that is never dialled by these tests (no tool that needs it runs). */
    struct mcp_config cfg = {.conninfo = "host=127.0.0.1 port=1 dbname=none",
                             .allow_writes = allow_writes, .max_rows = 10, .max_bytes = 1000};
    struct mcp_server *s = mcp_server_new(&cfg);
    assert_non_null(s);
    return s;
}

static const char init_line[] = "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":"
                                "{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{},"
                                "\"clientInfo\":{\"name\":\"unit\",\"version\":\"1\"}}}";

/* Send initialize, as a client must first. */
static void initialize(struct mcp_server *s)
{
    char *out = mcp_server_handle_line(s, init_line, strlen(init_line));
    assert_non_null(out);
    assert_non_null(strstr(out, "\"result\""));
    free(out);
}

/* A server a client has initialized. */
static struct mcp_server *new_server(bool allow_writes)
{
    struct mcp_server *s = new_uninitialized_server(allow_writes);
    initialize(s);
    return s;
}

/* Send one line; parse the answer (NULL when none). */
static json_t *rpc(struct mcp_server *s, const char *line)
{
    char *out = mcp_server_handle_line(s, line, strlen(line));
    if (!out)
        return NULL;
    assert_null(strchr(out, '\n'));
    json_t *j = json_loads(out, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "jsonrpc")), "2.0");
    free(out);
    return j;
}

static int error_code(json_t *j);

/* The MCP lifecycle: before initialize is answered only initialize and ping
 * are; every other request is an error (-32000, not run), notifications are
 * ignored; after it everything is served. */
static void requests_before_initialize_are_refused(void **state)
{
    (void)state;
    struct mcp_server *s = new_uninitialized_server(false);
    static const char *const early[] = {
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"query\","
        "\"arguments\":{\"sql\":\"select 1\"}}}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/list\"}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{\"uri\":\"hoopctl://tables/a/b\"}}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/templates/list\"}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"no/such\"}",
    };
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < sizeof early / sizeof early[0]; i++) {
            json_t *j = rpc(s, early[i]);
            assert_non_null(j);
            if (error_code(j) != MCP_RPC_NOT_INITIALIZED)
                fail_msg("%s before initialize: code %d", early[i], error_code(j));
            assert_int_equal(json_integer_value(json_object_get(j, "id")), 1);
            assert_non_null(strstr(json_string_value(json_object_get(json_object_get(j, "error"), "message")),
                                   "send initialize first"));
            json_decref(j);
        }
        json_t *j = rpc(s, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}");
        assert_true(json_is_object(json_object_get(j, "result")));
        json_decref(j);
        /* the notification alone does not initialize; a failed initialize neither */
        assert_null(rpc(s, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}"));
        j = rpc(s, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"initialize\",\"params\":{}}");
        assert_int_equal(error_code(j), MCP_RPC_INVALID_PARAMS);
        json_decref(j);
    }
    initialize(s);
    json_t *j = rpc(s, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/list\"}");
    assert_int_equal(json_array_size(json_object_get(json_object_get(j, "result"), "tools")), 4);
    json_decref(j);
    mcp_server_free(s);
}

static int error_code(json_t *j)
{
    json_t *e = json_object_get(j, "error");
    assert_non_null(e);
    return (int)json_integer_value(json_object_get(e, "code"));
}

static void malformed_messages_get_the_right_errors(void **state)
{
    (void)state;
    struct mcp_server *s = new_server(false);
    static const struct { const char *line; int code; bool null_id; } cases[] = {
        {"{not json", MCP_RPC_PARSE_ERROR, true},
        /* A message that does not parse is answered with its top-level id
         * when a scan finds one (and only one, a string or an integer). */
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"", MCP_RPC_PARSE_ERROR, false},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"query\",\"arguments\":{\"sql\":\"select $1\",\"params\":[1e400]}}}", MCP_RPC_PARSE_ERROR, false},
        {"{\"params\":{\"id\":2,\"x\":[\"}\\\"\",{\"id\":3}]},\"jsonrpc\":\"2.0\", \"id\" : 1 ,\"method\":\"ping\",\"y\":1e400}", MCP_RPC_PARSE_ERROR, false},
        {"{\"jsonrpc\":\"2.0\",\"id\":1e400,\"method\":\"ping\"}", MCP_RPC_PARSE_ERROR, true},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":1,\"y\":1e400}", MCP_RPC_PARSE_ERROR, true},
        {"{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"x\":1e400}", MCP_RPC_PARSE_ERROR, true},
        {"\"just a string\"", MCP_RPC_INVALID_REQUEST, true},
        {"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]", MCP_RPC_INVALID_REQUEST, true},
        {"{\"id\":1,\"method\":\"ping\"}", MCP_RPC_INVALID_REQUEST, false},
        {"{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}", MCP_RPC_INVALID_REQUEST, false},
        {"{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"ping\"}", MCP_RPC_INVALID_REQUEST, true},
        {"{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"ping\"}", MCP_RPC_INVALID_REQUEST, true},
        {"{\"jsonrpc\":\"2.0\",\"id\":1}", MCP_RPC_INVALID_REQUEST, false},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":7}", MCP_RPC_INVALID_REQUEST, false},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"no/such\"}", MCP_RPC_METHOD_NOT_FOUND, false},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":[1]}", MCP_RPC_INVALID_PARAMS, false},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{}}", MCP_RPC_INVALID_PARAMS, false},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{}}", MCP_RPC_INVALID_PARAMS, false},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"drop_db\"}}", MCP_RPC_INVALID_PARAMS, false},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"query\",\"arguments\":{}}}", MCP_RPC_INVALID_PARAMS, false},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"query\",\"arguments\":{\"sql\":5}}}", MCP_RPC_INVALID_PARAMS, false},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"query\",\"arguments\":{\"sql\":\"select 1\",\"params\":[{}]}}}", MCP_RPC_INVALID_PARAMS, false},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"query\",\"arguments\":\"select 1\"}}", MCP_RPC_INVALID_PARAMS, false},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"describe_table\",\"arguments\":{\"table\":\"\"}}}", MCP_RPC_INVALID_PARAMS, false},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"check_review\",\"arguments\":{\"review_id\":\"r\",\"wait_seconds\":600}}}", MCP_RPC_INVALID_PARAMS, false},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"method\":\"ping\"}", MCP_RPC_PARSE_ERROR, true},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{}}", MCP_RPC_INVALID_PARAMS, false},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{\"uri\":\"file:///etc/passwd\"}}", -32002, false},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{\"uri\":\"hoopctl://tables/a%zz/b\"}}", -32002, false},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{\"uri\":\"hoopctl://tables/a/b/c\"}}", -32002, false},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{\"uri\":\"hoopctl://tables/a%00/b\"}}", -32002, false},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{\"uri\":\"hoopctl://tables//b\"}}", -32002, false},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"prompts/list\"}", MCP_RPC_METHOD_NOT_FOUND, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *j = rpc(s, cases[i].line);
        assert_non_null(j);
        if (error_code(j) != cases[i].code)
            fail_msg("case %zu (%s): code %d, want %d", i, cases[i].line, error_code(j), cases[i].code);
        json_t *id = json_object_get(j, "id");
        assert_non_null(id);
        if (cases[i].null_id)
            assert_true(json_is_null(id));
        else
            assert_int_equal(json_integer_value(id), 1);
        json_decref(j);
    }
    mcp_server_free(s);
}

static void notifications_and_responses_get_no_answer(void **state)
{
    (void)state;
    struct mcp_server *s = new_server(false);
    assert_null(rpc(s, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}"));
    assert_null(rpc(s, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{\"requestId\":3}}"));
    assert_null(rpc(s, "{\"jsonrpc\":\"2.0\",\"method\":\"no/such/notification\"}"));
    assert_null(rpc(s, "{\"jsonrpc\":\"2.0\",\"id\":9,\"result\":{}}"));
    json_t *j = rpc(s, "{\"jsonrpc\":\"2.0\",\"id\":\"abc\",\"method\":\"ping\"}");
    assert_string_equal(json_string_value(json_object_get(j, "id")), "abc");
    assert_true(json_is_object(json_object_get(j, "result")));
    json_decref(j);
    mcp_server_free(s);
}

static const char *negotiate(struct mcp_server *s, const char *version, char *out, size_t outlen)
{
    char line[300];
    snprintf(line, sizeof line,
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"%s\","
             "\"capabilities\":{},\"clientInfo\":{\"name\":\"unit\",\"version\":\"1\"}}}", version);
    json_t *j = rpc(s, line);
    json_t *r = json_object_get(j, "result");
    assert_non_null(r);
    assert_true(json_is_object(json_object_get(json_object_get(r, "capabilities"), "tools")));
    assert_true(json_is_object(json_object_get(json_object_get(r, "capabilities"), "resources")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "serverInfo"), "name")), "hoopctl-mcp");
    snprintf(out, outlen, "%s", json_string_value(json_object_get(r, "protocolVersion")));
    json_decref(j);
    return out;
}

static void initialize_negotiates_the_version(void **state)
{
    (void)state;
    struct mcp_server *s = new_server(false);
    char v[32];
    assert_string_equal(negotiate(s, "2024-11-05", v, sizeof v), "2024-11-05");
    assert_string_equal(negotiate(s, "2025-03-26", v, sizeof v), "2025-03-26");
    assert_string_equal(negotiate(s, "2025-06-18", v, sizeof v), "2025-06-18");
    assert_string_equal(negotiate(s, "2099-01-01", v, sizeof v), MCP_PROTOCOL_LATEST);
    mcp_server_free(s);
}

static json_t *find_tool(json_t *tools, const char *name)
{
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
        if (strcmp(json_string_value(json_object_get(t, "name")), name) == 0)
            return t;
    return NULL;
}

static void tools_list_names_the_four_tools(void **state)
{
    (void)state;
    for (int writes = 0; writes <= 1; writes++) {
        struct mcp_server *s = new_server(writes);
        json_t *j = rpc(s, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}");
        json_t *tools = json_object_get(json_object_get(j, "result"), "tools");
        assert_int_equal(json_array_size(tools), 4);
        const char *names[] = {"query", "list_tables", "describe_table", "check_review"};
        for (int i = 0; i < 4; i++) {
            json_t *t = find_tool(tools, names[i]);
            assert_non_null(t);
            assert_string_equal(json_string_value(json_object_get(json_object_get(t, "inputSchema"), "type")), "object");
            assert_true(json_string_length(json_object_get(t, "description")) > 20);
        }
        json_t *q = find_tool(tools, "query");
        json_t *ro = json_object_get(json_object_get(q, "annotations"), "readOnlyHint");
        assert_true(writes ? json_is_false(ro) : json_is_true(ro));
        assert_string_equal(json_string_value(json_array_get(json_object_get(json_object_get(q, "inputSchema"), "required"), 0)), "sql");
        json_decref(j);
        mcp_server_free(s);
    }
}

/* Call a tool; it must answer with a tool error whose text holds want. */
static void expect_tool_error(const char *line, const char *want)
{
    struct mcp_server *s = new_server(false);
    json_t *j = rpc(s, line);
    json_t *r = json_object_get(j, "result");
    assert_true(json_is_true(json_object_get(r, "isError")));
    const char *text = json_string_value(json_object_get(json_array_get(json_object_get(r, "content"), 0), "text"));
    assert_non_null(text);
    if (!strstr(text, want))
        fail_msg("[%s] not in [%s]", want, text);
    json_decref(j);
    mcp_server_free(s);
}

static void check_review_of_an_unknown_id_is_a_tool_error(void **state)
{
    (void)state;
    expect_tool_error("{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":"
                      "\"check_review\",\"arguments\":{\"review_id\":\"nope-1\"}}}", "nope-1");
}

static void an_unreachable_database_is_a_tool_error(void **state)
{
    (void)state;
    expect_tool_error("{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":{\"name\":"
                      "\"query\",\"arguments\":{\"sql\":\"select 1\"}}}", "could not connect");
}

/* A DSN libpq cannot parse is refused without its text (which may hold a
 * password), at start by hoopctl mcp and, as a last guard, by the tools. */
static void a_bad_dsn_is_never_shown(void **state)
{
    (void)state;
    char why[128];
    assert_true(mcp_conninfo_check("host=127.0.0.1 port=1 dbname=none", why, sizeof why));
    assert_true(mcp_conninfo_check("postgresql://u:p%41ss@127.0.0.1:1/app", why, sizeof why));
    assert_true(mcp_conninfo_check("appdb", why, sizeof why)); /* a bare database name */
    assert_false(mcp_conninfo_check("postgresql://app_rw:Sup%zzerSecret@127.0.0.1:1/app", why, sizeof why));
    assert_non_null(strstr(why, "%-escape"));
    assert_false(mcp_conninfo_check("host=x password='Sup3rSecret", why, sizeof why));
    assert_non_null(strstr(why, "closing quote"));

    struct mcp_config cfg = {.conninfo = "postgresql://app_rw:Sup%zzerSecret@127.0.0.1:1/app",
                             .max_rows = 10, .max_bytes = 1000};
    struct mcp_server *s = mcp_server_new(&cfg);
    assert_non_null(s);
    initialize(s);
    const char *line = "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":{\"name\":"
                       "\"query\",\"arguments\":{\"sql\":\"select 1\"}}}";
    char *out = mcp_server_handle_line(s, line, strlen(line));
    assert_non_null(out);
    assert_non_null(strstr(out, "the connection string is not valid"));
    assert_null(strstr(out, "zzerSecret"));
    free(out);
    mcp_server_free(s);
}

/* Feed input through mcp_server_run and return its output lines. */
static char *run_server(const char *input, size_t len)
{
    FILE *in = tmpfile(), *out = tmpfile();
    assert_non_null(in);
    assert_non_null(out);
    assert_int_equal(fwrite(input, 1, len, in), len);
    fflush(in);
    rewind(in);
    struct mcp_server *s = new_server(false);
    char err[128];
    assert_int_equal(mcp_server_run(s, fileno(in), fileno(out), -1, err, sizeof err), 0);
    mcp_server_free(s);
    long n = ftell(out);
    rewind(out);
    char *text = calloc(1, (size_t)n + 1);
    assert_int_equal(fread(text, 1, (size_t)n, out), (size_t)n);
    fclose(in);
    fclose(out);
    return text;
}

/* A readable stop fd ends the server while its input is still open, and
 * wins over input that is waiting too. */
static void a_stop_fd_ends_the_server_with_input_open(void **state)
{
    (void)state;
    int in[2], stop[2];
    FILE *out = tmpfile();
    assert_non_null(out);
    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(stop), 0);
    const char *ping = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n";
    assert_int_equal(write(in[1], ping, strlen(ping)), (ssize_t)strlen(ping));
    struct mcp_server *s = new_server(false);
    char err[128];
    assert_int_equal(write(stop[1], "x", 1), 1);
    assert_int_equal(mcp_server_run(s, in[0], fileno(out), stop[0], err, sizeof err), 0);
    mcp_server_free(s);
    assert_int_equal(ftell(out), 0);
    for (int i = 0; i < 2; i++) {
        close(in[i]);
        close(stop[i]);
    }
    fclose(out);
}

static void the_line_reader_skips_oversized_lines_and_blank_ones(void **state)
{
    (void)state;
    size_t big = MCP_MAX_LINE + 100;
    const char *ping = "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}\r\n";
    size_t len = big + 1 + 2 + strlen(ping) * 2 + 8;
    char *input = malloc(len);
    size_t o = 0;
    o += (size_t)sprintf(input + o, "%s", ping);
    o += (size_t)sprintf(input + o, "\n  \n");
    memset(input + o, 'x', big);
    o += big;
    input[o++] = '\n';
    /* the last message has no newline: end of input ends it */
    o += (size_t)sprintf(input + o, "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"ping\"}");
    char *out = run_server(input, o);
    char *lines[8];
    int n = 0;
    for (char *save, *l = strtok_r(out, "\n", &save); l && n < 8; l = strtok_r(NULL, "\n", &save))
        lines[n++] = l;
    assert_int_equal(n, 3);
    assert_non_null(strstr(lines[0], "\"id\":7,\"result\":{}"));
    assert_non_null(strstr(lines[1], "-32600"));
    assert_non_null(strstr(lines[1], "at most"));
    assert_non_null(strstr(lines[2], "\"id\":8,\"result\":{}"));
    free(out);
    free(input);
}

static void values_are_typed_where_safe(void **state)
{
    (void)state;
    struct { unsigned oid; const char *text; const char *json; } cases[] = {
        {23, "42", "42"}, {20, "-9007199254740993", "-9007199254740993"}, {21, "***", "\"***\""},
        {16, "t", "true"}, {16, "f", "false"}, {701, "1.5", "1.5"}, {701, "NaN", "\"NaN\""},
        {1700, "12345678901234567890.123", "\"12345678901234567890.123\""},
        {3802, "{\"a\": [1, 2]}", "{\"a\":[1,2]}"}, {114, "{bad", "\"{bad\""},
        {25, "line\nbreak \"q\"", "\"line\\nbreak \\\"q\\\"\""}, {25, "caf\xc3\xa9", "\"caf\xc3\xa9\""},
        {25, "bad\xff", "\"bad\xef\xbf\xbd\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *v = mcp_value_json(cases[i].oid, cases[i].text, strlen(cases[i].text), false);
        assert_non_null(v);
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (strcmp(s, cases[i].json) != 0)
            fail_msg("case %zu: %s -> %s, want %s", i, cases[i].text, s, cases[i].json);
        free(s);
        json_decref(v);
    }
    json_t *n = mcp_value_json(23, "", 0, true);
    assert_true(json_is_null(n));
}

static PGresult *make_result(int nrows, const char *value)
{
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    PGresAttDesc attrs[2] = {
        {.name = "id", .typid = 23, .typlen = 4, .atttypmod = -1},
        {.name = "id", .typid = 25, .typlen = -1, .atttypmod = -1},
    };
    assert_int_equal(PQsetResultAttrs(res, 2, attrs), 1);
    for (int i = 0; i < nrows; i++) {
        char num[16];
        snprintf(num, sizeof num, "%d", i);
        assert_int_equal(PQsetvalue(res, i, 0, num, (int)strlen(num)), 1);
        assert_int_equal(PQsetvalue(res, i, 1, (char *)value, (int)strlen(value)), 1);
    }
    return res;
}

static json_t *rows_of(int nrows, const char *value, long max_rows, size_t max_bytes)
{
    PGresult *res = make_result(nrows, value);
    struct mcp_rows r;
    mcp_rows_init(&r, max_rows, max_bytes);
    assert_int_equal(mcp_rows_set_columns(&r, res), 0);
    for (int i = 0; i < PQntuples(res); i++)
        assert_true(mcp_rows_add(&r, res, i) >= 0);
    json_t *body = mcp_rows_finish(&r, "SELECT 5");
    mcp_rows_free(&r);
    PQclear(res);
    return body;
}

static void limits_truncate_with_a_note(void **state)
{
    (void)state;
    /* Within the limits: all rows, no note; a repeated column name gets a suffix. */
    json_t *b = rows_of(5, "v", 10, 10000);
    assert_int_equal(json_integer_value(json_object_get(b, "row_count")), 5);
    assert_true(json_is_false(json_object_get(b, "truncated")));
    assert_null(json_object_get(b, "note"));
    json_t *row = json_array_get(json_object_get(b, "rows"), 4);
    assert_int_equal(json_integer_value(json_object_get(row, "id")), 4);
    assert_string_equal(json_string_value(json_object_get(row, "id_2")), "v");
    json_decref(b);
    /* The row limit. */
    b = rows_of(5, "v", 3, 10000);
    assert_int_equal(json_array_size(json_object_get(b, "rows")), 3);
    assert_true(json_is_true(json_object_get(b, "truncated")));
    assert_non_null(strstr(json_string_value(json_object_get(b, "note")), "row limit is 3"));
    json_decref(b);
    /* The byte limit: the column names count ("id" twice, 5 bytes each),
     * and each row is {"id":N,"id_2":"xxxxxxxxxx"} = 29 bytes + 1. */
    b = rows_of(5, "xxxxxxxxxx", 10, 75);
    assert_int_equal(json_array_size(json_object_get(b, "rows")), 2);
    assert_true(json_is_true(json_object_get(b, "truncated")));
    assert_non_null(strstr(json_string_value(json_object_get(b, "note")), "75 bytes"));
    json_decref(b);
    b = rows_of(5, "xxxxxxxxxx", 10, 65);
    assert_int_equal(json_array_size(json_object_get(b, "rows")), 1);
    json_decref(b);
    /* A column list over the limit is cut, with no rows. */
    b = rows_of(5, "xxxxxxxxxx", 10, 7);
    assert_int_equal(json_array_size(json_object_get(b, "columns")), 1);
    assert_int_equal(json_array_size(json_object_get(b, "rows")), 0);
    assert_true(json_is_true(json_object_get(b, "truncated")));
    assert_non_null(strstr(json_string_value(json_object_get(b, "note")), "only the first 1 are shown"));
    json_decref(b);
    /* A single row larger than the limit leaves none, and says so. */
    b = rows_of(1, "xxxxxxxxxx", 10, 20);
    assert_int_equal(json_array_size(json_object_get(b, "rows")), 0);
    assert_true(json_is_true(json_object_get(b, "truncated")));
    json_decref(b);
}

static void parsers_accept_and_refuse(void **state)
{
    (void)state;
    /* Good input with its value; -1 marks input that must be refused. */
    static const struct { const char *text; long long want; } durations[] = {
        {"30s", 30000}, {"250ms", 250}, {"2m", 120000}, {"7", 7000}, {"0", 0}, {"1h", 3600000},
        {"", -1}, {"-1s", -1}, {"1x", -1}, {"s", -1}, {"1.5s", -1}, {"99999999h", -1},
    }, sizes[] = {
        {"64k", 65536}, {"1M", 1048576}, {"100", 100}, {"2KiB", 2048},
        {"", -1}, {"k", -1}, {"-5", -1}, {"1G", -1}, {"99999999999999999999", -1}, {"5 k", -1},
    };
    for (size_t i = 0; i < sizeof durations / sizeof durations[0]; i++) {
        long ms = -7;
        int rc = mcp_duration_parse_ms(durations[i].text, &ms);
        assert_int_equal(rc, durations[i].want < 0 ? -1 : 0);
        if (rc == 0)
            assert_int_equal(ms, durations[i].want);
    }
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t sz = 7;
        int rc = mcp_size_parse(sizes[i].text, &sz);
        assert_int_equal(rc, sizes[i].want < 0 ? -1 : 0);
        if (rc == 0)
            assert_int_equal(sz, sizes[i].want);
    }

    char id[64];
    assert_true(mcp_hold_notice_parse("hoopctl: statement held for review 7f3a-91c2 (reviewers: dba); waiting up to 10m", id, sizeof id));
    assert_string_equal(id, "7f3a-91c2");
    assert_true(mcp_hold_notice_parse("hoopctl: statement held for review r_1", id, sizeof id));
    assert_string_equal(id, "r_1");
    assert_false(mcp_hold_notice_parse("statement held for review 7f3a", id, sizeof id));
    assert_false(mcp_hold_notice_parse("hoopctl: statement held for review ", id, sizeof id));
    assert_false(mcp_hold_notice_parse("hoopctl: statement held for review a\"b", id, sizeof id));
    assert_false(mcp_hold_notice_parse("hoopctl: statement held for review 0123456789", id, 4));
}

static void text_is_cut_on_utf8_boundaries(void **state)
{
    (void)state;
    /* "aé€😀": 1 + 2 + 3 + 4 bytes */
    const char *s = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
    static const size_t want[] = {0, 1, 1, 3, 3, 3, 6, 6, 6, 6, 10};
    for (size_t n = 0; n <= 10; n++)
        assert_int_equal(mcp_utf8_cut(s, n), want[n]);
    assert_int_equal(mcp_utf8_prefix(s, 100), 10);
    assert_int_equal(mcp_utf8_prefix(s, 2), 1);
    char buf[5];
    mcp_textf(buf, sizeof buf, "%s", s);
    assert_string_equal(buf, "a\xc3\xa9");
    mcp_textf(buf, sizeof buf, "%s", "abc");
    assert_string_equal(buf, "abc");

    /* A method name whose 100-byte cut falls inside a character. */
    struct mcp_server *srv = new_server(false);
    char line[300], name[101];
    memset(name, 'a', 99);
    memcpy(name + 99, "\xc3\xa9", 2);
    snprintf(line, sizeof line, "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"%.*s\"}", 101, name);
    json_t *r = rpc(srv, line);
    assert_non_null(r);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "error"), "code")), -32601);
    json_decref(r);
    mcp_server_free(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(malformed_messages_get_the_right_errors),
        cmocka_unit_test(notifications_and_responses_get_no_answer),
        cmocka_unit_test(requests_before_initialize_are_refused),
        cmocka_unit_test(initialize_negotiates_the_version),
        cmocka_unit_test(tools_list_names_the_four_tools),
        cmocka_unit_test(check_review_of_an_unknown_id_is_a_tool_error),
        cmocka_unit_test(an_unreachable_database_is_a_tool_error),
        cmocka_unit_test(the_line_reader_skips_oversized_lines_and_blank_ones),
        cmocka_unit_test(values_are_typed_where_safe),
        cmocka_unit_test(limits_truncate_with_a_note),
        cmocka_unit_test(parsers_accept_and_refuse),
        cmocka_unit_test(a_stop_fd_ends_the_server_with_input_open),
        cmocka_unit_test(text_is_cut_on_utf8_boundaries),
        cmocka_unit_test(a_bad_dsn_is_never_shown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
