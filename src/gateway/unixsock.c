/* unixsock.c — the gateway's optional Unix-domain listener, DIR/.s.PGSQL.<port>
 * as PostgreSQL names its own, so that psql, libpq and pgbench reach the
 * gateway with host=DIR (no TCP on the client's side of the relay). The
 * directory must be the user's own and closed to others: the socket is the
 * only door, and clients on it are trusted like those on loopback. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define SOCKET_NAME_MAX 16 /* "/.s.PGSQL.65535" and its NUL */

int gateway_check_socket_dir(const char *dir, char *err, size_t errlen)
{
    struct sockaddr_un sun;
    size_t n = strlen(dir);
    if (dir[0] != '/') {
        snprintf(err, errlen, "--socket-dir takes an absolute path (psql reads any other as a host name)");
        return -1;
    }
    if (n + SOCKET_NAME_MAX > sizeof sun.sun_path) {
        snprintf(err, errlen, "--socket-dir %.60s...: too long for a socket path (at most %zu bytes)", dir,
                 sizeof sun.sun_path - SOCKET_NAME_MAX);
        return -1;
    }
    struct stat st;
    if (lstat(dir, &st) < 0 && (errno != ENOENT || mkdir(dir, 0700) < 0 || lstat(dir, &st) < 0)) {
        snprintf(err, errlen, "--socket-dir %s: %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "--socket-dir %s is not a directory", dir);
        return -1;
    }
    if (st.st_uid != geteuid()) {
        snprintf(err, errlen, "--socket-dir %s is not owned by you", dir);
        return -1;
    }
    if (st.st_mode & 077) {
        snprintf(err, errlen,
                 "--socket-dir %s is open to group or others (mode %03o): give a directory of mode 0700", dir,
                 (unsigned)(st.st_mode & 0777));
        return -1;
    }
    return 0;
}

int gateway_listen_unix(struct gateway *gw, const char *dir, char *err, size_t errlen)
{
    if (gw->unix_listener) {
        snprintf(err, errlen, "the gateway listens on %s already", gw->socket_path);
        return -1;
    }
    if (gateway_check_socket_dir(dir, err, errlen) < 0)
        return -1;
    const char *colon = strrchr(gw->listen_address, ':');
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s/.s.PGSQL.%s", dir, colon ? colon + 1 : "5432");
    struct stat st;
    if (lstat(sun.sun_path, &st) == 0) {
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool live = S_ISSOCK(st.st_mode) && probe >= 0 &&
                    connect(probe, (struct sockaddr *)&sun, sizeof sun) == 0;
        if (probe >= 0)
            close(probe);
        if (!S_ISSOCK(st.st_mode) || live) {
            snprintf(err, errlen, "%s is %s", sun.sun_path, live ? "in use by a running server" : "not a socket");
            return -1;
        }
        unlink(sun.sun_path); /* a stale socket of a gateway that died */
    }
    mode_t old = umask(0077);
    gw->unix_listener = evconnlistener_new_bind(gw->base, gw_on_accept, gw,
                                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1,
                                                (struct sockaddr *)&sun, sizeof sun);
    umask(old);
    if (!gw->unix_listener) {
        snprintf(err, errlen, "cannot listen on %s: %s", sun.sun_path, strerror(errno));
        return -1;
    }
    evconnlistener_set_error_cb(gw->unix_listener, gw_on_accept_error);
    if (gw->accepts_paused)
        evconnlistener_disable(gw->unix_listener);
    snprintf(gw->socket_path, sizeof gw->socket_path, "%s", sun.sun_path);
    if (chmod(gw->socket_path, 0600) < 0) {
        snprintf(err, errlen, "chmod %s: %s", gw->socket_path, strerror(errno));
        gw_unix_close(gw);
        return -1;
    }
    return 0;
}

const char *gateway_socket_path(const struct gateway *gw)
{
    return gw->socket_path[0] ? gw->socket_path : NULL;
}

void gw_unix_close(struct gateway *gw)
{
    if (gw->unix_listener) {
        evconnlistener_free(gw->unix_listener);
        gw->unix_listener = NULL;
    }
    if (gw->socket_path[0]) {
        unlink(gw->socket_path);
        gw->socket_path[0] = '\0';
    }
}
