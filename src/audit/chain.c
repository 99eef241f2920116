/* chain.c — the hash that links each audit event to its predecessor. */
#include "hoopctl/audit.h"
#include "hoopctl/util.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

static void hash_field(EVP_MD_CTX *md, const char *s)
{
    size_t len = s ? strlen(s) : 0;
    unsigned char pre[9];
    pre[0] = s ? 1 : 0;        /* NULL and "" differ */
    for (int i = 0; i < 8; i++)
        pre[1 + i] = (unsigned char)(len >> (8 * (7 - i)));
    EVP_DigestUpdate(md, pre, sizeof pre);
    if (len)
        EVP_DigestUpdate(md, s, len);
}

static void hash_int(EVP_MD_CTX *md, int64_t v)
{
    char s[24];
    snprintf(s, sizeof s, "%lld", (long long)v);
    hash_field(md, s);
}

void audit_chain_hash(const struct audit_record *r, char out[65])
{
    unsigned char digest[32];
    unsigned int dlen = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    hash_field(md, r->received_at > 0 ? "hoopctl-audit-v2" : "hoopctl-audit-v1");
    hash_int(md, r->n);
    hash_field(md, r->id);
    hash_field(md, r->session_id);
    hash_int(md, r->seq);
    hash_field(md, r->type);
    hash_int(md, r->ts);
    hash_field(md, r->subject);
    hash_field(md, r->data);
    hash_field(md, r->prev_hash);
    if (r->received_at > 0)
        hash_int(md, r->received_at);
    EVP_DigestFinal_ex(md, digest, &dlen);
    EVP_MD_CTX_free(md);
    util_hex_encode(digest, sizeof digest, out);
}
