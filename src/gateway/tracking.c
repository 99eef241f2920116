/* tracking.c — the names a session's extended protocol defines: prepared
 * statements and portals, committed only when upstream confirms them
 * (ParseComplete, BindComplete, CloseComplete), so the statement hook always
 * sees the SQL that upstream will really run behind an Execute. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define GW_TRACKING_MAX_NAMES 100000
#define GW_TRACKING_MAX_PENDING 100000

static unsigned name_hash(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h % GW_NAMED_BUCKETS;
}

/* What an entry holds, for the session's budget. */
static size_t held_bytes(const char *sql, const uint8_t *bind, size_t bind_len, const uint32_t *types,
                         int ntypes)
{
    return (sql ? strlen(sql) : 0) + (bind ? bind_len : 0) + (types ? (size_t)ntypes * sizeof *types : 0);
}

static void named_free(struct gw_tracking *t, struct gw_named *n)
{
    t->held -= held_bytes(n->sql, n->bind, n->bind_len, n->types, n->ntypes);
    free(n->name);
    free(n->sql);
    free(n->bind);
    free(n->types);
    free(n);
}

static struct gw_named **named_find(struct gw_named **table, const char *name)
{
    struct gw_named **p = &table[name_hash(name)];
    while (*p && strcmp((*p)->name, name) != 0)
        p = &(*p)->next;
    return p;
}

static void named_remove(struct gw_tracking *t, struct gw_named **table, size_t *count, const char *name)
{
    struct gw_named **p = named_find(table, name);
    if (*p) {
        struct gw_named *n = *p;
        *p = n->next;
        named_free(t, n);
        (*count)--;
    }
}

static void named_clear(struct gw_tracking *t, struct gw_named **table, size_t *count)
{
    for (int i = 0; i < GW_NAMED_BUCKETS; i++)
        while (table[i]) {
            struct gw_named *n = table[i];
            table[i] = n->next;
            named_free(t, n);
        }
    *count = 0;
}

static void pending_free(struct gw_pending *p)
{
    free(p->name);
    free(p->sql);
    free(p->bind);
    free(p->types);
    free(p);
}

void gw_tracking_free(struct gw_tracking *t)
{
    named_clear(t, t->statements, &t->nstatements);
    named_clear(t, t->portals, &t->nportals);
    while (t->head) {
        struct gw_pending *p = t->head;
        t->head = p->next;
        pending_free(p);
    }
    memset(t, 0, sizeof *t);
}

/* The latest pending entry of kind for name, or NULL. */
static struct gw_pending *pending_latest(struct gw_tracking *t, char kind, const char *name)
{
    struct gw_pending *found = NULL;
    for (struct gw_pending *p = t->head; p; p = p->next)
        if (p->kind == kind && strcmp(p->name, name) == 0)
            found = p;
    return found;
}

static int pending_push(struct gw_tracking *t, struct gw_pending *p)
{
    if (t->npending >= GW_TRACKING_MAX_PENDING) {
        pending_free(p);
        return -1;
    }
    p->segment = t->segment;
    t->held += held_bytes(p->sql, p->bind, p->bind_len, p->types, p->ntypes);
    if (t->tail)
        t->tail->next = p;
    else
        t->head = p;
    t->tail = p;
    t->npending++;
    return 0;
}

/* The latest definition of name: a pending entry of kind (usable only when
 * it belongs to the segment being written, since an earlier segment's may
 * still fail) or else the committed one. A portal bound in an earlier
 * segment is usable once that segment's ReadyForQuery has come (an implicit
 * transaction's end drops it). 1 found, 0 unknown, -1 wait. */
static int lookup(struct gw_tracking *t, char kind, struct gw_named **table, const char *name,
                  struct gw_portal_info *out)
{
    struct gw_pending *p = pending_latest(t, kind, name);
    struct gw_named *n = p ? NULL : *named_find(table, name);
    if (p && p->segment != t->segment)
        return -1;
    if (p && p->forgotten)
        return 0;
    if (n && kind == 'B' && n->segment != t->segment && n->segment >= t->ended)
        return -1;
    if (!p && !n)
        return 0;
    out->sql = p ? p->sql : n->sql;
    out->bind = p ? p->bind : n->bind;
    out->bind_len = p ? p->bind_len : n->bind_len;
    out->types = p ? p->types : n->types;
    out->ntypes = p ? p->ntypes : n->ntypes;
    return 1;
}

int gw_tracking_portal(struct gw_tracking *t, const char *portal, struct gw_portal_info *out)
{
    memset(out, 0, sizeof *out);
    return lookup(t, 'B', t->portals, portal, out);
}

static int copy_types(uint32_t **dst, int *ndst, const uint32_t *src, int n)
{
    *ndst = 0;
    *dst = NULL;
    if (n <= 0)
        return 0;
    if (!(*dst = malloc((size_t)n * sizeof **dst)))
        return -1;
    memcpy(*dst, src, (size_t)n * sizeof **dst);
    *ndst = n;
    return 0;
}

bool gw_tracking_room(const struct gw_tracking *t, size_t need, size_t max_held)
{
    return t->held <= max_held && need <= max_held - t->held;
}

int gw_tracking_client(struct gw_tracking *t, char type, const uint8_t *body, size_t len)
{
    struct gw_pending *p;
    switch (type) {
    case 'P': {
        if (t->max_held && !gw_tracking_room(t, len, t->max_held))
            return GW_TRACKING_FULL;
        struct pgwire_parse_msg m;
        if (pgwire_parse_parse(body, len, &m) < 0)
            return -1;
        if (!(p = calloc(1, sizeof *p)))
            return -1;
        p->kind = 'P';
        p->name = strdup(m.statement);
        p->sql = strdup(m.query);
        if (m.ntypes > 0 && (p->types = malloc((size_t)m.ntypes * sizeof *p->types))) {
            p->ntypes = m.ntypes;
            for (int i = 0; i < m.ntypes; i++)
                p->types[i] = pgwire_get_u32(m.types + 4 * i);
        }
        if (!p->name || !p->sql || (m.ntypes > 0 && !p->types)) {
            pending_free(p);
            return -1;
        }
        return pending_push(t, p);
    }
    case 'B': {
        struct pgwire_bind b;
        if (pgwire_parse_bind(body, len, &b) < 0)
            return -1;
        struct gw_portal_info st = {0};
        int found = lookup(t, 'P', t->statements, b.statement, &st);
        const char *sql = st.sql;
        if (found < 0) {
            pgwire_bind_free(&b);
            return 1;
        }
        /* A portal also keeps its statement's SQL and types. */
        if (t->max_held && !gw_tracking_room(t, len + held_bytes(sql, NULL, 0, st.types, st.ntypes), t->max_held)) {
            pgwire_bind_free(&b);
            return GW_TRACKING_FULL;
        }
        if (!(p = calloc(1, sizeof *p))) {
            pgwire_bind_free(&b);
            return -1;
        }
        p->kind = 'B';
        p->name = strdup(b.portal);
        p->sql = sql ? strdup(sql) : NULL;
        p->bind = malloc(len ? len : 1);
        p->bind_len = len;
        pgwire_bind_free(&b);
        if (!p->name || (sql && !p->sql) || !p->bind || copy_types(&p->types, &p->ntypes, st.types, st.ntypes) < 0) {
            pending_free(p);
            return -1;
        }
        memcpy(p->bind, body, len);
        return pending_push(t, p);
    }
    case 'C':   /* Close and Describe: a kind byte and a name */
    case 'D': {
        char kind;
        const char *name;
        if (pgwire_parse_named(body, len, true, &kind, &name) < 0)
            return -1;
        t->portal_closes += type == 'C' && kind == 'P' && name[0];
        if (!(p = calloc(1, sizeof *p)))
            return -1;
        p->kind = type;
        p->sub = kind;
        if (!(p->name = strdup(name))) {
            pending_free(p);
            return -1;
        }
        return pending_push(t, p);
    }
    case 'S':
    case 'Q':
    case 'F':
        if (!(p = calloc(1, sizeof *p)))
            return -1;
        p->kind = type == 'S' ? 'S' : 'Q';
        if (!(p->name = strdup(""))) {
            pending_free(p);
            return -1;
        }
        if (pending_push(t, p) < 0)
            return -1;
        t->segment++;
        return 0;
    default:
        return 0;
    }
}

static void pending_unlink(struct gw_tracking *t, struct gw_pending *prev, struct gw_pending *p)
{
    if (prev)
        prev->next = p->next;
    else
        t->head = p->next;
    if (t->tail == p)
        t->tail = prev;
    t->npending--;
    t->held -= held_bytes(p->sql, p->bind, p->bind_len, p->types, p->ntypes); /* what commit did not take */
    pending_free(p);
}

static void commit(struct gw_tracking *t, struct gw_pending *p)
{
    struct gw_named **table = p->kind == 'P' ? t->statements : t->portals;
    size_t *count = p->kind == 'P' ? &t->nstatements : &t->nportals;
    named_remove(t, table, count, p->name);
    if (p->forgotten || *count >= GW_TRACKING_MAX_NAMES)
        return; /* unknown to us: a later Bind or Execute of it is refused */
    struct gw_named *n = calloc(1, sizeof *n);
    if (!n)
        return;
    n->segment = p->segment;
    n->name = p->name;
    n->sql = p->sql;
    n->bind = p->bind;
    n->bind_len = p->bind_len;
    n->types = p->types;
    n->ntypes = p->ntypes;
    p->name = NULL;
    p->sql = NULL;
    p->bind = NULL;
    p->types = NULL;
    struct gw_named **slot = &table[name_hash(n->name)];
    n->next = *slot;
    *slot = n;
    (*count)++;
}

int gw_tracking_injected_describe(struct gw_tracking *t)
{
    struct gw_pending *p = calloc(1, sizeof *p);
    if (!p)
        return -1;
    p->kind = 'd';
    p->sub = 'P';
    if (!(p->name = strdup(""))) {
        pending_free(p);
        return -1;
    }
    return pending_push(t, p);
}

int gw_tracking_upstream(struct gw_tracking *t, char type)
{
    if (type == 'T' || type == 'n') {
        /* the first Describe of the head segment is the one answered */
        struct gw_pending *prev = NULL, *p;
        for (p = t->head; p && p->kind != 'S' && p->kind != 'Q'; prev = p, p = p->next)
            if (p->kind == 'D' || p->kind == 'd')
                break;
        if (!p || (p->kind != 'D' && p->kind != 'd'))
            return 0;
        int injected = p->kind == 'd';
        pending_unlink(t, prev, p);
        return injected;
    }
    char want = type == '1' ? 'P' : type == '2' ? 'B' : type == '3' ? 'C' : 0;
    struct gw_pending *prev = NULL, *p;
    if (want) {
        for (p = t->head; p; prev = p, p = p->next)
            if (p->kind == want)
                break;
        if (!p)
            return 0;
        if (want == 'C') {
            if (p->sub == 'S')
                named_remove(t, t->statements, &t->nstatements, p->name);
            else
                named_remove(t, t->portals, &t->nportals, p->name);
        } else {
            commit(t, p);
        }
        pending_unlink(t, prev, p);
        return 0;
    }
    if (type == 'E' || type == 'Z') {
        /* An error fails what is left of the head segment; ReadyForQuery ends it. */
        p = t->head;
        while (p && p->kind != 'S' && p->kind != 'Q') {
            pending_unlink(t, NULL, p);
            p = t->head;
        }
        if (type == 'Z' && p) {
            if (p->kind == 'Q') { /* a simple query drops the unnamed statement and portal */
                named_remove(t, t->statements, &t->nstatements, "");
                named_remove(t, t->portals, &t->nportals, "");
            }
            t->ended = p->segment + 1;
            pending_unlink(t, NULL, p);
        }
    }
    return 0;
}

void gw_tracking_param_description(struct gw_tracking *t, const uint8_t *body, size_t len)
{
    /* It answers the head segment's first Describe (its RowDescription or
     * NoData comes next and unlinks it), of a statement that Parse has
     * committed by now. */
    struct gw_pending *p;
    for (p = t->head; p && p->kind != 'S' && p->kind != 'Q'; p = p->next)
        if (p->kind == 'D' || p->kind == 'd')
            break;
    if (!p || p->kind != 'D' || p->sub != 'S' || p->forgotten)
        return;
    struct gw_named *n = *named_find(t->statements, p->name);
    struct pgwire_reader r;
    pgwire_reader_init(&r, body, len);
    int16_t count = pgwire_read_i16(&r);
    const uint8_t *oids = count > 0 ? pgwire_read_bytes(&r, (size_t)count * 4) : NULL;
    if (!n || count <= 0 || !oids || !pgwire_reader_done(&r))
        return;
    uint32_t *types = malloc((size_t)count * sizeof *types);
    if (!types)
        return; /* the types stay as the Parse gave them */
    for (int i = 0; i < count; i++)
        types[i] = pgwire_get_u32(oids + 4 * i);
    t->held -= held_bytes(NULL, NULL, 0, n->types, n->ntypes);
    free(n->types);
    n->types = types;
    n->ntypes = count;
    t->held += held_bytes(NULL, NULL, 0, n->types, n->ntypes);
}

void gw_tracking_idle(struct gw_tracking *t)
{
    if (t->nportals) /* every idle ReadyForQuery: most have none to drop */
        named_clear(t, t->portals, &t->nportals);
}

/* Forget one kind of name: one of them (name) or every one (name NULL). */
static void forget_kind(struct gw_tracking *t, char kind, const char *name)
{
    struct gw_named **table = kind == 'P' ? t->statements : t->portals;
    size_t *count = kind == 'P' ? &t->nstatements : &t->nportals;
    if (name)
        named_remove(t, table, count, name);
    else
        named_clear(t, table, count);
    for (struct gw_pending *p = t->head; p; p = p->next)
        if (p->kind == kind && (!name || strcmp(p->name, name) == 0))
            p->forgotten = true;
}

void gw_tracking_forget(struct gw_tracking *t, const struct gateway_forget *f)
{
    if (f->statements || f->statement)
        forget_kind(t, 'P', f->statements ? NULL : f->statement);
    if (f->portals || f->portal)
        forget_kind(t, 'B', f->portals ? NULL : f->portal);
}
