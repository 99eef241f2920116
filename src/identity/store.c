/* store.c — the token store: one JSON file per server (or issuer) under
 * <config dir>/tokens, mode 0600, written atomically; the current profile;
 * refresh before expiry under a lock so two processes never spend the same
 * rotating refresh token. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hoopctl/config.h"
#include "hoopctl/identity.h"
#include "hoopctl/log.h"

static int store_dir(char *out, size_t len)
{
    char dir[4096];
    if (config_dir(dir, sizeof dir) < 0)
        return -1;
    int n = snprintf(out, len, "%s/tokens", dir);
    return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

/* A server URL names one login with or without trailing slashes:
 * http://h:8780/ is the login made to http://h:8780. */
static size_t profile_key_len(const char *profile)
{
    size_t n = strlen(profile);
    while (n > 1 && profile[n - 1] == '/' && strstr(profile, "://") && profile + n - 1 > strstr(profile, "://") + 2)
        n--;
    return n;
}

int identity_store_path(const char *profile, char *out, size_t len)
{
    char dir[4096], hash[65];
    if (store_dir(dir, sizeof dir) < 0)
        return -1;
    util_sha256_hex(profile, profile_key_len(profile), hash);
    int n = snprintf(out, len, "%s/%.32s.json", dir, hash);
    return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

static int current_path(char *out, size_t len)
{
    char dir[4096];
    if (store_dir(dir, sizeof dir) < 0)
        return -1;
    int n = snprintf(out, len, "%s/current", dir);
    return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

/* The current profile (the last login's server or issuer) into out: 0; 1
 * when there is none; -1 with err when the file holds no URL (a trailing
 * newline or blanks, as an editor leaves them, do not count). */
static int read_current(char *out, size_t len, char *err, size_t errlen)
{
    char cur[4200], buf[IDENTITY_URL_LEN + 2];
    out[0] = '\0';
    if (current_path(cur, sizeof cur) < 0)
        return 1;
    FILE *f = fopen(cur, "r");
    if (!f)
        return 1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        buf[--n] = '\0';
    if (n == 0)
        return 1;
    bool ok = n < len && n == strlen(buf) &&
              (strncmp(buf, "http://", 7) == 0 || strncmp(buf, "https://", 8) == 0);
    for (size_t i = 0; ok && i < n; i++)
        ok = (unsigned char)buf[i] > 0x20 && buf[i] != 0x7f;
    if (!ok) {
        /* Not echoed: it may hold anything, terminal escapes included. */
        snprintf(err, errlen, "%s does not hold a server URL (damaged?); run 'hoopctl login --server URL' "
                              "again, or name the server (--server URL, server.url or HOOPCTL_SERVER_URL)", cur);
        return -1;
    }
    memcpy(out, buf, n + 1);
    return 0;
}

/* A token file or directory that group or others can open: say so, once per
 * process (the tokens are a login's credentials). */
static void store_warn_mode(const char *dir, const char *path)
{
    static atomic_flag warned = ATOMIC_FLAG_INIT;
    struct stat st;
    const char *p[2] = {dir, path};
    if (atomic_flag_test_and_set(&warned))
        return;
    for (int i = 0; i < 2; i++) {
        if (stat(p[i], &st) == 0 && (st.st_mode & 077))
            log_warn("identity", "%s is open to group or others (mode %03o): it holds your tokens; chmod %s it",
                     p[i], (unsigned)(st.st_mode & 0777), i == 0 ? "700" : "600");
    }
}

int identity_store_check_writable(char *err, size_t errlen)
{
    char dir[4096], probe[4200];
    if (store_dir(dir, sizeof dir) < 0) {
        snprintf(err, errlen, "no config directory (HOME unset or path too long)");
        return -1;
    }
    if (config_mkdirs(dir, 0700) < 0) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    snprintf(probe, sizeof probe, "%s/.probe.%ld", dir, (long)getpid());
    int fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    close(fd);
    unlink(probe);
    return 0;
}

/* Temp files of writers that died mid-write (path.tmp.PID) hold tokens:
 * remove those whose process is gone. */
static void store_remove_stale_temps(const char *path)
{
    char pattern[4300];
    snprintf(pattern, sizeof pattern, "%s.tmp.*", path);
    glob_t g;
    if (glob(pattern, GLOB_NOSORT, NULL, &g) != 0)
        return;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        const char *dot = strrchr(g.gl_pathv[i], '.');
        char *end;
        long pid = dot ? strtol(dot + 1, &end, 10) : 0;
        if (pid > 0 && *end == '\0' && kill((pid_t)pid, 0) < 0 && errno == ESRCH)
            unlink(g.gl_pathv[i]);
    }
    globfree(&g);
}

int identity_store_save(const struct identity_session *s, char *err, size_t errlen)
{
    char dir[4096], path[4200], cur[4200];
    if (store_dir(dir, sizeof dir) < 0 || identity_store_path(s->profile, path, sizeof path) < 0 ||
        current_path(cur, sizeof cur) < 0) {
        snprintf(err, errlen, "no config directory (HOME unset or path too long)");
        return -1;
    }
    if (config_mkdirs(dir, 0700) < 0) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    store_remove_stale_temps(path);
    store_remove_stale_temps(cur);
    const struct identity_login_config *l = &s->login;
    const struct identity_tokens *t = &s->tokens;
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I}",
                          "profile", s->profile, "server", l->server, "issuer", l->issuer, "client_id",
                          l->client_id, "scopes", l->scopes, "audience", l->audience, "grant", s->grant,
                          "secret_source", s->secret_source, "access_token", t->access_token,
                          "refresh_token", t->refresh_token, "id_token", t->id_token, "token_type",
                          t->token_type, "expires_at", (json_int_t)t->expires_at);
    char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    if (!text) {
        snprintf(err, errlen, "cannot encode the token file (bad UTF-8 in a field?)");
        return -1;
    }
    size_t tl = strlen(text);
    int rc = config_write_atomic(path, text, tl, 0600);
    int saved = errno;
    util_secure_zero(text, tl);
    free(text);
    if (rc < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(saved));
        return -1;
    }
    if (config_write_atomic(cur, s->profile, strlen(s->profile), 0600) < 0) {
        snprintf(err, errlen, "%s: %s", cur, strerror(errno));
        return -1;
    }
    return 0;
}

/* Which profile to use when none was named: the configured server, else the
 * last login. 0, 1 when there is none, or -1 with err when the config file
 * cannot be read or parsed (it may name the server: never guess past it). */
static int store_default_profile(char *out, size_t len, char *err, size_t errlen)
{
    json_t *cfg = config_load_client(err, errlen);
    if (!cfg)
        return -1;
    const char *server = config_get_string(cfg, "server.url");
    if (server && strlen(server) < len) {
        strcpy(out, server);
        json_decref(cfg);
        return 0;
    }
    json_decref(cfg);
    return read_current(out, len, err, errlen);
}

static void store_copy(json_t *j, const char *key, char *dst, size_t len)
{
    identity_json_copy(j, key, dst, len);
}

int identity_store_load(const char *profile, struct identity_session *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (profile && *profile) {
        if (strlen(profile) >= sizeof out->profile) {
            snprintf(err, errlen, "server or issuer URL too long");
            return -1;
        }
        memcpy(out->profile, profile, profile_key_len(profile));
    } else {
        int rc = store_default_profile(out->profile, sizeof out->profile, err, errlen);
        if (rc < 0) {
            out->profile[0] = '\0';
            return -1;
        }
        if (rc > 0) {
            /* and no server known either (no server.url, no earlier login) */
            snprintf(err, errlen, "not logged in; run 'hoopctl login --server URL' (or set server.url or"
                                  " HOOPCTL_SERVER_URL first)");
            return 1;
        }
    }
    char path[4200];
    if (identity_store_path(out->profile, path, sizeof path) < 0) {
        snprintf(err, errlen, "no config directory (HOME unset or path too long)");
        out->profile[0] = '\0';
        return -1;
    }
    /* A login saved before trailing slashes stopped counting, under the URL
     * as it was typed (the hash of it with its slash): moved to its place. */
    char dir[4096], legacy[4200], hash[65], typed[sizeof out->profile];
    snprintf(typed, sizeof typed, "%s", profile && *profile ? profile : out->profile);
    out->profile[profile_key_len(out->profile)] = '\0';
    if (profile_key_len(typed) != strlen(typed) && access(path, F_OK) < 0 && store_dir(dir, sizeof dir) == 0) {
        util_sha256_hex(typed, strlen(typed), hash);
        int n = snprintf(legacy, sizeof legacy, "%s/%.32s.json", dir, hash);
        if (n > 0 && (size_t)n < sizeof legacy && access(legacy, F_OK) == 0)
            (void)rename(legacy, path);
    }
    if (access(path, F_OK) < 0 && errno == ENOENT) {
        snprintf(err, errlen, "not logged in to %s; run 'hoopctl login'", out->profile);
        return 1;
    }
    if (store_dir(dir, sizeof dir) == 0)
        store_warn_mode(dir, path);
    /* From here on a failure is the token file's own: out->profile stays,
     * so that logout can still delete it. */
    char e2[512];
    json_t *j = config_load(path, 0, e2, sizeof e2);
    if (!j) { /* config_load's text does not quote the damaged part */
        if (access(path, R_OK) == 0) /* it reads but is damaged (cut short, edited) */
            snprintf(err, errlen, "the saved login is damaged (%s); run 'hoopctl login' again", e2);
        else
            snprintf(err, errlen, "%s", e2);
        return -1;
    }
    struct identity_login_config *l = &out->login;
    struct identity_tokens *t = &out->tokens;
    store_copy(j, "server", l->server, sizeof l->server);
    store_copy(j, "issuer", l->issuer, sizeof l->issuer);
    store_copy(j, "client_id", l->client_id, sizeof l->client_id);
    store_copy(j, "scopes", l->scopes, sizeof l->scopes);
    store_copy(j, "audience", l->audience, sizeof l->audience);
    store_copy(j, "grant", out->grant, sizeof out->grant);
    store_copy(j, "secret_source", out->secret_source, sizeof out->secret_source);
    store_copy(j, "access_token", t->access_token, sizeof t->access_token);
    store_copy(j, "refresh_token", t->refresh_token, sizeof t->refresh_token);
    store_copy(j, "id_token", t->id_token, sizeof t->id_token);
    store_copy(j, "token_type", t->token_type, sizeof t->token_type);
    json_t *exp = json_object_get(j, "expires_at");
    t->expires_at = json_is_integer(exp) ? json_integer_value(exp) : 0;
    json_decref(j);
    if (!l->issuer[0] || !l->client_id[0] || !t->access_token[0]) {
        snprintf(err, errlen, "%s: token file lacks issuer, client_id or access_token; run 'hoopctl login' again",
                 path);
        return -1;
    }
    return 0;
}

int identity_store_delete(const char *profile, char *err, size_t errlen)
{
    char path[4200], cur[4200], now[IDENTITY_URL_LEN] = "";
    if (identity_store_path(profile, path, sizeof path) < 0 || current_path(cur, sizeof cur) < 0) {
        snprintf(err, errlen, "no config directory");
        return -1;
    }
    if (unlink(path) < 0 && errno != ENOENT) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char e2[512];
    int rc = read_current(now, sizeof now, e2, sizeof e2);
    if (rc < 0 || (rc == 0 && strcmp(now, profile) == 0)) /* a damaged one names nothing left */
        unlink(cur);
    return 0;
}

int identity_store_repair_current(char *only, size_t len, size_t *saved, char *list, size_t listlen,
                                  char *err, size_t errlen)
{
    char cur[4200], dir[4096], now[IDENTITY_URL_LEN], path[4200], e2[512];
    only[0] = '\0';
    list[0] = '\0';
    *saved = 0;
    if (store_dir(dir, sizeof dir) < 0 || current_path(cur, sizeof cur) < 0)
        return 0;
    json_t *cfg = config_load_client(e2, sizeof e2);
    const char *server = cfg ? config_get_string(cfg, "server.url") : NULL;
    bool named = !cfg || (server && *server); /* the config names the server, or cannot be read */
    json_decref(cfg);
    if (named)
        return 0;
    struct stat st;
    if (lstat(cur, &st) < 0)
        return 0; /* no current login: nothing to repair */
    int rc = read_current(now, sizeof now, e2, sizeof e2);
    if (rc == 0 && identity_store_path(now, path, sizeof path) == 0 && access(path, F_OK) == 0)
        return 0; /* it names a saved login */
    if (unlink(cur) < 0 && errno != ENOENT) {
        snprintf(err, errlen, "%s names no saved login (damaged?) and cannot be removed: %s", cur, strerror(errno));
        return -1;
    }
    int ret = 1;
    if (rc == 0) { /* a URL whose login is gone: the current login is known, and ended */
        snprintf(err, errlen, "%s named %s, which is not logged in; removed it", cur, now);
        ret = 2;
    } else {
        snprintf(err, errlen, "%s named no saved login (damaged?); removed it", cur);
    }
    /* The saved logins: one left is the one to end; more, and which one
     * was current is not known. */
    char pattern[4200];
    snprintf(pattern, sizeof pattern, "%s/*.json", dir);
    glob_t g;
    if (glob(pattern, 0, NULL, &g) != 0)
        return ret;
    size_t used = 0;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        (*saved)++;
        json_t *j = config_load(g.gl_pathv[i], 0, e2, sizeof e2);
        const char *p = json_string_value(json_object_get(j, "profile"));
        /* named by its profile only when that is where the profile's file goes */
        bool known = p && *p && strlen(p) < len && identity_store_path(p, path, sizeof path) == 0 &&
                     strcmp(path, g.gl_pathv[i]) == 0;
        const char *name = known ? p : g.gl_pathv[i];
        if (*saved == 1 && known)
            snprintf(only, len, "%s", p);
        int n = snprintf(list + used, used < listlen ? listlen - used : 0, "%s%s", used ? ", " : "", name);
        if (n > 0)
            used = used + (size_t)n < listlen ? used + (size_t)n : listlen;
        json_decref(j);
    }
    globfree(&g);
    if (*saved != 1 || ret == 2)
        only[0] = '\0';
    return ret;
}

/* Get new tokens for s: refresh grant, or client credentials again. */
static int session_renew(struct identity_session *s, char *err, size_t errlen)
{
    struct identity_provider p;
    if (identity_discover(s->login.issuer, &p, err, errlen) < 0)
        return -1;
    if (strcmp(s->grant, "client_credentials") == 0) {
        struct identity_client_secret cs;
        int rc = identity_session_client_secret(s, &cs, err, errlen);
        if (rc == 0)
            rc = identity_client_credentials(&p, &s->login, &cs, &s->tokens, err, errlen);
        util_secure_zero(&cs, sizeof cs);
        return rc;
    }
    return identity_refresh(&p, s->login.client_id, &s->tokens, err, errlen);
}

static bool session_fresh(const struct identity_session *s, int min_valid)
{
    return s->tokens.expires_at == 0 || s->tokens.expires_at - util_now_ms() / 1000 > min_valid;
}

/* flock(LOCK_EX); on a thread with an abort flag (identity_http_abort_on),
 * polled so that setting the flag ends the wait (another process may hold
 * the lock through a hung refresh): -1 then. */
static int session_lock(int fd)
{
    if (!identity_http_abortable())
        return flock(fd, LOCK_EX);
    for (;;) {
        if (identity_http_aborted())
            return -1;
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            return 0;
        if (errno != EWOULDBLOCK && errno != EINTR)
            return -1;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

int identity_session_ensure_fresh(struct identity_session *s, int min_valid, char *err, size_t errlen)
{
    if (session_fresh(s, min_valid))
        return 0;
    char path[4200], lockpath[4300];
    if (identity_store_path(s->profile, path, sizeof path) < 0) {
        snprintf(err, errlen, "no config directory");
        return -1;
    }
    snprintf(lockpath, sizeof lockpath, "%s.lock", path);
    int fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || session_lock(fd) < 0) {
        if (fd >= 0 && identity_http_aborted())
            snprintf(err, errlen, "%s: cancelled", lockpath);
        else
            snprintf(err, errlen, "%s: %s", lockpath, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    /* Another process may have refreshed while we waited for the lock. */
    struct identity_session *disk = malloc(sizeof *disk);
    int rc = -1;
    if (!disk) {
        snprintf(err, errlen, "out of memory");
    } else if (access(path, F_OK) != 0 && errno == ENOENT) {
        /* `hoopctl logout` removed the login: renewing it from memory and
         * saving it again would undo that. */
        snprintf(err, errlen, "logged out of %s (hoopctl logout): log in again", s->profile);
    } else if (identity_store_load(s->profile, disk, err, errlen) == 0 && session_fresh(disk, min_valid)) {
        *s = *disk;
        rc = 0;
    } else {
        if (disk->tokens.refresh_token[0]) /* the newest rotated refresh token */
            memcpy(s->tokens.refresh_token, disk->tokens.refresh_token, sizeof s->tokens.refresh_token);
        log_debug("identity", "renewing the access token for %s", s->profile);
        rc = session_renew(s, err, errlen);
        if (rc == 0)
            rc = identity_store_save(s, err, errlen);
    }
    if (disk) {
        util_secure_zero(disk, sizeof *disk);
        free(disk);
    }
    flock(fd, LOCK_UN);
    close(fd);
    return rc;
}

int identity_session_refresh_tick(struct identity_session *s, char *err, size_t errlen)
{
    if (identity_session_ensure_fresh(s, IDENTITY_REFRESH_MARGIN, err, errlen) < 0)
        return -1;
    if (s->tokens.expires_at == 0)
        return 300;
    int64_t left = s->tokens.expires_at - util_now_ms() / 1000 - IDENTITY_REFRESH_MARGIN;
    if (left < 5)
        left = 5; /* very short-lived tokens: do not spin */
    return left > 3600 ? 3600 : (int)left;
}

int identity_session_client_secret(const struct identity_session *s, struct identity_client_secret *out,
                                   char *err, size_t errlen)
{
    return identity_client_secret_load(strcmp(s->secret_source, "env") == 0 ? NULL : s->secret_source, out,
                                       err, errlen);
}

int identity_session_open(const char *profile, int min_valid, struct identity_session **out,
                          char *err, size_t errlen)
{
    *out = calloc(1, sizeof **out);
    if (!*out) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = identity_store_load(profile, *out, err, errlen);
    if (rc == 0 && min_valid >= 0 && identity_session_ensure_fresh(*out, min_valid, err, errlen) < 0)
        rc = 1;
    if (rc != 0) {
        identity_session_close(*out);
        *out = NULL;
    }
    return rc;
}

void identity_session_close(struct identity_session *s)
{
    if (!s)
        return;
    util_secure_zero(s, sizeof *s);
    free(s);
}
