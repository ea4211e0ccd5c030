/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What quicseal_main.c offers the module's other files: the Rust object's operations, typed,
 * each made inside a kernel FPU section on the object's own stack (qs_rust()), and the state
 * blobs they work on.
 */
#ifndef QUICSEAL_SHIM_H
#define QUICSEAL_SHIM_H

#include "quicseal_rust.h"

struct seq_file;

extern size_t qs_tx_size, qs_tx_align, qs_rx_size, qs_rx_align;

void *qs_alloc_state(size_t size, size_t align, void **mem);
void qs_free_tx(struct qs_tx_state *tx, void *mem);
void qs_free_rx(struct qs_rx_state *rx, void *mem);

int qs_tx_init(struct qs_tx_state *state, const struct quicseal_keys *keys);
int qs_tx_seal(struct qs_tx_state *state, const struct qs_seg *src, size_t nsrc,
	       const struct qs_seg *dst, size_t ndst, size_t gso_size, u64 pn,
	       struct qs_seal_result *out, struct quicseal_counters *delta);
int qs_rx_init(struct qs_rx_state *state, const struct quicseal_keys *keys);
int qs_rx_open(struct qs_rx_state *state, void *data, size_t len, struct quicseal_rx_info *out,
	       size_t *out_len, struct quicseal_counters *delta);
size_t qs_implementation(u16 suite, char *out, size_t cap);

/* quicseal_bench.c: /proc/net/quicseal_bench. */
int qs_bench_show(struct seq_file *seq, void *v);

#endif
