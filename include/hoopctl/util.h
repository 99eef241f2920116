/* util.h — small helpers every module shares: time, randomness, hex, ids,
 * hashing, wiping secrets, the nearest of a list of names, and a growable
 * byte buffer. */
#ifndef HOOPCTL_UTIL_H
#define HOOPCTL_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Milliseconds / microseconds since the epoch (CLOCK_REALTIME) and a
 * monotonic clock in microseconds for durations. */
int64_t util_now_ms(void);
int64_t util_now_us(void);
/* The CLOCK_REALTIME time ms milliseconds from now, as
 * pthread_cond_timedwait takes it. */
struct timespec;
void util_deadline_ms(struct timespec *ts, int64_t ms);
int64_t util_monotonic_us(void);
/* An age such as "90d", "12h", "30m" or "45s" (a whole number above 0 and
 * its unit) in ms, at most 1000 years, so that now minus it cannot wrap.
 * Returns 0, or -1 when s is anything else. */
int util_parse_age_ms(const char *s, int64_t *out);
/* "2026-11-26T15:58:10.123Z" for a time in ms since the epoch; out >= 32. */
void util_iso8601_ms(int64_t ms, char *out, size_t len);

/* Cryptographically strong random bytes (OpenSSL). Returns 0 or -1. */
int util_random_bytes(void *out, size_t len);
/* Lower-case hex of len bytes into out (2*len+1 bytes). */
void util_hex_encode(const void *data, size_t len, char *out);
/* Decode hex; returns the number of bytes or -1 on bad input / overflow. */
long util_hex_decode(const char *hex, void *out, size_t outlen);
/* A random RFC 4122 version-4 UUID, 36 characters plus NUL. */
int util_uuid_v4(char out[37]);
/* An RFC 9562 version-7 UUID: the time in milliseconds first (so ids made
 * later sort later and an index on them grows at its end), then 74 random
 * bits, fresh for each id, so that no id can be foretold from another.
 * Returns 0 or -1 (no randomness). */
int util_uuid_v7(char out[37]);
/* SHA-256 of data as 64 hex characters plus NUL. */
void util_sha256_hex(const void *data, size_t len, char out[65]);
/* url as a key of its server: the scheme and host in lower case, without
 * the scheme's default port (:80, :443) nor trailing '/'. Only spellings of
 * one address meet: localhost and 127.0.0.1 stay apart. */
void util_url_same_server(const char *url, char *out, size_t len);
/* Make path an empty file of mode 0600 when nothing is there, for an SQLite
 * database that holds what others must not read: SQLite would make it 0644
 * under the usual umask, takes an empty file as a new database, and gives
 * its -wal and -shm files the database's mode. O_EXCL: a file (or symlink)
 * that is there already is left as it is, its mode never loosened; any other
 * failure is SQLite's to report. ":memory:" and "file:" URIs are left alone. */
void util_sqlite_create_private(const char *path);
/* Zero memory in a way the compiler may not elide (for secrets). */
void util_secure_zero(void *p, size_t len);
/* curl_global_init with allocator callbacks that zero every block libcurl
 * frees (or moves with realloc): its copies of headers, requests and bodies
 * hold tokens and secrets. Once, first thing in main, before any thread.
 * 0, or -1. */
int util_curl_global_init(void);
/* jansson's blocks zeroed when freed too (a token file's JSON, an answer
 * holding tokens): first thing in main, before any JSON value is made. */
void util_json_wipe_init(void);
struct curl_slist;
/* Zero each string of a header list in place (an Authorization header's
 * token); util_curl_slist_free_wiped then frees the list. Use it for every
 * list that held a secret: curl_slist_append copies the string it is given. */
void util_curl_slist_wipe(struct curl_slist *list);
void util_curl_slist_free_wiped(struct curl_slist *list);
/* The longest connection secret (bytes): what the server keeps (its PUT
 * /api/v1/connections refuses a longer one), and what hoopctl reads from a
 * file, a variable or a prompt, never cut short. */
#define UTIL_SECRET_MAX 4096
/* The first line of f without its end (\n or \r\n), malloc'd, of at most
 * max bytes. NULL at the end of the file or on an error, and with *too_long
 * set when the line is longer (nothing of it kept: the caller says so; a
 * secret is never cut short). The caller wipes and frees the line. */
char *util_read_secret_line(FILE *f, size_t max, bool *too_long);

/* Levenshtein distance of two names (64 when either is over 63 bytes). */
size_t util_edit_distance(const char *a, const char *b);
/* The index of the name nearest to typed among n (a prefix of at least two
 * characters first, then edit distance; the first of equals), n when n is 0.
 * "did you mean ...?" for commands and connections. */
size_t util_nearest_name(const char *typed, const char *const *names, size_t n);
/* Whether name is close enough to typed to offer as what was meant: typed
 * is a prefix of it, or within a third of typed's length of it. */
bool util_name_is_typo(const char *typed, const char *name);

/* A growable byte buffer. Zero-initialise; buf_free releases. Appends return
 * 0, or -1 when memory runs out or the buffer would pass max (0: no cap). */
struct buf {
    uint8_t *data;
    size_t len, cap, max;
    bool secret; /* it holds a secret: growing and buf_free zero what they leave */
};
int buf_reserve(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *data, size_t len);
int buf_append_str(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append text from a source the reader must not trust (recorded SQL and
 * rows, names and reasons from the server) so that it cannot steer a
 * terminal: C0 controls (but newline and tab when keep_lines), DEL and the
 * C1 controls become \xNN or \u00NN; the characters a terminal draws as
 * nothing or that reorder text -- bidirectional overrides, isolates and
 * marks, zero-width spaces and joiners, soft hyphen, word joiner, invisible
 * operators, byte-order mark, line and paragraph separators, tag characters,
 * variation selectors, Hangul fillers and the other default-ignorables (see
 * steers_text in buf.c) -- become \uNNNN (\UNNNNNNNN past U+FFFF); bytes
 * that are not UTF-8 become \xNN; the rest is kept. */
int buf_append_terminal_safe(struct buf *b, const char *s, size_t len, bool keep_lines);
/* Whether len bytes are well-formed UTF-8 (NUL bytes included). */
bool util_utf8_valid(const void *s, size_t len);

/* A bound or peer address on loopback (127/8, ::1, IPv4-mapped 127/8). */
struct sockaddr;
bool util_sockaddr_is_loopback(const struct sockaddr *sa);
/* The same as a new string (malloc'd; NULL when memory runs out). NULL s: "". */
char *util_terminal_safe(const char *s, bool keep_lines);
/* NUL-terminate without counting the NUL in len; returns data as a string. */
const char *buf_cstr(struct buf *b);
void buf_reset(struct buf *b);
void buf_free(struct buf *b);

#endif
