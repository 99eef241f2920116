/* secret.c — connection secrets at rest: AES-256-GCM (OpenSSL EVP) under a
 * master key read from a file or the environment. Keys are wiped after use. */
#include "hoopctl/server.h"
#include "hoopctl/store.h"
#include "hoopctl/util.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int key_from_text(const unsigned char *raw, size_t len, unsigned char key[32])
{
    if (len == 32) {
        memcpy(key, raw, 32);
        return 0;
    }
    char hex[65];
    while (len && (raw[len - 1] == '\n' || raw[len - 1] == '\r' || raw[len - 1] == ' '))
        len--;
    if (len != 64)
        return -1;
    memcpy(hex, raw, 64);
    hex[64] = '\0';
    long n = util_hex_decode(hex, key, 32);
    util_secure_zero(hex, sizeof hex);
    return n == 32 ? 0 : -1;
}

int server_master_key_load(const char *file, unsigned char key[32], char *err, size_t errlen)
{
    if (file && *file) {
        FILE *f = fopen(file, "rb");
        if (!f) {
            snprintf(err, errlen, "master key file %s: %s", file, strerror(errno));
            return -1;
        }
        struct stat stbuf;
        if (fstat(fileno(f), &stbuf) == 0 && (stbuf.st_mode & 077))
            snprintf(err, errlen, "master key file %s is open to group or others (mode %03o)", file,
                     (unsigned)(stbuf.st_mode & 0777));
        unsigned char raw[80];
        size_t n = fread(raw, 1, sizeof raw, f);
        fclose(f);
        int rc = key_from_text(raw, n, key);
        util_secure_zero(raw, sizeof raw);
        if (rc < 0) {
            snprintf(err, errlen, "master key file %s must hold 32 bytes or 64 hex characters", file);
            return -1;
        }
        return 1;
    }
    const char *env = getenv("HOOPCTL_MASTER_KEY");
    if (!env || !*env)
        return 0;
    if (key_from_text((const unsigned char *)env, strlen(env), key) < 0 || strlen(env) == 32) {
        snprintf(err, errlen, "HOOPCTL_MASTER_KEY must hold 64 hex characters");
        return -1;
    }
    return 1;
}

int server_secret_seal(const unsigned char key[32], const char *aad, const char *plain, char **out,
                       char *err, size_t errlen)
{
    size_t plen = strlen(plain);
    unsigned char *blob = malloc(12 + plen + 16);
    char *hex = malloc(3 + 2 * (12 + plen + 16) + 1);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len = 0, ok = blob && hex && c && util_random_bytes(blob, 12) == 0 &&
                      EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, blob) == 1 &&
                      EVP_EncryptUpdate(c, NULL, &len, (const unsigned char *)aad, (int)strlen(aad)) == 1 &&
                      EVP_EncryptUpdate(c, blob + 12, &len, (const unsigned char *)plain, (int)plen) == 1 &&
                      EVP_EncryptFinal_ex(c, blob + 12 + len, &len) == 1 &&
                      EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, blob + 12 + plen) == 1;
    EVP_CIPHER_CTX_free(c);
    if (!ok) {
        snprintf(err, errlen, "cannot encrypt the secret");
        free(blob);
        free(hex);
        return -1;
    }
    memcpy(hex, "v1:", 3);
    util_hex_encode(blob, 12 + plen + 16, hex + 3);
    free(blob);
    *out = hex;
    return 0;
}

int server_secret_open(const unsigned char key[32], const char *aad, const char *sealed, char **out,
                       char *err, size_t errlen)
{
    size_t hlen = strlen(sealed);
    if (hlen < 3 + 2 * 28 || strncmp(sealed, "v1:", 3) != 0 || (hlen - 3) % 2) {
        snprintf(err, errlen, "sealed secret has an unknown format");
        return -1;
    }
    size_t blen = (hlen - 3) / 2, plen = blen - 28;
    unsigned char *blob = malloc(blen);
    char *plain = malloc(plen + 1);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len = 0, ok = blob && plain && c && util_hex_decode(sealed + 3, blob, blen) == (long)blen &&
                      EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, blob) == 1 &&
                      EVP_DecryptUpdate(c, NULL, &len, (const unsigned char *)aad, (int)strlen(aad)) == 1 &&
                      EVP_DecryptUpdate(c, (unsigned char *)plain, &len, blob + 12, (int)plen) == 1 &&
                      EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, blob + 12 + plen) == 1 &&
                      EVP_DecryptFinal_ex(c, (unsigned char *)plain + len, &len) == 1;
    EVP_CIPHER_CTX_free(c);
    free(blob);
    if (!ok) {
        if (plain) {
            util_secure_zero(plain, plen + 1);
            free(plain);
        }
        snprintf(err, errlen, "cannot decrypt the secret (wrong master key or altered data)");
        return -1;
    }
    plain[plen] = '\0';
    *out = plain;
    return 0;
}

int server_secrets_unopened(struct store *st, const unsigned char key[32], const char *skip, char *names,
                            size_t nameslen, char *err, size_t errlen)
{
    json_t *list = NULL;
    if (store_connection_list(st, &list, err, errlen) != 0)
        return -1;
    int bad = 0;
    size_t at = 0, i;
    json_t *c;
    names[0] = '\0';
    json_array_foreach(list, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *sealed = json_string_value(json_object_get(c, "secret_enc"));
        char *plain = NULL, e[128];
        if (!name || !sealed || (skip && strcmp(name, skip) == 0))
            continue;
        if (server_secret_open(key, name, sealed, &plain, e, sizeof e) == 0) {
            util_secure_zero(plain, strlen(plain));
            free(plain);
            continue;
        }
        if (bad++ < 5 && at < nameslen)
            at += (size_t)snprintf(names + at, nameslen - at, "%s%s", at ? ", " : "", name);
    }
    if (bad > 5 && at < nameslen)
        snprintf(names + at, nameslen - at, ", ...");
    json_decref(list);
    return bad;
}
