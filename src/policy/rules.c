/* rules.c — policy rules as JSON data: load and validate (errors name the rule
 * index and field), the built-in default policy, first-match decisions, and
 * policy_check, the gateway's cached entry point. */
#include "policy_internal.h"

#include <fnmatch.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The default policy for new connections. Kept as JSON so that
 * `hoopctl policy default` prints exactly what the engine loads. */
static const char default_policy_json[] =
    "{\n"
    "  \"version\": 1,\n"
    "  \"audit\": true,\n"
    "  \"redact_literals\": false,\n"
    "  \"default\": {\"action\": \"allow\"},\n"
    "  \"rules\": [\n"
    "    {\"name\": \"deny-destructive-ddl\",\n"
    "     \"match\": {\"kinds\": [\"DROP_TABLE\", \"DROP_FOREIGN_TABLE\", \"DROP_SCHEMA\", \"DROP_DATABASE\",\n"
    "                         \"TRUNCATE\", \"ALTER_TABLE\", \"ALTER_FOREIGN_TABLE\", \"ALTER_SCHEMA\",\n"
    "                         \"ALTER_DATABASE\", \"DROP_OWNED\", \"DROP_EXTENSION\"],\n"
    "               \"except_facts\": [\"temp_only\"]},\n"
    "     \"action\": \"deny\",\n"
    "     \"message\": \"DROP, TRUNCATE and ALTER of tables, schemas and databases are not allowed on this connection (nor what reaches tables: ALTER INDEX/VIEW ... RENAME, ALTER EXTENSION ... ADD, DROP EXTENSION); for a temporary table, name it pg_temp.name\"},\n"
    "    {\"name\": \"deny-drop-cascade\",\n"
    "     \"match\": {\"kinds\": [\"DROP_*\"], \"facts\": [\"cascade\"]},\n"
    "     \"action\": \"deny\",\n"
    "     \"message\": \"DROP ... CASCADE may drop tables that depend on the object\"},\n"
    "    {\"name\": \"deny-alter-system\",\n"
    "     \"match\": {\"kinds\": [\"ALTER_SYSTEM\", \"LOAD\"]},\n"
    "     \"action\": \"deny\",\n"
    "     \"message\": \"server configuration cannot be changed through hoopctl\"},\n"
    "    {\"name\": \"deny-role-changes\",\n"
    "     \"match\": {\"kinds\": [\"CREATE_ROLE\", \"ALTER_ROLE\", \"DROP_ROLE\", \"GRANT_ROLE\", \"REVOKE_ROLE\",\n"
    "                         \"SET_ROLE\", \"SET_SESSION_AUTHORIZATION\", \"REASSIGN_OWNED\"]},\n"
    "     \"action\": \"deny\",\n"
    "     \"message\": \"roles and the session's identity cannot be changed through hoopctl\"},\n"
    "    {\"name\": \"deny-set-config\",\n"
    "     \"match\": {\"facts\": [\"unknown_setting\"]},\n"
    "     \"action\": \"deny\",\n"
    "     \"message\": \"set_config() with a setting name that is not written out (or a write to pg_settings)"
    " can change the session's role; name the setting, or use SET\"},\n"
    "    {\"name\": \"deny-parser-options\",\n"
    "     \"match\": {\"kinds\": [\"SET_PARSER_OPTION\"]},\n"
    "     \"action\": \"deny\",\n"
    "     \"message\": \"standard_conforming_strings and backslash_quote must keep their defaults, and the client"
    " encoding must be one whose characters cannot hide a quote\"},\n"
    "    {\"name\": \"review-no-where\",\n"
    "     \"match\": {\"facts\": [\"no_where\"]},\n"
    "     \"action\": \"review\",\n"
    "     \"reviewers\": [\"dba\"],\n"
    "     \"message\": \"UPDATE or DELETE without WHERE needs an approval\"},\n"
    "    {\"name\": \"review-code\",\n"
    "     \"match\": {\"facts\": [\"runs_code\"]},\n"
    "     \"action\": \"review\",\n"
    "     \"reviewers\": [\"dba\"],\n"
    "     \"message\": \"statements that run code (DO, CALL, functions, extensions) need an approval\"},\n"
    "    {\"name\": \"review-server-files\",\n"
    "     \"match\": {\"facts\": [\"copy_server_file\"]},\n"
    "     \"action\": \"review\",\n"
    "     \"reviewers\": [\"dba\"],\n"
    "     \"message\": \"server files and programs (COPY, pg_read_file, lo_export) need an approval\"}\n"
    "  ]\n"
    "}\n";

json_t *policy_default_json(void)
{
    return json_loads(default_policy_json, 0, NULL);
}

void policy_doc_digest(const json_t *doc, char out[65])
{
    char *s = json_is_object(doc) ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    const char *t = s ? s : "{}";
    util_sha256_hex(t, strlen(t), out);
    free(s);
}

bool policy_glob(const char *pattern, const char *s)
{
    return fnmatch(pattern, s, 0) == 0;
}

static const char *const action_names[] = {"allow", "mask", "review", "deny"};
static const char *const style_names[] = {"full", "partial", "hash"};

const char *policy_action_name(enum policy_action a)
{
    return (unsigned)a < 4 ? action_names[a] : "?";
}

const char *policy_style_name(enum policy_mask_style s)
{
    return (unsigned)s < 3 ? style_names[s] : "?";
}

static unsigned fact_by_name(const char *name)
{
    for (unsigned b = 1; b && b <= POLICY_FACT_LAST; b <<= 1)
        if (strcmp(policy_fact_name(b), name) == 0)
            return b;
    return 0;
}

/* ---- loading ---- */

static void match_free(struct policy_match *m)
{
    policy_strv_free(m->kinds, m->nkinds);
    policy_strv_free(m->categories, m->ncategories);
    policy_strv_free(m->relations, m->nrelations);
    policy_strv_free(m->writes, m->nwrites);
    policy_strv_free(m->functions, m->nfunctions);
    policy_strv_free(m->groups, m->ngroups);
    policy_strv_free(m->except_groups, m->nexcept_groups);
}

void policy_free(struct policy *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nrules; i++)
        match_free(&p->rules[i].match);
    free(p->rules);
    for (size_t i = 0; i < p->ncolumns; i++)
        free(p->columns[i].pattern);
    free(p->columns);
    policy_cache_destroy(&p->cache);
    policy_hmac_free(p);
    util_secure_zero(p->hash_key, sizeof(p->hash_key));
    free(p);
}

/* A non-empty array of non-empty strings at `where`. */
static int load_strings(json_t *v, const char *where, char ***out, size_t *n, char err[POLICY_ERR_MAX])
{
    if (!json_is_array(v) || json_array_size(v) == 0) {
        snprintf(err, POLICY_ERR_MAX, "%s: must be a non-empty array of strings", where);
        return -1;
    }
    *out = calloc(json_array_size(v), sizeof(char *));
    if (!*out) {
        snprintf(err, POLICY_ERR_MAX, "out of memory");
        return -1;
    }
    size_t i;
    json_t *s;
    json_array_foreach(v, i, s) {
        const char *str = json_string_value(s);
        if (!str || !str[0] || strlen(str) > 3 * POLICY_NAME_MAX) {
            snprintf(err, POLICY_ERR_MAX, "%s[%zu]: must be a non-empty string of at most %d bytes",
                     where, i, 3 * POLICY_NAME_MAX);
            return -1;
        }
        if (!((*out)[*n] = strdup(str))) {
            snprintf(err, POLICY_ERR_MAX, "out of memory");
            return -1;
        }
        (*n)++;
    }
    return 0;
}

static int check_keys(json_t *obj, const char *where, const char *const *allowed, char err[POLICY_ERR_MAX])
{
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val) {
        size_t i;
        for (i = 0; allowed[i]; i++)
            if (strcmp(key, allowed[i]) == 0)
                break;
        if (!allowed[i]) {
            snprintf(err, POLICY_ERR_MAX, "%s.%s: unknown field", where, key);
            return -1;
        }
    }
    return 0;
}

static int load_style(json_t *v, const char *where, enum policy_mask_style *out, char err[POLICY_ERR_MAX])
{
    const char *s = json_string_value(v);
    for (int i = 0; s && i < 3; i++)
        if (strcmp(s, style_names[i]) == 0) {
            *out = (enum policy_mask_style)i;
            return 0;
        }
    snprintf(err, POLICY_ERR_MAX, "%s: must be \"full\", \"partial\" or \"hash\"", where);
    return -1;
}

/* m.key, a list of fact names, into *bits. */
static int load_facts(json_t *m, const char *key, const char *where, unsigned *bits, char err[POLICY_ERR_MAX])
{
    json_t *facts = json_object_get(m, key);
    if (!facts)
        return 0;
    if (!json_is_array(facts) || json_array_size(facts) == 0) {
        snprintf(err, POLICY_ERR_MAX, "%s.%s: must be a non-empty array of fact names", where, key);
        return -1;
    }
    size_t i;
    json_t *f;
    json_array_foreach(facts, i, f) {
        unsigned bit = json_is_string(f) ? fact_by_name(json_string_value(f)) : 0;
        if (!bit) {
            snprintf(err, POLICY_ERR_MAX, "%s.%s[%zu]: unknown fact (see hoopctl-policy(5))", where, key, i);
            return -1;
        }
        *bits |= bit;
    }
    return 0;
}

static int load_match(json_t *m, const char *where, struct policy_match *out, char err[POLICY_ERR_MAX])
{
    static const char *const keys[] = {"kinds", "categories", "relations", "writes", "functions",
                                       "groups", "except_groups", "facts", "except_facts", "no_where",
                                       "runs_code", NULL};
    static const char *const categories[] = {"data", "ddl", "system", "session", "code",
                                             "prepared", "transaction", "utility", NULL};
    char w[128];
    if (!json_is_object(m)) {
        snprintf(err, POLICY_ERR_MAX, "%s: must be an object", where);
        return -1;
    }
    if (check_keys(m, where, keys, err) < 0)
        return -1;
    struct { const char *key; char ***v; size_t *n; } lists[] = {
        {"kinds", &out->kinds, &out->nkinds},
        {"categories", &out->categories, &out->ncategories},
        {"relations", &out->relations, &out->nrelations},
        {"writes", &out->writes, &out->nwrites},
        {"functions", &out->functions, &out->nfunctions},
        {"groups", &out->groups, &out->ngroups},
        {"except_groups", &out->except_groups, &out->nexcept_groups},
    };
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
        json_t *v = json_object_get(m, lists[i].key);
        snprintf(w, sizeof(w), "%s.%s", where, lists[i].key);
        if (v && load_strings(v, w, lists[i].v, lists[i].n, err) < 0)
            return -1;
    }
    for (size_t i = 0; i < out->nkinds; i++)
        for (const char *c = out->kinds[i]; *c; c++)
            if (!((*c >= 'A' && *c <= 'Z') || *c == '_' || *c == '*' || *c == '?' || *c == '[' ||
                  *c == ']')) {
                snprintf(err, POLICY_ERR_MAX, "%s.kinds[%zu]: \"%s\" is not a command kind "
                         "(upper case, e.g. DROP_TABLE or DROP_*)", where, i, out->kinds[i]);
                return -1;
            }
    for (size_t i = 0; i < out->nkinds; i++)
        if (!policy_kind_pattern_known(out->kinds[i])) {
            snprintf(err, POLICY_ERR_MAX, "%s.kinds[%zu]: \"%s\" matches no command kind (see `hoopctl "
                     "policy check SQL` for a statement's kinds)", where, i, out->kinds[i]);
            return -1;
        }
    for (size_t i = 0; i < out->ncategories; i++) {
        size_t k;
        for (k = 0; categories[k] && strcmp(categories[k], out->categories[i]) != 0; k++)
            ;
        if (!categories[k]) {
            snprintf(err, POLICY_ERR_MAX, "%s.categories[%zu]: unknown category \"%s\"", where, i,
                     out->categories[i]);
            return -1;
        }
    }
    if (load_facts(m, "facts", where, &out->facts, err) < 0 ||
        load_facts(m, "except_facts", where, &out->except_facts, err) < 0)
        return -1;
    static const struct { const char *key; unsigned bit; } flags[] = {
        {"no_where", POLICY_FACT_NO_WHERE}, {"runs_code", POLICY_FACT_RUNS_CODE}};
    for (size_t i = 0; i < 2; i++) {
        json_t *v = json_object_get(m, flags[i].key);
        if (!v)
            continue;
        if (!json_is_boolean(v)) {
            snprintf(err, POLICY_ERR_MAX, "%s.%s: must be true or false", where, flags[i].key);
            return -1;
        }
        if (json_is_true(v))
            out->facts |= flags[i].bit;
    }
    return 0;
}

static int load_text(json_t *v, const char *where, char *out, size_t outlen, char err[POLICY_ERR_MAX])
{
    const char *s = json_string_value(v);
    if (!s || strlen(s) >= outlen) {
        snprintf(err, POLICY_ERR_MAX, "%s: must be a string of at most %zu bytes", where, outlen - 1);
        return -1;
    }
    snprintf(out, outlen, "%s", s);
    return 0;
}

/* action, message, reviewers, style of a rule or of "default". */
static int load_outcome(json_t *r, const char *where, struct policy_rule *out, char err[POLICY_ERR_MAX])
{
    char w[128];
    const char *action = json_string_value(json_object_get(r, "action"));
    int a = -1;
    for (int i = 0; action && i < 4; i++)
        if (strcmp(action, action_names[i]) == 0)
            a = i;
    if (a < 0) {
        snprintf(err, POLICY_ERR_MAX, "%s.action: must be \"allow\", \"deny\", \"review\" or \"mask\"", where);
        return -1;
    }
    out->action = (enum policy_action)a;
    json_t *msg = json_object_get(r, "message");
    snprintf(w, sizeof(w), "%s.message", where);
    if (msg && load_text(msg, w, out->message, sizeof(out->message), err) < 0)
        return -1;
    json_t *rev = json_object_get(r, "reviewers");
    if (out->action == POLICY_REVIEW) {
        if (!json_is_array(rev) || json_array_size(rev) == 0) {
            snprintf(err, POLICY_ERR_MAX, "%s.reviewers: a review needs a non-empty array of groups", where);
            return -1;
        }
    } else if (rev) {
        snprintf(err, POLICY_ERR_MAX, "%s.reviewers: only a review has reviewers", where);
        return -1;
    }
    size_t i, o = 0;
    json_t *g;
    json_array_foreach(rev, i, g) {
        const char *s = json_string_value(g);
        if (!s || !s[0] || strchr(s, ',')) {
            snprintf(err, POLICY_ERR_MAX, "%s.reviewers[%zu]: must be a group name", where, i);
            return -1;
        }
        int n = snprintf(out->reviewers + o, sizeof(out->reviewers) - o, "%s%s", o ? "," : "", s);
        if (n < 0 || (size_t)n >= sizeof(out->reviewers) - o) {
            snprintf(err, POLICY_ERR_MAX, "%s.reviewers: too long", where);
            return -1;
        }
        o += (size_t)n;
    }
    json_t *style = json_object_get(r, "style");
    snprintf(w, sizeof(w), "%s.style", where);
    if (style && load_style(style, w, &out->style, err) < 0)
        return -1;
    if (out->action == POLICY_DENY && !out->message[0])
        snprintf(out->message, sizeof(out->message), "denied by policy");
    return 0;
}

static int load_masking(struct policy *p, json_t *m, char err[POLICY_ERR_MAX])
{
    static const char *const keys[] = {"columns", "detectors", "style", "hash_key", NULL};
    static const char *const col_keys[] = {"column", "style", NULL};
    if (!json_is_object(m)) {
        snprintf(err, POLICY_ERR_MAX, "masking: must be an object");
        return -1;
    }
    if (check_keys(m, "masking", keys, err) < 0)
        return -1;
    p->detector_style = POLICY_STYLE_PARTIAL;
    if (json_object_get(m, "style") && load_style(json_object_get(m, "style"), "masking.style",
                                                  &p->detector_style, err) < 0)
        return -1;
    json_t *cols = json_object_get(m, "columns");
    if (cols) {
        if (!json_is_array(cols)) {
            snprintf(err, POLICY_ERR_MAX, "masking.columns: must be an array");
            return -1;
        }
        p->columns = calloc(json_array_size(cols) + 1, sizeof(*p->columns));
        if (!p->columns) {
            snprintf(err, POLICY_ERR_MAX, "out of memory");
            return -1;
        }
        size_t i;
        json_t *c;
        json_array_foreach(cols, i, c) {
            char w[64];
            snprintf(w, sizeof(w), "masking.columns[%zu]", i);
            if (!json_is_object(c)) {
                snprintf(err, POLICY_ERR_MAX, "%s: must be an object", w);
                return -1;
            }
            if (check_keys(c, w, col_keys, err) < 0)
                return -1;
            const char *pat = json_string_value(json_object_get(c, "column"));
            const char *d1 = pat ? strchr(pat, '.') : NULL;
            const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
            if (!pat || !d1 || !d2 || strchr(d2 + 1, '.') || d1 == pat || d2 == d1 + 1 || !d2[1]) {
                snprintf(err, POLICY_ERR_MAX, "%s.column: must be a schema.table.column glob", w);
                return -1;
            }
            struct policy_column_rule *cr = &p->columns[p->ncolumns];
            cr->style = POLICY_STYLE_FULL;
            char ws[80];
            snprintf(ws, sizeof(ws), "%s.style", w);
            if (json_object_get(c, "style") && load_style(json_object_get(c, "style"), ws, &cr->style, err) < 0)
                return -1;
            if (!(cr->pattern = strdup(pat))) {
                snprintf(err, POLICY_ERR_MAX, "out of memory");
                return -1;
            }
            p->ncolumns++;
        }
    }
    json_t *det = json_object_get(m, "detectors");
    if (det) {
        if (json_is_string(det) && strcmp(json_string_value(det), "all") == 0)
            p->detectors = POLICY_DETECT_ALL;
        else if (json_is_array(det)) {
            size_t i;
            json_t *d;
            json_array_foreach(det, i, d) {
                unsigned bit = 0;
                for (unsigned b = 0; b < POLICY_DETECT_COUNT; b++)
                    if (json_is_string(d) && strcmp(json_string_value(d),
                                                    policy_detector_name((enum policy_detector)(1u << b))) == 0)
                        bit = 1u << b;
                if (!bit) {
                    snprintf(err, POLICY_ERR_MAX, "masking.detectors[%zu]: unknown detector (known: email, "
                             "phone, credit_card, ssn, iban, ip, secret)", i);
                    return -1;
                }
                p->detectors |= bit;
            }
        } else {
            snprintf(err, POLICY_ERR_MAX, "masking.detectors: must be \"all\" or an array of detector names");
            return -1;
        }
    }
    json_t *key = json_object_get(m, "hash_key");
    if (key) {
        const char *k = json_string_value(key);
        if (!k || strlen(k) < 16) {
            snprintf(err, POLICY_ERR_MAX, "masking.hash_key: must be a string of at least 16 characters");
            return -1;
        }
        /* The pseudonym key is SHA-256 of the configured string. */
        char hex[65];
        util_sha256_hex(k, strlen(k), hex);
        util_hex_decode(hex, p->hash_key, sizeof(p->hash_key));
        util_secure_zero(hex, sizeof(hex));
        p->hash_key_len = sizeof(p->hash_key);
    }
    return 0;
}

struct policy *policy_load_json(const json_t *cdoc, char err[POLICY_ERR_MAX])
{
    static const char *const top_keys[] = {"version", "audit", "redact_literals", "default", "rules",
                                           "masking", NULL};
    static const char *const rule_keys[] = {"name", "match", "action", "message", "reviewers", "style", NULL};
    json_t *doc = (json_t *)cdoc;
    err[0] = '\0';
    if (!json_is_object(doc)) {
        snprintf(err, POLICY_ERR_MAX, "policy: must be a JSON object");
        return NULL;
    }
    struct policy *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, POLICY_ERR_MAX, "out of memory");
        return NULL;
    }
    policy_cache_init(&p->cache);
    p->detector_style = POLICY_STYLE_PARTIAL;
    if (check_keys(doc, "policy", top_keys, err) < 0)
        goto fail;
    json_t *v = json_object_get(doc, "version");
    if (v && json_integer_value(v) != 1) {
        snprintf(err, POLICY_ERR_MAX, "version: only version 1 is known");
        goto fail;
    }
    static const char *const flag_keys[] = {"audit", "redact_literals"};
    bool audit = true;
    bool *flag_dst[] = {&audit, &p->redact_literals};
    for (int i = 0; i < 2; i++) {
        json_t *f = json_object_get(doc, flag_keys[i]);
        if (!f)
            continue;
        if (!json_is_boolean(f)) {
            snprintf(err, POLICY_ERR_MAX, "%s: must be true or false", flag_keys[i]);
            goto fail;
        }
        *flag_dst[i] = json_is_true(f);
    }
    /* Every statement is audited; a policy cannot turn that off, and one
     * that says so must not load as if it had. */
    if (!audit) {
        snprintf(err, POLICY_ERR_MAX, "audit: false is not supported: every statement is audited "
                                      "(redact_literals keeps literals and parameter values out of the record)");
        goto fail;
    }
    json_t *def = json_object_get(doc, "default");
    snprintf(p->fallback.name, sizeof(p->fallback.name), "default");
    if (def) {
        static const char *const def_keys[] = {"action", "message", "reviewers", "style", NULL};
        if (!json_is_object(def)) {
            snprintf(err, POLICY_ERR_MAX, "default: must be an object");
            goto fail;
        }
        if (check_keys(def, "default", def_keys, err) < 0 || load_outcome(def, "default", &p->fallback, err) < 0)
            goto fail;
    }
    json_t *rules = json_object_get(doc, "rules");
    if (rules && !json_is_array(rules)) {
        snprintf(err, POLICY_ERR_MAX, "rules: must be an array");
        goto fail;
    }
    p->rules = calloc(json_array_size(rules) + 1, sizeof(*p->rules));
    if (!p->rules) {
        snprintf(err, POLICY_ERR_MAX, "out of memory");
        goto fail;
    }
    size_t i;
    json_t *r;
    json_array_foreach(rules, i, r) {
        char where[64];
        snprintf(where, sizeof(where), "rules[%zu]", i);
        struct policy_rule *rule = &p->rules[i];
        p->nrules = i + 1;
        if (!json_is_object(r)) {
            snprintf(err, POLICY_ERR_MAX, "%s: must be an object", where);
            goto fail;
        }
        if (check_keys(r, where, rule_keys, err) < 0)
            goto fail;
        json_t *name = json_object_get(r, "name");
        char w[96];
        snprintf(w, sizeof(w), "%s.name", where);
        if (name && load_text(name, w, rule->name, sizeof(rule->name), err) < 0)
            goto fail;
        snprintf(w, sizeof(w), "%s.match", where);
        json_t *m = json_object_get(r, "match");
        if (!m) {
            snprintf(err, POLICY_ERR_MAX, "%s: missing (use {} to match every statement)", w);
            goto fail;
        }
        if (load_match(m, w, &rule->match, err) < 0 || load_outcome(r, where, rule, err) < 0)
            goto fail;
    }
    json_t *masking = json_object_get(doc, "masking");
    if (masking && load_masking(p, masking, err) < 0)
        goto fail;
    if (!p->hash_key_len) {
        /* No configured key: a random one, stable for this policy's lifetime. */
        if (util_random_bytes(p->hash_key, sizeof(p->hash_key)) < 0) {
            snprintf(err, POLICY_ERR_MAX, "cannot get random bytes for the pseudonym key");
            goto fail;
        }
        p->hash_key_len = sizeof(p->hash_key);
    }
    if (policy_hmac_init(p) < 0) {
        snprintf(err, POLICY_ERR_MAX, "cannot set up HMAC-SHA256 for the pseudonym key");
        goto fail;
    }
    return p;
fail:
    policy_free(p);
    return NULL;
}

struct policy *policy_load_file(const char *path, char err[POLICY_ERR_MAX])
{
    /* Errors name no path: the caller says which file. */
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, POLICY_ERR_MAX, "cannot read it: %s", strerror(errno));
        return NULL;
    }
    json_error_t jerr;
    json_t *doc = json_loadf(f, 0, &jerr);
    fclose(f);
    if (!doc) {
        snprintf(err, POLICY_ERR_MAX, "not valid JSON: line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    struct policy *p = policy_load_json(doc, err);
    json_decref(doc);
    return p;
}

struct policy *policy_load_default(void)
{
    char err[POLICY_ERR_MAX];
    json_t *doc = policy_default_json();
    struct policy *p = doc ? policy_load_json(doc, err) : NULL;
    json_decref(doc);
    return p;
}

bool policy_redacts_literals(const struct policy *p)
{
    return p->redact_literals;
}

/* ---- matching ---- */

static bool any_glob(char **pats, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (policy_glob(pats[i], s))
            return true;
    return false;
}

static bool in_groups(char **want, size_t n, const char *const *groups)
{
    for (size_t i = 0; groups && groups[i]; i++)
        for (size_t k = 0; k < n; k++)
            if (strcmp(want[k], groups[i]) == 0)
                return true;
    return false;
}

/* A (possibly qualified) name against globs. A qualified name also matches
 * an unqualified pattern by its last part ("set_config" catches
 * "pg_catalog.set_config"). An unqualified name is taken to be in
 * default_schema; with any_schema (search_path changed, or functions, which
 * pg_catalog and search_path resolve) its schema is unknown: for a rule that
 * restricts (deny, review, mask) it matches a pattern whatever the pattern's
 * schema part, and for one that permits (allow) only a pattern that names no
 * schema or every one ("*."), so that the unknown schema widens what is
 * refused, never what is allowed. */
static bool name_matches(char **pats, size_t n, const char *schema, const char *name,
                         const char *default_schema, bool any_schema, bool permits)
{
    char full[3 * POLICY_NAME_MAX + 2];
    bool unknown = !schema && any_schema;
    if (schema || default_schema)
        snprintf(full, sizeof(full), "%s.%s", schema ? schema : default_schema, name);
    else
        snprintf(full, sizeof(full), "%s", name);
    for (size_t i = 0; i < n; i++) {
        const char *dot = strrchr(pats[i], '.');
        if (!dot && policy_glob(pats[i], name))
            return true;
        if (unknown && permits) {
            if (dot && dot - pats[i] == 1 && pats[i][0] == '*' && policy_glob(dot + 1, name))
                return true;
            continue;
        }
        if (policy_glob(pats[i], full))
            return true;
        if (unknown && dot && policy_glob(dot + 1, name))
            return true;
    }
    return false;
}

static bool relation_matches(char **pats, size_t n, const struct policy_relation *r, unsigned facts, bool permits)
{
    return name_matches(pats, n, r->schema, r->name, "public", (facts & POLICY_FACT_SEARCH_PATH) != 0, permits);
}

static bool rule_matches(const struct policy_match *m, const struct policy_stmt *st, const char *const *groups,
                         bool permits)
{
    if (m->ngroups && !in_groups(m->groups, m->ngroups, groups))
        return false;
    if (m->nexcept_groups && in_groups(m->except_groups, m->nexcept_groups, groups))
        return false;
    if ((st->facts & m->facts) != m->facts || (st->facts & m->except_facts))
        return false;
    if (m->nkinds) {
        bool hit = false;
        for (size_t i = 0; i < st->nkinds && !hit; i++)
            hit = any_glob(m->kinds, m->nkinds, st->kinds[i]);
        if (!hit)
            return false;
    }
    if (m->ncategories) {
        bool hit = false;
        for (size_t i = 0; i < st->nkinds && !hit; i++)
            hit = any_glob(m->categories, m->ncategories, policy_kind_category(st->kinds[i]));
        if (!hit)
            return false;
    }
    if (m->nrelations || m->nwrites) {
        bool hit_any = !m->nrelations, hit_write = !m->nwrites;
        for (size_t i = 0; i < st->nrelations; i++) {
            if (!hit_any && relation_matches(m->relations, m->nrelations, &st->relations[i], st->facts, permits))
                hit_any = true;
            if (!hit_write && st->relations[i].write &&
                relation_matches(m->writes, m->nwrites, &st->relations[i], st->facts, permits))
                hit_write = true;
        }
        if (!hit_any || !hit_write)
            return false;
    }
    if (m->nfunctions) {
        bool hit = false;
        for (size_t i = 0; i < st->nfunctions && !hit; i++) {
            const char *f = st->functions[i], *dot = strrchr(f, '.');
            if (policy_called_form(f))
                continue; /* an operator, a q.f or a cast: rules match functions called by name */
            char schema[2 * POLICY_NAME_MAX + 1];
            if (dot && (size_t)(dot - f) < sizeof(schema)) {
                snprintf(schema, sizeof(schema), "%.*s", (int)(dot - f), f);
                hit = name_matches(m->functions, m->nfunctions, schema, dot + 1, NULL, true, permits);
            } else {
                hit = name_matches(m->functions, m->nfunctions, NULL, f, NULL, true, permits);
            }
        }
        if (!hit)
            return false;
    }
    return true;
}

/* Whether st puts values somewhere result masking cannot follow: into a
 * table (INSERT, UPDATE, MERGE, SELECT INTO, CREATE TABLE AS, materialized
 * views) or out through a side channel (pg_notify, large objects). */
static bool stmt_copies_values(const struct policy_stmt *st)
{
    static const char *const kinds[] = {"INSERT", "UPDATE", "MERGE", "SELECT_INTO", "CREATE_TABLE",
                                        "CREATE_MATERIALIZED_VIEW", "REFRESH_MATERIALIZED_VIEW", NULL};
    /* Built-ins that keep a value where a later statement reads it: a
     * setting (and the ParameterStatus it sends), a large object's data,
     * size or OID, a replication origin's or slot's name, a lock's key, a
     * sequence, a WAL message or restore point, a file (builtins.c). */
    if (policy_stmt_has_kind(st, kinds))
        return true;
    for (size_t i = 0; i < st->nfunctions; i++)
        if (policy_builtin_effects(st->functions[i]) & POLICY_BUILTIN_KEEPS_VALUE)
            return true;
    return false;
}

bool policy_stmt_copy_guarded(const struct policy *p, const struct policy_stmt *st, const char *const *groups)
{
    if (!p->ncolumns || !stmt_copies_values(st))
        return false;
    struct policy_decision d;
    policy_decide_stmt(p, st, groups, &d);
    if (d.action != POLICY_ALLOW && d.action != POLICY_MASK)
        return false;
    const struct policy_rule *hit = d.rule_index >= 0 && (size_t)d.rule_index < p->nrules ? &p->rules[d.rule_index]
                                                                                         : NULL;
    return !(hit && hit->action == POLICY_ALLOW && hit->match.ngroups > 0);
}

/* The engine's own refusal of a statement that masking could not follow. */
static void deny_masked_copy(struct policy_decision *out, const char *rule, const char *message)
{
    out->action = POLICY_DENY;
    out->rule_index = POLICY_RULE_MASKED_COPY;
    snprintf(out->rule_name, sizeof(out->rule_name), "%s", rule);
    snprintf(out->message, sizeof(out->message), "%s", message);
    out->reviewers[0] = '\0';
}

void policy_decide_stmt(const struct policy *p, const struct policy_stmt *st, const char *const *groups,
                        struct policy_decision *out)
{
    memset(out, 0, sizeof(*out));
    if (st->facts & POLICY_FACT_UNKNOWN_PREPARED) {
        out->action = POLICY_DENY;
        out->rule_index = POLICY_RULE_UNKNOWN_PREPARED;
        snprintf(out->rule_name, sizeof(out->rule_name), "unknown-prepared-statement");
        snprintf(out->message, sizeof(out->message),
                 "prepared statement \"%.64s\" was not prepared through this session",
                 st->prepared_name ? st->prepared_name : "");
        return;
    }
    const struct policy_rule *hit = &p->fallback;
    out->rule_index = POLICY_RULE_DEFAULT;
    for (size_t i = 0; i < p->nrules; i++)
        if (rule_matches(&p->rules[i].match, st, groups, p->rules[i].action == POLICY_ALLOW)) {
            hit = &p->rules[i];
            out->rule_index = (int)i;
            break;
        }
    out->action = hit->action;
    snprintf(out->rule_name, sizeof(out->rule_name), "%s", hit->name);
    snprintf(out->message, sizeof(out->message), "%s", hit->message);
    snprintf(out->reviewers, sizeof(out->reviewers), "%s", hit->reviewers);
    out->mask_style = hit->style;

    /* Masking works on result rows. A statement that reads masked values and
     * writes them into a table or a side channel would take them past it:
     * refused, unless an allow rule that names groups matched (their members
     * are trusted with the data). */
    bool trusted = hit != &p->fallback && hit->action == POLICY_ALLOW && hit->match.ngroups > 0;
    if ((out->action == POLICY_ALLOW || out->action == POLICY_MASK) && !trusted && stmt_copies_values(st) &&
        (out->action == POLICY_MASK || policy_stmt_reads_masked(p, st))) {
        deny_masked_copy(out, "masked-data-copy",
                         "the statement would copy masked columns into a table or a side channel");
    }
    /* COPY TO in binary or a custom layout cannot be masked row by row:
     * refused up front when its rows would need masking, rather than failing
     * (and closing the session) once the rows flow. */
    if ((out->action == POLICY_ALLOW || out->action == POLICY_MASK) && !trusted &&
        (st->facts & POLICY_FACT_COPY_OUT) && (st->facts & POLICY_FACT_COPY_CUSTOM) &&
        (out->action == POLICY_MASK || p->detectors || (p->ncolumns && policy_stmt_reads_masked_table(p, st)))) {
        deny_masked_copy(out, "masked-copy-format",
                         "COPY output that needs masking can be masked only in text or CSV format with the"
                         " default delimiter, quote and NULL string");
    }
}

/* Add a review rule's index to a decision's list, once; true when the list
 * was full. */
static bool add_review_rule(int *list, size_t *n, int rule)
{
    for (size_t i = 0; i < *n; i++)
        if (list[i] == rule)
            return false;
    if (*n == POLICY_MAX_REVIEW_RULES)
        return true;
    list[(*n)++] = rule;
    return false;
}

void policy_decide(const struct policy *p, const struct policy_analysis *a, const char *const *groups,
                   struct policy_decision *out)
{
    memset(out, 0, sizeof(*out));
    out->action = p->fallback.action;
    out->rule_index = POLICY_RULE_DEFAULT;
    snprintf(out->rule_name, sizeof(out->rule_name), "%s", p->fallback.name);
    snprintf(out->message, sizeof(out->message), "%s", p->fallback.message);
    snprintf(out->reviewers, sizeof(out->reviewers), "%s", p->fallback.reviewers);
    out->mask_style = p->fallback.style;
    int reviews[POLICY_MAX_REVIEW_RULES];
    size_t nreviews = 0;
    bool too_many = false;
    for (size_t i = 0; i < a->nstmts; i++) {
        struct policy_decision d;
        policy_decide_stmt(p, &a->stmts[i], groups, &d);
        d.stmt_index = i;
        if (d.action == POLICY_REVIEW)
            too_many |= add_review_rule(reviews, &nreviews, d.rule_index);
        if (i == 0 || d.action > out->action)
            *out = d;
    }
    if (out->action != POLICY_REVIEW)
        return;
    if (a->nstmts == 0)
        add_review_rule(reviews, &nreviews, out->rule_index);
    if (too_many) {
        out->action = POLICY_DENY;
        snprintf(out->message, sizeof(out->message),
                 "more than %d rules send this string's statements to review: send them apart",
                 POLICY_MAX_REVIEW_RULES);
        return;
    }
    /* Each review rule's reviewers must agree: the notice names them all. */
    memcpy(out->review_rules, reviews, nreviews * sizeof *reviews);
    out->nreview_rules = nreviews;
    size_t o = 0;
    for (size_t i = 0; i < nreviews; i++) {
        const char *who = reviews[i] == POLICY_RULE_DEFAULT ? p->fallback.reviewers : p->rules[reviews[i]].reviewers;
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = strcmp(who, reviews[k] == POLICY_RULE_DEFAULT ? p->fallback.reviewers
                                                                  : p->rules[reviews[k]].reviewers) == 0;
        int n = seen ? 0 : snprintf(out->reviewers + o, sizeof(out->reviewers) - o, "%s%s", o ? " and " : "", who);
        if (n > 0 && (size_t)n < sizeof(out->reviewers) - o)
            o += (size_t)n;
    }
}

/* The groups as a cache key part. Empty (no caching) when a group name holds
 * a separator byte or there are too many to key. */
static void groups_key(const char *const *groups, char *out, size_t outlen)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; groups && groups[i]; i++) {
        if (!groups[i][0] || strchr(groups[i], 0x1c) || strchr(groups[i], 0x1d) || strchr(groups[i], 0x1e) ||
            strchr(groups[i], 0x1f))
            return; /* 0x1d keys the Parse cache (session.c), 0x1c the shape cache; "" reads as no groups */
        int n = snprintf(out + o, outlen - o, "%s%s", i ? "\x1e" : "", groups[i]);
        if (n < 0 || (size_t)n >= outlen - o) {
            out[0] = '\0';
            return;
        }
        o += (size_t)n;
    }
    if (!o)
        snprintf(out, outlen, "\x1e");
}

/* Whether a decision may be reused for every statement of the same shape
 * (the same tokens, other literal values): one plain data statement whose
 * classification reads no literal — no EXPLAIN options, COPY options, code
 * bodies, set_config or SQL-text functions (those set facts, or kinds, that
 * keep it out). The grammar sees a literal's token type, never its value,
 * except for a few range checks (float(0)) that the server repeats. */
static bool shape_cacheable(const struct policy_analysis *a)
{
    static const char *const kinds[] = {"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", NULL};
    const unsigned plain_facts = POLICY_FACT_NO_WHERE | POLICY_FACT_WRITES | POLICY_FACT_MODIFYING_CTE;
    if (!a->cacheable || a->nstmts != 1 || (a->stmts[0].facts & ~plain_facts))
        return false;
    for (size_t i = 0; i < a->stmts[0].nkinds; i++) {
        size_t k = 0;
        while (kinds[k] && strcmp(kinds[k], a->stmts[0].kinds[i]) != 0)
            k++;
        if (!kinds[k])
            return false;
    }
    return true;
}

/* A shape hit hands out another statement's classification: its text
 * becomes this one's (the rest does not depend on literal values). */
static void shape_hit_text(struct policy_analysis *a, const char *sql)
{
    if (!a || a->nstmts != 1)
        return;
    size_t n = strlen(sql);
    while (n && (sql[n - 1] == ';' || sql[n - 1] == ' ' || sql[n - 1] == '\n' || sql[n - 1] == '\t' ||
                 sql[n - 1] == '\r'))
        n--;
    char *t = strndup(sql, n);
    if (t) {
        free(a->stmts[0].text);
        a->stmts[0].text = t;
    }
}

int policy_check(struct policy *p, struct policy_session *s, const char *sql, const char *const *groups,
                 struct policy_decision *out, struct policy_analysis *analysis_out)
{
    char gkey[1024], skey[1026];
    groups_key(groups, gkey, sizeof(gkey));
    if (analysis_out)
        memset(analysis_out, 0, sizeof(*analysis_out));
    /* A cache hit only for statements that touch no session state; the key
     * holds the groups, since rules may match on them (and the cache lives in
     * the policy, so a connection's policy is part of it too). Not after a
     * search_path change: the decision then depends on the session. */
    if (s && policy_session_search_path_changed(s))
        gkey[0] = '\0';
    bool cache_ok = gkey[0] && strlen(sql) <= POLICY_CACHE_MAX_SQL;
    if (cache_ok && policy_cache_get(&p->cache, gkey, sql, out, analysis_out)) {
        out->cached = true;
        return 0;
    }
    /* Then by shape: the same statement with other literals (pgbench -S,
     * an application's queries with inlined values). */
    char *shape = cache_ok ? policy_shape_key(sql) : NULL;
    snprintf(skey, sizeof(skey), "%s\x1c", gkey);
    if (shape && policy_cache_get(&p->cache, skey, shape, out, analysis_out)) {
        free(shape);
        shape_hit_text(analysis_out, sql);
        out->cached = true;
        return 0;
    }
    struct policy_analysis a;
    char err[POLICY_ERR_MAX];
    if (policy_classify(sql, s, &a, err) < 0) {
        free(shape); /* parse errors are never cached */
        memset(out, 0, sizeof(*out));
        out->action = POLICY_DENY;
        out->rule_index = POLICY_RULE_PARSE_ERROR;
        snprintf(out->rule_name, sizeof(out->rule_name), "parse-error");
        snprintf(out->message, sizeof(out->message), "%s", err);
        return strcmp(err, "out of memory") == 0 ? -1 : 0;
    }
    policy_decide(p, &a, groups, out);
    if (a.cacheable && cache_ok) {
        if (shape && shape_cacheable(&a))
            policy_cache_put(&p->cache, skey, shape, out, &a, analysis_out == NULL);
        else
            policy_cache_put(&p->cache, gkey, sql, out, &a, analysis_out == NULL);
    }
    free(shape);
    if (analysis_out)
        *analysis_out = a;
    else
        policy_analysis_free(&a);
    return 0;
}

int policy_check_prepared(struct policy *p, struct policy_session *s, const char *name,
                          const char *const *groups, struct policy_decision *out)
{
    const struct policy_stmt *st = policy_session_lookup(s, name);
    if (!st) {
        struct policy_stmt unknown = {.prepared_name = (char *)name, .facts = POLICY_FACT_UNKNOWN_PREPARED};
        policy_decide_stmt(p, &unknown, groups, out);
        return 0;
    }
    struct policy_analysis a = {.stmts = (struct policy_stmt *)st, .nstmts = 1};
    policy_decide(p, &a, groups, out);
    return 0;
}

void policy_cache_stats(const struct policy *p, uint64_t *hits, uint64_t *misses)
{
    struct policy_cache *c = (struct policy_cache *)&p->cache;
    pthread_mutex_lock(&c->lock);
    *hits = c->hits;
    *misses = c->misses;
    pthread_mutex_unlock(&c->lock);
}
