/* complete.c — the hidden `hoopctl __complete <kind>` that the shell
 * completions call on TAB: connection names, session ids or pending review
 * ids, asked of the server with a short timeout and cached for a few seconds
 * per server and user. It never complains: no answer is an empty answer. */
#include "hoopctl/api.h"
#include "hoopctl/cli.h"
#include "hoopctl/config.h"
#include "hoopctl/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define COMPLETE_TIMEOUT_S 2        /* the whole request, connect included */
#define COMPLETE_CACHE_TTL_S 30     /* HOOPCTL_COMPLETE_TTL overrides; 0: always ask */
#define COMPLETE_MAX_WORDS 1000
#define COMPLETE_MAX_WORD 128
#define COMPLETE_MAX_CACHE (COMPLETE_MAX_WORDS * (COMPLETE_MAX_WORD + 1))

struct complete_kind {
    const char *name;
    const char *path;   /* the API listing */
    const char *array;  /* its array member */
    const char *field;  /* each element's word */
};

static const struct complete_kind complete_kinds[] = {
    {"connections", "/api/v1/connections", "connections", "name"},
    {"sessions", "/api/v1/sessions?limit=200", "sessions", "id"},
    {"reviews", "/api/v1/reviews?status=pending", "reviews", "id"},
    {NULL, NULL, NULL, NULL},
};

static const struct complete_kind *complete_kind_find(const char *name)
{
    for (const struct complete_kind *k = complete_kinds; k->name; k++)
        if (strcmp(k->name, name) == 0)
            return k;
    return NULL;
}

bool cli_complete_word_ok(const char *w)
{
    size_t n = strlen(w);
    if (n == 0 || n > COMPLETE_MAX_WORD)
        return false;
    for (; *w; w++)
        if (!((*w >= 'a' && *w <= 'z') || (*w >= 'A' && *w <= 'Z') || (*w >= '0' && *w <= '9') ||
              strchr("._:@-", *w)))
            return false;
    return true;
}

int cli_complete_words_from(const char *kind, const struct json_t *resp, struct buf *out)
{
    const struct complete_kind *k = complete_kind_find(kind);
    json_t *arr = k ? json_object_get(resp, k->array) : NULL;
    if (!json_is_array(arr))
        return -1;
    int n = 0;
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e) {
        const char *w = json_string_value(json_object_get(e, k->field));
        if (n >= COMPLETE_MAX_WORDS)
            break;
        if (w && cli_complete_word_ok(w) && buf_printf(out, "%s\n", w) == 0)
            n++;
    }
    return n;
}

/* Keep only the ok lines of text (a cache file is re-checked on the way out). */
static void complete_print_words(char *text)
{
    for (char *save = NULL, *w = strtok_r(text, "\n", &save); w; w = strtok_r(NULL, "\n", &save))
        if (cli_complete_word_ok(w))
            printf("%s\n", w);
}

/* <cache>/hoopctl/complete/<hash of server and token>.<kind>: one file per
 * server and user, never naming either. */
static int complete_cache_path(const struct api_client *api, const char *kind, char *dir, size_t dlen,
                               char *file, size_t flen)
{
    const char *v = getenv("HOOPCTL_CACHE_DIR"), *home = getenv("HOME");
    int n;
    if (v && *v)
        n = snprintf(dir, dlen, "%s/complete", v);
    else if ((v = getenv("XDG_CACHE_HOME")) && *v == '/')
        n = snprintf(dir, dlen, "%s/hoopctl/complete", v);
    else if (home && *home)
        n = snprintf(dir, dlen, "%s/.cache/hoopctl/complete", home);
    else
        return -1;
    if (n < 0 || (size_t)n >= dlen)
        return -1;
    struct buf key = {0};
    char hash[65];
    buf_printf(&key, "%s\n%s", api->base, api->token);
    util_sha256_hex(key.data, key.len, hash);
    util_secure_zero(key.data, key.len);
    buf_free(&key);
    hash[32] = '\0';
    n = snprintf(file, flen, "%s/%s.%s", dir, hash, kind);
    return (n < 0 || (size_t)n >= flen) ? -1 : 0;
}

static long complete_cache_ttl(void)
{
    const char *v = getenv("HOOPCTL_COMPLETE_TTL");
    char *end;
    long ttl = v && *v ? strtol(v, &end, 10) : COMPLETE_CACHE_TTL_S;
    if (v && *v && (*end || ttl < 0))
        ttl = COMPLETE_CACHE_TTL_S;
    return ttl;
}

/* The cached words when the file is ours, private and younger than ttl. */
static char *complete_cache_read(const char *file, long ttl)
{
    struct stat st;
    FILE *f = fopen(file, "r");
    if (!f)
        return NULL;
    time_t now = time(NULL);
    if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
        (st.st_mode & 077) || st.st_size > COMPLETE_MAX_CACHE || st.st_mtime > now ||
        now - st.st_mtime >= ttl) {
        fclose(f);
        return NULL;
    }
    char *text = calloc(1, (size_t)st.st_size + 1);
    if (text && fread(text, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        free(text);
        text = NULL;
    }
    fclose(f);
    return text;
}

static int complete_run(const struct cli_args *args, struct cli_context *ctx)
{
    (void)ctx;
    const struct complete_kind *k = complete_kind_find(args->pos[0]);
    if (!k)
        return cli_usage_error(args->cmd, "the kind is connections, sessions or reviews");
    struct api_client api;
    char err[600], dir[4096], file[4200];
    if (api_client_init(&api, cli_get(args, "server"), err, sizeof err) != 0)
        return CLI_EXIT_OK;             /* no server configured, or not logged in */
    if (!api.token[0]) {
        api_client_free(&api);
        return CLI_EXIT_OK;             /* not logged in */
    }
    long ttl = complete_cache_ttl();
    bool cache = complete_cache_path(&api, k->name, dir, sizeof dir, file, sizeof file) == 0;
    char *text = cache && ttl > 0 ? complete_cache_read(file, ttl) : NULL;
    if (text) {
        api_client_free(&api);
        complete_print_words(text);
        free(text);
        return CLI_EXIT_OK;
    }
    api.timeout_s = COMPLETE_TIMEOUT_S;
    json_t *resp = NULL;
    long status = 0;
    struct buf words = {.max = COMPLETE_MAX_CACHE};
    if (api_call(&api, "GET", k->path, NULL, &status, &resp, err, sizeof err) == 0 && status == 200 &&
        cli_complete_words_from(k->name, resp, &words) >= 0) {
        if (cache && config_mkdirs(dir, 0700) == 0)
            config_write_atomic(file, words.data ? (const char *)words.data : "", words.len, 0600);
        if (words.len)
            fwrite(words.data, 1, words.len, stdout);
    }
    json_decref(resp);
    buf_free(&words);
    api_client_free(&api);
    return CLI_EXIT_OK;
}

static const struct cli_option complete_options[] = {
    CLI_OPTION_SERVER,
    {0},
};

/* Hidden: the words the completion scripts offer for a dynamic argument. */
const struct cli_command cli_cmd_complete = {
    .name = "__complete",
    .summary = "Print completion words of a kind (connections, sessions, reviews), one per line",
    .usage = "connections|sessions|reviews",
    .options = complete_options,
    .hidden = true,
    .min_args = 1,
    .max_args = 1,
    .run = complete_run,
};
