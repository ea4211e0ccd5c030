/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The C ABI of the Rust object (targets/kernel/rust/src/lib.rs). Structures are the uapi's;
 * statuses are the core's Error::status() (1 + the variant's position in Error::ALL), and
 * `cargo xtask kernel-test` checks this enum against the core before it builds anything.
 * The object may use vector registers in any function: quicseal_call() runs only inside a
 * kernel FPU section.
 */
#ifndef QUICSEAL_RUST_H
#define QUICSEAL_RUST_H

#include <linux/types.h>
#include <uapi/linux/quicseal.h>

enum qs_status {
	QS_OK = 0,
	QS_MALFORMED = 1,
	QS_AUTH_FAILED = 2,
	QS_RESERVED_BITS = 3,
	QS_PACKET_NUMBER_REUSED = 4,
	QS_PACKET_NUMBER_MISMATCH = 5,
	QS_KEY_UNAVAILABLE = 6,
	QS_CONFIDENTIALITY_LIMIT = 7,
	QS_INTEGRITY_LIMIT = 8,
	QS_BUFFER_TOO_SMALL = 9,
	QS_INVALID_KEY_LENGTH = 10,
	QS_INVALID_CONFIG = 11,
	QS_UNKNOWN_SUITE = 12,
	QS_GSO_SIZE_TOO_SMALL = 13,
	QS_TOO_MANY_SEGMENTS = 14,
	QS_GSO_LAYOUT = 15,
	QS_UNKNOWN_CONNECTION_ID = 16,
	QS_TABLE_FULL = 17,
	QS_EINVAL_ARGS = 100,
};

#define QS_MAX_SG 48        /* source or destination segments per call */

struct qs_seg {
	void *base;
	size_t len;
};

struct qs_seal_result {
	size_t len;
	__u32 datagrams;
	__u32 failed;
	__u32 first_failed;
	__u32 reserved;
};

struct qs_tx_state;
struct qs_rx_state;

/*
 * Every call into the Rust object goes through quicseal_call(), which the shim makes on a
 * stack of the object's own (qs_rust() in quicseal_main.c): the core's fast paths keep
 * keystream and batch state in frames of kilobytes, and the object assumes the 16-byte stack
 * alignment of the x86_64 ABI, which kernel stacks do not keep. The operations and their
 * arguments, in order (pointers and sizes as __u64), then what `ret` holds:
 */
enum qs_op {
	QS_OP_TX_STATE_SIZE = 0,  /* -> size_t */
	QS_OP_TX_STATE_ALIGN = 1, /* -> size_t */
	QS_OP_RX_STATE_SIZE = 2,  /* -> size_t */
	QS_OP_RX_STATE_ALIGN = 3, /* -> size_t */
	QS_OP_GSO_LAYOUT = 4,     /* size_t len, size_t gso_size, size_t *segments,
				   * size_t *sealed_len -> status */
	QS_OP_TX_INIT = 5,        /* struct qs_tx_state *, const struct quicseal_keys * -> status */
	QS_OP_TX_DROP = 6,        /* struct qs_tx_state * */
	QS_OP_TX_SEAL = 7,        /* struct qs_tx_state *, const struct qs_seg *src, size_t nsrc,
				   * const struct qs_seg *dst, size_t ndst, size_t gso_size,
				   * __u64 pn, struct qs_seal_result *,
				   * struct quicseal_counters *delta -> status */
	QS_OP_TX_INFO = 8,        /* const struct qs_tx_state *, struct quicseal_info * */
	QS_OP_RX_INIT = 9,        /* struct qs_rx_state *, const struct quicseal_keys * -> status */
	QS_OP_RX_DROP = 10,       /* struct qs_rx_state * */
	QS_OP_RX_OPEN = 11,       /* struct qs_rx_state *, void *data, size_t len,
				   * struct quicseal_rx_info *, size_t *out_len,
				   * struct quicseal_counters *delta -> status */
	QS_OP_RX_SET_LARGEST = 12, /* struct qs_rx_state *, __u64 largest */
	QS_OP_RX_RETIRE = 13,     /* struct qs_rx_state * */
	QS_OP_RX_ADVANCE = 14,    /* struct qs_rx_state * -> status */
	QS_OP_RX_INFO = 15,       /* const struct qs_rx_state *, struct quicseal_info * */
	QS_OP_IMPLEMENTATION = 16, /* __u16 suite, char *out, size_t cap -> length of the name
				    * written NUL-terminated, 0 if none */
	QS_OP_RX_PREPARE_NEXT = 17, /* struct qs_rx_state * -> status */
};

struct qs_call {
	__u32 op;
	__u32 reserved;
	__s64 ret;
	__u64 args[9];
};

void quicseal_call(struct qs_call *call);

/* Called by the Rust panic handler; never returns. */
void __noreturn quicseal_rust_panic(const char *message, size_t len);

#endif
