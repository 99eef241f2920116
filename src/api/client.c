/* client.c — the libcurl client of the server API: one request at a time,
 * JSON bodies, bounded response size, and streaming downloads. */
#include "hoopctl/api.h"
#include "hoopctl/config.h"
#include "hoopctl/identity.h"
#include "hoopctl/util.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#define API_MAX_RESPONSE (64u << 20)

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        s[--n] = '\0';
}

int api_client_init(struct api_client *c, const char *server, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->timeout_s = 330;
    char e2[512];
    json_t *cfg = config_load_client(e2, sizeof e2);
    if (!cfg) {
        snprintf(err, errlen, "%s", e2); /* file:line:column, or file and key: what is wrong */
        return 1;
    }
    const char *env_url = getenv("HOOPCTL_SERVER_URL");
    const char *url = server ? server : env_url && *env_url ? env_url : config_get_string(cfg, "server.url");
    const char *ca = config_get_string(cfg, "server.ca_file");
    const char *tf = config_get_string(cfg, "server.token_file");
    const char *tok = getenv("HOOPCTL_TOKEN");
    struct identity_session *login = NULL;
    int rc = 1;
    c->token_source = tok && *tok ? API_TOKEN_ENV : tf && *tf ? API_TOKEN_FILE : API_TOKEN_NONE;
    /* With no token given, the login of this server (hoopctl login),
     * refreshed when it is about to expire; without one nothing the API
     * serves can be had: say so (not logged in, or the login expired). */
    if (c->token_source == API_TOKEN_NONE) {
        int lrc = identity_session_open(url && *url ? url : NULL, IDENTITY_REFRESH_MARGIN, &login, e2, sizeof e2);
        if (lrc > 0 && (!url || !*url) && strncmp(e2, "not logged in;", 14) == 0) {
            /* Neither a server nor any login (identity_store_load's words). */
            snprintf(err, errlen, "no server URL: run 'hoopctl login --server URL', or set server.url in the "
                                  "config or HOOPCTL_SERVER_URL");
            goto out;
        }
        if (lrc != 0) {
            snprintf(err, errlen, "%s", e2);
            rc = lrc > 0 ? 3 : 1;
            goto out;
        }
        tok = login->tokens.access_token;
        c->token_source = API_TOKEN_LOGIN;
        if ((!url || !*url) && login->login.server[0])
            url = login->login.server;
    }
    if (!url || !*url) {
        snprintf(err, errlen, "no server URL: set server.url in the config or HOOPCTL_SERVER_URL");
        goto out;
    }
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        snprintf(err, errlen, "server URL must start with http:// or https://");
        goto out;
    }
    /* The token, and connection secrets, travel over it: TLS, save on loopback. */
    if (identity_check_url(url, e2, sizeof e2) < 0) {
        snprintf(err, errlen, "server URL %s", e2);
        goto out;
    }
    snprintf(c->base, sizeof c->base, "%s", url);
    size_t bl = strlen(c->base);
    while (bl && c->base[bl - 1] == '/')
        c->base[--bl] = '\0';
    if (ca)
        snprintf(c->cafile, sizeof c->cafile, "%s", ca);
    if (tok && *tok) {
        snprintf(c->token, sizeof c->token, "%s", tok);
    } else if (tf && *tf) {
        FILE *f = fopen(tf, "r");
        if (!f) {
            snprintf(err, errlen, "token file %s: %s", tf, strerror(errno));
            goto out;
        }
        size_t n = fread(c->token, 1, sizeof c->token - 1, f);
        c->token[n] = '\0';
        fclose(f);
        trim(c->token);
    }
    rc = 0;
out:
    identity_session_close(login);
    json_decref(cfg);
    return rc;
}

void api_client_free(struct api_client *c)
{
    util_secure_zero(c->token, sizeof c->token);
}

struct sink {
    struct buf b;
    FILE *out;
};

static size_t api_write(char *p, size_t s, size_t n, void *u)
{
    struct sink *k = u;
    if (k->out)
        return fwrite(p, 1, s * n, k->out);
    return buf_append(&k->b, p, s * n) == 0 ? s * n : 0;
}

static CURL *api_prepare(struct api_client *c, const char *path, struct curl_slist **hdrs)
{
    CURL *h = curl_easy_init();
    if (!h)
        return NULL;
    char url[2048];
    snprintf(url, sizeof url, "%s%s", c->base, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, c->timeout_s);
    if (c->cafile[0])
        curl_easy_setopt(h, CURLOPT_CAINFO, c->cafile);
    *hdrs = curl_slist_append(NULL, "Accept: application/json");
    if (c->token[0]) {
        char *auth = malloc(strlen(c->token) + 32);
        if (auth) {
            sprintf(auth, "Authorization: Bearer %s", c->token);
            *hdrs = curl_slist_append(*hdrs, auth);
            util_secure_zero(auth, strlen(auth));
            free(auth);
        }
    }
    return h;
}

/* On a failed transfer err names the server and curl's reason, whole:
 * callers print it as it is (no second "cannot be reached" around it). */
static int api_perform(const struct api_client *c, CURL *h, struct curl_slist *hdrs, long *status, char *err,
                       size_t errlen)
{
    char ebuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "cannot reach the server %.200s: %s", c->base, ebuf[0] ? ebuf : curl_easy_strerror(rc));
        return -1;
    }
    return 0;
}

/* A 503 with a short Retry-After (the server could not verify the token yet,
 * e.g. it is fetching the issuer's keys: nothing was done) is retried once
 * after that many seconds. */
static int api_call_once(struct api_client *c, const char *method, const char *path, json_t *body,
                         long *status, json_t **resp, long *retry_after, char *err, size_t errlen);

int api_call(struct api_client *c, const char *method, const char *path, json_t *body, long *status,
             json_t **resp, char *err, size_t errlen)
{
    long wait = 0;
    int rc = api_call_once(c, method, path, body, status, resp, &wait, err, errlen);
    if (rc == 0 && *status == 503 && wait >= 1 && wait <= 5) {
        json_decref(*resp);
        sleep((unsigned)wait);
        rc = api_call_once(c, method, path, body, status, resp, &wait, err, errlen);
    }
    return rc;
}

static int api_call_once(struct api_client *c, const char *method, const char *path, json_t *body,
                         long *status, json_t **resp, long *retry_after, char *err, size_t errlen)
{
    *resp = NULL;
    *status = 0;
    *retry_after = 0;
    struct curl_slist *hdrs = NULL;
    CURL *h = api_prepare(c, path, &hdrs);
    if (!h) {
        snprintf(err, errlen, "cannot start libcurl");
        return -1;
    }
    struct sink k = {{.max = API_MAX_RESPONSE}, NULL};
    char *text = NULL;
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        text = json_dumps(body, JSON_COMPACT);
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, text ? text : "");
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, api_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &k);
    int rc = api_perform(c, h, hdrs, status, err, errlen);
    curl_off_t ra = 0;
    if (rc == 0 && curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK)
        *retry_after = (long)ra;
    if (text) {
        util_secure_zero(text, strlen(text));   /* may hold a secret */
        free(text);
    }
    util_curl_slist_free_wiped(hdrs); /* it held the bearer token */
    curl_easy_cleanup(h);
    if (rc == 0 && k.b.len)
        *resp = json_loadb((const char *)k.b.data, k.b.len, 0, NULL);
    if (k.b.data) /* an answer may hold a secret (a connection's credentials) */
        util_secure_zero(k.b.data, k.b.len);
    buf_free(&k.b);
    return rc;
}

int api_stream(struct api_client *c, const char *path, FILE *out, long *status, char *err,
               size_t errlen)
{
    struct curl_slist *hdrs = NULL;
    CURL *h = api_prepare(c, path, &hdrs);
    if (!h) {
        snprintf(err, errlen, "cannot start libcurl");
        return -1;
    }
    struct sink k = {{0}, out};
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, api_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &k);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 0L);
    curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
    int rc = api_perform(c, h, hdrs, status, err, errlen);
    util_curl_slist_free_wiped(hdrs); /* it held the bearer token */
    curl_easy_cleanup(h);
    return rc;
}

const char *api_error_message(json_t *resp)
{
    const char *m = json_string_value(json_object_get(resp, "error"));
    return m ? m : "the server answered with an error";
}

int api_exit_code(long status)
{
    if (status == 401)
        return 3;
    if (status == 403)
        return 4;
    if (status >= 500 || status == 0)
        return 5;
    return 1;
}

void api_escape(const char *s, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t j = 0;
    for (; *s && j + 4 < outlen; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            out[j++] = (char)ch;
        } else {
            out[j++] = '%';
            out[j++] = hex[ch >> 4];
            out[j++] = hex[ch & 15];
        }
    }
    out[j] = '\0';
}

int api_do(struct api_client *c, const char *method, const char *path, json_t *body, json_t **resp,
           char *err, size_t errlen)
{
    long status = 0;
    c->last_status = 0;
    int called = api_call(c, method, path, body, &status, resp, err, errlen);
    c->last_status = status;
    if (called < 0)
        return 5;
    if (status >= 200 && status < 300) {
        if (*resp)
            return 0;
        /* an empty answer, or one that is not JSON: nothing a command can
         * show (nor -o json print); the server is not this API's */
        snprintf(err, errlen, "%s %s: the server's answer is not JSON (HTTP %ld)", method, path, status);
        return 1;
    }
    /* The server's own words: escaped and on one line, for every command
     * that shows err (cli_fail, the TUI's status line, whoami's note). */
    char *said = util_terminal_safe(api_error_message(*resp), false);
    const char *m = said ? said : "the server answered with an error";
    if (status == 401 && c->token_source == API_TOKEN_LOGIN)
        snprintf(err, errlen, "%s (HTTP 401); run 'hoopctl login' again", m);
    else if (status == 401 && c->token_source == API_TOKEN_ENV)
        snprintf(err, errlen, "%s: the server refused the token in HOOPCTL_TOKEN (HTTP 401)", m);
    else if (status == 401 && c->token_source == API_TOKEN_FILE)
        snprintf(err, errlen, "%s: the server refused the token of server.token_file (HTTP 401)", m);
    else
        snprintf(err, errlen, "%s (HTTP %ld)", m, status);
    free(said);
    json_decref(*resp);
    *resp = NULL;
    return api_exit_code(status);
}

int api_parse_time(const char *s, int64_t now_ms, int64_t *out_ms)
{
    char *end;
    long long n = strtoll(s, &end, 10);
    if (end != s && *end == '\0' && n >= 0) {
        *out_ms = n;
        return 0;
    }
    int64_t age;
    if (util_parse_age_ms(s, &age) == 0) {
        *out_ms = now_ms - age;
        return 0;
    }
    struct tm tm = {0};
    const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest) {
        memset(&tm, 0, sizeof tm);
        rest = strptime(s, "%Y-%m-%d", &tm);
    }
    if (!rest || (*rest && strcmp(rest, "Z") != 0))
        return -1;
    *out_ms = (int64_t)timegm(&tm) * 1000;
    return 0;
}

void api_print_json(FILE *out, json_t *v)
{
    json_dumpf(v, out, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    fputc('\n', out);
}

int api_review_params_text(const json_t *review, const char *prefix, struct buf *out)
{
    const json_t *params = json_object_get(review, "params");
    size_t i;
    const json_t *v;
    int rc = 0;
    json_array_foreach(params, i, v) {
        rc |= buf_printf(out, "%s$%zu = ", prefix, i + 1);
        if (!json_is_string(v)) {
            rc |= buf_append_str(out, json_is_null(v) ? "NULL\n" : "?\n");
            continue;
        }
        rc |= buf_append_str(out, "'");
        const char *s = json_string_value(v), *end = s + json_string_length(v);
        while (s < end) { /* a quote as SQL writes it: doubled */
            const char *q = memchr(s, '\'', (size_t)(end - s));
            size_t n = q ? (size_t)(q - s) + 1 : (size_t)(end - s);
            rc |= buf_append_terminal_safe(out, s, n, false);
            if (q)
                rc |= buf_append_str(out, "'");
            s += n;
        }
        rc |= buf_append_str(out, "'\n");
    }
    return rc ? -1 : 0;
}
