/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * quicseal: QUIC 1-RTT packet protection (RFC 9000 §17.3, RFC 9001 §5-6) on a UDP socket.
 *
 * A program opts in by creating socket(AF_INET or AF_INET6, SOCK_DGRAM, IPPROTO_QUICSEAL).
 * Until keys are installed the socket is a plain UDP socket. See docs/kernel-uapi.md.
 *
 * Every struct starts with a __u32 `size` the caller sets to sizeof(struct); the module
 * refuses (EINVAL) sizes it does not know, so structs can grow by appending fields and
 * bumping the size, never by changing existing ones.
 */
#ifndef _UAPI_LINUX_QUICSEAL_H
#define _UAPI_LINUX_QUICSEAL_H

#include <linux/types.h>
#include <linux/ioctl.h>

/* The private protocol number the module registers for SOCK_DGRAM (below IPPROTO_MAX). */
#define IPPROTO_QUICSEAL 261
/* setsockopt/getsockopt level and cmsg level. */
#define SOL_QUICSEAL 0x5153 /* "QS" */

/* Socket options (level SOL_QUICSEAL). */
#define QUICSEAL_TX_KEYS 1   /* set: struct quicseal_keys for sealing on sendmsg          */
#define QUICSEAL_RX_KEYS 2   /* set: struct quicseal_keys for opening on receive          */
#define QUICSEAL_TX_INFO 3   /* get: struct quicseal_info of the sending direction        */
#define QUICSEAL_RX_INFO 4   /* get: struct quicseal_info of the receiving direction      */
#define QUICSEAL_RECV_INFO 5 /* set/get: int, nonzero = add QUICSEAL_CMSG_RX to recvmsg   */
#define QUICSEAL_RX_LARGEST_PN 6 /* set: __u64, largest packet number received (state handover) */
#define QUICSEAL_RX_RETIRE 7     /* set: no value, drop the previous receive generation   */
#define QUICSEAL_RX_ADVANCE 8    /* set: no value, move to the next receive generation
				  * without a packet (restoring state)                    */
#define QUICSEAL_TX_IMPLEMENTATION 9 /* get: char[QUICSEAL_IMPLEMENTATION_LEN], the name of
				      * what protects the sending keys: "avx512", "avx2",
				      * "aesni" (CPU instructions) or "portable" (software) */
#define QUICSEAL_RX_IMPLEMENTATION 10 /* get: the same for the receiving keys              */
#define QUICSEAL_IMPLEMENTATION_LEN 16

/*
 * Attaching to a plain UDP socket: ioctl on /dev/quicseal with the socket's descriptor as the
 * argument. Afterwards the socket takes every option, control message and counter above, as
 * an IPPROTO_QUICSEAL socket does; detaching wipes its keys and makes it plain UDP again.
 */
#define QUICSEAL_IOC_ATTACH _IO(0xb5, 1)
#define QUICSEAL_IOC_DETACH _IO(0xb5, 2)

/* Control messages (level SOL_QUICSEAL). */
#define QUICSEAL_CMSG_PN 1 /* sendmsg: __u64 full packet number of a single datagram's packet */
#define QUICSEAL_CMSG_RX 2 /* recvmsg: struct quicseal_rx_info of the datagram            */

/* Cipher suites: TLS 1.3 code points (RFC 8446 B.4). */
#define QUICSEAL_TLS_AES_128_GCM_SHA256 0x1301
#define QUICSEAL_TLS_AES_256_GCM_SHA384 0x1302
#define QUICSEAL_TLS_CHACHA20_POLY1305_SHA256 0x1303

#define QUICSEAL_TAG_LEN 16
#define QUICSEAL_MAX_SECRET_LEN 48
#define QUICSEAL_MAX_DCID_LEN 20
#define QUICSEAL_MAX_HP_KEY_LEN 32

/* "None" for the optional __u64 fields below. */
#define QUICSEAL_NONE (~(__u64)0)

/*
 * Key installation. The module derives key, IV and header-protection key from `secret`
 * (HKDF-Expand-Label "quic key"/"quic iv"/"quic hp") and every later generation ("quic ku")
 * itself: key updates need no further setsockopt. Installing again replaces the direction's
 * state (counters restart). The secret is wiped from kernel memory after derivation; it can
 * never be read back.
 *
 * Two layouts, told apart by `size` (and optlen, which must equal it):
 *  - QUICSEAL_KEYS_SIZE_V1 (88): the fields up to `secret`; the flow starts at generation 0
 *    (key_phase must be 0).
 *  - QUICSEAL_KEYS_SIZE_V2 (136, sizeof today): adds `generation` and `hp_key`, to take over
 *    mid-connection after key updates: `secret` is then generation `generation`'s traffic
 *    secret, `hp_key` the header-protection key (it never changes, and cannot be derived from
 *    a later secret), and key_phase must be generation's low bit. With hp_key_len 0 the V2
 *    layout behaves like V1 (generation must be 0).
 */
struct quicseal_keys {
	__u32 size;       /* QUICSEAL_KEYS_SIZE_V1 or QUICSEAL_KEYS_SIZE_V2             */
	__u16 suite;      /* QUICSEAL_TLS_*                                             */
	__u8 dcid_len;    /* length of DCIDs in this direction's short headers, 0..20   */
	__u8 key_phase;   /* key phase of `secret`'s generation: generation & 1         */
	__u32 secret_len; /* 32 (SHA-256 suites) or 48 (AES-256-GCM)                     */
	__u32 flags;      /* QUICSEAL_KEYS_*                                            */
	__u64 largest_pn; /* largest packet number already sent/received, or QUICSEAL_NONE */
	__u64 confidentiality_limit; /* 0 = RFC 9001 §6.6 for the suite (tests lower it) */
	__u64 integrity_limit;       /* 0 = RFC 9001 §6.6 for the suite                 */
	__u8 secret[QUICSEAL_MAX_SECRET_LEN];
	/* Since QUICSEAL_KEYS_SIZE_V2. */
	__u64 generation;  /* key generation of `secret` (0 before any key update)         */
	__u32 hp_key_len;  /* 0 (derive from `secret`, generation 0 only), or the suite's
			    * key length: 16 (AES-128-GCM) or 32                              */
	__u32 reserved;    /* must be 0                                                   */
	__u8 hp_key[QUICSEAL_MAX_HP_KEY_LEN];
};
#define QUICSEAL_KEYS_SIZE_V1 88
#define QUICSEAL_KEYS_SIZE_V2 136
#define QUICSEAL_KEYS_GREASE_QUIC_BIT 0x1 /* RFC 9287: accept/send a cleared fixed bit */

/* Per-direction counters; every refused packet lands in exactly one of the drop counters. */
struct quicseal_counters {
	__u64 sealed;          /* 1-RTT packets sealed                                   */
	__u64 opened;          /* 1-RTT packets opened and authenticated                 */
	__u64 passed_through;  /* long-header packets passed untouched                   */
	__u64 auth_failures;   /* tag did not verify (dropped)                           */
	__u64 malformed;       /* did not parse, or reserved bits set (dropped/refused)   */
	__u64 limit_drops;     /* confidentiality or integrity limit reached             */
	__u64 key_unavailable; /* key phase asked for keys not installed                 */
	__u64 rejected;        /* caller mistakes: PN reuse, GSO layout, sizes           */
	__u64 key_updates;     /* key generations entered after the first                */
};

/* getsockopt QUICSEAL_TX_INFO / QUICSEAL_RX_INFO. Never contains key material. */
struct quicseal_info {
	__u32 size;            /* sizeof(struct quicseal_info) = 112 (set by the kernel)  */
	__u32 flags;           /* QUICSEAL_INFO_*                                         */
	__u16 suite;
	__u8 dcid_len;
	__u8 key_phase;        /* of the current generation                              */
	__u32 reserved;
	__u64 generation;      /* current key generation, 0 until the first key update   */
	__u64 largest_pn;      /* largest sealed/received, or QUICSEAL_NONE              */
	__u64 sealed_in_generation; /* tx only                                           */
	struct quicseal_counters counters;
};
#define QUICSEAL_INFO_KEYS 0x1             /* keys installed for this direction          */
#define QUICSEAL_INFO_KEY_UPDATE_DUE 0x2   /* tx: near the confidentiality limit          */
#define QUICSEAL_INFO_PREVIOUS_KEYS 0x4    /* rx: previous generation still kept          */
#define QUICSEAL_INFO_INTEGRITY_LIMIT 0x8  /* rx: integrity limit reached, must close     */
#define QUICSEAL_INFO_POISONED 0x10        /* the Rust object panicked: state unusable     */
#define QUICSEAL_INFO_NEXT_KEYS 0x20       /* the next generation's keys are derived        */

/* cmsg QUICSEAL_CMSG_RX on recvmsg (after QUICSEAL_RECV_INFO = 1). */
struct quicseal_rx_info {
	__u32 size;            /* sizeof(struct quicseal_rx_info) = 40                    */
	__u32 status;          /* QUICSEAL_RX_*                                           */
	__u64 pn;              /* full packet number of the 1-RTT packet                   */
	__u64 generation;      /* key generation that opened it                            */
	__u32 passthrough_len; /* bytes of long-header packets at the front               */
	__u32 flags;           /* QUICSEAL_RX_F_*                                         */
	__u32 header_len;      /* length of the (now cleartext) short header               */
	__u32 payload_len;     /* payload bytes after the header (tag removed)             */
};
#define QUICSEAL_RX_OPENED 0      /* ended in a 1-RTT packet, opened                        */
#define QUICSEAL_RX_PASSTHROUGH 1 /* long-header packets only, delivered as they came       */
#define QUICSEAL_RX_PLAIN 2       /* arrived before receive keys were installed             */
#define QUICSEAL_RX_F_KEY_UPDATE 0x1 /* this packet moved the receiver to a new generation  */

/* /proc/net/quicseal: one "name value" line per counter, totals over all sockets. */

#endif /* _UAPI_LINUX_QUICSEAL_H */
