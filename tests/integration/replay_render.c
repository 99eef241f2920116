/* replay_render.c — test driver: runs one query through libpq (PG* env) and
 * prints it with the replay renderer, so a test can compare against psql. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>

#include "hoopctl/replay.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: replay_render SQL\n");
        return 2;
    }
    PGconn *c = PQconnectdb("");
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "%s", PQerrorMessage(c));
        return 1;
    }
    PGresult *res = PQexec(c, argv[1]);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "%s", PQerrorMessage(c));
        return 1;
    }
    int nc = PQnfields(res), nr = PQntuples(res);
    const char **names = calloc((size_t)nc + 1, sizeof *names);
    uint32_t *oids = calloc((size_t)nc + 1, sizeof *oids);
    const char **cells = calloc((size_t)nc * (size_t)nr + 1, sizeof *cells);
    for (int i = 0; i < nc; i++) {
        names[i] = PQfname(res, i);
        oids[i] = PQftype(res, i);
    }
    for (int r = 0; r < nr; r++)
        for (int i = 0; i < nc; i++)
            cells[(size_t)r * nc + i] = PQgetisnull(res, r, i) ? NULL : PQgetvalue(res, r, i);
    struct replay_result rr = {nc, names, oids, nr, cells};
    struct buf out = {0};
    if (replay_render_table(&rr, &out) < 0)
        return 1;
    fwrite(out.data, 1, out.len, stdout);
    buf_free(&out);
    free(names);
    free(oids);
    free(cells);
    PQclear(res);
    PQfinish(c);
    return 0;
}
