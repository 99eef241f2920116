/* util.c — time, randomness, hex, UUIDs, SHA-256, secret wiping, and the
 * nearest of a list of names (for "did you mean ...?"). */
#include "hoopctl/util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t util_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void util_deadline_ms(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

int util_parse_age_ms(const char *s, int64_t *out)
{
    static const int64_t max_ms = (int64_t)1000 * 366 * 86400000;
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (end == s || n <= 0 || errno || !isdigit((unsigned char)s[0]) || !end[0] || end[1])
        return -1;
    int64_t unit = *end == 'd' ? 86400000 : *end == 'h' ? 3600000 : *end == 'm' ? 60000 : *end == 's' ? 1000 : 0;
    if (!unit || n > max_ms / unit)
        return -1;
    *out = n * unit;
    return 0;
}

int64_t util_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t util_monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void util_iso8601_ms(int64_t ms, char *out, size_t len)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char base[24];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, len, "%s.%03dZ", base, (int)(ms % 1000));
}

int util_random_bytes(void *out, size_t len)
{
    return RAND_bytes(out, (int)len) == 1 ? 0 : -1;
}

void util_hex_encode(const void *data, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * len] = '\0';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long util_hex_decode(const char *hex, void *out, size_t outlen)
{
    size_t n = strlen(hex);
    if (n % 2 != 0 || n / 2 > outlen)
        return -1;
    uint8_t *o = out;
    for (size_t i = 0; i < n; i += 2) {
        int hi = hex_value(hex[i]), lo = hex_value(hex[i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        o[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    return (long)(n / 2);
}

/* 8-4-4-4-12 hex digits (no printf: event ids are made per statement) */
static void uuid_format(const uint8_t b[16], char out[37])
{
    char hex[33];
    util_hex_encode(b, 16, hex);
    for (int i = 0, o = 0; i < 32; i++) {
        if (o == 8 || o == 13 || o == 18 || o == 23)
            out[o++] = '-';
        out[o++] = hex[i];
    }
    out[36] = '\0';
}

int util_uuid_v4(char out[37])
{
    uint8_t b[16];
    if (util_random_bytes(b, sizeof b) < 0)
        return -1;
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    uuid_format(b, out);
    return 0;
}

/* Random bytes for version-7 UUIDs, drawn from OpenSSL a pool at a time:
 * one RAND_bytes call costs microseconds, its bytes almost nothing. Each
 * thread has its own pool, so threads need no lock; the bytes are used once
 * and wiped as they are taken. */
#define UUID_POOL 1024
static _Thread_local struct {
    uint8_t bytes[UUID_POOL];
    size_t used;
} uuid_pool = {.used = UUID_POOL};

int util_uuid_v7(char out[37])
{
    enum { RANDOM = 10 }; /* bytes 6..15; 74 of their bits stay random */
    if (uuid_pool.used + RANDOM > UUID_POOL) {
        if (util_random_bytes(uuid_pool.bytes, UUID_POOL) < 0)
            return -1;
        uuid_pool.used = 0;
    }
    uint8_t b[16];
    uint64_t ms = (uint64_t)util_now_ms();
    for (int i = 0; i < 6; i++)
        b[i] = (uint8_t)(ms >> (40 - 8 * i));
    memcpy(b + 6, uuid_pool.bytes + uuid_pool.used, RANDOM);
    OPENSSL_cleanse(uuid_pool.bytes + uuid_pool.used, RANDOM);
    uuid_pool.used += RANDOM;
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x70);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    uuid_format(b, out);
    return 0;
}

void util_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    util_hex_encode(md, 32, out);
}

void util_secure_zero(void *p, size_t len)
{
    OPENSSL_cleanse(p, len);
}

/* An address on loopback: 127/8, ::1, or 127/8 mapped into IPv6. */
bool util_sockaddr_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family != AF_INET6)
        return false;
    const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
}

size_t util_edit_distance(const char *a, const char *b)
{
    /* Levenshtein with one rolling row; names are short. */
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 64;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = diag + cost;
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* A prefix of a name is the strongest hint ("con" -> "connect"). */
static bool is_prefix(const char *typed, const char *name)
{
    size_t n = strlen(typed);
    return n >= 2 && strncmp(name, typed, n) == 0;
}

size_t util_nearest_name(const char *typed, const char *const *names, size_t n)
{
    size_t best = n, best_d = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        size_t d = is_prefix(typed, names[i]) ? 1 : util_edit_distance(typed, names[i]);
        if (d < best_d) {
            best_d = d;
            best = i;
        }
    }
    return best;
}

bool util_name_is_typo(const char *typed, const char *name)
{
    /* Plausibly a typo: a prefix, or within a third of the length. */
    if (is_prefix(typed, name))
        return true;
    size_t limit = strlen(typed) / 3 + 1;
    if (limit < 2)
        limit = 2;
    return util_edit_distance(typed, name) <= limit;
}

void util_url_same_server(const char *url, char *out, size_t len)
{
    snprintf(out, len, "%s", url);
    char *auth = strstr(out, "://");
    if (!auth)
        return;
    for (char *p = out; p < auth; p++)
        *p = (char)tolower((unsigned char)*p);
    auth += 3;
    size_t alen = strcspn(auth, "/?#");
    char *host = auth;
    for (size_t i = 0; i < alen; i++)
        if (auth[i] == '@')
            host = auth + i + 1; /* user info keeps its case */
    for (char *p = host; p < auth + alen; p++)
        *p = (char)tolower((unsigned char)*p);
    const char *dflt = strncmp(out, "https://", 8) == 0 ? ":443" : strncmp(out, "http://", 7) == 0 ? ":80" : NULL;
    size_t dl = dflt ? strlen(dflt) : 0;
    if (dflt && (size_t)(auth + alen - host) > dl && memcmp(auth + alen - dl, dflt, dl) == 0) {
        memmove(auth + alen - dl, auth + alen, strlen(auth + alen) + 1);
        alen -= dl;
    }
    size_t n = strlen(out), keep = (size_t)(auth - out) + alen;
    while (n > keep && out[n - 1] == '/')
        out[--n] = '\0';
}

char *util_read_secret_line(FILE *f, size_t max, bool *too_long)
{
    *too_long = false;
    if (max > (size_t)INT32_MAX - 3)
        return NULL;
    char *line = malloc(max + 3); /* the line, "\r\n" and its end */
    if (!line)
        return NULL;
    if (!fgets(line, (int)(max + 3), f)) {
        util_secure_zero(line, max + 3);
        free(line);
        return NULL;
    }
    size_t n = strlen(line);
    bool whole = n && line[n - 1] == '\n';
    if (!whole) { /* the buffer is full, or the file ends without a newline */
        int c = fgetc(f);
        if (c != EOF) {
            *too_long = true;
            util_secure_zero(line, max + 3);
            free(line);
            return NULL;
        }
    }
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    if (n > max) {
        *too_long = true;
        util_secure_zero(line, max + 3);
        free(line);
        return NULL;
    }
    return line;
}

void util_sqlite_create_private(const char *path)
{
    if (strcmp(path, ":memory:") == 0 || strncmp(path, "file:", 5) == 0)
        return;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
}
