/* policy_guard.h — one client session's policy at the gateway's hook points.
 *
 * A guard holds what a session needs to judge its statements and mask its
 * results: the statement tracker (prepared names, SQL cursors), the catalog
 * side connection (opened on first use), the statements whose results may
 * still come, and the mask plans of the result that is flowing. Both
 * `hoopctl gateway --policy` (offline) and `hoopctl connect` put one in each
 * session and call it from their gateway hooks, so that the two judge and
 * mask alike; what they do around it (an audit line, or a spooled event, a
 * review and a recording) stays theirs.
 *
 * A guard belongs to the loop that runs its session; it takes no lock.
 * Every failure fails closed: no plan makes the row filter fail (the gateway
 * then closes the session), an unopened catalog masks every table column. */
#ifndef HOOPCTL_POLICY_GUARD_H
#define HOOPCTL_POLICY_GUARD_H

#include <stdbool.h>
#include <stdint.h>

#include "hoopctl/gateway.h"
#include "hoopctl/policy.h"

struct policy_guard {
    struct policy *policy;
    const char *catalog_conninfo;      /* borrowed: libpq conninfo of the catalog side connection */
    const char *log_module;            /* borrowed: the module its log lines name */
    char label[48];                    /* "session 12": how its log lines name the session */
    struct policy_session *tracker;
    struct policy_catalog *catalog;
    bool catalog_failed;               /* could not be opened: every table column is masked */
    bool ddl_seen;                     /* DDL was forwarded, maybe not committed yet */
    bool ddl_pending;                  /* ...and statements after it: masked with no catalog */
    bool relations_added;              /* DDL that only adds relations was forwarded: the catalog
                                        * is read again when the transaction ends */
    struct policy_decision decision;   /* of the last statement judged */
    struct policy_analysis analysis;   /* of the last statement judged, when have_analysis */
    bool have_analysis;
    struct policy_results *results;    /* forwarded statements whose results may still come, under
                                          the gateway's answer positions */
    bool listening;                    /* the session sent LISTEN: its own notifications come back */
    bool txn_read_masked;              /* ...and its transaction ran a statement that may read masked
                                          data: the notifications it sent come at its end */
    bool txn_failed;                   /* upstream said the transaction failed ('E') since the session
                                          was last idle outside one: it rolls back */
    uint64_t portal_closes;            /* the gateway's count when the guard last looked */
    struct policy_mask_plan plan, copy_plan;
    bool have_plan, have_copy_plan;
    bool dump_client;                  /* the client is pg_dump or pg_dumpall (policy_guard_set_client) */
};

/* 0, or -1 when memory runs out (the guard is then empty and may be freed). */
int policy_guard_init(struct policy_guard *g, struct policy *p, const char *catalog_conninfo,
                      const char *log_module, const char *label);
void policy_guard_free(struct policy_guard *g);

/* Who the client is, from the session's startup (si->application_name):
 * pg_dump and pg_dumpall (their libpq default application_name) restore what
 * they dump, so a COPY of masked data, whose every field comes as NULL, is
 * refused for them (rule "masked-copy-dump", saying to dump the table with
 * --inserts or leave its data out) rather than written into a dump that
 * exits 0 and does not restore; other clients get the COPY with a NOTICE. */
void policy_guard_set_client(struct policy_guard *g, const char *application_name);
/* Whether application_name is pg_dump's or pg_dumpall's. */
bool policy_guard_is_dump_client(const char *application_name);

/* The catalog, opened on first use; NULL when it cannot be. */
struct policy_catalog *policy_guard_catalog(struct policy_guard *g);

/* Judge a statement into g->decision (and g->analysis when it has SQL):
 * a FunctionCall is denied (rule "function-call"); an Execute with no SQL (a
 * portal or statement the gateway did not see defined by the protocol, or
 * one that SQL may have redefined since) is denied ("untracked-portal");
 * a COPY TO STDOUT in a format that cannot be masked, of data that needs
 * masking only the catalog can see (a view, user code), is denied
 * ("masked-copy-format"); for pg_dump and pg_dumpall, a COPY TO whose
 * fields would all be masked (sent as NULL) is denied ("masked-copy-dump",
 * see policy_guard_set_client). Returns 0, or -1 when memory runs out (the decision
 * is then a deny saying so). */
int policy_guard_decide(struct policy_guard *g, enum gateway_statement_kind kind, const char *sql,
                        const char *const *groups);
/* hoopctl mcp's read-only mode (connect_options.read_only), after
 * policy_guard_decide: a decision that is not a deny becomes one (rule
 * "read-only") when a statement of the string is not a plain read
 * (policy_stmt_not_read), nor, when session_control, transaction control or
 * SET/RESET/SHOW (policy_stmt_is_session_control: what hoopctl mcp itself
 * sends around each call, as simple queries). */
void policy_guard_deny_unless_read(struct policy_guard *g, bool session_control);
/* The gateway's check for portals that Bind made (a statement's
 * portal_exists and portal_ctx), for FETCH and MOVE by name, and its count
 * of named portals the client closed by protocol (a Close of a SQL cursor's
 * name closes it: every DECLARE is then forgotten); call before
 * policy_guard_decide. */
void policy_guard_set_portals(struct policy_guard *g, bool (*exists)(void *ctx, const char *name), void *ctx,
                              uint64_t portal_closes);
/* The statement just judged will run (now, or once approved) as id (the
 * statement hook's hold_id, which the gateway names when upstream answers
 * it): its results may come. DDL may change what a name or a view means, and the catalog's
 * connection cannot see it before it commits: after a statement holding DDL
 * or code that may run some (DO, CALL, EXECUTE of a string), or with it in
 * one string, results are masked with no catalog (every
 * table column masked) until the session is idle outside a transaction
 * block; the catalog's cached answers are then dropped. 0, or -1 when
 * memory runs out (refuse it). */
int policy_guard_admit(struct policy_guard *g, const char *const *groups, uint64_t id);
/* Forget the last statement's analysis (the decision stays). */
void policy_guard_forget_statement(struct policy_guard *g);
/* What the statement just judged may define or drop behind the extended
 * protocol's back, for the gateway to forget (names point into g's analysis,
 * valid until the next decide): SQL PREPARE and DEALLOCATE (statements),
 * DECLARE and CLOSE (portals), DISCARD (both), the end of a transaction (all
 * portals), and code the parser cannot see (DO, CALL, a string run as SQL:
 * everything). */
void policy_guard_forget_names(const struct policy_guard *g, struct gateway_forget *f);

/* A result's RowDescription, arriving while upstream answers what si's
 * answer position names (si NULL: unknown, any statement in flight may own
 * it): its mask plan is built. f gets policy_guard_row_filter (user = g)
 * for the columns to mask and the first, or for every column with
 * all_columns; the hook then returns true. With g NULL (a session with no
 * policy state), or when memory runs out, f is left without its mask, which
 * makes the gateway fail the session (fail closed). */
void policy_guard_row_description(struct policy_guard *g, const struct gateway_session_info *si,
                                  const struct pgwire_column *cols, int ncols, bool all_columns,
                                  struct gateway_row_filter *f);
/* The gateway's row filter: the value as the plan says, appended to out (or
 * *is_null). -1 without a plan or when masking fails. */
int policy_guard_row_filter(void *guard, const struct gateway_session_info *si, int column, const uint8_t *value,
                            int32_t length, int16_t format, struct buf *out, bool *is_null);
/* A CopyOutResponse: as policy_guard_row_description, for COPY rows (with g
 * NULL, or without a plan, the filter fails and the session closes). */
void policy_guard_copy_out(struct policy_guard *g, const struct gateway_session_info *si, int ncols,
                           struct gateway_copy_filter *f);

/* The gateway's error_redact, notification_redact and idle hooks; idle
 * takes the session's transaction status (gateway_session_info). */
bool policy_guard_error_redact(struct policy_guard *g, const char *sqlstate);
bool policy_guard_notification_redact(struct policy_guard *g);
void policy_guard_idle(struct policy_guard *g, char txn_status);
/* The gateway's text_mask hook: detectors over an error's or notice's
 * fields, a notification's payload, a ParameterStatus's value
 * (policy_mask_detected_text). */
int policy_guard_text_mask(struct policy_guard *g, const char *text, size_t len, char **out, size_t *outlen);

#endif
