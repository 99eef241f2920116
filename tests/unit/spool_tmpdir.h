/* spool_tmpdir.h — cmocka setup/teardown shared by test_spool.c and
 * test_shipper.c: a fresh temporary directory per test, with the path of a
 * spool file inside it, removed afterwards. */
#ifndef HOOPCTL_TEST_SPOOL_TMPDIR_H
#define HOOPCTL_TEST_SPOOL_TMPDIR_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[64], spool_path[128];

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/hoopctl-spool.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(spool_path, sizeof spool_path, "%s/spool.db", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

#endif
