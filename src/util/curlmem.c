/* curlmem.c — libcurl's and jansson's memory wiped when freed: curl copies what it sends
 * (the header list's strings, the request it builds with the Authorization
 * header and small POST bodies in it, the answer) into blocks of its own,
 * and frees them without clearing them; a bearer token, a refresh token or a
 * client secret stayed in freed heap. These allocator callbacks zero every
 * block curl frees, and every block a realloc moves away from. jansson's
 * parser and values hold tokens read from the token file, and what the
 * server answered (util_json_wipe_init). */
#include "hoopctl/util.h"

#include <curl/curl.h>
#include <jansson.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

static void wipe_free(void *p)
{
    if (!p)
        return;
    util_secure_zero(p, malloc_usable_size(p));
    free(p);
}

static void *wipe_realloc(void *p, size_t n)
{
    if (!p)
        return malloc(n);
    size_t old = malloc_usable_size(p);
    if (n && n <= old)
        return p; /* it fits: nothing is left behind */
    void *q = malloc(n ? n : 1);
    if (!q)
        return NULL;
    memcpy(q, p, old < n ? old : n);
    wipe_free(p);
    return q;
}

static char *wipe_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

void util_json_wipe_init(void)
{
    json_set_alloc_funcs(malloc, wipe_free);
}

int util_curl_global_init(void)
{
    return curl_global_init_mem(CURL_GLOBAL_DEFAULT, malloc, wipe_free, wipe_realloc, wipe_strdup, calloc) ==
                   CURLE_OK
               ? 0
               : -1;
}

void util_curl_slist_wipe(struct curl_slist *list)
{
    for (; list; list = list->next)
        if (list->data)
            util_secure_zero(list->data, strlen(list->data));
}

void util_curl_slist_free_wiped(struct curl_slist *list)
{
    util_curl_slist_wipe(list);
    curl_slist_free_all(list);
}
