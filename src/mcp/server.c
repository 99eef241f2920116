/* server.c — the MCP server proper: JSON-RPC 2.0 messages, one per line on
 * stdin/stdout; initialize with version negotiation, ping, tools/list and
 * tools/call; every malformed message answered with the right error code. */
#include "mcp_internal.h"
#include "hoopctl/log.h"
#include "hoopctl/version.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct mcp_server {
    struct mcp_db *db;
    bool initialized;
    char protocol[32];
};

static const char *const supported_versions[] = {"2025-06-18", "2025-03-26", "2024-11-05", NULL};

struct mcp_server *mcp_server_new(const struct mcp_config *cfg)
{
    struct mcp_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return NULL;
    srv->db = mcp_db_new(cfg);
    if (!srv->db) {
        free(srv);
        return NULL;
    }
    return srv;
}

void mcp_server_free(struct mcp_server *srv)
{
    if (!srv)
        return;
    mcp_db_free(srv->db);
    free(srv);
}

static char *dump_message(json_t *msg)
{
    char *text = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    return text;
}

static char *error_message(json_t *id, int code, const char *message)
{
    return dump_message(json_pack("{s:s, s:O, s:{s:i, s:s}}", "jsonrpc", "2.0", "id",
                                  id ? id : json_null(), "error", "code", code, "message", message));
}

/* {"jsonrpc":"2.0","id":id,"error":{...}}; id may be NULL (-> null). A
 * request with an id is always answered: a message that cannot be encoded
 * (not UTF-8, or no memory) gives way to a fixed one. */
static char *rpc_error(json_t *id, int code, const char *message)
{
    char *text = error_message(id, code, message);
    if (!text)
        text = error_message(id, MCP_RPC_INTERNAL_ERROR, "internal error: the error could not be encoded");
    if (text)
        return text;
    char *idtext = id ? json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    const char *fmt = "{\"jsonrpc\":\"2.0\",\"id\":%s,\"error\":{\"code\":-32603,"
                      "\"message\":\"internal error: out of memory\"}}";
    size_t n = strlen(fmt) + (idtext ? strlen(idtext) : 4) + 1;
    text = malloc(n);
    if (text)
        snprintf(text, n, fmt, idtext ? idtext : "null");
    free(idtext);
    return text;
}

static char *rpc_result(json_t *id, json_t *result)
{
    if (!result)
        return rpc_error(id, MCP_RPC_INTERNAL_ERROR, "internal error: out of memory");
    char *text = dump_message(json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id, "result", result));
    return text ? text : rpc_error(id, MCP_RPC_INTERNAL_ERROR, "internal error: out of memory");
}

static char *handle_initialize(struct mcp_server *srv, json_t *id, json_t *params)
{
    json_t *v = json_object_get(params, "protocolVersion");
    if (!json_is_string(v))
        return rpc_error(id, MCP_RPC_INVALID_PARAMS, "initialize needs params.protocolVersion (a string)");
    const char *asked = json_string_value(v);
    const char *answer = MCP_PROTOCOL_LATEST;
    for (int i = 0; supported_versions[i]; i++)
        if (strcmp(asked, supported_versions[i]) == 0)
            answer = supported_versions[i];
    snprintf(srv->protocol, sizeof srv->protocol, "%s", answer);
    json_t *client = json_object_get(params, "clientInfo");
    const char *cname = json_string_value(json_object_get(client, "name"));
    if (!cname)
        cname = "?";
    log_info("mcp", "initialize from %.*s, protocol %s (asked %.*s)", mcp_utf8_prefix(cname, 100), cname,
             answer, mcp_utf8_prefix(asked, 40), asked);
    const struct mcp_config *cfg = mcp_db_config(srv->db);
    const char *instructions = cfg->allow_writes
        ? "PostgreSQL through hoopctl: every statement is checked by policy and audited. "
          "Use list_tables and describe_table to learn the schema, then query. Writes are "
          "allowed where policy allows them. A statement held for review returns a review_id; "
          "poll it with check_review."
        : "PostgreSQL through hoopctl, read-only: every statement is checked by policy and "
          "audited. Use list_tables and describe_table to learn the schema, then query. A "
          "statement held for review returns a review_id; poll it with check_review.";
    return rpc_result(id, json_pack("{s:s, s:{s:{s:b}, s:{s:b, s:b}}, s:{s:s, s:s, s:s}, s:s}",
                                    "protocolVersion", answer,
                                    "capabilities", "tools", "listChanged", 0,
                                    "resources", "listChanged", 0, "subscribe", 0,
                                    "serverInfo", "name", "hoopctl-mcp", "title", "hoopctl (PostgreSQL)",
                                    "version", HOOPCTL_VERSION,
                                    "instructions", instructions));
}

static char *handle_tools_call(struct mcp_server *srv, json_t *id, json_t *params)
{
    json_t *name = json_object_get(params, "name");
    if (!json_is_string(name))
        return rpc_error(id, MCP_RPC_INVALID_PARAMS, "tools/call needs params.name (a string)");
    int code = 0;
    char msg[256] = "";
    log_debug("mcp", "tools/call %.*s", mcp_utf8_prefix(json_string_value(name), 100), json_string_value(name));
    json_t *r = mcp_tools_call(srv->db, json_string_value(name), json_object_get(params, "arguments"),
                               &code, msg, sizeof msg);
    if (!r)
        return rpc_error(id, code ? code : MCP_RPC_INTERNAL_ERROR, msg[0] ? msg : "internal error");
    return rpc_result(id, r);
}

static char *handle_resources(struct mcp_server *srv, const char *method, json_t *id, json_t *params)
{
    int code = 0;
    char msg[MCP_MESSAGE_MAX + 64] = "";
    json_t *r;
    if (strcmp(method, "resources/templates/list") == 0) {
        r = mcp_resource_templates();
    } else if (strcmp(method, "resources/list") == 0) {
        r = mcp_resources_list(srv->db, &code, msg, sizeof msg);
    } else {
        json_t *uri = json_object_get(params, "uri");
        if (!json_is_string(uri))
            return rpc_error(id, MCP_RPC_INVALID_PARAMS, "resources/read needs params.uri (a string)");
        r = mcp_resources_read(srv->db, json_string_value(uri), &code, msg, sizeof msg);
    }
    if (!r)
        return rpc_error(id, code ? code : MCP_RPC_INTERNAL_ERROR, msg[0] ? msg : "internal error");
    return rpc_result(id, r);
}

static char *handle_request(struct mcp_server *srv, const char *method, json_t *id, json_t *params)
{
    if (strcmp(method, "initialize") == 0)
        return handle_initialize(srv, id, params);
    if (strcmp(method, "ping") == 0)
        return rpc_result(id, json_object());
    /* The MCP lifecycle: nothing but ping before initialize has been
     * answered (the initialized notification is not waited for). */
    if (!srv->protocol[0])
        return rpc_error(id, MCP_RPC_NOT_INITIALIZED, "server not initialized: send initialize first");
    if (strcmp(method, "tools/list") == 0)
        return rpc_result(id, mcp_tools_list(mcp_db_config(srv->db)));
    if (strcmp(method, "tools/call") == 0)
        return handle_tools_call(srv, id, params);
    if (strcmp(method, "resources/list") == 0 || strcmp(method, "resources/read") == 0 ||
        strcmp(method, "resources/templates/list") == 0)
        return handle_resources(srv, method, id, params);
    char msg[200];
    snprintf(msg, sizeof msg, "method not found: %.*s", mcp_utf8_prefix(method, 100), method);
    return rpc_error(id, MCP_RPC_METHOD_NOT_FOUND, msg);
}

static void handle_notification(struct mcp_server *srv, const char *method)
{
    if (strcmp(method, "notifications/initialized") == 0)
        srv->initialized = true;
    else
        log_debug("mcp", "ignoring notification %.*s", mcp_utf8_prefix(method, 100), method);
}

/* The end of the JSON string that starts at s[i] (a '"'): the index after
 * its closing quote, or n. */
static size_t skip_string(const char *s, size_t i, size_t n)
{
    for (i++; i < n; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return n;
}

/* The "id" of a message that did not parse (a number out of range
 * elsewhere, or a line over MCP_MAX_LINE of which this is the start): a
 * string or integer value of a top-level "id" key, found by a scan that
 * skips strings and nested values. NULL when there is none to be had (or
 * two). */
static json_t *scan_id(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && strchr(" \t\r", s[i]))
        i++;
    if (i >= n || s[i] != '{')
        return NULL;
    int depth = 0;
    bool key_next = false;
    json_t *found = NULL;
    for (; i < n; i++) {
        char c = s[i];
        if (c == '{' || c == '[') {
            depth++;
            key_next = depth == 1 && c == '{';
        } else if (c == '}' || c == ']') {
            if (--depth <= 0)
                return found;
        } else if (c == ',' && depth == 1) {
            key_next = true;
        } else if (c == '"') {
            size_t end = skip_string(s, i, n);
            bool is_id = depth == 1 && key_next && end - i == 4 && memcmp(s + i, "\"id\"", 4) == 0;
            key_next = false;
            i = end - 1;
            if (!is_id)
                continue;
            if (found) { /* a second "id": which one is meant is not known */
                json_decref(found);
                return NULL;
            }
            size_t v = end;
            while (v < n && strchr(" \t\r", s[v]))
                v++;
            if (v >= n || s[v] != ':')
                break;
            for (v++; v < n && strchr(" \t\r", s[v]); v++)
                ;
            size_t e = v;
            if (v < n && s[v] == '"')
                e = skip_string(s, v, n);
            else
                while (e < n && (s[e] == '-' || (s[e] >= '0' && s[e] <= '9')))
                    e++;
            if (e < n && (!s[e] || !strchr(" \t\r,}", s[e])))
                return NULL; /* 1e400, 1.5, true, {...}: no id to answer with */
            json_t *id = e > v && e - v <= 4096 ? json_loadb(s + v, e - v, JSON_DECODE_ANY, NULL) : NULL;
            if (!id || (!json_is_string(id) && !json_is_integer(id))) {
                json_decref(id);
                return NULL;
            }
            found = id;
            i = e - 1;
        }
    }
    return found;
}

/* An error answer to a message that did not parse, with its id when one
 * can be found. */
static char *rpc_error_scanned(const char *line, size_t len, int code, const char *text)
{
    json_t *id = scan_id(line, len);
    char *out = rpc_error(id, code, text);
    json_decref(id);
    return out;
}

char *mcp_server_handle_line(struct mcp_server *srv, const char *line, size_t len)
{
    if (len > MCP_MAX_LINE) {
        char msg[128];
        snprintf(msg, sizeof msg, "invalid request: a message may be at most %d bytes", MCP_MAX_LINE);
        return rpc_error_scanned(line, len, MCP_RPC_INVALID_REQUEST, msg);
    }
    json_error_t jerr;
    json_t *msg = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!msg) {
        char text[300];
        snprintf(text, sizeof text, "parse error: %s (column %d)", jerr.text, jerr.column);
        return rpc_error_scanned(line, len, MCP_RPC_PARSE_ERROR, text);
    }
    char *out = NULL;
    if (json_is_array(msg)) {
        out = rpc_error(NULL, MCP_RPC_INVALID_REQUEST, "invalid request: batches are not supported");
        goto done;
    }
    if (!json_is_object(msg)) {
        out = rpc_error(NULL, MCP_RPC_INVALID_REQUEST, "invalid request: a message must be a JSON object");
        goto done;
    }
    json_t *id = json_object_get(msg, "id");
    bool id_ok = id && (json_is_string(id) || json_is_integer(id));
    if (!json_is_string(json_object_get(msg, "jsonrpc")) ||
        strcmp(json_string_value(json_object_get(msg, "jsonrpc")), "2.0") != 0) {
        out = rpc_error(id_ok ? id : NULL, MCP_RPC_INVALID_REQUEST, "invalid request: \"jsonrpc\" must be \"2.0\"");
        goto done;
    }
    if (id && !id_ok) {
        out = rpc_error(NULL, MCP_RPC_INVALID_REQUEST, "invalid request: \"id\" must be a string or an integer");
        goto done;
    }
    json_t *method = json_object_get(msg, "method");
    if (!method) {
        /* A response to a request of ours; we send none, so it is dropped. */
        if (id && (json_object_get(msg, "result") || json_object_get(msg, "error")))
            goto done;
        out = rpc_error(id, MCP_RPC_INVALID_REQUEST, "invalid request: \"method\" is missing");
        goto done;
    }
    if (!json_is_string(method)) {
        out = rpc_error(id, MCP_RPC_INVALID_REQUEST, "invalid request: \"method\" must be a string");
        goto done;
    }
    json_t *params = json_object_get(msg, "params");
    if (params && !json_is_object(params)) {
        if (id)
            out = rpc_error(id, MCP_RPC_INVALID_PARAMS, "invalid params: \"params\" must be an object");
        goto done;
    }
    if (!id)
        handle_notification(srv, json_string_value(method));
    else
        out = handle_request(srv, json_string_value(method), id, params);
done:
    json_decref(msg);
    return out;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int respond(int out_fd, char *text)
{
    if (!text)
        return 0;
    size_t n = strlen(text);
    int rc = write_all(out_fd, text, n);
    if (rc == 0)
        rc = write_all(out_fd, "\n", 1);
    free(text);
    return rc;
}

/* Handle the line, unless it is blank (whitespace between messages). */
static int serve_line(struct mcp_server *srv, int out_fd, char *line, size_t len)
{
    if (len && line[len - 1] == '\r')
        len--;
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
        i++;
    if (i == len)
        return 0;
    return respond(out_fd, mcp_server_handle_line(srv, line, len));
}

/* Wait until in_fd has input (1) or stop_fd is readable (0); -1 on error. */
static int wait_input(int in_fd, int stop_fd)
{
    if (stop_fd < 0)
        return 1;
    for (;;) {
        struct pollfd p[2] = {{.fd = in_fd, .events = POLLIN}, {.fd = stop_fd, .events = POLLIN}};
        int n = poll(p, 2, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (p[1].revents)
            return 0;
        return 1;
    }
}

int mcp_server_run(struct mcp_server *srv, int in_fd, int out_fd, int stop_fd, char *err, size_t errlen)
{
    /* One line at most MCP_MAX_LINE bytes plus its newline; a longer line is
     * answered once and skipped up to its newline. */
    size_t cap = MCP_MAX_LINE + 2, len = 0;
    char *buf = malloc(cap);
    bool skipping = false;
    if (errlen)
        err[0] = '\0';
    if (!buf) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = 0;
    for (;;) {
        int ready = wait_input(in_fd, stop_fd);
        if (ready == 0) {
            log_info("mcp", "stopping (signal)");
            break;
        }
        if (ready < 0) {
            snprintf(err, errlen, "waiting for standard input: %s", strerror(errno));
            rc = -1;
            break;
        }
        ssize_t n = read(in_fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "reading standard input: %s", strerror(errno));
            rc = -1;
            break;
        }
        if (n == 0) {
            if (len && !skipping)
                rc = serve_line(srv, out_fd, buf, len);
            break;
        }
        len += (size_t)n;
        size_t start = 0;
        char *nl;
        while ((nl = memchr(buf + start, '\n', len - start))) {
            size_t linelen = (size_t)(nl - (buf + start));
            if (skipping)
                skipping = false;
            else if (serve_line(srv, out_fd, buf + start, linelen) < 0) {
                rc = -1;
                goto out;
            }
            start += linelen + 1;
        }
        memmove(buf, buf + start, len - start);
        len -= start;
        if (len > MCP_MAX_LINE) {
            if (!skipping && respond(out_fd, mcp_server_handle_line(srv, buf, len)) < 0) {
                rc = -1;
                break;
            }
            skipping = true;
            len = 0;
        }
    }
out:
    if (rc < 0 && !err[0])
        snprintf(err, errlen, "writing standard output: %s", strerror(errno));
    free(buf);
    return rc;
}
