/* connect.c — the glue of `hoopctl connect`: fetch the connection and its
 * secret from the server, start spool, shipper and gateway, and answer the
 * gateway's hooks with policy decisions, mask plans and audit events. */
#include "internal.h"

#include "hoopctl/config.h"
#include "hoopctl/identity.h"
#include "hoopctl/log.h"
#include "hoopctl/shipper.h"
#include "hoopctl/spool.h"
#include "hoopctl/util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <unistd.h>

#define MOD "connect"
#define CONNECT_DEFAULT_PORT 5433
#define CONNECT_PORT_TRIES 100
/* Result rows recorded per result set, and bytes of values, for replay (the
 * server caps further with audit.sample_rows_per_statement). */
#define CONNECT_RECORD_ROWS 100
#define CONNECT_RECORD_BYTES (16 * 1024)
#define CONNECT_RECORD_VALUE 512
#define CONNECT_SHIP_DELAY_MS 50

void cn_token_copy(struct connect *c, char *out, size_t len)
{
    pthread_mutex_lock(&c->lock);
    snprintf(out, len, "%s", c->api.token);
    pthread_mutex_unlock(&c->lock);
}

static int shipper_token(void *arg, char *buf, size_t len)
{
    cn_token_copy(arg, buf, len);
    return buf[0] ? 0 : -1;
}

struct cn_session *cn_session_find(struct connect *c, uint64_t gw_id)
{
    for (struct cn_session *s = c->sessions; s; s = s->next)
        if (s->gw_id == gw_id)
            return s;
    return NULL;
}

/* Append one event to the open group of the spool; commit it at once when
 * asked (else it becomes durable with the next group commit). Steals data. */
static int emit(struct connect *c, struct cn_session *s, const char *type, json_t *data, bool commit,
                char *err, size_t errlen)
{
    char id[37];
    if (!data) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* Fresh random bits in every id: with ids that follow from one
     * another, a user who saw one of another user's event ids could send
     * the next ones first and make the server refuse that user's events
     * (an id taken by another session is a conflict). */
    if (util_uuid_v7(id) < 0) {
        json_decref(data);
        snprintf(err, errlen, "no randomness for an event id");
        return -1;
    }
    json_t *ev = json_pack("{s:s, s:s, s:I, s:s, s:I, s:o}", "id", id, "session_id", s->id, "seq",
                           (json_int_t)(s->seq + 1), "type", type, "time", (json_int_t)util_now_ms(), "data",
                           data);
    /* Into a buffer kept for the run (json_dumps grows a fresh one per
     * event and copies it once more at the end). */
    size_t n = ev ? json_dumpb(ev, c->dump, c->dump_cap, JSON_COMPACT) : 0;
    bool oom = !ev;
    if (n > c->dump_cap) {
        char *bigger = realloc(c->dump, n);
        if (bigger) {
            c->dump = bigger;
            c->dump_cap = n;
            n = json_dumpb(ev, c->dump, c->dump_cap, JSON_COMPACT);
        } else {
            n = 0;
            oom = true;
        }
    }
    json_decref(ev);
    if (n == 0 || n > c->dump_cap) {
        snprintf(err, errlen, "%s", oom ? "out of memory" : "the event cannot be written as JSON");
        return -1;
    }
    int rc = spool_append(c->spool, id, s->id, c->dump, n, err, errlen);
    if (rc == 0 && commit)
        rc = spool_commit(c->spool, err, errlen);
    if (rc < 0)
        return -1;
    s->seq++;
    if (!strcmp(type, "statement"))
        s->statement_seq = s->seq;
    /* Wake the shipper once per CONNECT_SHIP_DELAY_MS, not per event, so
     * that it posts batches rather than single events. */
    if (!evtimer_pending(c->kick_timer, NULL)) {
        struct timeval tv = {0, CONNECT_SHIP_DELAY_MS * 1000};
        evtimer_add(c->kick_timer, &tv);
    }
    return 0;
}

/* Session events and refusals are committed before going on; statements
 * wait for the group commit (see on_statement); result samples and
 * completions need no promise and ride along with the next commit. */
int cn_emit(struct connect *c, struct cn_session *s, const char *type, json_t *data, char *err,
            size_t errlen)
{
    return emit(c, s, type, data, strcmp(type, "result") != 0 && strcmp(type, "completion") != 0, err,
                errlen);
}

void cn_inflight_add(struct cn_session *s, uint64_t statement_id, int64_t seq)
{
    if (s->ninflight == CN_INFLIGHT_MAX) { /* a deep pipeline: forget the oldest */
        memmove(s->inflight, s->inflight + 1, (CN_INFLIGHT_MAX - 1) * sizeof *s->inflight);
        s->ninflight--;
    }
    s->inflight[s->ninflight].id = statement_id;
    s->inflight[s->ninflight].seq = seq;
    s->ninflight++;
}

/* The seq of the statement event of a finished statement; the ones before it
 * are done (upstream skipped them or they ended without an answer). -1 when
 * unknown. */
static int64_t inflight_finish(struct cn_session *s, uint64_t statement_id)
{
    for (size_t i = 0; i < s->ninflight; i++) {
        if (s->inflight[i].id != statement_id)
            continue;
        int64_t seq = s->inflight[i].seq;
        memmove(s->inflight, s->inflight + i, (s->ninflight - i) * sizeof *s->inflight);
        s->ninflight -= i;
        return seq;
    }
    return -1;
}

/* ---- group commit ------------------------------------------------------- */

/* Runs once per turn of the loop in which statements were appended: one
 * commit makes them all durable, then they go upstream (or, when the commit
 * failed, they are refused: fail closed). */
static void on_group_commit(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct connect *c = arg;
    c->commit_scheduled = false;
    char err[256];
    if (spool_commit(c->spool, err, sizeof err) < 0)
        log_error(MOD, "audit spool: %s", err);
    struct cn_commit_hold *holds = c->commit_holds;
    size_t n = c->ncommit_holds;
    c->commit_holds = NULL;
    c->ncommit_holds = c->commit_holds_cap = 0;
    c->stats.group_commits++;
    c->stats.grouped_statements += n;
    /* A statement goes on only when the group its event joined is durable.
     * That group may have ended before this commit (a session event or the
     * shipper's kick commits too), and may have failed there: its events
     * were rolled back, so its statements are refused (fail closed). */
    size_t refused = 0;
    for (size_t i = 0; i < n; i++) {
        const char *why;
        struct gateway_refusal ref = {0};
        enum gateway_verdict v = GATEWAY_ALLOW;
        if (spool_group_state(c->spool, holds[i].group, &why) != SPOOL_GROUP_DURABLE) {
            v = GATEWAY_REFUSE;
            refused++;
            snprintf(ref.sqlstate, sizeof ref.sqlstate, "42501");
            snprintf(ref.message, sizeof ref.message,
                     "hoopctl: the audit spool cannot be written, statement refused (fail closed): %s", why);
        }
        /* Resolving runs the session on, which may append and hold anew:
         * those go into a fresh list and the next round's commit. */
        gateway_resolve(c->gw, holds[i].id, v, &ref);
    }
    if (refused) {
        log_error(MOD, "audit spool: %zu statements refused, their events were not made durable", refused);
        c->stats.denials += refused;
    }
    free(holds);
}

/* Hold statement hold_id until the next group commit; -1 when out of memory. */
static int commit_hold(struct connect *c, uint64_t hold_id)
{
    if (c->ncommit_holds == c->commit_holds_cap) {
        size_t cap = c->commit_holds_cap ? 2 * c->commit_holds_cap : 16;
        struct cn_commit_hold *n = realloc(c->commit_holds, cap * sizeof *n);
        if (!n)
            return -1;
        c->commit_holds = n;
        c->commit_holds_cap = cap;
    }
    c->commit_holds[c->ncommit_holds++] =
        (struct cn_commit_hold){.id = hold_id, .group = spool_group(c->spool)};
    if (!c->commit_scheduled) {
        /* A zero timeout: the loop polls once more, and the statements of
         * every session that became ready meanwhile join this commit. */
        struct timeval now = {0, 0};
        event_add(c->commit_event, &now);
        c->commit_scheduled = true;
    }
    return 0;
}

int cn_audit_refusal(struct connect *c, struct cn_session *s, json_t *data, const char *error)
{
    c->stats.denials++;
    if (data) {
        json_object_set_new(data, "error", json_string(error));
        if (!json_object_get(data, "sqlstate"))
            json_object_set_new(data, "sqlstate", json_string("42501"));
    }
    char err[256];
    if (cn_emit(c, s, "statement", data, err, sizeof err) == 0)
        return 0;
    log_error(MOD, "session %s: audit spool: %s", s->id, err);
    return -1;
}

/* ---- recording of result samples ---------------------------------------- */

static void record_clear(struct cn_session *s)
{
    json_decref(s->rec_columns);
    json_decref(s->rec_rows);
    json_decref(s->rec_types);
    free(s->rec_formats);
    s->rec_columns = s->rec_rows = s->rec_row = s->rec_types = NULL;
    s->rec_formats = NULL;
    s->rec_bytes = 0;
    s->rec_truncated = false;
}

/* The recorded result set becomes a "result" event of its statement (seq;
 * <= 0: the last statement), with the fields of its completion when known. */
static void record_flush_as(struct connect *c, struct cn_session *s, int64_t seq, json_t *completion)
{
    if (!s->rec_columns) {
        json_decref(completion);
        return;
    }
    if (seq <= 0)
        seq = s->statement_seq;
    json_t *d = json_pack("{s:I, s:O, s:O, s:b}", "statement_seq", (json_int_t)seq, "columns",
                          s->rec_columns, "rows", s->rec_rows, "truncated", s->rec_truncated);
    if (d && s->rec_types && json_array_size(s->rec_types) == json_array_size(s->rec_columns))
        json_object_set(d, "column_types", s->rec_types);
    record_clear(s);
    if (d && completion)
        json_object_update(d, completion);
    json_decref(completion);
    char err[256];
    if (seq > 0 && cn_emit(c, s, "result", d, err, sizeof err) < 0)
        log_warn(MOD, "session %s: result sample not recorded: %s", s->id, err);
    else if (seq <= 0)
        json_decref(d);
}

static void record_flush(struct connect *c, struct cn_session *s)
{
    record_flush_as(c, s, 0, NULL);
}

static void record_start(struct cn_session *s, const struct pgwire_column *cols, int ncols)
{
    s->rec_columns = json_array();
    s->rec_rows = json_array();
    s->rec_formats = calloc((size_t)ncols, sizeof *s->rec_formats);
    if (!s->rec_columns || !s->rec_rows || !s->rec_formats) {
        record_clear(s);
        return;
    }
    for (int i = 0; i < ncols; i++) {
        json_array_append_new(s->rec_columns, json_string(cols[i].name ? cols[i].name : "?"));
        if (s->rec_types || (s->rec_types = json_array()))
            json_array_append_new(s->rec_types, json_integer(cols[i].type_oid));
        s->rec_formats[i] = cols[i].format;
    }
}

/* One value (as the client gets it) of the current row. */
static void record_value(struct cn_session *s, int column, const uint8_t *v, size_t len, bool is_null)
{
    if (!s->rec_rows)
        return;
    if (column == 0) {
        s->rec_row = NULL;
        if (json_array_size(s->rec_rows) >= CONNECT_RECORD_ROWS || s->rec_bytes >= CONNECT_RECORD_BYTES) {
            s->rec_truncated = true;
            return;
        }
        s->rec_row = json_array();
        json_array_append_new(s->rec_rows, s->rec_row);
    }
    if (!s->rec_row)
        return;
    if (is_null) {
        json_array_append_new(s->rec_row, json_null());
        return;
    }
    size_t cap = len > CONNECT_RECORD_VALUE ? CONNECT_RECORD_VALUE : len, n = cap;
    bool hex_value = s->rec_formats[column] == 1;
    if (!hex_value) {
        while (n < len && n > 0 && (v[n] & 0xC0) == 0x80)
            n--; /* cut text at a character boundary */
        /* Text that is not UTF-8 (a client_encoding such as LATIN1) is kept
         * as hex, as binary values are: JSON cannot carry it, and the event
         * with it would be lost. */
        if (!util_utf8_valid(v, n)) {
            n = cap;
            hex_value = true;
        }
    }
    if (n < len)
        s->rec_truncated = true;
    if (hex_value) {
        char hex[2 * CONNECT_RECORD_VALUE + 3];
        memcpy(hex, "\\x", 2);
        util_hex_encode(v, n, hex + 2);
        json_array_append_new(s->rec_row, json_string(hex));
    } else {
        json_array_append_new(s->rec_row, json_stringn((const char *)v, n));
    }
    s->rec_bytes += n;
}

/* ---- gateway hooks ------------------------------------------------------ */

static void session_free(struct cn_session *s)
{
    record_clear(s);
    policy_guard_free(&s->guard);
    json_decref(s->notices);
    free(s);
}

static void on_session_start(void *user, const struct gateway_session_info *si)
{
    struct connect *c = user;
    struct cn_session *s = calloc(1, sizeof *s);
    char label[64];
    if (!s || util_uuid_v4(s->id) < 0 ||
        (snprintf(label, sizeof label, "session %s", s->id),
         policy_guard_init(&s->guard, c->policy, c->catalog_conninfo, MOD, label) < 0)) {
        log_error(MOD, "out of memory for session %llu", (unsigned long long)si->id);
        free(s);
        return;
    }
    if (si->search_path_set)
        policy_session_mark_search_path(s->guard.tracker);
    policy_guard_set_client(&s->guard, si->application_name); /* pg_dump: no COPY of masked data */
    s->gw_id = si->id;
    s->c = c;
    s->next = c->sessions;
    c->sessions = s;
    c->stats.sessions_active++;
    c->stats.sessions_total++;
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "connection", c->connection, "client_addr",
                          si->client_addr, "application", si->application_name, "gateway_host", host,
                          "database", c->database, "db_user", c->db_user);
    char err[256];
    if (cn_emit(c, s, "session_start", d, err, sizeof err) < 0)
        log_error(MOD, "session %s: audit spool: %s (its statements will be refused)", s->id, err);
}

static void on_session_end(void *user, const struct gateway_session_info *si)
{
    struct connect *c = user;
    struct cn_session **pp = &c->sessions;
    while (*pp && (*pp)->gw_id != si->id)
        pp = &(*pp)->next;
    struct cn_session *s = *pp;
    if (!s)
        return;
    *pp = s->next;
    c->stats.sessions_active--;
    record_flush(c, s);
    char err[256];
    /* A statement still held when its session closes never ran: its event
     * says so now (once the review is withdrawn its session is gone). The
     * loop thread owns event_data; the list is shared with the pollers. */
    json_t *held = json_array();
    pthread_mutex_lock(&c->lock);
    bool any = false;
    for (struct cn_hold *h = c->holds; h && !any; h = h->next)
        any = h->gw_session_id == si->id && h->event_data;
    if (any)
        cn_review_wait_withdrawals(c, 3000);
    for (struct cn_hold *h = c->holds; h && held; h = h->next)
        if (h->gw_session_id == si->id && h->event_data) {
            json_object_set_new(h->event_data, "error",
                                json_string("the session closed while the statement was held for review: it did"
                                            " not run"));
            json_array_append_new(held, h->event_data);
            h->event_data = NULL;
        }
    pthread_mutex_unlock(&c->lock);
    size_t i;
    json_t *ev;
    json_array_foreach(held, i, ev) {
        if (cn_emit(c, s, "statement", json_incref(ev), err, sizeof err) < 0)
            log_error(MOD, "session %s: audit spool: %s", s->id, err);
    }
    json_decref(held);
    if (cn_emit(c, s, "session_end",
                json_pack("{s:s, s:I}", "reason", c->stopping ? "gateway stopped" : "client closed",
                          "statements", (json_int_t)s->statements),
                err, sizeof err) < 0)
        log_error(MOD, "session %s: audit spool: %s", s->id, err);
    session_free(s);
}

/* Parameters as the audit shows them: text as is; binary as PostgreSQL
 * would print it when its type (from the Parse) is a simple one, else as \x
 * hex; for the audit (audit), a value past CONNECT_AUDIT_PARAM bytes keeps
 * its head plus its length and SHA-256, so that one huge parameter cannot
 * make an event the server refuses. Reviewers get every value whole: they
 * approve what runs (a review past the server's body cap is refused, and so
 * is its statement). */
#define CONNECT_AUDIT_PARAM 4096
static json_t *param_json(const uint8_t *v, size_t len, bool binary, uint32_t type_oid, bool audit)
{
    struct buf text = {0};
    if (binary && type_oid && pgwire_binary_to_text(type_oid, v, len, &text) == 0) {
        json_t *j = param_json(text.data ? text.data : (const uint8_t *)"", text.len, false, 0, audit);
        buf_free(&text);
        return j;
    }
    buf_free(&text);
    size_t n = audit && len > CONNECT_AUDIT_PARAM ? CONNECT_AUDIT_PARAM : len;
    struct buf b = {0};
    if (binary) {
        char *hex = malloc(2 * n + 1);
        if (!hex)
            return NULL;
        util_hex_encode(v, n, hex);
        buf_append_str(&b, "\\x");
        buf_append_str(&b, hex);
        free(hex);
    } else {
        while (n < len && n > 0 && (v[n] & 0xC0) == 0x80)
            n--; /* cut at a character boundary */
        buf_append(&b, v, n);
    }
    if (n < len) {
        char sha[65];
        util_sha256_hex(v, len, sha);
        buf_printf(&b, "... (%zu bytes, sha256 %s)", len, sha);
    }
    if (len > 0 && !b.data)
        return NULL; /* out of memory */
    json_t *j = b.data ? json_stringn((const char *)b.data, b.len) : json_string("");
    buf_free(&b);
    return j ? j : json_string("(not valid UTF-8)");
}

/* The parameters as recorded (audit) or read (review): a value the
 * redaction marks secret is "(redacted)", and for the audit one that reads as
 * a conninfo with a password too (decoded from binary or not); NULL stays
 * null. NULL when memory runs out: never a list with a value missing. */
static json_t *params_json(const struct gateway_statement *st, const struct policy_redaction *r, bool audit)
{
    json_t *a = json_array();
    for (int i = 0; a && i < st->nparams; i++) {
        const uint8_t *v = st->param_values[i];
        size_t len = v ? (size_t)st->param_lengths[i] : 0;
        bool binary = st->param_formats && st->param_formats[i] == 1;
        json_t *one;
        if (!v)
            one = json_null();
        else if (policy_param_is_secret(r, i) || (audit && policy_value_holds_secret((const char *)v, len)))
            one = json_string("(redacted)");
        else
            one = param_json(v, len, binary, i < st->ntypes ? st->param_types[i] : 0, audit);
        if (json_array_append_new(a, one) < 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* A statement event's text, parameters and decision. */
static json_t *statement_event_base(const struct cn_session *s, const struct gateway_statement *st,
                                    const char *decision, const char *rule)
{
    struct policy_redaction r;
    if (policy_audit_redaction(st->sql, policy_redacts_literals(s->guard.policy), &r) < 0)
        return NULL;
    char portal[128];
    snprintf(portal, sizeof portal, "-- fetch from portal \"%.80s\"", st->portal_name ? st->portal_name : "");
    const char *text = r.changed ? r.text : st->sql ? st->sql : portal;
    /* Text that is not UTF-8 (a client_encoding such as LATIN1) is audited
     * with its odd bytes as \xNN, marked for the statement hook, which
     * refuses it. */
    bool utf8 = util_utf8_valid(text, strlen(text));
    char *shown = utf8 ? NULL : util_terminal_safe(text, true);
    json_t *data = utf8 || shown ? json_pack("{s:s, s:s, s:s}", "text", shown ? shown : text, "decision", decision,
                                             "rule", rule)
                                 : NULL;
    if (data && shown)
        json_object_set_new(data, "text_not_utf8", json_true());
    free(shown);
    if (data && (r.changed || (r.all_params && st->nparams > 0)))
        json_object_set_new(data, "redacted", json_true());
    if (data && st->nparams > 0)
        json_object_set_new(data, "params", params_json(st, &r, true));
    free(r.text);
    return data;
}

static json_t *statement_event(const struct cn_session *s, const struct gateway_statement *st)
{
    const struct policy_decision *d = &s->guard.decision;
    json_t *data = statement_event_base(s, st, policy_action_name(d->action), d->rule_name);
    if (!data)
        return NULL;
    if (s->guard.have_analysis && d->stmt_index < s->guard.analysis.nstmts) {
        const struct policy_stmt *ps = &s->guard.analysis.stmts[d->stmt_index];
        char kind[64];
        size_t i = 0;
        for (; ps->kind && ps->kind[i] && i < sizeof kind - 1; i++)
            kind[i] = (char)tolower((unsigned char)ps->kind[i]);
        kind[i] = '\0';
        json_object_set_new(data, "kind", json_string(kind));
        /* libpg_query's normalized text misses some literals (E'', U&''):
         * not beside a redacted text */
        if (ps->normalized && !json_is_true(json_object_get(data, "redacted")))
            json_object_set_new(data, "normalized", json_string(ps->normalized));
        if (ps->fingerprint[0])
            json_object_set_new(data, "fingerprint", json_string(ps->fingerprint));
        json_t *rel = json_array();
        for (size_t r = 0; r < ps->nrelations; r++) {
            char name[2 * POLICY_NAME_MAX + 2];
            snprintf(name, sizeof name, "%s%s%s", ps->relations[r].schema ? ps->relations[r].schema : "",
                     ps->relations[r].schema ? "." : "", ps->relations[r].name);
            json_array_append_new(rel, json_string(name));
        }
        json_object_set_new(data, "relations", rel);
    }
    return data;
}

/* What reviewers read of st, and its parameters: the statement and its
 * values whole (redact_literals is for the audit record) but for its
 * secrets (a password after PASSWORD, ...), which neither they nor the
 * server see, after what the statements it EXECUTEs were PREPAREd as
 * (policy_review_text). 0, or -1 when memory runs out. */
static int review_text(struct cn_session *s, const struct gateway_statement *st, char **text, json_t **params)
{
    struct policy_redaction sec;
    if (policy_review_redaction(st->sql, &sec) < 0)
        return -1;
    *params = st->nparams ? params_json(st, &sec, false) : NULL;
    *text = policy_review_text(s->guard.have_analysis ? &s->guard.analysis : NULL, sec.changed ? sec.text : st->sql);
    free(sec.text);
    if (*text && (*params || !st->nparams))
        return 0;
    free(*text);
    json_decref(*params);
    *text = NULL;
    *params = NULL;
    return -1;
}

static enum gateway_verdict on_statement(void *user, const struct gateway_session_info *si,
                                         const struct gateway_statement *st, uint64_t hold_id,
                                         struct gateway_refusal *ref)
{
    struct connect *c = user;
    struct cn_session *s = cn_session_find(c, si->id);
    snprintf(ref->sqlstate, sizeof ref->sqlstate, "42501");
    if (!s) {
        snprintf(ref->message, sizeof ref->message, "hoopctl: this session has no audit state (fail closed)");
        return GATEWAY_REFUSE;
    }
    if (c->client_user[0] && strcmp(si->client_user, c->client_user) != 0) {
        snprintf(ref->message, sizeof ref->message, "hoopctl: this listener serves one client only");
        cn_audit_refusal(c, s, statement_event_base(s, st, "deny", "client-user"), ref->message);
        return GATEWAY_REFUSE;
    }
    record_flush(c, s);
    c->stats.statements++;
    s->statements++;
    const struct policy_decision *d = &s->guard.decision;
    policy_guard_set_portals(&s->guard, st->portal_exists, st->portal_ctx, st->portal_closes);
    policy_guard_decide(&s->guard, st->kind, st->sql, c->groups); /* out of memory: a deny that says so */
    /* hoopctl mcp without --allow-writes: audited below as any denial. Its
     * own BEGIN READ ONLY, COMMIT and SET come as simple queries; the
     * agent's SQL always by the extended protocol, where those are refused
     * too (SET default_transaction_read_only = off, a COMMIT of the READ
     * ONLY transaction). */
    if (c->read_only)
        policy_guard_deny_unless_read(&s->guard, st->kind == GATEWAY_STATEMENT_SIMPLE);
    policy_guard_forget_names(&s->guard, &ref->forget);
    json_t *data = statement_event(s, st);
    char err[256];
    if (!data) {
        c->stats.denials++;
        snprintf(ref->message, sizeof ref->message, "hoopctl: out of memory while auditing the statement, so it is refused");
        return GATEWAY_REFUSE;
    }
    /* (a mark of statement_event_base's for here; servers before this one
     * refuse a field they do not know) */
    bool not_utf8 = json_is_true(json_object_get(data, "text_not_utf8"));
    json_object_del(data, "text_not_utf8");
    if (not_utf8) {
        snprintf(ref->sqlstate, sizeof ref->sqlstate, "22021");
        snprintf(ref->message, sizeof ref->message,
                 "hoopctl: the statement's text is not valid UTF-8, so it is refused: hoopctl audits and reviews "
                 "statements as UTF-8; set client_encoding to UTF8");
        json_object_set_new(data, "decision", json_string("deny"));
        json_object_set_new(data, "rule", json_string("not-utf8"));
        json_object_set_new(data, "sqlstate", json_string("22021"));
        cn_audit_refusal(c, s, data, "the statement's text is not valid UTF-8 (bytes that are not UTF-8 are shown as \\xNN)");
        return GATEWAY_REFUSE;
    }
    /* What reviewers will read, made while the analysis is here (admitting
     * the statement takes it). */
    char *review = NULL;
    json_t *params = NULL;
    int review_rc = d->action == POLICY_REVIEW ? review_text(s, st, &review, &params) : 0;
    /* Whatever may run (now or once approved) joins the statements whose
     * results may still come; a denied one never runs. */
    if (d->action != POLICY_DENY && policy_guard_admit(&s->guard, c->groups, hold_id) < 0) {
        free(review);
        json_decref(params);
        c->stats.denials++;
        snprintf(ref->message, sizeof ref->message, "hoopctl: out of memory while checking the statement");
        cn_audit_refusal(c, s, data, ref->message);
        return GATEWAY_REFUSE;
    }
    switch (d->action) {
    case POLICY_DENY:
        snprintf(ref->message, sizeof ref->message, "hoopctl: statement refused by rule %s: %s",
                 d->rule_name[0] ? d->rule_name : "default", d->message);
        /* a parse error quotes the text near it, which may be a redacted value */
        cn_audit_refusal(c, s, data,
                         json_is_true(json_object_get(data, "redacted")) && strcmp(d->rule_name, "parse-error") == 0
                             ? "the statement does not parse (the parser's message is left out: it may quote a"
                               " redacted value)"
                             : d->message);
        return GATEWAY_REFUSE;
    case POLICY_REVIEW: {
        /* The held Execute is what runs; the text is what they judge. */
        int rc = -1;
        if (review_rc == 0)
            rc = cn_review_start(c, s, review, params, hold_id, d, data, ref, err, sizeof err);
        else
            snprintf(err, sizeof err, "out of memory");
        free(review);
        json_decref(params);
        if (rc == 0) {
            json_decref(data);
            return GATEWAY_HOLD;
        }
        snprintf(ref->message, sizeof ref->message, "hoopctl: statement needs a review (%.150s) and %.200s",
                 d->message, data ? err : "out of memory");
        cn_audit_refusal(c, s, data, ref->message);
        return GATEWAY_REFUSE;
    }
    default:
        /* Durable before it goes on: appended now, held (silently) until the
         * group commit after the loop's next poll. */
        if (emit(c, s, "statement", data, false, err, sizeof err) < 0 ||
            (commit_hold(c, hold_id) < 0 && spool_commit(c->spool, err, sizeof err) < 0)) {
            c->stats.denials++;
            snprintf(ref->message, sizeof ref->message,
                     "hoopctl: the audit spool cannot be written, statement refused (fail closed): %s", err);
            return GATEWAY_REFUSE;
        }
        cn_inflight_add(s, hold_id, s->statement_seq);
        if (c->ncommit_holds && c->commit_holds[c->ncommit_holds - 1].id == hold_id) {
            ref->hold_silent = true;
            return GATEWAY_HOLD;
        }
        return GATEWAY_ALLOW; /* committed already (no memory to hold it) */
    }
}

#define CN_NOTICES_MAX 32 /* recorded per statement; more are counted as one line */

/* A notice for the client: recorded (as psql prints it) with the completion
 * of the statement that caused it. */
static void on_notice(void *user, const struct gateway_session_info *si, const char *severity,
                      const char *message)
{
    struct cn_session *s = cn_session_find(user, si->id);
    if (!s || (!s->notices && !(s->notices = json_array())))
        return;
    size_t n = json_array_size(s->notices);
    if (n > CN_NOTICES_MAX)
        return;
    char line[1100];
    if (n == CN_NOTICES_MAX)
        snprintf(line, sizeof line, "(more notices, not recorded)");
    else
        snprintf(line, sizeof line, "%s:  %s", severity[0] ? severity : "NOTICE", message);
    json_t *j = json_string(line); /* NULL when not UTF-8: not recorded */
    if (j)
        json_array_append_new(s->notices, j);
}

/* A statement finished upstream: its command tag, row count and duration
 * join its result sample, or become a "completion" event of their own. */
static void on_statement_complete(void *user, const struct gateway_session_info *si,
                                  const struct gateway_completion *done)
{
    struct connect *c = user;
    struct cn_session *s = cn_session_find(c, si->id);
    if (!s)
        return;
    int64_t seq = inflight_finish(s, done->statement_id);
    if (seq <= 0)
        return;
    json_t *d = json_pack("{s:I, s:I}", "statement_seq", (json_int_t)seq, "duration_us",
                          (json_int_t)(done->duration_us > 0 ? done->duration_us : 0));
    if (!d)
        return;
    if (done->command_tag[0])
        json_object_set_new(d, "command_tag", json_string(done->command_tag));
    if (done->rows >= 0)
        json_object_set_new(d, "row_count", json_integer(done->rows));
    if (done->kind == GATEWAY_COMPLETE_ERROR) {
        json_object_set_new(d, "sqlstate", json_string(strlen(done->sqlstate) == 5 ? done->sqlstate : "XX000"));
        json_object_set_new(d, "error", json_string(done->message));
    } else if (done->kind == GATEWAY_COMPLETE_EMPTY) {
        json_object_set_new(d, "outcome", json_string("empty")); /* an empty query: no tag */
    } else if (done->kind == GATEWAY_COMPLETE_SUSPENDED) {
        json_object_set_new(d, "outcome", json_string("suspended")); /* Execute row limit reached */
    }
    if (s->notices) { /* what the statement printed, for replay */
        json_object_set_new(d, "notices", s->notices);
        s->notices = NULL;
    }
    if (s->rec_columns) {
        record_flush_as(c, s, seq, d);
        return;
    }
    char err[256];
    if (cn_emit(c, s, "completion", d, err, sizeof err) < 0)
        log_warn(MOD, "session %s: completion not recorded: %s", s->id, err);
}

static void on_hold_abandoned(void *user, uint64_t hold_id)
{
    cn_review_abandon(user, hold_id);
}

/* Every column of every result goes through here: masked where the plan
 * says, and recorded (as the client gets it) for the first rows. */
static int mask_filter(void *user, const struct gateway_session_info *si, int column, const uint8_t *value,
                       int32_t length, int16_t format, struct buf *out, bool *is_null)
{
    struct cn_session *s = user;
    size_t before = out->len;
    if (policy_guard_row_filter(&s->guard, si, column, value, length, format, out, is_null) < 0)
        return -1;
    const uint8_t *shown = out->data ? out->data + before : (const uint8_t *)"";
    record_value(s, column, shown, out->len - before, *is_null);
    return 0;
}

static bool on_row_description(void *user, const struct gateway_session_info *si,
                               const struct pgwire_column *cols, int ncols, struct gateway_row_filter *f)
{
    struct connect *c = user;
    struct cn_session *s = cn_session_find(c, si->id);
    if (ncols <= 0)
        return false;
    if (!s) { /* no state: a filter that fails (fail closed) */
        policy_guard_row_description(NULL, si, cols, ncols, true, f);
        return true;
    }
    record_flush(c, s); /* a new result set begins: the last one is recorded */
    /* Every column goes through the filter: the masked ones are rewritten,
     * and the first rows are recorded for replay. */
    policy_guard_row_description(&s->guard, si, cols, ncols, true, f);
    if (s->guard.have_plan)
        record_start(s, cols, ncols);
    f->filter = mask_filter;
    f->user = s;
    return true;
}

static bool on_error_redact(void *user, const struct gateway_session_info *si, const char *sqlstate)
{
    struct cn_session *s = cn_session_find(user, si->id);
    return !s || policy_guard_error_redact(&s->guard, sqlstate);
}

static bool on_notification_redact(void *user, const struct gateway_session_info *si)
{
    struct cn_session *s = cn_session_find(user, si->id);
    return !s || policy_guard_notification_redact(&s->guard);
}

static int on_text_mask(void *user, const struct gateway_session_info *si, const char *text, size_t len,
                        char **out, size_t *outlen)
{
    struct cn_session *s = cn_session_find(user, si->id);
    return s ? policy_guard_text_mask(&s->guard, text, len, out, outlen) : -1;
}

static void on_idle(void *user, const struct gateway_session_info *si)
{
    struct cn_session *s = cn_session_find(user, si->id);
    if (s)
        policy_guard_idle(&s->guard, si->txn_status);
}

static bool on_copy_out(void *user, const struct gateway_session_info *si, int ncols, int format,
                        struct gateway_copy_filter *f)
{
    (void)format;
    struct connect *c = user;
    struct cn_session *s = cn_session_find(c, si->id);
    if (s)
        record_flush(c, s);
    policy_guard_copy_out(s ? &s->guard : NULL, si, ncols, f); /* no state: a filter that fails */
    return true;
}

/* ---- setup -------------------------------------------------------------- */

/* key='value' with ' and \ escaped, for libpq and pgwire conninfo strings. */
static void conninfo_add(char *out, size_t len, const char *key, const char *value)
{
    size_t n = strlen(out);
    if (n + 1 >= len)
        return;
    n += (size_t)snprintf(out + n, len - n, "%s%s='", n ? " " : "", key);
    for (const char *p = value; *p && n + 3 < len; p++) {
        if (*p == '\'' || *p == '\\')
            out[n++] = '\\';
        out[n++] = *p;
    }
    if (n + 2 <= len) {
        out[n++] = '\'';
        out[n] = '\0';
    }
}

static enum connect_error status_error(long status)
{
    if (status == 401)
        return CONNECT_ERR_AUTH;
    if (status == 403)
        return CONNECT_ERR_DENIED;
    if (status >= 500)
        return CONNECT_ERR_UNAVAILABLE;
    return CONNECT_ERR_FAILED;
}

/* GET path; 0 with *resp on 200, else -1 with err and *why (and the HTTP
 * status in *status when given; 0 when the server was not reached). */
static int api_get(struct connect *c, const char *path, json_t **resp, long *status_out, enum connect_error *why,
                   char *err, size_t errlen)
{
    long status = 0;
    char e2[512];
    *resp = NULL;
    int called = api_call(&c->api, "GET", path, NULL, &status, resp, e2, sizeof e2);
    if (status_out)
        *status_out = called < 0 ? 0 : status;
    if (called < 0) {
        *why = CONNECT_ERR_UNAVAILABLE;
        snprintf(err, errlen, "%.400s", e2); /* it names the server */
        return -1;
    }
    if (status != 200) {
        *why = status_error(status);
        snprintf(err, errlen, "%s (HTTP %ld)", api_error_message(*resp), status);
        json_decref(*resp);
        *resp = NULL;
        return -1;
    }
    return 0;
}

static int load_groups(struct connect *c, json_t *who)
{
    json_t *g = json_object_get(who, "groups");
    size_t n = json_array_size(g);
    c->group_store = calloc(n + 1, sizeof *c->group_store);
    if (!c->group_store)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!(c->group_store[i] = strdup(json_string_value(json_array_get(g, i)) ?: "")))
            return -1;
    c->groups = (const char *const *)c->group_store;
    return 0;
}

static void refresh_reap(struct connect *c);

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    char drain[64];
    while (read(fd, drain, sizeof drain) > 0)
        ;
    cn_review_reap(arg);
    refresh_reap(arg);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct connect *c = arg;
    char err[256];
    if (spool_commit(c->spool, err, sizeof err) < 0)
        log_error(MOD, "audit spool: %s", err);
    shipper_kick(c->shipper);
}

/* The refresh thread: discovery and a token request may each wait up to
 * 30 s on a hung identity provider, so never on the loop thread. */
static void *refresh_main(void *arg)
{
    struct connect *c = arg;
    char err[512] = "";
    identity_http_abort_on(&c->refresh_abort);
    int next = identity_session_refresh_tick(c->identity, err, sizeof err);
    identity_http_abort_on(NULL);
    pthread_mutex_lock(&c->lock);
    c->refresh_next = next;
    snprintf(c->refresh_err, sizeof c->refresh_err, "%s", next < 0 ? err : "");
    c->refresh_done = true;
    pthread_mutex_unlock(&c->lock);
    char one = 1;
    while (write(c->wake_pipe[1], &one, 1) < 0 && errno == EINTR)
        ;
    return NULL;
}

static void refresh_again(struct connect *c, int seconds)
{
    struct timeval tv = {seconds, 0};
    evtimer_add(c->refresh_timer, &tv);
}

/* Loop side: join a refresh thread that reported, take its token, and arm
 * the timer for the next one (counted from now, after the attempt). */
static void refresh_reap(struct connect *c)
{
    if (!c->refreshing)
        return;
    pthread_mutex_lock(&c->lock);
    bool done = c->refresh_done, stopping = c->stopping;
    int next = c->refresh_next;
    char err[512];
    snprintf(err, sizeof err, "%s", c->refresh_err);
    if (done) {
        c->refresh_done = false;
        c->refresh_err[0] = '\0';
    }
    pthread_mutex_unlock(&c->lock);
    if (!done)
        return;
    pthread_join(c->refresher, NULL);
    c->refreshing = false;
    if (next < 0) {
        if (!stopping && !atomic_load(&c->refresh_abort))
            log_warn(MOD, "the login cannot be refreshed (run hoopctl login): %s", err);
        next = 30;
    } else {
        /* The thread has ended: identity is the loop's again. */
        pthread_mutex_lock(&c->lock);
        snprintf(c->api.token, sizeof c->api.token, "%s", c->identity->tokens.access_token);
        pthread_mutex_unlock(&c->lock);
    }
    if (!stopping)
        refresh_again(c, next);
}

static void on_refresh(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct connect *c = arg;
    if (!c->identity || c->refreshing || atomic_load(&c->refresh_abort))
        return; /* a token that needs no refresh (an API key); one at a time; stopping */
    int e = pthread_create(&c->refresher, NULL, refresh_main, c);
    if (e != 0) {
        log_warn(MOD, "the login cannot be refreshed: no thread for it: %s", strerror(e));
        refresh_again(c, 30);
        return;
    }
    c->refreshing = true;
}

/* Stop a running refresh: its transfers end within about a second. */
static void refresh_stop(struct connect *c)
{
    atomic_store(&c->refresh_abort, true);
    if (c->refreshing) {
        pthread_join(c->refresher, NULL);
        c->refreshing = false;
    }
}

/* The spool file of this user, server and connection, in dir. */
static int spool_path(const struct connect_options *o, struct connect *c, const char *issuer,
                      const char *subject, char *dir, size_t dirlen, char *out, size_t len, char *err,
                      size_t errlen)
{
    char key[2048], hash[65], url[1024];
    if (o->spool_dir)
        snprintf(dir, dirlen, "%s", o->spool_dir);
    else if (config_state_dir(dir, dirlen) < 0 ||
             strlen(dir) + 7 >= dirlen || (strcat(dir, "/spool"), 0)) {
        snprintf(err, errlen, "no state directory for the audit spool");
        return -1;
    }
    if (config_mkdirs(dir, 0700) < 0) {
        snprintf(err, errlen, "cannot create the spool directory %s: %s", dir, strerror(errno));
        return -1;
    }
    util_url_same_server(c->api.base, url, sizeof url); /* localhost and 127.0.0.1 stay apart */
    snprintf(key, sizeof key, "%s|%s|%s|%s", url, issuer, subject, c->connection);
    util_sha256_hex(key, strlen(key), hash);
    snprintf(out, len, "%s/%.24s.db", dir, hash);
    /* Before the URL was normalised the key took it as given: a spool made
     * under that spelling (Hoop.Example.com, :443) goes on being used, so
     * the events a killed connect left in it are shipped. */
    char legacy[4200];
    struct stat st;
    snprintf(key, sizeof key, "%s|%s|%s|%s", c->api.base, issuer, subject, c->connection);
    util_sha256_hex(key, strlen(key), hash);
    int n = snprintf(legacy, sizeof legacy, "%s/%.24s.db", dir, hash);
    if (n > 0 && (size_t)n < len && strcmp(legacy, out) != 0 && stat(out, &st) != 0 && stat(legacy, &st) == 0)
        memcpy(out, legacy, (size_t)n + 1);
    return 0;
}

/* Whether one of the user's groups (whoami's) is among groups: the
 * server's rule for whose gateway gets a connection's credentials. */
static bool user_in_any(const struct connect *c, json_t *groups)
{
    size_t i;
    json_t *g;
    json_array_foreach(groups, i, g) {
        for (size_t k = 0; c->groups && c->groups[k]; k++)
            if (json_is_string(g) && strcmp(json_string_value(g), c->groups[k]) == 0)
                return true;
    }
    return false;
}

/* A connection name as the server allows them (letters, digits, '.', '_',
 * '-'): anything else from the server is not put on the terminal. */
static bool plain_name(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
            return false;
    return n > 0 && n <= 63;
}

/* Text of a local file that may go on the terminal: printable ASCII. */
static bool printable(const char *s)
{
    for (; *s; s++)
        if (!isprint((unsigned char)*s))
            return false;
    return true;
}

/* Other spools in dir that still hold events: left by a connect that was
 * killed or lost its server, for another server URL, user or connection.
 * Only the connect that uses such a spool ships them: say so, not to lose
 * them silently. */
static void warn_other_spools(const char *dir, const char *mine)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        char path[1400], err[512];
        if (n < 4 || strcmp(e->d_name + n - 3, ".db") != 0 ||
            (size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path || strcmp(path, mine) == 0)
            continue;
        int64_t pending;
        struct spool_meta m;
        if (spool_peek(path, &pending, &m, err, sizeof err) < 0) {
            log_warn(MOD, "audit %s", err);
            continue;
        }
        if (pending <= 0)
            continue;
        if (m.server[0] && plain_name(m.connection) && printable(m.server) && printable(m.subject))
            log_warn(MOD,
                     "the audit spool %s holds %lld events not yet shipped, of connection %s through %.200s as "
                     "%.100s: a hoopctl connect with that login, server URL and connection ships them (unless "
                     "one is running now)",
                     path, (long long)pending, m.connection, m.server, m.subject);
        else
            log_warn(MOD,
                     "the audit spool %s holds %lld events not yet shipped, for another server URL, login or "
                     "connection: the hoopctl connect that uses that spool ships them (unless one is running now)",
                     path, (long long)pending);
    }
    closedir(d);
}

/* After the server's 404 for the connection: the closest name the user may
 * use ("did you mean 'prod'?") and which those are, appended to err. Only
 * the connections the server lists to this user and whose allowed groups
 * hold one of theirs are named: the list also has those they only review
 * (and, for an admin, every one), which connect would refuse; nothing is
 * told that the user could not read from the API already. */
static void suggest_connections(struct connect *c, char *err, size_t errlen)
{
    json_t *list = NULL;
    char e2[512];
    enum connect_error why;
    if (api_get(c, "/api/v1/connections", &list, NULL, &why, e2, sizeof e2) < 0)
        return; /* the 404's message alone */
    json_t *all = json_object_get(list, "connections"), *x;
    const char **names = calloc(json_array_size(all) + 1, sizeof *names);
    if (!names) {
        json_decref(list);
        return;
    }
    size_t n = 0, i;
    json_array_foreach(all, i, x) {
        const char *name = json_string_value(json_object_get(x, "name"));
        if (plain_name(name) && user_in_any(c, json_object_get(x, "allowed_groups")))
            names[n++] = name;
    }
    size_t len = strlen(err), best = util_nearest_name(c->connection, names, n);
    if (best < n && util_name_is_typo(c->connection, names[best]))
        snprintf(err + len, errlen - len, "; did you mean '%s'?", names[best]);
    len = strlen(err);
    snprintf(err + len, errlen - len, "\nhint: %s", n ? "the connections you may use:" : "there is no connection"
                                                          " you may use on this server (none allows your groups)");
    enum { SHOWN = 20 }; /* a long list goes on in hoopctl connect <TAB> */
    for (i = 0; i < n && i < SHOWN; i++) {
        len = strlen(err);
        snprintf(err + len, errlen - len, "%s %s", i ? "," : "", names[i]);
    }
    len = strlen(err);
    if (n > SHOWN)
        snprintf(err + len, errlen - len, ", and %zu more", n - SHOWN);
    free(names);
    json_decref(list);
}

/* Fetch the connection with its secret and build the upstream side. */
static int load_connection(struct connect *c, struct gateway_config *gc, char *password, size_t pwlen,
                           enum connect_error *why, char *err, size_t errlen)
{
    char path[512], esc[300], e2[512];
    json_t *conn = NULL;
    long status = 0;
    api_escape(c->connection, esc, sizeof esc);
    snprintf(path, sizeof path, "/api/v1/connections/%s/credentials", esc);
    if (api_get(c, path, &conn, &status, why, e2, sizeof e2) < 0) {
        if (*why == CONNECT_ERR_DENIED)
            snprintf(err, errlen, "access to connection %s refused: %s", c->connection, e2);
        else
            snprintf(err, errlen, "connection %s: %s", c->connection, e2);
        if (status == 404)
            suggest_connections(c, err, errlen);
        return -1;
    }
    const char *host = json_string_value(json_object_get(conn, "host"));
    const char *db = json_string_value(json_object_get(conn, "database"));
    const char *user = json_string_value(json_object_get(conn, "user"));
    const char *ssl = json_string_value(json_object_get(conn, "sslmode"));
    const char *pw = json_string_value(json_object_get(conn, "password"));
    json_int_t port = json_integer_value(json_object_get(conn, "port"));
    int rc = -1;
    *why = CONNECT_ERR_FAILED;
    if (!host || !db || !user || port <= 0 || port > 65535) {
        snprintf(err, errlen, "connection %s: the server's answer lacks host, port, database or user",
                 c->connection);
        goto out;
    }
    snprintf(c->host, sizeof c->host, "%s", host);
    snprintf(c->database, sizeof c->database, "%s", db);
    snprintf(c->db_user, sizeof c->db_user, "%s", user);
    char portbuf[16], ci[1024] = "";
    snprintf(portbuf, sizeof portbuf, "%d", (int)port);
    conninfo_add(ci, sizeof ci, "host", host);
    conninfo_add(ci, sizeof ci, "port", portbuf);
    conninfo_add(ci, sizeof ci, "dbname", db);
    conninfo_add(ci, sizeof ci, "user", user);
    conninfo_add(ci, sizeof ci, "sslmode", ssl ? ssl : "verify-full");
    if (pgwire_conninfo_parse(ci, &gc->upstream, e2, sizeof e2) < 0) {
        snprintf(err, errlen, "connection %s: %s", c->connection, e2);
        goto out;
    }
    /* verify-* without a CA file: the system trust store (pgwire found its
     * file); the catalog's libpq connection is told the same file. */
    if (gc->upstream.sslrootcert[0])
        conninfo_add(ci, sizeof ci, "sslrootcert", gc->upstream.sslrootcert);
    if (gc->upstream.sslrootcert_system) {
        snprintf(c->system_roots, sizeof c->system_roots, "%s", gc->upstream.sslrootcert);
        /* Connections name no CA file: the user's trust store is the one. */
        gc->system_roots_hint = "for a private CA, point SSL_CERT_FILE at a bundle that holds it, or ask an"
                                " admin to set the connection's sslmode to require";
    }
    snprintf(c->catalog_conninfo, sizeof c->catalog_conninfo, "%s application_name='hoopctl catalog'", ci);
    if (pw) {
        if (strlen(pw) >= pwlen) {
            snprintf(err, errlen, "connection %s: the secret is longer than %zu bytes", c->connection, pwlen - 1);
            goto out;
        }
        snprintf(password, pwlen, "%s", pw);
        conninfo_add(c->catalog_conninfo, sizeof c->catalog_conninfo, "password", pw);
    }
    char perr[POLICY_ERR_MAX];
    json_t *pdoc = json_object_get(conn, "policy");
    policy_doc_digest(pdoc, c->policy_digest);
    if (json_is_object(pdoc) && json_object_size(pdoc) > 0)
        c->policy = policy_load_json(pdoc, perr);
    else
        c->policy = policy_load_default();
    if (!c->policy) {
        snprintf(err, errlen, "connection %s: its policy cannot be used: %s", c->connection, perr);
        goto out;
    }
    rc = 0;
out:
    /* the secret lives in the answer's strings: wipe them before freeing */
    if (pw)
        util_secure_zero((char *)pw, strlen(pw));
    json_decref(conn);
    return rc;
}

static struct gateway *listen_gateway(struct connect *c, const struct connect_options *o,
                                      struct gateway_config *gc, char *err, size_t errlen)
{
    char port[16];
    if (o->listen_ephemeral) {
        gc->listen_port = "0";
        struct gateway *gw = gateway_new(c->base, gc, err, errlen);
        const char *bound = gw ? strrchr(gateway_listen_address(gw), ':') : NULL;
        if (bound)
            c->listen_port = atoi(bound + 1);
        return gw;
    }
    int first = o->listen_port ? o->listen_port : CONNECT_DEFAULT_PORT;
    int tries = o->listen_port ? 1 : CONNECT_PORT_TRIES;
    for (int i = 0; i < tries; i++) {
        snprintf(port, sizeof port, "%d", first + i);
        gc->listen_port = port;
        struct gateway *gw = gateway_new(c->base, gc, err, errlen);
        if (gw) {
            c->listen_port = first + i;
            return gw;
        }
    }
    if (tries > 1) {
        size_t n = strlen(err);
        snprintf(err + n, errlen - n, " (tried ports %d to %d)", first, first + tries - 1);
    }
    return NULL;
}

struct connect *connect_start(struct event_base *base, const struct connect_options *o,
                              enum connect_error *why, char *err, size_t errlen)
{
    *why = CONNECT_ERR_FAILED;
    struct connect *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->withdrawn, NULL);
    atomic_init(&c->refresh_abort, false);
    c->wake_pipe[0] = c->wake_pipe[1] = -1;
    c->base = base;
    c->identity = o->identity;
    c->review_wait_seconds = o->review_wait_seconds > 0 ? o->review_wait_seconds : 600;
    snprintf(c->connection, sizeof c->connection, "%s", o->connection);
    snprintf(c->listen_host, sizeof c->listen_host, "%s", o->listen_host ? o->listen_host : "127.0.0.1");
    snprintf(c->client_user, sizeof c->client_user, "%s", o->client_user ? o->client_user : "");
    c->read_only = o->read_only;
    char password[UTIL_SECRET_MAX + 1] = "", e2[512];
    json_t *who = NULL;
    struct gateway_config gc = {0};

    if (o->identity && !o->identity->login.server[0]) {
        *why = CONNECT_ERR_AUTH;
        snprintf(err, errlen, "this login is not through a hoopctl server: run hoopctl login --server URL");
        goto fail;
    }
    if (!o->identity && !(o->token && *o->token)) {
        *why = CONNECT_ERR_AUTH;
        snprintf(err, errlen, "not logged in: run hoopctl login, or give an API key in HOOPCTL_TOKEN");
        goto fail;
    }
    if (api_client_init(&c->api, o->identity ? o->identity->login.server : o->server, e2, sizeof e2) != 0) {
        snprintf(err, errlen, "%s", e2);
        goto fail;
    }
    c->api.timeout_s = 10; /* calls from the loop thread block every session */
    snprintf(c->api.token, sizeof c->api.token, "%s", o->identity ? o->identity->tokens.access_token : o->token);
    if (api_get(c, "/api/v1/whoami", &who, NULL, why, e2, sizeof e2) < 0) {
        snprintf(err, errlen, "%s%s",
                 *why != CONNECT_ERR_AUTH ? ""
                 : o->identity          ? "the server refused the login (run hoopctl login): "
                                        : "the server refused the token in HOOPCTL_TOKEN: ",
                 e2);
        goto fail;
    }
    if (load_groups(c, who) < 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (load_connection(c, &gc, password, sizeof password, why, err, errlen) < 0)
        goto fail;
    *why = CONNECT_ERR_FAILED;
    char spath[1200], sdir[1024];
    const char *subject = json_string_value(json_object_get(who, "subject")) ?: "";
    if (spool_path(o, c, json_string_value(json_object_get(who, "issuer")) ?: "", subject, sdir, sizeof sdir,
                   spath, sizeof spath, err, errlen) < 0)
        goto fail;
    /* The loop thread only appends: the shipper's thread checkpoints. */
    if (!(c->spool = spool_open(spath, SPOOL_SURVIVE_PROCESS_CRASH, e2, sizeof e2)) ||
        spool_defer_checkpoints(c->spool, e2, sizeof e2) < 0) {
        if (strstr(e2, spath)) /* spool_open's messages name the file */
            snprintf(err, errlen, "audit %s", e2);
        else
            snprintf(err, errlen, "audit spool %s: %s", spath, e2);
        goto fail;
    }
    if (spool_set_meta(c->spool, "server", c->api.base, e2, sizeof e2) < 0 ||
        spool_set_meta(c->spool, "subject", subject, e2, sizeof e2) < 0 ||
        spool_set_meta(c->spool, "connection", c->connection, e2, sizeof e2) < 0)
        log_warn(MOD, "audit spool %s: %s", spath, e2);
    warn_other_spools(sdir, spath);
    const char *urls[1] = {c->api.base};
    struct shipper_config sc = {.spool_path = spath, .urls = urls, .nurls = 1,
                                .ca_file = c->api.cafile[0] ? c->api.cafile : NULL,
                                .batch_max = 1000, /* and 4 MiB at most (results carry rows) */
                                .token = shipper_token, .token_arg = c};
    if (!(c->shipper = shipper_start(&sc, e2, sizeof e2))) {
        snprintf(err, errlen, "audit shipper: %s", e2);
        goto fail;
    }
    if (pipe2(c->wake_pipe, O_CLOEXEC | O_NONBLOCK) < 0 ||
        !(c->wake_event = event_new(base, c->wake_pipe[0], EV_READ | EV_PERSIST, on_wake, c)) ||
        !(c->refresh_timer = evtimer_new(base, on_refresh, c)) || !(c->kick_timer = evtimer_new(base, on_kick, c)) ||
        !(c->commit_event = event_new(base, -1, 0, on_group_commit, c))) {
        snprintf(err, errlen, "cannot set up the event loop: %s", strerror(errno));
        goto fail;
    }
    event_add(c->wake_event, NULL);
    struct timeval tv = {5, 0};
    evtimer_add(c->refresh_timer, &tv);

    gc.listen_host = c->listen_host;
    gc.max_sessions = o->max_sessions;
    gc.only_user = c->client_user[0] ? c->client_user : NULL; /* other local clients never reach upstream */
    gc.upstream_password = password[0] ? password : NULL;
    gc.no_password_hint = "the connection has no secret: ask an admin to set it "
                          "(hoopctl admin connection add --secret-file, --secret-env or --secret-prompt)";
    gc.hooks = (struct gateway_hooks){.user = c,
                                      .session_start = on_session_start,
                                      .session_end = on_session_end,
                                      .statement = on_statement,
                                      .hold_abandoned = on_hold_abandoned,
                                      .row_description = on_row_description,
                                      .copy_out = on_copy_out,
                                      .error_redact = on_error_redact,
                                      .idle = on_idle,
                                      .notice = on_notice,
                                      .notification_redact = on_notification_redact,
                                      .statement_complete = on_statement_complete};
    if (policy_has_detectors(c->policy)) /* else no notice or ParameterStatus is rebuilt for it */
        gc.hooks.text_mask = on_text_mask;
    c->gw = listen_gateway(c, o, &gc, err, errlen);
    util_secure_zero(password, sizeof password);
    if (!c->gw || (o->socket_dir && gateway_listen_unix(c->gw, o->socket_dir, err, errlen) < 0))
        goto fail;
    if (o->socket_dir)
        snprintf(c->socket_dir, sizeof c->socket_dir, "%s", o->socket_dir);
    json_decref(who);
    *why = CONNECT_OK;
    return c;
fail:
    util_secure_zero(password, sizeof password);
    json_decref(who);
    connect_free(c, 0);
    return NULL;
}

const char *connect_listen_host(const struct connect *c)
{
    return c->listen_host;
}

int connect_listen_port(const struct connect *c)
{
    return c->listen_port;
}

const char *connect_database(const struct connect *c)
{
    return c->database;
}

const char *connect_system_roots(const struct connect *c)
{
    return c->system_roots[0] ? c->system_roots : NULL;
}

const char *connect_socket_dir(const struct connect *c)
{
    return c->socket_dir[0] ? c->socket_dir : NULL;
}

const char *connect_db_user(const struct connect *c)
{
    return c->db_user;
}

void connect_client_conninfo(const struct connect *c, char *out, size_t len)
{
    char port[16];
    snprintf(port, sizeof port, "%d", c->listen_port);
    if (len)
        out[0] = '\0';
    conninfo_add(out, len, "host", c->listen_host);
    conninfo_add(out, len, "port", port);
    conninfo_add(out, len, "dbname", c->database);
    conninfo_add(out, len, "user", c->client_user[0] ? c->client_user : c->db_user);
    conninfo_add(out, len, "sslmode", "disable");
}

void connect_get_stats(struct connect *c, struct connect_stats *out)
{
    *out = c->stats;
    out->reviews_pending = cn_review_pending(c);
    out->spool_pending = -1;
    if (c->shipper) {
        struct shipper_stats ss;
        shipper_get_stats(c->shipper, &ss);
        out->spool_pending = ss.pending;
        out->quarantined = ss.quarantined;
        snprintf(out->last_error, sizeof out->last_error, "%s", ss.last_error);
    }
}

void connect_shutdown(struct connect *c)
{
    pthread_mutex_lock(&c->lock);
    c->stopping = true;
    pthread_mutex_unlock(&c->lock);
    atomic_store(&c->refresh_abort, true); /* a refresh in progress ends soon; connect_free joins it */
    if (c->gw)
        gateway_shutdown(c->gw);
}

void connect_free(struct connect *c, int drain_timeout_ms)
{
    if (!c)
        return;
    cn_review_stop_all(c);
    refresh_stop(c); /* before the caller frees identity, and before wake_pipe closes */
    if (c->stats.group_commits)
        log_info(MOD, "%llu statements went through %llu group commits of the spool",
                 (unsigned long long)c->stats.grouped_statements, (unsigned long long)c->stats.group_commits);
    if (c->gw) {
        gateway_shutdown(c->gw);
        gateway_free(c->gw);
    }
    /* Withdrawal threads use c: they end within their 5 s request timeout. */
    pthread_mutex_lock(&c->lock);
    while (c->withdrawals > 0)
        pthread_cond_wait(&c->withdrawn, &c->lock);
    pthread_mutex_unlock(&c->lock);
    while (c->sessions) { /* sessions the gateway did not end (it always should) */
        struct cn_session *s = c->sessions;
        c->sessions = s->next;
        session_free(s);
    }
    if (c->spool) {
        char err[256];
        if (spool_commit(c->spool, err, sizeof err) < 0)
            log_error(MOD, "audit spool: %s", err);
    }
    if (c->shipper) {
        if (drain_timeout_ms > 0 && shipper_drain(c->shipper, drain_timeout_ms) < 0)
            log_warn(MOD,
                     "audit events are still spooled; they are shipped by the next hoopctl connect %s with this "
                     "login and the server URL %s",
                     c->connection, c->api.base);
        shipper_stop(c->shipper);
    }
    if (c->spool)
        spool_close(c->spool);
    if (c->wake_event)
        event_free(c->wake_event);
    if (c->refresh_timer)
        event_free(c->refresh_timer);
    if (c->kick_timer)
        event_free(c->kick_timer);
    if (c->commit_event)
        event_free(c->commit_event);
    free(c->commit_holds);
    free(c->dump);
    for (int i = 0; i < 2; i++)
        if (c->wake_pipe[i] >= 0)
            close(c->wake_pipe[i]);
    policy_free(c->policy);
    if (c->group_store)
        for (size_t i = 0; c->group_store[i]; i++)
            free(c->group_store[i]);
    free(c->group_store);
    util_secure_zero(c->catalog_conninfo, sizeof c->catalog_conninfo);
    api_client_free(&c->api);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->withdrawn);
    free(c);
}
