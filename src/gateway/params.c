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
