/* identity_store.c — test driver for the token store:
 *   identity_store write PROFILE [FIRST]  save self-consistent sessions in a loop, forever,
 *                                   generations FIRST, FIRST+1, ... (default 1)
 *   identity_store check PROFILE    load and check that the file is whole; prints "ok N"
 *   identity_store resave PROFILE   load and save once
 *   identity_store tick [PROFILE]   one background-refresh tick; prints the seconds until the next
 * Exit 0 on success, 1 when the file is corrupt or the call failed. */
#include "hoopctl/identity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t stress_len(long i)
{
    return 100 + (size_t)((i * 7919) % 8000);
}

static void stress_fill(struct identity_session *s, long i)
{
    size_t len = stress_len(i);
    char c = (char)('a' + i % 26);
    memset(s->tokens.access_token, c, len);
    s->tokens.access_token[len] = '\0';
    memset(s->tokens.refresh_token, c, len / 2);
    s->tokens.refresh_token[len / 2] = '\0';
    snprintf(s->tokens.id_token, sizeof s->tokens.id_token, "id-%ld", i);
    s->tokens.expires_at = i;
}

static int all_of(const char *s, char c, size_t len)
{
    if (strlen(s) != len)
        return 0;
    for (size_t k = 0; k < len; k++)
        if (s[k] != c)
            return 0;
    return 1;
}

int main(int argc, char **argv)
{
    char err[512];
    static struct identity_session s;
    if (argc < 2)
        return 2;
    if (strcmp(argv[1], "write") == 0 && (argc == 3 || argc == 4)) {
        snprintf(s.profile, sizeof s.profile, "%s", argv[2]);
        strcpy(s.login.issuer, "https://issuer.test");
        strcpy(s.login.client_id, "stress");
        strcpy(s.grant, "device");
        for (long i = argc == 4 ? atol(argv[3]) : 1;; i++) {
            stress_fill(&s, i);
            if (identity_store_save(&s, err, sizeof err) < 0) {
                fprintf(stderr, "save: %s\n", err);
                return 1;
            }
        }
    }
    if (strcmp(argv[1], "check") == 0 && argc == 3) {
        if (identity_store_load(argv[2], &s, err, sizeof err) != 0) {
            printf("corrupt or missing: %s\n", err);
            return 1;
        }
        long i = (long)s.tokens.expires_at;
        char id[32];
        snprintf(id, sizeof id, "id-%ld", i);
        char c = (char)('a' + i % 26);
        if (i < 1 || !all_of(s.tokens.access_token, c, stress_len(i)) ||
            !all_of(s.tokens.refresh_token, c, stress_len(i) / 2) || strcmp(s.tokens.id_token, id) != 0) {
            printf("inconsistent session at generation %ld\n", i);
            return 1;
        }
        printf("ok %ld\n", i);
        return 0;
    }
    if (strcmp(argv[1], "resave") == 0 && argc == 3) {
        if (identity_store_load(argv[2], &s, err, sizeof err) != 0 || identity_store_save(&s, err, sizeof err) < 0) {
            printf("resave: %s\n", err);
            return 1;
        }
        return 0;
    }
    if (strcmp(argv[1], "tick") == 0) {
        if (identity_store_load(argc > 2 ? argv[2] : NULL, &s, err, sizeof err) != 0) {
            printf("load: %s\n", err);
            return 1;
        }
        int next = identity_session_refresh_tick(&s, err, sizeof err);
        if (next < 0) {
            printf("tick: %s\n", err);
            return 1;
        }
        printf("next %d\n", next);
        return 0;
    }
    return 2;
}
