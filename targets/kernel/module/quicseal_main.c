// SPDX-License-Identifier: GPL-2.0
/*
 * quicseal: QUIC 1-RTT packet protection on a UDP socket. A thin shim: socket plumbing here,
 * every byte of cryptography and packet parsing in the Rust object (quicseal_rust.h).
 *
 * socket(AF_INET, SOCK_DGRAM, IPPROTO_QUICSEAL) gets a copy of udp_prot whose sendmsg seals
 * and whose encap_rcv hook opens; until keys are installed it is a UDP socket. AF_INET6 gets
 * the same methods over a copy of udpv6_prot, which 6.1 does not export: it is read from a
 * kernel UDPv6 socket at load. Per-socket state lives in struct qs_sock, which embeds the
 * udp_sock: no lookup per packet. A plain UDP socket a program already has gets the same
 * methods by ioctl on /dev/quicseal (qs_attach()), its state allocated and reached through
 * sk_user_data. See docs/kernel-uapi.md.
 */
#define pr_fmt(fmt) "quicseal: " fmt

#include <linux/module.h>
#include <linux/net.h>
#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/highmem.h>
#include <linux/uio.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/seq_file.h>
#include <linux/proc_fs.h>
#include <linux/miscdevice.h>
#include <linux/fs.h>
#include <linux/bpf-cgroup.h>
#include <net/sock.h>
#include <net/inet_common.h>
#include <net/protocol.h>
#include <net/ip.h>
#include <net/ipv6.h>
#include <net/icmp.h>
#include <linux/icmp.h>
#include <linux/icmpv6.h>
#include <linux/errqueue.h>
#include <net/transp_v6.h>
#include <net/udp.h>
#include <net/udp_tunnel.h>
#include <net/net_namespace.h>
#include <asm/fpu/api.h>
#include <asm/irq_stack.h>

#include "quicseal_shim.h"

#define QS_ENCAP_TYPE 0x51 /* private udp_sock encap_type: "this socket opens QUIC" */
#define QS_CB_MAGIC 0xa5

/*
 * One socket's quicseal state. An IPPROTO_QUICSEAL socket carries it inside (struct
 * qs_sock); a plain UDP socket attached through /dev/quicseal (qs_attach()) points to one
 * allocated for it from sk_user_data, counted (`users`: the attachment and each method call
 * in progress) and freed an RCU grace period after the last put, so that detach never waits
 * for a call blocked in recvmsg and the receive hook never sees it freed.
 */
struct qs_ctx {
	struct sock *sk;
	bool attached; /* allocated by qs_attach(): counted */
	refcount_t users; /* attached only */
	const struct proto *base; /* attached only: the socket's own methods, restored on detach */
	struct rcu_head rcu;
	struct mutex tx_lock; /* sendmsg and setsockopt: process context */
	struct qs_tx_state *tx;
	void *tx_mem;
	spinlock_t rx_lock; /* encap_rcv runs in softirq */
	struct qs_rx_state *rx;
	void *rx_mem;
	bool hook; /* under tx_lock: encap_rcv installed (qs_install_hook()) */
	bool recv_info;
	bool closing; /* under rx_lock: destroy has taken the receive state away */
	bool dead; /* under both locks: detached, nothing may be installed again */
	struct work_struct prepare_work; /* qs_prepare_next(): holds a socket reference */
};

struct qs_sock {
	struct udp_sock udp; /* must be first: the socket is a UDP socket */
	struct qs_ctx ctx;
};

/*
 * An AF_INET6 socket: 6.1 finds the ipv6_pinfo at sk_prot->obj_size - sizeof(struct
 * ipv6_pinfo) (inet6_sk_generic()), so it must come last, as in struct udp6_sock.
 */
struct qs6_sock {
	struct qs_sock qs;
	struct ipv6_pinfo inet6;
};

/* What encap_rcv learnt about a datagram, for recvmsg's cmsg. It sits in skb->cb after
 * struct udp_skb_cb and before struct sock_skb_cb (the dropcount at the end). */
struct qs_skb_cb {
	u32 pn_lo;
	u32 pn_hi;
	u32 generation;
	u16 passthrough_len;
	u8 flags_hdr; /* bit 0: QUICSEAL_RX_F_KEY_UPDATE; bits 1-7: header_len (at most 25) */
	u8 magic_status; /* QS_CB_MAGIC ^ status */
};
#define QS_CB_OFFSET ALIGN(sizeof(struct udp_skb_cb), 4)
#define QS_SKB_CB(skb) ((struct qs_skb_cb *)((skb)->cb + QS_CB_OFFSET))

static struct proto qs_prot, qs6_prot;
/* udpv6_prot: the methods an AF_INET6 socket falls back on (NULL: IPv6 not registered). */
static const struct proto *qs6_base;
static bool qs_poisoned;

static bool tx_pages = true;
module_param(tx_pages, bool, 0644);
MODULE_PARM_DESC(tx_pages, "seal into pages the skb carries without another copy, instead of a buffer UDP copies");
static bool tx_zc_report;
module_param(tx_zc_report, bool, 0644);
MODULE_PARM_DESC(tx_zc_report, "for tests: queue the kernel's MSG_ZEROCOPY completion of each page send on the socket's error queue");
static bool rx_fpu_busy;
module_param(rx_fpu_busy, bool, 0644);
MODULE_PARM_DESC(rx_fpu_busy, "for tests: act as if softirq always found the FPU in use (every datagram with receive keys is dropped and counted)");
static atomic64_t qs_totals[sizeof(struct quicseal_counters) / sizeof(u64)];
/* Datagrams softirq dropped because the FPU was in use (or rx_fpu_busy), qs_encap_rcv(). */
static atomic64_t qs_rx_fpu_drops;
/* Where each socket's next receive keys are derived after a key update (qs_prepare_next()):
 * the module's own, so that unloading waits for the last one. */
static struct workqueue_struct *qs_wq;
/* The Rust state blobs' sizes and alignments, asked once at load. */
size_t qs_tx_size, qs_tx_align, qs_rx_size, qs_rx_align;
/* Sends of ciphertext pages with a zero-copy buffer, and without one (UDP copied them). */
static atomic64_t qs_tx_page_sends, qs_tx_page_fallbacks;

/* Key states and attachment contexts allocated and not yet freed: both 0 once every socket
 * is closed and detached (/proc/net/quicseal `live_states`, `live_attachments`). A leak check
 * the selftest can make without kmemleak, which Debian's kernel does not build. */
static atomic64_t qs_live_states = ATOMIC64_INIT(0);
static atomic64_t qs_live_attachments = ATOMIC64_INIT(0);

/* ---- calls into the Rust object -------------------------------------------------------- */

/*
 * Every call into the Rust object is qs_rust(): inside a kernel FPU section, on a stack of
 * the object's own.
 *
 * The FPU section: the object is built with SSE2 in its baseline (xtask/src/kernel.rs,
 * target_spec()) so that it carries the core's AES-NI, VAES, AVX2 and AVX-512 backends,
 * picked at run time by CPUID, and the compiler may use vector registers in any of its
 * functions. Process context (sendmsg, setsockopt, getsockopt, recvmsg, load) may always
 * take the FPU; softirq only when irq_fpu_usable() says so, which qs_encap_rcv() asks first
 * (qs_rx_simd_usable()), and drops the datagram otherwise. Bottom halves stay off during the
 * section, so the module's own sealing never causes such a drop.
 *
 * The stack: the core's fast paths keep keystream and batch state in frames of kilobytes
 * (a GSO batch's seal goes some 20 KiB deep), more than a 16 KiB kernel stack can spare,
 * and the object assumes the 16-byte stack alignment of the x86_64 ABI, which kernel code
 * (built for 8) does not keep. So each CPU has a stack for it, entered with the kernel's own
 * call_on_stack(). One call at a time per CPU: kernel_fpu_begin() disables preemption, and
 * while it is held irq_fpu_usable() is false, so no softirq or interrupt on that CPU can
 * enter the object. /proc/net/quicseal reports the deepest use seen (rust_stack_peak).
 */
#define QS_RUST_STACK_SIZE (64 * 1024)
#define QS_RUST_STACK_PAINT 0x5a
static DEFINE_PER_CPU(u8 *, qs_rust_stack);

static long qs_rust(struct qs_call *call)
{
	u8 *top;

	/* After a panic the object's state, and this CPU's stack, may be mid-call. */
	if (READ_ONCE(qs_poisoned))
		return QS_EINVAL_ARGS;
	/* Bottom halves off: a softirq on this CPU's interrupt exits would otherwise find the
	 * FPU taken (qs_encap_rcv() drops then) for as long as a GSO batch seals. */
	local_bh_disable();
	kernel_fpu_begin();
	/* The top slot keeps the kernel stack pointer; the call leaves the ABI's alignment.
	 * (Not named `tos`: call_on_stack() declares its own.) */
	top = this_cpu_read(qs_rust_stack) + QS_RUST_STACK_SIZE - 16;
	call_on_stack(top, quicseal_call, ASM_CALL_ARG1, , [arg1] "r"(call));
	kernel_fpu_end();
	local_bh_enable();
	return call->ret;
}

#define QS_RUST(operation, ...) \
	qs_rust(&(struct qs_call){ .op = (operation), .args = { __VA_ARGS__ } })

static int qs_rust_stacks_alloc(void)
{
	int cpu;

	for_each_possible_cpu(cpu) {
		u8 *stack = vmalloc_node(QS_RUST_STACK_SIZE, cpu_to_node(cpu));

		if (!stack)
			return -ENOMEM;
		memset(stack, QS_RUST_STACK_PAINT, QS_RUST_STACK_SIZE);
		per_cpu(qs_rust_stack, cpu) = stack;
	}
	return 0;
}

static void qs_rust_stacks_free(void)
{
	int cpu;

	for_each_possible_cpu(cpu) {
		vfree(per_cpu(qs_rust_stack, cpu));
		per_cpu(qs_rust_stack, cpu) = NULL;
	}
}

/* The deepest any CPU's Rust stack has been written: the paint left below it. */
static size_t qs_rust_stack_peak(void)
{
	size_t peak = 0, unused;
	int cpu;

	for_each_possible_cpu(cpu) {
		const u8 *stack = per_cpu(qs_rust_stack, cpu);

		for (unused = 0; unused < QS_RUST_STACK_SIZE; unused++)
			if (stack[unused] != QS_RUST_STACK_PAINT)
				break;
		peak = max(peak, QS_RUST_STACK_SIZE - unused);
	}
	return peak;
}

/* quicseal_rust.h's operations, typed. Not inlined: each call's struct stays in a small
 * frame of its own rather than in sendmsg's, which is near the kernel's limit. */
static noinline int qs_gso_layout(size_t len, size_t gso_size, size_t *segments, size_t *sealed_len)
{
	return QS_RUST(QS_OP_GSO_LAYOUT, len, gso_size, (uintptr_t)segments,
		       (uintptr_t)sealed_len);
}

int qs_tx_init(struct qs_tx_state *state, const struct quicseal_keys *keys)
{
	return QS_RUST(QS_OP_TX_INIT, (uintptr_t)state, (uintptr_t)keys);
}

noinline int qs_tx_seal(struct qs_tx_state *state, const struct qs_seg *src, size_t nsrc,
			const struct qs_seg *dst, size_t ndst, size_t gso_size, u64 pn,
			struct qs_seal_result *out, struct quicseal_counters *delta)
{
	return QS_RUST(QS_OP_TX_SEAL, (uintptr_t)state, (uintptr_t)src, nsrc, (uintptr_t)dst,
		       ndst, gso_size, pn, (uintptr_t)out, (uintptr_t)delta);
}

int qs_rx_init(struct qs_rx_state *state, const struct quicseal_keys *keys)
{
	return QS_RUST(QS_OP_RX_INIT, (uintptr_t)state, (uintptr_t)keys);
}

int qs_rx_open(struct qs_rx_state *state, void *data, size_t len, struct quicseal_rx_info *out,
	       size_t *out_len, struct quicseal_counters *delta)
{
	return QS_RUST(QS_OP_RX_OPEN, (uintptr_t)state, (uintptr_t)data, len, (uintptr_t)out,
		       (uintptr_t)out_len, (uintptr_t)delta);
}

static int qs_rx_prepare_next(struct qs_rx_state *state)
{
	return QS_RUST(QS_OP_RX_PREPARE_NEXT, (uintptr_t)state);
}

static int qs_rx_advance(struct qs_rx_state *state)
{
	return QS_RUST(QS_OP_RX_ADVANCE, (uintptr_t)state);
}

size_t qs_implementation(u16 suite, char *out, size_t cap)
{
	return QS_RUST(QS_OP_IMPLEMENTATION, suite, (uintptr_t)out, cap);
}

/* Whether the module created the socket (IPPROTO_QUICSEAL): its context is inside it. */
static inline bool qs_owns(const struct sock *sk)
{
	return sk->sk_prot_creator == &qs_prot || sk->sk_prot_creator == &qs6_prot;
}

/* The receive hook's view (softirq, RCU read side): no reference, see struct qs_ctx. */
static inline struct qs_ctx *qs_ctx_rcu(struct sock *sk)
{
	if (qs_owns(sk))
		return &((struct qs_sock *)sk)->ctx;
	return rcu_dereference_sk_user_data(sk);
}

/*
 * A method call's context, or NULL for a socket detached while the call was on its way in
 * (it then behaves as the plain UDP socket it is again). Each non-NULL one is qs_put().
 */
static struct qs_ctx *qs_get(struct sock *sk)
{
	struct qs_ctx *qs;

	if (qs_owns(sk))
		return &((struct qs_sock *)sk)->ctx;
	rcu_read_lock();
	qs = rcu_dereference_sk_user_data(sk);
	if (qs && !refcount_inc_not_zero(&qs->users))
		qs = NULL;
	rcu_read_unlock();
	return qs;
}

/* The context holds no key material (the states are freed, and wiped, before the last put);
 * the module is pinned once anything was attached (qs_pinned), so the RCU free needs no
 * module reference. */
static void qs_put(struct qs_ctx *qs)
{
	if (qs->attached && refcount_dec_and_test(&qs->users)) {
		atomic64_dec(&qs_live_attachments);
		kfree_rcu(qs, rcu);
	}
}

static int qs_encap_rcv(struct sock *sk, struct sk_buff *skb);

/* Whether UDP still hands every datagram to the module's hook (setsockopt refuses UDP_ENCAP
 * at both UDP levels; this is the tripwire behind that). */
static inline bool qs_hook_intact(struct qs_ctx *qs)
{
	return READ_ONCE(udp_sk(qs->sk)->encap_rcv) == qs_encap_rcv &&
	       READ_ONCE(udp_sk(qs->sk)->encap_type) == QS_ENCAP_TYPE;
}

/* The UDP methods under this socket's: udp_prot, or udpv6_prot for AF_INET6 (for an
 * attached socket, the ones it had). */
static inline const struct proto *qs_base(const struct sock *sk)
{
	return sk->sk_family == AF_INET6 ? qs6_base : &udp_prot;
}

void __noreturn quicseal_rust_panic(const char *message, size_t len)
{
	WRITE_ONCE(qs_poisoned, true);
	WARN(1, "quicseal: Rust panic: %.*s\n", (int)min_t(size_t, len, 160), message);
	/* panic=abort: no unwinding back into the caller; stop this thread loudly. */
	BUG();
}

static void qs_add_totals(const struct quicseal_counters *delta)
{
	const u64 *d = (const u64 *)delta;
	int i;

	for (i = 0; i < ARRAY_SIZE(qs_totals); i++)
		if (d[i])
			atomic64_add(d[i], &qs_totals[i]);
}

/* The documented errno of a status (docs/kernel-uapi.md). */
static int qs_errno(int status)
{
	switch (status) {
	case QS_OK:
		return 0;
	case QS_MALFORMED:
	case QS_RESERVED_BITS:
	case QS_AUTH_FAILED:
		return -EBADMSG;
	case QS_PACKET_NUMBER_REUSED:
		return -EILSEQ;
	case QS_KEY_UNAVAILABLE:
		return -ENOKEY;
	case QS_CONFIDENTIALITY_LIMIT:
		return -EKEYEXPIRED;
	case QS_INTEGRITY_LIMIT:
		return -EKEYREVOKED;
	case QS_BUFFER_TOO_SMALL:
		return -EMSGSIZE;
	case QS_UNKNOWN_SUITE:
		return -EOPNOTSUPP;
	case QS_PACKET_NUMBER_MISMATCH:
	case QS_INVALID_KEY_LENGTH:
	case QS_INVALID_CONFIG:
	case QS_GSO_SIZE_TOO_SMALL:
	case QS_TOO_MANY_SEGMENTS:
	case QS_GSO_LAYOUT:
	case QS_EINVAL_ARGS:
		return -EINVAL;
	case QS_UNKNOWN_CONNECTION_ID:
	case QS_TABLE_FULL:
		/* Flow-table errors: each socket has its own flow, so the object never reports
		 * them; anything it does not document is an internal error. */
	default:
		return -EIO;
	}
}

/* State blobs (the Tx one is over 8 KiB: kvzalloc). The allocator guarantees 8 bytes of
 * alignment, the Rust types may want more; freed with kvfree_sensitive() of the same size. */
static size_t qs_tx_mem_size(void)
{
	return qs_tx_size + qs_tx_align;
}

static size_t qs_rx_mem_size(void)
{
	return qs_rx_size + qs_rx_align;
}

void *qs_alloc_state(size_t size, size_t align, void **mem)
{
	*mem = kvzalloc(size + align, GFP_KERNEL);
	if (!*mem)
		return NULL;
	atomic64_inc(&qs_live_states);
	return PTR_ALIGN(*mem, align);
}

/* Frees a state blob from qs_alloc_state(), `size` bytes in all, wiping it. */
static void qs_free_state(void *mem, size_t size)
{
	kvfree_sensitive(mem, size);
	atomic64_dec(&qs_live_states);
}

/* Drops an initialised state (its keys wiped by the core) and frees its memory; with `tx`
 * NULL, frees memory that was never initialised (or nothing). */
void qs_free_tx(struct qs_tx_state *tx, void *mem)
{
	if (tx)
		QS_RUST(QS_OP_TX_DROP, (uintptr_t)tx);
	if (mem)
		qs_free_state(mem, qs_tx_mem_size());
}

/* As qs_free_tx(), for a receive state. */
void qs_free_rx(struct qs_rx_state *rx, void *mem)
{
	if (rx)
		QS_RUST(QS_OP_RX_DROP, (uintptr_t)rx);
	if (mem)
		qs_free_state(mem, qs_rx_mem_size());
}

/*
 * A key update moved the receiver to the next generation and left the one after it to
 * derive (RxFlow::prepare_next_keys()): done here, in process context, not by the softirq
 * whose packet needs them next. If that packet comes first, the core derives them itself.
 */
static void qs_prepare_next(struct work_struct *work)
{
	struct qs_ctx *qs = container_of(work, struct qs_ctx, prepare_work);
	struct sock *sk = qs->sk;

	spin_lock_bh(&qs->rx_lock);
	if (!qs->closing && qs->rx && !READ_ONCE(qs_poisoned))
		qs_rx_prepare_next(qs->rx);
	spin_unlock_bh(&qs->rx_lock);
	qs_put(qs);
	sock_put(sk);
}

/* Under rx_lock with the receive state present: an attached context has its attachment's
 * reference then (detach and destroy take the state away under the lock first). */
static void qs_schedule_prepare(struct qs_ctx *qs)
{
	sock_hold(qs->sk);
	if (qs->attached)
		refcount_inc(&qs->users);
	if (!queue_work(qs_wq, &qs->prepare_work)) {
		qs_put(qs);
		sock_put(qs->sk);
	}
}

static void qs_ctx_init(struct qs_ctx *qs, struct sock *sk)
{
	qs->sk = sk;
	mutex_init(&qs->tx_lock);
	spin_lock_init(&qs->rx_lock);
	qs->tx = NULL;
	qs->rx = NULL;
	qs->hook = false;
	qs->recv_info = false;
	qs->closing = false;
	qs->dead = false;
	INIT_WORK(&qs->prepare_work, qs_prepare_next);
}

static int qs_init_sock(struct sock *sk)
{
	int err = qs_base(sk)->init(sk);

	if (err)
		return err;
	/* Receive lookups and the stack see a UDP socket. */
	sk->sk_protocol = IPPROTO_UDP;
	qs_ctx_init(&((struct qs_sock *)sk)->ctx, sk);
	return 0;
}

/*
 * sk_common_release() calls this while the socket is still hashed: a softirq on another CPU
 * may have found it (RCU, no reference) and read encap_rcv before it is cleared. So the
 * receive state is unpublished under rx_lock (the hook re-checks it there and drops once
 * `closing` is set) and freed only after the unlock, and all of it before the base destroy.
 */
static void qs_destroy_sock(struct sock *sk)
{
	/* close() holds the last file reference: no attach or detach runs now. */
	struct qs_ctx *qs = qs_owns(sk) ? &((struct qs_sock *)sk)->ctx
					: rcu_dereference_protected(sk->sk_user_data, 1);
	struct qs_rx_state *rx;
	void *rx_mem;

	if (WARN_ON_ONCE(!qs)) { /* only an attached socket's methods lead here */
		qs_base(sk)->destroy(sk);
		return;
	}
	spin_lock_bh(&qs->rx_lock);
	rx = qs->rx;
	rx_mem = qs->rx_mem;
	qs->rx = NULL;
	qs->rx_mem = NULL;
	qs->closing = true;
	WRITE_ONCE(udp_sk(sk)->encap_rcv, NULL);
	/* encap_err_rcv stays: the stack tests it and calls it in two plain reads, and it
	 * touches no receive state, only what plain UDP's error path touches. */
	spin_unlock_bh(&qs->rx_lock);
	qs_free_rx(rx, rx_mem);
	mutex_lock(&qs->tx_lock);
	qs_free_tx(qs->tx, qs->tx_mem);
	qs->tx = NULL;
	qs->tx_mem = NULL;
	mutex_unlock(&qs->tx_lock);
	if (qs->attached) {
		/* Unhashed now (sk_common_release() would next), so that no lookup after the
		 * context's grace period can reach the error hook; and its own methods again,
		 * since the socket may outlive the module (skbs, timers). */
		qs_base(sk)->unhash(sk);
		WRITE_ONCE(sk->sk_prot, (struct proto *)qs->base);
		write_lock_bh(&sk->sk_callback_lock);
		rcu_assign_sk_user_data(sk, NULL);
		write_unlock_bh(&sk->sk_callback_lock);
	}
	qs_base(sk)->destroy(sk);
	if (qs->attached)
		qs_put(qs); /* the attachment's; a hook still running sees `closing` */
}

/* ---- receive ---------------------------------------------------------------------- */

/* What every datagram carries until it is opened: "arrived before receive keys". */
static void qs_stamp_plain(struct sk_buff *skb)
{
	struct qs_skb_cb *cb = QS_SKB_CB(skb);

	BUILD_BUG_ON(QS_CB_OFFSET + sizeof(struct qs_skb_cb) >
		     sizeof_field(struct sk_buff, cb) - sizeof(struct sock_skb_cb));
	memset(cb, 0, sizeof(*cb));
	cb->magic_status = QS_CB_MAGIC ^ QUICSEAL_RX_PLAIN;
}

/* Whether softirq may open now: the Rust object needs the FPU (qs_rust()). */
static inline bool qs_rx_simd_usable(void)
{
	return !READ_ONCE(rx_fpu_busy) && irq_fpu_usable();
}

/*
 * Opens the datagram after the UDP header at skb->data in place, trims the tag away and
 * stamps the cb for recvmsg's cmsg. Under rx_lock, with qs->rx set and the FPU usable.
 * Returns 0; -EBADMSG to drop a datagram the core refused (and counted); -EIO to drop one it
 * reported impossibly.
 */
static int qs_open_skb(struct qs_ctx *qs, struct sk_buff *skb)
{
	const unsigned int hdr = sizeof(struct udphdr);
	struct qs_skb_cb *cb = QS_SKB_CB(skb);
	struct quicseal_rx_info info;
	struct quicseal_counters delta;
	size_t len = skb->len - hdr, out_len = 0;
	int status;

	memset(&delta, 0, sizeof(delta));
	status = qs_rx_open(qs->rx, skb->data + hdr, len, &info, &out_len, &delta);
	qs_add_totals(&delta);
	if (status != QS_OK)
		return -EBADMSG;
	/* Trust but verify what the core reports before it reaches the cmsg. */
	if (out_len > len || info.passthrough_len > out_len || info.generation > U32_MAX ||
	    (info.status == QUICSEAL_RX_OPENED &&
	     (!info.header_len || info.header_len > 0x7f ||
	      (u64)info.passthrough_len + info.header_len + info.payload_len != out_len)) ||
	    (info.status != QUICSEAL_RX_OPENED && info.status != QUICSEAL_RX_PASSTHROUGH))
		return -EIO;

	if (out_len < len) {
		__skb_trim(skb, hdr + out_len);
		udp_hdr(skb)->len = htons(out_len + sizeof(struct udphdr));
	}
	/* Verified before the hook; the payload changed, so no checksum is left to check. */
	skb->ip_summed = CHECKSUM_UNNECESSARY;
	skb->csum_valid = 1;
	cb->pn_lo = lower_32_bits(info.pn);
	cb->pn_hi = upper_32_bits(info.pn);
	cb->generation = (u32)info.generation;
	cb->passthrough_len = info.passthrough_len;
	cb->flags_hdr = (info.flags & QUICSEAL_RX_F_KEY_UPDATE) |
			(info.status == QUICSEAL_RX_OPENED ? info.header_len << 1 : 0);
	cb->magic_status = QS_CB_MAGIC ^ info.status;
	if (info.flags & QUICSEAL_RX_F_KEY_UPDATE)
		qs_schedule_prepare(qs);
	return 0;
}

/*
 * Called by udp_queue_rcv_one_skb() for each datagram (the stack has already segmented GRO
 * batches, because this socket never sets UDP_GRO), with skb->data at the UDP header and
 * the checksum verified. Returns 1 to deliver the (opened) datagram as UDP, 0 when it was
 * consumed (dropped).
 */
static int qs_encap_rcv(struct sock *sk, struct sk_buff *skb)
{
	struct qs_ctx *qs = qs_ctx_rcu(sk);
	int err;

	qs_stamp_plain(skb);
	/* Poisoned: the interrupted call may have left rx_lock held; never touch it. No
	 * context: an attached socket being closed. */
	if (READ_ONCE(qs_poisoned) || !qs)
		goto drop_unaccounted;
	if (skb_ensure_writable(skb, skb->len))
		goto drop_unaccounted;

	spin_lock(&qs->rx_lock);
	if (qs->closing) {
		spin_unlock(&qs->rx_lock);
		goto drop_unaccounted;
	}
	if (!qs->rx) {
		spin_unlock(&qs->rx_lock);
		return 1;
	}
	if (unlikely(!qs_hook_intact(qs))) {
		spin_unlock(&qs->rx_lock);
		goto drop_unaccounted;
	}
	if (unlikely(!qs_rx_simd_usable())) {
		/*
		 * This softirq interrupted a kernel FPU section of someone else's (the module's own
		 * run with bottom halves off, qs_rust()): the Rust object cannot run. Dropped and
		 * counted, QUIC's loss recovery resends it. Not queued sealed for later: a reader
		 * already inside UDP's own recvmsg would return it as it is.
		 */
		spin_unlock(&qs->rx_lock);
		atomic64_inc(&qs_rx_fpu_drops);
		goto drop_unaccounted;
	}
	err = qs_open_skb(qs, skb);
	spin_unlock(&qs->rx_lock);
	if (err == -EBADMSG)
		goto drop;
	if (err)
		goto drop_unaccounted;
	return 1;

drop_unaccounted:
	atomic_inc(&sk->sk_drops);
drop:
	kfree_skb(skb);
	return 0;
}

/* ---- ICMP errors -------------------------------------------------------------------- */

/*
 * With encap_type set, 6.1's __udp4_lib_err()/__udp6_lib_err() take this socket for a tunnel:
 * they still update the path MTU (ipv4_sk_update_pmtu(), ip6_sk_update_pmtu() after
 * ip6_sk_accept_pmtu()) and follow redirects, and then, instead of reporting the error to
 * the socket, call udp_sk(sk)->encap_err_rcv(sk, skb, udp_offset) if set (softirq, RCU, no
 * reference on sk; skb->data at the offending datagram's IP header, the UDP header's first
 * eight bytes pulled, the transport header at the ICMP header and the network header at the
 * outer IP header, as for plain UDP). The handler gets neither errno nor info, so both are
 * worked out again from the ICMP header, exactly as the plain path and icmp_unreach()/
 * icmpv6_rcv() do, and the rest of the plain path is repeated: the error queue entry when
 * IP_RECVERR/IPV6_RECVERR is on, then sk_err and sk_error_report(). ip_icmp_error() and
 * ipv6_icmp_error() are not exported in 6.1, so qs_ip_icmp_error()/qs_ipv6_icmp_error() are
 * copies of them over exported pieces (skb_clone, sock_queue_err_skb,
 * ip_icmp_error_rfc4884). The path MTU is not touched here: the stack has done it.
 */
static void qs_ip_icmp_error(struct sock *sk, struct sk_buff *skb, int err, __be16 port,
			     u32 info, u8 *payload)
{
	struct sock_exterr_skb *serr;

	skb = skb_clone(skb, GFP_ATOMIC);
	if (!skb)
		return;
	serr = SKB_EXT_ERR(skb);
	serr->ee.ee_errno = err;
	serr->ee.ee_origin = SO_EE_ORIGIN_ICMP;
	serr->ee.ee_type = icmp_hdr(skb)->type;
	serr->ee.ee_code = icmp_hdr(skb)->code;
	serr->ee.ee_pad = 0;
	serr->ee.ee_info = info;
	serr->ee.ee_data = 0;
	serr->addr_offset = (u8 *)&(((struct iphdr *)(icmp_hdr(skb) + 1))->daddr) -
			    skb_network_header(skb);
	serr->port = port;
	if (skb_pull(skb, payload - skb->data)) {
		if (inet_sk(sk)->recverr_rfc4884) {
			switch (icmp_hdr(skb)->type) {
			case ICMP_DEST_UNREACH:
			case ICMP_TIME_EXCEEDED:
			case ICMP_PARAMETERPROB:
				ip_icmp_error_rfc4884(skb, &serr->ee.ee_rfc4884,
						      sizeof(struct icmphdr),
						      icmp_hdr(skb)->un.reserved[1] * 4);
			}
		}
		skb_reset_transport_header(skb);
		if (sock_queue_err_skb(sk, skb) == 0)
			return;
	}
	kfree_skb(skb);
}

/* __udp4_lib_err() from its switch on, for a socket it found. */
static void qs_err4(struct sock *sk, struct sk_buff *skb, unsigned int udp_offset)
{
	const struct icmphdr *icmph = icmp_hdr(skb);
	struct udphdr *uh = (struct udphdr *)(skb->data + udp_offset);
	struct inet_sock *inet = inet_sk(sk);
	int harderr = 0, err;
	u32 info = 0;

	switch (icmph->type) {
	default:
	case ICMP_TIME_EXCEEDED:
		err = EHOSTUNREACH;
		break;
	case ICMP_SOURCE_QUENCH:
		return;
	case ICMP_PARAMETERPROB:
		err = EPROTO;
		harderr = 1;
		info = ntohl(icmph->un.gateway) >> 24; /* icmp_unreach() */
		break;
	case ICMP_DEST_UNREACH:
		if (icmph->code == ICMP_FRAG_NEEDED) {
			if (inet->pmtudisc == IP_PMTUDISC_DONT)
				return;
			err = EMSGSIZE;
			harderr = 1;
			/* icmp_unreach(): the MTU only with ip_no_pmtu_disc 0 (with 2, and 3
			 * for UDP, the error never gets here). */
			if (!READ_ONCE(dev_net(skb->dev)->ipv4.sysctl_ip_no_pmtu_disc))
				info = ntohs(icmph->un.frag.mtu);
			break;
		}
		err = EHOSTUNREACH;
		if (icmph->code <= NR_ICMP_UNREACH) {
			harderr = icmp_err_convert[icmph->code].fatal;
			err = icmp_err_convert[icmph->code].errno;
		}
		break;
	case ICMP_REDIRECT:
		return;
	}
	if (!inet->recverr) {
		if (!harderr || sk->sk_state != TCP_ESTABLISHED)
			return;
	} else {
		qs_ip_icmp_error(sk, skb, err, uh->dest, info, (u8 *)(uh + 1));
	}
	sk->sk_err = err;
	sk_error_report(sk);
}

#if IS_ENABLED(CONFIG_IPV6)
static void qs_ipv6_icmp_error(struct sock *sk, struct sk_buff *skb, int err, __be16 port,
			       u32 info, u8 *payload)
{
	struct icmp6hdr *icmph = icmp6_hdr(skb);
	struct sock_exterr_skb *serr;

	skb = skb_clone(skb, GFP_ATOMIC);
	if (!skb)
		return;
	skb->protocol = htons(ETH_P_IPV6);
	serr = SKB_EXT_ERR(skb);
	serr->ee.ee_errno = err;
	serr->ee.ee_origin = SO_EE_ORIGIN_ICMP6;
	serr->ee.ee_type = icmph->icmp6_type;
	serr->ee.ee_code = icmph->icmp6_code;
	serr->ee.ee_pad = 0;
	serr->ee.ee_info = info;
	serr->ee.ee_data = 0;
	serr->addr_offset = (u8 *)&(((struct ipv6hdr *)(icmph + 1))->daddr) -
			    skb_network_header(skb);
	serr->port = port;
	__skb_pull(skb, payload - skb->data);
	if (inet6_sk(sk)->recverr_rfc4884) {
		switch (icmp6_hdr(skb)->icmp6_type) {
		case ICMPV6_TIME_EXCEED:
		case ICMPV6_DEST_UNREACH:
			ip_icmp_error_rfc4884(skb, &serr->ee.ee_rfc4884, sizeof(struct icmp6hdr),
					      icmp6_hdr(skb)->icmp6_datagram_len * 8);
		}
	}
	skb_reset_transport_header(skb);
	if (sock_queue_err_skb(sk, skb))
		kfree_skb(skb);
}

/* __udp6_lib_err() from icmpv6_err_convert() on, for a socket it found. icmpv6_rcv() passes
 * the ICMPv6 header's second word as info (the MTU of a Packet Too Big). */
static void qs_err6(struct sock *sk, struct sk_buff *skb, unsigned int udp_offset)
{
	const struct icmp6hdr *icmph = icmp6_hdr(skb);
	struct udphdr *uh = (struct udphdr *)(skb->data + udp_offset);
	struct ipv6_pinfo *np = inet6_sk(sk);
	int harderr, err;

	if (!np)
		return;
	harderr = icmpv6_err_convert(icmph->icmp6_type, icmph->icmp6_code, &err);
	if (icmph->icmp6_type == ICMPV6_PKT_TOOBIG && np->pmtudisc != IPV6_PMTUDISC_DONT)
		harderr = 1;
	if (icmph->icmp6_type == NDISC_REDIRECT)
		return;
	if (!np->recverr) {
		if (!harderr || sk->sk_state != TCP_ESTABLISHED)
			return;
	} else {
		qs_ipv6_icmp_error(sk, skb, err, uh->dest, ntohl(icmph->icmp6_mtu),
				   (u8 *)(uh + 1));
	}
	sk->sk_err = err;
	sk_error_report(sk);
}
#endif

/*
 * udp_sk(sk)->encap_err_rcv: both families' error paths call it (an AF_INET6 socket bound to
 * [::] also gets IPv4 errors, from __udp4_lib_err()), so the offending datagram's IP version
 * picks the path, as the lookup that found the socket did.
 */
static void qs_encap_err_rcv(struct sock *sk, struct sk_buff *skb, unsigned int udp_offset)
{
#if IS_ENABLED(CONFIG_IPV6)
	if (((const struct iphdr *)skb->data)->version == 6) {
		qs_err6(sk, skb, udp_offset);
		return;
	}
#endif
	qs_err4(sk, skb, udp_offset);
}

/*
 * The cmsg for a datagram, from the stamp encap_rcv left (qs_install_hook() makes sure every
 * queued datagram has one before QUICSEAL_RECV_INFO can be on); every field is checked
 * against the datagram's length, and false means no cmsg.
 */
static bool qs_rx_info_of(struct sk_buff *skb, struct quicseal_rx_info *info)
{
	struct qs_skb_cb *cb = QS_SKB_CB(skb);
	u8 status = cb->magic_status ^ QS_CB_MAGIC;
	unsigned int header_len = cb->flags_hdr >> 1;

	if (status > QUICSEAL_RX_PLAIN || cb->passthrough_len > skb->len)
		return false;
	memset(info, 0, sizeof(*info));
	info->size = sizeof(*info);
	info->status = status;
	if (status == QUICSEAL_RX_PLAIN)
		return true;
	info->pn = ((u64)cb->pn_hi << 32) | cb->pn_lo;
	info->generation = cb->generation;
	info->passthrough_len = cb->passthrough_len;
	info->flags = cb->flags_hdr & QUICSEAL_RX_F_KEY_UPDATE;
	if (status == QUICSEAL_RX_OPENED) {
		if (!header_len || cb->passthrough_len + header_len > skb->len)
			return false;
		info->header_len = header_len;
		info->payload_len = skb->len - cb->passthrough_len - header_len;
	}
	return true;
}

/*
 * udp_recvmsg()/udpv6_recvmsg() plus the QUICSEAL_CMSG_RX control message: used only when
 * the program asked for it (QUICSEAL_RECV_INFO), otherwise recvmsg is UDP's own. Follows
 * Linux 6.1's two functions step by step, with two differences for AF_INET6 (6.1 exports
 * neither ipv6_recv_rxpmtu() nor the halves of ip6_datagram_recv_ctl()): a pending
 * IPV6_RECVPATHMTU report is left to udpv6_recvmsg(), and an IPv4 datagram on a dual-stack
 * socket gets its IPv4 control messages but not the IPv6 ones (IPV6_PKTINFO and so on).
 */
static int qs_recvmsg_ctx(struct qs_ctx *qs, struct sock *sk, struct msghdr *msg, size_t len,
			  int flags, int *addr_len)
{
	struct inet_sock *inet = inet_sk(sk);
	bool v6 = sk->sk_family == AF_INET6, is_udp4;
	struct ipv6_pinfo *np = v6 ? inet6_sk(sk) : NULL;
	struct quicseal_rx_info info;
	struct sk_buff *skb;
	unsigned int ulen, copied;
	int off, err, peeking = flags & MSG_PEEK;

	/* Receive keys but no hook: datagrams would be queued unopened. */
	if (READ_ONCE(qs->rx) && !(flags & MSG_ERRQUEUE) && unlikely(!qs_hook_intact(qs)))
		return -EIO;
	if (!READ_ONCE(qs->recv_info) || (flags & MSG_ERRQUEUE) ||
	    (np && np->rxopt.bits.rxpmtu && READ_ONCE(np->rxpmtu)))
		return qs_base(sk)->recvmsg(sk, msg, len, flags, addr_len);

try_again:
	off = sk_peek_offset(sk, flags);
	skb = __skb_recv_udp(sk, flags, &off, &err);
	if (!skb)
		return err;

	ulen = udp_skb_len(skb);
	copied = len;
	if (copied > ulen - off)
		copied = ulen - off;
	else if (copied < ulen)
		msg->msg_flags |= MSG_TRUNC;
	is_udp4 = skb->protocol == htons(ETH_P_IP);

	if (!udp_skb_csum_unnecessary(skb) && __skb_checksum_complete(skb)) {
		/* Only plain datagrams queued before receive keys can get here. */
		if (!__sk_queue_drop_skb(sk, &udp_sk(sk)->reader_queue, skb, flags,
					 udp_skb_destructor)) {
			if (is_udp4) {
				UDP_INC_STATS(sock_net(sk), UDP_MIB_CSUMERRORS, 0);
				UDP_INC_STATS(sock_net(sk), UDP_MIB_INERRORS, 0);
			} else {
				UDP6_INC_STATS(sock_net(sk), UDP_MIB_CSUMERRORS, 0);
				UDP6_INC_STATS(sock_net(sk), UDP_MIB_INERRORS, 0);
			}
		}
		kfree_skb(skb);
		cond_resched();
		msg->msg_flags &= ~MSG_TRUNC;
		goto try_again;
	}

	err = skb_copy_datagram_msg(skb, off, msg, copied);
	if (unlikely(err)) {
		if (!peeking) {
			atomic_inc(&sk->sk_drops);
			if (is_udp4)
				UDP_INC_STATS(sock_net(sk), UDP_MIB_INERRORS, 0);
			else
				UDP6_INC_STATS(sock_net(sk), UDP_MIB_INERRORS, 0);
		}
		kfree_skb(skb);
		return err;
	}
	if (!peeking) {
		if (is_udp4)
			UDP_INC_STATS(sock_net(sk), UDP_MIB_INDATAGRAMS, 0);
		else
			UDP6_INC_STATS(sock_net(sk), UDP_MIB_INDATAGRAMS, 0);
	}

	sock_recv_cmsgs(msg, sk, skb);
	if (msg->msg_name && !v6) {
		DECLARE_SOCKADDR(struct sockaddr_in *, sin, msg->msg_name);

		sin->sin_family = AF_INET;
		sin->sin_port = udp_hdr(skb)->source;
		sin->sin_addr.s_addr = ip_hdr(skb)->saddr;
		memset(sin->sin_zero, 0, sizeof(sin->sin_zero));
		*addr_len = sizeof(*sin);
		BPF_CGROUP_RUN_PROG_UDP4_RECVMSG_LOCK(sk, (struct sockaddr *)sin);
	} else if (msg->msg_name) {
		DECLARE_SOCKADDR(struct sockaddr_in6 *, sin6, msg->msg_name);

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = udp_hdr(skb)->source;
		sin6->sin6_flowinfo = 0;
		if (is_udp4) {
			ipv6_addr_set_v4mapped(ip_hdr(skb)->saddr, &sin6->sin6_addr);
			sin6->sin6_scope_id = 0;
		} else {
			sin6->sin6_addr = ipv6_hdr(skb)->saddr;
			sin6->sin6_scope_id = ipv6_iface_scope_id(&sin6->sin6_addr, inet6_iif(skb));
		}
		*addr_len = sizeof(*sin6);
		BPF_CGROUP_RUN_PROG_UDP6_RECVMSG_LOCK(sk, (struct sockaddr *)sin6);
	}
	if (is_udp4) {
		if (inet->cmsg_flags)
			ip_cmsg_recv_offset(msg, sk, skb, sizeof(struct udphdr), off);
	} else if (np && np->rxopt.all) {
		ip6_datagram_recv_ctl(sk, msg, skb);
	}
	if (READ_ONCE(qs->recv_info) && qs_rx_info_of(skb, &info))
		put_cmsg(msg, SOL_QUICSEAL, QUICSEAL_CMSG_RX, sizeof(info), &info);

	err = copied;
	if (flags & MSG_TRUNC)
		err = ulen;
	skb_consume_udp(sk, skb, peeking ? -err : err);
	return err;
}

static int qs_recvmsg(struct sock *sk, struct msghdr *msg, size_t len, int flags, int *addr_len)
{
	struct qs_ctx *qs = qs_get(sk);
	int err;

	if (!qs)
		return qs_base(sk)->recvmsg(sk, msg, len, flags, addr_len);
	err = qs_recvmsg_ctx(qs, sk, msg, len, flags, addr_len);
	qs_put(qs);
	return err;
}

/* ---- send ------------------------------------------------------------------------- */

struct qs_send_args {
	u16 gso_size;
	u64 pn;
};

static int qs_parse_cmsgs(struct sock *sk, struct msghdr *msg, struct qs_send_args *args)
{
	struct cmsghdr *cmsg;

	args->gso_size = READ_ONCE(udp_sk(sk)->gso_size);
	args->pn = QUICSEAL_NONE;
	if (!msg->msg_controllen)
		return 0;
	for_each_cmsghdr(cmsg, msg) {
		if (!CMSG_OK(msg, cmsg))
			return -EINVAL;
		if (cmsg->cmsg_level == SOL_UDP && cmsg->cmsg_type == UDP_SEGMENT) {
			if (cmsg->cmsg_len != CMSG_LEN(sizeof(__u16)))
				return -EINVAL;
			args->gso_size = *(__u16 *)CMSG_DATA(cmsg);
		} else if (cmsg->cmsg_level == SOL_QUICSEAL) {
			if (cmsg->cmsg_type != QUICSEAL_CMSG_PN ||
			    cmsg->cmsg_len != CMSG_LEN(sizeof(__u64)))
				return -EINVAL;
			memcpy(&args->pn, CMSG_DATA(cmsg), sizeof(args->pn));
		}
	}
	return 0;
}

/* Unmaps (in reverse order) and unpins what qs_pin_source() took. */
static void qs_release_source(struct qs_seg *src, unsigned int nsrc, struct page **pages,
			      unsigned int npages)
{
	unsigned int i;

	for (i = nsrc; i-- > 0;)
		kunmap_local(src[i].base);
	for (i = 0; i < npages; i++)
		put_page(pages[i]);
}

/*
 * Pins the `len` bytes ahead of a user iterator and maps them page by page into src[]:
 * the cipher then reads the user's memory directly. -E2BIG when they need more than
 * QS_MAX_SG pieces (what was taken is counted in npages and nsrc, for the caller to release).
 */
static int qs_pin_source(struct iov_iter *iter, size_t len, struct page **pages,
			 unsigned int *npages, struct qs_seg *src, unsigned int *nsrc)
{
	size_t pinned = 0;

	while (pinned < len) {
		size_t start, got = 0;
		unsigned int k, count;
		ssize_t n;

		if (*npages >= QS_MAX_SG)
			return -E2BIG;
		n = iov_iter_get_pages2(iter, pages + *npages, len - pinned, QS_MAX_SG - *npages,
					&start);
		if (n <= 0)
			return n ? n : -EFAULT;
		count = DIV_ROUND_UP(start + n, PAGE_SIZE);
		for (k = 0; k < count; k++) {
			size_t piece = min_t(size_t, PAGE_SIZE - start, n - got);

			src[*nsrc].base = kmap_local_page(pages[*npages + k]) + start;
			src[*nsrc].len = piece;
			(*nsrc)++;
			got += piece;
			start = 0;
		}
		*npages += count;
		pinned += n;
	}
	return 0;
}

/*
 * Sends `len` sealed bytes held in `pages` as one datagram or GSO batch without copying them
 * again. The family's own sendmsg (udp_sendmsg/udpv6_sendmsg: destination, IP options and
 * UDP_SEGMENT from the caller's msghdr) gets a bio_vec iterator over the pages, MSG_ZEROCOPY
 * and a zero-copy buffer in msg_ubuf, the way io_uring sends: __ip_append_data() and
 * __ip6_append_data() then attach the pages as the skb's fragments
 * (skb_zerocopy_iter_dgram(), which takes its own page references) when the route's device
 * has scatter-gather and checksum offload, and copy them otherwise. The buffer is the kernel's
 * own (msg_zerocopy_realloc(), with no pinned user memory to account), so its completion
 * callback is msg_zerocopy_callback() in the kernel, never module code that could be unloaded
 * while an skb is in flight; its completion report is suppressed (len = 0) unless tx_zc_report
 * asks for it. Without a buffer (optmem exhausted) the pages are sent and copied.
 */
static noinline int qs_send_pages(struct sock *sk, struct msghdr *msg, struct page **pages,
				  unsigned int npages, size_t len)
{
	struct bio_vec bvec[MAX_SKB_FRAGS];
	struct msghdr zc = *msg;
	struct ubuf_info *uarg;
	unsigned int i;
	size_t left = len;
	int err;

	if (len > (size_t)npages * PAGE_SIZE)
		return -EIO; /* more than the core was given room for */
	for (i = 0; i < npages && left; i++) {
		size_t piece = min_t(size_t, left, PAGE_SIZE);

		bvec_set_page(&bvec[i], pages[i], piece, 0);
		left -= piece;
	}
	iov_iter_bvec(&zc.msg_iter, ITER_SOURCE, bvec, i, len);
	zc.msg_flags &= ~MSG_ZEROCOPY;
	zc.msg_ubuf = NULL;
	zc.sg_from_iter = NULL;
	uarg = msg_zerocopy_realloc(sk, 0, NULL);
	if (uarg) {
		if (!READ_ONCE(tx_zc_report))
			uarg_to_msgzc(uarg)->len = 0;
		zc.msg_flags |= MSG_ZEROCOPY;
		zc.msg_ubuf = uarg;
		atomic64_inc(&qs_tx_page_sends);
	} else {
		atomic64_inc(&qs_tx_page_fallbacks);
	}
	err = qs_base(sk)->sendmsg(sk, &zc, len);
	net_zcopy_put(uarg); /* the skbs hold their own references */
	if (err < 0)
		return err;
	return err == len ? 0 : -EIO;
}

/*
 * Appends SOL_UDP/UDP_SEGMENT = gso_size (0 included: no segmentation) to the kernel copy of
 * the caller's control messages, so that udp_cmsg_send() takes the value sealing used
 * (appended last, it wins over the caller's own). The caller's buffer is restored by
 * qs_unpin_gso().
 */
static int qs_pin_gso(struct msghdr *msg, u16 gso_size, char *stack, size_t stack_len,
		      void **alloc, void **saved, size_t *saved_len)
{
	size_t old = msg->msg_controllen, at = CMSG_ALIGN(old);
	size_t total = at + CMSG_SPACE(sizeof(u16));
	struct cmsghdr *cmsg;
	char *ctl;

	if (old && msg->msg_control_is_user)
		return -EINVAL; /* sendmsg() always hands protocols a kernel copy */
	*alloc = NULL;
	ctl = stack;
	if (total > stack_len) {
		ctl = kmalloc(total, GFP_KERNEL);
		if (!ctl)
			return -ENOBUFS;
		*alloc = ctl;
	}
	if (old)
		memcpy(ctl, msg->msg_control, old);
	memset(ctl + old, 0, total - old);
	cmsg = (struct cmsghdr *)(ctl + at);
	cmsg->cmsg_len = CMSG_LEN(sizeof(u16));
	cmsg->cmsg_level = SOL_UDP;
	cmsg->cmsg_type = UDP_SEGMENT;
	memcpy(CMSG_DATA(cmsg), &gso_size, sizeof(gso_size));
	*saved = msg->msg_control;
	*saved_len = old;
	msg->msg_control = ctl;
	msg->msg_control_is_user = false;
	msg->msg_controllen = total;
	return 0;
}

static void qs_unpin_gso(struct msghdr *msg, void *alloc, void *saved, size_t saved_len)
{
	msg->msg_control = saved;
	msg->msg_controllen = saved_len;
	kfree(alloc);
}

/*
 * Seals the user's cleartext: the user's pages are pinned and read once by the cipher, which
 * writes the ciphertext once (the one copy, fused with encryption) into fresh pages that the
 * skb then carries (tx_pages=1, qs_send_pages()), or into a buffer the family's sendmsg
 * copies (tx_pages=0: a second copy). See docs/kernel-uapi.md.
 */
static int qs_sendmsg_ctx(struct qs_ctx *qs, struct sock *sk, struct msghdr *msg, size_t len)
{
	struct page *pages[QS_MAX_SG], *out_pages[MAX_SKB_FRAGS];
	struct qs_seg src[QS_MAX_SG], dst[MAX_SKB_FRAGS];
	struct qs_seal_result res = {};
	struct quicseal_counters delta;
	struct qs_send_args args;
	struct iov_iter saved_iter;
	unsigned int npages = 0, nsrc = 0, nout = 0;
	bool use_pages = false;
	size_t segments, out_max;
	void *bounce = NULL, *out = NULL;
	struct kvec kv;
	char gso_ctl[128] __aligned(sizeof(long));
	void *ctl_alloc = NULL, *saved_ctl;
	size_t saved_ctllen;
	int err, status;

	if (!READ_ONCE(qs->tx))
		return qs_base(sk)->sendmsg(sk, msg, len);
	if (READ_ONCE(qs_poisoned))
		return -EIO;
	/* A datagram must arrive whole: no corking across calls. */
	if ((msg->msg_flags & MSG_MORE) || udp_test_bit(CORK, sk))
		return -EOPNOTSUPP;
	/* MSG_PROBE sends nothing: it would spend packet numbers for no datagram. */
	if (msg->msg_flags & MSG_PROBE)
		return -EOPNOTSUPP;
	/* Cleartext corked (MSG_MORE) before the keys: sealed bytes must not join it. */
	if (READ_ONCE(udp_sk(sk)->pending))
		return -EBUSY;
	err = qs_parse_cmsgs(sk, msg, &args);
	if (err)
		return err;
	if (len == 0 || len > 0xffff)
		return len ? -EMSGSIZE : -EBADMSG;
	if (args.gso_size && args.pn != QUICSEAL_NONE)
		return -EINVAL;
	/* The core's arithmetic: how many datagrams, and how long once sealed (or why not). */
	err = qs_errno(qs_gso_layout(len, args.gso_size, &segments, &out_max));
	if (err)
		return err;
	/* The largest UDP payload the family's sendmsg takes (IPv4: 65535 - 20 - 8; IPv6:
	 * 65535 - 8), checked before sealing so that the refusal spends no packet number. */
	if (out_max > (sk->sk_family == AF_INET6 ? 65527 : 65507))
		return -EMSGSIZE;
	/* Pin the GSO size sealing uses: the family's sendmsg would read the socket option
	 * again, and a concurrent setsockopt(UDP_SEGMENT) would change the stride. */
	err = qs_pin_gso(msg, args.gso_size, gso_ctl, sizeof(gso_ctl), &ctl_alloc, &saved_ctl,
			 &saved_ctllen);
	if (err)
		return err;

	/* Source: the user's pages, pinned and mapped. Kernel iterators, and iovecs too
	 * scattered for QS_MAX_SG pieces, take a bounce copy instead. */
	saved_iter = msg->msg_iter;
	if (user_backed_iter(&msg->msg_iter)) {
		err = qs_pin_source(&msg->msg_iter, len, pages, &npages, src, &nsrc);
		if (err == -E2BIG) {
			qs_release_source(src, nsrc, pages, npages);
			nsrc = npages = 0;
			msg->msg_iter = saved_iter;
		} else if (err) {
			goto out_pages;
		}
	}
	if (!nsrc) {
		bounce = kvmalloc(len, GFP_KERNEL);
		if (!bounce) {
			err = -ENOBUFS;
			goto out_pages;
		}
		if (!copy_from_iter_full(bounce, len, &msg->msg_iter)) {
			err = -EFAULT;
			goto out_pages;
		}
		src[0].base = bounce;
		src[0].len = len;
		nsrc = 1;
	}

	/* The user's data is copied by the cipher: UDP must not try to pin a kernel iterator. */
	msg->msg_flags &= ~MSG_ZEROCOPY;
	/* Destination: pages for the skb, or a buffer UDP copies. */
	use_pages = READ_ONCE(tx_pages) && DIV_ROUND_UP(out_max, PAGE_SIZE) <= MAX_SKB_FRAGS;
	if (use_pages) {
		for (nout = 0; nout < DIV_ROUND_UP(out_max, PAGE_SIZE); nout++) {
			out_pages[nout] = alloc_page(GFP_KERNEL);
			if (!out_pages[nout]) {
				err = -ENOBUFS;
				goto out_pages;
			}
			dst[nout].base = page_address(out_pages[nout]);
			dst[nout].len = min_t(size_t, PAGE_SIZE, out_max - nout * PAGE_SIZE);
		}
	} else {
		out = kvmalloc(out_max, GFP_KERNEL);
		if (!out) {
			err = -ENOBUFS;
			goto out_pages;
		}
		dst[0].base = out;
		dst[0].len = out_max;
	}
	memset(&delta, 0, sizeof(delta));
	mutex_lock(&qs->tx_lock);
	status = qs->tx ? qs_tx_seal(qs->tx, src, nsrc, dst, use_pages ? nout : 1, args.gso_size,
				     args.pn, &res, &delta)
			: QS_KEY_UNAVAILABLE;
	err = qs_errno(status);
	mutex_unlock(&qs->tx_lock);
	qs_add_totals(&delta);
	if (!err && (res.len == 0 || res.len > out_max))
		err = -EIO; /* trust but verify: the core wrote at most out_max */
	if (!err && use_pages)
		err = qs_send_pages(sk, msg, out_pages, nout, res.len);

out_pages:
	if (!bounce)
		qs_release_source(src, nsrc, pages, npages);
	else
		kvfree_sensitive(bounce, len); /* the user's cleartext */
	while (nout > 0)
		put_page(out_pages[--nout]); /* the skb holds its own references */
	if (err || use_pages) {
		kvfree(out);
		qs_unpin_gso(msg, ctl_alloc, saved_ctl, saved_ctllen);
		return err ? err : len;
	}

	kv.iov_base = out;
	kv.iov_len = res.len;
	iov_iter_kvec(&msg->msg_iter, ITER_SOURCE, &kv, 1, res.len);
	err = qs_base(sk)->sendmsg(sk, msg, res.len);
	msg->msg_iter = saved_iter;
	iov_iter_advance(&msg->msg_iter, len);
	kvfree(out);
	qs_unpin_gso(msg, ctl_alloc, saved_ctl, saved_ctllen);
	if (err < 0)
		return err;
	return err == res.len ? len : -EIO;
}

static int qs_sendmsg(struct sock *sk, struct msghdr *msg, size_t len)
{
	struct qs_ctx *qs = qs_get(sk);
	int err;

	if (!qs)
		return qs_base(sk)->sendmsg(sk, msg, len);
	err = qs_sendmsg_ctx(qs, sk, msg, len);
	qs_put(qs);
	return err;
}

static int qs_sendpage(struct sock *sk, struct page *page, int offset, size_t size, int flags)
{
	struct qs_ctx *qs = qs_get(sk);
	bool keyed = qs && READ_ONCE(qs->tx);

	if (qs)
		qs_put(qs);
	/* Pages would go out unsealed: only a plain (keyless) socket may splice. */
	if (keyed)
		return -EOPNOTSUPP;
	if (!qs_base(sk)->sendpage)
		return sock_no_sendpage(sk->sk_socket, page, offset, size, flags);
	return qs_base(sk)->sendpage(sk, page, offset, size, flags);
}

/* ---- socket options --------------------------------------------------------------- */

/*
 * Makes the module's encap_rcv the socket's receive hook, once, before receive keys or
 * QUICSEAL_RECV_INFO are published: the static key first, then the hook. A datagram that was
 * already past the hook check (softirq, RCU) when it was published is queued by the time
 * the grace period ends (expedited: this runs once per socket, in setsockopt), so the walk over both receive queues afterwards stamps every
 * datagram the hook did not see as QUICSEAL_RX_PLAIN (the hook stamps the same while no
 * receive keys are installed). Process context: sleeps.
 */
static int qs_install_hook(struct qs_ctx *qs)
{
	struct sock *sk = qs->sk;
	struct sk_buff_head *queues[] = { &sk->sk_receive_queue, &udp_sk(sk)->reader_queue };
	struct sk_buff *skb;
	unsigned int i;

	mutex_lock(&qs->tx_lock);
	if (qs->hook || qs->dead) {
		mutex_unlock(&qs->tx_lock);
		return qs->dead ? -ENOENT : 0;
	}
	udp_tunnel_encap_enable(sk);
	/* The error handler before encap_type: from then on ICMP errors go to it. */
	WRITE_ONCE(udp_sk(sk)->encap_err_rcv, qs_encap_err_rcv);
	WRITE_ONCE(udp_sk(sk)->encap_rcv, qs_encap_rcv);
	WRITE_ONCE(udp_sk(sk)->encap_type, QS_ENCAP_TYPE);
	synchronize_rcu_expedited();
	for (i = 0; i < ARRAY_SIZE(queues); i++) {
		spin_lock_bh(&queues[i]->lock);
		skb_queue_walk(queues[i], skb)
			qs_stamp_plain(skb);
		spin_unlock_bh(&queues[i]->lock);
	}
	qs->hook = true;
	mutex_unlock(&qs->tx_lock);
	return 0;
}

static int qs_set_keys(struct qs_ctx *qs, int optname, sockptr_t optval, unsigned int optlen)
{
	struct quicseal_keys keys;
	void *mem = NULL, *old_mem;
	void *state, *old;
	int status;

	/* Either layout; the Rust side always sees the whole struct, zero past `size`. */
	if (optlen != QUICSEAL_KEYS_SIZE_V1 && optlen != QUICSEAL_KEYS_SIZE_V2)
		return -EINVAL;
	memset(&keys, 0, sizeof(keys));
	if (copy_from_sockptr(&keys, optval, optlen)) {
		memzero_explicit(&keys, sizeof(keys));
		return -EFAULT;
	}
	/* The receive cmsg's stamp keeps 32 bits of generation (2^32 key updates: never). */
	if (keys.size != optlen || keys.generation > U32_MAX) {
		memzero_explicit(&keys, sizeof(keys));
		return -EINVAL;
	}
	if (optname == QUICSEAL_TX_KEYS)
		state = qs_alloc_state(qs_tx_size, qs_tx_align, &mem);
	else
		state = qs_alloc_state(qs_rx_size, qs_rx_align, &mem);
	if (!state) {
		memzero_explicit(&keys, sizeof(keys));
		return -ENOMEM;
	}
	if (optname == QUICSEAL_TX_KEYS)
		status = qs_tx_init(state, &keys);
	else
		status = qs_rx_init(state, &keys);
	memzero_explicit(&keys, sizeof(keys));
	if (status != QS_OK) {
		qs_free_state(mem, optname == QUICSEAL_TX_KEYS ? qs_tx_mem_size() : qs_rx_mem_size());
		return qs_errno(status);
	}

	/* A detach that got in first (`dead`, checked under each direction's lock) wins: the
	 * new state is freed rather than installed on a socket that is plain UDP again. */
	if (optname == QUICSEAL_TX_KEYS) {
		mutex_lock(&qs->tx_lock);
		old = qs->dead ? state : qs->tx;
		old_mem = qs->dead ? mem : qs->tx_mem;
		if (!qs->dead) {
			qs->tx_mem = mem;
			WRITE_ONCE(qs->tx, state);
		}
		mutex_unlock(&qs->tx_lock);
		qs_free_tx(old, old_mem);
	} else {
		if (qs_install_hook(qs) == 0) {
			spin_lock_bh(&qs->rx_lock);
			old = qs->dead ? state : qs->rx;
			old_mem = qs->dead ? mem : qs->rx_mem;
			if (!qs->dead) {
				qs->rx_mem = mem;
				qs->rx = state;
			}
			spin_unlock_bh(&qs->rx_lock);
		} else {
			old = state;
			old_mem = mem;
		}
		qs_free_rx(old, old_mem);
	}
	return old == state ? -ENOENT : 0;
}

static int qs_setsockopt_ctx(struct qs_ctx *qs, struct sock *sk, int level, int optname,
			     sockptr_t optval, unsigned int optlen)
{
	u64 largest;
	int val;

	/* The socket's encap hook is ours; GRO batches are sliced. udp_setsockopt() and
	 * udpv6_setsockopt() hand SOL_UDPLITE to udp_lib_setsockopt() too. */
	if ((level == SOL_UDP || level == SOL_UDPLITE) &&
	    (optname == UDP_ENCAP || optname == UDP_GRO))
		return -EOPNOTSUPP;
	/* IPV6_ADDRFORM would swap in plain udp_prot: unsealed sends, state never freed. */
	if (level == SOL_IPV6 && optname == IPV6_ADDRFORM)
		return -EOPNOTSUPP;
	if (level != SOL_QUICSEAL)
		return qs_base(sk)->setsockopt(sk, level, optname, optval, optlen);
	if (READ_ONCE(qs_poisoned))
		return -EIO;

	switch (optname) {
	case QUICSEAL_TX_KEYS:
	case QUICSEAL_RX_KEYS:
		return qs_set_keys(qs, optname, optval, optlen);
	case QUICSEAL_RECV_INFO:
		if (optlen != sizeof(int))
			return -EINVAL;
		if (copy_from_sockptr(&val, optval, sizeof(val)))
			return -EFAULT;
		if (val && qs_install_hook(qs))
			return -ENOENT;
		WRITE_ONCE(qs->recv_info, !!val);
		return 0;
	case QUICSEAL_RX_LARGEST_PN:
		if (optlen != sizeof(u64))
			return -EINVAL;
		if (copy_from_sockptr(&largest, optval, sizeof(largest)))
			return -EFAULT;
		spin_lock_bh(&qs->rx_lock);
		if (qs->rx)
			QS_RUST(QS_OP_RX_SET_LARGEST, (uintptr_t)qs->rx, largest);
		spin_unlock_bh(&qs->rx_lock);
		return qs->rx ? 0 : -ENOKEY;
	case QUICSEAL_RX_RETIRE:
	case QUICSEAL_RX_ADVANCE:
		val = qs->rx ? QS_OK : QS_KEY_UNAVAILABLE;
		spin_lock_bh(&qs->rx_lock);
		if (qs->rx && optname == QUICSEAL_RX_RETIRE)
			QS_RUST(QS_OP_RX_RETIRE, (uintptr_t)qs->rx);
		else if (qs->rx)
			val = qs_rx_advance(qs->rx);
		spin_unlock_bh(&qs->rx_lock);
		return qs_errno(val);
	default:
		return -ENOPROTOOPT;
	}
}

/* One direction's struct quicseal_info (all zero but size without keys). */
static void qs_info(struct qs_ctx *qs, bool tx, struct quicseal_info *info)
{
	memset(info, 0, sizeof(*info));
	info->size = sizeof(*info);
	if (tx) {
		mutex_lock(&qs->tx_lock);
		if (qs->tx)
			QS_RUST(QS_OP_TX_INFO, (uintptr_t)qs->tx, (uintptr_t)info);
		mutex_unlock(&qs->tx_lock);
	} else {
		spin_lock_bh(&qs->rx_lock);
		if (qs->rx)
			QS_RUST(QS_OP_RX_INFO, (uintptr_t)qs->rx, (uintptr_t)info);
		spin_unlock_bh(&qs->rx_lock);
	}
	if (READ_ONCE(qs_poisoned))
		info->flags |= QUICSEAL_INFO_POISONED;
}

static int qs_setsockopt(struct sock *sk, int level, int optname, sockptr_t optval,
			 unsigned int optlen)
{
	struct qs_ctx *qs = qs_get(sk);
	int err;

	if (!qs)
		return qs_base(sk)->setsockopt(sk, level, optname, optval, optlen);
	err = qs_setsockopt_ctx(qs, sk, level, optname, optval, optlen);
	qs_put(qs);
	return err;
}

static int qs_getsockopt_ctx(struct qs_ctx *qs, struct sock *sk, int level, int optname,
			     char __user *optval, int __user *optlen)
{
	char name[QUICSEAL_IMPLEMENTATION_LEN];
	struct quicseal_info info;
	int len, val;

	if (level != SOL_QUICSEAL)
		return qs_base(sk)->getsockopt(sk, level, optname, optval, optlen);
	if (get_user(len, optlen))
		return -EFAULT;
	switch (optname) {
	case QUICSEAL_TX_INFO:
	case QUICSEAL_RX_INFO:
		if (len < (int)sizeof(info))
			return -EINVAL;
		qs_info(qs, optname == QUICSEAL_TX_INFO, &info);
		len = sizeof(info);
		if (put_user(len, optlen) || copy_to_user(optval, &info, len))
			return -EFAULT;
		return 0;
	case QUICSEAL_TX_IMPLEMENTATION:
	case QUICSEAL_RX_IMPLEMENTATION:
		if (len < (int)sizeof(name))
			return -EINVAL;
		qs_info(qs, optname == QUICSEAL_TX_IMPLEMENTATION, &info);
		if (!(info.flags & QUICSEAL_INFO_KEYS))
			return -ENOKEY;
		memset(name, 0, sizeof(name));
		if (!qs_implementation(info.suite, name, sizeof(name)))
			return -EIO;
		len = sizeof(name);
		if (put_user(len, optlen) || copy_to_user(optval, name, len))
			return -EFAULT;
		return 0;
	case QUICSEAL_RECV_INFO:
		if (len < (int)sizeof(int))
			return -EINVAL;
		val = READ_ONCE(qs->recv_info);
		len = sizeof(int);
		if (put_user(len, optlen) || copy_to_user(optval, &val, len))
			return -EFAULT;
		return 0;
	default:
		return -ENOPROTOOPT;
	}
}

static int qs_getsockopt(struct sock *sk, int level, int optname, char __user *optval,
			 int __user *optlen)
{
	struct qs_ctx *qs = qs_get(sk);
	int err;

	if (!qs)
		return qs_base(sk)->getsockopt(sk, level, optname, optval, optlen);
	err = qs_getsockopt_ctx(qs, sk, level, optname, optval, optlen);
	qs_put(qs);
	return err;
}

/* ---- attaching to a plain UDP socket: /dev/quicseal ----------------------------------- */

/*
 * The methods an attached socket gets: its own (udp_prot's or udpv6_prot's) with the module's
 * sendmsg, recvmsg, setsockopt, getsockopt, sendpage and destroy, as an IPPROTO_QUICSEAL
 * socket has. Not registered: the socket was created by its own protocol, which stays its
 * creator (sk_prot_creator frees it, counts it in /proc/net/protocols).
 */
static struct proto qs_attached_prot, qs6_attached_prot;

/*
 * Set by the first attach, which takes a module reference that is never put: the module
 * stays loaded until reboot. A caller may have read an attached socket's sk_prot and be
 * about to call one of the module's methods when a detach (or close) restores the socket's
 * own; no reference can cover a call that has not started, so the module must not go away.
 */
static bool qs_pinned;

/*
 * ioctl(QUICSEAL_IOC_ATTACH, fd): the effect of setsockopt(UDP_ULP, "quic-crypto") of the
 * 2022 series on a UDP socket a program already has. What is refused: a socket other than a
 * plain UDP one of this module's families (-EPROTONOSUPPORT), one already attached or an
 * IPPROTO_QUICSEAL one (-EALREADY), one with an encapsulation, UDP_GRO or a user of
 * sk_user_data such as a sockmap (-EBUSY: the receive hook and GRO slicing could not be
 * the module's).
 */
static int qs_attach(struct sock *sk)
{
	struct proto *attached;
	struct qs_ctx *qs;
	int err = 0;

	lock_sock(sk);
	if (sk->sk_type != SOCK_DGRAM || sk->sk_protocol != IPPROTO_UDP) {
		err = -EPROTONOSUPPORT;
	} else if (qs_owns(sk) || sk->sk_prot == &qs_attached_prot ||
		   sk->sk_prot == &qs6_attached_prot) {
		err = -EALREADY;
	} else if (sk->sk_prot == &udp_prot) {
		attached = &qs_attached_prot;
	} else if (qs6_base && sk->sk_prot == qs6_base) {
		attached = &qs6_attached_prot;
	} else {
		err = -EPROTONOSUPPORT;
	}
	if (!err && (udp_sk(sk)->encap_type || udp_test_bit(GRO_ENABLED, sk) ||
		     udp_test_bit(ACCEPT_L4, sk)))
		err = -EBUSY;
	if (err)
		goto out;
	qs = kzalloc(sizeof(*qs), GFP_KERNEL);
	if (!qs) {
		err = -ENOMEM;
		goto out;
	}
	atomic64_inc(&qs_live_attachments);
	qs_ctx_init(qs, sk);
	qs->attached = true;
	refcount_set(&qs->users, 1); /* the attachment's */
	qs->base = sk->sk_prot;
	if (!xchg(&qs_pinned, true))
		__module_get(THIS_MODULE); /* never put; this ioctl's file holds one meanwhile */
	/* sk_user_data's other users (BPF reuseport arrays) set it under this lock. */
	write_lock_bh(&sk->sk_callback_lock);
	if (sk->sk_user_data)
		err = -EBUSY;
	else
		rcu_assign_sk_user_data(sk, qs);
	write_unlock_bh(&sk->sk_callback_lock);
	if (err) {
		atomic64_dec(&qs_live_attachments);
		kfree(qs);
		goto out;
	}
	/* Published after the context: a call that finds the new methods finds it too. */
	WRITE_ONCE(sk->sk_prot, attached);
out:
	release_sock(sk);
	return err;
}

/*
 * ioctl(QUICSEAL_IOC_DETACH, fd): the socket's own methods again, as plain UDP, keys wiped.
 * Safe against the socket's other users: nothing can be installed once `dead` is set; the
 * hook is off and a grace period has passed before anything it uses goes; sendmsg waits for
 * tx_lock and finds no keys (then sends as UDP); a call in progress keeps the context (its
 * reference) until it returns.
 */
static int qs_detach(struct sock *sk)
{
	struct qs_ctx *qs;
	struct qs_rx_state *rx;
	void *rx_mem;

	lock_sock(sk);
	if (sk->sk_prot != &qs_attached_prot && sk->sk_prot != &qs6_attached_prot) {
		release_sock(sk);
		return qs_owns(sk) ? -EOPNOTSUPP : -ENOENT;
	}
	qs = rcu_dereference_protected(sk->sk_user_data, lockdep_sock_is_held(sk));
	/* From here on qs_set_keys() and qs_install_hook() install nothing. */
	mutex_lock(&qs->tx_lock);
	qs->dead = true;
	mutex_unlock(&qs->tx_lock);
	/* The hook off; after the grace period no softirq is in it. No more cmsgs: datagrams
	 * from now on carry no stamp. */
	spin_lock_bh(&qs->rx_lock);
	qs->dead = true;
	WRITE_ONCE(qs->recv_info, false);
	WRITE_ONCE(udp_sk(sk)->encap_type, 0);
	WRITE_ONCE(udp_sk(sk)->encap_rcv, NULL);
	spin_unlock_bh(&qs->rx_lock);
	synchronize_rcu();
	/* The ICMP error path tests and calls this in two reads, and only while encap_type
	 * was set: cleared once no such reader is left. */
	WRITE_ONCE(udp_sk(sk)->encap_err_rcv, NULL);
	/* The socket's own methods; calls already in ours hold their reference. */
	WRITE_ONCE(sk->sk_prot, (struct proto *)qs->base);
	write_lock_bh(&sk->sk_callback_lock);
	rcu_assign_sk_user_data(sk, NULL);
	write_unlock_bh(&sk->sk_callback_lock);
	spin_lock_bh(&qs->rx_lock);
	rx = qs->rx;
	rx_mem = qs->rx_mem;
	qs->rx = NULL;
	qs->rx_mem = NULL;
	spin_unlock_bh(&qs->rx_lock);
	qs_free_rx(rx, rx_mem);
	mutex_lock(&qs->tx_lock);
	qs_free_tx(qs->tx, qs->tx_mem);
	qs->tx = NULL;
	qs->tx_mem = NULL;
	qs->hook = false;
	mutex_unlock(&qs->tx_lock);
	release_sock(sk);
	qs_put(qs); /* the attachment's */
	return 0;
}

static long qs_dev_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct socket *sock;
	int err;

	if (cmd != QUICSEAL_IOC_ATTACH && cmd != QUICSEAL_IOC_DETACH)
		return -ENOTTY;
	if (arg > INT_MAX)
		return -EBADF;
	sock = sockfd_lookup((int)arg, &err); /* holds the file: no close() meanwhile */
	if (!sock)
		return err;
	err = cmd == QUICSEAL_IOC_ATTACH ? qs_attach(sock->sk) : qs_detach(sock->sk);
	sockfd_put(sock);
	return err;
}

static const struct file_operations qs_dev_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = qs_dev_ioctl,
	.compat_ioctl = qs_dev_ioctl, /* the argument is a descriptor, not a pointer */
};

/* Any user may attach a socket of theirs: the descriptor proves it. */
static struct miscdevice qs_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "quicseal",
	.fops = &qs_dev_fops,
	.mode = 0666,
};

/* ---- /proc/net/quicseal ----------------------------------------------------------- */

static const char *const qs_total_names[] = {
	"sealed",	 "opened", "passed_through", "auth_failures", "malformed",
	"limit_drops", "key_unavailable", "rejected", "key_updates",
};

/* What protects each suite's keys installed now: the core's names (quicseal_implementation). */
static const struct {
	u16 code;
	const char *name;
} qs_suites[] = {
	{ QUICSEAL_TLS_AES_128_GCM_SHA256, "TLS_AES_128_GCM_SHA256" },
	{ QUICSEAL_TLS_AES_256_GCM_SHA384, "TLS_AES_256_GCM_SHA384" },
	{ QUICSEAL_TLS_CHACHA20_POLY1305_SHA256, "TLS_CHACHA20_POLY1305_SHA256" },
};

static int qs_proc_show(struct seq_file *seq, void *v)
{
	int i;

	BUILD_BUG_ON(ARRAY_SIZE(qs_total_names) != ARRAY_SIZE(qs_totals));
	for (i = 0; i < ARRAY_SIZE(qs_totals); i++)
		seq_printf(seq, "%s %lld\n", qs_total_names[i], atomic64_read(&qs_totals[i]));
	seq_printf(seq, "tx_page_sends %lld\n", atomic64_read(&qs_tx_page_sends));
	seq_printf(seq, "tx_page_fallbacks %lld\n", atomic64_read(&qs_tx_page_fallbacks));
	seq_printf(seq, "rx_fpu_drops %lld\n", atomic64_read(&qs_rx_fpu_drops));
	seq_printf(seq, "rust_stack_peak %zu\n", qs_rust_stack_peak());
	seq_printf(seq, "poisoned %d\n", READ_ONCE(qs_poisoned));
	seq_printf(seq, "live_states %lld\n", atomic64_read(&qs_live_states));
	seq_printf(seq, "live_attachments %lld\n", atomic64_read(&qs_live_attachments));
	for (i = 0; i < ARRAY_SIZE(qs_suites); i++) {
		char name[QUICSEAL_IMPLEMENTATION_LEN] = "";

		qs_implementation(qs_suites[i].code, name, sizeof(name));
		seq_printf(seq, "implementation %s %s\n", qs_suites[i].name, name);
	}
	return 0;
}

/* ---- registration ------------------------------------------------------------------ */

static struct inet_protosw qs_protosw = {
	.type = SOCK_DGRAM,
	.protocol = IPPROTO_QUICSEAL,
	.prot = &qs_prot,
	.ops = &inet_dgram_ops,
	.flags = 0,
};

/* .ops is inet6_dgram_ops, read at load like udpv6_prot. */
static struct inet_protosw qs6_protosw = {
	.type = SOCK_DGRAM,
	.protocol = IPPROTO_QUICSEAL,
	.prot = &qs6_prot,
	.flags = 0,
};

/* The quicseal methods over a copy of a UDP proto. */
static void qs_fill_prot(struct proto *prot, const struct proto *base, const char *name,
			 unsigned int obj_size)
{
	*prot = *base;
	strscpy(prot->name, name, sizeof(prot->name));
	prot->owner = THIS_MODULE;
	prot->obj_size = obj_size;
	prot->init = qs_init_sock;
	prot->destroy = qs_destroy_sock;
	prot->setsockopt = qs_setsockopt;
	prot->getsockopt = qs_getsockopt;
	prot->sendmsg = qs_sendmsg;
	prot->recvmsg = qs_recvmsg;
	prot->sendpage = qs_sendpage;
#ifdef CONFIG_BPF_SYSCALL
	prot->psock_update_sk_prot = NULL; /* no sockmap: it would bypass sealing */
#endif
}

/*
 * AF_INET6: 6.1 exports neither udpv6_prot nor inet6_dgram_ops, so they are read from a
 * kernel UDPv6 socket, checked to be what this shim was written against (the layout of
 * struct udp6_sock), copied and registered like the IPv4 protocol. Returns 0 without
 * registering when IPv6 is unavailable (ipv6.disable=1).
 */
/* An attached socket's methods over `base` (see qs_attached_prot). */
static void qs_fill_attached(struct proto *prot, const struct proto *base)
{
	*prot = *base;
	prot->destroy = qs_destroy_sock;
	prot->setsockopt = qs_setsockopt;
	prot->getsockopt = qs_getsockopt;
	prot->sendmsg = qs_sendmsg;
	prot->recvmsg = qs_recvmsg;
	prot->sendpage = qs_sendpage;
#ifdef CONFIG_BPF_SYSCALL
	prot->psock_update_sk_prot = NULL;
#endif
}

static int qs6_register(void)
{
	struct socket *sock;
	int err = sock_create_kern(&init_net, AF_INET6, SOCK_DGRAM, IPPROTO_UDP, &sock);

	if (err) {
		pr_info("IPv6 unavailable (%d): AF_INET only\n", err);
		return 0;
	}
	qs6_base = sock->sk->sk_prot;
	qs6_protosw.ops = sock->ops;
	sock_release(sock);
	if (strcmp(qs6_base->name, "UDPv6") || qs6_base->obj_size != sizeof(struct udp6_sock) ||
	    !qs6_base->init || !qs6_base->destroy || !qs6_base->sendmsg || !qs6_base->recvmsg) {
		pr_err("UDPv6 is not the 6.1 protocol this module knows: AF_INET only\n");
		qs6_base = NULL;
		return 0;
	}
	qs_fill_prot(&qs6_prot, qs6_base, "QUICSEALv6", sizeof(struct qs6_sock));
	qs_fill_attached(&qs6_attached_prot, qs6_base);
	err = proto_register(&qs6_prot, 1);
	if (err) {
		pr_err("IPv6 registration failed (%d): AF_INET only\n", err);
		qs6_base = NULL;
		return 0;
	}
	err = inet6_register_protosw(&qs6_protosw);
	if (err) {
		pr_err("IPv6 registration failed (%d): AF_INET only\n", err);
		proto_unregister(&qs6_prot);
		qs6_base = NULL;
	}
	return 0;
}

static void qs6_unregister(void)
{
	if (!qs6_base)
		return;
	inet6_unregister_protosw(&qs6_protosw);
	proto_unregister(&qs6_prot);
}

static int __init qs_module_init(void)
{
	int err;

	BUILD_BUG_ON(sizeof(struct quicseal_keys) != QUICSEAL_KEYS_SIZE_V2);
	BUILD_BUG_ON(offsetof(struct quicseal_keys, generation) != QUICSEAL_KEYS_SIZE_V1);
	BUILD_BUG_ON(sizeof(struct quicseal_info) != 112);
	BUILD_BUG_ON(sizeof(struct quicseal_rx_info) != 40);

	err = qs_rust_stacks_alloc();
	if (err)
		goto err_stacks;
	qs_wq = alloc_workqueue("quicseal", 0, 0);
	if (!qs_wq) {
		err = -ENOMEM;
		goto err_stacks;
	}
	qs_tx_size = QS_RUST(QS_OP_TX_STATE_SIZE);
	qs_tx_align = QS_RUST(QS_OP_TX_STATE_ALIGN);
	qs_rx_size = QS_RUST(QS_OP_RX_STATE_SIZE);
	qs_rx_align = QS_RUST(QS_OP_RX_STATE_ALIGN);

	qs_fill_prot(&qs_prot, &udp_prot, "QUICSEAL", sizeof(struct qs_sock));
	qs_fill_attached(&qs_attached_prot, &udp_prot);
	err = proto_register(&qs_prot, 1);
	if (err)
		goto err_stacks;
	inet_register_protosw(&qs_protosw);
	err = qs6_register();
	if (err)
		goto err_v4;
	if (!proc_create_single("quicseal", 0444, init_net.proc_net, qs_proc_show)) {
		err = -ENOMEM;
		goto err_v6;
	}
	/* Root only: reading it runs the cross-check and the microbenchmark. */
	if (!proc_create_single("quicseal_bench", 0400, init_net.proc_net, qs_bench_show)) {
		remove_proc_entry("quicseal", init_net.proc_net);
		err = -ENOMEM;
		goto err_v6;
	}
	err = misc_register(&qs_dev);
	if (err) {
		remove_proc_entry("quicseal_bench", init_net.proc_net);
		remove_proc_entry("quicseal", init_net.proc_net);
		goto err_v6;
	}
	pr_info("loaded: IPPROTO_QUICSEAL %d (%s), tx state %zu bytes, rx state %zu bytes\n",
		IPPROTO_QUICSEAL, qs6_base ? "AF_INET, AF_INET6" : "AF_INET", qs_tx_size,
		qs_rx_size);
	return 0;

err_v6:
	qs6_unregister();
err_v4:
	inet_unregister_protosw(&qs_protosw);
	proto_unregister(&qs_prot);
err_stacks:
	if (qs_wq)
		destroy_workqueue(qs_wq);
	qs_rust_stacks_free();
	return err;
}

static void __exit qs_module_exit(void)
{
	misc_deregister(&qs_dev);
	remove_proc_entry("quicseal_bench", init_net.proc_net);
	remove_proc_entry("quicseal", init_net.proc_net);
	qs6_unregister();
	inet_unregister_protosw(&qs_protosw);
	proto_unregister(&qs_prot);
	destroy_workqueue(qs_wq); /* after the last socket: waits for its last qs_prepare_next() */
	qs_rust_stacks_free();
	pr_info("unloaded\n");
}

module_init(qs_module_init);
module_exit(qs_module_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("QUIC 1-RTT packet protection on UDP sockets (Rust core, C shim)");
MODULE_ALIAS_NET_PF_PROTO_TYPE(PF_INET, IPPROTO_QUICSEAL, SOCK_DGRAM);
MODULE_ALIAS_NET_PF_PROTO_TYPE(PF_INET6, IPPROTO_QUICSEAL, SOCK_DGRAM);
