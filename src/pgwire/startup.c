/* startup.c — startup-phase packets (StartupMessage, SSLRequest, GSSENCRequest,
 * CancelRequest) and the libpq-style key=value connection string. */
#include "hoopctl/pgwire.h"

#include <ctype.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

long pgwire_startup_length(const uint8_t prefix[4], char *err, size_t errlen)
{
    uint32_t len = pgwire_get_u32(prefix);
    if (len < 8 || len > PGWIRE_STARTUP_MAX) {
        snprintf(err, errlen, "invalid startup packet length %u", len);
        return -1;
    }
    return (long)(len - 4);
}

int pgwire_parse_startup(const uint8_t *body, size_t len, struct pgwire_startup *out,
                         char *err, size_t errlen)
{
    memset(out, 0, offsetof(struct pgwire_startup, storage));
    if (len < 4 || len > sizeof out->storage) {
        snprintf(err, errlen, "invalid startup packet length");
        return -1;
    }
    memcpy(out->storage, body, len);
    struct pgwire_reader r;
    pgwire_reader_init(&r, out->storage, len);
    out->code = (uint32_t)pgwire_read_i32(&r);
    if (out->code == PGWIRE_SSL_REQUEST || out->code == PGWIRE_GSSENC_REQUEST) {
        if (len != 4) {
            snprintf(err, errlen, "malformed SSL/GSS request");
            return -1;
        }
        return 0;
    }
    if (out->code == PGWIRE_CANCEL_REQUEST) {
        out->cancel_pid = (uint32_t)pgwire_read_i32(&r);
        out->cancel_secret = (uint32_t)pgwire_read_i32(&r);
        if (!pgwire_reader_done(&r)) {
            snprintf(err, errlen, "malformed cancel request");
            return -1;
        }
        return 0;
    }
    if (out->code >> 16 != 3) {
        snprintf(err, errlen, "unsupported frontend protocol %u.%u: server supports 3.0 to 3.0",
                 out->code >> 16, out->code & 0xffff); /* PostgreSQL's words; the caller knows it by code */
        return -1;
    }
    /* name\0value\0 ... \0 */
    for (;;) {
        const char *name = pgwire_read_cstr(&r);
        if (!name)
            break;
        if (!*name) {
            if (!pgwire_reader_done(&r))
                break;
            return 0;
        }
        const char *value = pgwire_read_cstr(&r);
        if (!value)
            break;
        if (out->nparams == PGWIRE_STARTUP_MAX_PARAMS) {
            snprintf(err, errlen, "too many startup parameters");
            return -1;
        }
        out->params[out->nparams].name = name;
        out->params[out->nparams].value = value;
        out->nparams++;
    }
    snprintf(err, errlen, "malformed startup packet");
    return -1;
}

const char *pgwire_startup_get(const struct pgwire_startup *s, const char *name)
{
    for (int i = 0; i < s->nparams; i++)
        if (strcmp(s->params[i].name, name) == 0)
            return s->params[i].value;
    return NULL;
}

const char *pgwire_sslmode_name(enum pgwire_sslmode m)
{
    static const char *const names[] = {"disable", "prefer", "require", "verify-ca", "verify-full"};
    return (unsigned)m < 5 ? names[m] : "?";
}

const char *pgwire_channel_binding_name(enum pgwire_channel_binding cb)
{
    static const char *const names[] = {"prefer", "disable", "require"};
    return (unsigned)cb < 3 ? names[cb] : "?";
}

/* Copy one value (bare word or 'quoted' with \ escapes) into out. */
static const char *conninfo_value(const char *p, char *out, size_t outlen, char *err, size_t errlen)
{
    size_t n = 0;
    bool quoted = *p == '\'';
    if (quoted)
        p++;
    for (;;) {
        char c = *p;
        if (!c) {
            if (quoted) {
                snprintf(err, errlen, "unterminated quoted string in connection string");
                return NULL;
            }
            break;
        }
        if (quoted && c == '\'') {
            p++;
            break;
        }
        if (!quoted && isspace((unsigned char)c))
            break;
        if (c == '\\' && p[1])
            c = *++p;
        if (n + 1 >= outlen) {
            snprintf(err, errlen, "value too long in connection string");
            return NULL;
        }
        out[n++] = c;
        p++;
    }
    out[n] = 0;
    return p;
}

int pgwire_conninfo_parse(const char *s, struct pgwire_conninfo *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->sslmode = PGWIRE_SSL_PREFER;
    out->connect_timeout = 10;
    const char *p = s;
    char key[32], value[1024];
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        size_t k = 0;
        while (*p && *p != '=' && !isspace((unsigned char)*p)) {
            if (k + 1 >= sizeof key) {
                snprintf(err, errlen, "connection string key too long");
                return -1;
            }
            key[k++] = *p++;
        }
        key[k] = 0;
        while (isspace((unsigned char)*p))
            p++;
        if (*p != '=') {
            snprintf(err, errlen, "missing \"=\" after \"%s\" in connection string", key);
            return -1;
        }
        p++;
        while (isspace((unsigned char)*p))
            p++;
        p = conninfo_value(p, value, sizeof value, err, errlen);
        if (!p)
            return -1;
        char *dst = NULL;
        size_t dstlen = 0;
        if (strcmp(key, "host") == 0 || strcmp(key, "hostaddr") == 0)
            dst = out->host, dstlen = sizeof out->host;
        else if (strcmp(key, "port") == 0)
            dst = out->port, dstlen = sizeof out->port;
        else if (strcmp(key, "dbname") == 0)
            dst = out->dbname, dstlen = sizeof out->dbname;
        else if (strcmp(key, "user") == 0)
            dst = out->user, dstlen = sizeof out->user;
        else if (strcmp(key, "sslrootcert") == 0)
            dst = out->sslrootcert, dstlen = sizeof out->sslrootcert;
        else if (strcmp(key, "password") == 0) {
            snprintf(err, errlen, "a password does not belong in the connection string; "
                                  "use --upstream-password-file or HOOPCTL_UPSTREAM_PASSWORD");
            return -1;
        } else if (strcmp(key, "sslmode") == 0) {
            int m = -1;
            for (int i = 0; i < 5; i++)
                if (strcmp(value, pgwire_sslmode_name((enum pgwire_sslmode)i)) == 0)
                    m = i;
            if (m < 0) {
                snprintf(err, errlen, "invalid sslmode \"%s\": use disable, prefer, require, "
                                      "verify-ca or verify-full", value);
                return -1;
            }
            out->sslmode = (enum pgwire_sslmode)m;
            continue;
        } else if (strcmp(key, "channel_binding") == 0) {
            int m = -1;
            for (int i = 0; i < 3; i++)
                if (strcmp(value, pgwire_channel_binding_name((enum pgwire_channel_binding)i)) == 0)
                    m = i;
            if (m < 0) {
                snprintf(err, errlen, "invalid channel_binding \"%s\": use disable, prefer or require", value);
                return -1;
            }
            out->channel_binding = (enum pgwire_channel_binding)m;
            continue;
        } else if (strcmp(key, "connect_timeout") == 0) {
            char *end;
            long t = strtol(value, &end, 10);
            if (*end || t < 1 || t > 3600) {
                snprintf(err, errlen, "invalid connect_timeout \"%s\"", value);
                return -1;
            }
            out->connect_timeout = (int)t;
            continue;
        } else {
            snprintf(err, errlen, "unknown connection string key \"%s\"", key);
            return -1;
        }
        if (strlen(value) >= dstlen) {
            snprintf(err, errlen, "value of %s too long", key);
            return -1;
        }
        memcpy(dst, value, strlen(value) + 1);
    }
    if (!out->host[0])
        snprintf(out->host, sizeof out->host, "localhost");
    if (!out->port[0])
        snprintf(out->port, sizeof out->port, "5432");
    char *end;
    long port = strtol(out->port, &end, 10);
    if (*end || port < 1 || port > 65535) {
        snprintf(err, errlen, "invalid port \"%s\"", out->port);
        return -1;
    }
    if (!out->user[0]) {
        snprintf(err, errlen, "the upstream connection string needs user=");
        return -1;
    }
    if (!out->dbname[0])
        snprintf(out->dbname, sizeof out->dbname, "%s", out->user);
    if (out->channel_binding == PGWIRE_CB_REQUIRE && (out->sslmode == PGWIRE_SSL_DISABLE || out->host[0] == '/')) {
        snprintf(err, errlen, "channel_binding=require needs TLS to upstream, which %s never has",
                 out->host[0] == '/' ? "a Unix socket connection" : "sslmode=disable");
        return -1;
    }
    /* Verification without a CA file of its own (or with libpq's
     * sslrootcert=system): OpenSSL's default bundle, as libpq's "system" takes
     * it (SSL_CERT_FILE when set). */
    out->sslrootcert_system = false;
    if (out->sslmode >= PGWIRE_SSL_VERIFY_CA && (!out->sslrootcert[0] || !strcmp(out->sslrootcert, "system"))) {
        const char *file = getenv(X509_get_default_cert_file_env());
        if (!file || !*file)
            file = X509_get_default_cert_file();
        if (strlen(file) >= sizeof out->sslrootcert) {
            snprintf(err, errlen, "the system trust store's path is too long");
            return -1;
        }
        snprintf(out->sslrootcert, sizeof out->sslrootcert, "%s", file);
        out->sslrootcert_system = true;
    }
    return 0;
}

bool pgwire_encoding_hides_ascii(const char *name)
{
    /* PostgreSQL's spelling rule: case and anything but letters and digits
     * do not count ("Shift_JIS" is "shiftjis"). Its names for these
     * encodings, and the Windows code pages' cp names besides. */
    static const char *const names[] = {
        "sjis",   "mskanji", "shiftjis", "win932", "windows932", "cp932",   "shiftjis2004",
        "big5",   "win950",  "windows950", "cp950", "gbk",       "win936",  "windows936",
        "cp936",  "uhc",     "win949",   "windows949", "cp949",  "gb18030", "johab",
    };
    char clean[32];
    size_t n = 0;
    for (; *name; name++) {
        if (!isalnum((unsigned char)*name))
            continue;
        if (n + 1 >= sizeof clean)
            return false; /* longer than any of them */
        clean[n++] = (char)tolower((unsigned char)*name);
    }
    clean[n] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(clean, names[i]) == 0)
            return true;
    return false;
}
