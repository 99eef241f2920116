/* fuzz_decoder.c — libFuzzer target for the message decoder: the input is a
 * stream of v3 messages (type, int32 length, body) fed through the header
 * check and every body decoder the gateway uses, plus the conninfo parser. */
#include "hoopctl/pgwire.h"

#include <stdlib.h>
#include <string.h>

static void decode_body(uint8_t type, const uint8_t *body, size_t len)
{
    char f[256], kind;
    const char *name;
    switch (type) {
    case 'P': {
        struct pgwire_parse_msg m;
        pgwire_parse_parse(body, len, &m);
        break;
    }
    case 'B': {
        struct pgwire_bind b;
        if (pgwire_parse_bind(body, len, &b) == 0) {
            static const uint32_t types[] = {16, 21, 23, 26, 20, 700, 701, 25, 3802, 2950, 1082, 1114, 1184, 1700};
            for (int i = 0; i < b.nparams; i++)
                if (b.values[i] && b.lengths[i] > 0) {
                    f[0] = (char)b.values[i][b.lengths[i] - 1];
                    struct buf text = {0}; /* each value read as a binary one of some type */
                    pgwire_binary_to_text(types[b.values[i][0] % (sizeof types / sizeof *types)], b.values[i],
                                          (size_t)b.lengths[i], &text);
                    buf_free(&text);
                }
            pgwire_bind_free(&b);
        }
        break;
    }
    case 'E':
    case 'N':
        pgwire_error_field(body, len, 'M', f, sizeof f);
        pgwire_error_field(body, len, 'C', f, sizeof f);
        pgwire_parse_named(body, len, false, &kind, &name);
        break;
    case 'C':
    case 'D': {
        pgwire_parse_named(body, len, true, &kind, &name);
        const uint8_t **vals;
        int32_t *lens;
        int n = pgwire_parse_data_row(body, len, &vals, &lens);
        for (int i = 0; i < n; i++)
            if (vals[i] && lens[i] > 0)
                f[0] = (char)vals[i][0];
        free(vals);
        free(lens);
        break;
    }
    case 'T': {
        struct pgwire_column *cols;
        int n = pgwire_parse_row_description(body, len, &cols);
        for (int i = 0; i < n; i++)
            f[0] = cols[i].name[0];
        free(cols);
        break;
    }
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t pos = 0;
    char err[256];
    while (size - pos >= PGWIRE_HEADER_LEN) {
        long blen = pgwire_check_header(data + pos, 1 << 20, err, sizeof err);
        if (blen < 0 || (size_t)blen > size - pos - PGWIRE_HEADER_LEN)
            break;
        /* copy the body so ASan sees reads past its end */
        uint8_t *body = malloc((size_t)blen + 1);
        memcpy(body, data + pos + PGWIRE_HEADER_LEN, (size_t)blen);
        decode_body(data[pos], body, (size_t)blen);
        free(body);
        pos += PGWIRE_HEADER_LEN + (size_t)blen;
    }
    if (size < 2048) {
        char *s = malloc(size + 1);
        memcpy(s, data, size);
        s[size] = 0;
        struct pgwire_conninfo ci;
        pgwire_conninfo_parse(s, &ci, err, sizeof err);
        free(s);
    }
    return 0;
}
