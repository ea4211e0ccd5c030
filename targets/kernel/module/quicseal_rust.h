/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The C ABI of the Rust object (targets/kernel/rust/src/lib.rs). Structures are the uapi's;
 * statuses are the core's Error::status() (1 + the variant's position in Error::ALL), and
 * `cargo xtask kernel-test` checks this enum against the core before it builds anything.
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

size_t quicseal_tx_state_size(void);
size_t quicseal_tx_state_align(void);
size_t quicseal_rx_state_size(void);
size_t quicseal_rx_state_align(void);

int quicseal_gso_layout(size_t len, size_t gso_size, size_t *segments, size_t *sealed_len);
int quicseal_tx_init(struct qs_tx_state *state, const struct quicseal_keys *keys);
void quicseal_tx_drop(struct qs_tx_state *state);
int quicseal_tx_seal(struct qs_tx_state *state, const struct qs_seg *src, size_t nsrc,
		     const struct qs_seg *dst, size_t ndst, size_t gso_size, __u64 pn,
		     struct qs_seal_result *out, struct quicseal_counters *delta);
void quicseal_tx_info(const struct qs_tx_state *state, struct quicseal_info *out);

int quicseal_rx_init(struct qs_rx_state *state, const struct quicseal_keys *keys);
void quicseal_rx_drop(struct qs_rx_state *state);
int quicseal_rx_open(struct qs_rx_state *state, void *data, size_t len,
		     struct quicseal_rx_info *out, size_t *out_len,
		     struct quicseal_counters *delta);
void quicseal_rx_set_largest(struct qs_rx_state *state, __u64 largest);
void quicseal_rx_retire(struct qs_rx_state *state);
int quicseal_rx_advance(struct qs_rx_state *state);
void quicseal_rx_info(const struct qs_rx_state *state, struct quicseal_info *out);

/* Called by the Rust panic handler; never returns. */
void __noreturn quicseal_rust_panic(const char *message, size_t len);

#endif
