/* shipper.h — delivers spooled audit events to the server: batches in spool
 * order, POSTed with the caller's bearer token, retried with backoff, failing
 * over across server URLs. Event ids make redelivery harmless (the server
 * ignores duplicates), so nothing is lost and nothing is counted twice. An
 * event the server refuses for good (a 4xx other than 401/403/408/429) is
 * found by halving the batch and moved to the spool's quarantine, logged and
 * counted, so that it does not block the events after it. */
#ifndef HOOPCTL_SHIPPER_H
#define HOOPCTL_SHIPPER_H

#include <stddef.h>
#include <stdint.h>

struct shipper_config {
    const char *spool_path;
    const char *const *urls;    /* server base URLs, tried in order */
    int nurls;
    const char *ingest_path;    /* default "/api/v1/events" */
    int batch_max;              /* events per request, default 500 */
    size_t batch_bytes_max;     /* and at most this much JSON, default 4 MiB (the server
                                 * takes 8 MiB by default): result samples can be large */
    int64_t backoff_min_ms;     /* default 100 */
    int64_t backoff_max_ms;     /* default 5000 */
    long timeout_ms;            /* per request, default 10000 */
    const char *ca_file;        /* optional CA bundle for https */
    /* Write the current bearer token into buf (called on the shipper thread).
     * Returns 0, or -1 when no token can be had now (the batch waits). */
    int (*token)(void *arg, char *buf, size_t len);
    void *token_arg;
};

struct shipper_stats {
    int64_t shipped;            /* events the server acknowledged */
    int64_t pending;            /* events still in the spool */
    int64_t failures;           /* failed delivery attempts */
    int64_t quarantined;        /* events the server refused for good, kept aside in the spool */
    char last_quarantined[256]; /* the id of the last one and why the server refused it */
    int current_url;            /* index of the URL in use */
    char last_error[256];       /* empty when the last attempt succeeded */
};

struct shipper;

struct shipper *shipper_start(const struct shipper_config *cfg, char *err, size_t errlen);
/* New events were committed to the spool: ship soon. */
void shipper_kick(struct shipper *s);
/* Wait until the spool is empty; 0 when drained, -1 on timeout. */
int shipper_drain(struct shipper *s, int timeout_ms);
void shipper_get_stats(struct shipper *s, struct shipper_stats *out);
/* Stop the thread; undelivered events stay in the spool for the next start. */
void shipper_stop(struct shipper *s);

#endif
