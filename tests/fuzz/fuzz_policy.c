/* fuzz_policy.c — libFuzzer target for the policy engine on hostile input:
 * the SQL a client sends (classification through libpg_query and the tree
 * walk, the decision, literal redaction, prepared statements) and the values
 * a result carries (detectors, mask styles, COPY rows, typed DataRow values).
 * The first input byte picks what the rest is fed to. */
#include "hoopctl/policy.h"
#include "hoopctl/util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The default rules plus a column rule and every detector, so that every
 * masking path has work to do. */
static const char policy_doc[] =
    "{\"masking\": {\"hash_key\": \"fuzz-key-0123456789\","
    " \"columns\": [{\"column\": \"public.users.email\", \"style\": \"full\"},"
    "               {\"column\": \"*.users.card\", \"style\": \"partial\"},"
    "               {\"column\": \"*.users.ssn\", \"style\": \"hash\"}],"
    " \"detectors\": [\"email\", \"phone\", \"credit_card\", \"ssn\", \"iban\", \"ip\", \"secret\"]}}";

static struct policy *fuzz_policy(void)
{
    static struct policy *p;
    if (!p) {
        char err[POLICY_ERR_MAX];
        json_t *doc = json_loads(policy_doc, 0, NULL), *def = policy_default_json();
        json_t *rules = json_object_get(def, "rules");
        if (doc && rules)
            json_object_set(doc, "rules", rules);
        p = doc ? policy_load_json(doc, err) : NULL;
        json_decref(doc);
        json_decref(def);
        if (!p) {
            fprintf(stderr, "fuzz_policy: the policy does not load: %s\n", doc ? err : "bad JSON");
            abort();
        }
    }
    return p;
}

/* libpg_query 15-4.0.0 leaks one byte (a strdup in pg_query_raw_parse) per
 * plpgsql body that fails to parse; a library leak, not ours. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:pg_query_raw_parse\n";
}

static const char *const groups[] = {"eng", NULL};

/* A result of three columns (text, int4 and bytea, text or binary) masked
 * with the plan built for stmt; the values are slices of data. */
static void mask_result(struct policy *p, const struct policy_stmt *stmt, enum policy_action action,
                        const uint8_t *data, size_t len)
{
    struct policy_column_desc cols[3] = {
        {"email", 0, 0, 25, 0},
        {"n", 0, 0, 23, len & 1},
        {"b", 0, 0, 17, (len >> 1) & 1},
    };
    struct policy_mask_plan plan;
    char err[POLICY_ERR_MAX];
    if (policy_mask_plan_build(p, NULL, stmt, action, POLICY_STYLE_PARTIAL, cols, 3, &plan, err) != 0)
        return;
    size_t third = len / 3;
    for (size_t c = 0; c < 3; c++) {
        uint8_t *out = NULL;
        size_t outlen = 0;
        if (policy_mask_value(p, &plan, c, data + c * third, third, &out, &outlen, err) == 1)
            free(out);
    }
    json_decref(policy_mask_counters_json(&plan));
    policy_mask_plan_free(&plan);
}

static void fuzz_sql(struct policy *p, const char *sql, const uint8_t *data, size_t len)
{
    struct policy_session *s = policy_session_new();
    struct policy_decision d;
    struct policy_analysis a = {0};
    if (s && policy_check(p, s, sql, groups, &d, &a) == 0) {
        json_decref(policy_analysis_to_json(&a));
        for (size_t i = 0; i < a.nstmts; i++)
            mask_result(p, &a.stmts[i], d.action, data, len);
    }
    policy_analysis_free(&a);
    char err[POLICY_ERR_MAX];
    free(policy_redact_literals(sql, err));
    for (int mode = POLICY_REDACT_REVIEW; mode <= POLICY_REDACT_LITERALS; mode++) { /* what the audit and reviews keep */
        struct policy_redaction r;
        if (policy_redact(sql, (enum policy_redact_mode)mode, &r) == 0) {
            policy_param_is_secret(&r, 3);
            free(r.text);
        }
    }
    policy_value_holds_secret(sql, strlen(sql));
    /* The same text through Parse/Execute of a named and the unnamed statement. */
    if (s && policy_session_parse(p, s, "s1", sql, err) == 0) {
        policy_check_prepared(p, s, "s1", groups, &d);
        policy_session_close(s, "s1");
        policy_check_prepared(p, s, "s1", groups, &d);
    }
    if (s && policy_session_parse(NULL, s, "", sql, err) == 0)
        policy_check_prepared(p, s, "", groups, &d);
    policy_session_free(s);
}

static void fuzz_values(struct policy *p, const uint8_t *data, size_t len)
{
    struct policy_detection found[16];
    policy_detect((const char *)data, len, POLICY_DETECT_ALL, found, 16);
    for (int style = POLICY_STYLE_FULL; style <= POLICY_STYLE_HASH; style++) {
        size_t n;
        free(policy_mask_text(p, (enum policy_mask_style)style, (const char *)data, len, &n));
    }
    mask_result(p, NULL, POLICY_MASK, data, len);
}

static void fuzz_copy(struct policy *p, const uint8_t *data, size_t len)
{
    char err[POLICY_ERR_MAX];
    struct policy_analysis a = {0};
    /* text or CSV rows, by the input's length */
    if (policy_classify(len % 2 ? "copy users to stdout csv" : "copy users to stdout", NULL, &a, err) != 0 ||
        a.nstmts != 1)
        abort(); /* a fixed statement that must classify */
    struct policy_mask_plan plan;
    if (policy_mask_plan_build_copy(p, &a.stmts[0], POLICY_ALLOW, 1 + len % 5, &plan, err) == 0) {
        struct buf out = {0};
        policy_mask_copy_row(p, &plan, data, len, &out, err);
        buf_free(&out);
        policy_mask_plan_free(&plan);
    }
    policy_analysis_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct policy *p = fuzz_policy();
    uint8_t op = data[0];
    data++;
    size--;
    switch (op % 3) {
    case 0: {
        char *sql = malloc(size + 1);
        if (!sql)
            return 0;
        memcpy(sql, data, size);
        sql[size] = 0;
        fuzz_sql(p, sql, data, size);
        free(sql);
        break;
    }
    case 1:
        fuzz_values(p, data, size);
        break;
    default:
        fuzz_copy(p, data, size);
        break;
    }
    return 0;
}
