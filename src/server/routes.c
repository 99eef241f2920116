/* routes.c — the /api/v1 handlers: connections, API keys, event ingest,
 * sessions, audit verification and export, and reviews, each with its
 * input checks and group rules. */
#include "internal.h"
#include "hoopctl/log.h"
#include "hoopctl/policy.h"
#include "hoopctl/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MOD "server"

static bool seg_is(const struct srv_req *rq, int i, const char *s)
{
    return i < rq->nseg && strcmp(rq->seg[i], s) == 0;
}

static enum evhttp_cmd_type method(const struct srv_req *rq)
{
    return evhttp_request_get_command(rq->r);
}

/* ---- connections --------------------------------------------------------- */

/* What the gateway speaks (libpq's "allow", plain first, is not among them). */
static const char *const sslmodes[] = {"disable", "prefer", "require", "verify-ca", "verify-full", NULL};

static bool valid_host(const char *h)
{
    size_t n = strlen(h);
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((h[i] >= 'a' && h[i] <= 'z') || (h[i] >= 'A' && h[i] <= 'Z') ||
              (h[i] >= '0' && h[i] <= '9') || h[i] == '.' || h[i] == '-' || h[i] == ':'))
            return false;
    return true;
}

/* A connection as the API shows it: never the sealed secret. */
static json_t *conn_view(json_t *c)
{
    json_t *v = json_deep_copy(c);
    json_t *sec = json_object_get(v, "secret_enc");
    json_object_set_new(v, "has_secret", json_boolean(json_is_string(sec)));
    json_object_del(v, "secret_enc");
    char digest[65]; /* the version of the policy that reviews name rules of */
    policy_doc_digest(json_object_get(c, "policy"), digest);
    json_object_set_new(v, "policy_digest", json_string(digest));
    return v;
}

static const struct server_field conn_fields[] = {
    {"name", "n"}, {"host", "s!"}, {"port", "i!"}, {"database", "n!"}, {"user", "n!"},
    {"sslmode", "s"}, {"secret", "s"}, {"allowed_groups", "S"}, {"reviewer_groups", "S"},
    {"policy", "o"}, {NULL, NULL}};

/* A connection's policy is checked where it is set, so that a broken one is
 * refused (400, naming the rule and field) instead of failing each connect.
 * An empty object means the built-in default. Replies and returns false. */
static bool policy_ok(struct srv_req *rq, json_t *doc)
{
    if (!json_is_object(doc) || json_object_size(doc) == 0)
        return true;
    char err[POLICY_ERR_MAX];
    struct policy *p = policy_load_json(doc, err);
    if (!p) {
        srv_reply_error(rq, 400, "field 'policy': %s", err);
        return false;
    }
    policy_free(p);
    return true;
}

/* A connection's policy as its gateways load it: its own, or the built-in
 * default when it has none. A new reference; NULL when memory runs out. */
static json_t *conn_policy(json_t *conn)
{
    json_t *pol = json_object_get(conn, "policy");
    return json_is_object(pol) && json_object_size(pol) ? json_incref(pol) : policy_default_json();
}

/* Whether digest is that of the connection's policy as stored now. */
static bool same_policy(json_t *conn, const char *digest)
{
    char now[65];
    policy_doc_digest(json_object_get(conn, "policy"), now);
    return digest && strcmp(now, digest) == 0;
}

/* What an admin should hear of a connection as saved: review outcomes whose
 * reviewers share no group with its reviewer groups (a decider must be in
 * both). Added to reply as "warnings" (and logged) when there are any. */
static void conn_warnings(json_t *conn, json_t *reply)
{
    json_t *rg = json_object_get(conn, "reviewer_groups"), *doc = conn_policy(conn), *w = json_array();
    size_t i, j, k;
    json_t *x, *g, *h;
    json_t *outcomes = json_array();
    json_array_extend(outcomes, json_object_get(doc, "rules"));
    if (json_is_object(json_object_get(doc, "default")))
        json_array_append_new(outcomes, json_pack("{s:s,s:O?}", "name", "default", "reviewers",
                                                  json_object_get(json_object_get(doc, "default"), "reviewers")));
    json_array_foreach(outcomes, i, x) {
        json_t *who = json_object_get(x, "reviewers");
        bool shared = false;
        json_array_foreach(who, j, g) json_array_foreach(rg, k, h) shared = shared || json_equal(g, h);
        if (json_array_size(who) && !json_array_size(rg)) {
            json_array_append_new(w, json_string("the connection has no reviewer_groups: what its policy sends to"
                                                 " review can never be approved"));
            break;
        }
        if (json_array_size(who) && !shared) {
            char *names = json_dumps(who, JSON_COMPACT), *groups = json_dumps(rg, JSON_COMPACT);
            json_array_append_new(w, json_sprintf("rule %s sends statements to review by %s, none of which is"
                                                  " among the connection's reviewer_groups %s: only a user in both"
                                                  " can see and decide them",
                                                  json_string_value(json_object_get(x, "name")), names ? names : "?",
                                                  groups ? groups : "?"));
            free(names);
            free(groups);
        }
    }
    if (json_array_size(w) && json_is_object(reply)) {
        json_array_foreach(w, i, x) log_warn(MOD, "connection %s: %s", json_string_value(json_object_get(conn, "name")),
                                             json_string_value(x));
        json_object_set(reply, "warnings", w);
    }
    json_decref(w);
    json_decref(outcomes);
    json_decref(doc);
}

static void conn_put(struct srv_req *rq, const char *name)
{
    json_t *b = srv_body(rq, conn_fields);
    if (!b)
        return;
    const char *bn = json_string_value(json_object_get(b, "name"));
    const char *host = json_string_value(json_object_get(b, "host"));
    json_int_t port = json_integer_value(json_object_get(b, "port"));
    const char *sslmode = json_string_value(json_object_get(b, "sslmode"));
    const char *secret = json_string_value(json_object_get(b, "secret"));
    bool mode_ok = !sslmode;
    for (int i = 0; sslmode && sslmodes[i]; i++)
        mode_ok |= strcmp(sslmode, sslmodes[i]) == 0;
    if (bn && strcmp(bn, name) != 0) {
        srv_reply_error(rq, 400, "field 'name' does not match the URL");
    } else if (!valid_host(host)) {
        srv_reply_error(rq, 400, "field 'host' must be a host name or address");
    } else if (port < 1 || port > 65535) {
        srv_reply_error(rq, 400, "field 'port' must be 1..65535");
    } else if (!mode_ok) {
        srv_reply_error(rq, 400, "field 'sslmode' must be one of disable, prefer, require, verify-ca, "
                                 "verify-full");
    } else if (secret && !rq->srv->opt->have_master_key) {
        srv_reply_error(rq, 400, "the server has no master key, so it cannot keep secrets");
    } else if (secret && strlen(secret) > UTIL_SECRET_MAX) {
        srv_reply_error(rq, 400, "field 'secret' is too long");
    } else if (!policy_ok(rq, json_object_get(b, "policy"))) {
        /* answered */
    } else {
        json_t *c = json_pack("{s:s,s:s,s:I,s:O,s:O,s:s}", "name", name, "host", host, "port", port,
                              "database", json_object_get(b, "database"), "user",
                              json_object_get(b, "user"), "sslmode", sslmode ? sslmode : "verify-full");
        json_t *ag = json_object_get(b, "allowed_groups"), *rg = json_object_get(b, "reviewer_groups");
        json_t *pol = json_object_get(b, "policy");
        json_object_set_new(c, "allowed_groups", json_is_array(ag) ? json_incref(ag) : json_array());
        json_object_set_new(c, "reviewer_groups", json_is_array(rg) ? json_incref(rg) : json_array());
        json_object_set_new(c, "policy", json_is_object(pol) ? json_incref(pol) : json_object());
        char err[256], names[256];
        int rc = 0, bad = 0;
        char *sealed = NULL;
        /* Another server on this store, started with another key before any
         * secret existed, may have sealed some: don't split the store. */
        if (secret && (bad = server_secrets_unopened(rq->srv->store, rq->srv->opt->master_key, name, names,
                                                     sizeof names, err, sizeof err)) < 0)
            srv_reply_store(rq, STORE_ERROR, err);
        else if (bad > 0)
            srv_reply_error(rq, 500,
                            "this server's master key does not open the secrets of %s: the servers on this "
                            "store use different master keys; the secret was not stored",
                            names);
        else if (secret &&
                 server_secret_seal(rq->srv->opt->master_key, name, secret, &sealed, err, sizeof err) < 0)
            srv_reply_error(rq, 500, "%s", err);
        else {
            if (sealed)
                json_object_set_new(c, "secret_enc", json_string(sealed));
            free(sealed);
            rc = store_connection_put(rq->srv->store, c, err, sizeof err);
            json_t *saved = NULL;
            if (rc || (rc = store_connection_get(rq->srv->store, name, &saved, err, sizeof err)))
                srv_reply_store(rq, rc, err);
            else {
                log_info(MOD, "connection %s saved by %s", name, rq->id.subject);
                json_t *view = conn_view(saved);
                conn_warnings(saved, view);
                srv_reply_json(rq, 200, view);
                json_decref(saved);
            }
        }
        json_decref(c);
    }
    /* The secret's plain text is wiped from the request's copy. */
    json_t *sv = json_object_get(b, "secret");
    if (json_is_string(sv))
        util_secure_zero((char *)json_string_value(sv), json_string_length(sv));
    json_decref(b);
}

static void conn_credentials(struct srv_req *rq, json_t *c)
{
    if (!srv_in_any(&rq->id, json_object_get(c, "allowed_groups"))) {
        srv_reply_error(rq, 403, "you are not in a group allowed to use this connection");
        return;
    }
    const char *sealed = json_string_value(json_object_get(c, "secret_enc"));
    const char *name = json_string_value(json_object_get(c, "name"));
    char *plain = NULL, err[256];
    if (sealed && (!rq->srv->opt->have_master_key ||
                   server_secret_open(rq->srv->opt->master_key, name, sealed, &plain, err, sizeof err) < 0)) {
        log_error(MOD, "connection %s: cannot open its secret: %s", name,
                  rq->srv->opt->have_master_key ? err : "this server has no master key");
        srv_reply_error(rq, 500, "the connection's secret cannot be decrypted");
        return;
    }
    json_t *v = conn_view(c);
    json_object_set_new(v, "password", plain ? json_string(plain) : json_null());
    if (plain) {
        util_secure_zero(plain, strlen(plain));
        free(plain);
    }
    log_info(MOD, "credentials of connection %s handed out for %s", name, rq->id.subject);
    srv_reply_json(rq, 200, v);
}

static void route_connections(struct srv_req *rq)
{
    struct srv *srv = rq->srv;
    char err[256];
    int rc;
    if (rq->nseg == 3) {
        if (method(rq) != EVHTTP_REQ_GET) {
            srv_reply_error(rq, 405, "method not allowed");
            return;
        }
        json_t *all = NULL, *out = json_array();
        if ((rc = store_connection_list(srv->store, &all, err, sizeof err))) {
            json_decref(out);
            srv_reply_store(rq, rc, err);
            return;
        }
        size_t i;
        json_t *c;
        json_array_foreach(all, i, c) {
            if (srv_is_admin(rq) || srv_in_any(&rq->id, json_object_get(c, "allowed_groups")) ||
                srv_in_any(&rq->id, json_object_get(c, "reviewer_groups")))
                json_array_append_new(out, conn_view(c));
        }
        json_decref(all);
        srv_reply_json(rq, 200, json_pack("{s:o}", "connections", out));
        return;
    }
    const char *name = rq->seg[3];
    if (!server_valid_name(name)) {
        srv_reply_error(rq, 400, "a connection name has letters, digits, '.', '_' and '-' only");
        return;
    }
    if (rq->nseg == 5 && seg_is(rq, 4, "credentials") && method(rq) == EVHTTP_REQ_GET) {
        json_t *c = NULL;
        if ((rc = store_connection_get(srv->store, name, &c, err, sizeof err))) {
            srv_reply_store(rq, rc, err);
            return;
        }
        conn_credentials(rq, c);
        json_decref(c);
        return;
    }
    if (rq->nseg == 4 && method(rq) == EVHTTP_REQ_GET) {
        json_t *c = NULL;
        if ((rc = store_connection_get(srv->store, name, &c, err, sizeof err))) {
            srv_reply_store(rq, rc, err);
            return;
        }
        if (!srv_is_admin(rq) && !srv_in_any(&rq->id, json_object_get(c, "allowed_groups")) &&
            !srv_in_any(&rq->id, json_object_get(c, "reviewer_groups")))
            srv_reply_error(rq, 404, "not found");
        else
            srv_reply_json(rq, 200, conn_view(c));
        json_decref(c);
        return;
    }
    if (!srv_is_admin(rq)) {
        srv_reply_error(rq, 403, "only the %s group manages connections", srv->admin_group);
        return;
    }
    if (rq->nseg == 4 && method(rq) == EVHTTP_REQ_PUT) {
        conn_put(rq, name);
    } else if (rq->nseg == 4 && method(rq) == EVHTTP_REQ_DELETE) {
        if ((rc = store_connection_delete(srv->store, name, err, sizeof err)))
            srv_reply_store(rq, rc, err);
        else
            srv_reply_json(rq, 200, json_pack("{s:s,s:b}", "name", name, "deleted", 1));
    } else if (rq->nseg == 5 && seg_is(rq, 4, "policy") && method(rq) == EVHTTP_REQ_PUT) {
        static const struct server_field pf[] = {{"policy", "o!"}, {NULL, NULL}};
        json_t *b = srv_body(rq, pf);
        if (!b)
            return;
        if (!policy_ok(rq, json_object_get(b, "policy"))) {
            json_decref(b);
            return;
        }
        rc = store_connection_set_policy(srv->store, name, json_object_get(b, "policy"), err, sizeof err);
        json_decref(b);
        json_t *saved = NULL;
        if (rc || (rc = store_connection_get(srv->store, name, &saved, err, sizeof err))) {
            srv_reply_store(rq, rc, err);
        } else {
            json_t *reply = json_pack("{s:s,s:b}", "name", name, "policy_set", 1);
            conn_warnings(saved, reply);
            srv_reply_json(rq, 200, reply);
        }
        json_decref(saved);
    } else {
        srv_reply_error(rq, 404, "no such route");
    }
}

/* ---- API keys ------------------------------------------------------------ */

static void route_apikeys(struct srv_req *rq)
{
    struct srv *srv = rq->srv;
    char err[256];
    int rc;
    if (!srv_is_admin(rq)) {
        srv_reply_error(rq, 403, "only the %s group manages API keys", srv->admin_group);
        return;
    }
    if (rq->nseg == 4 && method(rq) == EVHTTP_REQ_GET) {
        json_t *keys = NULL;
        if ((rc = store_apikey_list(srv->store, &keys, err, sizeof err)))
            srv_reply_store(rq, rc, err);
        else
            srv_reply_json(rq, 200, json_pack("{s:o}", "apikeys", keys));
    } else if (rq->nseg == 4 && method(rq) == EVHTTP_REQ_POST) {
        static const struct server_field kf[] = {{"name", "n!"}, {"groups", "S"}, {NULL, NULL}};
        json_t *b = srv_body(rq, kf);
        if (!b)
            return;
        char token[64], hash[65], id[37];
        json_t *groups = json_object_get(b, "groups");
        if (server_apikey_mint(token, hash) < 0 || util_uuid_v4(id) < 0) {
            json_decref(b);
            srv_reply_error(rq, 500, "no randomness");
            return;
        }
        const char *name = json_string_value(json_object_get(b, "name"));
        rc = store_apikey_create(srv->store, id, name, hash, groups ? groups : json_array(),
                                 rq->id.subject, err, sizeof err);
        if (rc)
            srv_reply_store(rq, rc, err);
        else
            srv_reply_json(rq, 201, json_pack("{s:s,s:s,s:O,s:s}", "id", id, "name", name, "groups",
                                              groups ? groups : json_array(), "token", token));
        util_secure_zero(token, sizeof token);
        json_decref(b);
    } else if (rq->nseg == 5 && method(rq) == EVHTTP_REQ_DELETE) {
        if (!server_valid_name(rq->seg[4])) {
            srv_reply_error(rq, 400, "bad API key id");
            return;
        }
        if ((rc = store_apikey_revoke(srv->store, rq->seg[4], err, sizeof err)))
            srv_reply_store(rq, rc, err);
        else
            srv_reply_json(rq, 200, json_pack("{s:s,s:b}", "id", rq->seg[4], "revoked", 1));
    } else {
        srv_reply_error(rq, 404, "no such route");
    }
}

/* ---- event ingest -------------------------------------------------------- */

static const struct server_field event_fields[] = {
    {"id", "I!"}, {"session_id", "I!"}, {"seq", "i!"}, {"type", "s!"}, {"time", "i!"},
    {"data", "o!"}, {NULL, NULL}};
static const struct server_field start_fields[] = {
    {"connection", "n!"}, {"client_addr", "s"}, {"application", "s"}, {"gateway_host", "s"},
    {"database", "s"}, {"db_user", "s"}, {NULL, NULL}};
static const struct server_field end_fields[] = {
    {"reason", "s"}, {"error", "s"}, {"statements", "i"}, {NULL, NULL}};
static const struct server_field stmt_fields[] = {
    {"text", "s!"}, {"params", "a"}, {"normalized", "s"}, {"fingerprint", "s"}, {"kind", "s"},
    {"relations", "a"}, {"decision", "s!"}, {"rule", "s"}, {"review_id", "I"},
    {"masked_counts", "o"}, {"duration_us", "i"}, {"rows", "i"}, {"error", "s"}, {"sqlstate", "s"},
    {"review", "o"}, {"command_tag", "s"}, {"redacted", "b"}, {"review_hash", "s"}, {NULL, NULL}};
/* A result sample; the completion fields (command_tag, row_count,
 * duration_us, sqlstate, error) ride on it when the statement returned rows. */
static const struct server_field result_fields[] = {
    {"statement_seq", "i!"}, {"columns", "a!"}, {"rows", "a!"}, {"truncated", "b"},
    {"command_tag", "s"}, {"row_count", "i"}, {"duration_us", "i"}, {"sqlstate", "s"}, {"error", "s"},
    {"outcome", "s"}, {"column_types", "a"}, {"notices", "a"}, {NULL, NULL}};
/* How a statement (or one statement of a multi-statement Query) finished;
 * notices: the lines it printed ("NOTICE:  ..."), for replay. */
static const struct server_field completion_fields[] = {
    {"statement_seq", "i!"}, {"command_tag", "s"}, {"row_count", "i"}, {"duration_us", "i"},
    {"sqlstate", "s"}, {"error", "s"}, {"outcome", "s"}, {"notices", "a"}, {NULL, NULL}};
#define EVENT_NOTICES_MAX 64

static bool is_requester(const struct auth_identity *id, json_t *r)
{
    const char *sub = json_string_value(json_object_get(r, "requester"));
    const char *iss = json_string_value(json_object_get(r, "requester_issuer"));
    return sub && iss && strcmp(sub, id->subject) == 0 && strcmp(iss, id->issuer) == 0;
}

/* The connection of session sid: as stored (its first session_start set
 * it for good), or as an earlier event of this batch starts it; NULL when
 * neither says. *hold is the stored session, for the caller to free. */
static const char *session_connection(struct srv_req *rq, const char *sid, const struct store_event *prior,
                                      size_t nprior, json_t **hold)
{
    char err[200];
    *hold = NULL;
    if (store_session_get(rq->srv->store, sid, hold, err, sizeof err) == 0) {
        const char *c = json_string_value(json_object_get(*hold, "connection"));
        if (c)
            return c;
    }
    for (size_t i = 0; i < nprior; i++)
        if (strcmp(prior[i].type, "session_start") == 0 && strcmp(prior[i].session_id, sid) == 0)
            return prior[i].connection;
    return NULL;
}

/* Whether event text `text` is what the audit keeps of `statement` (the
 * text reviewers read, less the preface that shows what an EXECUTE's name
 * was prepared as): the statement itself, or its redaction as the gateway
 * makes it (passwords, conninfo secrets; every literal under
 * redact_literals). Redone here rather than taken from the gateway's word,
 * at a scan of the statement, for events that name one of their sender's
 * reviews only. */
static bool text_is_audit_of(const char *text, const char *statement, const char *hash)
{
    char h[65];
    util_sha256_hex(text, strlen(text), h);
    if (strcmp(h, hash) == 0)
        return true;
    statement = policy_review_statement(statement);
    if (strcmp(text, statement) == 0)
        return true;
    for (int literals = 0; literals < 2; literals++) {
        struct policy_redaction red;
        if (policy_audit_redaction(statement, literals, &red) < 0)
            return false;
        bool same = red.changed && strcmp(red.text, text) == 0;
        free(red.text);
        if (same)
            return true;
    }
    return false;
}

/* Whether review r is about this statement event: its connection is the
 * session's, it asked for this session (when it said), it is not an approval
 * still unused (a statement runs only on a consumed one: an unused approval
 * beside a statement would claim a release that never happened), and the
 * event's text is the one the reviewers read. */
static bool review_fits(json_t *r, json_t *d, const char *session_id, const char *connection)
{
    const char *text = json_string_value(json_object_get(d, "text"));
    const char *want = json_string_value(json_object_get(r, "statement_hash"));
    const char *stmt = json_string_value(json_object_get(r, "statement"));
    const char *rsess = json_string_value(json_object_get(r, "session_id"));
    const char *rconn = json_string_value(json_object_get(r, "connection"));
    const char *status = json_string_value(json_object_get(r, "status"));
    if (!text || !want || !stmt || !rconn || !status || !connection || strcmp(rconn, connection) != 0 ||
        (rsess && rsess[0] && (!session_id || strcmp(rsess, session_id) != 0)))
        return false;
    return strcmp(status, "approved") != 0 && text_is_audit_of(text, stmt, want);
}

/* A statement's review is the store's truth (who decided it, how, why),
 * never what the event says: the gateway cannot vouch for a reviewer. It is
 * joined only when the review is the caller's own (a gateway asks for the
 * reviews of its user's statements), is about this very statement
 * (review_fits), and no other statement event has it: else the event keeps
 * no review, so that one approval cannot be shown beside other statements. */
static int event_join_review(struct srv_req *rq, json_t *d, struct store_event *e,
                             const struct store_event *prior, size_t nprior, char *err, size_t errlen)
{
    json_t *given = json_object_get(d, "review");
    const char *id = json_string_value(json_object_get(d, "review_id"));
    if (!id)
        id = json_string_value(json_object_get(given, "id"));
    json_t *r = NULL, *sess = NULL;
    int rc = id ? store_review_get(rq->srv->store, id, &r, err, errlen) : STORE_NOT_FOUND;
    bool ok = rc == 0 && is_requester(&rq->id, r) &&
              review_fits(r, d, e->session_id, session_connection(rq, e->session_id, prior, nprior, &sess));
    for (size_t i = 0; ok && i < nprior; i++) /* the same batch cannot show it twice either */
        ok = !(prior[i].review_id && strcmp(prior[i].review_id, id) == 0 && strcmp(prior[i].id, e->id) != 0);
    bool fresh = false;
    if (ok)
        ok = (rc = store_review_claim(rq->srv->store, id, e->id, &fresh, err, errlen)) == 0;
    json_decref(sess);
    if (!ok) {
        json_decref(r);
        /* The store failing (or busy) says nothing of the review: the batch
         * fails and is sent again, rather than being stored without it. */
        if (rc == STORE_ERROR || rc == STORE_BUSY)
            return rc;
        json_object_del(d, "review");
        json_object_del(d, "review_id");
        return 0;
    }
    json_t *j = json_object();
    static const char *const keys[] = {"id", "status", "decided_by", "reason", "requester"};
    for (size_t i = 0; j && i < sizeof keys / sizeof *keys; i++) {
        json_t *v = json_object_get(r, keys[i]);
        if (json_is_string(v))
            json_object_set(j, keys[i], v);
    }
    json_decref(r);
    if (j) {
        json_object_set_new(d, "review", j); /* (given, and an id taken from it, are gone now) */
        e->review_id = json_string_value(json_object_get(j, "id"));
        e->review_claimed = fresh;
    }
    return 0;
}

/* A result's data without its rows, for a session whose sample budget is
 * spent (the store asks only then): the completion fields stay. */
static char *result_capped(void *arg)
{
    json_t *d = arg;
    json_t *cap = json_pack("{s:O,s:O,s:[],s:b}", "statement_seq", json_object_get(d, "statement_seq"),
                            "columns", json_object_get(d, "columns"), "rows", "truncated", 1);
    static const char *const kept[] = {"command_tag", "row_count", "duration_us", "sqlstate", "error",
                                       "outcome", "column_types", "notices"};
    for (size_t k = 0; cap && k < sizeof kept / sizeof *kept; k++)
        if (json_object_get(d, kept[k]))
            json_object_set(cap, kept[k], json_object_get(d, kept[k]));
    char *text = cap ? json_dumps(cap, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(cap);
    return text;
}

/* The arrays of an event's data hold a bounded number of scalars, so that no
 * event carries millions of tiny values, which cost many times their size in
 * memory each time the session is read back. */
#define EVENT_MAX_PARAMS 65535  /* PostgreSQL's cap on a Bind's parameters */
#define EVENT_MAX_COLUMNS 1664  /* PostgreSQL's cap on a result's columns */
/* Up to max items, each a scalar or, with flat_objects, an object of at most
 * 16 scalar members (columns: {"name", "type_oid"}). */
static bool items_ok(json_t *a, size_t max, bool flat_objects)
{
    if (!a)
        return true;
    if (!json_is_array(a) || json_array_size(a) > max)
        return false;
    size_t i;
    json_t *c;
    json_array_foreach(a, i, c) {
        if (json_is_array(c) || (json_is_object(c) && (!flat_objects || json_object_size(c) > 16)))
            return false;
        const char *k;
        json_t *v;
        json_object_foreach(c, k, v) if (json_is_array(v) || json_is_object(v)) return false;
    }
    return true;
}

/* masked_counts: {label: n} or {"columns": {label: n}, "detectors": {name: n}}. */
static bool counts_ok(json_t *o, int depth)
{
    if (!o)
        return true;
    if (!json_is_object(o) || json_object_size(o) > EVENT_MAX_COLUMNS)
        return false;
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        if (json_is_array(v) || (json_is_object(v) && (depth > 0 || !counts_ok(v, 1))))
            return false;
    }
    return true;
}

static bool event_arrays_ok(json_t *d)
{
    json_t *rows = json_object_get(d, "rows"), *row;
    size_t i;
    if (json_is_array(rows))
        json_array_foreach(rows, i, row) if (!items_ok(row, EVENT_MAX_COLUMNS, false)) return false;
    return counts_ok(json_object_get(d, "masked_counts"), 0) &&
           items_ok(json_object_get(d, "params"), EVENT_MAX_PARAMS, false) &&
           items_ok(json_object_get(d, "relations"), EVENT_MAX_PARAMS, false) &&
           items_ok(json_object_get(d, "columns"), EVENT_MAX_COLUMNS, true) &&
           items_ok(json_object_get(d, "column_types"), EVENT_MAX_COLUMNS, false);
}

/* Check one event; fills e (pointing into ev and into *data). prior: the
 * batch's events before it. 0; -1 (400, err says why); or, when the store
 * failed while it looked up the event's review, STORE_BUSY, or -2 for
 * STORE_ERROR (whose own value is the -1 of a bad event). */
static int event_prepare(struct srv_req *rq, json_t *ev, struct store_event *e, const struct store_event *prior,
                         size_t nprior, char **data, char *err, size_t errlen)
{
    if (server_json_check(ev, event_fields, rq->srv->max_string, err, errlen) < 0)
        return -1;
    memset(e, 0, sizeof *e);
    e->id = json_string_value(json_object_get(ev, "id"));
    e->session_id = json_string_value(json_object_get(ev, "session_id"));
    e->seq = json_integer_value(json_object_get(ev, "seq"));
    e->type = json_string_value(json_object_get(ev, "type"));
    e->ts = json_integer_value(json_object_get(ev, "time"));
    json_t *d = json_object_get(ev, "data");
    if (e->seq < 0 || e->ts < 0) {
        snprintf(err, errlen, "seq and time must not be negative");
        return -1;
    }
    const struct server_field *spec;
    if (strcmp(e->type, "session_start") == 0)
        spec = start_fields;
    else if (strcmp(e->type, "session_end") == 0)
        spec = end_fields;
    else if (strcmp(e->type, "statement") == 0)
        spec = stmt_fields;
    else if (strcmp(e->type, "result") == 0)
        spec = result_fields;
    else if (strcmp(e->type, "completion") == 0)
        spec = completion_fields;
    else {
        snprintf(err, errlen,
                 "unknown event type; one of session_start, session_end, statement, result, completion");
        return -1;
    }
    char derr[200];
    if (server_json_check(d, spec, rq->srv->max_string, derr, sizeof derr) < 0) {
        snprintf(err, errlen, "%s data: %s", e->type, derr);
        return -1;
    }
    if (!event_arrays_ok(d)) {
        snprintf(err, errlen,
                 "%s data: params and relations hold at most %d scalars; columns (names or flat objects),"
                 " column_types, each row and masked_counts at most %d", e->type, EVENT_MAX_PARAMS,
                 EVENT_MAX_COLUMNS);
        return -1;
    }
    json_t *notices = json_object_get(d, "notices");
    if (json_is_array(notices)) {
        size_t i;
        json_t *line;
        bool ok = json_array_size(notices) <= EVENT_NOTICES_MAX;
        json_array_foreach(notices, i, line) if (!json_is_string(line) || json_string_length(line) > 4096)
            ok = false;
        if (!ok) {
            snprintf(err, errlen, "%s data: notices must be at most %d strings of at most 4096 bytes", e->type,
                     EVENT_NOTICES_MAX);
            return -1;
        }
    }
    if (spec == start_fields) {
        e->connection = json_string_value(json_object_get(d, "connection"));
        /* A session that names a connection its user may not use (now) is
         * still stored, and said in the log: the user may have been taken
         * out of its groups since the session ran, and refusing its events
         * would lose the audit of what they did while they could. */
        json_t *conn = NULL;
        char e2[200];
        if (store_connection_get(rq->srv->store, e->connection, &conn, e2, sizeof e2) == 0 &&
            !srv_in_any(&rq->id, json_object_get(conn, "allowed_groups")))
            log_warn(MOD, "session %s of %s names connection %s, which %s may not use (now)", e->session_id,
                     rq->id.subject, e->connection, rq->id.subject);
        json_decref(conn);
        e->client_addr = json_string_value(json_object_get(d, "client_addr"));
        e->application = json_string_value(json_object_get(d, "application"));
        e->gateway_host = json_string_value(json_object_get(d, "gateway_host"));
    } else if (spec == stmt_fields) {
        const char *dec = json_string_value(json_object_get(d, "decision"));
        if (strcmp(dec, "allow") && strcmp(dec, "deny") && strcmp(dec, "review") && strcmp(dec, "mask")) {
            snprintf(err, errlen, "statement data: decision must be allow, deny, review or mask");
            return -1;
        }
        const char *ss = json_string_value(json_object_get(d, "sqlstate"));
        if (ss && strlen(ss) != 5) {
            snprintf(err, errlen, "statement data: sqlstate must be 5 characters");
            return -1;
        }
        e->denial = strcmp(dec, "deny") == 0;
        int rc = event_join_review(rq, d, e, prior, nprior, err, errlen);
        if (rc)
            return rc == STORE_ERROR ? -2 : rc;
        e->review = strcmp(dec, "review") == 0 || json_is_string(json_object_get(d, "review_id"));
    } else if (spec == result_fields) {
        json_t *rows = json_object_get(d, "rows");
        size_t nrows = json_array_size(rows);
        if ((int64_t)nrows > rq->srv->sample_rows_statement) {
            while ((int64_t)json_array_size(rows) > rq->srv->sample_rows_statement)
                json_array_remove(rows, json_array_size(rows) - 1);
            json_object_set_new(d, "truncated", json_true());
        }
        e->sample_rows = (int64_t)json_array_size(rows);
        e->capped = result_capped;
        e->capped_arg = d;
    }
    *data = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
    e->data = *data;
    return *data ? 0 : -1;
}

/* The batch was not stored: the reviews its events claimed go back. */
static void give_back_claims(struct srv_req *rq, const struct store_event *es, size_t n)
{
    char err[200];
    for (size_t i = 0; es && i < n; i++)
        if (es[i].review_claimed && store_review_unclaim(rq->srv->store, es[i].review_id, es[i].id, err, sizeof err))
            log_warn(MOD, "giving back review %s: %s", es[i].review_id, err);
}

static void route_events(struct srv_req *rq)
{
    struct srv *srv = rq->srv;
    if (rq->nseg != 3 || method(rq) != EVHTTP_REQ_POST) {
        srv_reply_error(rq, 405, "POST a batch: {\"events\": [...]}");
        return;
    }
    static const struct server_field bf[] = {{"events", "a!"}, {NULL, NULL}};
    json_t *b = srv_body(rq, bf);
    if (!b)
        return;
    json_t *evs = json_object_get(b, "events");
    size_t n = json_array_size(evs);
    if (n == 0 || n > srv->max_batch) {
        json_decref(b);
        srv_reply_error(rq, n ? 413 : 400, "a batch holds 1..%zu events, not %zu", srv->max_batch, n);
        return;
    }
    struct store_event *es = calloc(n, sizeof *es);
    char **texts = calloc(n, sizeof *texts);
    char err[300];
    int bad = -1, prc = 0;
    for (size_t i = 0; es && texts && i < n; i++) {
        if ((prc = event_prepare(rq, json_array_get(evs, i), &es[i], es, i, &texts[i], err, sizeof err)) != 0) {
            bad = (int)i;
            break;
        }
    }
    if (!es || !texts) {
        srv_reply_error(rq, 503, "out of memory");
    } else if (bad >= 0 && prc != -1) { /* the store failed, not the event */
        give_back_claims(rq, es, (size_t)bad + 1);
        srv_reply_store(rq, prc == -2 ? STORE_ERROR : prc, err);
    } else if (bad >= 0) {
        char msg[340];
        snprintf(msg, sizeof msg, "event %d: %s", bad, err);
        give_back_claims(rq, es, (size_t)bad + 1);
        srv_reply_error(rq, 400, "%s", msg);
    } else {
        json_t *groups = json_array();
        for (int g = 0; g < rq->id.ngroups; g++)
            json_array_append_new(groups, json_string(rq->id.groups[g]));
        char *gj = json_dumps(groups, JSON_COMPACT);
        json_decref(groups);
        struct store_actor actor = {rq->id.issuer, rq->id.subject, rq->id.name, gj};
        struct store_ingest_result res;
        int rc = store_events_append(srv->store, &actor, es, n, srv->sample_rows_session, &res, err,
                                     sizeof err);
        free(gj);
        if (rc) {
            give_back_claims(rq, es, n);
            srv_reply_store(rq, rc, err);
        } else {
            srv->m.events_ingested += res.accepted;
            srv->m.events_duplicate += res.duplicates;
            if (res.accepted)
                pthread_cond_signal(&srv->hook_cond);
            srv_reply_json(rq, 200, json_pack("{s:I,s:I}", "accepted", (json_int_t)res.accepted,
                                              "duplicates", (json_int_t)res.duplicates));
        }
    }
    for (size_t i = 0; texts && i < n; i++)
        free(texts[i]);
    free(texts);
    free(es);
    json_decref(b);
}

/* ---- sessions ------------------------------------------------------------ */

static bool owns_session(const struct srv_req *rq, json_t *s)
{
    const char *iss = json_string_value(json_object_get(s, "issuer"));
    const char *sub = json_string_value(json_object_get(s, "user"));
    return iss && sub && strcmp(iss, rq->id.issuer) == 0 && strcmp(sub, rq->id.subject) == 0;
}

static int tri_state(const char *v)
{
    if (!v)
        return -1;
    if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes"))
        return 1;
    if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no"))
        return 0;
    return -2;
}

static void route_sessions(struct srv_req *rq)
{
    struct srv *srv = rq->srv;
    char err[256];
    int rc;
    if (method(rq) != EVHTTP_REQ_GET) {
        srv_reply_error(rq, 405, "method not allowed");
        return;
    }
    if (rq->nseg == 3) {
        struct store_session_filter f = {.has_denials = -1, .has_reviews = -1};
        char user[256], conn[64], cursor[200], hd[8], hr[8];
        f.user = srv_query(rq, "user", user, sizeof user);
        f.connection = srv_query(rq, "connection", conn, sizeof conn);
        f.cursor = srv_query(rq, "cursor", cursor, sizeof cursor);
        f.has_denials = tri_state(srv_query(rq, "has_denials", hd, sizeof hd));
        f.has_reviews = tri_state(srv_query(rq, "has_reviews", hr, sizeof hr));
        if (srv_query_too_long(rq))
            return;
        int64_t lim = 100;
        bool p;
        if (!srv_query_int(rq, "since", &f.since, &p) || !srv_query_int(rq, "until", &f.until, &p) ||
            !srv_query_int(rq, "limit", &lim, &p) || lim < 1 || lim > 1000) {
            srv_reply_error(rq, 400, "since, until and limit (1..1000) are non-negative integers");
            return;
        }
        if (f.has_denials == -2 || f.has_reviews == -2) {
            srv_reply_error(rq, 400, "has_denials and has_reviews take true or false");
            return;
        }
        if (f.connection && !server_valid_name(f.connection)) {
            srv_reply_error(rq, 400, "bad connection name");
            return;
        }
        f.limit = (int)lim;
        if (!srv_is_auditor(rq)) {
            f.issuer = rq->id.issuer;
            f.subject = rq->id.subject;
        }
        json_t *out = NULL;
        if ((rc = store_sessions_list(srv->store, &f, &out, err, sizeof err)) == STORE_NOT_FOUND)
            srv_reply_error(rq, 400, "%s", err);   /* a malformed cursor */
        else if (rc)
            srv_reply_store(rq, rc, err);
        else
            srv_reply_json(rq, 200, out);
        return;
    }
    const char *id = rq->seg[3];
    if (!server_valid_id(id)) {
        srv_reply_error(rq, 400, "a session id has letters, digits, '_' and '-' only");
        return;
    }
    json_t *s = NULL;
    if ((rc = store_session_get(srv->store, id, &s, err, sizeof err))) {
        srv_reply_store(rq, rc, err);
        return;
    }
    if (!srv_is_auditor(rq) && !owns_session(rq, s)) {
        /* 404 stays for ids that do not exist; an existing session of someone
         * else is 403, so that the user learns why (ids are random UUIDs) */
        json_decref(s);
        srv_reply_error(rq, 403, "session %s belongs to another user; only its owner and the %s and %s "
                        "groups may see it", id, rq->srv->auditor_group, rq->srv->admin_group);
        return;
    }
    if (rq->nseg == 4) {
        srv_reply_json(rq, 200, s);
        return;
    }
    json_int_t nevents = json_integer_value(json_object_get(s, "events"));
    json_decref(s);
    if (rq->nseg == 5 && seg_is(rq, 4, "events")) {
        int64_t off = 0, lim = 1000;
        bool p;
        if (!srv_query_int(rq, "offset", &off, &p) || !srv_query_int(rq, "limit", &lim, &p) || lim < 1 ||
            lim > 5000 || off > INT32_MAX) {
            srv_reply_error(rq, 400, "offset (0..2147483647) and limit (1..5000) are non-negative integers");
            return;
        }
        json_t *evs = NULL;
        if ((rc = store_session_events(srv->store, id, off, (int)lim, &evs, err, sizeof err))) {
            srv_reply_store(rq, rc, err);
            return;
        }
        /* A page may stop short of limit (STORE_PAGE_BYTES): next_offset,
         * while the session has events past this page, tells readers to go
         * on rather than guess the end from a short page. */
        json_int_t next = (json_int_t)off + (json_int_t)json_array_size(evs);
        bool more = json_array_size(evs) > 0 && next < nevents;
        srv_reply_json(rq, 200, json_pack("{s:s,s:I,s:o,s:o}", "session_id", id, "offset", (json_int_t)off,
                                          "events", evs, "next_offset",
                                          more ? json_integer(next) : json_null()));
        return;
    }
    srv_reply_error(rq, 404, "no such route");
}

/* ---- audit --------------------------------------------------------------- */

static void route_audit(struct srv_req *rq)
{
    if (!srv_is_auditor(rq)) {
        srv_reply_error(rq, 403, "only the %s and %s groups read the whole audit trail",
                        rq->srv->auditor_group, rq->srv->admin_group);
        return;
    }
    char err[256];
    if (rq->nseg == 4 && seg_is(rq, 3, "verify") && method(rq) == EVHTTP_REQ_GET) {
        json_t *rep = NULL;
        int rc = store_audit_verify(rq->srv->store, &rep, err, sizeof err);
        if (rc)
            srv_reply_store(rq, rc, err);
        else
            srv_reply_json(rq, 200, rep);
    } else if (rq->nseg == 4 && seg_is(rq, 3, "export") && method(rq) == EVHTTP_REQ_GET) {
        int64_t since = 0, until = 0;
        bool p;
        char fmt[8];
        const char *f = srv_query(rq, "format", fmt, sizeof fmt);
        if (srv_query_too_long(rq))
            return;
        if (!srv_query_int(rq, "since", &since, &p) || !srv_query_int(rq, "until", &until, &p)) {
            srv_reply_error(rq, 400, "since and until are times in ms");
            return;
        }
        if (f && strcmp(f, "jsonl") && strcmp(f, "csv")) {
            srv_reply_error(rq, 400, "format is jsonl or csv");
            return;
        }
        srv_export_start(rq, since, until, f && !strcmp(f, "csv"));
    } else {
        srv_reply_error(rq, 404, "no such route");
    }
}

/* ---- reviews ------------------------------------------------------------- */

static bool hex64(const char *s)
{
    if (!s || strlen(s) != 64)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return false;
    return true;
}

/* Whether hash (64 hex characters) is the SHA-256 of the string stmt, which
 * must not hold a NUL (the store would keep only the text before it). */
static bool statement_hash_ok(json_t *stmt, const char *hash)
{
    const char *text = json_string_value(stmt);
    if (!text || strlen(text) != json_string_length(stmt))
        return false;
    char want[65];
    util_sha256_hex(text, strlen(text), want);
    return strcmp(want, hash) == 0;
}

/* The review with its connection's groups, or NULL after replying. */
static json_t *review_load(struct srv_req *rq, const char *id, json_t **conn)
{
    char err[256];
    json_t *r = NULL;
    int rc = store_review_get(rq->srv->store, id, &r, err, sizeof err);
    if (rc) {
        srv_reply_store(rq, rc, err);
        return NULL;
    }
    *conn = NULL;
    rc = store_connection_get(rq->srv->store, json_string_value(json_object_get(r, "connection")), conn,
                              err, sizeof err);
    if (rc && rc != STORE_NOT_FOUND) {
        json_decref(r);
        srv_reply_store(rq, rc, err);
        return NULL;
    }
    return r;
}

enum rule_reviewer { RULE_REVIEWER, NOT_RULE_REVIEWER, RULES_CHANGED };

static bool policy_reviews(json_t *doc);

/* Whether id is among the reviewers of every rule that sent review r to
 * review, read in the connection's policy as the server holds it (the
 * built-in default when it has none): by the rules' indexes the gateway
 * sent (-1: the default outcome) into the policy of the digest it sent
 * (RULES_CHANGED when the policy is another now), else by the rule's name
 * (gateways before the indexes). A rule that is not there, or sends nothing
 * to review, lets nobody decide (fail closed). A review that names no rule
 * is the connection's reviewer groups' to decide only when its policy sends
 * nothing to review (else nobody's: a review must name its rules now). */
static enum rule_reviewer in_rule_reviewers(const struct auth_identity *id, json_t *conn, json_t *r)
{
    const char *rule = json_string_value(json_object_get(r, "rule"));
    json_t *rules_of = json_object_get(r, "rules"), *indexes = json_object_get(rules_of, "indexes");
    if (!json_is_object(rules_of)) /* NULL in the store: a gateway that sent only the name, or none */
        rules_of = NULL;
    if (!conn)
        return RULE_REVIEWER;
    if (!rule && !rules_of) { /* made before reviews had to name their rules */
        json_t *doc = conn_policy(conn);
        bool reviews = !doc || policy_reviews(doc);
        json_decref(doc);
        return reviews ? NOT_RULE_REVIEWER : RULE_REVIEWER;
    }
    if (rules_of && (!json_is_array(indexes) ||
                     !same_policy(conn, json_string_value(json_object_get(rules_of, "policy_digest")))))
        return RULES_CHANGED;
    json_t *doc = conn_policy(conn);
    json_t *rules = json_object_get(doc, "rules"), *def = json_object_get(doc, "default");
    bool ok = doc != NULL, found = false;
    size_t i;
    json_t *x;
    if (json_is_array(indexes)) {
        found = json_array_size(indexes) > 0;
        json_array_foreach(indexes, i, x) {
            json_int_t k = json_integer_value(x);
            json_t *o = k < 0 ? def : json_array_get(rules, (size_t)k);
            const char *action = json_string_value(json_object_get(o, "action"));
            json_t *who = json_object_get(o, "reviewers");
            ok = ok && action && strcmp(action, "review") == 0 && json_array_size(who) && srv_in_any(id, who);
        }
    } else {
        json_array_foreach(rules, i, x) {
            const char *name = json_string_value(json_object_get(x, "name"));
            if (name && strcmp(name, rule) == 0) {
                found = true;
                ok = ok && srv_in_any(id, json_object_get(x, "reviewers"));
            }
        }
        if (strcmp(rule, "default") == 0 && json_array_size(json_object_get(def, "reviewers"))) {
            found = true;
            ok = ok && srv_in_any(id, json_object_get(def, "reviewers"));
        }
    }
    json_decref(doc);
    return ok && found ? RULE_REVIEWER : NOT_RULE_REVIEWER;
}

static bool review_visible(struct srv *srv, const struct auth_identity *id, json_t *r, json_t *conn)
{
    return is_requester(id, r) || auth_identity_in_group(id, srv->admin_group) ||
           auth_identity_in_group(id, srv->auditor_group) ||
           (conn && srv_in_any(id, json_object_get(conn, "reviewer_groups")));
}

/* Reviews with a status (NULL: any) created after `after` that id may see;
 * with as_reviewer only those of connections id reviews (its queue). */
static int reviews_for(struct srv *srv, const struct auth_identity *id, const char *status, int64_t after,
                       bool as_reviewer, struct store_review_page *page, json_t **out, char *err, size_t errlen)
{
    /* The connections id reviews; the store then lists only what id may see
     * (as review_visible decides for one review). */
    json_t *conns = NULL;
    int rc = store_connection_list(srv->store, &conns, err, errlen);
    if (rc)
        return rc;
    size_t n = json_array_size(conns), nmine = 0, i;
    const char **mine = calloc(n ? n : 1, sizeof *mine);
    if (!mine) {
        json_decref(conns);
        snprintf(err, errlen, "out of memory");
        return STORE_ERROR;
    }
    json_t *c;
    json_array_foreach(conns, i, c) if (srv_in_any(id, json_object_get(c, "reviewer_groups")))
        mine[nmine++] = json_string_value(json_object_get(c, "name"));
    struct store_review_scope scope = {false, NULL, NULL, mine, nmine};
    if (!as_reviewer) {
        scope.all = auth_identity_in_group(id, srv->admin_group) || auth_identity_in_group(id, srv->auditor_group);
        scope.issuer = id->issuer;
        scope.subject = id->subject;
    }
    rc = store_review_list(srv->store, status, after, &scope, page, out, err, errlen);
    free(mine);
    json_decref(conns);
    return rc;
}

json_t *srv_wait_answer(struct srv *srv, const struct auth_identity *id, int kind,
                        const char *review_id, int64_t after_ms, int *code, bool final)
{
    char err[256];
    *code = 200;
    if (kind == 0) {
        json_t *r = NULL;
        int rc = store_review_get(srv->store, review_id, &r, err, sizeof err);
        if (rc) {
            *code = rc == STORE_NOT_FOUND ? 404 : 500;
            return json_pack("{s:s,s:i}", "error", rc == STORE_NOT_FOUND ? "not found" : "store failed",
                             "status", *code);
        }
        const char *st = json_string_value(json_object_get(r, "status"));
        if (!final && st && strcmp(st, "pending") == 0) {
            json_decref(r);
            return NULL;
        }
        return r;
    }
    json_t *mine = NULL;
    if (reviews_for(srv, id, "pending", after_ms, true, NULL, &mine, err, sizeof err) != 0) {
        *code = 500;
        return json_pack("{s:s,s:i}", "error", "store failed", "status", *code);
    }
    if (!final && json_array_size(mine) == 0) {
        json_decref(mine);
        return NULL;
    }
    json_int_t cursor = after_ms;
    size_t i;
    json_t *r;
    json_array_foreach(mine, i, r) if (json_integer_value(json_object_get(r, "created_at")) > cursor)
        cursor = json_integer_value(json_object_get(r, "created_at"));
    return json_pack("{s:o,s:I}", "reviews", mine, "cursor", cursor);
}

/* The session a review names is shown to reviewers: it must be the
 * requester's own. One not stored yet (its events are still on their way)
 * is taken on trust. Replies and returns false when it is not. */
static bool review_session_ok(struct srv_req *rq, const char *session_id)
{
    json_t *sess = NULL;
    char err[256];
    int rc = session_id ? store_session_get(rq->srv->store, session_id, &sess, err, sizeof err) : STORE_NOT_FOUND;
    bool ok = rc == STORE_NOT_FOUND || (rc == 0 && owns_session(rq, sess));
    if (rc != 0 && rc != STORE_NOT_FOUND)
        srv_reply_store(rq, rc, err);
    else if (!ok)
        srv_reply_error(rq, 403, "session %s is not yours", session_id);
    json_decref(sess);
    return ok;
}

/* A held statement's bound values, as its reviewers read them. */
static bool review_params_ok(json_t *a, size_t max_string)
{
    if (!a)
        return true;
    if (json_array_size(a) > EVENT_MAX_PARAMS)
        return false;
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) if (!json_is_null(v) && (!json_is_string(v) || json_string_length(v) > max_string))
        return false;
    return true;
}

/* The rules whose reviewers must agree: indexes into the policy's rules,
 * -1 for its default outcome. */
static bool review_rules_ok(json_t *a)
{
    if (!a)
        return true;
    if (json_array_size(a) > POLICY_MAX_REVIEW_RULES)
        return false;
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) if (!json_is_integer(v) || json_integer_value(v) < -1 ||
                                    json_integer_value(v) > 1000000)
        return false;
    return true;
}

/* Whether the connection's policy (as conn_policy gives it) sends anything
 * to review: a rule, or its default, whose action is review. Those name
 * reviewers of their own, who must decide. */
static bool policy_reviews(json_t *doc)
{
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(doc, "rules"), i, x) {
        const char *a = json_string_value(json_object_get(x, "action"));
        if (a && strcmp(a, "review") == 0)
            return true;
    }
    const char *a = json_string_value(json_object_get(json_object_get(doc, "default"), "action"));
    return a && strcmp(a, "review") == 0;
}

/* Whether the rule of index k (-1: the default) sends to review. */
static bool rule_reviews(json_t *doc, json_int_t k)
{
    json_t *o = k < 0 ? json_object_get(doc, "default")
                      : json_array_get(json_object_get(doc, "rules"), (size_t)k);
    const char *a = json_string_value(json_object_get(o, "action"));
    return k >= -1 && a && strcmp(a, "review") == 0;
}

/* The rule of index k (-1: the default) by name, for messages. */
static const char *rule_label(json_t *doc, int k)
{
    const char *n = k < 0 ? "default"
                          : json_string_value(json_object_get(json_array_get(json_object_get(doc, "rules"),
                                                                             (size_t)k), "name"));
    return n ? n : "(unnamed)";
}

/* The server's own reading of a held statement, in the policy p: each way a
 * gateway may have judged this text (a simple query or an extended-protocol
 * Parse, before or after the session changed search_path) that sends it to
 * review, in out (up to 4); returns how many, or -1 when the server cannot
 * judge the text: one that reads the gateway's session (EXECUTE, FETCH,
 * MOVE, ...: any that names a prepared statement or a cursor), does not
 * parse, or is longer than SERVER_READING_MAX (its parses run on the
 * server's loop, about 4 ms a KiB for the four: a long one would stall every
 * other request). */
#define SERVER_READING_MAX (16 * 1024)
static int server_readings(struct policy *p, const char *sql, const struct auth_identity *id,
                           struct policy_decision out[4])
{
    if (!sql || strlen(sql) > SERVER_READING_MAX)
        return -1;
    const char *groups[AUTH_MAX_GROUPS + 1];
    int n = 0;
    for (int i = 0; i < id->ngroups && i < AUTH_MAX_GROUPS; i++)
        groups[n++] = id->groups[i];
    groups[n] = NULL;
    struct policy_analysis a;
    char err[POLICY_ERR_MAX];
    if (policy_classify(sql, NULL, &a, err) != 0)
        return -1; /* not SQL the gateway could have sent to review as it is: it judged a session's text */
    bool session_bound = false;
    for (size_t i = 0; i < a.nstmts; i++)
        if (a.stmts[i].prepared_name || a.stmts[i].cursor_name)
            session_bound = true;
    size_t nstmts = a.nstmts;
    policy_analysis_free(&a);
    if (session_bound)
        return -1;
    int found = 0;
    for (int sp = 0; sp < 2; sp++)
        for (int prep = 0; prep < 2; prep++) {
            if (prep && nstmts != 1) /* a Parse holds one statement */
                continue;
            struct policy_session *s = policy_session_new();
            if (!s)
                continue;
            if (sp)
                policy_session_mark_search_path(s);
            struct policy_decision d;
            memset(&d, 0, sizeof d);
            int rc = prep ? (policy_session_parse(p, s, "", sql, err) == 0
                                 ? policy_check_prepared(p, s, "", groups, &d) : -1)
                          : policy_check(p, s, sql, groups, &d, NULL);
            policy_session_free(s);
            if (rc == 0 && d.action == POLICY_REVIEW && d.nreview_rules > 0)
                out[found++] = d;
        }
    return found;
}

/* On a connection whose policy sends statements to review, a review must
 * say which rules sent it (their indexes, -1 for the default, and the
 * policy's digest): their reviewers decide it, read in the server's copy of
 * the policy. Each must be a rule that reviews; and when the server, reading
 * the statement with that policy, sends it to review, the rules named must
 * include those of one such reading. Replies 400 and returns false when not. */
static bool review_rules_named(struct srv_req *rq, json_t *conn, json_t *b)
{
    json_t *doc = conn_policy(conn);
    if (!doc) {
        srv_reply_error(rq, 500, "out of memory");
        return false;
    }
    json_t *named = json_object_get(b, "rules");
    bool ok = true;
    size_t i;
    json_t *x;
    if (!policy_reviews(doc)) {
        /* nothing in the policy reviews: the connection's reviewer groups decide */
    } else if (json_array_size(named) == 0) {
        srv_reply_error(rq, 400, "connection %s's policy names reviewers for the statements it sends to review:"
                        " a review must name those rules in 'rules' (their indexes, -1: the default) with"
                        " 'policy_digest', as hoopctl connect does", json_string_value(json_object_get(conn, "name")));
        ok = false;
    } else {
        json_array_foreach(named, i, x) if (ok && !rule_reviews(doc, json_integer_value(x))) {
            srv_reply_error(rq, 400, "rules[%zu]: %lld is not a rule of the connection's policy that sends"
                            " statements to review", i, (long long)json_integer_value(x));
            ok = false;
        }
    }
    if (ok && json_array_size(named) > 0) {
        char err[POLICY_ERR_MAX];
        struct policy *p = policy_load_json(doc, err);
        struct policy_decision d[4];
        /* No reading that reviews it (-1: cannot judge; 0: none does, as
         * for a statement the policy allows or denies: a gateway never
         * holds those, so an approval of one never runs) leaves the rules
         * named. */
        int n = p ? server_readings(p, json_string_value(json_object_get(b, "statement")), &rq->id, d) : -1;
        bool covered = n <= 0;
        for (int k = 0; k < n && !covered; k++) {
            bool all = true;
            for (size_t r = 0; r < d[k].nreview_rules && all; r++) {
                bool in = false;
                json_array_foreach(named, i, x) in = in || json_integer_value(x) == d[k].review_rules[r];
                all = in;
            }
            covered = all;
        }
        if (!covered) {
            int missing = d[0].review_rules[0];
            for (size_t r = 0; r < d[0].nreview_rules; r++) {
                bool in = false;
                json_array_foreach(named, i, x) in = in || json_integer_value(x) == d[0].review_rules[r];
                if (!in) {
                    missing = d[0].review_rules[r];
                    break;
                }
            }
            srv_reply_error(rq, 400, "the connection's policy sends this statement to review under rule %s"
                            " (index %d), which 'rules' does not name", rule_label(doc, missing), missing);
            ok = false;
        }
        policy_free(p);
    }
    json_decref(doc);
    return ok;
}

static void review_create(struct srv_req *rq)
{
    static const struct server_field rf[] = {
        {"connection", "n!"}, {"session_id", "I"}, {"statement", "s!"}, {"statement_hash", "s!"},
        {"ttl_seconds", "i"}, {"rule", "s"}, {"params", "a"}, {"rules", "a"}, {"policy_digest", "s"},
        {NULL, NULL}};
    json_t *b = srv_body(rq, rf);
    if (!b)
        return;
    char err[256];
    json_t *conn = NULL;
    const char *cname = json_string_value(json_object_get(b, "connection"));
    const char *hash = json_string_value(json_object_get(b, "statement_hash"));
    json_int_t ttl = json_integer_value(json_object_get(b, "ttl_seconds"));
    int64_t npending = 0;
    int rc;
    if (!hex64(hash)) {
        srv_reply_error(rq, 400, "field 'statement_hash' must be 64 lower-case hex characters");
    } else if (!statement_hash_ok(json_object_get(b, "statement"), hash)) {
        /* An approval releases the statement with this hash: it must be the text reviewers read. */
        srv_reply_error(rq, 400, "field 'statement_hash' must be the SHA-256 of 'statement' (with no NUL in it)");
    } else if (json_object_get(b, "ttl_seconds") && (ttl < 1 || ttl > 7 * 86400)) {
        srv_reply_error(rq, 400, "field 'ttl_seconds' must be 1..604800");
    } else if (!review_rules_ok(json_object_get(b, "rules")) ||
               (json_object_get(b, "rules") && !hex64(json_string_value(json_object_get(b, "policy_digest"))))) {
        srv_reply_error(rq, 400, "field 'rules' must be an array of at most %d rule indexes (-1: the default),"
                        " with 'policy_digest', the SHA-256 of the policy they index", POLICY_MAX_REVIEW_RULES);
    } else if (!review_params_ok(json_object_get(b, "params"), rq->srv->max_string)) {
        srv_reply_error(rq, 400, "field 'params' must be an array of at most %d strings (or nulls) of at most"
                        " %zu bytes each", EVENT_MAX_PARAMS, rq->srv->max_string);
    } else if ((rc = store_connection_get(rq->srv->store, cname, &conn, err, sizeof err))) {
        srv_reply_store(rq, rc, err);
    } else if (!srv_in_any(&rq->id, json_object_get(conn, "allowed_groups"))) {
        srv_reply_error(rq, 403, "you are not in a group allowed to use this connection");
    } else if (json_object_get(b, "rules") &&
               !same_policy(conn, json_string_value(json_object_get(b, "policy_digest")))) {
        srv_reply_error(rq, 409, "the connection's policy changed since your gateway loaded it: restart hoopctl"
                        " connect to judge the statement by the policy in force");
    } else if (!review_rules_named(rq, conn, b)) {
        /* answered */
    } else if (!review_session_ok(rq, json_string_value(json_object_get(b, "session_id")))) {
        /* answered */
    } else {
        char id[37];
        util_uuid_v4(id);
        int64_t now = util_now_ms();
        json_t *r = json_pack("{s:s,s:s,s:O?,s:O,s:s,s:s,s:s,s:s,s:I,s:I,s:O?}", "id", id, "connection", cname,
                              "session_id", json_object_get(b, "session_id"), "statement",
                              json_object_get(b, "statement"), "statement_hash", hash, "requester",
                              rq->id.subject, "requester_issuer", rq->id.issuer, "requester_name",
                              rq->id.name, "created_at", (json_int_t)now, "expires_at",
                              (json_int_t)(now + (ttl && ttl * 1000 < rq->srv->review_ttl_ms
                                                      ? ttl * 1000 : rq->srv->review_ttl_ms)), "rule",
                              json_object_get(b, "rule"));
        if (r && json_object_get(b, "params"))
            json_object_set(r, "params", json_object_get(b, "params"));
        if (r && json_object_get(b, "rules")) /* with the policy they index */
            json_object_set_new(r, "rules", json_pack("{s:O,s:O}", "indexes", json_object_get(b, "rules"),
                                                      "policy_digest", json_object_get(b, "policy_digest")));
        /* One user cannot bury the reviewers' queue (or the server's memory) in
         * requests; the store checks the cap and inserts at once, so requests
         * racing through several servers cannot pass it together. */
        rc = r ? store_review_create_capped(rq->srv->store, r, rq->srv->review_max_pending, &npending, err,
                                            sizeof err)
               : (snprintf(err, sizeof err, "out of memory"), STORE_ERROR);
        json_decref(r);
        json_t *saved = NULL;
        if (!rc)
            rc = store_review_get(rq->srv->store, id, &saved, err, sizeof err);
        if (rc == STORE_FORBIDDEN)
            srv_reply_error(rq, 429, "you have %lld reviews pending, or undecided within the hour (the limit is %lld);"
                            " wait for them to be decided", (long long)npending,
                            (long long)rq->srv->review_max_pending);
        else if (rc)
            srv_reply_store(rq, rc, err);
        else {
            log_info(MOD, "review %s requested by %s on %s", id, rq->id.subject, cname);
            srv_reply_json(rq, 201, saved);
            srv_reviews_changed(rq->srv);
        }
    }
    json_decref(conn);
    json_decref(b);
}

static void route_reviews(struct srv_req *rq)
{
    struct srv *srv = rq->srv;
    char err[256], buf[64];
    int rc;
    if (rq->nseg == 3 && method(rq) == EVHTTP_REQ_POST) {
        review_create(rq);
        return;
    }
    if (rq->nseg == 3 && method(rq) == EVHTTP_REQ_GET) {
        const char *status = srv_query(rq, "status", buf, sizeof buf);
        if (srv_query_too_long(rq))
            return;
        if (status && strcmp(status, "all") == 0)
            status = NULL;
        else if (!status)
            status = "pending";
        else if (strcmp(status, "pending") && strcmp(status, "approved") && strcmp(status, "denied") &&
                 strcmp(status, "expired") && strcmp(status, "consumed") && strcmp(status, "withdrawn")) {
            srv_reply_error(rq, 400, "status is pending, approved, denied, expired, consumed, withdrawn or all");
            return;
        }
        /* The pending queue comes oldest first; decided reviews (a history)
         * newest first. Pages of limit, continued by the cursor in next. */
        char cursor[200];
        int64_t lim = 1000;
        bool p;
        if (!srv_query_int(rq, "limit", &lim, &p) || lim < 1 || lim > 1000) {
            srv_reply_error(rq, 400, "limit is 1..1000");
            return;
        }
        struct store_review_page page = {!status || strcmp(status, "pending") != 0, (int)lim,
                                         srv_query(rq, "cursor", cursor, sizeof cursor), NULL};
        if (srv_query_too_long(rq))
            return;
        json_t *out = NULL;
        if ((rc = reviews_for(srv, &rq->id, status, -1, false, &page, &out, err, sizeof err)) == STORE_NOT_FOUND)
            srv_reply_error(rq, 400, "%s", err); /* a malformed cursor */
        else if (rc)
            srv_reply_store(rq, rc, err);
        else
            srv_reply_json(rq, 200, json_pack("{s:o,s:o}", "reviews", out, "next", page.next));
        return;
    }
    if (rq->nseg == 4 && seg_is(rq, 3, "wait") && method(rq) == EVHTTP_REQ_GET) {
        int64_t after = 0, timeout = 30;
        bool p;
        if (!srv_query_int(rq, "after", &after, &p) || !srv_query_int(rq, "timeout", &timeout, &p) ||
            timeout < 1 || timeout > SRV_MAX_POLL_S) {
            srv_reply_error(rq, 400, "after is a time in ms; timeout is 1..110 seconds");
            return;
        }
        srv_wait_start(rq, 1, NULL, after, (int)timeout);
        return;
    }
    const char *id = rq->seg[3];
    if (!server_valid_id(id)) {
        srv_reply_error(rq, 400, "a review id has letters, digits, '_' and '-' only");
        return;
    }
    json_t *conn = NULL, *r = review_load(rq, id, &conn);
    if (!r)
        return;
    if (!review_visible(srv, &rq->id, r, conn)) {
        srv_reply_error(rq, 404, "not found");
    } else if (rq->nseg == 4 && method(rq) == EVHTTP_REQ_GET) {
        srv_reply_json(rq, 200, json_incref(r));
    } else if (rq->nseg == 5 && seg_is(rq, 4, "wait") && method(rq) == EVHTTP_REQ_GET) {
        int64_t timeout = 30;
        bool p;
        if (!srv_query_int(rq, "timeout", &timeout, &p) || timeout < 1 || timeout > SRV_MAX_POLL_S)
            srv_reply_error(rq, 400, "timeout is 1..110 seconds");
        else
            srv_wait_start(rq, 0, id, 0, (int)timeout);
    } else if (rq->nseg == 5 && (seg_is(rq, 4, "approve") || seg_is(rq, 4, "deny")) &&
               method(rq) == EVHTTP_REQ_POST) {
        static const struct server_field df[] = {{"reason", "s"}, {NULL, NULL}};
        json_t *b = srv_body(rq, df);
        if (b) {
            bool approve = seg_is(rq, 4, "approve");
            const char *reason = json_string_value(json_object_get(b, "reason"));
            enum rule_reviewer rr = conn ? in_rule_reviewers(&rq->id, conn, r) : NOT_RULE_REVIEWER;
            if (!conn || !srv_in_any(&rq->id, json_object_get(conn, "reviewer_groups"))) {
                srv_reply_error(rq, 403, "only the connection's reviewer groups decide its reviews");
            } else if (rr == RULES_CHANGED) {
                srv_reply_error(rq, 403, "the connection's policy changed since this statement was held: nobody"
                                " can decide it (its requester may withdraw it and send it again)");
            } else if (rr == NOT_RULE_REVIEWER) {
                const char *rule = json_string_value(json_object_get(r, "rule"));
                srv_reply_error(rq, 403, "only the reviewers that rule %s names decide this review (and those of"
                                " every other rule that sent its statements to review)", rule ? rule : "?");
            } else if (is_requester(&rq->id, r)) {
                srv_reply_error(rq, 403, "a requester cannot decide their own review");
            } else if (reason && json_string_length(json_object_get(b, "reason")) > 2000) {
                srv_reply_error(rq, 400, "field 'reason' is over 2000 bytes");
            } else if ((rc = store_review_decide(srv->store, id, approve ? "approved" : "denied", reason,
                                                 rq->id.subject, util_now_ms(), err, sizeof err))) {
                srv_reply_store(rq, rc, err);
            } else {
                json_t *now = NULL;
                log_info(MOD, "review %s %s by %s", id, approve ? "approved" : "denied", rq->id.subject);
                if ((rc = store_review_get(srv->store, id, &now, err, sizeof err)))
                    srv_reply_store(rq, rc, err);
                else
                    srv_reply_json(rq, 200, now);
                srv_reviews_changed(srv);
            }
            json_decref(b);
        }
    } else if (rq->nseg == 5 && seg_is(rq, 4, "withdraw") && method(rq) == EVHTTP_REQ_POST) {
        /* The requester's gateway: the statement will never run (cancelled,
         * or its session closed), so it leaves the queue. */
        static const struct server_field wf[] = {{"reason", "s"}, {NULL, NULL}};
        json_t *b = srv_body(rq, wf);
        if (b) {
            const char *reason = json_string_value(json_object_get(b, "reason"));
            if (!is_requester(&rq->id, r))
                srv_reply_error(rq, 403, "only the requester withdraws a review");
            else if (reason && json_string_length(json_object_get(b, "reason")) > 2000)
                srv_reply_error(rq, 400, "field 'reason' is over 2000 bytes");
            else if ((rc = store_review_decide(srv->store, id, "withdrawn", reason, rq->id.subject, util_now_ms(),
                                               err, sizeof err)))
                srv_reply_store(rq, rc, err);
            else {
                log_info(MOD, "review %s withdrawn by its requester %s", id, rq->id.subject);
                srv_reply_json(rq, 200, json_pack("{s:s,s:s}", "id", id, "status", "withdrawn"));
                srv_reviews_changed(srv);
            }
            json_decref(b);
        }
    } else if (rq->nseg == 5 && seg_is(rq, 4, "consume") && method(rq) == EVHTTP_REQ_POST) {
        static const struct server_field cf[] = {{"statement_hash", "s!"}, {NULL, NULL}};
        json_t *b = srv_body(rq, cf);
        if (b) {
            if (!is_requester(&rq->id, r))
                srv_reply_error(rq, 403, "only the requester's gateway uses an approval");
            else if ((rc = store_review_consume(srv->store, id, rq->id.subject,
                                                json_string_value(json_object_get(b, "statement_hash")),
                                                util_now_ms(), err, sizeof err)))
                srv_reply_store(rq, rc, err);
            else {
                srv_reply_json(rq, 200, json_pack("{s:s,s:s}", "id", id, "status", "consumed"));
                srv_reviews_changed(srv);
            }
            json_decref(b);
        }
    } else {
        srv_reply_error(rq, 404, "no such route");
    }
    json_decref(r);
    json_decref(conn);
}

/* ---- table --------------------------------------------------------------- */

void srv_route(struct srv_req *rq)
{
    /* seg[0..1] are "api", "v1". */
    if (rq->nseg == 3 && seg_is(rq, 2, "whoami") && method(rq) == EVHTTP_REQ_GET) {
        json_t *id = srv_identity_json(&rq->id);
        json_object_set_new(id, "admin", json_boolean(srv_is_admin(rq)));
        json_object_set_new(id, "auditor", json_boolean(srv_is_auditor(rq)));
        srv_reply_json(rq, 200, id);
    } else if (rq->nseg >= 3 && rq->nseg <= 5 && seg_is(rq, 2, "connections")) {
        route_connections(rq);
    } else if (rq->nseg >= 4 && rq->nseg <= 5 && seg_is(rq, 2, "admin") && seg_is(rq, 3, "apikeys")) {
        route_apikeys(rq);
    } else if (rq->nseg == 3 && seg_is(rq, 2, "events")) {
        route_events(rq);
    } else if (rq->nseg >= 3 && rq->nseg <= 5 && seg_is(rq, 2, "sessions")) {
        route_sessions(rq);
    } else if (rq->nseg >= 3 && rq->nseg <= 4 && seg_is(rq, 2, "audit")) {
        route_audit(rq);
    } else if (rq->nseg >= 3 && rq->nseg <= 5 && seg_is(rq, 2, "reviews")) {
        route_reviews(rq);
    } else {
        srv_reply_error(rq, 404, "no such route");
    }
}
