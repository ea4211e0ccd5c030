// SPDX-License-Identifier: GPL-2.0
/*
 * /proc/net/quicseal_bench (root only): the module's backend beside the kernel's own AEADs,
 * `gcm(aes)` and `rfc7539(chacha20,poly1305)`, on the same 1350-byte datagrams.
 *
 * Reading it first cross-checks, per suite, one datagram sealed by the module against the
 * kernel's AEAD under the same key and nonce (ciphertext and tag byte for byte; the kernel
 * opens the module's ciphertext, the module opens its own), on any machine. Then, unless the
 * CPU is QEMU's TCG emulation (timings there mean nothing), it times sealing and opening
 * 64-datagram rounds through both and prints ns per datagram, best of the rounds.
 *
 * Keys: the traffic secrets of RFC 9001 A.1 (AES-128-GCM, client Initial) and A.5
 * (ChaCha20-Poly1305), and of vectors/aes256gcm-dcid8.json generation 0 (AES-256-GCM, derived
 * by ring), with the key and IV those documents give: the kernel's AEAD gets them as they
 * are, the module derives its own from the secret.
 */
#define pr_fmt(fmt) "quicseal: " fmt

#include <linux/module.h>
#include <linux/slab.h>
#include <linux/scatterlist.h>
#include <linux/seq_file.h>
#include <linux/ktime.h>
#include <crypto/aead.h>
#include <asm/processor.h>
#include <asm/cpufeature.h>

#include "quicseal_shim.h"

#define QS_BENCH_LEN 1350 /* datagram on the wire */
#define QS_BENCH_HEADER 11 /* 0x41, 8-byte DCID, 2-byte packet number */
#define QS_BENCH_PAYLOAD (QS_BENCH_LEN - QS_BENCH_HEADER - QUICSEAL_TAG_LEN)
#define QS_BENCH_BATCH 64
#define QS_BENCH_ROUNDS 25

static bool bench_under_tcg;
module_param(bench_under_tcg, bool, 0644);
MODULE_PARM_DESC(bench_under_tcg, "for tests: run one timing round even under QEMU's TCG (the numbers mean nothing)");

struct qs_bench_suite {
	u16 code;
	const char *name;
	const char *kernel_alg;
	u8 secret_len, key_len;
	u8 secret[48], key[32], iv[12];
};

static const struct qs_bench_suite qs_bench_suites[] = {
	{ QUICSEAL_TLS_AES_128_GCM_SHA256, "AES-128-GCM", "gcm(aes)", 32, 16,
	  { 0xc0, 0x0c, 0xf1, 0x51, 0xca, 0x5b, 0xe0, 0x75, 0xed, 0x0e, 0xbf, 0xb5, 0xc8, 0x03, 0x23, 0xc4,
	    0x2d, 0x6b, 0x7d, 0xb6, 0x78, 0x81, 0x28, 0x9a, 0xf4, 0x00, 0x8f, 0x1f, 0x6c, 0x35, 0x7a, 0xea },
	  { 0x1f, 0x36, 0x96, 0x13, 0xdd, 0x76, 0xd5, 0x46, 0x77, 0x30, 0xef, 0xcb, 0xe3, 0xb1, 0xa2, 0x2d },
	  { 0xfa, 0x04, 0x4b, 0x2f, 0x42, 0xa3, 0xfd, 0x3b, 0x46, 0xfb, 0x25, 0x5c } },
	{ QUICSEAL_TLS_AES_256_GCM_SHA384, "AES-256-GCM", "gcm(aes)", 48, 32,
	  { 0x60, 0x31, 0x83, 0x15, 0x96, 0xe1, 0x34, 0x42, 0x12, 0xa7, 0xfa, 0xf9, 0xfd, 0x3c, 0x3e, 0xa8,
	    0x70, 0xcd, 0x58, 0x2b, 0x48, 0xbf, 0x7d, 0xee, 0xde, 0x30, 0xf9, 0x59, 0xc7, 0xfa, 0x26, 0xa1,
	    0x51, 0x33, 0xec, 0x64, 0xd1, 0x08, 0x7b, 0x3d, 0x5d, 0xad, 0x0c, 0xec, 0x5d, 0xc1, 0x95, 0x8a },
	  { 0x24, 0xba, 0x7f, 0x23, 0xed, 0xb2, 0x1c, 0x55, 0x6d, 0x5f, 0xa4, 0xb6, 0x3c, 0xe6, 0x9f, 0x1d,
	    0xa0, 0x9a, 0xfd, 0x4b, 0x7d, 0xc5, 0xf6, 0x54, 0x32, 0x21, 0x3e, 0x7b, 0xec, 0xf6, 0x57, 0xf1 },
	  { 0x5c, 0x3e, 0x02, 0x46, 0xa6, 0x4a, 0xca, 0x9f, 0xb5, 0xfa, 0x9a, 0xce } },
	{ QUICSEAL_TLS_CHACHA20_POLY1305_SHA256, "ChaCha20-Poly1305", "rfc7539(chacha20,poly1305)", 32, 32,
	  { 0x9a, 0xc3, 0x12, 0xa7, 0xf8, 0x77, 0x46, 0x8e, 0xbe, 0x69, 0x42, 0x27, 0x48, 0xad, 0x00, 0xa1,
	    0x54, 0x43, 0xf1, 0x82, 0x03, 0xa0, 0x7d, 0x60, 0x60, 0xf6, 0x88, 0xf3, 0x0f, 0x21, 0x63, 0x2b },
	  { 0xc6, 0xd9, 0x8f, 0xf3, 0x44, 0x1c, 0x3f, 0xe1, 0xb2, 0x18, 0x20, 0x94, 0xf6, 0x9c, 0xaa, 0x2e,
	    0xd4, 0xb7, 0x16, 0xb6, 0x54, 0x88, 0x96, 0x0a, 0x7a, 0x98, 0x49, 0x79, 0xfb, 0x23, 0xe1, 0xc8 },
	  { 0xe0, 0x45, 0x9b, 0x34, 0x74, 0xbd, 0xd0, 0xe4, 0x4a, 0x41, 0xc1, 0x44 } },
};

/* QEMU's TCG announces itself in the hypervisor CPUID leaf. */
static bool qs_bench_emulated(void)
{
	u32 eax, signature[3];

	if (!boot_cpu_has(X86_FEATURE_HYPERVISOR))
		return false;
	cpuid(0x40000000, &eax, &signature[0], &signature[1], &signature[2]);
	return !memcmp(signature, "TCGTCGTCGTCG", 12);
}

/* Everything one suite's run needs; freed by qs_bench_free(). */
struct qs_bench {
	const struct qs_bench_suite *suite;
	struct qs_tx_state *tx;
	struct qs_rx_state *rx;
	void *tx_mem, *rx_mem;
	struct crypto_aead *aead;
	struct aead_request *req;
	u8 *clear; /* header and payload, the header's packet number rewritten per datagram */
	u8 *dgram[QS_BENCH_BATCH]; /* kmalloc'd: the kernel's AEAD takes them as scatterlists */
};

static void qs_bench_free(struct qs_bench *b)
{
	int i;

	/* Initialised states are dropped (keys wiped); others were never more than memory. */
	qs_free_tx(b->tx, b->tx_mem);
	qs_free_rx(b->rx, b->rx_mem);
	if (b->req)
		aead_request_free(b->req);
	if (!IS_ERR_OR_NULL(b->aead))
		crypto_free_aead(b->aead);
	kfree(b->clear);
	for (i = 0; i < QS_BENCH_BATCH; i++)
		kfree_sensitive(b->dgram[i]);
}

static int qs_bench_setup(struct qs_bench *b, const struct qs_bench_suite *suite)
{
	struct quicseal_keys keys;
	void *tx, *rx;
	int i;

	memset(b, 0, sizeof(*b));
	b->suite = suite;
	b->clear = kmalloc(QS_BENCH_HEADER + QS_BENCH_PAYLOAD, GFP_KERNEL);
	for (i = 0; i < QS_BENCH_BATCH; i++)
		b->dgram[i] = kmalloc(QS_BENCH_LEN, GFP_KERNEL);
	tx = qs_alloc_state(qs_tx_size, qs_tx_align, &b->tx_mem);
	rx = qs_alloc_state(qs_rx_size, qs_rx_align, &b->rx_mem);
	if (!b->clear || !tx || !rx)
		return -ENOMEM;
	for (i = 0; i < QS_BENCH_BATCH; i++)
		if (!b->dgram[i])
			return -ENOMEM;
	b->clear[0] = 0x41; /* short header, 2-byte packet number */
	memset(b->clear + 1, 0x11, 8);
	for (i = QS_BENCH_HEADER; i < QS_BENCH_HEADER + QS_BENCH_PAYLOAD; i++)
		b->clear[i] = i;

	memset(&keys, 0, sizeof(keys));
	keys.size = QUICSEAL_KEYS_SIZE_V1;
	keys.suite = suite->code;
	keys.dcid_len = 8;
	keys.secret_len = suite->secret_len;
	keys.largest_pn = QUICSEAL_NONE;
	memcpy(keys.secret, suite->secret, suite->secret_len);
	if (qs_tx_init(tx, &keys) == QS_OK)
		b->tx = tx;
	if (qs_rx_init(rx, &keys) == QS_OK)
		b->rx = rx;
	memzero_explicit(&keys, sizeof(keys));
	if (!b->tx || !b->rx)
		return -EINVAL;

	b->aead = crypto_alloc_aead(suite->kernel_alg, 0, 0);
	if (IS_ERR(b->aead))
		return PTR_ERR(b->aead);
	i = crypto_aead_setkey(b->aead, suite->key, suite->key_len);
	if (!i)
		i = crypto_aead_setauthsize(b->aead, QUICSEAL_TAG_LEN);
	if (i)
		return i;
	b->req = aead_request_alloc(b->aead, GFP_KERNEL);
	return b->req ? 0 : -ENOMEM;
}

/* The datagram's packet number into the cleartext header; the nonce the kernel's AEAD
 * needs for it (RFC 9001 5.3: the IV with the packet number XORed into its last bytes). */
static void qs_bench_number(struct qs_bench *b, u64 pn, u8 nonce[12])
{
	int i;

	b->clear[9] = pn >> 8;
	b->clear[10] = pn;
	memcpy(nonce, b->suite->iv, 12);
	for (i = 0; i < 8; i++)
		nonce[11 - i] ^= pn >> (8 * i);
}

/* The module seals the cleartext (packet number `pn`) into `out`. */
static int qs_bench_seal(struct qs_bench *b, u64 pn, u8 *out)
{
	struct qs_seg src = { b->clear, QS_BENCH_HEADER + QS_BENCH_PAYLOAD };
	struct qs_seg dst = { out, QS_BENCH_LEN };
	struct qs_seal_result res;
	struct quicseal_counters delta;
	u8 nonce[12];

	qs_bench_number(b, pn, nonce);
	if (qs_tx_seal(b->tx, &src, 1, &dst, 1, 0, pn, &res, &delta) != QS_OK ||
	    res.len != QS_BENCH_LEN)
		return -EIO;
	return 0;
}

/* The module opens `dgram` in place; 0 when it gives back the cleartext. */
static int qs_bench_open(struct qs_bench *b, u8 *dgram, bool compare)
{
	struct quicseal_rx_info info;
	struct quicseal_counters delta;
	size_t out_len = 0;

	if (qs_rx_open(b->rx, dgram, QS_BENCH_LEN, &info, &out_len, &delta) != QS_OK ||
	    out_len != QS_BENCH_HEADER + QS_BENCH_PAYLOAD)
		return -EIO;
	if (compare && memcmp(dgram + QS_BENCH_HEADER, b->clear + QS_BENCH_HEADER,
			      QS_BENCH_PAYLOAD))
		return -EIO;
	return 0;
}

/* The kernel's AEAD over `dgram` in place: the header as associated data, then the payload
 * and (encrypting) its tag appended or (decrypting) checked. */
static int qs_bench_kernel(struct qs_bench *b, u8 *dgram, u8 nonce[12], bool encrypt)
{
	struct scatterlist sg;
	DECLARE_CRYPTO_WAIT(wait);
	int err;

	sg_init_one(&sg, dgram, QS_BENCH_LEN);
	aead_request_set_callback(b->req, CRYPTO_TFM_REQ_MAY_BACKLOG | CRYPTO_TFM_REQ_MAY_SLEEP,
				  crypto_req_done, &wait);
	aead_request_set_ad(b->req, QS_BENCH_HEADER);
	aead_request_set_crypt(b->req, &sg, &sg,
			       QS_BENCH_PAYLOAD + (encrypt ? 0 : QUICSEAL_TAG_LEN), nonce);
	err = encrypt ? crypto_aead_encrypt(b->req) : crypto_aead_decrypt(b->req);
	return crypto_wait_req(err, &wait);
}

/*
 * One datagram both ways: the kernel's AEAD on the cleartext under the same key and nonce
 * must give the module's ciphertext and tag; the kernel opens the module's datagram (its
 * header unprotected again from the cleartext) and the module opens its own.
 */
static bool qs_bench_crosscheck(struct qs_bench *b, u64 pn)
{
	u8 *ours = b->dgram[0], *theirs = b->dgram[1], nonce[12];

	if (qs_bench_seal(b, pn, ours))
		return false;
	qs_bench_number(b, pn, nonce);
	memcpy(theirs, b->clear, QS_BENCH_HEADER + QS_BENCH_PAYLOAD);
	if (qs_bench_kernel(b, theirs, nonce, true) ||
	    memcmp(theirs + QS_BENCH_HEADER, ours + QS_BENCH_HEADER,
		   QS_BENCH_PAYLOAD + QUICSEAL_TAG_LEN))
		return false;
	memcpy(theirs, ours, QS_BENCH_LEN);
	memcpy(theirs, b->clear, QS_BENCH_HEADER);
	if (qs_bench_kernel(b, theirs, nonce, false) ||
	    memcmp(theirs + QS_BENCH_HEADER, b->clear + QS_BENCH_HEADER, QS_BENCH_PAYLOAD))
		return false;
	return !qs_bench_open(b, ours, true);
}

/* ns per datagram, best round: [0] module seal, [1] module open, [2] kernel seal, [3] open. */
static int qs_bench_time(struct qs_bench *b, u64 *pn, int rounds, u64 best[4])
{
	u8 nonce[12];
	u64 t, first = *pn;
	int round, i, k;

	for (k = 0; k < 4; k++)
		best[k] = U64_MAX;
	for (round = 0; round < rounds; round++) {
		first = *pn;
		t = ktime_get_ns();
		for (i = 0; i < QS_BENCH_BATCH; i++)
			if (qs_bench_seal(b, (*pn)++, b->dgram[i]))
				return -EIO;
		best[0] = min(best[0], ktime_get_ns() - t);
		t = ktime_get_ns();
		for (i = 0; i < QS_BENCH_BATCH; i++)
			if (qs_bench_open(b, b->dgram[i], false))
				return -EIO;
		best[1] = min(best[1], ktime_get_ns() - t);

		/* The kernel's AEAD on the same buffers, refilled with cleartext (untimed). */
		for (i = 0; i < QS_BENCH_BATCH; i++)
			memcpy(b->dgram[i], b->clear, QS_BENCH_HEADER + QS_BENCH_PAYLOAD);
		t = ktime_get_ns();
		for (i = 0; i < QS_BENCH_BATCH; i++) {
			qs_bench_number(b, first + i, nonce);
			if (qs_bench_kernel(b, b->dgram[i], nonce, true))
				return -EIO;
		}
		best[2] = min(best[2], ktime_get_ns() - t);
		t = ktime_get_ns();
		for (i = 0; i < QS_BENCH_BATCH; i++) {
			qs_bench_number(b, first + i, nonce);
			if (qs_bench_kernel(b, b->dgram[i], nonce, false))
				return -EIO;
		}
		best[3] = min(best[3], ktime_get_ns() - t);
	}
	for (k = 0; k < 4; k++)
		best[k] /= QS_BENCH_BATCH;
	return 0;
}

int qs_bench_show(struct seq_file *seq, void *v)
{
	bool emulated = qs_bench_emulated(), forced = emulated && READ_ONCE(bench_under_tcg);
	int i, rounds = forced ? 1 : QS_BENCH_ROUNDS;

	seq_printf(seq, "# %d-byte datagrams (8-byte DCID, 2-byte packet number, tag included)\n",
		   QS_BENCH_LEN);
	if (emulated && !forced)
		seq_puts(seq, "timing skipped: the CPU is QEMU's TCG emulation, where timings mean nothing; read this file on KVM or hardware\n");
	else
		seq_printf(seq, "# ns per datagram, best of %d rounds of %d; quicseal includes header protection, the kernel's AEAD has none%s\n",
			   rounds, QS_BENCH_BATCH,
			   forced ? "; UNDER TCG (bench_under_tcg): these numbers mean nothing" : "");
	for (i = 0; i < ARRAY_SIZE(qs_bench_suites); i++) {
		const struct qs_bench_suite *suite = &qs_bench_suites[i];
		char name[QUICSEAL_IMPLEMENTATION_LEN] = "";
		struct qs_bench b;
		u64 best[4], pn = 1;
		int err = qs_bench_setup(&b, suite);

		qs_implementation(suite->code, name, sizeof(name));
		if (err) {
			seq_printf(seq, "%s: setup failed (%d; is %s available?)\n", suite->name, err,
				   suite->kernel_alg);
			qs_bench_free(&b);
			continue;
		}
		seq_printf(seq, "crosscheck %s quicseal %s kernel %s %s\n", suite->name, name,
			   crypto_aead_driver_name(b.aead),
			   qs_bench_crosscheck(&b, pn++) ? "ok" : "MISMATCH");
		if ((!emulated || forced) && !qs_bench_time(&b, &pn, rounds, best))
			seq_printf(seq, "%s seal: quicseal %llu ns, kernel %llu ns; open: quicseal %llu ns, kernel %llu ns\n",
				   suite->name, best[0], best[2], best[1], best[3]);
		qs_bench_free(&b);
	}
	return 0;
}
