/* config.c — XDG paths with HOOPCTL_* overrides, JSON config loading through
 * jansson, and atomic file writes for tokens and state. */
#include "hoopctl/config.h"

#include <ctype.h>
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

json_t *config_load(const char *path, int missing_ok, char *err, size_t errlen)
{
    if (missing_ok && access(path, F_OK) < 0 && errno == ENOENT)
        return json_object();
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root && jerr.line < 0) /* could not be read: jansson's text names the path and why */
        snprintf(err, errlen, "%s", jerr.text);
    else if (!root)
        snprintf(err, errlen, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
    if (!root)
        return NULL;
    if (!json_is_object(root)) {
        snprintf(err, errlen, "%s: the top level must be a JSON object", path);
        json_decref(root);
        return NULL;
    }
    return root;
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
