/* policy.c — `hoopctl policy check|default|validate|mask`: dry-run the policy
 * engine on SQL, print the built-in default policy, validate a policy file,
 * and try the content detectors on a text. */
#include "hoopctl/cli.h"
#include "hoopctl/policy.h"
#include "hoopctl/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POLICY_MAX_GROUPS 64

static bool want_json(const struct cli_context *ctx)
{
    return ctx->output && strcmp(ctx->output, "json") == 0;
}

static struct policy *load_policy(const struct cli_args *args, int *exit_code)
{
    const char *path = cli_get(args, "policy");
    char err[POLICY_ERR_MAX];
    struct policy *p = path ? policy_load_file(path, err) : policy_load_default();
    if (!p) {
        if (path)
            fprintf(stderr, "hoopctl policy: %s: %s\n", path, err);
        else
            fprintf(stderr, "hoopctl policy: cannot load the default policy\n");
        *exit_code = CLI_EXIT_FAILURE;
    }
    return p;
}

/* The SQL: positionals after the subcommand, else the words after "--". */
static char *join_sql(const struct cli_args *args)
{
    struct buf b = {0};
    for (int i = 1; i < args->npos; i++)
        buf_printf(&b, "%s%s", i > 1 ? " " : "", args->pos[i]);
    for (int i = 0; i < args->nrest; i++)
        buf_printf(&b, "%s%s", b.len ? " " : "", args->rest[i]);
    if (!b.len) {
        buf_free(&b);
        return NULL;
    }
    buf_cstr(&b);
    return (char *)b.data;
}

/* "a,b,c" -> NULL-terminated array pointing into a copy held by *store. */
static int split_groups(const char *list, char **store, const char **out, size_t max)
{
    size_t n = 0;
    *store = NULL;
    out[0] = NULL;
    if (!list || !list[0])
        return 0;
    if (!(*store = strdup(list)))
        return -1;
    char *save = NULL;
    for (char *g = strtok_r(*store, ",", &save); g; g = strtok_r(NULL, ",", &save)) {
        if (n + 1 >= max)
            return -1;
        out[n++] = g;
    }
    out[n] = NULL;
    return 0;
}

static void print_list(const char *label, char **v, size_t n)
{
    printf("  %-10s ", label);
    if (!n)
        fputs("-", stdout);
    for (size_t i = 0; i < n; i++)
        printf("%s%s", i ? ", " : "", v[i]);
    fputc('\n', stdout);
}

static void print_decision_table(const struct policy_decision *d)
{
    printf("decision:    %s\n", policy_action_name(d->action));
    if (d->rule_index >= 0)
        printf("rule:        #%d%s%s\n", d->rule_index, d->rule_name[0] ? " " : "", d->rule_name);
    else
        printf("rule:        %s\n", d->rule_name);
    if (d->message[0])
        printf("message:     %s\n", d->message);
    if (d->reviewers[0])
        printf("reviewers:   %s\n", d->reviewers);
}

static json_t *decision_json(const struct policy_decision *d)
{
    json_t *o = json_object();
    json_object_set_new(o, "action", json_string(policy_action_name(d->action)));
    json_object_set_new(o, "rule_index", json_integer(d->rule_index));
    json_object_set_new(o, "rule_name", json_string(d->rule_name));
    json_object_set_new(o, "message", json_string(d->message));
    if (d->reviewers[0]) { /* an array, as the policy file writes it */
        json_t *groups = json_array();
        for (const char *g = d->reviewers; groups && *g;) {
            size_t n = strcspn(g, ",");
            json_array_append_new(groups, json_stringn(g, n));
            g += n + (g[n] == ',');
        }
        json_object_set_new(o, "reviewers", groups);
    }
    if (d->action == POLICY_MASK)
        json_object_set_new(o, "style", json_string(policy_style_name(d->mask_style)));
    json_object_set_new(o, "statement", json_integer((json_int_t)d->stmt_index));
    return o;
}

static void print_json(json_t *o)
{
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s)
        puts(s);
    free(s);
}

static int run_check(const struct cli_args *args, struct cli_context *ctx)
{
    int code = CLI_EXIT_OK;
    char *sql = join_sql(args);
    if (!sql)
        return cli_usage_error(args->cmd, "policy check needs the SQL to check");
    struct policy *p = load_policy(args, &code);
    if (!p) {
        free(sql);
        return code;
    }
    char *gstore;
    const char *groups[POLICY_MAX_GROUPS];
    if (split_groups(cli_get(args, "groups"), &gstore, groups, POLICY_MAX_GROUPS) < 0) {
        free(gstore);
        free(sql);
        policy_free(p);
        return cli_usage_error(args->cmd, "--groups: too many groups");
    }
    struct policy_session *s = policy_session_new();
    struct policy_decision d;
    struct policy_analysis a;
    if (!s || policy_check(p, s, sql, groups, &d, &a) < 0) {
        fprintf(stderr, "hoopctl policy: out of memory\n");
        code = CLI_EXIT_FAILURE;
        goto out;
    }
    if (want_json(ctx)) {
        json_t *o = json_object();
        json_object_set_new(o, "decision", decision_json(&d));
        json_object_set_new(o, "statements", policy_analysis_to_json(&a));
        /* the text the audit record keeps, as connect and the gateway make it */
        struct policy_redaction red;
        if (policy_audit_redaction(sql, policy_redacts_literals(p), &red) == 0 && red.changed)
            json_object_set_new(o, "redacted", json_string(red.text));
        free(red.text);
        print_json(o);
        json_decref(o);
    } else {
        for (size_t i = 0; i < a.nstmts; i++) {
            const struct policy_stmt *st = &a.stmts[i];
            printf("statement %zu: %s (%s)\n", i + 1, st->kind, st->category);
            print_list("kinds", st->kinds, st->nkinds);
            printf("  %-10s ", "relations");
            if (!st->nrelations)
                fputs("-", stdout);
            for (size_t k = 0; k < st->nrelations; k++)
                printf("%s%s.%s (%s%s)", k ? ", " : "", st->relations[k].schema ? st->relations[k].schema : "public",
                       st->relations[k].name, st->relations[k].write ? "write" : "read",
                       st->relations[k].schema ? "" : ", default schema");
            fputc('\n', stdout);
            print_list("functions", st->functions, st->nfunctions);
            printf("  %-10s ", "facts");
            int nf = 0;
            for (unsigned b = 1; b && b <= POLICY_FACT_LAST; b <<= 1)
                if (st->facts & b)
                    printf("%s%s", nf++ ? ", " : "", policy_fact_name(b));
            puts(nf ? "" : "-");
            if (st->fingerprint[0])
                printf("  %-10s %s\n", "fingerprint", st->fingerprint);
        }
        print_decision_table(&d);
    }
    if (d.action == POLICY_DENY || d.action == POLICY_REVIEW) {
        code = CLI_EXIT_DENIED;
        if (d.rule_index == POLICY_RULE_PARSE_ERROR && !want_json(ctx))
            fprintf(stderr, "hoopctl policy: refused: %s\n", d.message);
    }
    policy_analysis_free(&a);
out:
    policy_session_free(s);
    free(gstore);
    free(sql);
    policy_free(p);
    return code;
}

static int run_default(const struct cli_args *args, struct cli_context *ctx)
{
    (void)ctx;
    if (args->npos > 1)
        return cli_usage_error(args->cmd, "policy default takes no arguments");
    json_t *doc = policy_default_json();
    if (!doc) {
        fprintf(stderr, "hoopctl policy: cannot build the default policy\n");
        return CLI_EXIT_FAILURE;
    }
    print_json(doc);
    json_decref(doc);
    return CLI_EXIT_OK;
}

static int run_validate(const struct cli_args *args, struct cli_context *ctx)
{
    const char *path = args->npos == 2 ? args->pos[1] : cli_get(args, "policy");
    if (!path || args->npos > 2)
        return cli_usage_error(args->cmd, "policy validate needs one policy file");
    char err[POLICY_ERR_MAX];
    struct policy *p = policy_load_file(path, err);
    if (want_json(ctx)) {
        json_t *o = json_pack("{s:s, s:b}", "file", path, "valid", p != NULL);
        if (!p)
            json_object_set_new(o, "error", json_string(err));
        print_json(o);
        json_decref(o);
    } else if (p) {
        printf("%s: valid\n", path);
    }
    if (!p) {
        if (!want_json(ctx))
            fprintf(stderr, "%s: %s\n", path, err);
        return CLI_EXIT_FAILURE;
    }
    policy_free(p);
    return CLI_EXIT_OK;
}

static int run_mask(const struct cli_args *args, struct cli_context *ctx)
{
    int code = CLI_EXIT_OK;
    char *text = join_sql(args);
    if (!text)
        return cli_usage_error(args->cmd, "policy mask needs a text");
    enum policy_mask_style style = POLICY_STYLE_PARTIAL;
    const char *st = cli_get(args, "style");
    if (st) {
        if (strcmp(st, "full") == 0)
            style = POLICY_STYLE_FULL;
        else if (strcmp(st, "hash") == 0)
            style = POLICY_STYLE_HASH;
        else if (strcmp(st, "partial") != 0) {
            free(text);
            return cli_usage_error(args->cmd, "--style must be full, partial or hash");
        }
    }
    /* Every detector, with the chosen style, through the same code the
     * gateway uses for a text column. */
    char err[POLICY_ERR_MAX];
    char doc[128];
    snprintf(doc, sizeof(doc), "{\"masking\":{\"detectors\":\"all\",\"style\":\"%s\"}}", policy_style_name(style));
    json_t *j = json_loads(doc, 0, NULL);
    struct policy *p = j ? policy_load_json(j, err) : NULL;
    json_decref(j);
    if (!p) {
        free(text);
        fprintf(stderr, "hoopctl policy: cannot build the detector policy\n");
        return CLI_EXIT_FAILURE;
    }
    struct policy_column_desc col = {.name = "value", .type_oid = 25, .format = 0};
    struct policy_mask_plan plan;
    uint8_t *out = NULL;
    size_t outlen = 0;
    int r = -1;
    if (policy_mask_plan_build(p, NULL, NULL, POLICY_ALLOW, POLICY_STYLE_FULL, &col, 1, &plan, err) == 0) {
        r = policy_mask_value(p, &plan, 0, (const uint8_t *)text, strlen(text), &out, &outlen, err);
        if (r >= 0) {
            const char *masked = r == 1 ? (const char *)out : text;
            size_t mlen = r == 1 ? outlen : strlen(text);
            if (want_json(ctx)) {
                json_t *o = json_object();
                json_object_set_new(o, "masked", json_stringn(masked, mlen));
                json_object_set_new(o, "counters", policy_mask_counters_json(&plan));
                print_json(o);
                json_decref(o);
            } else {
                printf("%.*s\n", (int)mlen, masked);
            }
        }
        policy_mask_plan_free(&plan);
    }
    if (r < 0) {
        fprintf(stderr, "hoopctl policy: %s\n", err);
        code = CLI_EXIT_FAILURE;
    }
    free(out);
    free(text);
    policy_free(p);
    return code;
}

static int policy_run(const struct cli_args *args, struct cli_context *ctx)
{
    const char *sub = args->pos[0];
    if (strcmp(sub, "check") == 0)
        return run_check(args, ctx);
    if (strcmp(sub, "default") == 0)
        return run_default(args, ctx);
    if (strcmp(sub, "validate") == 0)
        return run_validate(args, ctx);
    if (strcmp(sub, "mask") == 0)
        return run_mask(args, ctx);
    return cli_usage_error(args->cmd, "the subcommand must be check, default, validate or mask");
}

static const struct cli_option policy_options[] = {
    {"policy", 'p', "FILE", "policy file (JSON); default: the built-in default policy", CLI_COMPLETE_FILE, NULL},
    {"groups", 'g', "LIST", "the user's groups, comma-separated (check)", CLI_COMPLETE_NONE, NULL},
    {"style", 's', "STYLE", "masking style for mask: full, partial or hash", CLI_COMPLETE_WORDS,
     "full partial hash"},
    {0},
};

static const struct cli_verb_complete policy_verb_complete[] = {
    {"validate", CLI_COMPLETE_FILE, NULL},
    {"check default mask", CLI_COMPLETE_NONE, NULL},
    {0},
};

const struct cli_command cli_cmd_policy = {
    .name = "policy",
    .summary = "Dry-run the policy engine: classify SQL, validate rules, try masking",
    .usage = "check [--policy FILE] [--groups LIST] SQL | default | validate FILE | mask [--style STYLE] TEXT",
    .description = "check prints each statement's classification and the decision; exit 0 when allowed,\n"
                   "4 when denied or held for review. Put SQL that starts with '-' after \"--\".\n"
                   "default prints the built-in default policy; validate reports the first error with\n"
                   "the rule index and field; mask runs the content detectors on a text.",
    .options = policy_options,
    .arg_complete = CLI_COMPLETE_WORDS,
    .arg_words = "check default validate mask",
    .verb_complete = policy_verb_complete,
    .min_args = 1,
    .max_args = -1,
    .run = policy_run,
};
