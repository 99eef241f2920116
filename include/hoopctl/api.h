/* api.h — the HTTP client for the server's /api/v1 (libcurl), used by the CLI
 * commands: base URL, bearer token and CA from config or environment, JSON
 * in and out, and a streaming GET for exports. */
#ifndef HOOPCTL_API_H
#define HOOPCTL_API_H

#include <stdio.h>
#include <stdint.h>
#include <jansson.h>

struct api_client {
    char base[512];          /* "https://host:port", no trailing slash */
    char token[8192];        /* bearer token; wiped by api_client_free */
    char cafile[1024];
    long timeout_s;
    enum { API_TOKEN_NONE, API_TOKEN_ENV, API_TOKEN_FILE, API_TOKEN_LOGIN } token_source;
    long last_status;        /* HTTP status of the last api_do (0: no answer) */
};

/* server: URL override or NULL (config server.url / HOOPCTL_SERVER_URL).
 * The token: HOOPCTL_TOKEN, else the file named by server.token_file
 * (HOOPCTL_SERVER_TOKEN_FILE), else the saved login of that server (hoopctl
 * login), refreshed when close to expiry; with no URL given, the login's
 * server. CA: server.ca_file. Returns 0, or a CLI exit code with err: 3 when
 * no token is given and there is no usable login (not logged in, or its
 * refresh failed: err says which and to run hoopctl login), 1 otherwise. */
int api_client_init(struct api_client *c, const char *server, char *err, size_t errlen);
void api_client_free(struct api_client *c);

/* One request. body may be NULL. On a completed exchange returns 0 with
 * *status and *resp (the parsed JSON, or NULL when the body was not JSON);
 * -1 when the server could not be reached (err says why). */
int api_call(struct api_client *c, const char *method, const char *path, json_t *body, long *status,
             json_t **resp, char *err, size_t errlen);
/* GET path and copy the body to out as it arrives (constant memory). */
int api_stream(struct api_client *c, const char *path, FILE *out, long *status, char *err,
               size_t errlen);

struct buf;
/* The values bound to a review's statement (its "params"), one line each
 * after prefix: "$1 = 'text'" (quotes doubled) or "$2 = NULL", escaped for
 * a terminal (buf_append_terminal_safe, one line a value). Appends nothing
 * when the review has none; 0, or -1 when memory runs out. */
int api_review_params_text(const json_t *review, const char *prefix, struct buf *out);

/* The error message of an API error body, or a generic one. */
const char *api_error_message(json_t *resp);
/* HTTP status -> CLI exit code (401 -> 3, 403 -> 4, 5xx -> 5, else 1). */
int api_exit_code(long status);

/* Percent-encode s into out for use in a URL path or query. */
void api_escape(const char *s, char *out, size_t outlen);

#endif

/* A request that must succeed (2xx): returns 0 with *resp, or a CLI exit
 * code with the server's message (or the transport error) in err. A 401
 * says which token was refused and, for a saved login, to log in again. */
int api_do(struct api_client *c, const char *method, const char *path, json_t *body, json_t **resp,
           char *err, size_t errlen);

/* A time for --since/--until: ms since the epoch, an ISO 8601 UTC time
 * ("2026-11-26T10:00:00Z" or "2026-11-26"), or an age ago ("90m", "12h",
 * "7d"). Returns 0 or -1. */
int api_parse_time(const char *s, int64_t now_ms, int64_t *out_ms);

/* Write v as indented JSON with sorted keys and a newline to out (the CLI's
 * -o json form). */
void api_print_json(FILE *out, json_t *v);
