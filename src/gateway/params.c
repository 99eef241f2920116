/* params.c — the settings a session may start with, and those upstream may
 * report, when a policy reads its statements. The policy parses SQL as
 * UTF-8 with standard_conforming_strings on; a session where the server
 * reads text otherwise (a client encoding whose characters can swallow a
 * quote, backslashes that escape inside plain literals) would run statements
 * that the policy saw as parts of a string. The startup packet is also where
 * a client could pick a role (refused) or a search_path (allowed, and
 * reported, so that the policy stops assuming the default one). */
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool is_true(const char *v)
{
    return strcasecmp(v, "on") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0 ||
           strcmp(v, "1") == 0;
}

/* One setting of the startup packet (or of its options), name as the
 * server reads it (case does not matter). NULL when it may pass; a
 * search_path passes and sets *search_path. */
static const char *setting_refusal(const char *name, const char *value, bool *search_path, char *msg,
                                   size_t msglen)
{
    if (strcasecmp(name, "search_path") == 0)
        *search_path = true;
    if (strcasecmp(name, "role") == 0 || strcasecmp(name, "session_authorization") == 0)
        snprintf(msg, msglen, "the startup parameter %s is refused: the role is the gateway's to choose", name);
    else if (strcasecmp(name, "client_encoding") == 0 && pgwire_encoding_hides_ascii(value))
        snprintf(msg, msglen, "client_encoding %s is not supported through the gateway: its characters can"
                              " hide quotes from the policy; use UTF8", value);
    else if (strcasecmp(name, "standard_conforming_strings") == 0 && !is_true(value))
        snprintf(msg, msglen, "standard_conforming_strings must stay on through the gateway");
    else if (strcasecmp(name, "backslash_quote") == 0 && is_true(value))
        snprintf(msg, msglen, "backslash_quote must stay off through the gateway");
    else
        return NULL;
    return msg;
}

/* The options parameter: command-line switches for the backend, split at
 * unescaped white space (a backslash escapes the next character). Only
 * settings pass: "-c name=value", "-cname=value" or "--name=value". */
static const char *options_refusal(const char *options, bool *search_path, char *msg, size_t msglen)
{
    char word[PGWIRE_STARTUP_MAX];
    bool setting_next = false;
    const char *p = options;
    for (;;) {
        while (*p && isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        size_t n = 0;
        while (*p && !isspace((unsigned char)*p) && n + 1 < sizeof word) {
            if (*p == '\\' && p[1])
                p++;
            word[n++] = *p++;
        }
        word[n] = '\0';
        char *setting = NULL;
        if (setting_next)
            setting = word;
        else if (strcmp(word, "-c") == 0)
            setting_next = true;
        else if (strncmp(word, "-c", 2) == 0)
            setting = word + 2;
        else if (strncmp(word, "--", 2) == 0)
            setting = word + 2;
        else {
            snprintf(msg, msglen, "the startup parameter options may only hold settings (-c name=value),"
                                  " not %.64s", word);
            return msg;
        }
        if (!setting)
            continue;
        setting_next = false;
        char *eq = strchr(setting, '=');
        if (!eq || eq == setting) {
            snprintf(msg, msglen, "the startup parameter options has a setting without a value: %.64s", setting);
            return msg;
        }
        *eq = '\0';
        for (char *c = setting; *c; c++) /* --name-with-dashes is name_with_dashes */
            if (*c == '-')
                *c = '_';
        if (setting_refusal(setting, eq + 1, search_path, msg, msglen))
            return msg;
    }
    if (setting_next) {
        snprintf(msg, msglen, "the startup parameter options ends with -c and no setting");
        return msg;
    }
    return NULL;
}

const char *gw_startup_duplicate(const struct pgwire_startup *st, char *msg, size_t msglen)
{
    for (int i = 0; i < st->nparams; i++)
        for (int j = 0; j < i; j++)
            if (strcasecmp(st->params[j].name, st->params[i].name) == 0) {
                snprintf(msg, msglen, "the startup parameter %.64s is given twice", st->params[i].name);
                return msg;
            }
    return NULL;
}

const char *gw_startup_refusal(const struct pgwire_startup *st, bool *search_path, char *msg, size_t msglen)
{
    *search_path = false;
    for (int i = 0; i < st->nparams; i++) {
        const char *name = st->params[i].name, *value = st->params[i].value;
        if (strcmp(name, "user") == 0 || strcmp(name, "database") == 0 || strncmp(name, "_pq_.", 5) == 0)
            continue;
        if (strcmp(name, "options") == 0 ? options_refusal(value, search_path, msg, msglen) != NULL
                                         : setting_refusal(name, value, search_path, msg, msglen) != NULL)
            return msg;
    }
    return NULL;
}

const char *gw_parameter_status_refusal(const uint8_t *body, size_t len, char *msg, size_t msglen)
{
    struct pgwire_reader r;
    pgwire_reader_init(&r, body, len);
    const char *name = pgwire_read_cstr(&r), *value = pgwire_read_cstr(&r);
    if (!name || !value)
        return NULL; /* relayed as it is; the client judges it */
    if (strcmp(name, "client_encoding") == 0 && pgwire_encoding_hides_ascii(value))
        snprintf(msg, msglen, "the session's client_encoding became %s, whose characters can hide quotes"
                              " from the policy: closing the session (fail closed)", value);
    else if (strcmp(name, "standard_conforming_strings") == 0 && strcmp(value, "on") != 0)
        snprintf(msg, msglen, "the session's standard_conforming_strings became %s: closing the session"
                              " (fail closed)", value);
    else
        return NULL;
    return msg;
}

/* ---- client_encoding: statement texts read as UTF-8 ---------------------- */

/* The single-byte encodings PostgreSQL reports as a client_encoding (its
 * canonical names, as in ParameterStatus) and iconv's names for them. In
 * each, ASCII bytes are ASCII characters and every other byte is one
 * character, which converts to non-ASCII UTF-8: so the converted text splits
 * into the same tokens (quotes, identifiers, comments) as the bytes the
 * server reads, and only names and literals change their spelling, to the
 * one the server's UTF-8 catalog holds. Multi-byte encodings are left out. */
static const char *iconv_name(const char *pg)
{
    static const char *const map[][2] = {
        {"LATIN1", "ISO-8859-1"},   {"LATIN2", "ISO-8859-2"},   {"LATIN3", "ISO-8859-3"},
        {"LATIN4", "ISO-8859-4"},   {"LATIN5", "ISO-8859-9"},   {"LATIN6", "ISO-8859-10"},
        {"LATIN7", "ISO-8859-13"},  {"LATIN8", "ISO-8859-14"},  {"LATIN9", "ISO-8859-15"},
        {"LATIN10", "ISO-8859-16"}, {"ISO_8859_5", "ISO-8859-5"}, {"ISO_8859_6", "ISO-8859-6"},
        {"ISO_8859_7", "ISO-8859-7"}, {"ISO_8859_8", "ISO-8859-8"}, {"WIN1250", "CP1250"},
        {"WIN1251", "CP1251"},      {"WIN1252", "CP1252"},      {"WIN1253", "CP1253"},
        {"WIN1254", "CP1254"},      {"WIN1255", "CP1255"},      {"WIN1256", "CP1256"},
        {"WIN1257", "CP1257"},      {"WIN1258", "CP1258"},      {"WIN866", "CP866"},
        {"WIN874", "CP874"},        {"KOI8R", "KOI8-R"},        {"KOI8U", "KOI8-U"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(pg, map[i][0]) == 0)
            return map[i][1];
    return NULL;
}

/* Each byte's character, in UTF-8 (len 0: none). Made by converting each
 * byte on its own, so a text converts byte by byte as PostgreSQL converts
 * it: iconv's CP1255 and CP1258 compose a letter with the combining mark
 * after it, and hold a text's last letter back until flushed. */
struct gw_charmap {
    uint8_t len[256];
    char utf8[256][4];
};

static struct gw_charmap *charmap_new(const char *iconv_encoding)
{
    iconv_t cd = iconv_open("UTF-8", iconv_encoding);
    if (cd == (iconv_t)-1)
        return NULL;
    struct gw_charmap *m = calloc(1, sizeof *m);
    for (int b = 0; m && b < 256; b++) {
        char in[1] = {(char)b}, out[8], *ip = in, *op = out;
        size_t inleft = 1, outleft = sizeof out;
        iconv(cd, NULL, NULL, NULL, NULL);
        if (iconv(cd, &ip, &inleft, &op, &outleft) == (size_t)-1 || inleft ||
            iconv(cd, NULL, NULL, &op, &outleft) == (size_t)-1)
            continue; /* no character */
        size_t n = sizeof out - outleft;
        if (n == 0 || n > sizeof m->utf8[b] || (b < 0x80 && (n != 1 || out[0] != (char)b)) ||
            (b >= 0x80 && (unsigned char)out[0] < 0x80))
            continue; /* ASCII must stay itself, and nothing else become ASCII */
        memcpy(m->utf8[b], out, n);
        m->len[b] = (uint8_t)n;
    }
    iconv_close(cd);
    return m;
}

void gw_encoding_free(struct gw_session *s)
{
    free(s->charmap);
    s->charmap = NULL;
}

void gw_note_parameter_status(struct gw_session *s, const uint8_t *body, size_t len)
{
    struct pgwire_reader r;
    pgwire_reader_init(&r, body, len);
    const char *name = pgwire_read_cstr(&r), *value = pgwire_read_cstr(&r);
    if (!name || !value || strcmp(name, "client_encoding") != 0)
        return;
    if (s->charmap && strcmp(value, s->client_encoding) == 0)
        return;
    gw_encoding_free(s);
    const char *to = iconv_name(value);
    if (to && (s->charmap = charmap_new(to))) /* (else the text stays as it is: the policy refuses what is not UTF-8) */
        snprintf(s->client_encoding, sizeof s->client_encoding, "%s", value);
}

const char *gw_text_utf8(struct gw_session *s, const char *text, char **copy)
{
    *copy = NULL;
    const struct gw_charmap *m = s->charmap;
    if (!m || !text || s->encoding_unsettled)
        return text;
    size_t n = 0, need = 0;
    bool ascii = true;
    for (; text[n] && n <= GW_CONVERT_MAX; n++) {
        unsigned char b = (unsigned char)text[n];
        if (b >= 0x80 && !m->len[b])
            return text; /* a byte with no character: as it is, and refused as not UTF-8 */
        ascii &= b < 0x80;
        need += m->len[b];
    }
    if (ascii || n > GW_CONVERT_MAX)
        return text;
    char *out = malloc(need + 1), *o = out;
    if (!out)
        return text;
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)text[i];
        memcpy(o, m->utf8[b], m->len[b]);
        o += m->len[b];
    }
    *o = '\0';
    *copy = out;
    return out;
}
