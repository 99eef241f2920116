/* http.c — the identity module's small HTTP client (libcurl): bounded
 * bodies, timeouts, http(s) only, form encoding, base64url and JSON helpers. */
#include "internal.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "hoopctl/config.h"
#include "hoopctl/identity.h"

static size_t http_collect(char *data, size_t size, size_t n, void *userp)
{
    struct buf *b = userp;
    size_t len = size * n;
    return buf_append(b, data, len) == 0 ? len : 0;
}

static _Thread_local const atomic_bool *http_abort;

void identity_http_abort_on(const atomic_bool *flag)
{
    http_abort = flag;
}

bool identity_http_abortable(void)
{
    return http_abort != NULL;
}

bool identity_http_aborted(void)
{
    return http_abort && atomic_load(http_abort);
}

/* libcurl calls this at least once a second during a transfer, idle or not. */
static int http_progress(void *userp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    const atomic_bool *flag = userp;
    return atomic_load(flag) ? 1 : 0;
}

int identity_http(const char *url, const char *form, long *status, struct buf *body,
                  char *err, size_t errlen)
{
    if (identity_check_url(url, err, errlen) < 0)
        return -1;
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char cerr[CURL_ERROR_SIZE] = "";
    body->max = IDENTITY_HTTP_MAX_BODY;
    buf_reset(body);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "hoopctl");
    struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: application/json");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    if (form)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
    if (http_abort) {
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, http_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)http_abort);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    }
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(hdrs);
    if (rc != CURLE_OK) {
        if (rc == CURLE_ABORTED_BY_CALLBACK)
            snprintf(err, errlen, "%s: cancelled", url);
        else if (rc == CURLE_WRITE_ERROR)
            snprintf(err, errlen, "%s: answer larger than %d bytes", url, IDENTITY_HTTP_MAX_BODY);
        else
            snprintf(err, errlen, "%s: %s", url, cerr[0] ? cerr : curl_easy_strerror(rc));
        curl_easy_cleanup(c);
        return -1;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(c);
    return 0;
}

json_t *identity_http_json(const char *url, const char *form, long *status, char *err, size_t errlen)
{
    struct buf body = {0};
    if (identity_http(url, form, status, &body, err, errlen) < 0) {
        buf_free(&body);
        return NULL;
    }
    json_error_t jerr;
    json_t *j = json_loadb((const char *)body.data, body.len, JSON_REJECT_DUPLICATES, &jerr);
    buf_free(&body);
    if (!j || !json_is_object(j)) {
        snprintf(err, errlen, "%s: HTTP %ld, not a JSON object%s%s", url, *status,
                 j ? "" : ": ", j ? "" : config_json_error(&jerr)); /* an answer may carry a token */
        json_decref(j);
        return NULL;
    }
    return j;
}

int identity_form_add(struct buf *form, const char *name, const char *value)
{
    char *enc = curl_easy_escape(NULL, value, 0);
    if (!enc)
        return -1;
    int rc = buf_printf(form, "%s%s=%s", form->len ? "&" : "", name, enc);
    util_secure_zero(enc, strlen(enc));
    curl_free(enc);
    return rc;
}

static int b64url_value(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '-')
        return 62;
    if (ch == '_')
        return 63;
    return -1;
}

long identity_b64url_decode(const char *in, size_t inlen, unsigned char *out, size_t outcap)
{
    if (inlen % 4 == 1)
        return -1;
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < inlen; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= outcap)
                return -1;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) /* non-canonical trailing bits */
        return -1;
    return (long)o;
}

int identity_json_copy(json_t *obj, const char *key, char *dst, size_t dstlen)
{
    json_t *v = json_object_get(obj, key);
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    if (!s || strlen(s) >= dstlen) {
        dst[0] = '\0';
        return -1;
    }
    memcpy(dst, s, strlen(s) + 1);
    return 0;
}
