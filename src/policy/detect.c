/* detect.c — content detectors for result text: email, phone (E.164 and
 * NANP), credit card (Luhn), US SSN, IBAN (mod-97), IPv4/IPv6 and secrets
 * shaped like JWTs or API keys. Each insists on its checksum or shape to keep
 * false positives down. */
#include "hoopctl/policy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

const char *policy_detector_name(enum policy_detector d)
{
    switch (d) {
    case POLICY_DETECT_EMAIL: return "email";
    case POLICY_DETECT_PHONE: return "phone";
    case POLICY_DETECT_CARD: return "credit_card";
    case POLICY_DETECT_SSN: return "ssn";
    case POLICY_DETECT_IBAN: return "iban";
    case POLICY_DETECT_IP: return "ip";
    case POLICY_DETECT_SECRET: return "secret";
    default: return "?";
    }
}

bool policy_luhn_ok(const char *digits, size_t n)
{
    int sum = 0;
    bool dbl = false;
    size_t count = 0;
    for (size_t i = n; i-- > 0;) {
        if (!isdigit((unsigned char)digits[i]))
            continue;
        int d = digits[i] - '0';
        if (dbl && (d *= 2) > 9)
            d -= 9;
        sum += d;
        dbl = !dbl;
        count++;
    }
    return count > 0 && sum % 10 == 0;
}

bool policy_iban_ok(const char *s, size_t n)
{
    char c[40];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ')
            continue;
        if (k >= sizeof(c) || !isalnum((unsigned char)s[i]))
            return false;
        c[k++] = (char)toupper((unsigned char)s[i]);
    }
    if (k < 15 || k > 34 || !isalpha((unsigned char)c[0]) || !isalpha((unsigned char)c[1]) ||
        !isdigit((unsigned char)c[2]) || !isdigit((unsigned char)c[3]))
        return false;
    /* Move the first four characters to the end, letters to 10..35, mod 97. */
    unsigned rem = 0;
    for (size_t i = 0; i < k; i++) {
        char ch = c[(i + 4) % k];
        if (isdigit((unsigned char)ch))
            rem = (rem * 10 + (unsigned)(ch - '0')) % 97;
        else
            rem = (rem * 100 + (unsigned)(ch - 'A' + 10)) % 97;
    }
    return rem == 1;
}

/* ---- scanners: each appends matches to the list ---- */

struct found {
    struct policy_detection *v;
    size_t n, cap;
};

static void add(struct found *f, enum policy_detector d, size_t start, size_t end)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        struct policy_detection *nv = realloc(f->v, cap * sizeof(*nv));
        if (!nv)
            return;
        f->v = nv;
        f->cap = cap;
    }
    f->v[f->n++] = (struct policy_detection){d, start, end};
}

static bool is_word(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

static bool email_local(char c)
{
    return isalnum((unsigned char)c) || strchr("._%+-", c);
}

static void scan_email(const char *t, size_t len, struct found *f)
{
    for (size_t at = 1; at + 1 < len; at++) {
        if (t[at] != '@')
            continue;
        size_t s = at;
        while (s > 0 && email_local(t[s - 1]))
            s--;
        while (s < at && t[s] == '.')
            s++;
        size_t e = at + 1, last_dot = 0;
        while (e < len && (isalnum((unsigned char)t[e]) || t[e] == '-' || t[e] == '.')) {
            if (t[e] == '.')
                last_dot = e;
            e++;
        }
        while (e > at + 1 && (t[e - 1] == '.' || t[e - 1] == '-')) {
            e--;
            if (last_dot >= e)
                last_dot = 0;
            for (size_t k = e; k-- > at + 1;)
                if (t[k] == '.') {
                    last_dot = k;
                    break;
                }
        }
        if (s == at || !last_dot || last_dot <= at + 1 || e - last_dot - 1 < 2)
            continue;
        bool tld_alpha = true;
        for (size_t k = last_dot + 1; k < e; k++)
            tld_alpha = tld_alpha && isalpha((unsigned char)t[k]);
        if (tld_alpha)
            add(f, POLICY_DETECT_EMAIL, s, e);
        at = e;
    }
}

/* A run of digits with single separators from `seps` between them; returns
 * the end, fills the digit count. */
static size_t digit_run(const char *t, size_t len, size_t i, const char *seps, size_t *ndigits)
{
    size_t e = i, nd = 0;
    while (e < len) {
        if (isdigit((unsigned char)t[e])) {
            nd++;
            e++;
        } else if (strchr(seps, t[e]) && t[e] && e + 1 < len && isdigit((unsigned char)t[e + 1]) && nd) {
            e++;
        } else {
            break;
        }
    }
    *ndigits = nd;
    return e;
}

/* Card numbers: 13-19 digits, single spaces or dashes between groups, a
 * card-network first digit and a valid Luhn sum. A run of digit groups may
 * hold more than the card ("4111 1111 1111 1111 2024"): every group end is
 * tried, longest first. */
static void scan_card(const char *t, size_t len, struct found *f)
{
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)t[i]) || (i && (is_word(t[i - 1]) || t[i - 1] == '.')))
            continue;
        size_t nd, e = digit_run(t, len, i, " -", &nd);
        /* The run's own end must not continue a word or a decimal number. */
        bool end_ok = !(e < len && (is_word(t[e]) || (t[e] == '.' && e + 1 < len && isdigit((unsigned char)t[e + 1]))));
        size_t found_end = 0;
        for (size_t cand = e; cand > i && !found_end; cand--) {
            bool group_end = cand == e || (t[cand] == ' ' || t[cand] == '-');
            if (!group_end || !isdigit((unsigned char)t[cand - 1]) || (cand == e && !end_ok))
                continue;
            size_t digits = 0;
            for (size_t k = i; k < cand; k++)
                digits += isdigit((unsigned char)t[k]) != 0;
            if (digits >= 13 && digits <= 19 && strchr("23456", t[i]) && policy_luhn_ok(t + i, cand - i))
                found_end = cand;
        }
        (void)nd;
        if (found_end) {
            add(f, POLICY_DETECT_CARD, i, found_end);
            i = found_end;
        } else {
            /* A card may start at a later group of this run. */
            while (i + 1 < e && isdigit((unsigned char)t[i + 1]))
                i++;
        }
    }
}

static bool digits_at(const char *t, size_t len, size_t i, size_t n)
{
    if (i + n > len)
        return false;
    for (size_t k = 0; k < n; k++)
        if (!isdigit((unsigned char)t[i + k]))
            return false;
    return true;
}

static void scan_ssn(const char *t, size_t len, struct found *f)
{
    for (size_t i = 0; i + 11 <= len; i++) {
        if (i && (isdigit((unsigned char)t[i - 1]) || t[i - 1] == '-'))
            continue;
        if (!digits_at(t, len, i, 3) || t[i + 3] != '-' || !digits_at(t, len, i + 4, 2) || t[i + 6] != '-' ||
            !digits_at(t, len, i + 7, 4))
            continue;
        if (i + 11 < len && (isdigit((unsigned char)t[i + 11]) || t[i + 11] == '-'))
            continue;
        int area = atoi((char[]){t[i], t[i + 1], t[i + 2], 0});
        int group = atoi((char[]){t[i + 4], t[i + 5], 0});
        int serial = atoi((char[]){t[i + 7], t[i + 8], t[i + 9], t[i + 10], 0});
        if (area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0)
            continue;
        add(f, POLICY_DETECT_SSN, i, i + 11);
    }
}

static void scan_phone(const char *t, size_t len, struct found *f)
{
    for (size_t i = 0; i < len; i++) {
        if (i && (is_word(t[i - 1]) || t[i - 1] == '+' || t[i - 1] == '.' || t[i - 1] == '-'))
            continue;
        if (t[i] == '+' && i + 1 < len && t[i + 1] >= '1' && t[i + 1] <= '9') {
            /* E.164: + and 8..15 digits, groups separated by one space, dash or dot. */
            size_t e = i + 1, nd = 0;
            while (e < len) {
                if (isdigit((unsigned char)t[e])) {
                    nd++;
                    e++;
                } else if ((t[e] == ' ' || t[e] == '-' || t[e] == '.') && e + 1 < len &&
                           isdigit((unsigned char)t[e + 1])) {
                    e++;
                } else if (t[e] == '(' && e + 1 < len && isdigit((unsigned char)t[e + 1])) {
                    e++;
                } else if (t[e] == ')' && e + 1 < len && (t[e + 1] == ' ' || isdigit((unsigned char)t[e + 1]))) {
                    e++;
                } else {
                    break;
                }
            }
            if (nd >= 8 && nd <= 15 && !(e < len && is_word(t[e])))
                add(f, POLICY_DETECT_PHONE, i, e);
            i = e;
            continue;
        }
        /* NANP: (ddd) ddd-dddd, ddd-ddd-dddd, ddd.ddd.dddd, ddd ddd dddd. */
        size_t p = i;
        bool paren = t[p] == '(';
        if (paren)
            p++;
        if (!digits_at(t, len, p, 3) || t[p] < '2')
            continue;
        p += 3;
        if (paren) {
            if (p >= len || t[p] != ')')
                continue;
            p++;
            if (p < len && t[p] == ' ')
                p++;
        } else {
            if (p >= len || !strchr("-. ", t[p]))
                continue;
            p++;
        }
        char sep = paren ? '-' : t[p - 1];
        if (!digits_at(t, len, p, 3) || t[p] < '2' || p + 3 >= len || (t[p + 3] != sep && !(paren && t[p + 3] == ' ')))
            continue;
        p += 4;
        if (!digits_at(t, len, p, 4))
            continue;
        p += 4;
        if (p < len && (is_word(t[p]) || ((t[p] == '-' || t[p] == '.') && p + 1 < len && isdigit((unsigned char)t[p + 1]))))
            continue;
        add(f, POLICY_DETECT_PHONE, i, p);
        i = p;
    }
}

static void scan_iban(const char *t, size_t len, struct found *f)
{
    for (size_t i = 0; i + 15 <= len; i++) {
        if ((i && is_word(t[i - 1])) || !isupper((unsigned char)t[i]) || !isupper((unsigned char)t[i + 1]) ||
            !isdigit((unsigned char)t[i + 2]) || !isdigit((unsigned char)t[i + 3]))
            continue;
        /* Compact, or grouped by four with single spaces. */
        size_t e = i + 4;
        while (e < len && (isalnum((unsigned char)t[e]) ||
                           (t[e] == ' ' && e + 1 < len && isalnum((unsigned char)t[e + 1]) && (e - i) % 5 == 4)))
            e++;
        if (e - i > 42)
            continue;
        if (policy_iban_ok(t + i, e - i)) {
            add(f, POLICY_DETECT_IBAN, i, e);
            i = e;
        }
    }
}

static void scan_ip(const char *t, size_t len, struct found *f)
{
    for (size_t i = 0; i < len; i++) {
        bool hexish = isxdigit((unsigned char)t[i]) || t[i] == ':';
        if (!hexish || (i && (isalnum((unsigned char)t[i - 1]) || t[i - 1] == '.' || t[i - 1] == ':' ||
                              t[i - 1] == '_')))
            continue;
        size_t e = i;
        int colons = 0, dots = 0;
        while (e < len && (isxdigit((unsigned char)t[e]) || t[e] == ':' || t[e] == '.')) {
            colons += t[e] == ':';
            dots += t[e] == '.';
            e++;
        }
        while (e > i && t[e - 1] == '.') {
            e--;
            dots--;
        }
        if ((e < len && (isalnum((unsigned char)t[e]) || t[e] == '_')) || e - i > 45 || e - i < 7) {
            i = e;
            continue;
        }
        char buf[46];
        memcpy(buf, t + i, e - i);
        buf[e - i] = '\0';
        unsigned char addr[16];
        if (colons == 0 && dots == 3) {
            /* No leading zeros: "01.2.3.4" is no address we recognise. */
            bool lead0 = false;
            for (size_t k = 0; k + 1 < e - i; k++)
                if (buf[k] == '0' && isdigit((unsigned char)buf[k + 1]) && (k == 0 || buf[k - 1] == '.'))
                    lead0 = true;
            if (!lead0 && inet_pton(AF_INET, buf, addr) == 1)
                add(f, POLICY_DETECT_IP, i, e);
        } else if (colons >= 2 && inet_pton(AF_INET6, buf, addr) == 1) {
            add(f, POLICY_DETECT_IP, i, e);
        }
        i = e;
    }
}

static bool b64url(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '_';
}

static void scan_secret(const char *t, size_t len, struct found *f)
{
    static const struct { const char *prefix; size_t min_tail; } keys[] = {
        {"sk_live_", 16}, {"sk_test_", 16}, {"rk_live_", 16}, {"pk_live_", 16}, {"ghp_", 30},
        {"gho_", 30}, {"ghs_", 30}, {"ghu_", 30}, {"github_pat_", 40}, {"glpat-", 20}, {"xoxb-", 20},
        {"xoxp-", 20}, {"AKIA", 16}, {"ASIA", 16}, {"AIza", 35}, {"sk-", 32},
    };
    for (size_t i = 0; i < len; i++) {
        if (i && b64url(t[i - 1]))
            continue;
        /* JWT: eyJ... . ... . ... */
        if (i + 3 < len && strncmp(t + i, "eyJ", 3) == 0) {
            size_t e = i, seg = 0, seglen[3] = {0};
            while (e < len && seg < 3) {
                if (b64url(t[e]))
                    seglen[seg]++;
                else if (t[e] == '.' && seg < 2)
                    seg++;
                else
                    break;
                e++;
            }
            if (seg == 2 && seglen[0] >= 10 && seglen[1] >= 10 && seglen[2] >= 16 && !(e < len && t[e] == '.')) {
                add(f, POLICY_DETECT_SECRET, i, e);
                i = e;
                continue;
            }
        }
        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
            size_t pl = strlen(keys[k].prefix);
            if (i + pl > len || strncmp(t + i, keys[k].prefix, pl) != 0)
                continue;
            size_t e = i + pl;
            bool upper_only = strcmp(keys[k].prefix, "AKIA") == 0 || strcmp(keys[k].prefix, "ASIA") == 0;
            while (e < len && (upper_only ? (isupper((unsigned char)t[e]) || isdigit((unsigned char)t[e])) : b64url(t[e])))
                e++;
            size_t tail = e - i - pl;
            if (tail >= keys[k].min_tail && !(upper_only && tail != 16) && !(e < len && b64url(t[e]))) {
                /* A key has letters and digits mixed, not a word. */
                bool digit = false, alpha = false;
                for (size_t q = i + pl; q < e; q++) {
                    digit = digit || isdigit((unsigned char)t[q]);
                    alpha = alpha || isalpha((unsigned char)t[q]);
                }
                if (digit && alpha) {
                    add(f, POLICY_DETECT_SECRET, i, e);
                    i = e;
                    break;
                }
            }
        }
    }
}

static int by_start(const void *a, const void *b)
{
    const struct policy_detection *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->end > y->end ? -1 : x->end < y->end;
}

size_t policy_detect(const char *text, size_t len, unsigned mask, struct policy_detection *out, size_t max)
{
    struct found f = {0};
    /* Order matters only for ties: the more specific detectors first. */
    if (mask & POLICY_DETECT_SECRET)
        scan_secret(text, len, &f);
    if (mask & POLICY_DETECT_EMAIL)
        scan_email(text, len, &f);
    if (mask & POLICY_DETECT_IBAN)
        scan_iban(text, len, &f);
    if (mask & POLICY_DETECT_CARD)
        scan_card(text, len, &f);
    if (mask & POLICY_DETECT_SSN)
        scan_ssn(text, len, &f);
    if (mask & POLICY_DETECT_PHONE)
        scan_phone(text, len, &f);
    if (mask & POLICY_DETECT_IP)
        scan_ip(text, len, &f);
    if (f.n > 1)
        qsort(f.v, f.n, sizeof(*f.v), by_start);
    size_t n = 0, end = 0;
    for (size_t i = 0; i < f.n; i++) {
        if (n && f.v[i].start < end)
            continue; /* overlaps an earlier, longer match */
        if (n < max)
            out[n] = f.v[i];
        n++;
        end = f.v[i].end;
    }
    free(f.v);
    return n;
}
