/*
 * vectors.c: the quicseal C ABI exercised as a C QUIC stack would use it, against every
 * test vector in vectors/ and against the boundary's own rules (NULL pointers, lengths,
 * overlaps, batch refusals, key updates, limits, counters).
 *
 * `cargo xtask capi` compiles it (C99, -Wall -Wextra -Werror -pedantic) twice, against
 * libquicseal.a and against libquicseal.so, runs both, and runs the static build under
 * valgrind's memcheck. Usage: vectors [-q] <vectors.txt>. One line per case ("ok ..." or
 * "FAIL ...", only the failures with -q), then "N passed, M failed" alone on the last line;
 * the exit status is non-zero when a case failed or the input could not be read.
 *
 * Input format. xtask converts the JSON files in vectors/ (described in vectors/README.md)
 * into lines of space-separated tokens, so that this program needs no JSON parser. Byte
 * strings are lowercase hex, "-" when empty; numbers are decimal, "-" when absent:
 *
 *   # a comment
 *   flow <name> <suite: TLS code point in hex> <dcid_len> <gso_size, 0 for none> <secret>
 *   key <generation> <secret> <key> <iv> <hp>
 *   packet <generation> <pn> <largest_received> <header> <payload> <protected>
 *   negative <generation> <largest_received> <expect> <protected>
 *   end
 *
 * Each flow's lines follow its `flow` line and end with `end`. A packet's largest_received
 * is already resolved (the README's defaults applied); it is "-" only where nothing had been
 * received.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quicseal.h"

/* ---------------------------------------------------------------------------------------
 * Cases and checks
 * ------------------------------------------------------------------------------------- */

static int quiet;
static unsigned passed_count;
static unsigned failed_count;
static char case_name[256];
static int case_failed;

static void begin_case(const char *flow, const char *what) {
    snprintf(case_name, sizeof case_name, "%s: %s", flow, what);
    case_failed = 0;
}

static void end_case(void) {
    if (case_failed) {
        failed_count++;
        printf("FAIL    %s\n", case_name);
    } else {
        passed_count++;
        if (!quiet) {
            printf("ok      %s\n", case_name);
        }
    }
}

static void fail_at(int line, const char *what) {
    case_failed = 1;
    printf("        %s: line %d: check failed: %s\n", case_name, line, what);
}

static void fail_status(int line, const char *call, quicseal_status got, quicseal_status want) {
    case_failed = 1;
    printf("        %s: line %d: %s returned %s (%s), expected %s\n", case_name, line, call,
           quicseal_status_name((int)got), quicseal_status_str((int)got),
           quicseal_status_name((int)want));
}

/* Each check jumps to the case's `done:` label, which frees what the case holds. */
#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fail_at(__LINE__, #cond);                                                        \
            goto done;                                                                       \
        }                                                                                    \
    } while (0)

#define EXPECT(call, want)                                                                   \
    do {                                                                                     \
        quicseal_status got_ = (call);                                                       \
        if (got_ != (want)) {                                                                \
            fail_status(__LINE__, #call, got_, (want));                                      \
            goto done;                                                                       \
        }                                                                                    \
    } while (0)

#define OK(call) EXPECT(call, QUICSEAL_OK)

/* ---------------------------------------------------------------------------------------
 * Vector files
 * ------------------------------------------------------------------------------------- */

typedef struct {
    uint8_t *data;
    size_t len;
} bytes;

typedef struct {
    uint64_t generation;
    bytes secret, key, iv, hp;
} key_entry;

typedef struct {
    uint64_t generation, pn, largest;
    int has_largest;
    bytes header, payload, protected_;
} packet;

typedef struct {
    uint64_t generation, largest;
    int has_largest;
    char expect[64];
    bytes protected_;
} negative;

typedef struct {
    char name[128];
    uint16_t suite;
    size_t dcid_len, gso_size;
    bytes secret;
    key_entry *keys;
    size_t nkeys;
    packet *packets;
    size_t npackets;
    negative *negatives;
    size_t nnegatives;
} flow;

static void *xrealloc(void *p, size_t size) {
    void *q = realloc(p, size ? size : 1);
    if (q == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return q;
}

static void free_flow(flow *f) {
    size_t i;
    free(f->secret.data);
    for (i = 0; i < f->nkeys; i++) {
        free(f->keys[i].secret.data);
        free(f->keys[i].key.data);
        free(f->keys[i].iv.data);
        free(f->keys[i].hp.data);
    }
    for (i = 0; i < f->npackets; i++) {
        free(f->packets[i].header.data);
        free(f->packets[i].payload.data);
        free(f->packets[i].protected_.data);
    }
    for (i = 0; i < f->nnegatives; i++) {
        free(f->negatives[i].protected_.data);
    }
    free(f->keys);
    free(f->packets);
    free(f->negatives);
    memset(f, 0, sizeof *f);
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

/* Parses a hex token ("-" is empty) into freshly allocated bytes. */
static int parse_hex(const char *token, bytes *out) {
    size_t i, n;
    out->data = NULL;
    out->len = 0;
    if (token == NULL) {
        return 0;
    }
    if (strcmp(token, "-") == 0) {
        return 1;
    }
    n = strlen(token);
    if (n % 2 != 0) {
        return 0;
    }
    out->data = xrealloc(NULL, n / 2);
    out->len = n / 2;
    for (i = 0; i < n / 2; i++) {
        int hi = hex_value(token[2 * i]), lo = hex_value(token[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return 0;
        }
        out->data[i] = (uint8_t)(hi << 4 | lo);
    }
    return 1;
}

static int parse_u64(const char *token, uint64_t *out) {
    char *end = NULL;
    if (token == NULL || *token == '\0' || *token == '-') {
        return 0;
    }
    *out = (uint64_t)strtoull(token, &end, 10);
    return *end == '\0';
}

/* A number or "-" for none. */
static int parse_optional_u64(const char *token, int *has, uint64_t *out) {
    *has = 0;
    *out = 0;
    if (token != NULL && strcmp(token, "-") == 0) {
        return 1;
    }
    *has = 1;
    return parse_u64(token, out);
}

static char line[1 << 16];

/* Reads the next flow. Returns 1 for a flow, 0 at the end of the input, -1 on bad input. */
static int read_flow(FILE *in, flow *f, unsigned *line_number) {
    int started = 0;
    memset(f, 0, sizeof *f);
    while (fgets(line, sizeof line, in) != NULL) {
        char *kind;
        uint64_t a = 0, b = 0;
        (*line_number)++;
        if (strchr(line, '\n') == NULL && !feof(in)) {
            fprintf(stderr, "line %u is longer than %u bytes\n", *line_number,
                    (unsigned)sizeof line);
            return -1;
        }
        kind = strtok(line, " \n");
        if (kind == NULL || kind[0] == '#') {
            continue;
        }
        if (strcmp(kind, "flow") == 0 && !started) {
            const char *name = strtok(NULL, " \n");
            const char *suite = strtok(NULL, " \n");
            unsigned long code;
            if (name == NULL || suite == NULL || strlen(name) >= sizeof f->name) {
                goto bad;
            }
            strcpy(f->name, name);
            code = strtoul(suite, NULL, 16);
            f->suite = (uint16_t)code;
            if (!parse_u64(strtok(NULL, " \n"), &a) || !parse_u64(strtok(NULL, " \n"), &b) ||
                !parse_hex(strtok(NULL, " \n"), &f->secret)) {
                goto bad;
            }
            f->dcid_len = (size_t)a;
            f->gso_size = (size_t)b;
            started = 1;
        } else if (strcmp(kind, "key") == 0 && started) {
            key_entry *k;
            f->keys = xrealloc(f->keys, (f->nkeys + 1) * sizeof *f->keys);
            k = &f->keys[f->nkeys++];
            memset(k, 0, sizeof *k);
            if (!parse_u64(strtok(NULL, " \n"), &k->generation) ||
                !parse_hex(strtok(NULL, " \n"), &k->secret) ||
                !parse_hex(strtok(NULL, " \n"), &k->key) ||
                !parse_hex(strtok(NULL, " \n"), &k->iv) ||
                !parse_hex(strtok(NULL, " \n"), &k->hp)) {
                goto bad;
            }
        } else if (strcmp(kind, "packet") == 0 && started) {
            packet *p;
            f->packets = xrealloc(f->packets, (f->npackets + 1) * sizeof *f->packets);
            p = &f->packets[f->npackets++];
            memset(p, 0, sizeof *p);
            if (!parse_u64(strtok(NULL, " \n"), &p->generation) ||
                !parse_u64(strtok(NULL, " \n"), &p->pn) ||
                !parse_optional_u64(strtok(NULL, " \n"), &p->has_largest, &p->largest) ||
                !parse_hex(strtok(NULL, " \n"), &p->header) ||
                !parse_hex(strtok(NULL, " \n"), &p->payload) ||
                !parse_hex(strtok(NULL, " \n"), &p->protected_)) {
                goto bad;
            }
        } else if (strcmp(kind, "negative") == 0 && started) {
            negative *n;
            const char *expect;
            f->negatives = xrealloc(f->negatives, (f->nnegatives + 1) * sizeof *f->negatives);
            n = &f->negatives[f->nnegatives++];
            memset(n, 0, sizeof *n);
            if (!parse_u64(strtok(NULL, " \n"), &n->generation) ||
                !parse_optional_u64(strtok(NULL, " \n"), &n->has_largest, &n->largest)) {
                goto bad;
            }
            expect = strtok(NULL, " \n");
            if (expect == NULL || strlen(expect) >= sizeof n->expect) {
                goto bad;
            }
            strcpy(n->expect, expect);
            if (!parse_hex(strtok(NULL, " \n"), &n->protected_)) {
                goto bad;
            }
        } else if (strcmp(kind, "end") == 0 && started) {
            return 1;
        } else {
            goto bad;
        }
    }
    if (!started) {
        return 0;
    }
bad:
    fprintf(stderr, "vectors: line %u is not what vectors.c reads\n", *line_number);
    return -1;
}

/* ---------------------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------------------- */

/* header || payload, freshly allocated. */
static uint8_t *cleartext_of(const packet *p, size_t *len) {
    uint8_t *out = xrealloc(NULL, p->header.len + p->payload.len);
    if (p->header.len > 0) {
        memcpy(out, p->header.data, p->header.len);
    }
    if (p->payload.len > 0) {
        memcpy(out + p->header.len, p->payload.data, p->payload.len);
    }
    *len = p->header.len + p->payload.len;
    return out;
}

static uint8_t *copy_of(const bytes *b) {
    uint8_t *out = xrealloc(NULL, b->len);
    if (b->len > 0) {
        memcpy(out, b->data, b->len);
    }
    return out;
}

/* A cleartext short-header packet with a 1-byte packet number: first byte, DCID, packet
 * number, payload. Returns its length; `out` needs 2 + dcid_len + payload_len bytes. */
static size_t make_packet(uint8_t *out, size_t dcid_len, int key_phase, uint8_t pn,
                          size_t payload_len) {
    size_t i;
    out[0] = (uint8_t)(0x40 | (key_phase ? 0x04 : 0));
    memset(out + 1, 0xc1, dcid_len);
    out[1 + dcid_len] = pn;
    for (i = 0; i < payload_len; i++) {
        out[2 + dcid_len + i] = (uint8_t)(i * 7 + pn);
    }
    return 2 + dcid_len + payload_len;
}

/* A version 1 Handshake packet of `len` bytes (18 to 80) with an 8-byte DCID: opaque bytes
 * to the library, which passes them through. */
static size_t make_handshake(uint8_t *out, size_t len) {
    static const uint8_t head[] = {0xe0, 0, 0, 0, 1, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0x40};
    memcpy(out, head, sizeof head);
    out[sizeof head] = (uint8_t)(len - 17);
    memset(out + 17, 0xab, len - 17);
    return len;
}

static const uint8_t SECRET32[32] = {0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
                                     0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
                                     0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
                                     0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42};

static quicseal_status new_tx(size_t dcid_len, quicseal_tx **tx) {
    quicseal_config config = quicseal_config_default(dcid_len);
    return quicseal_tx_new_from_secret(QUICSEAL_TLS_AES_128_GCM_SHA256, SECRET32,
                                       sizeof SECRET32, &config, tx);
}

static quicseal_status new_rx(size_t dcid_len, quicseal_rx **rx) {
    quicseal_config config = quicseal_config_default(dcid_len);
    return quicseal_rx_new_from_secret(QUICSEAL_TLS_AES_128_GCM_SHA256, SECRET32,
                                       sizeof SECRET32, &config, rx);
}

/* ---------------------------------------------------------------------------------------
 * Cases run on every vector file
 * ------------------------------------------------------------------------------------- */

/* Key derivation, through a flow round trip: a sender derives each generation from the
 * secret, a receiver is handed the vector's keys explicitly; every generation must open. */
static void check_keys(const flow *f) {
    quicseal_tx *tx = NULL;
    quicseal_rx *rx = NULL;
    quicseal_config config = quicseal_config_default(f->dcid_len);
    uint8_t cleartext[2 + 20 + 32], datagram[sizeof cleartext + QUICSEAL_TAG_LEN];
    quicseal_result result;
    quicseal_tx_state tx_state;
    size_t g, len;
    begin_case(f->name, "key schedule through a flow round trip");
    CHECK(f->nkeys > 0);
    CHECK(f->dcid_len <= 20);
    CHECK(f->keys[0].secret.len == f->secret.len &&
          memcmp(f->keys[0].secret.data, f->secret.data, f->secret.len) == 0);
    CHECK(f->keys[0].key.len == quicseal_suite_key_len(f->suite));
    CHECK(f->secret.len == quicseal_suite_secret_len(f->suite));
    OK(quicseal_tx_new_from_secret(f->suite, f->secret.data, f->secret.len, &config, &tx));
    OK(quicseal_rx_new_from_keys(f->suite, f->keys[0].key.data, f->keys[0].key.len,
                                 f->keys[0].iv.data, f->keys[0].iv.len, f->keys[0].hp.data,
                                 f->keys[0].hp.len, &config, &rx));
    for (g = 0; g < f->nkeys; g++) {
        CHECK(f->keys[g].generation == g);
        if (g > 0) {
            OK(quicseal_rx_install_next_keys(rx, f->keys[g].key.data, f->keys[g].key.len,
                                             f->keys[g].iv.data, f->keys[g].iv.len));
        }
        len = make_packet(cleartext, f->dcid_len, (int)(g & 1), (uint8_t)(g + 1), 32);
        OK(quicseal_tx_seal(tx, cleartext, len, datagram, sizeof datagram, &result));
        CHECK(result.has_packet && result.packet_number == g + 1 && result.generation == g);
        CHECK(result.key_update == (g > 0));
        CHECK(result.len == len + QUICSEAL_TAG_LEN);
        OK(quicseal_tx_get_state(tx, &tx_state));
        CHECK(tx_state.generation == g && tx_state.key_phase == (g & 1));
        OK(quicseal_rx_open_in_place(rx, datagram, len + QUICSEAL_TAG_LEN, &result));
        CHECK(result.generation == g && result.len == len);
        CHECK(memcmp(datagram, cleartext, len) == 0);
    }
done:
    quicseal_tx_free(tx);
    quicseal_rx_free(rx);
    end_case();
}

/* Seals every packet one by one; with `explicit_keys`, from the vector's keys, installing
 * each next generation's before the sender flips the key phase. */
static void check_seal(const flow *f, int explicit_keys) {
    quicseal_tx *tx = NULL;
    quicseal_config config = quicseal_config_default(f->dcid_len);
    quicseal_result result;
    quicseal_tx_state state;
    quicseal_counters counters;
    uint8_t *src = NULL, *dst = NULL;
    uint64_t generation = 0;
    size_t i, len;
    begin_case(f->name, explicit_keys ? "seal packets with explicit keys" : "seal packets");
    if (explicit_keys) {
        OK(quicseal_tx_new_from_keys(f->suite, f->keys[0].key.data, f->keys[0].key.len,
                                     f->keys[0].iv.data, f->keys[0].iv.len,
                                     f->keys[0].hp.data, f->keys[0].hp.len, &config, &tx));
    } else {
        OK(quicseal_tx_new_from_secret(f->suite, f->secret.data, f->secret.len, &config, &tx));
    }
    for (i = 0; i < f->npackets; i++) {
        const packet *p = &f->packets[i];
        OK(quicseal_tx_get_state(tx, &state));
        if (explicit_keys && p->generation > state.generation) {
            CHECK(!state.next_keys_ready);
            CHECK(p->generation == state.generation + 1 && p->generation < f->nkeys);
            OK(quicseal_tx_install_next_keys(tx, f->keys[p->generation].key.data,
                                             f->keys[p->generation].key.len,
                                             f->keys[p->generation].iv.data,
                                             f->keys[p->generation].iv.len));
        }
        src = cleartext_of(p, &len);
        dst = xrealloc(dst, p->protected_.len);
        CHECK(len + QUICSEAL_TAG_LEN == p->protected_.len);
        OK(quicseal_tx_seal_numbered(tx, p->pn, src, len, dst, p->protected_.len, &result));
        CHECK(memcmp(dst, p->protected_.data, p->protected_.len) == 0);
        CHECK(result.status == QUICSEAL_OK && result.has_packet);
        CHECK(result.len == p->protected_.len && result.passthrough_len == 0);
        CHECK(result.packet_number == p->pn && result.generation == p->generation);
        CHECK(result.header_len == p->header.len && result.payload_len == p->payload.len);
        CHECK(result.key_update == (p->generation != generation));
        generation = p->generation;
        free(src);
        src = NULL;
    }
    OK(quicseal_tx_get_state(tx, &state));
    CHECK(state.generation == generation && state.suite == f->suite);
    CHECK(state.has_largest_sealed && state.largest_sealed == f->packets[f->npackets - 1].pn);
    OK(quicseal_tx_get_counters(tx, &counters));
    CHECK(counters.sealed == f->npackets && counters.key_updates == generation);
    CHECK(counters.dropped == 0 && counters.opened == 0);
done:
    quicseal_tx_free(tx);
    free(src);
    free(dst);
    end_case();
}

/* Opens every packet, in place and into a separate buffer; with `explicit_keys`, the
 * receiver is handed each next generation's keys before it needs them. */
static void check_open(const flow *f, int explicit_keys) {
    quicseal_rx *in_place = NULL, *copying = NULL;
    quicseal_config config = quicseal_config_default(f->dcid_len);
    quicseal_result result;
    quicseal_rx_state state;
    quicseal_counters counters;
    uint8_t *cleartext = NULL, *buf = NULL;
    uint64_t highest = 0;
    size_t i, len;
    begin_case(f->name, explicit_keys ? "open packets with explicit keys" : "open packets");
    if (explicit_keys) {
        OK(quicseal_rx_new_from_keys(f->suite, f->keys[0].key.data, f->keys[0].key.len,
                                     f->keys[0].iv.data, f->keys[0].iv.len,
                                     f->keys[0].hp.data, f->keys[0].hp.len, &config,
                                     &in_place));
    } else {
        OK(quicseal_rx_new_from_secret(f->suite, f->secret.data, f->secret.len, &config,
                                       &in_place));
        OK(quicseal_rx_new_from_secret(f->suite, f->secret.data, f->secret.len, &config,
                                       &copying));
    }
    for (i = 0; i < f->npackets; i++) {
        const packet *p = &f->packets[i];
        if (explicit_keys) {
            OK(quicseal_rx_get_state(in_place, &state));
            if (state.generation + 1 < f->nkeys) {
                const key_entry *next = &f->keys[state.generation + 1];
                OK(quicseal_rx_install_next_keys(in_place, next->key.data, next->key.len,
                                                 next->iv.data, next->iv.len));
            }
        }
        if (p->has_largest) {
            OK(quicseal_rx_set_largest_received(in_place, p->largest));
        } else {
            OK(quicseal_rx_clear_largest_received(in_place));
        }
        cleartext = cleartext_of(p, &len);
        buf = copy_of(&p->protected_);
        OK(quicseal_rx_open_in_place(in_place, buf, p->protected_.len, &result));
        CHECK(result.len == len && result.has_packet && memcmp(buf, cleartext, len) == 0);
        CHECK(result.packet_number == p->pn && result.generation == p->generation);
        CHECK(result.header_len == p->header.len && result.payload_len == p->payload.len);
        CHECK(result.key_update == (p->generation > highest));
        if (copying != NULL) {
            if (p->has_largest) {
                OK(quicseal_rx_set_largest_received(copying, p->largest));
            } else {
                OK(quicseal_rx_clear_largest_received(copying));
            }
            memset(buf, 0, p->protected_.len);
            OK(quicseal_rx_open(copying, p->protected_.data, p->protected_.len, buf, len,
                                &result));
            CHECK(result.len == len && memcmp(buf, cleartext, len) == 0);
            CHECK(result.packet_number == p->pn && result.generation == p->generation);
        }
        if (p->generation > highest) {
            highest = p->generation;
        }
        free(cleartext);
        free(buf);
        cleartext = buf = NULL;
    }
    OK(quicseal_rx_get_state(in_place, &state));
    CHECK(state.generation == highest && state.key_phase == (highest & 1));
    CHECK(state.suite == f->suite && !state.integrity_limit_reached);
    OK(quicseal_rx_get_counters(in_place, &counters));
    CHECK(counters.opened == f->npackets && counters.key_updates == highest);
    CHECK(counters.dropped == 0 && counters.sealed == 0);
    if (highest > 0) {
        CHECK(state.has_previous_keys);
        OK(quicseal_rx_retire_previous_keys(in_place));
        OK(quicseal_rx_get_state(in_place, &state));
        CHECK(!state.has_previous_keys);
    }
done:
    quicseal_rx_free(in_place);
    quicseal_rx_free(copying);
    free(cleartext);
    free(buf);
    end_case();
}

/* Seals the packets as one GSO batch, then opens the result as one GRO batch. */
static void check_gso(const flow *f) {
    quicseal_tx *tx = NULL;
    quicseal_rx *rx = NULL;
    quicseal_config config = quicseal_config_default(f->dcid_len);
    quicseal_result *results = NULL;
    quicseal_batch batch;
    uint8_t *src = NULL, *expected = NULL, *dst = NULL, *cleartext = NULL;
    size_t i, src_len = 0, expected_len = 0, len;
    uint64_t first_pn = f->packets[0].pn;
    begin_case(f->name, "GSO batch sealed, then opened as a GRO batch");
    for (i = 0; i < f->npackets; i++) {
        const packet *p = &f->packets[i];
        src = xrealloc(src, src_len + p->header.len + p->payload.len);
        cleartext = cleartext_of(p, &len);
        memcpy(src + src_len, cleartext, len);
        src_len += len;
        free(cleartext);
        cleartext = NULL;
        expected = xrealloc(expected, expected_len + p->protected_.len);
        memcpy(expected + expected_len, p->protected_.data, p->protected_.len);
        expected_len += p->protected_.len;
    }
    if (first_pn > 0) {
        config.flags |= QUICSEAL_CONFIG_LARGEST_PACKET_NUMBER;
        config.largest_packet_number = first_pn - 1;
    }
    OK(quicseal_tx_new_from_secret(f->suite, f->secret.data, f->secret.len, &config, &tx));
    results = xrealloc(NULL, f->npackets * sizeof *results);
    dst = xrealloc(NULL, expected_len);
    OK(quicseal_tx_seal_gso(tx, src, src_len, f->gso_size, dst, expected_len, results,
                            f->npackets, &batch));
    CHECK(batch.datagrams == f->npackets && batch.ok == f->npackets && batch.failed == 0);
    CHECK(batch.len == expected_len);
    CHECK(memcmp(dst, expected, expected_len) == 0);
    for (i = 0; i < f->npackets; i++) {
        const packet *p = &f->packets[i];
        CHECK(results[i].status == QUICSEAL_OK && results[i].len == p->protected_.len);
        CHECK(i + 1 == f->npackets || results[i].len == f->gso_size);
        CHECK(results[i].packet_number == p->pn && results[i].generation == p->generation);
    }

    OK(quicseal_rx_new_from_secret(f->suite, f->secret.data, f->secret.len, &config, &rx));
    memset(results, 0xff, f->npackets * sizeof *results); /* the library must overwrite them */
    OK(quicseal_rx_open_gro(rx, dst, expected_len, f->gso_size, results, f->npackets,
                            &batch));
    CHECK(batch.datagrams == f->npackets && batch.ok == f->npackets && batch.failed == 0);
    for (i = 0; i < f->npackets; i++) {
        const packet *p = &f->packets[i];
        cleartext = cleartext_of(p, &len);
        CHECK(results[i].status == QUICSEAL_OK && results[i].len == len);
        CHECK(memcmp(dst + i * f->gso_size, cleartext, len) == 0);
        CHECK(results[i].packet_number == p->pn && results[i].generation == p->generation);
        free(cleartext);
        cleartext = NULL;
    }
done:
    quicseal_tx_free(tx);
    quicseal_rx_free(rx);
    free(results);
    free(src);
    free(expected);
    free(dst);
    free(cleartext);
    end_case();
}

/* A sender from the vector's secret, at key generation 0, whose largest sealed packet
 * number is `largest` if `has_largest`. */
static quicseal_status new_vector_tx(const flow *f, int has_largest, uint64_t largest,
                                     quicseal_tx **tx) {
    quicseal_config config = quicseal_config_default(f->dcid_len);
    if (has_largest) {
        config.flags |= QUICSEAL_CONFIG_LARGEST_PACKET_NUMBER;
        config.largest_packet_number = largest;
    }
    return quicseal_tx_new_from_secret(f->suite, f->secret.data, f->secret.len, &config, tx);
}

/* Seals, where it lies, a packet numbered `pn` with a 4-byte packet number: a packet the
 * sender sent between two of a vector's. */
static quicseal_status seal_filler(quicseal_tx *tx, size_t dcid_len, int key_phase,
                                   uint64_t pn) {
    uint8_t buf[1 + 20 + 4 + 20 + QUICSEAL_TAG_LEN];
    size_t i, len = 1 + dcid_len + 4 + 20;
    buf[0] = (uint8_t)(0x43 | (key_phase ? 0x04 : 0));
    memset(buf + 1, 0xc1, dcid_len);
    for (i = 0; i < 4; i++) {
        buf[1 + dcid_len + i] = (uint8_t)(pn >> (24 - 8 * i));
    }
    memset(buf + 1 + dcid_len + 4, 0x5a, 20);
    return quicseal_tx_seal_in_place(tx, buf, len + QUICSEAL_TAG_LEN, len, NULL);
}

/* The packet number a receiver whose largest is `largest` (none if `!has_largest`) decodes
 * from `p`'s cleartext header (RFC 9000, appendix A.3). */
static uint64_t decoded_pn(const packet *p, size_t dcid_len, int has_largest,
                           uint64_t largest) {
    size_t i, pn_len = (size_t)(p->header.data[0] & 3) + 1;
    uint64_t truncated = 0, expected = has_largest ? largest + 1 : 0;
    uint64_t win = UINT64_C(1) << (8 * pn_len), hwin = win / 2, candidate;
    for (i = 0; i < pn_len; i++) {
        truncated = truncated << 8 | p->header.data[1 + dcid_len + i];
    }
    candidate = (expected & ~(win - 1)) | truncated;
    if (candidate + hwin <= expected && candidate < (UINT64_C(1) << 62) - win) {
        return candidate + win;
    }
    if (candidate > expected + hwin && candidate >= win) {
        return candidate - win;
    }
    return candidate;
}

/* Seals every packet where it lies, in a buffer of exactly the protected packet's length:
 * the cleartext, then room for the tag.
 *
 * The in-place calls take the packet number from the header, decoded against the largest
 * sealed (the copying check_seal gives it explicitly). The vectors choose their truncated
 * numbers for a receiver, which may have seen other packets (a jump, a late packet); where
 * one does not decode to its number against the sender's largest, the sender first seals
 * the packet just below it, so that it does: a filler with a 4-byte packet number when that
 * is within 2^31 of the largest sealed; otherwise no truncated number reaches it, so a new
 * sender starts there and seals one filler per key update to reach the packet's generation.
 */
static void check_seal_in_place(const flow *f) {
    quicseal_tx *tx = NULL;
    quicseal_result result;
    quicseal_counters counters;
    uint8_t *cleartext = NULL, *buf = NULL;
    const packet *first = &f->packets[0];
    uint64_t generation = 0, largest = first->pn - 1, sealed = 0, target, g;
    int has_largest = first->pn > 0;
    size_t i, len;
    begin_case(f->name, "seal packets in place");
    CHECK(first->generation == 0);
    OK(new_vector_tx(f, has_largest, largest, &tx));
    for (i = 0; i < f->npackets; i++) {
        const packet *p = &f->packets[i];
        CHECK(p->header.len > 0 &&
              p->header.len >= 1 + f->dcid_len + (size_t)(p->header.data[0] & 3) + 1);
        if (decoded_pn(p, f->dcid_len, has_largest, largest) != p->pn) {
            CHECK(p->pn > p->generation);
            target = p->pn - 1;
            if (has_largest && target > largest && target - largest < (UINT64_C(1) << 31)) {
                OK(seal_filler(tx, f->dcid_len, (int)(generation & 1), target));
                sealed++;
            } else {
                quicseal_tx_free(tx);
                tx = NULL;
                OK(new_vector_tx(f, 1, target - p->generation, &tx));
                sealed = 0;
                for (g = 1; g <= p->generation; g++) {
                    OK(seal_filler(tx, f->dcid_len, (int)(g & 1), target - p->generation + g));
                    sealed++;
                }
                generation = p->generation;
            }
            has_largest = 1;
            largest = target;
            CHECK(decoded_pn(p, f->dcid_len, has_largest, largest) == p->pn);
        }
        cleartext = cleartext_of(p, &len);
        CHECK(len + QUICSEAL_TAG_LEN == p->protected_.len);
        buf = xrealloc(NULL, p->protected_.len);
        memcpy(buf, cleartext, len);
        memset(buf + len, 0xee, QUICSEAL_TAG_LEN); /* whatever was there is overwritten */
        OK(quicseal_tx_seal_in_place(tx, buf, p->protected_.len, len, &result));
        sealed++;
        CHECK(memcmp(buf, p->protected_.data, p->protected_.len) == 0);
        CHECK(result.status == QUICSEAL_OK && result.has_packet);
        CHECK(result.len == p->protected_.len && result.passthrough_len == 0);
        CHECK(result.packet_number == p->pn && result.generation == p->generation);
        CHECK(result.header_len == p->header.len && result.payload_len == p->payload.len);
        CHECK(result.key_update == (p->generation != generation));
        generation = p->generation;
        has_largest = 1;
        largest = p->pn;
        free(cleartext);
        free(buf);
        cleartext = buf = NULL;
    }
    OK(quicseal_tx_get_counters(tx, &counters));
    CHECK(counters.sealed == sealed && counters.dropped == 0);
done:
    quicseal_tx_free(tx);
    free(cleartext);
    free(buf);
    end_case();
}

/* Seals the packets as one GSO batch in place: each cleartext at a stride of gso_size, with
 * its tag's room after it, as a stack lays out its send buffer. */
static void check_gso_in_place(const flow *f) {
    quicseal_tx *tx = NULL;
    quicseal_result *results = NULL;
    quicseal_batch batch;
    uint8_t *buf = NULL, *expected = NULL, *cleartext = NULL;
    size_t i, expected_len = 0, len;
    begin_case(f->name, "GSO batch sealed in place");
    for (i = 0; i < f->npackets; i++) {
        const packet *p = &f->packets[i];
        CHECK(i + 1 == f->npackets || p->protected_.len == f->gso_size);
        cleartext = cleartext_of(p, &len);
        buf = xrealloc(buf, expected_len + p->protected_.len);
        memcpy(buf + expected_len, cleartext, len);
        memset(buf + expected_len + len, 0xee, QUICSEAL_TAG_LEN);
        free(cleartext);
        cleartext = NULL;
        expected = xrealloc(expected, expected_len + p->protected_.len);
        memcpy(expected + expected_len, p->protected_.data, p->protected_.len);
        expected_len += p->protected_.len;
    }
    OK(new_vector_tx(f, f->packets[0].pn > 0, f->packets[0].pn - 1, &tx));
    results = xrealloc(NULL, f->npackets * sizeof *results);
    memset(results, 0xff, f->npackets * sizeof *results); /* the library must overwrite them */
    OK(quicseal_tx_seal_gso_in_place(tx, buf, expected_len, f->gso_size, results, f->npackets,
                                     &batch));
    CHECK(batch.datagrams == f->npackets && batch.ok == f->npackets && batch.failed == 0);
    CHECK(batch.len == expected_len);
    CHECK(memcmp(buf, expected, expected_len) == 0);
    for (i = 0; i < f->npackets; i++) {
        const packet *p = &f->packets[i];
        CHECK(results[i].status == QUICSEAL_OK && results[i].len == p->protected_.len);
        CHECK(results[i].packet_number == p->pn && results[i].generation == p->generation);
    }
done:
    quicseal_tx_free(tx);
    free(results);
    free(buf);
    free(expected);
    free(cleartext);
    end_case();
}

/* A packet a receiver must drop, with the vector's expected error. */
static void check_negative(const flow *f, size_t index) {
    const negative *n = &f->negatives[index];
    quicseal_rx *rx = NULL;
    quicseal_config config = quicseal_config_default(f->dcid_len);
    quicseal_result result;
    quicseal_counters counters;
    quicseal_status status;
    uint8_t *buf = NULL;
    uint64_t g;
    char what[96];
    snprintf(what, sizeof what, "negative %u (%s)", (unsigned)index + 1, n->expect);
    begin_case(f->name, what);
    OK(quicseal_rx_new_from_secret(f->suite, f->secret.data, f->secret.len, &config, &rx));
    for (g = 0; g < n->generation; g++) {
        OK(quicseal_rx_advance_generation(rx));
    }
    if (n->has_largest) {
        OK(quicseal_rx_set_largest_received(rx, n->largest));
    }
    /* An empty datagram goes in as NULL with length 0, which the library accepts. */
    buf = n->protected_.len > 0 ? copy_of(&n->protected_) : NULL;
    status = quicseal_rx_open_in_place(rx, buf, n->protected_.len, &result);
    CHECK(strcmp(quicseal_status_name((int)status), n->expect) == 0);
    CHECK(result.status == status && result.len == 0 && !result.has_packet);
    OK(quicseal_rx_get_counters(rx, &counters));
    CHECK(counters.dropped == 1 && counters.opened == 0);
done:
    quicseal_rx_free(rx);
    free(buf);
    end_case();
}

static void check_flow(const flow *f) {
    size_t i;
    int explicit_keys_cover = f->nkeys > 0;
    for (i = 0; i < f->npackets; i++) {
        explicit_keys_cover = explicit_keys_cover && f->packets[i].generation < f->nkeys;
    }
    if (f->nkeys > 0) {
        check_keys(f);
    }
    if (f->npackets > 0) {
        check_seal_in_place(f);
    }
    if (f->npackets > 0 && f->gso_size > 0) {
        check_gso(f);
        check_gso_in_place(f);
    } else if (f->npackets > 0) {
        check_seal(f, 0);
        check_open(f, 0);
        if (explicit_keys_cover) {
            check_seal(f, 1);
            check_open(f, 1);
        }
    }
    for (i = 0; i < f->nnegatives; i++) {
        check_negative(f, i);
    }
}

/* ---------------------------------------------------------------------------------------
 * Cases on the boundary itself
 * ------------------------------------------------------------------------------------- */

static void check_status_strings(void) {
    static const quicseal_status all[] = {
        QUICSEAL_OK,
        QUICSEAL_MALFORMED,
        QUICSEAL_AUTH_FAILED,
        QUICSEAL_RESERVED_BITS,
        QUICSEAL_PACKET_NUMBER_REUSED,
        QUICSEAL_PACKET_NUMBER_MISMATCH,
        QUICSEAL_KEY_UNAVAILABLE,
        QUICSEAL_CONFIDENTIALITY_LIMIT,
        QUICSEAL_INTEGRITY_LIMIT,
        QUICSEAL_BUFFER_TOO_SMALL,
        QUICSEAL_INVALID_KEY_LENGTH,
        QUICSEAL_INVALID_CONFIG,
        QUICSEAL_UNKNOWN_SUITE,
        QUICSEAL_GSO_SIZE_TOO_SMALL,
        QUICSEAL_TOO_MANY_SEGMENTS,
        QUICSEAL_GSO_LAYOUT,
        QUICSEAL_UNKNOWN_CONNECTION_ID,
        QUICSEAL_TABLE_FULL,
        QUICSEAL_NULL_POINTER,
        QUICSEAL_INVALID_ARGUMENT,
        QUICSEAL_PANIC,
        QUICSEAL_INTERNAL_ERROR,
    };
    size_t i, j, n = sizeof all / sizeof all[0];
    begin_case("api", "status strings and names");
    CHECK(QUICSEAL_OK == 0);
    for (i = 0; i < n; i++) {
        const char *name = quicseal_status_name((int)all[i]);
        const char *text = quicseal_status_str((int)all[i]);
        CHECK(name != NULL && text != NULL && name[0] != '\0' && text[0] != '\0');
        CHECK(strcmp(name, "unknown") != 0);
        for (j = 0; j < i; j++) {
            CHECK(strcmp(name, quicseal_status_name((int)all[j])) != 0);
        }
    }
    CHECK(strcmp(quicseal_status_name(QUICSEAL_AUTH_FAILED), "auth_failed") == 0);
    CHECK(strcmp(quicseal_status_name(QUICSEAL_NULL_POINTER), "null_pointer") == 0);
    CHECK(strcmp(quicseal_status_name(-1), "unknown") == 0);
    CHECK(strcmp(quicseal_status_str(12345), "unknown status") == 0);
    CHECK(quicseal_version() != NULL && quicseal_version()[0] != '\0');
    CHECK(quicseal_suite_secret_len(QUICSEAL_TLS_AES_256_GCM_SHA384) == 48);
    CHECK(quicseal_suite_secret_len(QUICSEAL_TLS_CHACHA20_POLY1305_SHA256) == 32);
    CHECK(quicseal_suite_key_len(QUICSEAL_TLS_AES_128_GCM_SHA256) == 16);
    CHECK(quicseal_suite_key_len(0x1304) == 0 && quicseal_suite_secret_len(0) == 0);
done:
    end_case();
}

static void check_null_pointers(void) {
    quicseal_tx *tx = NULL, *never = (quicseal_tx *)&never;
    quicseal_rx *rx = NULL, *never_rx = (quicseal_rx *)&never_rx;
    quicseal_config config = quicseal_config_default(0);
    quicseal_result result, results[2];
    quicseal_batch batch;
    quicseal_tx_state tx_state;
    quicseal_rx_state rx_state;
    quicseal_counters counters;
    uint8_t buf[64], out[80];
    const uint16_t suite = QUICSEAL_TLS_AES_128_GCM_SHA256;
    begin_case("api", "NULL pointers are refused, never dereferenced");
    memset(buf, 0, sizeof buf);

    /* Constructors: a refused call leaves *out NULL. */
    EXPECT(quicseal_tx_new_from_secret(suite, NULL, 32, &config, &never),
           QUICSEAL_NULL_POINTER);
    CHECK(never == NULL);
    EXPECT(quicseal_tx_new_from_secret(suite, SECRET32, 32, NULL, &tx), QUICSEAL_NULL_POINTER);
    EXPECT(quicseal_tx_new_from_secret(suite, SECRET32, 32, &config, NULL),
           QUICSEAL_NULL_POINTER);
    EXPECT(quicseal_tx_new_from_keys(suite, NULL, 16, buf, 12, buf, 16, &config, &tx),
           QUICSEAL_NULL_POINTER);
    EXPECT(quicseal_rx_new_from_secret(suite, NULL, 32, &config, &never_rx),
           QUICSEAL_NULL_POINTER);
    CHECK(never_rx == NULL);
    EXPECT(quicseal_rx_new_from_keys(suite, buf, 16, NULL, 12, buf, 16, &config, &rx),
           QUICSEAL_NULL_POINTER);
    EXPECT(quicseal_rx_new_from_keys(suite, buf, 16, buf, 12, buf, 16, &config, NULL),
           QUICSEAL_NULL_POINTER);
    CHECK(tx == NULL && rx == NULL);

    /* A NULL handle, for every call that takes one. */
    EXPECT(quicseal_tx_install_next_keys(NULL, buf, 16, buf, 12), QUICSEAL_NULL_POINTER);
    EXPECT(quicseal_tx_seal(NULL, buf, 40, out, sizeof out, &result), QUICSEAL_NULL_POINTER);
    EXPECT(quicseal_tx_seal_numbered(NULL, 1, buf, 40, out, sizeof out, &result),
           QUICSEAL_NULL_POINTER);
    EXPECT(quicseal_tx_seal_gso(NULL, buf, 40, 60, out, sizeof out, results, 2, &batch),
           QUICSEAL_NULL_POINTER);
    EXPECT(quicseal_tx_seal_in_place(NULL, out, sizeof out, 40, &result), QUICSEAL_NULL_POINTER);
    EXPECT(quicseal_tx_seal_gso_in_place(NULL, out, sizeof out, 60, results, 2, &batch),
           QUICSEAL_NULL_POINTER);
    EXPECT(quicseal_tx_get_state(NULL, &tx_state), QUICSEAL_NULL_POINTER);
    EXPECT(quicseal_tx_get_counters(NULL, &counters), QUICSEAL_NULL_POINTER);
    EXPECT(quicseal_rx_install_next_keys(NULL, buf, 16, buf, 12), QUICSEAL_NULL_POINTER);
    EXPECT(quicseal_rx_retire_previous_keys(NULL), QUICSEAL_NULL_POINTER);
    EXPECT(quicseal_rx_advance_generation(NULL), QUICSEAL_NULL_POINTER);
    EXPECT(quicseal_rx_prepare_next_keys(NULL), QUICSEAL_NULL_POINTER);
    EXPECT(quicseal_rx_set_largest_received(NULL, 1), QUICSEAL_NULL_POINTER);
    EXPECT(quicseal_rx_clear_largest_received(NULL), QUICSEAL_NULL_POINTER);
    EXPECT(quicseal_rx_open(NULL, buf, 40, out, sizeof out, &result), QUICSEAL_NULL_POINTER);
    EXPECT(quicseal_rx_open_in_place(NULL, buf, 40, &result), QUICSEAL_NULL_POINTER);
    EXPECT(quicseal_rx_open_gro(NULL, buf, 40, 40, results, 2, &batch),
           QUICSEAL_NULL_POINTER);
    EXPECT(quicseal_rx_get_state(NULL, &rx_state), QUICSEAL_NULL_POINTER);
    EXPECT(quicseal_rx_get_counters(NULL, &counters), QUICSEAL_NULL_POINTER);
    quicseal_tx_free(NULL);
    quicseal_rx_free(NULL);

    /* NULL buffers with non-zero lengths, and NULL required outputs. */
    OK(quicseal_tx_new_from_secret(suite, SECRET32, 32, &config, &tx));
    OK(quicseal_rx_new_from_secret(suite, SECRET32, 32, &config, &rx));
    EXPECT(quicseal_tx_seal(tx, NULL, 40, out, sizeof out, &result), QUICSEAL_NULL_POINTER);
    EXPECT(quicseal_tx_seal(tx, buf, 40, NULL, 56, &result), QUICSEAL_NULL_POINTER);
    EXPECT(quicseal_tx_seal_gso(tx, buf, 40, 60, out, sizeof out, NULL, 2, &batch),
           QUICSEAL_NULL_POINTER);
    EXPECT(quicseal_tx_seal_in_place(tx, NULL, 56, 40, &result), QUICSEAL_NULL_POINTER);
    EXPECT(quicseal_tx_seal_gso_in_place(tx, NULL, 120, 60, results, 2, &batch),
           QUICSEAL_NULL_POINTER);
    EXPECT(quicseal_tx_seal_gso_in_place(tx, out, sizeof out, 60, NULL, 2, &batch),
           QUICSEAL_NULL_POINTER);
    EXPECT(quicseal_tx_install_next_keys(tx, NULL, 16, buf, 12), QUICSEAL_NULL_POINTER);
    EXPECT(quicseal_tx_get_state(tx, NULL), QUICSEAL_NULL_POINTER);
    EXPECT(quicseal_tx_get_counters(tx, NULL), QUICSEAL_NULL_POINTER);
    EXPECT(quicseal_rx_open_in_place(rx, NULL, 40, &result), QUICSEAL_NULL_POINTER);
    EXPECT(quicseal_rx_open(rx, buf, 40, NULL, 24, &result), QUICSEAL_NULL_POINTER);
    EXPECT(quicseal_rx_open_gro(rx, buf, 40, 40, NULL, 1, &batch), QUICSEAL_NULL_POINTER);
    EXPECT(quicseal_rx_get_state(rx, NULL), QUICSEAL_NULL_POINTER);
    EXPECT(quicseal_rx_get_counters(rx, NULL), QUICSEAL_NULL_POINTER);

    /* NULL with a zero length is an empty buffer; optional outputs may be NULL. */
    EXPECT(quicseal_rx_open_in_place(rx, NULL, 0, NULL), QUICSEAL_MALFORMED);
    OK(quicseal_tx_seal_gso(tx, NULL, 0, 60, NULL, 0, NULL, 0, NULL));
    OK(quicseal_tx_seal_gso_in_place(tx, NULL, 0, 60, NULL, 0, NULL));
    /* An empty GRO buffer is one empty datagram: it needs a result slot. */
    EXPECT(quicseal_rx_open_gro(rx, NULL, 0, 40, NULL, 0, &batch), QUICSEAL_BUFFER_TOO_SMALL);
    /* Given one, it is refused as MALFORMED there, whatever the segment size. */
    OK(quicseal_rx_open_gro(rx, NULL, 0, 40, results, 1, &batch));
    CHECK(batch.datagrams == 1 && batch.ok == 0 && batch.failed == 1 && batch.len == 0);
    CHECK(results[0].status == QUICSEAL_MALFORMED && results[0].len == 0);
    OK(quicseal_rx_open_gro(rx, NULL, 0, 0, results, 2, &batch));
    CHECK(batch.datagrams == 1 && results[0].status == QUICSEAL_MALFORMED);

    /* Nothing above was counted as a packet. */
    OK(quicseal_tx_get_counters(tx, &counters));
    CHECK(counters.sealed == 0 && counters.dropped == 0);
    OK(quicseal_rx_get_counters(rx, &counters));
    CHECK(counters.malformed == 3 && counters.dropped == 3);
done:
    quicseal_tx_free(tx);
    quicseal_rx_free(rx);
    end_case();
}

static void check_arguments(void) {
    quicseal_tx *tx = NULL;
    quicseal_rx *rx = NULL;
    quicseal_config config = quicseal_config_default(4);
    quicseal_result result, results[4];
    quicseal_counters counters;
    uint8_t keys[32], buf[256];
    size_t len;
    const uint16_t suite = QUICSEAL_TLS_AES_128_GCM_SHA256;
    begin_case("api", "arguments are checked before anything is done");
    memset(keys, 7, sizeof keys);
    EXPECT(quicseal_tx_new_from_secret(0x1304, SECRET32, 32, &config, &tx),
           QUICSEAL_UNKNOWN_SUITE);
    EXPECT(quicseal_tx_new_from_secret(suite, SECRET32, 31, &config, &tx),
           QUICSEAL_INVALID_KEY_LENGTH);
    EXPECT(quicseal_rx_new_from_secret(QUICSEAL_TLS_AES_256_GCM_SHA384, SECRET32, 32, &config,
                                       &rx),
           QUICSEAL_INVALID_KEY_LENGTH);
    EXPECT(quicseal_rx_new_from_keys(suite, keys, 16, keys, 11, keys, 16, &config, &rx),
           QUICSEAL_INVALID_KEY_LENGTH);
    EXPECT(quicseal_tx_new_from_keys(suite, keys, 16, keys, 12, keys, 32, &config, &tx),
           QUICSEAL_INVALID_KEY_LENGTH);
    config.dcid_len = 21;
    EXPECT(new_tx(21, &tx), QUICSEAL_INVALID_CONFIG);
    EXPECT(quicseal_rx_new_from_secret(suite, SECRET32, 32, &config, &rx),
           QUICSEAL_INVALID_CONFIG);
    config = quicseal_config_default(4);
    config.flags = 1u << 7;
    EXPECT(quicseal_tx_new_from_secret(suite, SECRET32, 32, &config, &tx),
           QUICSEAL_INVALID_CONFIG);
    config = quicseal_config_default(4);
    config.max_segments = 0;
    EXPECT(quicseal_rx_new_from_secret(suite, SECRET32, 32, &config, &rx),
           QUICSEAL_INVALID_CONFIG);
    CHECK(tx == NULL && rx == NULL);

    OK(new_tx(4, &tx));
    OK(new_rx(4, &rx));
    EXPECT(quicseal_tx_install_next_keys(tx, keys, 32, keys, 12), QUICSEAL_INVALID_KEY_LENGTH);
    len = make_packet(buf, 4, 0, 1, 40);
    /* quicseal_tx_seal with dst overlapping src is refused (quicseal_tx_seal_in_place is
     * the call for that), as is a result in the output. */
    EXPECT(quicseal_tx_seal(tx, buf, len, buf, len + QUICSEAL_TAG_LEN, &result),
           QUICSEAL_INVALID_ARGUMENT);
    EXPECT(quicseal_tx_seal(tx, buf, len, buf + len - 1, len + QUICSEAL_TAG_LEN, &result),
           QUICSEAL_INVALID_ARGUMENT);
    OK(quicseal_tx_seal(tx, buf, len, buf + 128, 128, &results[0]));
    EXPECT(quicseal_rx_open(rx, buf + 128, len + QUICSEAL_TAG_LEN, buf + 120, len, &result),
           QUICSEAL_INVALID_ARGUMENT);
    EXPECT(quicseal_tx_seal(tx, buf, len, buf + len, len + QUICSEAL_TAG_LEN, NULL),
           QUICSEAL_PACKET_NUMBER_REUSED);
    /* Too small an output is the core's BUFFER_TOO_SMALL, counted as rejected. */
    len = make_packet(buf, 4, 0, 2, 40);
    EXPECT(quicseal_tx_seal(tx, buf, len, buf + 128, len + QUICSEAL_TAG_LEN - 1, &result),
           QUICSEAL_BUFFER_TOO_SMALL);
    CHECK(result.status == QUICSEAL_BUFFER_TOO_SMALL && result.len == 0);
    /* An explicit packet number must match the header's truncated one. */
    EXPECT(quicseal_tx_seal_numbered(tx, 0x103, buf, len, buf + 128, 128, &result),
           QUICSEAL_PACKET_NUMBER_MISMATCH);
    OK(quicseal_tx_seal_numbered(tx, 0x102, buf, len, buf + 128, 128, &result));
    CHECK(result.packet_number == 0x102);
    OK(quicseal_tx_get_counters(tx, &counters));
    CHECK(counters.sealed == 2 && counters.rejected == 3);
done:
    quicseal_tx_free(tx);
    quicseal_rx_free(rx);
    end_case();
}

static void check_batches(void) {
    enum { GSO = 100, STRIDE = GSO - QUICSEAL_TAG_LEN, DCID = 8 };
    quicseal_tx *tx = NULL, *limited = NULL;
    quicseal_rx *rx = NULL;
    quicseal_config config = quicseal_config_default(DCID);
    quicseal_result results[4], scratch[16];
    quicseal_batch batch;
    quicseal_counters counters;
    quicseal_tx_state state;
    uint8_t src[4 * STRIDE], dst[4 * GSO], plain[4 * STRIDE];
    size_t i;
    begin_case("api", "GSO and GRO batches: refusals and one bad datagram among good ones");
    for (i = 0; i < 4; i++) {
        make_packet(src + i * STRIDE, DCID, 0, (uint8_t)(i + 1), STRIDE - 2 - DCID);
    }
    memcpy(plain, src, sizeof plain);
    src[STRIDE] |= 0x10; /* a reserved bit in the second packet */
    OK(new_tx(DCID, &tx));
    OK(quicseal_tx_get_state(tx, &state));
    CHECK(state.min_gso_size == 1 + DCID + 4 + 16 + QUICSEAL_TAG_LEN);
    EXPECT(quicseal_tx_seal_gso(tx, src, sizeof src, state.min_gso_size - 1, dst, sizeof dst,
                                results, 4, &batch),
           QUICSEAL_GSO_SIZE_TOO_SMALL);
    EXPECT(quicseal_tx_seal_gso(tx, src, sizeof src, 0, dst, sizeof dst, results, 4, &batch),
           QUICSEAL_GSO_SIZE_TOO_SMALL);
    EXPECT(quicseal_tx_seal_gso(tx, src, sizeof src, GSO, dst, sizeof dst, results, 3, &batch),
           QUICSEAL_BUFFER_TOO_SMALL);
    EXPECT(quicseal_tx_seal_gso(tx, src, sizeof src, GSO, dst, sizeof dst - 1, results, 4,
                                &batch),
           QUICSEAL_BUFFER_TOO_SMALL);
    /* dst overlapping src (quicseal_tx_seal_gso_in_place is the call for that), or results
     * inside the output, is refused. */
    EXPECT(quicseal_tx_seal_gso(tx, src, sizeof src, GSO, src, sizeof src, results, 4, &batch),
           QUICSEAL_INVALID_ARGUMENT);
    CHECK(sizeof scratch >= sizeof dst);
    EXPECT(quicseal_tx_seal_gso(tx, src, sizeof src, GSO, (uint8_t *)scratch, sizeof dst,
                                scratch + 1, 4, &batch),
           QUICSEAL_INVALID_ARGUMENT);
    config.max_segments = 3;
    OK(quicseal_tx_new_from_secret(QUICSEAL_TLS_AES_128_GCM_SHA256, SECRET32, 32, &config,
                                   &limited));
    EXPECT(quicseal_tx_seal_gso(limited, src, sizeof src, GSO, dst, sizeof dst, results, 4,
                                &batch),
           QUICSEAL_TOO_MANY_SEGMENTS);
    OK(quicseal_tx_get_counters(tx, &counters));
    CHECK(counters.sealed == 0 && counters.dropped == 0);

    OK(quicseal_tx_seal_gso(tx, src, sizeof src, GSO, dst, sizeof dst, results, 4, &batch));
    CHECK(batch.datagrams == 4 && batch.ok == 3 && batch.failed == 1);
    CHECK(batch.len == sizeof dst);
    CHECK(results[1].status == QUICSEAL_RESERVED_BITS && results[1].len == 0);
    CHECK(results[0].len == GSO && results[2].len == GSO && results[3].packet_number == 4);
    OK(quicseal_tx_get_counters(tx, &counters));
    CHECK(counters.sealed == 3 && counters.malformed == 1);

    /* Receive the three good datagrams as one GRO buffer, with a forgery in the middle. */
    memcpy(dst + GSO, dst, GSO);
    dst[GSO + 50] ^= 1;
    OK(new_rx(DCID, &rx));
    EXPECT(quicseal_rx_open_gro(rx, dst, sizeof dst, 0, results, 4, &batch),
           QUICSEAL_INVALID_CONFIG);
    EXPECT(quicseal_rx_open_gro(rx, dst, sizeof dst, GSO, results, 3, &batch),
           QUICSEAL_BUFFER_TOO_SMALL);
    EXPECT(quicseal_rx_open_gro(rx, dst, sizeof dst, GSO / 2, results, 4, &batch),
           QUICSEAL_BUFFER_TOO_SMALL);
    OK(quicseal_rx_open_gro(rx, dst, sizeof dst, GSO, results, 4, &batch));
    CHECK(batch.datagrams == 4 && batch.ok == 3 && batch.failed == 1 && batch.len == sizeof dst);
    CHECK(results[1].status == QUICSEAL_AUTH_FAILED);
    for (i = 0; i < 4; i++) {
        if (i != 1) {
            CHECK(results[i].len == STRIDE && results[i].packet_number == i + 1);
            CHECK(memcmp(dst + i * GSO, plain + i * STRIDE, STRIDE) == 0);
        }
    }
    for (i = GSO + 2 + DCID; i < 2 * GSO - QUICSEAL_TAG_LEN; i++) {
        CHECK(dst[i] == 0); /* no plaintext of the forgery */
    }
    OK(quicseal_rx_get_counters(rx, &counters));
    CHECK(counters.opened == 3 && counters.auth_failures == 1 && counters.dropped == 1);
done:
    quicseal_tx_free(tx);
    quicseal_tx_free(limited);
    quicseal_rx_free(rx);
    end_case();
}

static void check_key_updates_and_limits(void) {
    enum { DCID = 4 };
    quicseal_tx *tx = NULL, *explicit_tx = NULL;
    quicseal_rx *rx = NULL, *explicit_rx = NULL, *strict = NULL, *late = NULL;
    quicseal_config config = quicseal_config_default(DCID);
    quicseal_result result;
    quicseal_tx_state tx_state;
    quicseal_rx_state rx_state;
    quicseal_counters counters;
    uint8_t keys[16], p[5][64], sealed[5][80], buf[80];
    size_t len[5], i;
    begin_case("api", "key updates, previous keys, confidentiality and integrity limits");
    memset(keys, 9, sizeof keys);

    /* A sender flips the key phase at packet 3; packet 2 reaches the receiver late. */
    OK(new_tx(DCID, &tx));
    for (i = 0; i < 5; i++) {
        len[i] = make_packet(p[i], DCID, i >= 2, (uint8_t)(i + 1), 30);
        OK(quicseal_tx_seal(tx, p[i], len[i], sealed[i], sizeof sealed[i], &result));
        CHECK(result.generation == (i >= 2) && result.key_update == (i == 2));
    }
    OK(new_rx(DCID, &rx));
    {
        static const size_t order[] = {0, 2, 1, 3};
        static const uint64_t generation[] = {0, 1, 0, 1};
        for (i = 0; i < 4; i++) {
            memcpy(buf, sealed[order[i]], len[order[i]] + QUICSEAL_TAG_LEN);
            OK(quicseal_rx_open_in_place(rx, buf, len[order[i]] + QUICSEAL_TAG_LEN, &result));
            CHECK(result.generation == generation[i] && result.packet_number == order[i] + 1);
        }
    }
    OK(quicseal_rx_get_state(rx, &rx_state));
    CHECK(rx_state.generation == 1 && rx_state.key_phase && rx_state.has_previous_keys);
    CHECK(rx_state.has_largest_received && rx_state.largest_received == 4);
    /* The key update used the next keys up; they are derived again off the receive path. */
    CHECK(!rx_state.next_keys_ready);
    OK(quicseal_rx_prepare_next_keys(rx));
    OK(quicseal_rx_get_state(rx, &rx_state));
    CHECK(rx_state.next_keys_ready && rx_state.generation == 1);
    OK(quicseal_rx_prepare_next_keys(rx));
    OK(quicseal_rx_retire_previous_keys(rx));
    OK(quicseal_rx_get_state(rx, &rx_state));
    CHECK(!rx_state.has_previous_keys);

    /* A packet number far behind the largest received decodes near the largest: the nonce is
     * wrong, so it fails authentication, is counted, and moves nothing. */
    OK(new_rx(DCID, &late));
    OK(quicseal_rx_set_largest_received(late, ((uint64_t)1 << 62) - 1));
    memcpy(buf, sealed[0], len[0] + QUICSEAL_TAG_LEN);
    EXPECT(quicseal_rx_open_in_place(late, buf, len[0] + QUICSEAL_TAG_LEN, &result),
           QUICSEAL_AUTH_FAILED);
    OK(quicseal_rx_get_counters(late, &counters));
    CHECK(counters.auth_failures == 1 && counters.opened == 0);
    OK(quicseal_rx_get_state(late, &rx_state));
    CHECK(rx_state.largest_received == ((uint64_t)1 << 62) - 1);

    /* Explicit keys: no key update until the next keys are installed. */
    OK(quicseal_tx_new_from_keys(QUICSEAL_TLS_AES_128_GCM_SHA256, keys, 16, keys, 12, keys, 16,
                                 &config, &explicit_tx));
    OK(quicseal_tx_get_state(explicit_tx, &tx_state));
    CHECK(!tx_state.next_keys_ready);
    EXPECT(quicseal_tx_seal(explicit_tx, p[2], len[2], buf, sizeof buf, &result),
           QUICSEAL_KEY_UNAVAILABLE);
    OK(quicseal_tx_get_counters(explicit_tx, &counters));
    CHECK(counters.key_unavailable == 1);
    OK(quicseal_rx_new_from_keys(QUICSEAL_TLS_AES_128_GCM_SHA256, keys, 16, keys, 12, keys, 16,
                                 &config, &explicit_rx));
    EXPECT(quicseal_rx_advance_generation(explicit_rx), QUICSEAL_KEY_UNAVAILABLE);
    OK(quicseal_rx_prepare_next_keys(explicit_rx));
    OK(quicseal_rx_get_state(explicit_rx, &rx_state));
    CHECK(!rx_state.next_keys_ready);
    keys[0] ^= 1;
    OK(quicseal_tx_install_next_keys(explicit_tx, keys, 16, keys, 12));
    OK(quicseal_tx_seal(explicit_tx, p[2], len[2], buf, sizeof buf, &result));
    CHECK(result.generation == 1 && result.key_update);
    EXPECT(quicseal_rx_open_in_place(explicit_rx, buf, len[2] + QUICSEAL_TAG_LEN, &result),
           QUICSEAL_KEY_UNAVAILABLE);
    OK(quicseal_tx_seal(explicit_tx, p[3], len[3], buf, sizeof buf, &result));
    OK(quicseal_rx_install_next_keys(explicit_rx, keys, 16, keys, 12));
    OK(quicseal_rx_open_in_place(explicit_rx, buf, len[3] + QUICSEAL_TAG_LEN, &result));
    CHECK(result.generation == 1 && result.key_update);
    OK(quicseal_rx_advance_generation(rx));
    OK(quicseal_rx_get_state(rx, &rx_state));
    CHECK(rx_state.generation == 2 && !rx_state.key_phase);

    /* Confidentiality limit of 2 packets per generation, due 1 before. */
    quicseal_tx_free(tx);
    tx = NULL;
    config.flags = QUICSEAL_CONFIG_LIMITS;
    config.confidentiality_limit = 2;
    config.integrity_limit = 2;
    config.key_update_margin = 1;
    OK(quicseal_tx_new_from_secret(QUICSEAL_TLS_AES_128_GCM_SHA256, SECRET32, 32, &config,
                                   &tx));
    OK(quicseal_tx_seal(tx, p[0], len[0], buf, sizeof buf, &result));
    OK(quicseal_tx_get_state(tx, &tx_state));
    CHECK(tx_state.key_update_due && tx_state.sealed_in_generation == 1);
    OK(quicseal_tx_seal(tx, p[1], len[1], buf, sizeof buf, &result));
    p[4][0] &= (uint8_t)~0x04; /* packet 5 in the old key phase */
    EXPECT(quicseal_tx_seal(tx, p[4], len[4], buf, sizeof buf, &result),
           QUICSEAL_CONFIDENTIALITY_LIMIT);
    OK(quicseal_tx_seal(tx, p[2], len[2], buf, sizeof buf, &result));
    OK(quicseal_tx_get_state(tx, &tx_state));
    CHECK(tx_state.generation == 1 && tx_state.sealed_in_generation == 1);
    OK(quicseal_tx_get_counters(tx, &counters));
    CHECK(counters.dropped_for_limits == 1 && counters.sealed == 3 && counters.key_updates == 1);

    /* Integrity limit of 2 forgeries: then even genuine packets are refused. */
    OK(quicseal_rx_new_from_secret(QUICSEAL_TLS_AES_128_GCM_SHA256, SECRET32, 32, &config,
                                   &strict));
    for (i = 0; i < 2; i++) {
        memcpy(buf, sealed[0], len[0] + QUICSEAL_TAG_LEN);
        buf[len[0] + QUICSEAL_TAG_LEN - 1] ^= 0x80;
        EXPECT(quicseal_rx_open_in_place(strict, buf, len[0] + QUICSEAL_TAG_LEN, &result),
               QUICSEAL_AUTH_FAILED);
    }
    OK(quicseal_rx_get_state(strict, &rx_state));
    CHECK(rx_state.integrity_limit_reached);
    memcpy(buf, sealed[0], len[0] + QUICSEAL_TAG_LEN);
    EXPECT(quicseal_rx_open_in_place(strict, buf, len[0] + QUICSEAL_TAG_LEN, &result),
           QUICSEAL_INTEGRITY_LIMIT);
    OK(quicseal_rx_get_counters(strict, &counters));
    CHECK(counters.auth_failures == 2 && counters.dropped_for_limits == 1);
done:
    quicseal_tx_free(tx);
    quicseal_tx_free(explicit_tx);
    quicseal_rx_free(rx);
    quicseal_rx_free(explicit_rx);
    quicseal_rx_free(strict);
    quicseal_rx_free(late);
    end_case();
}

static void check_passthrough(void) {
    enum { DCID = 8 };
    quicseal_tx *tx = NULL;
    quicseal_rx *rx = NULL;
    quicseal_result result;
    quicseal_counters counters;
    uint8_t datagram[24 + 60], sealed[sizeof datagram + QUICSEAL_TAG_LEN];
    uint8_t opened[sizeof datagram];
    begin_case("api", "coalesced long-header packets pass through both ways");
    make_handshake(datagram, 24);
    make_packet(datagram + 24, DCID, 0, 1, 60 - 2 - DCID);
    OK(new_tx(DCID, &tx));
    OK(quicseal_tx_seal(tx, datagram, sizeof datagram, sealed, sizeof sealed, &result));
    CHECK(result.len == sizeof sealed && result.passthrough_len == 24 && result.has_packet);
    CHECK(memcmp(sealed, datagram, 24) == 0);
    OK(new_rx(DCID, &rx));
    OK(quicseal_rx_open(rx, sealed, sizeof sealed, opened, sizeof opened, &result));
    CHECK(result.len == sizeof datagram && result.passthrough_len == 24);
    CHECK(memcmp(opened, datagram, sizeof datagram) == 0);
    /* A datagram of long-header packets only is copied as it is. */
    OK(quicseal_tx_seal(tx, datagram, 24, sealed, 24, &result));
    CHECK(result.len == 24 && result.passthrough_len == 24 && !result.has_packet);
    OK(quicseal_tx_get_counters(tx, &counters));
    CHECK(counters.passed_through == 2 && counters.sealed == 1);
done:
    quicseal_tx_free(tx);
    quicseal_rx_free(rx);
    end_case();
}

static void check_in_place(void) {
    enum { GSO = 100, DCID = 8, HANDSHAKE = 40 };
    quicseal_tx *tx = NULL, *copying = NULL, *limited = NULL;
    quicseal_rx *rx = NULL;
    quicseal_config config = quicseal_config_default(DCID);
    quicseal_result result, results[4], scratch[16];
    quicseal_batch batch;
    quicseal_counters counters;
    quicseal_tx_state state;
    uint8_t buf[4 * GSO], before[sizeof buf], copied[sizeof buf], plain[sizeof buf];
    size_t len, i;
    begin_case("api", "sealing in place: one datagram, GSO batches, refusals");
    memset(buf, 0, sizeof buf);
    OK(new_tx(DCID, &tx));
    OK(new_tx(DCID, &copying));
    OK(new_rx(DCID, &rx));

    /* One datagram: the same bytes as sealing into another buffer, and it opens. */
    len = make_packet(buf, DCID, 0, 1, 50);
    memcpy(plain, buf, len);
    OK(quicseal_tx_seal(copying, plain, len, copied, sizeof copied, &result));
    OK(quicseal_tx_seal_in_place(tx, buf, len + QUICSEAL_TAG_LEN, len, &result));
    CHECK(result.len == len + QUICSEAL_TAG_LEN && result.has_packet);
    CHECK(result.packet_number == 1);
    CHECK(memcmp(buf, copied, result.len) == 0);
    OK(quicseal_rx_open_in_place(rx, buf, result.len, &result));
    CHECK(result.len == len && memcmp(buf, plain, len) == 0);

    /* No room for the tag, or a datagram past the buffer: BUFFER_TOO_SMALL, buf untouched. */
    len = make_packet(buf, DCID, 0, 2, 50);
    memcpy(before, buf, sizeof buf);
    EXPECT(quicseal_tx_seal_in_place(tx, buf, len + QUICSEAL_TAG_LEN - 1, len, &result),
           QUICSEAL_BUFFER_TOO_SMALL);
    CHECK(result.status == QUICSEAL_BUFFER_TOO_SMALL && result.len == 0);
    EXPECT(quicseal_tx_seal_in_place(tx, buf, len - 1, len, &result),
           QUICSEAL_BUFFER_TOO_SMALL);
    CHECK(memcmp(buf, before, sizeof buf) == 0);
    /* A result inside the buffer is refused before anything is done. */
    EXPECT(quicseal_tx_seal_in_place(tx, (uint8_t *)scratch, sizeof scratch, len, scratch + 1),
           QUICSEAL_INVALID_ARGUMENT);
    /* Room to spare is fine: the sealed datagram is the first result.len bytes. */
    OK(quicseal_tx_seal_in_place(tx, buf, sizeof buf, len, &result));
    CHECK(result.len == len + QUICSEAL_TAG_LEN && result.packet_number == 2);
    CHECK(memcmp(buf + result.len, before + result.len, sizeof buf - result.len) == 0);
    len = make_packet(buf, DCID, 0, 2, 50);
    EXPECT(quicseal_tx_seal_in_place(tx, buf, sizeof buf, len, NULL),
           QUICSEAL_PACKET_NUMBER_REUSED);

    /* Long-header packets in front stay as they are; alone, they need no room for a tag. */
    make_handshake(buf, HANDSHAKE);
    len = HANDSHAKE + make_packet(buf + HANDSHAKE, DCID, 0, 3, 30);
    memcpy(before, buf, len);
    OK(quicseal_tx_seal_in_place(tx, buf, len + QUICSEAL_TAG_LEN, len, &result));
    CHECK(result.len == len + QUICSEAL_TAG_LEN && result.passthrough_len == HANDSHAKE);
    CHECK(memcmp(buf, before, HANDSHAKE) == 0);
    OK(quicseal_tx_seal_in_place(tx, buf, HANDSHAKE, HANDSHAKE, &result));
    CHECK(result.len == HANDSHAKE && !result.has_packet && memcmp(buf, before, HANDSHAKE) == 0);
    OK(quicseal_tx_get_counters(tx, &counters));
    CHECK(counters.sealed == 3 && counters.passed_through == 2 && counters.rejected == 3);

    /* A GSO batch laid out as it will be sent; the third datagram holds a long-header packet
     * only, which gains no tag and would leave a hole: GSO_LAYOUT, and the others go on. */
    for (i = 0; i < 4; i++) {
        make_packet(buf + i * GSO, DCID, 0, (uint8_t)(i + 4),
                    GSO - QUICSEAL_TAG_LEN - 2 - DCID);
    }
    make_handshake(buf + 2 * GSO, GSO - QUICSEAL_TAG_LEN);
    memcpy(before, buf, sizeof buf);
    OK(quicseal_tx_get_state(tx, &state));
    EXPECT(quicseal_tx_seal_gso_in_place(tx, buf, sizeof buf, state.min_gso_size - 1, results,
                                         4, &batch),
           QUICSEAL_GSO_SIZE_TOO_SMALL);
    EXPECT(quicseal_tx_seal_gso_in_place(tx, buf, sizeof buf, 0, results, 4, &batch),
           QUICSEAL_GSO_SIZE_TOO_SMALL);
    EXPECT(quicseal_tx_seal_gso_in_place(tx, buf, sizeof buf, GSO, results, 3, &batch),
           QUICSEAL_BUFFER_TOO_SMALL);
    EXPECT(quicseal_tx_seal_gso_in_place(tx, buf, 3 * GSO + QUICSEAL_TAG_LEN, GSO, results, 4,
                                         &batch),
           QUICSEAL_GSO_LAYOUT);
    CHECK(sizeof scratch >= sizeof buf);
    EXPECT(quicseal_tx_seal_gso_in_place(tx, (uint8_t *)scratch, sizeof buf, GSO, scratch + 1,
                                         4, &batch),
           QUICSEAL_INVALID_ARGUMENT);
    config.max_segments = 3;
    OK(quicseal_tx_new_from_secret(QUICSEAL_TLS_AES_128_GCM_SHA256, SECRET32, 32, &config,
                                   &limited));
    EXPECT(quicseal_tx_seal_gso_in_place(limited, buf, sizeof buf, GSO, results, 4, &batch),
           QUICSEAL_TOO_MANY_SEGMENTS);
    CHECK(memcmp(buf, before, sizeof buf) == 0);
    memset(results, 0xff, sizeof results);
    OK(quicseal_tx_seal_gso_in_place(tx, buf, sizeof buf, GSO, results, 4, &batch));
    CHECK(batch.datagrams == 4 && batch.ok == 3 && batch.failed == 1);
    CHECK(results[2].status == QUICSEAL_GSO_LAYOUT && results[2].len == 0);
    CHECK(memcmp(buf + 2 * GSO, before + 2 * GSO, GSO) == 0);
    for (i = 0; i < 4; i++) {
        if (i != 2) {
            CHECK(results[i].status == QUICSEAL_OK && results[i].len == GSO);
            CHECK(results[i].packet_number == i + 4);
            OK(quicseal_rx_open_in_place(rx, buf + i * GSO, GSO, &result));
            CHECK(result.len == GSO - QUICSEAL_TAG_LEN && result.packet_number == i + 4);
            CHECK(memcmp(buf + i * GSO, before + i * GSO, result.len) == 0);
        }
    }
    OK(quicseal_tx_get_counters(tx, &counters));
    CHECK(counters.sealed == 6 && counters.rejected == 4);
done:
    quicseal_tx_free(tx);
    quicseal_tx_free(copying);
    quicseal_tx_free(limited);
    quicseal_rx_free(rx);
    end_case();
}

int main(int argc, char **argv) {
    FILE *in;
    flow f;
    unsigned line_number = 0, flows = 0;
    int status;
    if (argc == 3 && strcmp(argv[1], "-q") == 0) {
        quiet = 1;
        argv++;
        argc--;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: %s [-q] <vectors.txt>\n", argv[0]);
        return 2;
    }
    in = fopen(argv[1], "r");
    if (in == NULL) {
        perror(argv[1]);
        return 2;
    }
    printf("quicseal %s C ABI\n", quicseal_version());
    check_status_strings();
    check_null_pointers();
    check_arguments();
    check_batches();
    check_key_updates_and_limits();
    check_passthrough();
    check_in_place();
    while ((status = read_flow(in, &f, &line_number)) == 1) {
        flows++;
        check_flow(&f);
        free_flow(&f);
    }
    free_flow(&f);
    fclose(in);
    if (status < 0 || flows == 0) {
        failed_count++;
        printf("FAIL    %s: could not read the vectors (%u flows)\n", argv[1], flows);
    }
    printf("%u passed, %u failed\n", passed_count, failed_count);
    return failed_count == 0 ? 0 : 1;
}
