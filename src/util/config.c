/* config.c — XDG paths with HOOPCTL_* overrides, JSON config loading through
 * jansson, and atomic file writes for tokens and state. */
#include "hoopctl/config.h"
#include "hoopctl/log.h"
#include "hoopctl/util.h"

#include <ctype.h>
#include <stdatomic.h>
#include <strings.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Resolve <override> or <xdg>/hoopctl or $HOME/<fallback>/hoopctl. */
static int xdg_path(const char *override, const char *xdg, const char *fallback,
                    char *out, size_t len)
{
    const char *v = getenv(override);
    int n;
    if (v && *v) {
        n = snprintf(out, len, "%s", v);
    } else if ((v = getenv(xdg)) && *v == '/') {
        n = snprintf(out, len, "%s/hoopctl", v);
    } else {
        const char *home = getenv("HOME");
        if (!home || !*home)
            return -1;
        n = snprintf(out, len, "%s/%s/hoopctl", home, fallback);
    }
    return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

int config_dir(char *out, size_t len)
{
    return xdg_path("HOOPCTL_CONFIG_DIR", "XDG_CONFIG_HOME", ".config", out, len);
}

int config_state_dir(char *out, size_t len)
{
    return xdg_path("HOOPCTL_STATE_DIR", "XDG_STATE_HOME", ".local/state", out, len);
}

int config_file_path(char *out, size_t len)
{
    const char *v = getenv("HOOPCTL_CONFIG");
    if (v && *v) {
        int n = snprintf(out, len, "%s", v);
        return (n < 0 || (size_t)n >= len) ? -1 : 0;
    }
    char dir[4096];
    if (config_dir(dir, sizeof dir) < 0)
        return -1;
    int n = snprintf(out, len, "%s/config.json", dir);
    return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

int config_mkdirs(const char *path, unsigned mode)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, mode) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

const char *config_json_error(json_error_t *e)
{
    char *near = strstr(e->text, " near '");
    if (near)
        *near = '\0';
    return e->text;
}

json_t *config_load(const char *path, int missing_ok, char *err, size_t errlen)
{
    if (missing_ok && access(path, F_OK) < 0 && errno == ENOENT)
        return json_object();
    json_error_t jerr;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "unable to open %s: %s", path, strerror(errno));
        return NULL;
    }
    /* stdio reads into this buffer, not one of its own that fclose would
     * free as it is: the file may hold tokens (jansson's blocks are wiped
     * when freed, util_json_wipe_init) */
    char iobuf[4096];
    setvbuf(f, iobuf, _IOFBF, sizeof iobuf);
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
    bool read_error = ferror(f);
    int read_errno = errno;
    fclose(f);
    util_secure_zero(iobuf, sizeof iobuf);
    if (!root && read_error)
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(read_errno));
    else if (!root)
        snprintf(err, errlen, "%s:%d:%d: %s", path, jerr.line, jerr.column, config_json_error(&jerr));
    if (!root)
        return NULL;
    if (!json_is_object(root)) {
        snprintf(err, errlen, "%s: the top level must be a JSON object", path);
        json_decref(root);
        return NULL;
    }
    return root;
}

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* The known name an unknown one was probably meant as, or NULL: the same
 * name in another case, else a close one (util_name_is_typo). */
static const char *config_nearest(const char *typed, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(typed, names[i]) == 0)
            return names[i];
    size_t best = util_nearest_name(typed, names, n);
    return best < n && util_name_is_typo(typed, names[best]) ? names[best] : NULL;
}

#define CONFIG_MAX_NAMES 64

/* The names under section (NULL: the top level, where a section counts by
 * its name, kept in tops) into out; their count. */
static size_t config_names(const struct config_key *keys, const char *section, const char **out,
                           char (*tops)[32])
{
    size_t n = 0, sl = section ? strlen(section) : 0;
    for (const struct config_key *k = keys; k->name && n < CONFIG_MAX_NAMES; k++) {
        const char *dot = strchr(k->name, '.');
        if (section && (!dot || (size_t)(dot - k->name) != sl || strncmp(k->name, section, sl) != 0))
            continue;
        const char *name = section ? dot + 1 : k->name;
        if (!section && dot) {
            size_t l = (size_t)(dot - k->name) < sizeof tops[0] ? (size_t)(dot - k->name) : sizeof tops[0] - 1;
            bool seen = false;
            for (size_t i = 0; i < n && !seen; i++)
                seen = strlen(out[i]) == l && strncmp(out[i], k->name, l) == 0;
            if (seen)
                continue;
            memcpy(tops[n], k->name, l);
            tops[n][l] = '\0';
            name = tops[n];
        }
        out[n++] = name;
    }
    return n;
}

static int config_unknown(const char *path, const char *section, const char *key, const struct config_key *keys,
                          int strict, int warn, char *err, size_t errlen)
{
    const char *names[CONFIG_MAX_NAMES];
    char tops[CONFIG_MAX_NAMES][32];
    const char *near = config_nearest(key, names, config_names(keys, section, names, tops));
    char hint[160] = "";
    if (near)
        snprintf(hint, sizeof hint, " (did you mean %s%s%s?)", section ? section : "", section ? "." : "", near);
    if (strict) {
        snprintf(err, errlen, "%s: unknown key %s%s%.100s%s", path, section ? section : "", section ? "." : "", key,
                 hint);
        return -1;
    }
    if (warn)
        log_warn("config", "%s: unknown key %s%s%.100s ignored%s", path, section ? section : "", section ? "." : "",
                 key, hint);
    return 0;
}

static int config_check_value(const char *path, const char *name, char type, const json_t *v, char *err,
                              size_t errlen)
{
    bool ok = type == 's' ? json_is_string(v) : type == 'i' ? json_is_integer(v) : json_is_object(v);
    if (!ok)
        snprintf(err, errlen, "%s: %s must be %s, not %s", path, name,
                 type == 's' ? "a string" : type == 'i' ? "a whole number" : "an object", json_kind(v));
    return ok ? 0 : -1;
}

int config_check_keys(json_t *cfg, const struct config_key *keys, const char *path, int strict, int warn,
                      char *err, size_t errlen)
{
    const char *top;
    json_t *v;
    json_object_foreach(cfg, top, v) {
        const struct config_key *exact = NULL;
        bool section = false;
        size_t tl = strlen(top);
        for (const struct config_key *k = keys; k->name; k++) {
            if (strcmp(k->name, top) == 0)
                exact = k;
            else if (strncmp(k->name, top, tl) == 0 && k->name[tl] == '.')
                section = true;
        }
        if (exact) {
            if (config_check_value(path, top, exact->type, v, err, errlen) < 0)
                return -1;
            continue;
        }
        if (!section) {
            if (config_unknown(path, NULL, top, keys, strict, warn, err, errlen) < 0)
                return -1;
            continue;
        }
        if (!json_is_object(v)) {
            snprintf(err, errlen, "%s: %s must be an object, not %s", path, top, json_kind(v));
            return -1;
        }
        const char *sub;
        json_t *sv;
        json_object_foreach(v, sub, sv) {
            char full[160];
            snprintf(full, sizeof full, "%s.%s", top, sub);
            const struct config_key *k = keys;
            while (k->name && strcmp(k->name, full) != 0)
                k++;
            if (!k->name) {
                if (config_unknown(path, top, sub, keys, strict, warn, err, errlen) < 0)
                    return -1;
            } else if (config_check_value(path, full, k->type, sv, err, errlen) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

/* The keys of the client's config file. */
static const struct config_key client_keys[] = {
    {"server.url", 's'}, {"server.ca_file", 's'}, {"server.token_file", 's'}, {NULL, 0}};

json_t *config_load_client(char *err, size_t errlen)
{
    /* Several callers in one command read the file: warn about it once. */
    static atomic_flag warned = ATOMIC_FLAG_INIT;
    char path[4096];
    const char *named = getenv("HOOPCTL_CONFIG");
    if (config_file_path(path, sizeof path) < 0)
        return json_object(); /* no HOME: no file to read */
    struct stat st;
    if (stat(path, &st) < 0 && errno == ENOENT) {
        /* The default file is optional; one named by HOOPCTL_CONFIG, or a
         * link to nothing, was meant to be there (and may name the server). */
        if (lstat(path, &st) == 0) {
            snprintf(err, errlen, "%s: a symbolic link to a file that does not exist", path);
            return NULL;
        }
        if (named && *named) {
            snprintf(err, errlen, "%s (named by HOOPCTL_CONFIG) does not exist", path);
            return NULL;
        }
        return json_object();
    }
    json_t *cfg = config_load(path, 0, err, errlen);
    if (!cfg)
        return NULL;
    bool warn = !atomic_flag_test_and_set(&warned);
    if (config_check_keys(cfg, client_keys, path, 0, warn, err, errlen) < 0) {
        json_decref(cfg);
        return NULL;
    }
    return cfg;
}

int config_write_atomic(const char *path, const void *data, size_t len, unsigned mode)
{
    char tmp[4200];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode);
    if (fd < 0)
        return -1;
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            goto fail;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fchmod(fd, (mode_t)mode) < 0 || fsync(fd) < 0)
        goto fail;
    if (close(fd) < 0) {
        fd = -1;
        goto fail;
    }
    if (rename(tmp, path) < 0) {
        int saved = errno;
        unlink(tmp);
        errno = saved;
        return -1;
    }
    return 0;
fail:;
    int saved = errno;
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    errno = saved;
    return -1;
}

const char *config_get_string(json_t *cfg, const char *key)
{
    char env[256] = "HOOPCTL_";
    size_t j = strlen(env);
    for (const char *k = key; *k && j + 1 < sizeof env; k++)
        env[j++] = (*k == '.' || *k == '-') ? '_' : (char)toupper((unsigned char)*k);
    env[j] = '\0';
    const char *v = getenv(env);
    if (v && *v)
        return v;
    if (!cfg)
        return NULL;
    /* Walk dotted components. */
    json_t *node = cfg;
    char part[128];
    const char *s = key;
    while (*s) {
        const char *dot = strchr(s, '.');
        size_t plen = dot ? (size_t)(dot - s) : strlen(s);
        if (plen >= sizeof part)
            return NULL;
        memcpy(part, s, plen);
        part[plen] = '\0';
        node = json_object_get(node, part);
        if (!node)
            return NULL;
        s += plen + (dot ? 1 : 0);
    }
    return json_is_string(node) ? json_string_value(node) : NULL;
}
