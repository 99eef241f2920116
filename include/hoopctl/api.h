/* api.h — the HTTP client for the server's /api/v1 (libcurl), used by the CLI
 * commands: base URL, bearer token and CA from config or environment, JSON
 * in and out, and a streaming GET for exports. */
#ifndef HOOPCTL_API_H
#define HOOPCTL_API_H

#include <stdio.h>
#include <jansson.h>

struct api_client {
    char base[512];          /* "https://host:port", no trailing slash */
    char token[8192];        /* bearer token; wiped by api_client_free */
    char cafile[1024];
    long timeout_s;
};

/* server: URL override or NULL (config server.url / HOOPCTL_SERVER_URL).
 * The token: HOOPCTL_TOKEN, else the file named by server.token_file
 * (HOOPCTL_SERVER_TOKEN_FILE). CA: server.ca_file. Returns 0 or -1 + err. */
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

/* The error message of an API error body, or a generic one. */
const char *api_error_message(json_t *resp);
/* HTTP status -> CLI exit code (401 -> 3, 403 -> 4, 5xx -> 5, else 1). */
int api_exit_code(long status);

/* Percent-encode s into out for use in a URL path or query. */
void api_escape(const char *s, char *out, size_t outlen);

#endif
