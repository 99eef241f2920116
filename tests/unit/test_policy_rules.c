/* test_policy_rules.c — rules: loading and validation errors (rule index and
 * field), first-match decisions, groups, globs, the default policy, the
 * decision cache and the prepared-statement tracker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "hoopctl/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* libpg_query 15-4.0.0 leaks one byte per plpgsql body that fails to parse
 * (see test_policy_corpus.c); the hostile-SQL test makes such DO blocks. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:pg_query_raw_parse\n"; }

static struct policy *load(const char *json, char err[POLICY_ERR_MAX])
{
    json_error_t jerr;
    json_t *doc = json_loads(json, 0, &jerr);
    if (!doc)
        fail_msg("bad JSON in test: %s", jerr.text);
    struct policy *p = policy_load_json(doc, err);
    json_decref(doc);
    return p;
}

static void expect_error(const char *json, const char *want)
{
    char err[POLICY_ERR_MAX] = "";
    struct policy *p = load(json, err);
    if (p || !strstr(err, want))
        fail_msg("want an error containing [%s], got %s [%s]", want, p ? "a policy" : "error", err);
}

static void test_validation_errors(void **state)
{
    (void)state;
    expect_error("[]", "policy: must be a JSON object");
    expect_error("{\"rules\": {}}", "rules: must be an array");
    expect_error("{\"rulez\": []}", "policy.rulez: unknown field");
    expect_error("{\"version\": 2}", "version");
    expect_error("{\"audit\": \"yes\"}", "audit: must be true or false");
    expect_error("{\"audit\": false}", "audit: false is not supported");
    expect_error("{\"rules\": [{\"match\": {}, \"action\": \"allow\"}, {\"match\": {}, \"action\": \"explode\"}]}",
                 "rules[1].action");
    expect_error("{\"rules\": [{\"action\": \"deny\"}]}", "rules[0].match: missing");
    expect_error("{\"rules\": [{\"match\": {\"kinds\": \"DROP_TABLE\"}, \"action\": \"deny\"}]}",
                 "rules[0].match.kinds: must be a non-empty array");
    expect_error("{\"rules\": [{\"match\": {}, \"action\": \"allow\"}, {\"match\": {\"kinds\": [\"drop table\"]}, "
                 "\"action\": \"deny\"}]}",
                 "rules[1].match.kinds[0]");
    expect_error("{\"rules\": [{\"match\": {\"kindz\": [\"X\"]}, \"action\": \"deny\"}]}",
                 "rules[0].match.kindz: unknown field");
    expect_error("{\"rules\": [{\"match\": {\"facts\": [\"no_wher\"]}, \"action\": \"deny\"}]}",
                 "rules[0].match.facts[0]: unknown fact");
    expect_error("{\"rules\": [{\"match\": {\"except_facts\": [\"temp\"]}, \"action\": \"deny\"}]}",
                 "rules[0].match.except_facts[0]: unknown fact");
    expect_error("{\"rules\": [{\"match\": {\"except_facts\": []}, \"action\": \"deny\"}]}",
                 "rules[0].match.except_facts: must be a non-empty array");
    expect_error("{\"rules\": [{\"match\": {\"no_where\": 1}, \"action\": \"deny\"}]}",
                 "rules[0].match.no_where: must be true or false");
    expect_error("{\"rules\": [{\"match\": {\"categories\": [\"dml\"]}, \"action\": \"deny\"}]}",
                 "rules[0].match.categories[0]: unknown category");
    expect_error("{\"rules\": [{\"match\": {}, \"action\": \"review\"}]}", "rules[0].reviewers");
    expect_error("{\"rules\": [{\"match\": {}, \"action\": \"deny\", \"reviewers\": [\"x\"]}]}",
                 "rules[0].reviewers: only a review");
    expect_error("{\"rules\": [{\"match\": {}, \"action\": \"mask\", \"style\": \"blur\"}]}", "rules[0].style");
    expect_error("{\"rules\": [{\"match\": {\"groups\": [\"\"]}, \"action\": \"deny\"}]}",
                 "rules[0].match.groups[0]");
    expect_error("{\"rules\": [{\"match\": {}, \"action\": \"deny\", \"name\": 5}]}", "rules[0].name");
    expect_error("{\"masking\": {\"columns\": [{\"column\": \"users.email\"}]}}",
                 "masking.columns[0].column: must be a schema.table.column glob");
    expect_error("{\"masking\": {\"columns\": [{\"column\": \"a.b.c\", \"style\": \"x\"}]}}",
                 "masking.columns[0].style");
    expect_error("{\"masking\": {\"detectors\": [\"email\", \"dna\"]}}", "masking.detectors[1]");
    expect_error("{\"masking\": {\"hash_key\": \"short\"}}", "masking.hash_key");
    expect_error("{\"default\": {\"action\": \"review\"}}", "default.reviewers");
}

static struct policy_decision decide(struct policy *p, const char *sql, const char *const *groups)
{
    struct policy_decision d;
    struct policy_session *s = policy_session_new();
    assert_int_equal(policy_check(p, s, sql, groups, &d, NULL), 0);
    policy_session_free(s);
    return d;
}

static void test_first_match_and_groups(void **state)
{
    (void)state;
    char err[POLICY_ERR_MAX];
    struct policy *p = load(
        "{\"default\": {\"action\": \"deny\", \"message\": \"not on the list\"},"
        " \"rules\": ["
        "  {\"name\": \"dba-anything\", \"match\": {\"groups\": [\"dba\"]}, \"action\": \"allow\"},"
        "  {\"name\": \"no-hr\", \"match\": {\"relations\": [\"hr.*\"]}, \"action\": \"deny\", \"message\": \"hr is private\"},"
        "  {\"name\": \"mask-crm\", \"match\": {\"relations\": [\"crm.*\"], \"except_groups\": [\"sales\"]},"
        "   \"action\": \"mask\", \"style\": \"hash\"},"
        "  {\"match\": {\"kinds\": [\"SELECT\"]}, \"action\": \"allow\"},"
        "  {\"name\": \"writes-to-app\", \"match\": {\"writes\": [\"app.*\"]}, \"action\": \"review\", \"reviewers\": [\"leads\", \"dba\"]},"
        "  {\"name\": \"drops\", \"match\": {\"kinds\": [\"DROP_*\"], \"categories\": [\"ddl\"]}, \"action\": \"deny\"},"
        "  {\"name\": \"funcs\", \"match\": {\"functions\": [\"pg_catalog.pg_read_*\"]}, \"action\": \"deny\"}"
        " ]}", err);
    assert_non_null(p);
    const char *dba[] = {"dev", "dba", NULL}, *sales[] = {"sales", NULL};

    struct policy_decision d = decide(p, "select * from hr.salaries", NULL);
    assert_int_equal(d.action, POLICY_DENY);
    assert_int_equal(d.rule_index, 1);
    assert_string_equal(d.rule_name, "no-hr");
    assert_string_equal(d.message, "hr is private");

    /* An unqualified name is in public while search_path is untouched. */
    d = decide(p, "select * from salaries", NULL);
    assert_int_equal(d.action, POLICY_ALLOW);
    assert_int_equal(d.rule_index, 3);
    d = decide(p, "select * from hr.salaries", dba);
    assert_int_equal(d.action, POLICY_ALLOW);
    assert_int_equal(d.rule_index, 0);

    d = decide(p, "select * from crm.leads", NULL);
    assert_int_equal(d.action, POLICY_MASK);
    assert_int_equal(d.mask_style, POLICY_STYLE_HASH);
    d = decide(p, "select * from crm.leads", sales);
    assert_int_equal(d.action, POLICY_ALLOW);
    assert_int_equal(d.rule_index, 3);
    assert_string_equal(d.rule_name, "");

    d = decide(p, "insert into app.t values (1)", NULL);
    assert_int_equal(d.action, POLICY_REVIEW);
    assert_string_equal(d.reviewers, "leads,dba");
    d = decide(p, "insert into other.t values (1)", NULL);
    assert_int_equal(d.action, POLICY_DENY);
    assert_int_equal(d.rule_index, POLICY_RULE_DEFAULT);
    assert_string_equal(d.message, "not on the list");

    d = decide(p, "drop view v", NULL);
    assert_string_equal(d.rule_name, "drops");
    /* A function pattern with a schema catches the unqualified call. */
    d = decide(p, "insert into x values (pg_read_file('/etc/passwd'))", NULL);
    assert_string_equal(d.rule_name, "funcs");
    /* Function rules match calls by name, not the casts, operators and q.f
     * the classifier records beside them (a cast to pg_catalog.pg_read_x,
     * an attribute read_file of q). */
    struct policy *reads = load("{\"rules\": [{\"name\": \"r\", \"match\": {\"functions\": [\"*read*\", \"*=*\"]},"
                                " \"action\": \"deny\"}]}", err);
    assert_non_null(reads);
    assert_int_equal(decide(reads, "select x.spread, 'a'::pg_catalog.pg_read_x from t x where x.a = 1", NULL).action,
                     POLICY_ALLOW);
    assert_int_equal(decide(reads, "select spread(1)", NULL).action, POLICY_DENY);
    policy_free(reads);

    /* The most severe statement of a multi-statement string decides. */
    d = decide(p, "select 1; select * from hr.x; select 2", NULL);
    assert_int_equal(d.action, POLICY_DENY);
    assert_int_equal(d.stmt_index, 1);

    /* Each statement keeps its own decision for its own result set. */
    struct policy_analysis a;
    char cerr[POLICY_ERR_MAX];
    assert_int_equal(policy_classify("select * from crm.leads; select 1", NULL, &a, cerr), 0);
    policy_decide(p, &a, NULL, &d);
    assert_int_equal(d.action, POLICY_MASK);
    policy_decide_stmt(p, &a.stmts[1], NULL, &d);
    assert_int_equal(d.action, POLICY_ALLOW);
    policy_decide_stmt(p, &a.stmts[0], NULL, &d);
    assert_int_equal(d.action, POLICY_MASK);
    assert_string_equal(d.rule_name, "mask-crm");
    policy_analysis_free(&a);

    /* A parse error is a deny carrying the parser's message. */
    d = decide(p, "select * from", dba);
    assert_int_equal(d.action, POLICY_DENY);
    assert_int_equal(d.rule_index, POLICY_RULE_PARSE_ERROR);
    assert_non_null(strstr(d.message, "syntax error"));
    policy_free(p);
}

static void test_relation_globs(void **state)
{
    (void)state;
    char err[POLICY_ERR_MAX];
    struct policy *p = load("{\"rules\": [{\"match\": {\"relations\": [\"hr.salaries\"]}, \"action\": \"deny\"}]}", err);
    assert_non_null(p);
    assert_int_equal(decide(p, "select * from hr.salaries", NULL).action, POLICY_DENY);
    /* Unqualified: public, as long as the session keeps its search_path. */
    assert_int_equal(decide(p, "select * from salaries", NULL).action, POLICY_ALLOW);
    assert_int_equal(decide(p, "select * from public.salaries", NULL).action, POLICY_ALLOW);
    /* After SET search_path (same string or earlier in the session) an
     * unqualified name may be anywhere: it matches. */
    assert_int_equal(decide(p, "set search_path = hr; select * from salaries", NULL).action, POLICY_DENY);
    struct policy_session *s = policy_session_new();
    struct policy_decision d;
    assert_int_equal(policy_check(p, s, "select * from salaries", NULL, &d, NULL), 0);
    assert_int_equal(d.action, POLICY_ALLOW);
    assert_int_equal(policy_check(p, s, "SET search_path TO hr, public", NULL, &d, NULL), 0);
    assert_int_equal(d.action, POLICY_ALLOW);
    assert_int_equal(policy_check(p, s, "select * from salaries", NULL, &d, NULL), 0);
    assert_int_equal(d.action, POLICY_DENY);
    assert_false(d.cached); /* the cached allow of the same text is not used */
    policy_session_free(s);
    assert_int_equal(decide(p, "select * from hr.salaries_2020", NULL).action, POLICY_ALLOW);
    /* Quoting and case are the parser's business: "HR" is another schema. */
    assert_int_equal(decide(p, "select * from HR.SALARIES", NULL).action, POLICY_DENY);
    assert_int_equal(decide(p, "select * from \"HR\".salaries", NULL).action, POLICY_ALLOW);
    assert_int_equal(decide(p, "select * from U&\"h\\0072\".salaries", NULL).action, POLICY_DENY);
    policy_free(p);

    /* The unknown schema widens what is refused, never what is allowed: an
     * allow of public.* no longer covers an unqualified name once the
     * search_path changed (it may be hr's), but "*." and bare names still do. */
    p = load("{\"default\": {\"action\": \"deny\"}, \"rules\": ["
             "{\"name\": \"sets\", \"match\": {\"kinds\": [\"SET\"]}, \"action\": \"allow\"},"
             "{\"name\": \"public-only\", \"match\": {\"relations\": [\"public.*\"]}, \"action\": \"allow\"},"
             "{\"name\": \"any-audit\", \"match\": {\"relations\": [\"*.audit_log\", \"lookup\"]}, \"action\": \"allow\"}]}",
             err);
    assert_non_null(p);
    assert_int_equal(decide(p, "select * from payroll", NULL).action, POLICY_ALLOW);
    assert_int_equal(decide(p, "set search_path = hr; select * from payroll", NULL).action, POLICY_DENY);
    assert_int_equal(decide(p, "set search_path = hr; select * from public.payroll", NULL).action, POLICY_ALLOW);
    assert_int_equal(decide(p, "set search_path = hr; select * from audit_log", NULL).action, POLICY_ALLOW);
    assert_int_equal(decide(p, "set search_path = hr; select * from lookup", NULL).action, POLICY_ALLOW);
    policy_free(p);
}

static void test_default_policy(void **state)
{
    (void)state;
    struct policy *p = policy_load_default();
    assert_non_null(p);
    assert_false(policy_redacts_literals(p));
    assert_int_equal(decide(p, "drop table t", NULL).action, POLICY_DENY);
    assert_int_equal(decide(p, "delete from t", NULL).action, POLICY_REVIEW);
    assert_string_equal(decide(p, "delete from t", NULL).reviewers, "dba");
    assert_int_equal(decide(p, "select 'drop table t'", NULL).action, POLICY_ALLOW);
    /* The session's own temporary table, named in pg_temp (temp_only). */
    assert_int_equal(decide(p, "drop table pg_temp.t", NULL).action, POLICY_ALLOW);
    assert_int_equal(decide(p, "drop table pg_temp.t, u", NULL).action, POLICY_DENY);
    assert_int_equal(decide(p, "set search_path = pg_temp; drop table t", NULL).action, POLICY_DENY);
    policy_free(p);

    /* except_facts: a rule does not match a statement with any of them. */
    char err[POLICY_ERR_MAX];
    p = load("{\"rules\": [{\"match\": {\"kinds\": [\"DELETE\"], \"except_facts\": [\"no_where\", \"cascade\"]},"
             " \"action\": \"deny\"}]}", err);
    assert_non_null(p);
    assert_int_equal(decide(p, "delete from t where id = 1", NULL).action, POLICY_DENY);
    assert_int_equal(decide(p, "delete from t", NULL).action, POLICY_ALLOW);
    policy_free(p);
    p = policy_load_default();
    assert_non_null(p);
    /* `hoopctl policy default` prints the document the engine loads. */
    json_t *doc = policy_default_json();
    assert_non_null(doc);
    assert_true(json_array_size(json_object_get(doc, "rules")) >= 6);
    json_decref(doc);
    policy_free(p);
}

static void test_cache(void **state)
{
    (void)state;
    char err[POLICY_ERR_MAX];
    struct policy *p = load("{\"rules\": [{\"match\": {\"groups\": [\"dba\"]}, \"action\": \"allow\"},"
                            " {\"match\": {\"kinds\": [\"DROP_*\"]}, \"action\": \"deny\"}]}", err);
    assert_non_null(p);
    const char *dba[] = {"dba", NULL}, *dev[] = {"dev", NULL};
    uint64_t hits, misses;
    struct policy_decision d = decide(p, "drop table t", dev);
    assert_false(d.cached);
    d = decide(p, "drop table t", dev);
    assert_true(d.cached);
    assert_int_equal(d.action, POLICY_DENY);
    /* Group-dependent: the same text for another group is decided afresh. */
    d = decide(p, "drop table t", dba);
    assert_false(d.cached);
    assert_int_equal(d.action, POLICY_ALLOW);
    d = decide(p, "drop table t", dba);
    assert_true(d.cached);
    assert_int_equal(d.action, POLICY_ALLOW);
    d = decide(p, "drop table t", NULL);
    assert_int_equal(d.action, POLICY_DENY);
    /* A group name holding the key separator is never cached under a
     * colliding key. */
    const char *odd[] = {"dba\x1e", NULL};
    d = decide(p, "drop table t", odd);
    assert_int_equal(d.action, POLICY_DENY);
    assert_false(d.cached);
    /* Session-dependent statements are never cached. */
    struct policy_session *s = policy_session_new();
    assert_int_equal(policy_check(p, s, "prepare x as select 1; execute x", dev, &d, NULL), 0);
    assert_int_equal(policy_check(p, s, "prepare x as select 1; execute x", dev, &d, NULL), 0);
    assert_false(d.cached);
    policy_session_free(s);
    /* Parse errors are never cached either. */
    decide(p, "selec 1", dev);
    d = decide(p, "selec 1", dev);
    assert_false(d.cached);
    assert_int_equal(d.rule_index, POLICY_RULE_PARSE_ERROR);
    /* A hit hands out the classification too, fingerprint included. */
    struct policy_analysis a1, a2;
    assert_int_equal(policy_check(p, NULL, "select email from users where id = 7", dev, &d, &a1), 0);
    assert_false(d.cached);
    assert_int_equal(policy_check(p, NULL, "select email from users where id = 7", dev, &d, &a2), 0);
    assert_true(d.cached);
    assert_int_equal(a2.nstmts, 1);
    assert_string_equal(a2.stmts[0].kind, "SELECT");
    assert_string_equal(a2.stmts[0].fingerprint, a1.stmts[0].fingerprint);
    assert_string_equal(a2.stmts[0].normalized, a1.stmts[0].normalized);
    assert_int_equal(a2.stmts[0].nrelations, 1);
    assert_string_equal(a2.stmts[0].relations[0].name, "users");
    policy_analysis_free(&a1);
    policy_analysis_free(&a2);
    policy_cache_stats(p, &hits, &misses);
    assert_true(hits >= 3);
    assert_true(misses >= 3);
    policy_free(p);
}

/* The shape cache: the same statement with other literals reuses the
 * decision, but only where no literal can change it. */
static void test_shape_cache(void **state)
{
    (void)state;
    char err[POLICY_ERR_MAX];
    struct policy *p = policy_load_default();
    const char *dev[] = {"dev", NULL}, *dba[] = {"dba", NULL}, *empty[] = {"", NULL};
    struct policy_decision d;
    struct policy_analysis a;
    assert_int_equal(policy_check(p, NULL, "select email from users where id = 1", dev, &d, &a), 0);
    assert_false(d.cached);
    policy_analysis_free(&a);
    assert_int_equal(policy_check(p, NULL, "select email from users where id = 2 ", dev, &d, &a), 0);
    assert_true(d.cached);
    assert_string_equal(a.stmts[0].text, "select email from users where id = 2"); /* its own text */
    policy_analysis_free(&a);
    assert_false(decide(p, "select email from users where id = 'x'", dev).cached);  /* a string: another shape */
    assert_true(decide(p, "select email  from users where id=$$3$$", dev).cached);  /* whitespace, quoting */
    assert_false(decide(p, "select email from users where id = 1", dba).cached);    /* other groups */
    assert_false(decide(p, "select email from users where id = 1", empty).cached);  /* "" is not "no groups" */
    assert_false(decide(p, "select email from users where id = 1", empty).cached);
    assert_false(decide(p, "select email from users where id = 1 -- c", dev).cached); /* comments count */
    assert_false(decide(p, "select email from users where id = 1 or true", dev).cached);
    assert_false(decide(p, "SELECT email from users where id = 1 or true", dev).cached);
    /* A different token list never shares the shape: identifiers are kept. */
    d = decide(p, "delete from users where id = 1", dev);
    assert_int_equal(d.action, POLICY_ALLOW);
    d = decide(p, "delete from users where id = 2", dev);
    assert_true(d.cached);
    d = decide(p, "delete from users", dev);
    assert_int_equal(d.action, POLICY_REVIEW);
    /* Literals that change a classification keep a statement out: code
     * bodies, COPY and EXPLAIN options. */
    d = decide(p, "do 'begin perform 1; end'", dev);
    d = decide(p, "do 'begin drop table users; end'", dev);
    assert_false(d.cached);
    struct policy_analysis b;
    assert_int_equal(policy_check(p, NULL, "copy users to stdout with (format 'text')", dev, &d, &b), 0);
    policy_analysis_free(&b);
    assert_int_equal(policy_check(p, NULL, "copy users to stdout with (format 'csv')", dev, &d, &b), 0);
    assert_false(d.cached);
    assert_false(b.stmts[0].facts & POLICY_FACT_COPY_CUSTOM);
    assert_true(b.stmts[0].copy_csv);
    policy_analysis_free(&b);
    assert_int_equal(policy_check(p, NULL, "copy users to stdout with (format 'csv', force_quote *)", dev, &d, &b), 0);
    assert_true(b.stmts[0].facts & POLICY_FACT_COPY_CUSTOM);
    policy_analysis_free(&b);
    decide(p, "explain (analyze 'off') delete from users where id = 1", dev);
    assert_int_equal(policy_check(p, NULL, "explain (analyze 'on') delete from users where id = 1", dev, &d, &b), 0);
    assert_false(d.cached);
    assert_true(b.stmts[0].facts & POLICY_FACT_EXPLAIN_ANALYZE);
    policy_analysis_free(&b);
    /* UESCAPE's string says what a U&"..." name is: no shape. */
    decide(p, "select * from U&\"h!0072\" UESCAPE '#'.salaries where id = 1", dev);
    assert_int_equal(policy_check(p, NULL, "select * from U&\"h!0072\" UESCAPE '!'.salaries where id = 1", dev,
                                  &d, &b), 0);
    assert_false(d.cached);
    assert_int_equal(b.stmts[0].nrelations, 1);
    assert_string_equal(b.stmts[0].relations[0].schema, "hr");
    policy_analysis_free(&b);
    /* A statement that does not scan, or does not parse, is never cached. */
    assert_int_equal(decide(p, "select 'unterminated", dev).rule_index, POLICY_RULE_PARSE_ERROR);
    d = decide(p, "select 'unterminated", dev);
    assert_false(d.cached);
    decide(p, "select 1 from where id = 1", dev);
    d = decide(p, "select 1 from where id = 2", dev);
    assert_false(d.cached);
    assert_int_equal(d.rule_index, POLICY_RULE_PARSE_ERROR);
    (void)err;
    policy_free(p);
}

static void test_prepared_tracker(void **state)
{
    (void)state;
    struct policy *p = policy_load_default();
    struct policy_session *s = policy_session_new();
    char err[POLICY_ERR_MAX];
    struct policy_decision d;
    assert_non_null(p);
    assert_non_null(s);

    /* Extended protocol: Parse then Execute, judged by the statement. */
    assert_int_equal(policy_session_parse(p, s, "s1", "delete from t", err), 0);
    assert_int_equal(policy_session_parse(p, s, "s2", "select * from t where id = $1", err), 0);
    assert_int_equal(policy_session_count(s), 2);
    assert_int_equal(policy_check_prepared(p, s, "s1", NULL, &d), 0);
    assert_int_equal(d.action, POLICY_REVIEW);
    assert_int_equal(policy_check_prepared(p, s, "s2", NULL, &d), 0);
    assert_int_equal(d.action, POLICY_ALLOW);
    const struct policy_stmt *st = policy_session_lookup(s, "s2");
    assert_non_null(st);
    assert_string_equal(st->kind, "SELECT");

    /* Unknown names are refused. */
    assert_int_equal(policy_check_prepared(p, s, "nope", NULL, &d), 0);
    assert_int_equal(d.action, POLICY_DENY);
    assert_int_equal(d.rule_index, POLICY_RULE_UNKNOWN_PREPARED);

    /* A second Parse of a live name keeps the union (the server refuses it). */
    assert_int_equal(policy_session_parse(p, s, "s1", "select 1", err), 0);
    assert_int_equal(policy_check_prepared(p, s, "s1", NULL, &d), 0);
    assert_int_equal(d.action, POLICY_REVIEW);
    /* After a protocol Close the name is free again. */
    policy_session_close(s, "s1");
    assert_null(policy_session_lookup(s, "s1"));
    assert_int_equal(policy_session_parse(p, s, "s1", "select 1", err), 0);
    assert_int_equal(policy_check_prepared(p, s, "s1", NULL, &d), 0);
    assert_int_equal(d.action, POLICY_ALLOW);

    /* The unnamed statement is replaced on every Parse. */
    assert_int_equal(policy_session_parse(p, s, "", "delete from t", err), 0);
    assert_int_equal(policy_session_parse(p, s, "", "select 1", err), 0);
    assert_int_equal(policy_check_prepared(p, s, "", NULL, &d), 0);
    assert_int_equal(d.action, POLICY_ALLOW);

    /* Parsing the same text again is answered from the cache, and is judged the same. */
    uint64_t hits0, hits1, misses;
    policy_cache_stats(p, &hits0, &misses);
    assert_int_equal(policy_session_parse(p, s, "s7", "select * from t where id = $1", err), 0);
    policy_cache_stats(p, &hits1, &misses);
    assert_int_equal(hits1, hits0 + 1);
    assert_string_equal(policy_session_lookup(s, "s7")->kind, "SELECT");
    assert_int_equal(policy_session_parse(p, s, "s8", "delete from t", err), 0);
    assert_int_equal(policy_check_prepared(p, s, "s8", NULL, &d), 0);
    assert_int_equal(d.action, POLICY_REVIEW);
    /* Without a policy (no cache) it works the same. */
    assert_int_equal(policy_session_parse(NULL, s, "s9", "truncate t", err), 0);
    assert_int_equal(policy_check_prepared(p, s, "s9", NULL, &d), 0);
    assert_int_equal(d.action, POLICY_DENY);

    /* Parse errors and multiple commands are refused. */
    assert_int_equal(policy_session_parse(p, s, "bad", "selec 1", err), -1);
    assert_non_null(strstr(err, "syntax error"));
    assert_int_equal(policy_session_parse(p, s, "two", "select 1; select 2", err), -1);
    assert_non_null(strstr(err, "multiple commands"));

    /* SQL PREPARE in one simple query, EXECUTE in a later one. */
    assert_int_equal(policy_check(p, s, "PREPARE wipe AS DELETE FROM accounts", NULL, &d, NULL), 0);
    assert_int_equal(d.action, POLICY_ALLOW);
    assert_int_equal(policy_check(p, s, "EXECUTE wipe", NULL, &d, NULL), 0);
    assert_int_equal(d.action, POLICY_REVIEW);
    /* DEALLOCATE may fail at the server (aborted transaction): the tracker
     * keeps what it knew, so a re-PREPARE cannot launder the name. */
    assert_int_equal(policy_check(p, s, "DEALLOCATE wipe", NULL, &d, NULL), 0);
    assert_int_equal(policy_check(p, s, "PREPARE wipe AS SELECT 1", NULL, &d, NULL), 0);
    assert_int_equal(policy_check(p, s, "EXECUTE wipe", NULL, &d, NULL), 0);
    assert_int_equal(d.action, POLICY_REVIEW);
    /* EXPLAIN ANALYZE EXECUTE is judged by the prepared statement too. */
    assert_int_equal(policy_check(p, s, "EXPLAIN ANALYZE EXECUTE wipe", NULL, &d, NULL), 0);
    assert_int_equal(d.action, POLICY_REVIEW);

    /* Sessions are separate. */
    struct policy_session *other = policy_session_new();
    assert_int_equal(policy_check(p, other, "EXECUTE wipe", NULL, &d, NULL), 0);
    assert_int_equal(d.action, POLICY_DENY);
    policy_session_free(other);
    policy_session_free(s);
    policy_free(p);
}

static void test_analysis_json_and_redaction(void **state)
{
    (void)state;
    char err[POLICY_ERR_MAX];
    struct policy_analysis a;
    assert_int_equal(policy_classify("select * from t where email = 'a@example.com' and id = 5", NULL, &a, err), 0);
    assert_int_equal(a.nstmts, 1);
    assert_non_null(a.stmts[0].normalized);
    assert_null(strstr(a.stmts[0].normalized, "a@example.com"));
    assert_int_equal(strlen(a.stmts[0].fingerprint), 16);
    json_t *j = policy_analysis_to_json(&a);
    json_t *rel = json_array_get(json_object_get(json_array_get(j, 0), "relations"), 0);
    assert_string_equal(json_string_value(json_object_get(rel, "schema")), "public");
    assert_true(json_is_true(json_object_get(rel, "schema_defaulted")));
    json_decref(j);
    /* Literals differ, the fingerprint does not. */
    struct policy_analysis b;
    assert_int_equal(policy_classify("SELECT * FROM t WHERE email = 'x@y.org' AND id = 7", NULL, &b, err), 0);
    assert_string_equal(a.stmts[0].fingerprint, b.stmts[0].fingerprint);
    policy_analysis_free(&a);
    policy_analysis_free(&b);

    char *red = policy_redact_literals("update users set ssn = '123-45-6789' where id = 1", err);
    assert_non_null(red);
    assert_null(strstr(red, "123-45-6789"));
    assert_non_null(strstr(red, "$1"));
    free(red);
    assert_null(policy_redact_literals("update users set", err));
    assert_non_null(strstr(err, "syntax error"));

    /* Oversized input is refused before parsing. */
    size_t big = POLICY_MAX_SQL + 16;
    char *sql = malloc(big + 1);
    assert_non_null(sql);
    memset(sql, ' ', big);
    memcpy(sql, "select 1", 8);
    sql[big] = '\0';
    assert_int_equal(policy_classify(sql, NULL, &a, err), -1);
    assert_non_null(strstr(err, "too long"));
    free(sql);
}

static void test_masked_copy_guard(void **state)
{
    (void)state;
    char err[POLICY_ERR_MAX];
    struct policy *p = load("{\"rules\": [{\"name\": \"dba\", \"match\": {\"groups\": [\"dba\"]}, \"action\": \"allow\"},"
                            " {\"name\": \"crm\", \"match\": {\"relations\": [\"crm.*\"]}, \"action\": \"mask\"}],"
                            " \"masking\": {\"columns\": [{\"column\": \"public.users.email\"}]}}", err);
    assert_non_null(p);
    const char *dba[] = {"dba", NULL};
    static const char *const refused[] = {
        "insert into mine select email from users",
        "create table mine as select * from users",
        "select email into mine from users",
        "update users set name = email",
        "update other set note = (select email from users u where u.id = other.id) where id = 1",
        "select pg_notify('c', email) from users",
        "with x as (insert into log select row_to_json(u) from users u returning 1) select 1",
        "create materialized view mv as select upper(email) from users",
        "insert into mine select * from crm.leads",       /* a statement-level mask rule */
        "insert into mine select x from users as u(i, n, x)", /* renamed by an alias list */
        "select lowrite(lo_open(lo_create(0), 131072), convert_to(email, 'utf8')) from users",
        "select pg_logical_emit_message(true, 'p', email) from users",
        "select set_config('application_name', email, false) from users",   /* SHOW, ParameterStatus */
        "select lo_create(ascii(email)) from users",                         /* the OID */
        "select pg_catalog.pg_replication_origin_create(email) from users",  /* its name */
        /* A CTE's name ends with its WITH: the second users is the table. */
        "insert into mine select upper(email) from (with users as (select 1) select 1 from users) s, users",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        struct policy_decision d = decide(p, refused[i], NULL);
        if (d.action != POLICY_DENY || d.rule_index != POLICY_RULE_MASKED_COPY)
            fail_msg("[%s] should be refused as a masked copy, got %s (%s)", refused[i],
                     policy_action_name(d.action), d.rule_name);
        /* An allow rule naming the user's group trusts them with the data. */
        assert_int_equal(decide(p, refused[i], dba).action, POLICY_ALLOW);
    }
    static const char *const fine[] = {
        "select email from users",                        /* masked in the result */
        "update users set email = 'x' where id = 1",      /* writes, reads no masked column */
        "delete from users where email = 'a@b.c'",        /* reads it, copies nothing */
        "update users set name = 'x' where id = 1 returning email", /* RETURNING rows are masked */
        "insert into users (id, name) values (3, 'z') returning *",
        "insert into mine select name from users",
        "insert into mine values ('alice@example.com')",
        "select * from crm.leads",
        "select x from users as u(i, n, x)",              /* masked in the result */
    };
    for (size_t i = 0; i < sizeof(fine) / sizeof(fine[0]); i++) {
        struct policy_decision d = decide(p, fine[i], NULL);
        if (d.action == POLICY_DENY)
            fail_msg("[%s] should not be refused (%s)", fine[i], d.rule_name);
    }
    policy_free(p);
    /* Without column rules the guard has nothing to guard. */
    p = load("{}", err);
    assert_int_equal(decide(p, "insert into mine select email from users", NULL).action, POLICY_ALLOW);
    policy_free(p);
}

static void test_load_file(void **state)
{
    (void)state;
    char err[POLICY_ERR_MAX];
    char path[] = "/tmp/hoopctl-policy-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("{\"rules\": [\n  {\"match\": {}, \"action\": \"allow\"},\n  oops\n]}\n", f);
    fclose(f);
    assert_null(policy_load_file(path, err));
    /* JSON errors name the line and column (the caller names the file). */
    assert_non_null(strstr(err, "not valid JSON: line 3, column"));
    assert_null(strstr(err, path));
    unlink(path);
    assert_null(policy_load_file("/nonexistent/policy.json", err));
    assert_string_equal(err, "cannot read it: No such file or directory");
}

/* Hostile SQL: random bytes and random SQL-ish fragments are classified or
 * refused with a message, never crash, and whatever does not parse is denied. */
static void test_hostile_sql(void **state)
{
    (void)state;
    static const char *const parts[] = {"select ", "drop ", "table ", "do ", "$$", "$a$", "'", "\"", "/*", "*/",
                                        "--", "\n", ";", "(", ")", "prepare ", "execute ", "x ", "1 ", "U&\"",
                                        "\\", "e'", "with ", "as ", "delete ", "from ", "t ", "explain analyze "};
    struct policy *p = policy_load_default();
    struct policy_session *s = policy_session_new();
    uint32_t seed = 99;
    for (int round = 0; round < 2000; round++) {
        char sql[512];
        size_t o = 0;
        int n = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 8) % 12;
        for (int i = 0; i < n && o < sizeof(sql) - 40; i++) {
            seed = seed * 1103515245u + 12345u;
            if (round % 3 == 0) {
                sql[o++] = (char)(1 + (seed >> 8) % 255); /* raw bytes, no NUL */
            } else {
                const char *part = parts[(seed >> 8) % (sizeof(parts) / sizeof(parts[0]))];
                o += (size_t)snprintf(sql + o, sizeof(sql) - o, "%s", part);
            }
        }
        sql[o] = '\0';
        struct policy_decision d;
        assert_int_equal(policy_check(p, s, sql, NULL, &d, NULL), 0);
        if (d.rule_index == POLICY_RULE_PARSE_ERROR) {
            assert_int_equal(d.action, POLICY_DENY);
            assert_true(d.message[0] != '\0');
        }
    }
    policy_session_free(s);
    policy_free(p);
}

/* What reviews and the audit keep: secrets found by their place in the
 * token stream (never by words in comments), more for the audit, literals
 * with redact_literals, code bodies whole. */
static void redaction(void **state)
{
    (void)state;
    static const struct {
        const char *sql, *review, *audit, *literals; /* NULL: unchanged */
    } cases[] = {
        {"alter role bob password 'hunter2' valid until '2030-01-01'",
         "alter role bob password <redacted> valid until '2030-01-01'",
         "alter role bob password <redacted> valid until $1", "alter role bob password <redacted> valid until $1"},
        {"ALTER ROLE x ENCRYPTED PASSWORD E'hun\\'ter2' -- secret", "ALTER ROLE x ENCRYPTED PASSWORD <redacted> -- secret",
         "ALTER ROLE x ENCRYPTED PASSWORD <redacted> -- secret", "ALTER ROLE x ENCRYPTED PASSWORD <redacted> -- secret"},
        {"alter role x password U&'d!0061t' UESCAPE '!';", "alter role x password <redacted>;",
         "alter role x password <redacted>;", "alter role x password <redacted>;"},
        {"alter role x password U&'hunter2';", "alter role x password <redacted>;", "alter role x password <redacted>;",
         "alter role x password <redacted>;"},
        {"alter role x password 'Hun' -- c\n  'ter2';", "alter role x password <redacted> -- c\n  <redacted>;",
         "alter role x password <redacted> -- c\n  <redacted>;", "alter role x password <redacted> -- c\n  <redacted>;"},
        {"alter role x password U&'a''b' /* c */ UESCAPE '!';", "alter role x password <redacted>;",
         "alter role x password <redacted>;", "alter role x password <redacted>;"},
        {"create user mapping for bob server s options (user 'u', password 'hunter2')",
         "create user mapping for bob server s options (user 'u', password <redacted>)",
         "create user mapping for bob server s options (user $1, password <redacted>)",
         "create user mapping for bob server s options (user $1, password <redacted>)"},
        {"alter server s options (set password 'p2', add client_secret 'cs')",
         "alter server s options (set password <redacted>, add client_secret <redacted>)",
         "alter server s options (set password <redacted>, add client_secret <redacted>)",
         "alter server s options (set password <redacted>, add client_secret <redacted>)"},
        {"update users set password_hash = 'abc', name = 'n' where id = 1",
         "update users set password_hash = <redacted>, name = 'n' where id = 1",
         "update users set password_hash = <redacted>, name = $1 where id = $2",
         "update users set password_hash = <redacted>, name = $1 where id = $2"},
        /* the audit keeps no conninfo password; reviewers read strings whole */
        {"select dblink_connect('host=h PassWord = x'), 'postgresql://u:pw@h/db', 'http://example.com/x'", NULL,
         "select dblink_connect(<redacted>), <redacted>, 'http://example.com/x'",
         "select dblink_connect(<redacted>), <redacted>, $1"},
        {"SELECT dblink_exec('dbname=hr', 'DROP TABLE payroll -- password=')", NULL,
         "SELECT dblink_exec('dbname=hr', <redacted>)", "SELECT dblink_exec($1, <redacted>)"},
        /* a token that names a password takes every value out of the record */
        {"insert into users (name, password) values ('bob', 'pw1')", NULL,
         "insert into users (name, password) values ($1, $2)", "insert into users (name, password) values ($1, $2)"},
        {"set app.secret to 'x'", NULL, "set app.secret to $1", "set app.secret to $1"},
        /* Words in comments and code change nothing: the reviewer sees the code. */
        {"DO $$ begin delete from accounts where id = 2; end $$ -- secret", NULL, NULL, NULL},
        {"update accounts set balance = 999999 /* secret */", NULL, NULL, "update accounts set balance = $1 /* secret */"},
        {"DO LANGUAGE plpgsql /* ' */ $$ begin insert into t values (99, 'x'); end $$; update t set b = 5 -- secret",
         NULL, NULL, "DO LANGUAGE plpgsql /* ' */ $$ begin insert into t values (99, 'x'); end $$; update t set b = $1 -- secret"},
        {"create function f() returns int language sql as 'select 1 /* password = x */'", NULL, NULL, NULL},
        {"select 'a', 1, 2.5, B'101', X'ff' from t where x = $1", NULL, NULL,
         "select $2, $3, $4, $5, $6 from t where x = $1"},
        /* A statement that names a password hides its own values, not another's. */
        {"update orders set status = 'pwned' where id = 1; select 1 as password", NULL,
         "update orders set status = 'pwned' where id = 1; select $1 as password",
         "update orders set status = $1 where id = $2; select $3 as password"},
        {"alter role x password 'pw'; update orders set status = 'a' where id = 2; update users set password_hash = 'h'",
         "alter role x password <redacted>; update orders set status = 'a' where id = 2; update users set password_hash = <redacted>",
         "alter role x password <redacted>; update orders set status = 'a' where id = 2; update users set password_hash = <redacted>",
         "alter role x password <redacted>; update orders set status = $1 where id = $2; update users set password_hash = <redacted>"},
        /* parameter numbers past PostgreSQL's: no overflow */
        {"select $2147483647, 1, $99999999999999", NULL, NULL, "select $2147483647, $1000000001, $99999999999999"},
    };
    static const enum policy_redact_mode modes[] = {POLICY_REDACT_REVIEW, POLICY_REDACT_AUDIT, POLICY_REDACT_LITERALS};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *want[] = {cases[i].review, cases[i].audit, cases[i].literals};
        for (int m = 0; m < 3; m++) {
            struct policy_redaction r;
            assert_int_equal(policy_redact(cases[i].sql, modes[m], &r), 0);
            assert_string_equal(r.text, want[m] ? want[m] : cases[i].sql);
            assert_int_equal(r.changed, want[m] != NULL);
            free(r.text);
        }
    }
    /* A parameter in a secret's place is left out, the others kept; for the
     * audit, a token that names a password takes them all. */
    struct policy_redaction r;
    assert_int_equal(policy_redact("update users set password = $1, name = $2 where id = $3", POLICY_REDACT_REVIEW, &r), 0);
    assert_true(policy_param_is_secret(&r, 0));
    assert_false(policy_param_is_secret(&r, 1));
    assert_false(policy_param_is_secret(&r, 2));
    assert_false(r.changed);
    free(r.text);
    assert_int_equal(policy_redact("update users set password = $1, name = $2 where id = $3", POLICY_REDACT_AUDIT, &r), 0);
    assert_true(r.all_params);
    free(r.text);
    assert_int_equal(policy_redact("select * from t where a = $1 -- password", POLICY_REDACT_AUDIT, &r), 0);
    assert_false(r.all_params || policy_param_is_secret(&r, 0));
    free(r.text);
    /* What does not scan is withheld whole: no part of it, no hash of it. */
    assert_int_equal(policy_redact("alter role x password 'unterminated", POLICY_REDACT_REVIEW, &r), 0);
    assert_string_equal(r.text, "-- (statement withheld: its 35 bytes do not scan, so its values cannot be told from the rest)");
    assert_true(r.changed && r.all_params);
    free(r.text);
    /* The audit path: nothing scanned when no word says there may be a secret. */
    assert_int_equal(policy_audit_redaction("select 'x' from t", false, &r), 0);
    assert_false(r.changed);
    assert_null(r.text);
    assert_int_equal(policy_review_redaction("select 'x' from t", &r), 0);
    assert_false(r.changed);
    assert_int_equal(policy_audit_redaction("alter role x password 'p' valid until 'v'", true, &r), 0);
    assert_string_equal(r.text, "alter role x password <redacted> valid until $1");
    assert_true(r.changed && r.all_params);
    free(r.text);
    assert_true(policy_value_holds_secret("host=h password=x", 17));
    assert_true(policy_value_holds_secret("postgres://u:p@h", 16));
    assert_false(policy_value_holds_secret("postgres://u@h:5432/db", 22));
    assert_false(policy_value_holds_secret("my password is long", 19));
}

/* A string whose statements go to review under several rules needs the
 * reviewers of each; an unnamed rule is known by its index. */
static void test_review_rules(void **state)
{
    (void)state;
    char err[POLICY_ERR_MAX];
    struct policy *p = load(
        "{\"default\": {\"action\": \"review\", \"reviewers\": [\"ops\"]},"
        " \"rules\": ["
        "  {\"match\": {\"kinds\": [\"INSERT\"]}, \"action\": \"review\", \"reviewers\": [\"security\"]},"
        "  {\"name\": \"strict\", \"match\": {\"kinds\": [\"DELETE\"]}, \"action\": \"review\", \"reviewers\": [\"security\"]},"
        "  {\"name\": \"lax\", \"match\": {\"kinds\": [\"UPDATE\"]}, \"action\": \"review\", \"reviewers\": [\"dba\"]},"
        "  {\"name\": \"reads\", \"match\": {\"kinds\": [\"SELECT\"]}, \"action\": \"allow\"}"
        " ]}", err);
    assert_non_null(p);
    struct policy_decision d = decide(p, "update t set a = 1 where id = 1; delete from t where id = 2", NULL);
    assert_int_equal(d.action, POLICY_REVIEW);
    assert_string_equal(d.rule_name, "lax"); /* the first of the most severe, as before */
    assert_int_equal(d.nreview_rules, 2);
    assert_int_equal(d.review_rules[0], 2);
    assert_int_equal(d.review_rules[1], 1);
    assert_string_equal(d.reviewers, "dba and security");
    d = decide(p, "insert into t values (1); insert into t values (2); select 1", NULL);
    assert_int_equal(d.nreview_rules, 1);
    assert_int_equal(d.review_rules[0], 0);
    assert_string_equal(d.reviewers, "security");
    d = decide(p, "vacuum; delete from t where id = 3", NULL);
    assert_int_equal(d.nreview_rules, 2);
    assert_int_equal(d.review_rules[0], POLICY_RULE_DEFAULT);
    assert_string_equal(d.reviewers, "ops and security");
    d = decide(p, "select 1", NULL);
    assert_int_equal(d.action, POLICY_ALLOW);
    assert_int_equal(d.nreview_rules, 0);
    policy_free(p);
}

/* A review of an EXECUTE shows what its name was PREPAREd as: every PREPARE
 * of the name (the server may have refused the later ones), secrets left
 * out, a line break in a quoted name kept from starting a line. */
static char *review_of(struct policy_session *s, const char *sql)
{
    struct policy_analysis a;
    char err[POLICY_ERR_MAX];
    assert_int_equal(policy_classify(sql, s, &a, err), 0);
    char *text = policy_review_text(&a, sql);
    policy_analysis_free(&a);
    assert_non_null(text);
    return text;
}

static void test_review_text(void **state)
{
    (void)state;
    struct policy_session *s = policy_session_new();
    char *t = review_of(s, "select 1");
    assert_string_equal(t, "select 1");
    free(t);
    free(review_of(s, "prepare p as delete from accounts"));
    free(review_of(s, "prepare p as select 1"));
    t = review_of(s, "execute p");
    assert_string_equal(t, "-- p was prepared in this session as:\n"
                           "--   prepare p as delete from accounts\n"
                           "--   prepare p as select 1\n"
                           "execute p");
    assert_string_equal(policy_review_statement(t), "execute p");
    free(t);
    free(review_of(s, "prepare \"a\nb\" as select * from users where password = 'secret'"));
    t = review_of(s, "explain analyze execute \"a\nb\"");
    assert_non_null(strstr(t, "-- a?b was prepared in this session as:\n"));
    assert_null(strstr(t, "secret"));
    assert_string_equal(policy_review_statement(t), "explain analyze execute \"a\nb\"");
    assert_non_null(strstr(t, "--   prepare \"a\n--   b\" as select * from users where password = <redacted>\n"));
    free(t);
    /* A PREPARE whose text holds a later one's (as a string) hides nothing. */
    free(review_of(s, "prepare q as select 1 where 'prepare q as delete from accounts' <> ''"));
    free(review_of(s, "prepare q as delete from accounts"));
    free(review_of(s, "prepare q as delete from accounts"));
    t = review_of(s, "execute q");
    assert_string_equal(t, "-- q was prepared in this session as:\n"
                           "--   prepare q as select 1 where 'prepare q as delete from accounts' <> ''\n"
                           "--   prepare q as delete from accounts\n"
                           "execute q");
    free(t);
    /* A cursor declared again and again keeps no text: the PREPAREs' budget
     * (16 MiB) is theirs. 20 DECLAREs of 0.9 MB each would pass it, and
     * leave less than a PREPARE of 0.7 MB needs. */
    size_t big = 900000;
    char *sql = malloc(big + 64);
    assert_non_null(sql);
    for (int i = 0; i < 20; i++) {
        int n = snprintf(sql, 64, "declare c cursor for select %d /* ", i);
        memset(sql + n, 'x', big);
        strcpy(sql + n + big, " */");
        free(review_of(s, sql));
    }
    int n = snprintf(sql, 64, "prepare r as delete from accounts /* ");
    memset(sql + n, 'y', 700000);
    strcpy(sql + n + 700000, " */");
    free(review_of(s, sql));
    free(sql);
    t = review_of(s, "execute r");
    assert_non_null(strstr(t, "-- r was prepared in this session as:\n--   prepare r as delete from accounts /* yyy"));
    assert_null(strstr(t, "not kept"));
    free(t);
    t = review_of(s, "execute nosuch");
    assert_string_equal(t, "execute nosuch"); /* refused: the session never prepared it */
    assert_string_equal(policy_review_statement("-- a comment\nselect 1"), "-- a comment\nselect 1");
    free(t);
    policy_session_free(s);
}

/* hoopctl mcp's read-only check (policy_analysis_not_read): plain reads
 * pass; COPY, utility statements, row locks, SQL run from text and the
 * built-ins that act outside the transaction or on the server's files are
 * refused, by name in any case and under any schema. */
static const char *not_read(const char *sql, char *what, size_t whatlen)
{
    struct policy_analysis a;
    char err[POLICY_ERR_MAX];
    if (policy_classify(sql, NULL, &a, err) != 0)
        fail_msg("%s: %s", sql, err);
    const char *why = policy_analysis_not_read(&a, what, whatlen);
    policy_analysis_free(&a);
    return why;
}

static void test_read_only_check(void **state)
{
    (void)state;
    char what[256];
    static const char *const reads[] = {
        "select 1", "values (1), (2)", "table pg_class", "with a as (select 1) select * from a",
        "explain select pg_terminate_backend(1)", "explain analyze select 1", "show work_mem",
        "select pg_advisory_xact_lock(1)", "select pg_try_advisory_xact_lock_shared(1)",
        "select set_config('work_mem', '1MB', false)", "select pg_backend_pid()",
        "select count(*) from pg_stat_activity", "select x.pg_terminate_backend_count from t x",
    };
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++)
        if (not_read(reads[i], what, sizeof what))
            fail_msg("refused a read: %s (%s)", reads[i], what);
    static const struct { const char *sql, *what; } refused[] = {
        {"select pg_terminate_backend(pid) from pg_stat_activity", "pg_terminate_backend"},
        {"select PG_CATALOG.PG_TERMINATE_BACKEND(1)", "pg_catalog.pg_terminate_backend"},
        {"select \"pg_catalog\".\"pg_cancel_backend\"(1)", "pg_catalog.pg_cancel_backend"},
        {"select \"PG_CANCEL_BACKEND\"(1)", "PG_CANCEL_BACKEND"},
        {"select 1 where exists (select pg_advisory_lock(99))", "pg_advisory_lock"},
        {"with l as (select pg_advisory_lock_shared(1)) select * from l", "pg_advisory_lock_shared"},
        {"select pg_try_advisory_lock(1, 2)", "pg_try_advisory_lock"},
        {"select pg_try_advisory_lock_shared(1)", "pg_try_advisory_lock_shared"},
        {"select pg_create_physical_replication_slot('s', true)", "pg_create_physical_replication_slot"},
        {"select pg_create_logical_replication_slot('s', 'p')", "pg_create_logical_replication_slot"},
        {"select pg_drop_replication_slot('s')", "pg_drop_replication_slot"},
        {"select pg_replication_origin_drop('o')", "pg_replication_origin_drop"},
        {"select pg_reload_conf()", "pg_reload_conf"},
        {"select pg_rotate_logfile()", "pg_rotate_logfile"},
        {"select pg_switch_wal()", "pg_switch_wal"},
        {"select pg_stat_reset()", "pg_stat_reset"},
        {"select pg_stat_reset_shared('bgwriter')", "pg_stat_reset_shared"},
        {"select pg_create_restore_point('r')", "pg_create_restore_point"},
        {"select pg_promote()", "pg_promote"},
        {"select pg_backup_start('b')", "pg_backup_start"},
        {"select * from pg_backup_stop()", "pg_backup_stop"},
        {"select lo_export(1, '/tmp/x')", "lo_export"},
        {"select lo_import('/etc/passwd')", "lo_import"},
        {"select pg_file_write('f', 'x', false)", "pg_file_write"},
        {"select dblink_connect('c', 'dbname=x')", "dblink_connect"},
        {"select pg_read_file('/etc/passwd')", "pg_read_file"},
        {"select pg_read_binary_file('postgresql.conf')", "pg_read_binary_file"},
        {"select * from pg_ls_dir('.')", "pg_ls_dir"},
        {"select (select 1 from t where pg_cancel_backend(t.pid)) from t", "pg_cancel_backend"},
        {"copy (select 1) to program 'true'", "COPY_TO"},
        {"copy (select 1) to '/tmp/x'", "COPY_TO"},
        {"copy t to stdout", "COPY_TO"},
        {"copy t from stdin", "COPY_FROM"},
        {"checkpoint", "CHECK_POINT"},
        {"vacuum", "VACUUM"},
        {"listen x", "LISTEN"},
        {"set work_mem = '1MB'", "SET"},
        {"begin", "BEGIN"},
        {"do $$begin perform pg_terminate_backend(1); end$$", "DO"},
        {"declare c cursor for select 1", "DECLARE_CURSOR"},
        {"insert into t values (1)", "INSERT"},
        {"with x as (delete from t returning *) select * from x", "DELETE"},
        {"select * into t2 from t", "SELECT_INTO"},
        {"explain analyze delete from t", "DELETE"},
        {"select 1 from t for update", "SELECT ... FOR UPDATE/SHARE"},
        {"select 1 from t for key share", "SELECT ... FOR UPDATE/SHARE"},
        {"select * from (select * from t for share) s", "SELECT ... FOR UPDATE/SHARE"},
        {"select query_to_xml('select pg_terminate_backend(1)', true, true, '')", "SQL run from text"},
        {"select 1; select pg_reload_conf()", "pg_reload_conf"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        what[0] = '\0';
        if (!not_read(refused[i].sql, what, sizeof what))
            fail_msg("let through: %s", refused[i].sql);
        if (strcmp(what, refused[i].what) != 0)
            fail_msg("%s: named '%s', want '%s'", refused[i].sql, what, refused[i].what);
    }
    /* The one list: a session lock keeps a value (the masked-copy guard)
     * and outlives the transaction; its _xact_ twin only keeps a value. */
    assert_int_equal(policy_builtin_effects("pg_catalog.pg_advisory_lock"),
                     POLICY_BUILTIN_KEEPS_VALUE | POLICY_BUILTIN_OUTSIDE_TX);
    assert_int_equal(policy_builtin_effects("pg_advisory_xact_lock"), POLICY_BUILTIN_KEEPS_VALUE);
    assert_int_equal(policy_builtin_effects("Pg_Read_File"), POLICY_BUILTIN_SERVER_FILE);
    assert_int_equal(policy_builtin_effects("pg_stat_reset_slru"), POLICY_BUILTIN_OUTSIDE_TX);
    assert_int_equal(policy_builtin_effects("pg_stat_activity"), 0);
    assert_int_equal(policy_builtin_effects("now"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(redaction),
        cmocka_unit_test(test_review_text),
        cmocka_unit_test(test_review_rules),
        cmocka_unit_test(test_validation_errors),
        cmocka_unit_test(test_first_match_and_groups),
        cmocka_unit_test(test_relation_globs),
        cmocka_unit_test(test_default_policy),
        cmocka_unit_test(test_cache),
        cmocka_unit_test(test_shape_cache),
        cmocka_unit_test(test_prepared_tracker),
        cmocka_unit_test(test_analysis_json_and_redaction),
        cmocka_unit_test(test_masked_copy_guard),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_hostile_sql),
        cmocka_unit_test(test_read_only_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
