/* test_config.c — XDG paths, overrides, JSON config loading and atomic writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hoopctl/config.h"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/hoopctl-unit.XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    unsetenv("HOOPCTL_CONFIG_DIR");
    unsetenv("HOOPCTL_STATE_DIR");
    unsetenv("HOOPCTL_CONFIG");
    unsetenv("XDG_CONFIG_HOME");
    unsetenv("XDG_STATE_HOME");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void xdg_and_overrides(void **state)
{
    (void)state;
    char p[512];
    setenv("HOME", "/home/u", 1);
    assert_int_equal(config_dir(p, sizeof p), 0);
    assert_string_equal(p, "/home/u/.config/hoopctl");
    assert_int_equal(config_state_dir(p, sizeof p), 0);
    assert_string_equal(p, "/home/u/.local/state/hoopctl");
    setenv("XDG_CONFIG_HOME", "/x/cfg", 1);
    setenv("XDG_STATE_HOME", "relative/ignored", 1);
    assert_int_equal(config_dir(p, sizeof p), 0);
    assert_string_equal(p, "/x/cfg/hoopctl");
    assert_int_equal(config_state_dir(p, sizeof p), 0);
    assert_string_equal(p, "/home/u/.local/state/hoopctl");
    setenv("HOOPCTL_CONFIG_DIR", "/over", 1);
    assert_int_equal(config_dir(p, sizeof p), 0);
    assert_string_equal(p, "/over");
    assert_int_equal(config_file_path(p, sizeof p), 0);
    assert_string_equal(p, "/over/config.json");
    char small[4];
    assert_int_equal(config_dir(small, sizeof small), -1);
    unsetenv("HOOPCTL_CONFIG_DIR");
    unsetenv("XDG_CONFIG_HOME");
    unsetenv("HOME");
    assert_int_equal(config_dir(p, sizeof p), -1);
}

static void loads_json_and_reports_errors(void **state)
{
    (void)state;
    char path[512], err[256];
    snprintf(path, sizeof path, "%s/c.json", tmpdir);
    const char *good = "{\"server\": {\"url\": \"https://s\"}, \"n\": 1}";
    assert_int_equal(config_write_atomic(path, good, strlen(good), 0600), 0);
    json_t *cfg = config_load(path, 0, err, sizeof err);
    assert_non_null(cfg);
    assert_string_equal(config_get_string(cfg, "server.url"), "https://s");
    assert_null(config_get_string(cfg, "n"));
    assert_null(config_get_string(cfg, "server.nope"));
    setenv("HOOPCTL_SERVER_URL", "https://env", 1);
    assert_string_equal(config_get_string(cfg, "server.url"), "https://env");
    unsetenv("HOOPCTL_SERVER_URL");
    json_decref(cfg);

    const char *bad = "{\"a\": 1,\n \"b\": }";
    assert_int_equal(config_write_atomic(path, bad, strlen(bad), 0600), 0);
    assert_null(config_load(path, 0, err, sizeof err));
    assert_non_null(strstr(err, "c.json:2:"));
    const char *dup = "{\"a\": 1, \"a\": 2}";
    assert_int_equal(config_write_atomic(path, dup, strlen(dup), 0600), 0);
    assert_null(config_load(path, 0, err, sizeof err));
    const char *arr = "[1]";
    assert_int_equal(config_write_atomic(path, arr, strlen(arr), 0600), 0);
    assert_null(config_load(path, 0, err, sizeof err));
    assert_non_null(strstr(err, "object"));

    snprintf(path, sizeof path, "%s/missing.json", tmpdir);
    cfg = config_load(path, 1, err, sizeof err);
    assert_non_null(cfg);
    assert_int_equal(json_object_size(cfg), 0);
    json_decref(cfg);
    assert_null(config_load(path, 0, err, sizeof err));
}

/* The client's file: what would make a command quietly use another server
 * (the last login's) is an error naming the file and the key. */
static void client_config_checked(void **state)
{
    (void)state;
    char dir[512], path[600], err[512];
    snprintf(dir, sizeof dir, "%s/client", tmpdir);
    assert_int_equal(config_mkdirs(dir, 0700), 0);
    setenv("HOOPCTL_CONFIG_DIR", dir, 1);
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_t *cfg = config_load_client(err, sizeof err); /* no file: nothing configured */
    assert_non_null(cfg);
    assert_int_equal(json_object_size(cfg), 0);
    json_decref(cfg);
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"{\"server\": {\"url\": 8780}}", "config.json: server.url must be a string, not a number"},
        {"{\"server\": {\"url\": null}}", "config.json: server.url must be a string, not null"},
        {"{\"server\": {\"ca_file\": [\"a\"]}}", "config.json: server.ca_file must be a string"},
        {"{\"server\": {\"token_file\": true}}", "config.json: server.token_file must be a string"},
        {"{\"server\": \"https://prod.example\"}", "config.json: server must be an object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(config_write_atomic(path, bad[i].text, strlen(bad[i].text), 0600), 0);
        err[0] = '\0';
        assert_null(config_load_client(err, sizeof err));
        if (!strstr(err, bad[i].want))
            fail_msg("%s: got '%s', want '%s'", bad[i].text, err, bad[i].want);
    }
    /* Unknown keys are only warned about (stderr); the known ones still count. */
    const char *odd = "{\"server\": {\"URL\": \"https://x\", \"url\": \"https://s\"}, \"sever\": 1}";
    assert_int_equal(config_write_atomic(path, odd, strlen(odd), 0600), 0);
    cfg = config_load_client(err, sizeof err);
    assert_non_null(cfg);
    assert_string_equal(config_get_string(cfg, "server.url"), "https://s");
    json_decref(cfg);
    /* A link to nothing was meant to be a file. */
    unlink(path);
    char target[700];
    snprintf(target, sizeof target, "%s/elsewhere.json", dir);
    assert_int_equal(symlink(target, path), 0);
    assert_null(config_load_client(err, sizeof err));
    assert_non_null(strstr(err, "config.json: a symbolic link to a file that does not exist"));
    unlink(path);
    /* A file HOOPCTL_CONFIG names must be there. */
    setenv("HOOPCTL_CONFIG", target, 1);
    assert_null(config_load_client(err, sizeof err));
    assert_non_null(strstr(err, "elsewhere.json (named by HOOPCTL_CONFIG) does not exist"));
    assert_int_equal(config_write_atomic(target, "{}", 2, 0600), 0);
    cfg = config_load_client(err, sizeof err);
    assert_non_null(cfg);
    json_decref(cfg);
    unsetenv("HOOPCTL_CONFIG");
    unsetenv("HOOPCTL_CONFIG_DIR");
}

static void atomic_write_mode_and_no_leftovers(void **state)
{
    (void)state;
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/a/b/c", tmpdir);
    assert_int_equal(config_mkdirs(dir, 0700), 0);
    assert_int_equal(config_mkdirs(dir, 0700), 0); /* idempotent */
    snprintf(path, sizeof path, "%s/tokens.json", dir);
    assert_int_equal(config_write_atomic(path, "one", 3, 0600), 0);
    assert_int_equal(config_write_atomic(path, "second", 6, 0600), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 6);
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    assert_int_not_equal(access(tmp, F_OK), 0);
    /* A write into a missing directory fails and leaves the old file alone. */
    snprintf(path, sizeof path, "%s/nodir/x", tmpdir);
    assert_int_equal(config_write_atomic(path, "x", 1, 0600), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(xdg_and_overrides),
        cmocka_unit_test(loads_json_and_reports_errors),
        cmocka_unit_test(client_config_checked),
        cmocka_unit_test(atomic_write_mode_and_no_leftovers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
