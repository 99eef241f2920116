/* identity_verify.c — test driver for the server-side JWT verifier: reads
 * tokens from stdin (one a line), verifies each against an issuer and an
 * audience, and prints "OK <identity JSON>" or "<RESULT> <reason>" per line,
 * then "jwks_fetches N". Exit 0 when every token was accepted, 1 when one
 * was refused, 3 when verification was unavailable, 2 on usage errors.
 *   identity_verify --issuer URL --audience AUD [--groups-claim C]
 *                   [--refetch-interval S] [--jwks-file FILE] [--jwks-uri URL]
 *                   [--jwks-max-age-ms MS]
 * A line "sleep MS" (not a token) pauses that long. */
#define _POSIX_C_SOURCE 200809L
#include "hoopctl/identity.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    static char data[1 << 20];
    size_t n = fread(data, 1, sizeof data - 1, f);
    fclose(f);
    data[n] = '\0';
    return data;
}

int main(int argc, char **argv)
{
    struct identity_jwt_config cfg = {0};
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--issuer") == 0)
            cfg.issuer = argv[i + 1];
        else if (strcmp(argv[i], "--audience") == 0)
            cfg.audience = argv[i + 1];
        else if (strcmp(argv[i], "--groups-claim") == 0)
            cfg.groups_claim = argv[i + 1];
        else if (strcmp(argv[i], "--refetch-interval") == 0)
            cfg.refetch_interval = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--jwks-uri") == 0)
            cfg.jwks_uri = argv[i + 1];
        else if (strcmp(argv[i], "--jwks-max-age-ms") == 0)
            cfg.jwks_max_age_ms = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--jwks-file") == 0 && !(cfg.jwks_json = slurp(argv[i + 1]))) {
            fprintf(stderr, "cannot read %s\n", argv[i + 1]);
            return 2;
        }
    }
    char err[512];
    struct auth_verifier v;
    if (identity_jwt_verifier_new(&cfg, &v, err, sizeof err) < 0) {
        fprintf(stderr, "identity_verify: %s\n", err);
        return 2;
    }
    static char line[65536];
    int worst = 0;
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strncmp(line, "sleep ", 6) == 0) {
            long ms = atol(line + 6);
            struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        struct auth_identity id;
        err[0] = '\0';
        enum auth_result r = v.verify(v.ctx, line, &id, err, sizeof err);
        if (r == AUTH_OK) {
            json_t *g = json_array();
            for (int k = 0; k < id.ngroups; k++)
                json_array_append_new(g, json_string(id.groups[k]));
            json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:o, s:I, s:s}", "issuer", id.issuer, "subject",
                                  id.subject, "email", id.email, "name", id.name, "groups", g, "expires_at",
                                  (json_int_t)id.expires_at, "kind", id.kind);
            char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
            printf("OK %s\n", text);
            free(text);
            json_decref(o);
        } else {
            const char *what = r == AUTH_REFUSED ? "REFUSED" : r == AUTH_UNAVAILABLE ? "UNAVAILABLE" : "NOT_MINE";
            printf("%s %s\n", what, err);
            int sev = r == AUTH_UNAVAILABLE ? 3 : 1;
            if (sev > worst)
                worst = sev;
        }
        fflush(stdout);
    }
    printf("jwks_fetches %u\n", identity_jwt_verifier_fetches(&v));
    v.destroy(v.ctx);
    return worst;
}
