/* audit.c — `hoopctl audit verify|export`: check the audit hash chain (through
 * the server, or straight on a store with --store) and stream the trail out as
 * JSON lines or CSV. */
#include "hoopctl/api.h"
#include "hoopctl/audit.h"
#include "hoopctl/cli.h"
#include "hoopctl/store.h"
#include "hoopctl/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void print_problems(json_t *rep)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(rep, "problems"), i, p) {
        const char *id = json_string_value(json_object_get(p, "id"));
        const char *problem = json_string_value(json_object_get(p, "problem"));
        /* id and problem may quote an exported file's own text: escaped, so
         * that no edit of the file can rewrite the verdict on a terminal */
        printf("  at event %lld%s%s: %s\n", (long long)json_integer_value(json_object_get(p, "n")),
               id ? " id " : "", id ? cli_safe(id) : "", problem ? cli_safe(problem) : "?");
    }
}

/* An exported trail, on its own: no server, no store. */
static int audit_verify_file(const char *path, struct cli_context *ctx)
{
    char err[600];
    FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (!f) {
        snprintf(err, sizeof err, "cannot open %s: %s", path, strerror(errno));
        return cli_fail("audit", 1, err);
    }
    json_t *rep = NULL;
    int rc = audit_verify_jsonl(f, &rep, err, sizeof err);
    if (f != stdin)
        fclose(f);
    if (rc)
        return cli_fail("audit", 1, err);
    bool ok = json_is_true(json_object_get(rep, "ok"));
    json_int_t checked = json_integer_value(json_object_get(rep, "checked"));
    if (!strcmp(ctx->output, "json")) {
        api_print_json(stdout, rep);
    } else if (checked == 0 && json_array_size(json_object_get(rep, "problems")) == 0) {
        printf("%s holds no exported events (export with: hoopctl audit export)\n", cli_safe(path));
    } else {
        printf("checked %lld events of the file (%lld to %lld): %s\n", (long long)checked,
               (long long)json_integer_value(json_object_get(rep, "first")),
               (long long)json_integer_value(json_object_get(rep, "last")), ok ? "chain intact" : "TAMPERED");
        print_problems(rep);
        long long first = (long long)json_integer_value(json_object_get(rep, "first"));
        if (json_is_true(json_object_get(rep, "from_start")))
            printf("starts at event 1, the beginning of the trail\n");
        else if (json_is_true(json_object_get(rep, "from_checkpoint")))
            printf("starts at event %lld, right after the retention checkpoint that the file's last retention"
                   " event records: the whole trail kept\n", first);
        else if (checked > 0 && first > 1)
            printf("starts at event %lld: events 1 to %lld are not in the file (it is the whole trail only"
                   " if audit verify reports checkpoint %lld)\n", first, first - 1, first - 1);
        const char *last = json_string_value(json_object_get(rep, "last_hash"));
        printf("last hash: %s\n", last ? cli_safe(last) : "-");
    }
    json_decref(rep);
    return ok ? 0 : 1;
}

static int audit_verify(const struct cli_args *a, struct cli_context *ctx)
{
    char err[600];
    json_t *rep = NULL;
    int rc;
    if (cli_get(a, "file")) {
        if (cli_get(a, "store"))
            return cli_usage_error(a->cmd, "--file and --store do not go together");
        return audit_verify_file(cli_get(a, "file"), ctx);
    }
    if (cli_get(a, "store")) {
        /* An integrity check reads the store as it is: a missing file or
         * one without the schema fails, and nothing is created. */
        if (store_url_check(cli_get(a, "store"), err, sizeof err) < 0)
            return cli_usage_error(a->cmd, err);
        int status;
        struct store *st = store_open_existing(cli_get(a, "store"), &status, err, sizeof err);
        if (!st)
            return cli_fail("audit", status == STORE_NOT_FOUND ? 1 : 5, err);
        rc = store_audit_verify(st, &rep, err, sizeof err);
        store_close(st);
        if (rc)
            return cli_fail("audit", 5, err);
    } else {
        struct api_client api;
        int irc = api_client_init(&api, cli_get(a, "server"), err, sizeof err);
        if (irc)
            return cli_fail("audit", irc, err);
        rc = api_do(&api, "GET", "/api/v1/audit/verify", NULL, &rep, err, sizeof err);
        api_client_free(&api);
        if (rc)
            return cli_fail("audit", rc, err);
    }
    bool ok = json_is_true(json_object_get(rep, "ok"));
    if (!strcmp(ctx->output, "json")) {
        api_print_json(stdout, rep);
    } else {
        printf("checked %lld events (from checkpoint %lld to %lld): %s\n",
               (long long)json_integer_value(json_object_get(rep, "checked")),
               (long long)json_integer_value(json_object_get(rep, "checkpoint")),
               (long long)json_integer_value(json_object_get(rep, "head")), ok ? "chain intact" : "TAMPERED");
        print_problems(rep);
        const char *head = json_string_value(json_object_get(rep, "head_hash"));
        if (head)
            printf("head hash: %s\n", cli_safe(head));
    }
    json_decref(rep);
    return ok ? 0 : 1;
}

static int audit_export(const struct cli_args *a)
{
    char err[600], path[256];
    int64_t since = 0, until = 0, now = util_now_ms();
    const char *fmt = cli_get(a, "format");
    if (fmt && strcmp(fmt, "jsonl") && strcmp(fmt, "csv"))
        return cli_usage_error(a->cmd, "--format is jsonl or csv");
    if ((cli_get(a, "since") && api_parse_time(cli_get(a, "since"), now, &since) < 0) ||
        (cli_get(a, "until") && api_parse_time(cli_get(a, "until"), now, &until) < 0))
        return cli_usage_error(a->cmd, "--since/--until take ms, an ISO time, or an age like 7d");
    snprintf(path, sizeof path, "/api/v1/audit/export?format=%s&since=%lld%s%lld", fmt ? fmt : "jsonl",
             (long long)since, until ? "&until=" : "&x=", (long long)until);
    struct api_client api;
    int irc = api_client_init(&api, cli_get(a, "server"), err, sizeof err);
    if (irc)
        return cli_fail("audit", irc, err);
    long status = 0;
    int rc = api_stream(&api, path, stdout, &status, err, sizeof err);
    api_client_free(&api);
    if (rc < 0 && status >= 200 && status < 300) {
        /* The server began the export and the transfer did not end cleanly
         * (the server cut it short on a store error, or the connection or
         * the output failed): what was written is not the whole export. */
        char reach[600];
        snprintf(reach, sizeof reach, "cannot reach the server %.200s: ", api.base);
        const char *why = strncmp(err, reach, strlen(reach)) ? err : err + strlen(reach);
        char msg[700];
        fflush(stdout);
        snprintf(msg, sizeof msg, "the export was cut short and is INCOMPLETE (%s); run it again", why);
        return cli_fail("audit", 5, msg);
    }
    if (rc < 0)
        return cli_fail("audit", status ? api_exit_code(status) : 5,
                        status ? "the server refused the export" : err);
    return fflush(stdout) == 0 ? 0 : 1;
}

static int audit_run(const struct cli_args *a, struct cli_context *ctx)
{
    if (!strcmp(a->pos[0], "verify"))
        return audit_verify(a, ctx);
    if (!strcmp(a->pos[0], "export"))
        return audit_export(a);
    return cli_usage_error(a->cmd, "audit takes verify or export");
}

static const struct cli_option audit_options[] = {
    {"since", 0, "TIME", "export events at or after (ms, ISO time, or age like 7d)", CLI_COMPLETE_NONE, NULL},
    {"until", 0, "TIME", "export events before", CLI_COMPLETE_NONE, NULL},
    {"format", 0, "FMT", "export format: jsonl (default) or csv", CLI_COMPLETE_WORDS, "jsonl csv"},
    {"store", 0, "URL", "verify straight on a store (sqlite:PATH or postgres://...)", CLI_COMPLETE_NONE, NULL},
    {"file", 0, "PATH", "verify an exported trail (JSON lines; - for stdin) on its own", CLI_COMPLETE_FILE, NULL},
    CLI_OPTION_SERVER,
    {0},
};

const struct cli_command cli_cmd_audit = {
    .name = "audit",
    .summary = "Verify the audit hash chain or export the audit trail",
    .usage = "verify [--store URL | --file PATH] | export [--since T] [--until T] [--format jsonl|csv] [--server URL]",
    .description = "verify exits 1 and names each edited, deleted, inserted or reordered event.",
    .options = audit_options,
    .arg_complete = CLI_COMPLETE_WORDS,
    .arg_words = "verify export",
    .min_args = 1,
    .max_args = 1,
    .run = audit_run,
};
