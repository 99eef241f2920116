/* tracking.c — the names a session's extended protocol defines: prepared
 * statements and portals, committed only when upstream confirms them
 * (ParseComplete, BindComplete, CloseComplete), so the statement hook always
 * sees the SQL that upstream will really run behind an Execute. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define GW_TRACKING_MAX_NAMES 100000
/* Pending entries are bounded by count (each is small: names are cut to
 * GW_NAME_MAX bytes, SQL and Bind bodies count in max_held); a deep
 * pipeline has about one Bind per Execute, and the Executes in flight are
 * bounded by GW_INFLIGHT_MAX (65536) in session.c. */
#define GW_TRACKING_MAX_PENDING 100000

/* ---- names: cut as upstream cuts them, hashed with the session's key ---- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                             \
    do {                                                                                                     \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);                                          \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                                                             \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                                                             \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);                                          \
    } while (0)

/* SipHash-1-3 (keyed: names chosen by the client cannot make chains long). */
static uint64_t siphash(const uint64_t key[2], const void *data, size_t len)
{
    const uint8_t *in = data;
    uint64_t v0 = 0x736f6d6570736575ULL ^ key[0], v1 = 0x646f72616e646f6dULL ^ key[1];
    uint64_t v2 = 0x6c7967656e657261ULL ^ key[0], v3 = 0x7465646279746573ULL ^ key[1];
    uint64_t b = (uint64_t)len << 56;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t m;
        memcpy(&m, in + i, 8);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    for (size_t j = 0; i + j < len; j++)
        b |= (uint64_t)in[i + j] << (8 * j);
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* The name as upstream keeps it (its first GW_NAME_MAX bytes) into key;
 * returns a keyed hash of the whole name when it was longer (else 0), so
 * that a lookup by another long name with the same first bytes is told
 * apart: on a server built with a larger NAMEDATALEN they are two
 * statements, and tracking, which keeps one, must not take one for the other. */
static uint64_t name_key(const struct gw_tracking *t, const char *name, char key[GW_NAME_MAX + 1])
{
    size_t n = strnlen(name, GW_NAME_MAX + 1);
    if (n <= GW_NAME_MAX) {
        memcpy(key, name, n + 1);
        return 0;
    }
    memcpy(key, name, GW_NAME_MAX);
    key[GW_NAME_MAX] = '\0';
    const uint64_t k2[2] = {t->key[0] ^ 0x9e3779b97f4a7c15ULL, t->key[1]};
    return siphash(k2, name, strlen(name)) | 1;
}

static uint64_t key_hash(const struct gw_tracking *t, const char *key)
{
    return siphash(t->key, key, strlen(key));
}

static struct gw_hnode *htab_get(const struct gw_htab *h, uint64_t hash, const char *name)
{
    struct gw_hnode *e = h->nb ? h->b[hash & (h->nb - 1)] : NULL;
    while (e && (e->hash != hash || strcmp(e->name, name) != 0))
        e = e->next;
    return e;
}

/* Take the node out of the table (it stays allocated). */
static void htab_unlink(struct gw_htab *h, struct gw_hnode *n)
{
    struct gw_hnode **p = h->nb ? &h->b[n->hash & (h->nb - 1)] : NULL;
    while (p && *p && *p != n)
        p = &(*p)->next;
    if (p && *p) {
        *p = n->next;
        h->count--;
    }
}

/* Add a node (its hash and name set; not in the table). -1 out of memory. */
static int htab_add(struct gw_htab *h, struct gw_hnode *n)
{
    if (h->count >= h->nb) {
        size_t nb = h->nb ? h->nb * 2 : 16;
        struct gw_hnode **b = calloc(nb, sizeof *b);
        if (!b) {
            if (!h->nb)
                return -1;
        } else {
            for (size_t i = 0; i < h->nb; i++)
                for (struct gw_hnode *e = h->b[i], *next; e; e = next) {
                    next = e->next;
                    e->next = b[e->hash & (nb - 1)];
                    b[e->hash & (nb - 1)] = e;
                }
            free(h->b);
            h->b = b;
            h->nb = nb;
        }
    }
    struct gw_hnode **slot = &h->b[n->hash & (h->nb - 1)];
    n->next = *slot;
    *slot = n;
    h->count++;
    return 0;
}

/* Every node goes to drop (which frees it). */
static void htab_clear(struct gw_htab *h, void (*drop)(void *ctx, struct gw_hnode *n), void *ctx)
{
    if (h->count)
        for (size_t i = 0; i < h->nb; i++)
            while (h->b[i]) {
                struct gw_hnode *n = h->b[i];
                h->b[i] = n->next;
                drop(ctx, n);
            }
    h->count = 0;
    if (h->nb > 64) { /* a table that grew big goes back to small */
        free(h->b);
        h->b = NULL;
        h->nb = 0;
    }
}

static void htab_free(struct gw_htab *h, void (*drop)(void *ctx, struct gw_hnode *n), void *ctx)
{
    htab_clear(h, drop, ctx);
    free(h->b);
    memset(h, 0, sizeof *h);
}

/* ---- committed names ----------------------------------------------------- */

/* What an entry holds, for the session's budget. */
static size_t held_bytes(const char *name, const char *sql, const uint8_t *bind, size_t bind_len,
                         const uint32_t *types, int ntypes)
{
    return (name ? strlen(name) : 0) + (sql ? strlen(sql) : 0) + (bind ? bind_len : 0) +
           (types ? (size_t)ntypes * sizeof *types : 0);
}

static void named_drop(void *ctx, struct gw_hnode *h)
{
    struct gw_tracking *t = ctx;
    struct gw_named *n = (struct gw_named *)h;
    t->held -= held_bytes(n->h.name, n->sql, n->bind, n->bind_len, n->types, n->ntypes);
    free(n->h.name);
    free(n->sql);
    free(n->bind);
    free(n->types);
    free(n);
}

/* key: a name as name_key cut it. */
static struct gw_named *named_find(const struct gw_tracking *t, const struct gw_htab *table, const char *key)
{
    return (struct gw_named *)htab_get(table, key_hash(t, key), key);
}

static void named_remove(struct gw_tracking *t, struct gw_htab *table, const char *key)
{
    struct gw_hnode *n = htab_get(table, key_hash(t, key), key);
    if (n) {
        htab_unlink(table, n);
        named_drop(t, n);
    }
}

static void named_clear(struct gw_tracking *t, struct gw_htab *table)
{
    htab_clear(table, named_drop, t);
}

/* ---- pending entries ----------------------------------------------------- */

static void pending_free(struct gw_pending *p)
{
    free(p->name);
    free(p->sql);
    free(p->bind);
    free(p->types);
    free(p);
}

static void pkey_drop(void *ctx, struct gw_hnode *h)
{
    (void)ctx;
    free(h); /* the name is part of it */
}

static struct gw_htab *pending_index(struct gw_tracking *t, char kind)
{
    return kind == 'P' ? &t->pending_p : kind == 'B' ? &t->pending_b : NULL;
}

void gw_tracking_free(struct gw_tracking *t)
{
    named_clear(t, &t->statements);
    named_clear(t, &t->portals);
    htab_free(&t->statements, named_drop, t);
    htab_free(&t->portals, named_drop, t);
    htab_free(&t->pending_p, pkey_drop, NULL);
    htab_free(&t->pending_b, pkey_drop, NULL);
    while (t->head) {
        struct gw_pending *p = t->head;
        t->head = p->next;
        pending_free(p);
    }
    memset(t, 0, sizeof *t);
}

static struct gw_pkey *pkey_find(struct gw_tracking *t, char kind, const char *key)
{
    struct gw_htab *idx = pending_index(t, kind);
    return idx ? (struct gw_pkey *)htab_get(idx, key_hash(t, key), key) : NULL;
}

static bool pending_forgotten(const struct gw_tracking *t, const struct gw_pending *p)
{
    uint64_t all = p->kind == 'P' ? t->forgot_p : p->kind == 'B' ? t->forgot_b : 0;
    return p->seq <= all || (p->key && p->seq <= p->key->forgot_upto);
}

/* Append p (name cut and full set); -1 when there are too many or out of
 * memory (p is freed). */
static int pending_push(struct gw_tracking *t, struct gw_pending *p)
{
    if (t->npending >= GW_TRACKING_MAX_PENDING) {
        pending_free(p);
        return -1;
    }
    struct gw_htab *idx = pending_index(t, p->kind);
    if (idx) {
        uint64_t hash = key_hash(t, p->name);
        struct gw_pkey *k = (struct gw_pkey *)htab_get(idx, hash, p->name);
        if (!k) {
            size_t n = strlen(p->name) + 1;
            if (!(k = calloc(1, sizeof *k + n))) {
                pending_free(p);
                return -1;
            }
            memcpy(k->name, p->name, n);
            k->h.name = k->name;
            k->h.hash = hash;
            if (htab_add(idx, &k->h) < 0) {
                pkey_drop(NULL, &k->h);
                pending_free(p);
                return -1;
            }
        }
        k->latest = p;
        k->refs++;
        p->key = k;
    }
    p->seq = ++t->seq;
    p->segment = t->segment;
    t->held += held_bytes(p->name, p->sql, p->bind, p->bind_len, p->types, p->ntypes);
    if (t->tail)
        t->tail->next = p;
    else
        t->head = p;
    t->tail = p;
    t->npending++;
    return 0;
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
    struct gw_pkey *k = p->key;
    if (k && --k->refs == 0) {
        htab_unlink(pending_index(t, p->kind), &k->h);
        pkey_drop(NULL, &k->h);
    } else if (k && k->latest == p) {
        /* not the oldest of its name after all: find the latest the slow way */
        k->latest = NULL;
        for (struct gw_pending *q = t->head; q; q = q->next)
            if (q->key == k)
                k->latest = q;
    }
    /* what commit did not take */
    t->held -= held_bytes(p->name, p->sql, p->bind, p->bind_len, p->types, p->ntypes);
    pending_free(p);
}

/* A new pending entry of this kind and name (cut); NULL out of memory. */
static struct gw_pending *pending_new(struct gw_tracking *t, char kind, const char *name)
{
    struct gw_pending *p = calloc(1, sizeof *p);
    char key[GW_NAME_MAX + 1];
    if (!p)
        return NULL;
    p->kind = kind;
    p->full = name_key(t, name, key);
    if (!(p->name = strdup(key))) {
        free(p);
        return NULL;
    }
    return p;
}

/* The latest definition of name: a pending entry of kind (usable only when
 * it belongs to the segment being written, since an earlier segment's may
 * still fail) or else the committed one. A portal bound in an earlier
 * segment is usable once that segment's ReadyForQuery has come (an implicit
 * transaction's end drops it). 1 found, 0 unknown, -1 wait. */
static int lookup(struct gw_tracking *t, char kind, struct gw_htab *table, const char *name,
                  struct gw_portal_info *out)
{
    char key[GW_NAME_MAX + 1];
    uint64_t full = name_key(t, name, key);
    struct gw_pkey *k = pkey_find(t, kind, key);
    struct gw_pending *p = k ? k->latest : NULL;
    struct gw_named *n = p ? NULL : named_find(t, table, key);
    if (p && p->segment != t->segment)
        return -1;
    if (p && (pending_forgotten(t, p) || p->full != full))
        return 0;
    if (n && kind == 'B' && n->segment != t->segment && n->segment >= t->ended)
        return -1;
    if (n && n->full != full)
        return 0;
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
    return lookup(t, 'B', &t->portals, portal, out);
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
        if (!(p = pending_new(t, 'P', m.statement)))
            return -1;
        p->sql = strdup(m.query);
        if (m.ntypes > 0 && (p->types = malloc((size_t)m.ntypes * sizeof *p->types))) {
            p->ntypes = m.ntypes;
            for (int i = 0; i < m.ntypes; i++)
                p->types[i] = pgwire_get_u32(m.types + 4 * i);
        }
        if (!p->sql || (m.ntypes > 0 && !p->types)) {
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
        int found = lookup(t, 'P', &t->statements, b.statement, &st);
        const char *sql = st.sql;
        if (found < 0) {
            pgwire_bind_free(&b);
            return 1;
        }
        /* A portal also keeps its statement's SQL and types. */
        if (t->max_held &&
            !gw_tracking_room(t, len + held_bytes(NULL, sql, NULL, 0, st.types, st.ntypes), t->max_held)) {
            pgwire_bind_free(&b);
            return GW_TRACKING_FULL;
        }
        p = pending_new(t, 'B', b.portal);
        /* The copy keeps the names as upstream does (cut), not a client's
         * megabyte of name: the portal's, then the statement's. */
        size_t portal_len = strlen(b.portal), stmt_len = strlen(b.statement);
        size_t portal_cut = strnlen(b.portal, GW_NAME_MAX), stmt_cut = strnlen(b.statement, GW_NAME_MAX);
        size_t rest = portal_len + 1 + stmt_len + 1;
        pgwire_bind_free(&b);
        if (!p)
            return -1;
        p->sql = sql ? strdup(sql) : NULL;
        p->bind_len = portal_cut + 1 + stmt_cut + 1 + (len - rest);
        p->bind = malloc(p->bind_len);
        if ((sql && !p->sql) || !p->bind || copy_types(&p->types, &p->ntypes, st.types, st.ntypes) < 0) {
            pending_free(p);
            return -1;
        }
        uint8_t *w = p->bind;
        memcpy(w, body, portal_cut);
        w[portal_cut] = 0;
        w += portal_cut + 1;
        memcpy(w, body + portal_len + 1, stmt_cut);
        w[stmt_cut] = 0;
        w += stmt_cut + 1;
        memcpy(w, body + rest, len - rest);
        return pending_push(t, p);
    }
    case 'C':   /* Close and Describe: a kind byte and a name */
    case 'D': {
        char kind;
        const char *name;
        if (pgwire_parse_named(body, len, true, &kind, &name) < 0)
            return -1;
        t->portal_closes += type == 'C' && kind == 'P' && name[0];
        if (!(p = pending_new(t, type, name)))
            return -1;
        p->sub = kind;
        return pending_push(t, p);
    }
    case 'S':
    case 'Q':
    case 'F':
        if (!(p = pending_new(t, type == 'S' ? 'S' : 'Q', "")))
            return -1;
        if (pending_push(t, p) < 0)
            return -1;
        t->segment++;
        return 0;
    default:
        return 0;
    }
}

static void commit(struct gw_tracking *t, struct gw_pending *p)
{
    struct gw_htab *table = p->kind == 'P' ? &t->statements : &t->portals;
    named_remove(t, table, p->name);
    if (pending_forgotten(t, p) || table->count >= GW_TRACKING_MAX_NAMES)
        return; /* unknown to us: a later Bind or Execute of it is refused */
    struct gw_named *n = calloc(1, sizeof *n);
    if (!n)
        return;
    n->h.hash = key_hash(t, p->name);
    n->h.name = p->name;
    n->full = p->full;
    n->segment = p->segment;
    n->sql = p->sql;
    n->bind = p->bind;
    n->bind_len = p->bind_len;
    n->types = p->types;
    n->ntypes = p->ntypes;
    if (htab_add(table, &n->h) < 0) {
        free(n);
        return; /* p keeps them: pending_unlink frees them */
    }
    p->name = NULL;
    p->sql = NULL;
    p->bind = NULL;
    p->types = NULL;
}

int gw_tracking_injected_describe(struct gw_tracking *t)
{
    struct gw_pending *p = pending_new(t, 'd', "");
    if (!p)
        return -1;
    p->sub = 'P';
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
        /* Upstream answers in order: what came before this one was answered,
         * and is gone from the list, so this walk is short. */
        for (p = t->head; p; prev = p, p = p->next)
            if (p->kind == want)
                break;
        if (!p)
            return 0;
        if (want == 'C')
            named_remove(t, p->sub == 'S' ? &t->statements : &t->portals, p->name);
        else
            commit(t, p);
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
                named_remove(t, &t->statements, "");
                named_remove(t, &t->portals, "");
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
    if (!p || p->kind != 'D' || p->sub != 'S')
        return;
    struct gw_named *n = named_find(t, &t->statements, p->name);
    struct pgwire_reader r;
    pgwire_reader_init(&r, body, len);
    int16_t count = pgwire_read_i16(&r);
    const uint8_t *oids = count > 0 ? pgwire_read_bytes(&r, (size_t)count * 4) : NULL;
    if (!n || n->full != p->full || count <= 0 || !oids || !pgwire_reader_done(&r))
        return;
    uint32_t *types = malloc((size_t)count * sizeof *types);
    if (!types)
        return; /* the types stay as the Parse gave them */
    for (int i = 0; i < count; i++)
        types[i] = pgwire_get_u32(oids + 4 * i);
    t->held -= held_bytes(NULL, NULL, NULL, 0, n->types, n->ntypes);
    free(n->types);
    n->types = types;
    n->ntypes = count;
    t->held += held_bytes(NULL, NULL, NULL, 0, n->types, n->ntypes);
}

void gw_tracking_idle(struct gw_tracking *t)
{
    if (t->portals.count) /* every idle ReadyForQuery: most have none to drop */
        named_clear(t, &t->portals);
}

/* Forget one kind of name: one of them (name) or every one (name NULL).
 * A name the SQL parser may have cut (at a character boundary, so shorter
 * than the protocol's cut) forgets them all. */
static void forget_kind(struct gw_tracking *t, char kind, const char *name)
{
    struct gw_htab *table = kind == 'P' ? &t->statements : &t->portals;
    if (name && strnlen(name, GW_NAME_MAX) >= GW_NAME_MAX - 4)
        name = NULL;
    if (!name) {
        named_clear(t, table);
        *(kind == 'P' ? &t->forgot_p : &t->forgot_b) = t->seq;
        return;
    }
    named_remove(t, table, name);
    struct gw_pkey *k = pkey_find(t, kind, name);
    if (k)
        k->forgot_upto = t->seq;
}

void gw_tracking_forget(struct gw_tracking *t, const struct gateway_forget *f)
{
    if (f->statements || f->statement)
        forget_kind(t, 'P', f->statements ? NULL : f->statement);
    if (f->portals || f->portal)
        forget_kind(t, 'B', f->portals ? NULL : f->portal);
}
