// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * quicseal selftest: runs inside the VM (static binary in the initramfs), after the module is
 * loaded. Reads vectors.txt (written by `cargo xtask kernel-test` from the vector files) and
 * checks the socket interface against it over loopback:
 *   - seal: cleartext through a quicseal socket, bytes seen by a plain UDP receiver;
 *   - open: protected bytes from a plain UDP sender, cleartext and cmsg from a quicseal socket;
 *   - GSO batches both ways, key updates both ways, negatives and bad input.
 * Prints "ok"/"FAIL" per check and "N passed, M failed" at the end.
 *
 * vectors.txt lines:
 *   flow <name> <suite> <dcid_len> <gso_size> <secret>
 *   resume <generation> <secret of that generation> <header-protection key>
 *   packet <generation> <pn> <largest_received> <header> <payload> <protected>
 *   negative <generation> <largest_received> <expect> <protected or ->
 *   end
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <signal.h>
#include <poll.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <linux/errqueue.h>
#include <linux/quicseal.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/ioctl.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef UDP_ENCAP
#define UDP_ENCAP 100
#endif
#ifndef MSG_PROBE
#define MSG_PROBE 0x10 /* kernel-internal name; sendmsg passes the flag through */
#endif
#ifndef SOL_UDPLITE
#define SOL_UDPLITE 136
#endif

static int passed, failed;

static void check(int ok, const char *fmt, ...)
{
	va_list ap;

	printf("%s ", ok ? "ok  " : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (ok)
		passed++;
	else
		failed++;
}

/* ---- vectors ---- */

struct packet {
	int generation;
	uint64_t pn, largest;
	uint8_t *header, *payload, *protected;
	size_t header_len, payload_len, protected_len;
};

struct negative {
	int generation;
	uint64_t largest;
	char expect[32];
	uint8_t *protected;
	size_t protected_len;
};

struct flow {
	char name[96];
	int suite, dcid_len, gso_size;
	uint8_t secret[48];
	size_t secret_len;
	/* The flow's last generation, its secret and the HP key (0: no resume line). */
	int resume_generation;
	uint8_t resume_secret[48], hp_key[32];
	size_t hp_key_len;
	struct packet packets[64];
	int npackets;
	struct negative negatives[16];
	int nnegatives;
};

static uint8_t *unhex(const char *hex, size_t *len)
{
	size_t n = strcmp(hex, "-") ? strlen(hex) / 2 : 0, i;
	uint8_t *out = malloc(n + 1);

	for (i = 0; i < n; i++)
		sscanf(hex + 2 * i, "%2hhx", &out[i]);
	*len = n;
	return out;
}

static struct flow flows[32];
static int nflows;

static int load_vectors(const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL, *tok[8];
	size_t cap = 0;
	struct flow *fl = NULL;

	if (!f)
		return -1;
	while (getline(&line, &cap, f) > 0) {
		int n = 0;
		char *save, *t = strtok_r(line, " \n", &save);

		while (t && n < 8) {
			tok[n++] = t;
			t = strtok_r(NULL, " \n", &save);
		}
		if (n == 6 && !strcmp(tok[0], "flow")) {
			size_t len;
			uint8_t *secret;

			fl = &flows[nflows++];
			memset(fl, 0, sizeof(*fl));
			snprintf(fl->name, sizeof(fl->name), "%s", tok[1]);
			fl->suite = strtol(tok[2], NULL, 0);
			fl->dcid_len = atoi(tok[3]);
			fl->gso_size = atoi(tok[4]);
			secret = unhex(tok[5], &len);
			memcpy(fl->secret, secret, len);
			fl->secret_len = len;
			free(secret);
		} else if (n == 4 && !strcmp(tok[0], "resume") && fl) {
			size_t len;
			uint8_t *bytes = unhex(tok[2], &len);

			fl->resume_generation = atoi(tok[1]);
			memcpy(fl->resume_secret, bytes, len < 48 ? len : 48);
			free(bytes);
			bytes = unhex(tok[3], &len);
			fl->hp_key_len = len < 32 ? len : 32;
			memcpy(fl->hp_key, bytes, fl->hp_key_len);
			free(bytes);
		} else if (n == 7 && !strcmp(tok[0], "packet") && fl) {
			struct packet *p = &fl->packets[fl->npackets++];

			p->generation = atoi(tok[1]);
			p->pn = strtoull(tok[2], NULL, 10);
			p->largest = strtoull(tok[3], NULL, 10);
			p->header = unhex(tok[4], &p->header_len);
			p->payload = unhex(tok[5], &p->payload_len);
			p->protected = unhex(tok[6], &p->protected_len);
		} else if (n == 5 && !strcmp(tok[0], "negative") && fl) {
			struct negative *ng = &fl->negatives[fl->nnegatives++];

			ng->generation = atoi(tok[1]);
			ng->largest = strtoull(tok[2], NULL, 10);
			snprintf(ng->expect, sizeof(ng->expect), "%s", tok[3]);
			ng->protected = unhex(tok[4], &ng->protected_len);
		}
	}
	free(line);
	fclose(f);
	return nflows;
}

/* ---- sockets ---- */

/* The address family every check runs in: AF_INET over 127.0.0.1, then AF_INET6 over ::1. */
static int family = AF_INET;

/* The loopback address of `family` with `port`. */
static socklen_t loopback(struct sockaddr_storage *ss, uint16_t port)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		a->sin6_addr = in6addr_loopback;
		return sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return sizeof(*a);
	}
}

static int udp_socket(int protocol, uint16_t *port)
{
	struct sockaddr_storage a;
	socklen_t len = loopback(&a, 0), alen = sizeof(a);
	struct timeval tv = { .tv_sec = 1 };
	int fd = socket(family, SOCK_DGRAM, protocol);

	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&a, len) || getsockname(fd, (struct sockaddr *)&a, &alen)) {
		close(fd);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	*port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&a)->sin6_port
					 : ((struct sockaddr_in *)&a)->sin_port);
	return fd;
}

static int connect_to(int fd, uint16_t port)
{
	struct sockaddr_storage a;
	socklen_t len = loopback(&a, port);

	return connect(fd, (struct sockaddr *)&a, len);
}

/* Generation 0 keys in the first layout (88 bytes): old callers keep working. */
static struct quicseal_keys keys_of(const struct flow *fl, uint64_t largest)
{
	struct quicseal_keys k;

	memset(&k, 0, sizeof(k));
	k.size = QUICSEAL_KEYS_SIZE_V1;
	k.suite = fl->suite;
	k.dcid_len = fl->dcid_len;
	k.secret_len = fl->secret_len;
	k.largest_pn = largest;
	memcpy(k.secret, fl->secret, fl->secret_len);
	return k;
}

/* Keys of the flow's last generation, taken over mid-connection (the V2 layout). */
static struct quicseal_keys resume_keys_of(const struct flow *fl, uint64_t largest)
{
	struct quicseal_keys k = keys_of(fl, largest);

	k.size = QUICSEAL_KEYS_SIZE_V2;
	memcpy(k.secret, fl->resume_secret, fl->secret_len);
	k.generation = fl->resume_generation;
	k.key_phase = fl->resume_generation & 1;
	k.hp_key_len = fl->hp_key_len;
	memcpy(k.hp_key, fl->hp_key, fl->hp_key_len);
	return k;
}

/* Installs keys with optlen = k.size, as a caller compiled with that layout would. */
static int set_keys(int fd, int opt, struct quicseal_keys k)
{
	return setsockopt(fd, SOL_QUICSEAL, opt, &k, k.size) ? -errno : 0;
}

static struct quicseal_info info_of(int fd, int opt)
{
	struct quicseal_info info;
	socklen_t len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (getsockopt(fd, SOL_QUICSEAL, opt, &info, &len))
		info.size = 0;
	return info;
}

/* Sends iov with optional PN and UDP_SEGMENT cmsgs; returns bytes or -errno. */
static ssize_t send_cmsg(int fd, struct iovec *iov, int iovcnt, uint64_t pn, uint16_t gso)
{
	char control[CMSG_SPACE(8) + CMSG_SPACE(2)];
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = iovcnt };
	struct cmsghdr *c;
	size_t used = 0;
	ssize_t n;

	memset(control, 0, sizeof(control));
	msg.msg_control = control;
	msg.msg_controllen = sizeof(control);
	c = CMSG_FIRSTHDR(&msg);
	if (pn != QUICSEAL_NONE) {
		c->cmsg_level = SOL_QUICSEAL;
		c->cmsg_type = QUICSEAL_CMSG_PN;
		c->cmsg_len = CMSG_LEN(8);
		memcpy(CMSG_DATA(c), &pn, 8);
		used += CMSG_SPACE(8);
		c = CMSG_NXTHDR(&msg, c);
	}
	if (gso) {
		c->cmsg_level = SOL_UDP;
		c->cmsg_type = UDP_SEGMENT;
		c->cmsg_len = CMSG_LEN(2);
		memcpy(CMSG_DATA(c), &gso, 2);
		used += CMSG_SPACE(2);
	}
	msg.msg_controllen = used;
	if (!used)
		msg.msg_control = NULL;
	n = sendmsg(fd, &msg, 0);
	return n < 0 ? -errno : n;
}

/* Receives one datagram and the QUICSEAL_CMSG_RX info if present (info->size 0 if not). */
/* Page sends the selftest deprived of a zero-copy buffer on purpose. */
static long long forced_fallbacks;
static long long proc_value(const char *name);

/* The source address of the last datagram recv_info() returned. */
static struct sockaddr_storage last_from;
static socklen_t last_from_len;

static ssize_t recv_info(int fd, uint8_t *buf, size_t cap, struct quicseal_rx_info *info, int flags)
{
	char control[256];
	struct iovec iov = { buf, cap };
	struct msghdr msg = { .msg_name = &last_from, .msg_namelen = sizeof(last_from),
			      .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
			      .msg_controllen = sizeof(control) };
	struct cmsghdr *c;
	ssize_t n;

	memset(&last_from, 0, sizeof(last_from));
	n = recvmsg(fd, &msg, flags);
	last_from_len = msg.msg_namelen;
	if (info)
		memset(info, 0, sizeof(*info));
	if (n < 0)
		return -errno;
	for (c = CMSG_FIRSTHDR(&msg); c && info; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == SOL_QUICSEAL && c->cmsg_type == QUICSEAL_CMSG_RX)
			memcpy(info, CMSG_DATA(c), sizeof(*info));
	return n;
}

/* Whether the last datagram came from the loopback address of the current family, `port`. */
static int from_loopback(uint16_t port)
{
	struct sockaddr_storage want;
	socklen_t len = loopback(&want, port);

	return last_from_len == len && !memcmp(&last_from, &want, len);
}

static uint64_t largest_before(const struct flow *fl, int i)
{
	return fl->packets[i].largest;
}

/* ---- checks ---- */

static uint8_t buf[70000], clear[70000];

/*
 * Seal packets[first..] of a flow through a quicseal socket installed with `k`; a plain
 * socket sees `protected`. first = 0 with generation 0 keys is the whole flow; a socket
 * taken over mid-connection starts at its generation's first packet.
 */
static void check_seal_from(const struct flow *fl, int first, struct quicseal_keys k,
			    const char *how)
{
	uint16_t rport, tport;
	int rx = udp_socket(IPPROTO_UDP, &rport), tx = udp_socket(IPPROTO_QUICSEAL, &tport);
	int i, good = 0, err, n_sent = fl->npackets - first;
	uint64_t last_gen = fl->packets[fl->npackets - 1].generation;
	struct quicseal_info info;

	connect_to(tx, rport);
	err = set_keys(tx, QUICSEAL_TX_KEYS, k);
	check(!err, "%s: tx keys installed%s (%d)", fl->name, how, err);
	for (i = first; i < fl->npackets; i++) {
		const struct packet *p = &fl->packets[i];
		struct iovec iov[2] = { { p->header, p->header_len }, { p->payload, p->payload_len } };
		ssize_t s = send_cmsg(tx, iov, 2, p->pn, 0);
		ssize_t n = recv_info(rx, buf, sizeof(buf), NULL, 0);
		int ok = s == (ssize_t)(p->header_len + p->payload_len) &&
			 n == (ssize_t)p->protected_len && !memcmp(buf, p->protected, n);

		if (!ok)
			printf("     packet %d pn %llu: send %zd recv %zd (want %zu)\n", i,
			       (unsigned long long)p->pn, s, n, p->protected_len);
		good += ok;
	}
	check(good == n_sent, "%s: sealed %d/%d packets byte-exact%s", fl->name, good, n_sent,
	      how);
	info = info_of(tx, QUICSEAL_TX_INFO);
	check(info.size == sizeof(info) && info.counters.sealed == (uint64_t)n_sent &&
		      info.generation == last_gen &&
		      info.counters.key_updates == last_gen - k.generation,
	      "%s: tx info: sealed %llu, generation %llu, key updates %llu%s", fl->name,
	      (unsigned long long)info.counters.sealed, (unsigned long long)info.generation,
	      (unsigned long long)info.counters.key_updates, how);
	close(tx);
	close(rx);
}

static void check_seal(const struct flow *fl)
{
	check_seal_from(fl, 0, keys_of(fl, QUICSEAL_NONE), "");
}

/*
 * A plain socket sends packets[first..] `protected`; a quicseal socket installed with `k`
 * hands back header+payload and a cmsg.
 */
static void check_open_from(const struct flow *fl, int first, struct quicseal_keys k,
			    const char *how)
{
	uint16_t rport, tport;
	int rx = udp_socket(IPPROTO_QUICSEAL, &rport), tx = udp_socket(IPPROTO_UDP, &tport);
	int i, good = 0, one = 1, err, n_sent = fl->npackets - first;
	struct quicseal_info info;

	connect_to(tx, rport);
	err = set_keys(rx, QUICSEAL_RX_KEYS, k);
	setsockopt(rx, SOL_QUICSEAL, QUICSEAL_RECV_INFO, &one, sizeof(one));
	check(!err, "%s: rx keys installed%s (%d)", fl->name, how, err);
	for (i = first; i < fl->npackets; i++) {
		const struct packet *p = &fl->packets[i];
		uint64_t largest = largest_before(fl, i);
		struct quicseal_rx_info ri;
		ssize_t n;
		int ok;

		setsockopt(rx, SOL_QUICSEAL, QUICSEAL_RX_LARGEST_PN, &largest, sizeof(largest));
		send(tx, p->protected, p->protected_len, 0);
		n = recv_info(rx, buf, sizeof(buf), &ri, 0);
		ok = n == (ssize_t)(p->header_len + p->payload_len) &&
		     !memcmp(buf, p->header, p->header_len) &&
		     !memcmp(buf + p->header_len, p->payload, p->payload_len) &&
		     ri.size == sizeof(ri) && ri.status == QUICSEAL_RX_OPENED && ri.pn == p->pn &&
		     ri.generation == (uint64_t)p->generation && ri.header_len == p->header_len &&
		     ri.payload_len == p->payload_len && from_loopback(tport);
		if (!ok)
			printf("     packet %d pn %llu: recv %zd (want %zu), cmsg size %u status %u pn %llu gen %llu\n",
			       i, (unsigned long long)p->pn, n, p->header_len + p->payload_len,
			       ri.size, ri.status, (unsigned long long)ri.pn,
			       (unsigned long long)ri.generation);
		good += ok;
	}
	check(good == n_sent, "%s: opened %d/%d packets, cleartext, cmsg and source exact%s",
	      fl->name, good, n_sent, how);
	info = info_of(rx, QUICSEAL_RX_INFO);
	check(info.counters.opened == (uint64_t)n_sent &&
		      info.generation == (uint64_t)fl->packets[fl->npackets - 1].generation,
	      "%s: rx info: opened %llu, generation %llu%s", fl->name,
	      (unsigned long long)info.counters.opened, (unsigned long long)info.generation, how);
	close(tx);
	close(rx);
}

static void check_open(const struct flow *fl)
{
	check_open_from(fl, 0, keys_of(fl, QUICSEAL_NONE), "");
}

/*
 * Taking over mid-connection: both directions installed at the flow's last generation from
 * that generation's secret and the HP key (struct quicseal_keys V2; derived on the host with
 * ring, apart from the module's core) seal and open that generation's packets byte for byte
 * as the vectors, which followed every key update from generation 0, say.
 */
static void check_resume_update(const struct flow *fl);

static void check_resume(const struct flow *fl)
{
	char how[48];
	uint64_t largest = 0;
	int first;

	for (first = 0; first < fl->npackets; first++) {
		if (fl->packets[first].generation == fl->resume_generation)
			break;
		if (fl->packets[first].pn > largest)
			largest = fl->packets[first].pn;
	}
	if (first == fl->npackets || first == 0) {
		check(0, "%s: no packets before generation %d to resume after", fl->name,
		      fl->resume_generation);
		return;
	}
	snprintf(how, sizeof(how), " [resumed at generation %d]", fl->resume_generation);
	check_seal_from(fl, first, resume_keys_of(fl, largest), how);
	check_open_from(fl, first, resume_keys_of(fl, largest), how);
	check_resume_update(fl);
}

/*
 * After taking over at generation n, the module derives n+1 from the installed secret: a
 * resumed sender and a resumed receiver go through a key update together.
 */
static void check_resume_update(const struct flow *fl)
{
	uint16_t rport, tport;
	int rx = udp_socket(IPPROTO_QUICSEAL, &rport), tx = udp_socket(IPPROTO_QUICSEAL, &tport);
	int i, good = 0, one = 1, dcid = fl->dcid_len, gen = fl->resume_generation;
	struct quicseal_info ti, ri;
	uint8_t packet[48];

	connect_to(tx, rport);
	set_keys(tx, QUICSEAL_TX_KEYS, resume_keys_of(fl, 1000));
	set_keys(rx, QUICSEAL_RX_KEYS, resume_keys_of(fl, 1000));
	setsockopt(rx, SOL_QUICSEAL, QUICSEAL_RECV_INFO, &one, sizeof(one));
	for (i = 0; i < 2; i++) {
		struct quicseal_rx_info info;
		int phase = (gen + i) & 1;
		ssize_t s, n;

		memset(packet, 0xcd, sizeof(packet));
		packet[0] = 0x40 | (phase << 2) | 0x01; /* 2-byte packet number */
		memset(packet + 1, 0x22, dcid);
		packet[1 + dcid] = (1001 + i) >> 8;
		packet[2 + dcid] = (1001 + i) & 0xff;
		s = send(tx, packet, sizeof(packet), 0);
		n = recv_info(rx, buf, sizeof(buf), &info, 0);
		good += s == sizeof(packet) && n == sizeof(packet) && !memcmp(buf, packet, n) &&
			info.pn == 1001u + i && info.generation == (uint64_t)(gen + i);
	}
	ti = info_of(tx, QUICSEAL_TX_INFO);
	ri = info_of(rx, QUICSEAL_RX_INFO);
	check(good == 2 && ti.generation == (uint64_t)gen + 1 && ri.generation == (uint64_t)gen + 1 &&
		      ti.counters.key_updates == 1 && ri.counters.key_updates == 1,
	      "%s: resumed at generation %d, key update to %llu on both sides (%d/2 packets)",
	      fl->name, gen, (unsigned long long)ri.generation, good);
	close(tx);
	close(rx);
}

/* Bad V2 installations: each refused with the documented errno, nothing installed. */
static void check_resume_bad_input(const struct flow *fl)
{
	uint16_t port;
	int fd = udp_socket(IPPROTO_QUICSEAL, &port);
	struct quicseal_keys k;
	struct quicseal_info info;

	k = resume_keys_of(fl, QUICSEAL_NONE);
	k.key_phase ^= 1;
	check(set_keys(fd, QUICSEAL_TX_KEYS, k) == -EINVAL,
	      "resume: key phase not the generation's low bit -> EINVAL");
	k = resume_keys_of(fl, QUICSEAL_NONE);
	k.key_phase = 2;
	check(set_keys(fd, QUICSEAL_RX_KEYS, k) == -EINVAL, "resume: key phase 2 -> EINVAL");
	k = resume_keys_of(fl, QUICSEAL_NONE);
	k.hp_key_len = 0;
	check(set_keys(fd, QUICSEAL_TX_KEYS, k) == -EINVAL,
	      "resume: generation %d without an HP key -> EINVAL", fl->resume_generation);
	k = resume_keys_of(fl, QUICSEAL_NONE);
	k.hp_key_len = fl->hp_key_len == 16 ? 32 : 16;
	check(set_keys(fd, QUICSEAL_RX_KEYS, k) == -EINVAL, "resume: HP key length %u -> EINVAL",
	      k.hp_key_len);
	k.hp_key_len = 33;
	check(set_keys(fd, QUICSEAL_RX_KEYS, k) == -EINVAL, "resume: HP key length 33 -> EINVAL");
	k = resume_keys_of(fl, QUICSEAL_NONE);
	k.reserved = 1;
	check(set_keys(fd, QUICSEAL_TX_KEYS, k) == -EINVAL, "resume: reserved field set -> EINVAL");
	k = resume_keys_of(fl, QUICSEAL_NONE);
	check(setsockopt(fd, SOL_QUICSEAL, QUICSEAL_TX_KEYS, &k, QUICSEAL_KEYS_SIZE_V1) == -1 &&
		      errno == EINVAL, "resume: V2 size field with a V1 optlen -> EINVAL");
	k = resume_keys_of(fl, QUICSEAL_NONE);
	k.generation = 1ull << 32;
	k.key_phase = 0;
	check(set_keys(fd, QUICSEAL_RX_KEYS, k) == -EINVAL, "resume: generation 2^32 -> EINVAL");
	k = keys_of(fl, QUICSEAL_NONE);
	k.key_phase = 1;
	check(set_keys(fd, QUICSEAL_TX_KEYS, k) == -EINVAL, "V1 layout with key phase 1 -> EINVAL");
	info = info_of(fd, QUICSEAL_TX_INFO);
	check(info.size == sizeof(info) && !(info.flags & QUICSEAL_INFO_KEYS),
	      "refused installations left no tx keys");
	/* V2 without an HP key at generation 0 behaves as V1. */
	k = keys_of(fl, QUICSEAL_NONE);
	k.size = QUICSEAL_KEYS_SIZE_V2;
	check(set_keys(fd, QUICSEAL_TX_KEYS, k) == 0, "V2 layout at generation 0 without HP key");
	close(fd);
}

/* Negatives: a fresh receiver at the negative's generation drops the packet and counts it. */
static void check_negatives(const struct flow *fl)
{
	int i;

	for (i = 0; i < fl->nnegatives; i++) {
		const struct negative *ng = &fl->negatives[i];
		uint16_t rport, tport;
		int rx = udp_socket(IPPROTO_QUICSEAL, &rport), tx = udp_socket(IPPROTO_UDP, &tport);
		struct quicseal_info info;
		uint64_t largest = ng->largest, counted;
		int g, advanced = 0;
		ssize_t n;

		connect_to(tx, rport);
		set_keys(rx, QUICSEAL_RX_KEYS, keys_of(fl, QUICSEAL_NONE));
		for (g = 0; g < ng->generation; g++)
			advanced += !setsockopt(rx, SOL_QUICSEAL, QUICSEAL_RX_ADVANCE, NULL, 0);
		setsockopt(rx, SOL_QUICSEAL, QUICSEAL_RX_LARGEST_PN, &largest, sizeof(largest));
		send(tx, ng->protected, ng->protected_len, 0);
		n = recv_info(rx, buf, sizeof(buf), NULL, MSG_DONTWAIT);
		if (n == -EAGAIN)
			usleep(20000), n = recv_info(rx, buf, sizeof(buf), NULL, MSG_DONTWAIT);
		info = info_of(rx, QUICSEAL_RX_INFO);
		counted = !strcmp(ng->expect, "auth_failed") ? info.counters.auth_failures
			  : !strcmp(ng->expect, "malformed") ? info.counters.malformed : 0;
		check(n == -EAGAIN && counted == 1 && advanced == ng->generation &&
			      info.generation == (uint64_t)ng->generation,
		      "%s: negative %d (%zu bytes) dropped as %s (recv %zd, counted %llu)", fl->name,
		      i, ng->protected_len, ng->expect, n, (unsigned long long)counted);
		close(tx);
		close(rx);
	}
}

/* A GSO flow: one UDP_SEGMENT send of cleartext through quicseal, and the protected batch
 * sent by a plain socket with UDP_SEGMENT (a GSO skb over loopback) to a quicseal socket. */
static void check_gso(const struct flow *fl)
{
	uint16_t rport, tport;
	int rx = udp_socket(IPPROTO_UDP, &rport), tx = udp_socket(IPPROTO_QUICSEAL, &tport);
	size_t len = 0;
	int i, good = 0, one = 1;
	ssize_t s;
	struct iovec iov;

	connect_to(tx, rport);
	set_keys(tx, QUICSEAL_TX_KEYS, keys_of(fl, fl->packets[0].pn - 1));
	for (i = 0; i < fl->npackets; i++) {
		memcpy(clear + len, fl->packets[i].header, fl->packets[i].header_len);
		memcpy(clear + len + fl->packets[i].header_len, fl->packets[i].payload,
		       fl->packets[i].payload_len);
		len += fl->packets[i].header_len + fl->packets[i].payload_len;
	}
	iov.iov_base = clear;
	iov.iov_len = len;
	if (strstr(fl->name, "[tx_pages=0]")) {
		/* The socket option instead of the cmsg: the module pins the value it sealed at. */
		int gso = fl->gso_size;

		setsockopt(tx, SOL_UDP, UDP_SEGMENT, &gso, sizeof(gso));
		s = send_cmsg(tx, &iov, 1, QUICSEAL_NONE, 0);
	} else {
		s = send_cmsg(tx, &iov, 1, QUICSEAL_NONE, fl->gso_size);
	}
	for (i = 0; i < fl->npackets; i++) {
		ssize_t n = recv_info(rx, buf, sizeof(buf), NULL, 0);

		good += n == (ssize_t)fl->packets[i].protected_len &&
			!memcmp(buf, fl->packets[i].protected, n);
	}
	check(s == (ssize_t)len && good == fl->npackets,
	      "%s: GSO send of %zu cleartext bytes (gso_size %d) -> %d/%d datagrams exact", fl->name,
	      len, fl->gso_size, good, fl->npackets);
	close(tx);
	close(rx);

	/* Receiving side. */
	rx = udp_socket(IPPROTO_QUICSEAL, &rport);
	tx = udp_socket(IPPROTO_UDP, &tport);
	connect_to(tx, rport);
	set_keys(rx, QUICSEAL_RX_KEYS, keys_of(fl, fl->packets[0].pn - 1));
	setsockopt(rx, SOL_QUICSEAL, QUICSEAL_RECV_INFO, &one, sizeof(one));
	len = 0;
	for (i = 0; i < fl->npackets; i++) {
		memcpy(buf + len, fl->packets[i].protected, fl->packets[i].protected_len);
		len += fl->packets[i].protected_len;
	}
	iov.iov_base = buf;
	iov.iov_len = len;
	s = send_cmsg(tx, &iov, 1, QUICSEAL_NONE, fl->gso_size);
	good = 0;
	for (i = 0; i < fl->npackets; i++) {
		const struct packet *p = &fl->packets[i];
		struct quicseal_rx_info ri;
		ssize_t n = recv_info(rx, clear, sizeof(clear), &ri, 0);

		good += n == (ssize_t)(p->header_len + p->payload_len) &&
			!memcmp(clear, p->header, p->header_len) &&
			!memcmp(clear + p->header_len, p->payload, p->payload_len) &&
			ri.pn == p->pn && ri.generation == (uint64_t)p->generation;
	}
	check(s == (ssize_t)len && good == fl->npackets,
	      "%s: GSO batch of %zu protected bytes received as %d/%d opened datagrams", fl->name,
	      len, good, fl->npackets);
	close(tx);
	close(rx);
}

/* A stream over two sockets with keys, key updates on both sides forced by the limit. */
static void end_to_end(const struct flow *fl, int rx, int tx, const char *how)
{
	struct quicseal_keys k = keys_of(fl, QUICSEAL_NONE);
	struct quicseal_info ti, ri;
	uint8_t packet[64];
	int i, good = 0, one = 1, phase = 0, limited = 0, prepared = 0, dcid = fl->dcid_len;
	ssize_t s, n;

	k.confidentiality_limit = 3;
	set_keys(tx, QUICSEAL_TX_KEYS, k);
	set_keys(rx, QUICSEAL_RX_KEYS, keys_of(fl, QUICSEAL_NONE));
	setsockopt(rx, SOL_QUICSEAL, QUICSEAL_RECV_INFO, &one, sizeof(one));
	for (i = 0; i < 12; i++) {
		struct quicseal_rx_info info;

		memset(packet, 0xab, sizeof(packet));
		packet[0] = 0x40 | (phase << 2) | 0x01; /* 2-byte packet number */
		memset(packet + 1, 0x11, dcid);
		packet[1 + dcid] = 0;
		packet[2 + dcid] = i + 1;
		s = send(tx, packet, sizeof(packet), 0);
		if (s == -1 && errno == EKEYEXPIRED) {
			/* Confidentiality limit: the sender must update keys. */
			limited++;
			phase ^= 1;
			i--;
			continue;
		}
		n = recv_info(rx, buf, sizeof(buf), &info, 0);
		good += s == sizeof(packet) && n == sizeof(packet) && !memcmp(buf, packet, n) &&
			info.pn == (uint64_t)i + 1 && info.generation == (uint64_t)limited;
		if (n > 0 && (info.flags & QUICSEAL_RX_F_KEY_UPDATE)) {
			/* The update used the next keys up; the module derives the following
			 * generation's in process context, before any packet needs them. */
			int waited;

			for (waited = 0; waited < 200; waited++) {
				if (info_of(rx, QUICSEAL_RX_INFO).flags & QUICSEAL_INFO_NEXT_KEYS)
					break;
				usleep(1000);
			}
			prepared += waited < 200;
		}
	}
	ti = info_of(tx, QUICSEAL_TX_INFO);
	ri = info_of(rx, QUICSEAL_RX_INFO);
	check(good == 12 && limited == 3 && ti.generation == 3 && ri.generation == 3 &&
		      ti.counters.key_updates == 3 && ri.counters.key_updates == 3 &&
		      ti.counters.limit_drops == 3,
	      "%s: end to end%s, 12 packets, EKEYEXPIRED at the limit x%d, key updates tx %llu rx %llu",
	      fl->name, how, limited, (unsigned long long)ti.counters.key_updates,
	      (unsigned long long)ri.counters.key_updates);
	check(prepared == 3 && (ri.flags & QUICSEAL_INFO_NEXT_KEYS) &&
		      (ti.flags & QUICSEAL_INFO_NEXT_KEYS),
	      "%s: after each of the 3 key updates the receiver's next keys were derived off the packet path%s (%d)",
	      fl->name, how, prepared);
}

/* ioctl on /dev/quicseal: 0 or -errno. */
static int quicseal_ioctl(unsigned long request, int fd)
{
	int dev = open("/dev/quicseal", O_RDWR), err;

	if (dev < 0)
		return -errno;
	err = ioctl(dev, request, fd) ? -errno : 0;
	close(dev);
	return err;
}

/* Four short-header packets of the flow's DCID length, packet numbers 1 to 4, as one GSO
 * send of cleartext from `tx`; `rx` must hand each back opened. Returns how many did. */
static int gso_through(const struct flow *fl, int rx, int tx)
{
	const size_t clear_len = 48, gso = clear_len + QUICSEAL_TAG_LEN;
	uint8_t batch[4 * 48];
	struct iovec iov = { batch, sizeof(batch) };
	int i, good = 0;

	for (i = 0; i < 4; i++) {
		uint8_t *p = batch + i * clear_len;

		memset(p, 0x30 + i, clear_len);
		p[0] = 0x41; /* 2-byte packet number */
		memset(p + 1, 0x11, fl->dcid_len);
		p[1 + fl->dcid_len] = 0;
		p[2 + fl->dcid_len] = i + 1;
	}
	if (send_cmsg(tx, &iov, 1, QUICSEAL_NONE, gso) != (ssize_t)sizeof(batch))
		return 0;
	for (i = 0; i < 4; i++) {
		struct quicseal_rx_info ri;
		ssize_t n = recv_info(rx, buf, sizeof(buf), &ri, 0);

		good += n == (ssize_t)clear_len && !memcmp(buf, batch + i * clear_len, n) &&
			ri.status == QUICSEAL_RX_OPENED && ri.pn == (uint64_t)i + 1;
	}
	return good;
}

/*
 * Attaching to the plain UDP sockets a stack already has (/dev/quicseal): a socket with
 * traffic queued before it; what is refused; sealed GSO batches and key updates both ways
 * through attached sockets; detach, and the sockets carry on as plain UDP; attach again and
 * close while attached.
 */
static void check_attach(const struct flow *fl)
{
	uint16_t rport, tport, port;
	int rx = udp_socket(IPPROTO_UDP, &rport), tx = udp_socket(IPPROTO_UDP, &tport);
	int quic = udp_socket(IPPROTO_QUICSEAL, &port), gro = udp_socket(IPPROTO_UDP, &port);
	int tcp = socket(family, SOCK_STREAM, 0), one = 1, refusals, ok, good;
	char name[QUICSEAL_IMPLEMENTATION_LEN];
	socklen_t name_len = sizeof(name);
	struct quicseal_info info;
	socklen_t info_len = sizeof(info);
	ssize_t n;

	connect_to(tx, rport);
	send(tx, "before", 6, 0);
	setsockopt(gro, SOL_UDP, UDP_GRO, &one, sizeof(one));
	ok = quicseal_ioctl(QUICSEAL_IOC_ATTACH, rx) == 0 &&
	     quicseal_ioctl(QUICSEAL_IOC_ATTACH, tx) == 0;
	check(ok, "%s: attach to two plain UDP sockets, one with a datagram queued", fl->name);
	refusals = (quicseal_ioctl(QUICSEAL_IOC_ATTACH, rx) == -EALREADY) +
		   (quicseal_ioctl(QUICSEAL_IOC_ATTACH, quic) == -EALREADY) +
		   (quicseal_ioctl(QUICSEAL_IOC_ATTACH, tcp) == -EPROTONOSUPPORT) +
		   (quicseal_ioctl(QUICSEAL_IOC_ATTACH, gro) == -EBUSY) +
		   (quicseal_ioctl(QUICSEAL_IOC_DETACH, gro) == -ENOENT) +
		   (quicseal_ioctl(QUICSEAL_IOC_DETACH, quic) == -EOPNOTSUPP) +
		   (quicseal_ioctl(QUICSEAL_IOC_ATTACH, 1000) == -EBADF);
	check(refusals == 7,
	      "%s: attach refuses an attached socket, a quicseal one, TCP, UDP_GRO, a bad fd; detach what is not attached (%d of 7)",
	      fl->name, refusals);
	n = recv(rx, buf, sizeof(buf), 0);
	check(n == 6 && !memcmp(buf, "before", 6),
	      "%s: the datagram queued before attach arrives as it was", fl->name);

	set_keys(tx, QUICSEAL_TX_KEYS, keys_of(fl, QUICSEAL_NONE));
	set_keys(rx, QUICSEAL_RX_KEYS, keys_of(fl, QUICSEAL_NONE));
	setsockopt(rx, SOL_QUICSEAL, QUICSEAL_RECV_INFO, &one, sizeof(one));
	check(!getsockopt(tx, SOL_QUICSEAL, QUICSEAL_TX_IMPLEMENTATION, name, &name_len),
	      "%s: an attached socket takes quicseal's options (tx on %s)", fl->name, name);
	good = gso_through(fl, rx, tx);
	check(good == 4, "%s: a GSO batch sealed and opened by attached sockets: %d/4", fl->name,
	      good);
	end_to_end(fl, rx, tx, " [attached]");

	/* A sealed datagram still queued at detach comes out opened: the hook opened it before
	 * it was queued. */
	set_keys(tx, QUICSEAL_TX_KEYS, keys_of(fl, QUICSEAL_NONE));
	set_keys(rx, QUICSEAL_RX_KEYS, keys_of(fl, QUICSEAL_NONE));
	memset(clear, 0x44, 40);
	clear[0] = 0x41;
	memset(clear + 1, 0x11, fl->dcid_len);
	clear[1 + fl->dcid_len] = 0;
	clear[2 + fl->dcid_len] = 1;
	send(tx, clear, 40, 0);
	usleep(10000);
	ok = quicseal_ioctl(QUICSEAL_IOC_DETACH, rx) == 0;
	n = recv(rx, buf, sizeof(buf), 0);
	check(ok && n == 40 && !memcmp(buf, clear, 40),
	      "%s: a datagram queued at detach is read opened (%zd bytes)", fl->name, n);

	ok = quicseal_ioctl(QUICSEAL_IOC_DETACH, tx) == 0 &&
	     quicseal_ioctl(QUICSEAL_IOC_DETACH, rx) == -ENOENT;
	send(tx, "after", 5, 0);
	n = recv(rx, buf, sizeof(buf), 0);
	check(ok && n == 5 && !memcmp(buf, "after", 5) &&
		      getsockopt(rx, SOL_QUICSEAL, QUICSEAL_RX_INFO, &info, &info_len) == -1,
	      "%s: detached, both carry on as plain UDP (no quicseal options)", fl->name);
	check(quicseal_ioctl(QUICSEAL_IOC_ATTACH, rx) == 0 &&
		      !set_keys(rx, QUICSEAL_RX_KEYS, keys_of(fl, QUICSEAL_NONE)),
	      "%s: attach again after detach", fl->name);
	close(rx); /* attached, with keys: destroy frees it */
	close(tx);
	close(quic);
	close(gro);
	close(tcp);
}

struct attach_race {
	int fd, rounds, attached, detached;
	const struct flow *fl;
};

static void *attach_detach_loop(void *arg)
{
	struct attach_race *race = arg;
	int i;

	for (i = 0; i < race->rounds; i++) {
		if (quicseal_ioctl(QUICSEAL_IOC_ATTACH, race->fd) == 0) {
			race->attached++;
			set_keys(race->fd, QUICSEAL_TX_KEYS, keys_of(race->fl, QUICSEAL_NONE));
		}
		race->detached += quicseal_ioctl(QUICSEAL_IOC_DETACH, race->fd) == 0;
	}
	return NULL;
}

static void *blocked_recv(void *arg)
{
	int fd = *(int *)arg;
	ssize_t n = recv(fd, buf, sizeof(buf), 0);

	return (void *)(intptr_t)n;
}

/*
 * Attach and detach racing the socket's other users (two CPUs): sends throughout 300
 * attach/detach rounds on another thread (each send goes out sealed or plain, never fails
 * otherwise); a recvmsg blocked across a detach returns the next datagram as plain UDP; a
 * close racing the rounds. The VM log must stay free of warnings.
 */
static void check_attach_races(const struct flow *fl)
{
	uint16_t rport, tport, port;
	int rx = udp_socket(IPPROTO_UDP, &rport), tx = udp_socket(IPPROTO_UDP, &tport);
	struct attach_race race = { tx, 300, 0, 0, fl };
	pthread_t thread;
	uint8_t packet[64];
	int i, sent = 0, other = 0, waiter, one = 1;
	void *result;
	ssize_t n;

	long long fallbacks = proc_value("tx_page_fallbacks");

	connect_to(tx, rport);
	memset(packet, 0x22, sizeof(packet));
	packet[0] = 0x41;
	pthread_create(&thread, NULL, attach_detach_loop, &race);
	for (i = 0; i < 2000; i++) {
		packet[1 + fl->dcid_len] = i >> 8;
		packet[2 + fl->dcid_len] = i;
		if (send(tx, packet, sizeof(packet) - QUICSEAL_TAG_LEN, 0) > 0)
			sent++;
		else if (errno != ENOKEY && errno != EKEYEXPIRED && errno != EINVAL)
			other++;
		while (recv(rx, buf, sizeof(buf), MSG_DONTWAIT) > 0)
			;
	}
	pthread_join(thread, NULL);
	/* Sends this fast may outrun the zero-copy completions' option memory: those few go out
	 * through UDP's copy, as designed (docs/kernel-uapi.md, Copies). */
	forced_fallbacks += proc_value("tx_page_fallbacks") - fallbacks;
	check(race.attached == 300 && race.detached == 300 && sent > 0 && other == 0,
	      "%s: 300 attach/detach rounds racing 2000 sends: %d sent, %d unexpected errors",
	      fl->name, sent, other);

	/* A receiver blocked in recvmsg while it is detached. */
	waiter = udp_socket(IPPROTO_UDP, &port);
	quicseal_ioctl(QUICSEAL_IOC_ATTACH, waiter);
	set_keys(waiter, QUICSEAL_RX_KEYS, keys_of(fl, QUICSEAL_NONE));
	/* With the cmsg on, the blocked call is in the module's recvmsg, not UDP's. */
	setsockopt(waiter, SOL_QUICSEAL, QUICSEAL_RECV_INFO, &one, sizeof(one));
	pthread_create(&thread, NULL, blocked_recv, &waiter);
	usleep(100000);
	i = quicseal_ioctl(QUICSEAL_IOC_DETACH, waiter);
	connect_to(rx, port);
	send(rx, "plain", 5, 0);
	pthread_join(thread, &result);
	n = (ssize_t)(intptr_t)result;
	check(i == 0 && n == 5 && !memcmp(buf, "plain", 5),
	      "%s: a recvmsg blocked across detach returns the next datagram as plain UDP (%zd)",
	      fl->name, n);
	close(waiter);

	/* Close racing the rounds: later ioctls find no descriptor. */
	race.fd = udp_socket(IPPROTO_UDP, &port);
	race.attached = race.detached = 0;
	pthread_create(&thread, NULL, attach_detach_loop, &race);
	usleep(20000);
	close(race.fd);
	pthread_join(thread, NULL);
	check(race.attached > 0, "%s: close racing attach/detach (%d rounds attached before it)",
	      fl->name, race.attached);
	close(rx);
	close(tx);
}

/* quicseal to quicseal: a stream with key updates on both sides, and the limit. */
static void check_end_to_end(const struct flow *fl)
{
	uint16_t rport, tport;
	int rx = udp_socket(IPPROTO_QUICSEAL, &rport), tx = udp_socket(IPPROTO_QUICSEAL, &tport);

	connect_to(tx, rport);
	end_to_end(fl, rx, tx, "");
	close(tx);
	close(rx);
}

static void check_bad_input(const struct flow *fl)
{
	uint16_t rport, tport;
	int rx = udp_socket(IPPROTO_UDP, &rport), tx = udp_socket(IPPROTO_QUICSEAL, &tport);
	struct quicseal_keys k;
	struct quicseal_info info;
	uint8_t packet[64];
	struct iovec iov = { packet, sizeof(packet) };
	socklen_t len;
	int one = 1;

	connect_to(tx, rport);
	k = keys_of(fl, QUICSEAL_NONE);
	check(setsockopt(tx, SOL_QUICSEAL, QUICSEAL_TX_KEYS, &k, sizeof(k) - 1) == -1 &&
		      errno == EINVAL, "bad input: short key struct -> EINVAL");
	k.size = 64;
	check(setsockopt(tx, SOL_QUICSEAL, QUICSEAL_TX_KEYS, &k, QUICSEAL_KEYS_SIZE_V1) == -1 &&
		      errno == EINVAL, "bad input: wrong size field -> EINVAL");
	k = keys_of(fl, QUICSEAL_NONE);
	k.suite = 0x1304;
	check(set_keys(tx, QUICSEAL_TX_KEYS, k) == -EOPNOTSUPP, "bad input: unknown suite -> EOPNOTSUPP");
	k = keys_of(fl, QUICSEAL_NONE);
	k.secret_len = 31;
	check(set_keys(tx, QUICSEAL_RX_KEYS, k) == -EINVAL, "bad input: wrong secret length -> EINVAL");
	k.secret_len = 200;
	check(set_keys(tx, QUICSEAL_RX_KEYS, k) == -EINVAL, "bad input: oversized secret length -> EINVAL");
	k = keys_of(fl, QUICSEAL_NONE);
	k.dcid_len = 21;
	check(set_keys(tx, QUICSEAL_TX_KEYS, k) == -EINVAL, "bad input: dcid_len 21 -> EINVAL");
	check(setsockopt(tx, SOL_QUICSEAL, 99, &one, sizeof(one)) == -1 && errno == ENOPROTOOPT,
	      "bad input: unknown option -> ENOPROTOOPT");
	check(setsockopt(tx, SOL_UDP, UDP_GRO, &one, sizeof(one)) == -1 && errno == EOPNOTSUPP,
	      "bad input: UDP_GRO on a quicseal socket -> EOPNOTSUPP");
	len = sizeof(info) - 1;
	check(getsockopt(tx, SOL_QUICSEAL, QUICSEAL_TX_INFO, &info, &len) == -1 && errno == EINVAL,
	      "bad input: short info buffer -> EINVAL");

	/* Before keys: plain UDP. */
	memset(packet, 0x5a, sizeof(packet));
	check(send(tx, packet, sizeof(packet), 0) == sizeof(packet) &&
		      recv_info(rx, buf, sizeof(buf), NULL, 0) == sizeof(packet) &&
		      !memcmp(buf, packet, sizeof(packet)),
	      "before keys: a quicseal socket sends plain UDP");
	/* Cleartext corked before keys: a send with keys must not append sealed bytes to it. */
	{
		int zero = 0;
		ssize_t corked = send(tx, packet, 10, MSG_MORE), sealed_send, n;

		set_keys(tx, QUICSEAL_TX_KEYS, keys_of(fl, QUICSEAL_NONE));
		memset(packet, 0, sizeof(packet));
		packet[0] = 0x40;
		packet[1 + fl->dcid_len] = 1;
		sealed_send = send(tx, packet, sizeof(packet), 0);
		check(corked == 10 && sealed_send == -1 && errno == EBUSY,
		      "bad input: a send with keys while cleartext is corked -> EBUSY");
		setsockopt(tx, SOL_UDP, UDP_CORK, &zero, sizeof(zero)); /* flushes it, plain */
		n = recv_info(rx, buf, sizeof(buf), NULL, 0);
		check(n == 10 && buf[0] == 0x5a, "the corked cleartext went out alone when uncorked (%zd)",
		      n);
	}

	set_keys(tx, QUICSEAL_TX_KEYS, keys_of(fl, QUICSEAL_NONE));
	memset(packet, 0, sizeof(packet));
	packet[0] = 0x40; /* 1-byte packet number */
	packet[1 + fl->dcid_len] = 5;
	check(send_cmsg(tx, &iov, 1, QUICSEAL_NONE, 20) == -EINVAL,
	      "bad input: gso_size too small -> EINVAL");
	check(send_cmsg(tx, &iov, 1, QUICSEAL_NONE, 16) == -EINVAL, "bad input: gso_size 16 -> EINVAL");
	iov.iov_len = 1 + fl->dcid_len + 1 + 2; /* sealed: 3 bytes short of a sample */
	check(send_cmsg(tx, &iov, 1, QUICSEAL_NONE, 0) == -EBADMSG,
	      "bad input: packet too short to sample -> EBADMSG");
	iov.iov_len = sizeof(packet);
	packet[0] = 0x40 | 0x18;
	check(send_cmsg(tx, &iov, 1, QUICSEAL_NONE, 0) == -EBADMSG,
	      "bad input: reserved bits set -> EBADMSG");
	packet[0] = 0x40;
	check(send_cmsg(tx, &iov, 1, 6, 0) == -EINVAL,
	      "bad input: PN cmsg not matching the header -> EINVAL");
	check(send_cmsg(tx, &iov, 1, QUICSEAL_NONE, 0) == sizeof(packet) &&
		      recv_info(rx, buf, sizeof(buf), NULL, 0) == sizeof(packet) + 16,
	      "valid packet after bad ones: sealed (+16 bytes)");
	check(send_cmsg(tx, &iov, 1, QUICSEAL_NONE, 0) == -EILSEQ,
	      "bad input: packet number reused -> EILSEQ");
	check(send(tx, packet, 0, 0) == -1 && errno == EBADMSG, "bad input: empty datagram -> EBADMSG");
	check(send(tx, packet, sizeof(packet), MSG_MORE) == -1 && errno == EOPNOTSUPP,
	      "bad input: MSG_MORE (corking) -> EOPNOTSUPP");
	check(send(tx, packet, sizeof(packet), MSG_PROBE) == -1 && errno == EOPNOTSUPP,
	      "bad input: MSG_PROBE (sends nothing, would spend a packet number) -> EOPNOTSUPP");
	{
		/* Too large once sealed: refused before sealing, so the number is not spent. */
		static uint8_t big[65500];
		struct iovec biov = { big, sizeof(big) };

		memcpy(big, packet, sizeof(packet));
		big[1 + fl->dcid_len] = 6;
		check(send_cmsg(tx, &biov, 1, QUICSEAL_NONE, 0) == -EMSGSIZE,
		      "bad input: 65500 bytes + tag over the IP limit -> EMSGSIZE before sealing");
		packet[1 + fl->dcid_len] = 6;
		check(send_cmsg(tx, &iov, 1, QUICSEAL_NONE, 0) == sizeof(packet) &&
			      recv_info(rx, buf, sizeof(buf), NULL, 0) == sizeof(packet) + 16,
		      "after EMSGSIZE the same packet number still seals (not spent)");
	}
	info = info_of(tx, QUICSEAL_TX_INFO);
	check(info.counters.sealed == 2 && info.counters.malformed == 2 && info.counters.rejected == 2,
	      "bad input: counted (sealed %llu, malformed %llu, rejected %llu)",
	      (unsigned long long)info.counters.sealed, (unsigned long long)info.counters.malformed,
	      (unsigned long long)info.counters.rejected);
	{
		/* One GSO segment more than UDP_MAX_SEGMENTS: refused whole, before sealing. */
		static uint8_t batch[129 * sizeof(packet)];
		struct iovec biov = { batch, sizeof(batch) };
		int i;

		for (i = 0; i < 129; i++)
			memcpy(batch + i * sizeof(packet), packet, sizeof(packet));
		check(send_cmsg(tx, &biov, 1, QUICSEAL_NONE, sizeof(packet) + 16) == -EINVAL,
		      "bad input: 129 GSO segments -> EINVAL");
		packet[1 + fl->dcid_len] = 7;
		check(send_cmsg(tx, &iov, 1, QUICSEAL_NONE, 0) == sizeof(packet) &&
			      recv_info(rx, buf, sizeof(buf), NULL, 0) == sizeof(packet) + 16 &&
			      info_of(tx, QUICSEAL_TX_INFO).counters.sealed == 3,
		      "after 129 segments a packet still seals: nothing of the batch was sealed");
	}
	close(tx);
	close(rx);
}

/*
 * A packet handed over in pieces with empty iovecs before, between and after them (an
 * empty entry is legal in sendmsg): sealed as their concatenation, byte-exact against the
 * vector.
 */
static void check_empty_iovecs(const struct flow *fl)
{
	const struct packet *p = &fl->packets[0];
	uint16_t rport, tport;
	int rx = udp_socket(IPPROTO_UDP, &rport), tx = udp_socket(IPPROTO_QUICSEAL, &tport);
	size_t half = p->payload_len / 2;
	struct iovec iov[7] = {
		{ p->header, 0 },
		{ p->header, p->header_len },
		{ p->payload, 0 },
		{ p->payload, half },
		{ NULL, 0 },
		{ p->payload + half, p->payload_len - half },
		{ NULL, 0 },
	};
	ssize_t s, n;

	connect_to(tx, rport);
	set_keys(tx, QUICSEAL_TX_KEYS, keys_of(fl, QUICSEAL_NONE));
	s = send_cmsg(tx, iov, 7, p->pn, 0);
	n = recv_info(rx, buf, sizeof(buf), NULL, 0);
	check(s == (ssize_t)(p->header_len + p->payload_len) && n == (ssize_t)p->protected_len &&
		      !memcmp(buf, p->protected, n),
	      "%s: a packet in 7 iovecs, 4 of them empty, sealed byte-exact (send %zd recv %zd)",
	      fl->name, s, n);
	close(tx);
	close(rx);
}

/*
 * Receive-side hardening: datagrams queued before the hook existed and before keys are
 * reported PLAIN; UDP_ENCAP is refused at SOL_UDP and SOL_UDPLITE, before and after keys,
 * and forgeries are still dropped afterwards.
 */

static void check_integrity_limit(const struct flow *fl, int tx, uint64_t largest);

static void check_rx_hardening(const struct flow *fl)
{
	const struct packet *p = &fl->packets[0];
	uint16_t rport, tport;
	int rx = udp_socket(IPPROTO_QUICSEAL, &rport), tx = udp_socket(IPPROTO_UDP, &tport);
	int one = 1, zero = 0, refused = 0, level, i, good = 0;
	uint64_t largest = largest_before(fl, 0);
	struct quicseal_rx_info ri[3];
	uint8_t plain[2][40], forged[1500];
	ssize_t n[3];

	connect_to(tx, rport);
	for (i = 0; i < 2; i++) {
		memset(plain[i], 0x70 + i, sizeof(plain[i]));
		send(tx, plain[i], sizeof(plain[i]), 0);
		if (i == 0) /* the first queued before the hook, the second after it */
			setsockopt(rx, SOL_QUICSEAL, QUICSEAL_RECV_INFO, &one, sizeof(one));
	}
	for (level = 0; level < 2; level++)
		refused += setsockopt(rx, level ? SOL_UDPLITE : SOL_UDP, UDP_ENCAP, &zero,
				      sizeof(zero)) == -1 && errno == EOPNOTSUPP;
	set_keys(rx, QUICSEAL_RX_KEYS, keys_of(fl, largest));
	for (level = 0; level < 2; level++)
		refused += setsockopt(rx, level ? SOL_UDPLITE : SOL_UDP, UDP_ENCAP, &zero,
				      sizeof(zero)) == -1 && errno == EOPNOTSUPP;
	refused += setsockopt(rx, SOL_UDPLITE, UDP_GRO, &one, sizeof(one)) == -1 &&
		   errno == EOPNOTSUPP;
	send(tx, p->protected, p->protected_len, 0);
	for (i = 0; i < 3; i++)
		n[i] = recv_info(rx, buf + i * 2000, 2000, &ri[i], 0);
	for (i = 0; i < 2; i++)
		good += n[i] == (ssize_t)sizeof(plain[i]) && !memcmp(buf + i * 2000, plain[i], n[i]) &&
			ri[i].size == sizeof(ri[i]) && ri[i].status == QUICSEAL_RX_PLAIN &&
			ri[i].pn == 0 && ri[i].header_len == 0 && ri[i].payload_len == 0;
	check(good == 2, "%s: datagrams queued before the hook and before keys: cmsg QUICSEAL_RX_PLAIN (%d/2; status %u %u)",
	      fl->name, good, ri[0].status, ri[1].status);
	check(n[2] == (ssize_t)(p->header_len + p->payload_len) &&
		      ri[2].status == QUICSEAL_RX_OPENED && ri[2].pn == p->pn &&
		      ri[2].header_len == p->header_len && ri[2].payload_len == p->payload_len,
	      "%s: then the first packet with keys opened, header_len %u payload_len %u", fl->name,
	      ri[2].header_len, ri[2].payload_len);
	check(refused == 5, "%s: UDP_ENCAP at SOL_UDP and SOL_UDPLITE, before and after keys, and SOL_UDPLITE UDP_GRO -> EOPNOTSUPP (%d/5)",
	      fl->name, refused);
	memcpy(forged, p->protected, p->protected_len);
	forged[p->protected_len - 1] ^= 1;
	send(tx, forged, p->protected_len, 0);
	n[0] = recv_info(rx, buf, sizeof(buf), NULL, MSG_DONTWAIT);
	if (n[0] == -EAGAIN)
		usleep(20000), n[0] = recv_info(rx, buf, sizeof(buf), NULL, MSG_DONTWAIT);
	check(n[0] == -EAGAIN && info_of(rx, QUICSEAL_RX_INFO).counters.auth_failures == 1,
	      "%s: a forgery after the refused UDP_ENCAP is dropped and counted (recv %zd)",
	      fl->name, n[0]);
	/*
	 * A packet number far in the past: with the largest received 2^40 beyond it, the
	 * packet's truncated number decodes to one near 2^40, so its nonce is not the one it was
	 * sealed under and it fails to open: dropped and counted like a forgery, nothing
	 * delivered.
	 */
	largest = p->pn + (1ULL << 40);
	setsockopt(rx, SOL_QUICSEAL, QUICSEAL_RX_LARGEST_PN, &largest, sizeof(largest));
	send(tx, p->protected, p->protected_len, 0);
	n[0] = recv_info(rx, buf, sizeof(buf), NULL, MSG_DONTWAIT);
	if (n[0] == -EAGAIN)
		usleep(20000), n[0] = recv_info(rx, buf, sizeof(buf), NULL, MSG_DONTWAIT);
	check(n[0] == -EAGAIN && info_of(rx, QUICSEAL_RX_INFO).counters.auth_failures == 2,
	      "%s: a packet number 2^40 in the past fails to open, dropped and counted (recv %zd)",
	      fl->name, n[0]);
	close(rx);
	check_integrity_limit(fl, tx, largest_before(fl, 0));
	close(tx);
}

/*
 * The integrity limit (RFC 9001 §6.6): keys that allow two failed openings. After two
 * forgeries the receiver says the connection must close, and drops and counts every packet
 * after them, a genuine one too (EKEYREVOKED inside the module, never delivered).
 */
static void check_integrity_limit(const struct flow *fl, int tx, uint64_t largest)
{
	const struct packet *p = &fl->packets[0];
	struct quicseal_keys k = keys_of(fl, largest);
	struct quicseal_info info;
	uint16_t rport;
	int rx = udp_socket(IPPROTO_QUICSEAL, &rport), i;
	uint8_t forged[1500];
	ssize_t n;

	connect_to(tx, rport);
	k.integrity_limit = 2;
	set_keys(rx, QUICSEAL_RX_KEYS, k);
	memcpy(forged, p->protected, p->protected_len);
	forged[p->protected_len - 1] ^= 1;
	for (i = 0; i < 2; i++)
		send(tx, forged, p->protected_len, 0);
	send(tx, p->protected, p->protected_len, 0);
	usleep(20000);
	n = recv_info(rx, buf, sizeof(buf), NULL, MSG_DONTWAIT);
	info = info_of(rx, QUICSEAL_RX_INFO);
	check(n == -EAGAIN && info.counters.auth_failures == 2 && info.counters.limit_drops == 1 &&
		      info.counters.opened == 0 && (info.flags & QUICSEAL_INFO_INTEGRITY_LIMIT),
	      "%s: integrity limit 2: two forgeries, then the genuine packet dropped and counted, INTEGRITY_LIMIT set (recv %zd; auth_failures %llu limit_drops %llu flags %#x)",
	      fl->name, n, (unsigned long long)info.counters.auth_failures,
	      (unsigned long long)info.counters.limit_drops, info.flags);
	close(rx);
}

/*
 * close() while datagrams arrive: a child sends valid packets at a port as fast as it can
 * while the parent binds a receiver there, installs keys, reads a little and closes, over and
 * over (the VM has two CPUs, so the softirq opening them runs beside the close).
 */
static void check_close_under_load(const struct flow *fl)
{
	const struct packet *p = &fl->packets[0];
	uint16_t rport, tport;
	int rx = udp_socket(IPPROTO_QUICSEAL, &rport), tx, cycles = 0, bound = 0, i;
	long long opened = proc_value("opened");
	struct sockaddr_storage a;
	socklen_t alen = loopback(&a, rport);
	pid_t child;

	close(rx);
	child = fork();
	if (child == 0) {
		tx = udp_socket(IPPROTO_UDP, &tport);
		connect_to(tx, rport);
		for (;;)
			send(tx, p->protected, p->protected_len, 0);
	}
	for (i = 0; i < 200; i++) {
		rx = socket(family, SOCK_DGRAM, IPPROTO_QUICSEAL);
		if (!bind(rx, (struct sockaddr *)&a, alen)) {
			bound++;
			set_keys(rx, QUICSEAL_RX_KEYS, keys_of(fl, largest_before(fl, 0)));
			recv_info(rx, buf, sizeof(buf), NULL, MSG_DONTWAIT);
			if (i & 1)
				usleep(1000);
		}
		close(rx);
		cycles++;
	}
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	check(cycles == 200 && bound > 100 && proc_value("opened") > opened,
	      "%s: 200 closes of a receiver while packets arrive (%d bound, %lld opened meanwhile)",
	      fl->name, bound, proc_value("opened") - opened);
}

/* Every check of one vector flow in the current family. */
static void check_flow(const struct flow *fl)
{
	if (fl->gso_size) {
		check_gso(fl);
	} else {
		check_seal(fl);
		check_empty_iovecs(fl);
		check_open(fl);
		if (fl->resume_generation)
			check_resume(fl);
	}
	check_negatives(fl);
}

/* A line of /proc/net/quicseal, or -1. */
static long long proc_value(const char *name)
{
	FILE *proc = fopen("/proc/net/quicseal", "r");
	char line[128], key[64];
	long long value, found = -1;

	while (proc && fgets(line, sizeof(line), proc))
		if (sscanf(line, "%63s %lld", key, &value) == 2 && !strcmp(key, name))
			found = value;
	if (proc)
		fclose(proc);
	return found;
}

static int set_param(const char *name, int value)
{
	char path[96];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/module/quicseal/parameters/%s", name);
	f = fopen(path, "w");
	if (!f)
		return -1;
	fprintf(f, "%d\n", value);
	return fclose(f);
}

/* Whether the first processor of /proc/cpuinfo lists `flag`. */
static int cpu_has(const char *flag)
{
	static char line[8192];
	FILE *f = fopen("/proc/cpuinfo", "r");
	size_t n = strlen(flag);
	int found = 0;

	while (f && fgets(line, sizeof(line), f)) {
		char *p;

		if (strncmp(line, "flags", 5))
			continue;
		for (p = strstr(line, flag); p && !found; p = strstr(p + 1, flag))
			found = p[-1] == ' ' && (p[n] == ' ' || p[n] == '\n');
		break;
	}
	if (f)
		fclose(f);
	return found;
}

/* The name /proc/net/quicseal gives `suite`'s implementation ("" if none). */
static void proc_implementation(int suite, char *name, size_t cap)
{
	const char *suite_name = suite == QUICSEAL_TLS_AES_128_GCM_SHA256 ? "TLS_AES_128_GCM_SHA256"
				 : suite == QUICSEAL_TLS_AES_256_GCM_SHA384
					 ? "TLS_AES_256_GCM_SHA384"
					 : "TLS_CHACHA20_POLY1305_SHA256";
	FILE *proc = fopen("/proc/net/quicseal", "r");
	char line[128], key[32], which[40], value[32];

	snprintf(name, cap, "%s", "");
	while (proc && fgets(line, sizeof(line), proc))
		if (sscanf(line, "%31s %39s %31s", key, which, value) == 3 &&
		    !strcmp(key, "implementation") && !strcmp(which, suite_name))
			snprintf(name, cap, "%s", value);
	if (proc)
		fclose(proc);
}

/*
 * What protects the flow's suite: on a CPU with the instructions (QEMU's -cpu max has
 * AES-NI, PCLMULQDQ, AVX2 and BMI2) one of the core's accelerated implementations, not the
 * portable software; the same name from both directions' getsockopt and /proc/net/quicseal.
 * The flow's vectors then pass through it (check_flow).
 */
static void check_implementation(const struct flow *fl)
{
	char tx_name[QUICSEAL_IMPLEMENTATION_LEN] = "", rx_name[QUICSEAL_IMPLEMENTATION_LEN] = "";
	char proc_name[32];
	int chacha = fl->suite == QUICSEAL_TLS_CHACHA20_POLY1305_SHA256;
	int has = chacha ? cpu_has("avx2") && cpu_has("bmi2") : cpu_has("aes") && cpu_has("pclmulqdq");
	socklen_t tx_len = sizeof(tx_name), rx_len = sizeof(rx_name), short_len = 4;
	uint16_t port;
	int fd = udp_socket(IPPROTO_QUICSEAL, &port), no_keys, too_short, tx_ok, rx_ok;

	no_keys = getsockopt(fd, SOL_QUICSEAL, QUICSEAL_TX_IMPLEMENTATION, tx_name, &tx_len) == -1 &&
		  errno == ENOKEY;
	set_keys(fd, QUICSEAL_TX_KEYS, keys_of(fl, QUICSEAL_NONE));
	set_keys(fd, QUICSEAL_RX_KEYS, keys_of(fl, QUICSEAL_NONE));
	too_short = getsockopt(fd, SOL_QUICSEAL, QUICSEAL_RX_IMPLEMENTATION, rx_name, &short_len) ==
			    -1 &&
		    errno == EINVAL;
	tx_len = sizeof(tx_name);
	tx_ok = !getsockopt(fd, SOL_QUICSEAL, QUICSEAL_TX_IMPLEMENTATION, tx_name, &tx_len);
	rx_ok = !getsockopt(fd, SOL_QUICSEAL, QUICSEAL_RX_IMPLEMENTATION, rx_name, &rx_len);
	proc_implementation(fl->suite, proc_name, sizeof(proc_name));
	check(no_keys && too_short && tx_ok && rx_ok && tx_len == QUICSEAL_IMPLEMENTATION_LEN &&
		      !strcmp(tx_name, rx_name) && !strcmp(tx_name, proc_name),
	      "%s: implementation named alike by getsockopt (tx %s, rx %s) and /proc (%s)",
	      fl->name, tx_name, rx_name, proc_name);
	check(has ? tx_name[0] && strcmp(tx_name, "portable") : !strcmp(tx_name, "portable"),
	      "%s: keys on the CPU's instructions where it has them: %s (CPU has %s: %s)",
	      fl->name, tx_name, chacha ? "avx2" : "aes and pclmulqdq", has ? "yes" : "no");
	close(fd);
}

/*
 * The kernel's MSG_ZEROCOPY completion on the sender's error queue (tx_zc_report=1): 1 when
 * the ciphertext pages were attached to the skb (over loopback the receive side then copies
 * them, which the report calls "copied"), 0 when UDP copied them at send, -1 when no report
 * came (no zero-copy buffer was used), -2 for anything else.
 */
static int zc_report(int fd)
{
	char control[256];
	struct msghdr msg = { .msg_control = control, .msg_controllen = sizeof(control) };
	struct cmsghdr *c;
	ssize_t n = -1;
	int tries;

	for (tries = 0; tries < 20 && n < 0; tries++) {
		n = recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT);
		if (n < 0)
			usleep(5000);
	}
	if (n < 0)
		return -1;
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		struct sock_extended_err e;

		if (!((c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) ||
		      (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR)))
			continue;
		memcpy(&e, CMSG_DATA(c), sizeof(e));
		if (e.ee_origin == SO_EE_ORIGIN_ZEROCOPY)
			return !!(e.ee_code & SO_EE_CODE_ZEROCOPY_COPIED);
	}
	return -2;
}

/*
 * One copy in all: the sealed pages travel in the skb. Over loopback the only evidence is the
 * kernel's own zero-copy report, which the module queues only when tx_zc_report asks (never
 * by default), and which says "copied" exactly when the pages reached the receive path
 * attached to the skb (skb_orphan_frags_rx() copies them there).
 */
static void check_zero_copy(const struct flow *fl)
{
	uint16_t rport, tport;
	int rx = udp_socket(IPPROTO_UDP, &rport), tx = udp_socket(IPPROTO_QUICSEAL, &tport);
	int i, report[3], good = 0;

	connect_to(tx, rport);
	set_keys(tx, QUICSEAL_TX_KEYS, keys_of(fl, QUICSEAL_NONE));
	for (i = 0; i < 3 && i < fl->npackets; i++) {
		const struct packet *p = &fl->packets[i];
		struct iovec iov[2] = { { p->header, p->header_len }, { p->payload, p->payload_len } };
		ssize_t n;

		/* 0: default (no report), 1: report on, 2: report on, tx_pages=0 */
		set_param("tx_zc_report", i > 0);
		set_param("tx_pages", i < 2);
		send_cmsg(tx, iov, 2, p->pn, 0);
		n = recv_info(rx, buf, sizeof(buf), NULL, 0);
		good += n == (ssize_t)p->protected_len && !memcmp(buf, p->protected, n);
		report[i] = zc_report(tx);
	}
	set_param("tx_zc_report", 0);
	set_param("tx_pages", 1);
	check(good == 3 && report[0] == -1 && report[1] == 1 && report[2] == -1,
	      "%s: ciphertext pages sent attached to the skb (zero-copy report %d; none by default: %d, none with tx_pages=0: %d)",
	      fl->name, report[1], report[0], report[2]);

	/* No option memory for a zero-copy buffer: the pages go out anyway, copied by UDP. */
	if (fl->npackets > 3) {
		const struct packet *p = &fl->packets[3];
		struct iovec iov[2] = { { p->header, p->header_len }, { p->payload, p->payload_len } };
		long long before = proc_value("tx_page_fallbacks");
		ssize_t s, n;
		FILE *f = fopen("/proc/sys/net/core/optmem_max", "r+");
		long optmem = 0;

		if (f && fscanf(f, "%ld", &optmem) == 1) {
			rewind(f);
			fprintf(f, "0\n");
			fflush(f);
		}
		s = send_cmsg(tx, iov, 2, p->pn, 0);
		if (f) {
			rewind(f);
			fprintf(f, "%ld\n", optmem);
			fclose(f);
		}
		n = recv_info(rx, buf, sizeof(buf), NULL, 0);
		forced_fallbacks++;
		check(optmem > 0 && s == (ssize_t)(p->header_len + p->payload_len) &&
			      n == (ssize_t)p->protected_len && !memcmp(buf, p->protected, n) &&
			      proc_value("tx_page_fallbacks") == before + 1,
		      "%s: optmem_max 0, no zero-copy buffer: sent and copied by UDP, byte-exact, counted",
		      fl->name);
	}
	close(tx);
	close(rx);
}

/*
 * A dual-stack AF_INET6 quicseal receiver bound to [::] opens a datagram an IPv4 socket sent to
 * 127.0.0.1: the v4 receive path's encap hook, and recvmsg's v4-mapped source address.
 */
static void check_dual_stack(const struct flow *fl)
{
	const struct packet *p = &fl->packets[0];
	struct sockaddr_in6 any = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT };
	struct sockaddr_in6 want = { .sin6_family = AF_INET6 };
	struct timeval tv = { .tv_sec = 1 };
	struct quicseal_rx_info ri;
	socklen_t len = sizeof(any);
	uint16_t tport;
	int rx = socket(AF_INET6, SOCK_DGRAM, IPPROTO_QUICSEAL), tx, one = 1, zero = 0;
	ssize_t n;

	setsockopt(rx, SOL_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	bind(rx, (struct sockaddr *)&any, sizeof(any));
	getsockname(rx, (struct sockaddr *)&any, &len);
	setsockopt(rx, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	set_keys(rx, QUICSEAL_RX_KEYS, keys_of(fl, largest_before(fl, 0)));
	setsockopt(rx, SOL_QUICSEAL, QUICSEAL_RECV_INFO, &one, sizeof(one));
	family = AF_INET;
	tx = udp_socket(IPPROTO_UDP, &tport);
	connect_to(tx, ntohs(any.sin6_port));
	family = AF_INET6;
	send(tx, p->protected, p->protected_len, 0);
	n = recv_info(rx, buf, sizeof(buf), &ri, 0);
	want.sin6_port = htons(tport);
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &want.sin6_addr);
	check(n == (ssize_t)(p->header_len + p->payload_len) &&
		      !memcmp(buf, p->header, p->header_len) && ri.status == QUICSEAL_RX_OPENED &&
		      ri.pn == p->pn && last_from_len == sizeof(want) &&
		      !memcmp(&last_from, &want, sizeof(want)),
	      "%s [IPv6]: dual-stack receiver opens an IPv4 datagram, source ::ffff:127.0.0.1 (recv %zd)",
	      fl->name, n);
	close(tx);
	close(rx);
}

/* What a connected socket learnt from sending one datagram to a closed port. */
struct icmp_seen {
	int ok; /* the socket was set up */
	int recv_errno; /* errno of the recv() after the send (0: it returned data or timed out) */
	int queued; /* an entry came off the error queue */
	struct sock_extended_err ee;
	uint16_t port; /* the destination port msg_name names (the closed one) */
};

/*
 * Sends one datagram from a connected socket (plain UDP or quicseal with receive keys, so the
 * encap hook is installed) to a port nothing is bound to, over `family`'s loopback or, with
 * `mapped`, from a dual-stack AF_INET6 socket to ::ffff:127.0.0.1. With `recverr` on
 * (IP_RECVERR, IPV6_RECVERR for a non-mapped v6 socket) the error queue is read after recv().
 */
static struct icmp_seen icmp_refused(const struct flow *fl, int quicseal, int recverr, int mapped)
{
	struct icmp_seen r;
	struct sockaddr_storage dst, err_from;
	struct timeval tv = { .tv_sec = 1 };
	char ctl[256];
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct msghdr msg = { .msg_name = &err_from, .msg_namelen = sizeof(err_from),
			      .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	struct pollfd pfd;
	struct cmsghdr *c;
	socklen_t len;
	uint16_t dead, port;
	int saved = family, fd, one = 1, zero = 0, v6 = family == AF_INET6 && !mapped;

	memset(&r, 0, sizeof(r));
	if (mapped)
		family = AF_INET;
	fd = udp_socket(IPPROTO_UDP, &dead); /* bound, then closed: nothing listens there */
	if (fd >= 0)
		close(fd);
	len = loopback(&dst, dead);
	family = saved;
	if (mapped) {
		struct sockaddr_in6 any = { .sin6_family = AF_INET6,
					    .sin6_addr = IN6ADDR_ANY_INIT };
		struct sockaddr_in6 *d6 = (struct sockaddr_in6 *)&dst;

		fd = socket(AF_INET6, SOCK_DGRAM, quicseal ? IPPROTO_QUICSEAL : IPPROTO_UDP);
		if (fd < 0 || setsockopt(fd, SOL_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) ||
		    bind(fd, (struct sockaddr *)&any, sizeof(any)))
			goto out;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		memset(d6, 0, sizeof(*d6));
		d6->sin6_family = AF_INET6;
		d6->sin6_port = htons(dead);
		inet_pton(AF_INET6, "::ffff:127.0.0.1", &d6->sin6_addr);
		len = sizeof(*d6);
	} else {
		fd = udp_socket(quicseal ? IPPROTO_QUICSEAL : IPPROTO_UDP, &port);
		if (fd < 0)
			goto out;
	}
	if (quicseal && set_keys(fd, QUICSEAL_RX_KEYS, keys_of(fl, largest_before(fl, 0))))
		goto out;
	if (recverr && (v6 ? setsockopt(fd, SOL_IPV6, IPV6_RECVERR, &one, sizeof(one))
			   : setsockopt(fd, SOL_IP, IP_RECVERR, &one, sizeof(one))))
		goto out;
	if (connect(fd, (struct sockaddr *)&dst, len) || send(fd, "x", 1, 0) != 1)
		goto out;
	r.ok = 1;
	/* The ICMP error comes back through loopback; wait for it before reading. */
	pfd.fd = fd;
	pfd.events = 0;
	poll(&pfd, 1, 1000);
	if (recv(fd, buf, sizeof(buf), 0) < 0)
		r.recv_errno = errno;
	if (!recverr)
		goto out;
	if (recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
		goto out;
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
		if ((c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) ||
		    (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR)) {
			memcpy(&r.ee, CMSG_DATA(c), sizeof(r.ee));
			r.queued = 1;
		}
	r.port = ntohs(err_from.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&err_from)->sin6_port
						       : ((struct sockaddr_in *)&err_from)->sin_port);
	if (r.port != dead)
		r.port = 0; /* 0: not the closed port */
out:
	if (fd >= 0)
		close(fd);
	return r;
}

/*
 * ICMP errors reach a quicseal socket whose encap hook is installed (receive keys) as they
 * reach a plain UDP socket, which is checked first in the same run as the reference: port
 * unreachable over `family`'s loopback fails the connected socket's recv() with ECONNREFUSED
 * and, with IP_RECVERR/IPV6_RECVERR, queues an entry naming the ICMP message and the port.
 * With `mapped`, a dual-stack AF_INET6 socket gets the IPv4 error (__udp4_lib_err()).
 */
static void check_icmp_errors(const struct flow *fl, int mapped)
{
	const char *fam = mapped ? "IPv4 on a dual-stack AF_INET6 socket"
			  : family == AF_INET6 ? "IPv6" : "IPv4";
	int v6 = family == AF_INET6 && !mapped;
	int origin = v6 ? SO_EE_ORIGIN_ICMP6 : SO_EE_ORIGIN_ICMP;
	int type = v6 ? 1 : 3, code = v6 ? 4 : 3; /* port unreachable */
	int quicseal;

	for (quicseal = 0; quicseal <= 1; quicseal++) {
		const char *who = quicseal ? "quicseal socket with receive keys" : "plain UDP socket";
		struct icmp_seen r = icmp_refused(fl, quicseal, 0, mapped);

		check(r.ok && r.recv_errno == ECONNREFUSED,
		      "ICMP %s: %s, connected, sending to a closed port -> recv ECONNREFUSED (%s)",
		      fam, who, r.ok ? strerror(r.recv_errno) : "setup failed");
		r = icmp_refused(fl, quicseal, 1, mapped);
		check(r.ok && r.recv_errno == ECONNREFUSED && r.queued &&
			      r.ee.ee_errno == ECONNREFUSED && r.ee.ee_origin == origin &&
			      r.ee.ee_type == type && r.ee.ee_code == code && r.port,
		      "ICMP %s: %s with %s -> ECONNREFUSED and an error-queue entry (errno %u origin %u type %u code %u, port %s)",
		      fam, who, v6 ? "IPV6_RECVERR" : "IP_RECVERR", r.ee.ee_errno,
		      r.ee.ee_origin, r.ee.ee_type, r.ee.ee_code, r.port ? "the closed one" : "wrong");
	}
}

static uint16_t inet_csum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t sum = 0;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons(~sum & 0xffff);
}

/*
 * Fragmentation Needed (IPv4, MTU 1200) or Packet Too Big (IPv6, MTU 1280) for a datagram from
 * a connected socket (plain UDP or quicseal with receive keys) to an open peer port, forged
 * through a raw ICMP socket on loopback (the VM runs as root). What the socket learnt: recv()
 * fails with EMSGSIZE (a hard error with path MTU discovery on, UDP's default), and with
 * IP_RECVERR/IPV6_RECVERR the entry carries the MTU in ee_info. Run last: the loopback
 * route's path MTU stays lowered.
 */
static struct icmp_seen icmp_too_big(const struct flow *fl, int quicseal, int recverr, uint32_t mtu)
{
	struct icmp_seen r;
	struct sockaddr_storage lo, err_from;
	uint8_t pkt[128];
	char ctl[256];
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct msghdr msg = { .msg_name = &err_from, .msg_namelen = sizeof(err_from),
			      .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	struct pollfd pfd;
	struct cmsghdr *c;
	socklen_t lolen = loopback(&lo, 0);
	uint16_t peer_port, port;
	int v6 = family == AF_INET6, one = 1, raw = -1, fd;
	int peer = udp_socket(IPPROTO_UDP, &peer_port);
	size_t n;

	memset(&r, 0, sizeof(r));
	memset(pkt, 0, sizeof(pkt));
	fd = udp_socket(quicseal ? IPPROTO_QUICSEAL : IPPROTO_UDP, &port);
	if (peer < 0 || fd < 0 || connect_to(fd, peer_port))
		goto out;
	if (quicseal && set_keys(fd, QUICSEAL_RX_KEYS, keys_of(fl, largest_before(fl, 0))))
		goto out;
	if (recverr && (v6 ? setsockopt(fd, SOL_IPV6, IPV6_RECVERR, &one, sizeof(one))
			   : setsockopt(fd, SOL_IP, IP_RECVERR, &one, sizeof(one))))
		goto out;
	raw = socket(family, SOCK_RAW, v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP);
	if (raw < 0)
		goto out;
	if (v6) {
		/* ICMPv6 type 2 code 0, MTU; inner IPv6 header ::1 -> ::1 (UDP, 8 bytes); UDP
		 * header. The kernel fills in the ICMPv6 checksum of a raw socket. */
		pkt[0] = 2;
		pkt[4] = mtu >> 24, pkt[5] = mtu >> 16, pkt[6] = mtu >> 8, pkt[7] = mtu;
		pkt[8] = 0x60, pkt[13] = 8, pkt[14] = 17, pkt[15] = 64;
		memcpy(pkt + 16, &in6addr_loopback, 16);
		memcpy(pkt + 32, &in6addr_loopback, 16);
		n = 48;
	} else {
		/* ICMP type 3 code 4, next-hop MTU; inner IPv4 header 127.0.0.1 -> 127.0.0.1. */
		uint32_t a = htonl(INADDR_LOOPBACK);

		pkt[0] = 3, pkt[1] = 4, pkt[6] = mtu >> 8, pkt[7] = mtu;
		pkt[8] = 0x45, pkt[11] = 28, pkt[14] = 0x40, pkt[16] = 64, pkt[17] = 17;
		memcpy(pkt + 20, &a, 4);
		memcpy(pkt + 24, &a, 4);
		memcpy(pkt + 18, &(uint16_t){ inet_csum(pkt + 8, 20) }, 2);
		n = 28;
	}
	pkt[n] = port >> 8, pkt[n + 1] = port, pkt[n + 2] = peer_port >> 8, pkt[n + 3] = peer_port;
	pkt[n + 5] = 8;
	n += 8;
	if (!v6)
		memcpy(pkt + 2, &(uint16_t){ inet_csum(pkt, n) }, 2);
	if (sendto(raw, pkt, n, 0, (struct sockaddr *)&lo, lolen) != (ssize_t)n)
		goto out;
	r.ok = 1;
	pfd.fd = fd;
	pfd.events = 0;
	poll(&pfd, 1, 1000);
	if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) < 0)
		r.recv_errno = errno;
	if (!recverr || recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
		goto out;
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
		if ((c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) ||
		    (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR)) {
			memcpy(&r.ee, CMSG_DATA(c), sizeof(r.ee));
			r.queued = 1;
		}
	r.port = ntohs(v6 ? ((struct sockaddr_in6 *)&err_from)->sin6_port
			  : ((struct sockaddr_in *)&err_from)->sin_port);
	if (r.port != peer_port)
		r.port = 0;
out:
	if (raw >= 0)
		close(raw);
	if (fd >= 0)
		close(fd);
	if (peer >= 0)
		close(peer);
	return r;
}

static void check_too_big(const struct flow *fl)
{
	int v6 = family == AF_INET6;
	uint32_t mtu = v6 ? 1280 : 1200;
	int quicseal;

	for (quicseal = 0; quicseal <= 1; quicseal++) {
		const char *who = quicseal ? "quicseal socket with receive keys" : "plain UDP socket";
		const char *what = v6 ? "IPv6 Packet Too Big" : "IPv4 Fragmentation Needed";
		struct icmp_seen r = icmp_too_big(fl, quicseal, 0, mtu);

		check(r.ok && r.recv_errno == EMSGSIZE, "ICMP %s (MTU %u): %s, connected -> recv EMSGSIZE (%s)",
		      what, mtu, who, r.ok ? strerror(r.recv_errno) : "setup failed");
		r = icmp_too_big(fl, quicseal, 1, mtu);
		check(r.ok && r.recv_errno == EMSGSIZE && r.queued && r.ee.ee_errno == EMSGSIZE &&
			      r.ee.ee_origin == (v6 ? SO_EE_ORIGIN_ICMP6 : SO_EE_ORIGIN_ICMP) &&
			      r.ee.ee_type == (v6 ? 2 : 3) && r.ee.ee_code == (v6 ? 0 : 4) &&
			      r.ee.ee_info == mtu && r.port,
		      "ICMP %s: %s with %s -> EMSGSIZE and an entry (errno %u origin %u type %u code %u info %u, port %s)",
		      what, who, v6 ? "IPV6_RECVERR" : "IP_RECVERR", r.ee.ee_errno, r.ee.ee_origin,
		      r.ee.ee_type, r.ee.ee_code, r.ee.ee_info, r.port ? "the peer's" : "wrong");
	}
}

/*
 * IPv6: every flow's checks again through AF_INET6 sockets over ::1 (plain UDPv6 peers), the
 * end-to-end key updates, the module-wide totals, and the one option a v6 socket must refuse.
 */
static void check_ipv6(void)
{
	static struct flow v6;
	long long sealed = proc_value("sealed"), opened = proc_value("opened");
	long long page_sends = proc_value("tx_page_sends");
	uint16_t port;
	int i, probe;

	family = AF_INET6;
	probe = udp_socket(IPPROTO_QUICSEAL, &port);
	check(probe >= 0, "socket(AF_INET6, SOCK_DGRAM, IPPROTO_QUICSEAL) bound to ::1 (%s)",
	      probe >= 0 ? "ok" : strerror(errno));
	if (probe < 0)
		goto out;
	check(setsockopt(probe, SOL_IPV6, IPV6_ADDRFORM, &(int){ AF_INET }, sizeof(int)) == -1 &&
		      errno == EOPNOTSUPP, "IPv6: IPV6_ADDRFORM on a quicseal socket -> EOPNOTSUPP");
	close(probe);
	for (i = 0; i < nflows; i++)
		if (flows[i].npackets && !flows[i].gso_size) {
			check_dual_stack(&flows[i]);
			check_icmp_errors(&flows[i], 0);
			check_icmp_errors(&flows[i], 1);
			break;
		}
	for (i = 0; i < nflows; i++) {
		if (!flows[i].npackets)
			continue;
		v6 = flows[i];
		snprintf(v6.name, sizeof(v6.name), "%.60s [IPv6]", flows[i].name);
		check_flow(&v6);
		if (!v6.gso_size && v6.dcid_len == 8) {
			check_end_to_end(&v6);
			check_rx_hardening(&v6);
			check_zero_copy(&v6);
		}
	}
	check(proc_value("sealed") > sealed && proc_value("opened") > opened,
	      "IPv6: /proc/net/quicseal totals count v6 sockets (sealed +%lld, opened +%lld)",
	      proc_value("sealed") - sealed, proc_value("opened") - opened);
	check(proc_value("tx_page_sends") > page_sends &&
		      proc_value("tx_page_fallbacks") == forced_fallbacks,
	      "IPv6: sends took the one-copy page path (+%lld)",
	      proc_value("tx_page_sends") - page_sends);
out:
	family = AF_INET;
}

/*
 * Softirq's fallback when the FPU is in use (rx_fpu_busy=1 makes it always so): every
 * datagram for a socket with receive keys is dropped and counted, none reaches recvmsg, the
 * socket's own counters see no packet; with the FPU back, the same packets open.
 */
static void check_fpu_busy_drops(const struct flow *fl)
{
	long long before = proc_value("rx_fpu_drops");
	uint16_t rport, tport;
	int rx = udp_socket(IPPROTO_QUICSEAL, &rport), tx = udp_socket(IPPROTO_UDP, &tport);
	int i, one = 1, reached = 0, opened = 0, forced;
	struct quicseal_info info;

	connect_to(tx, rport);
	set_keys(rx, QUICSEAL_RX_KEYS, keys_of(fl, QUICSEAL_NONE));
	setsockopt(rx, SOL_QUICSEAL, QUICSEAL_RECV_INFO, &one, sizeof(one));
	forced = set_param("rx_fpu_busy", 1) == 0;
	for (i = 0; i < fl->npackets; i++) {
		send(tx, fl->packets[i].protected, fl->packets[i].protected_len, 0);
		reached += recv_info(rx, buf, sizeof(buf), NULL, MSG_DONTWAIT) >= 0;
	}
	info = info_of(rx, QUICSEAL_RX_INFO);
	check(forced && set_param("rx_fpu_busy", 0) == 0 && reached == 0 &&
		      proc_value("rx_fpu_drops") - before == fl->npackets &&
		      info.counters.opened == 0 && info.counters.auth_failures == 0,
	      "%s: FPU busy in softirq: %d datagrams dropped and counted (rx_fpu_drops +%lld), none delivered",
	      fl->name, fl->npackets, proc_value("rx_fpu_drops") - before);
	for (i = 0; i < fl->npackets; i++) {
		uint64_t largest = largest_before(fl, i);

		setsockopt(rx, SOL_QUICSEAL, QUICSEAL_RX_LARGEST_PN, &largest, sizeof(largest));
		send(tx, fl->packets[i].protected, fl->packets[i].protected_len, 0);
		opened += recv_info(rx, buf, sizeof(buf), NULL, 0) ==
			  (ssize_t)(fl->packets[i].header_len + fl->packets[i].payload_len);
	}
	check(opened == fl->npackets, "%s: with the FPU back the same %d packets open", fl->name,
	      opened);
	close(tx);
	close(rx);
}

/*
 * /proc/net/quicseal_bench: per suite, one datagram sealed by the module and by the kernel's
 * own AEAD under the same key and nonce, byte for byte, each opening the other's; and the
 * timing table, which must say it is skipped under QEMU's TCG and be there elsewhere.
 */
static void check_bench(int forced)
{
	FILE *f = fopen("/proc/net/quicseal_bench", "r");
	char line[256], suite[32], ours[32], theirs[64], verdict[16];
	int crosschecked = 0, skipped = 0, timed = 0;

	check(f != NULL, "/proc/net/quicseal_bench readable (%s)", f ? "ok" : strerror(errno));
	while (f && fgets(line, sizeof(line), f)) {
		printf("     /proc/net/quicseal_bench: %s", line);
		if (sscanf(line, "crosscheck %31s quicseal %31s kernel %63s %15s", suite, ours,
			   theirs, verdict) == 4) {
			check(!strcmp(verdict, "ok"),
			      "%s: the module's ciphertext and tag are the kernel's %s's, and each opens the other's",
			      suite, theirs);
			crosschecked++;
		}
		skipped += !strncmp(line, "timing skipped: the CPU is QEMU's TCG", 37);
		timed += strstr(line, " seal: quicseal ") != NULL;
	}
	if (f)
		fclose(f);
	check(crosschecked == 3, "kernel AEAD cross-check ran for %d of 3 suites", crosschecked);
	check(skipped ? timed == 0 && !forced : timed == 3,
	      "microbenchmark: %s (%d suites timed)%s", skipped ? "skipped under TCG" : "timed", timed,
	      forced ? ", one round forced with bench_under_tcg=1" : "");
}

static int set_tx_pages(int on)
{
	return set_param("tx_pages", on);
}

/*
 * One socket with the receive hook installed, open until the program exits: the kernel's
 * udp_encap_needed_key static key then stays on, instead of being flipped by every socket
 * the checks open and close. Under QEMU's multi-threaded TCG a flip while another vCPU runs
 * the patched UDP receive code can fault on the patching int3 (../shared/TOOLCHAIN.md);
 * on hardware the flips are harmless.
 */
static void keep_encap_key_on(void)
{
	uint16_t port;
	int one = 1, fd = udp_socket(IPPROTO_QUICSEAL, &port);

	check(fd >= 0 && !setsockopt(fd, SOL_QUICSEAL, QUICSEAL_RECV_INFO, &one, sizeof(one)),
	      "a hooked socket held open for the run (keeps the encap static key on)");
}

/*
 * `quicseal_selftest --attach VECTORS`: the attach checks alone, per suite and family, and the
 * races. The VM runs them last, in a second load of the module: the first attach pins it.
 */
/*
 * Hostile callers: two threads run random sequences of socket and close, setsockopt (the
 * flow's valid keys with random largest numbers and limits, or garbage of any option and
 * length), getsockopt, sendmsg (vector packets' cleartext or protected bytes, or random
 * bytes, random lengths, packet-number and GSO cmsgs, flags), recvmsg (random sizes and
 * flags), connect and, attached, attach and detach, on one pool of sockets that send to one
 * another, from a fixed seed. Nothing may oops or warn (the host checks the kernel's log,
 * and the VM boots with slub_debug's red zones and poisoning), the Rust object must not
 * panic, and once every socket is closed no key state or attachment may be left.
 */
#define HOSTILE_SOCKETS 8
#define HOSTILE_OPS 6000

static int hostile_fds[HOSTILE_SOCKETS];
static uint16_t hostile_ports[HOSTILE_SOCKETS];
static const struct flow *hostile_flow;
static int hostile_attach;
static long hostile_done[2];

/* xorshift64*: a fixed sequence per seed. */
static uint64_t hostile_random(uint64_t *state)
{
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return *state * 0x2545f4914f6cdd1dULL;
}

static int hostile_socket(uint16_t *port)
{
	int fd = udp_socket(hostile_attach ? IPPROTO_UDP : IPPROTO_QUICSEAL, port);

	if (fd >= 0 && hostile_attach)
		quicseal_ioctl(QUICSEAL_IOC_ATTACH, fd);
	return fd;
}

static void hostile_op(uint64_t *state, uint8_t *bytes, size_t cap)
{
	uint64_t r = hostile_random(state);
	int slot = r % HOSTILE_SOCKETS, fd = __atomic_load_n(&hostile_fds[slot], __ATOMIC_RELAXED);
	const struct packet *p = &hostile_flow->packets[(r >> 8) % hostile_flow->npackets];
	size_t len = (r >> 16) % cap, i;
	uint16_t port;

	for (i = 0; i < len; i += 8) {
		uint64_t word = hostile_random(state);

		memcpy(bytes + i, &word, len - i < 8 ? len - i : 8);
	}
	switch ((r >> 32) % 12) {
	case 0: { /* a new socket in the slot; the old one closed */
		int fresh = hostile_socket(&port);

		if (fresh < 0)
			break;
		hostile_ports[slot] = port;
		close(__atomic_exchange_n(&hostile_fds[slot], fresh, __ATOMIC_RELAXED));
		break;
	}
	case 1: { /* the flow's keys, either direction, any largest number and limits */
		struct quicseal_keys k = keys_of(hostile_flow, r & 64 ? QUICSEAL_NONE : r >> 50);

		k.confidentiality_limit = (r >> 40) & 7;
		k.integrity_limit = (r >> 43) & 7;
		set_keys(fd, r & 128 ? QUICSEAL_TX_KEYS : QUICSEAL_RX_KEYS, k);
		break;
	}
	case 2: /* garbage of any option and length */
		setsockopt(fd, SOL_QUICSEAL, (r >> 40) % 16, bytes, len % 200);
		break;
	case 3: { /* getsockopt of any option and length */
		socklen_t olen = len % 200;

		getsockopt(fd, SOL_QUICSEAL, (r >> 40) % 16, bytes, &olen);
		break;
	}
	case 4:
	case 5:
	case 6: { /* a packet's cleartext or protected bytes, or random bytes; cmsgs; flags */
		static const int flags[] = { 0, MSG_DONTWAIT, MSG_MORE, MSG_PROBE };
		char control[CMSG_SPACE(8) + CMSG_SPACE(2)];
		struct iovec iov[2] = { { bytes, len }, { bytes, 0 } };
		struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 1 };
		struct cmsghdr *c;
		uint16_t gso = (r >> 40) & 1 ? (r >> 44) % 1500 : 0;
		uint64_t pn = r >> 24;

		if ((r >> 36) % 3 == 0) {
			iov[0] = (struct iovec){ p->header, p->header_len };
			iov[1] = (struct iovec){ p->payload, p->payload_len };
			msg.msg_iovlen = 2;
		} else if ((r >> 36) % 3 == 1) {
			iov[0] = (struct iovec){ p->protected, p->protected_len };
		}
		memset(control, 0, sizeof(control));
		msg.msg_control = control;
		msg.msg_controllen = sizeof(control);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_QUICSEAL;
		c->cmsg_type = QUICSEAL_CMSG_PN;
		c->cmsg_len = CMSG_LEN((r >> 41) & 1 ? 8 : (r >> 45) % 9);
		memcpy(CMSG_DATA(c), &pn, 8);
		c = CMSG_NXTHDR(&msg, c);
		c->cmsg_level = SOL_UDP;
		c->cmsg_type = UDP_SEGMENT;
		c->cmsg_len = CMSG_LEN(2);
		memcpy(CMSG_DATA(c), &gso, 2);
		if ((r >> 42) & 1)
			msg.msg_controllen = CMSG_SPACE(8);
		if ((r >> 43) & 1) {
			msg.msg_control = NULL;
			msg.msg_controllen = 0;
		}
		sendmsg(fd, &msg, flags[(r >> 46) & 3]);
		break;
	}
	case 7:
	case 8: { /* receive into any size, with any of these flags */
		static const int flags[] = { MSG_DONTWAIT, MSG_DONTWAIT | MSG_PEEK,
					     MSG_DONTWAIT | MSG_TRUNC, MSG_DONTWAIT | MSG_ERRQUEUE };
		char control[256];
		struct iovec iov = { bytes, len };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
				      .msg_controllen = (r >> 40) % sizeof(control) };

		recvmsg(fd, &msg, flags[(r >> 48) & 3]);
		break;
	}
	case 9: { /* send to another socket of the pool */
		struct sockaddr_storage to;
		socklen_t to_len = loopback(&to, hostile_ports[(r >> 40) % HOSTILE_SOCKETS]);

		connect(fd, (struct sockaddr *)&to, to_len);
		break;
	}
	case 10: { /* UDP's own options, which a hooked socket must refuse or survive */
		static const int options[] = { UDP_SEGMENT, UDP_GRO, UDP_CORK, UDP_ENCAP };
		int value = (r >> 40) & 0xffff;

		setsockopt(fd, (r >> 39) & 1 ? SOL_UDP : SOL_UDPLITE, options[(r >> 56) & 3],
			   &value, sizeof(value));
		break;
	}
	case 11: /* attach or detach, whatever the socket is */
		if (hostile_attach)
			quicseal_ioctl((r >> 40) & 1 ? QUICSEAL_IOC_ATTACH : QUICSEAL_IOC_DETACH, fd);
		else
			shutdown(fd, (r >> 40) % 3);
		break;
	}
}

static void *hostile_thread(void *arg)
{
	long id = (long)arg, n;
	uint64_t state = 0x9e3779b97f4a7c15ULL * (uint64_t)(id + 1);
	static uint8_t bytes[2][2048];

	for (n = 0; n < HOSTILE_OPS; n++)
		hostile_op(&state, bytes[id], sizeof(bytes[id]));
	hostile_done[id] = n;
	return NULL;
}

/* `live_states` and `live_attachments` of /proc/net/quicseal, added up (-1 if absent). */
static long long live_objects(void)
{
	long long states = proc_value("live_states"), attachments = proc_value("live_attachments");

	return states < 0 || attachments < 0 ? -1 : states + attachments;
}

static void check_hostile_callers(const struct flow *fl, int attach)
{
	static const char *const totals[] = { "sealed", "opened", "auth_failures", "malformed",
					      "limit_drops", "rejected" };
	long long before[6], after[6];
	pthread_t threads[2];
	long long live = -1;
	int i, waited;

	for (i = 0; i < 6; i++)
		before[i] = proc_value(totals[i]);
	hostile_flow = fl;
	hostile_attach = attach;
	for (i = 0; i < HOSTILE_SOCKETS; i++)
		hostile_fds[i] = hostile_socket(&hostile_ports[i]);
	for (i = 0; i < 2; i++)
		pthread_create(&threads[i], NULL, hostile_thread, (void *)(long)i);
	for (i = 0; i < 2; i++)
		pthread_join(threads[i], NULL);
	for (i = 0; i < HOSTILE_SOCKETS; i++)
		close(hostile_fds[i]);
	/* Attachments are freed after an RCU grace period. */
	for (waited = 0; waited < 100; waited++) {
		live = live_objects();
		if (live == 0)
			break;
		usleep(50000);
	}
	for (i = 0; i < 6; i++)
		after[i] = proc_value(totals[i]);
	check(hostile_done[0] == HOSTILE_OPS && hostile_done[1] == HOSTILE_OPS &&
		      proc_value("poisoned") == 0 && live == 0,
	      "%s: hostile callers%s: 2 threads x %d random calls on %d shared sockets, the Rust object not poisoned, no key state or attachment left (%lld); sealed +%lld, opened +%lld, auth_failures +%lld, malformed +%lld, limit_drops +%lld, rejected +%lld",
	      fl->name, attach ? " (attached sockets)" : "", HOSTILE_OPS, HOSTILE_SOCKETS, live,
	      after[0] - before[0], after[1] - before[1], after[2] - before[2],
	      after[3] - before[3], after[4] - before[4], after[5] - before[5]);
}

static int attach_main(const char *vectors)
{
	int i, raced = 0;

	check(load_vectors(vectors) > 0, "vectors loaded: %d flows", nflows);
	for (i = 0; i < nflows; i++) {
		if (!flows[i].npackets || flows[i].gso_size || flows[i].dcid_len != 8)
			continue;
		check_attach(&flows[i]);
		if (!raced++) {
			check_attach_races(&flows[i]);
			check_hostile_callers(&flows[i], 1);
		}
		family = AF_INET6;
		snprintf(flows[i].name + strlen(flows[i].name),
			 sizeof(flows[i].name) - strlen(flows[i].name), " [IPv6]");
		check_attach(&flows[i]);
		family = AF_INET;
	}
	printf("selftest: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	int i, probe, i_icmp = 0;
	uint16_t port;
	char line[128];
	FILE *proc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	keep_encap_key_on();
	if (argc > 1 && !strcmp(argv[1], "--attach"))
		return attach_main(argc > 2 ? argv[2] : "/vectors.txt");
	probe = udp_socket(IPPROTO_QUICSEAL, &port);
	check(probe >= 0, "socket(AF_INET, SOCK_DGRAM, IPPROTO_QUICSEAL) (%s)",
	      probe >= 0 ? "ok" : strerror(errno));
	if (probe < 0)
		goto out;
	close(probe);
	check(load_vectors(argc > 1 ? argv[1] : "/vectors.txt") > 0, "vectors loaded: %d flows",
	      nflows);
	for (i = 0; i < nflows; i++)
		if (flows[i].npackets) {
			check_implementation(&flows[i]);
			check_flow(&flows[i]);
		}
	check_bench(0);
	/* The timing code too, one round: the loops' seals, opens and kernel calls must work. */
	if (set_param("bench_under_tcg", 1) == 0) {
		check_bench(1);
		check(set_param("bench_under_tcg", 0) == 0, "bench_under_tcg set back to 0");
	} else {
		check(0, "cannot set /sys/module/quicseal/parameters/bench_under_tcg");
	}
	/* The same sends through the buffer path that udp_sendmsg copies (tx_pages=0). */
	if (set_tx_pages(0) == 0) {
		for (i = 0; i < nflows; i++) {
			static struct flow copy_path;

			if (!flows[i].npackets)
				continue;
			copy_path = flows[i];
			snprintf(copy_path.name, sizeof(copy_path.name), "%.60s [tx_pages=0]",
				 flows[i].name);
			if (copy_path.gso_size)
				check_gso(&copy_path);
			else
				check_seal(&copy_path);
		}
		check(set_tx_pages(1) == 0, "tx_pages set back to 1");
	} else {
		check(0, "cannot set /sys/module/quicseal/parameters/tx_pages");
	}
	for (i = 0; i < nflows; i++)
		if (flows[i].npackets && !flows[i].gso_size && flows[i].dcid_len == 8) {
			check_end_to_end(&flows[i]);
			check_fpu_busy_drops(&flows[i]);
			check_rx_hardening(&flows[i]);
			check_close_under_load(&flows[i]);
			check_bad_input(&flows[i]);
			check_zero_copy(&flows[i]);
			if (!i_icmp++)
				check_icmp_errors(&flows[i], 0);
			if (flows[i].resume_generation)
				check_resume_bad_input(&flows[i]);
		}
	check_ipv6();
	for (i = 0; i < nflows; i++)
		if (flows[i].npackets && !flows[i].gso_size && flows[i].dcid_len == 8) {
			check_hostile_callers(&flows[i], 0);
			break;
		}
	/* Last: each lowers the loopback route's path MTU. */
	for (i = 0; i < nflows; i++)
		if (flows[i].npackets && !flows[i].gso_size) {
			check_too_big(&flows[i]);
			family = AF_INET6;
			check_too_big(&flows[i]);
			family = AF_INET;
			break;
		}
	proc = fopen("/proc/net/quicseal", "r");
	check(proc != NULL, "/proc/net/quicseal readable");
	while (proc && fgets(line, sizeof(line), proc)) {
		long long value;

		printf("     /proc/net/quicseal: %s", line);
		if (sscanf(line, "tx_page_sends %lld", &value) == 1)
			check(value > 0, "one-copy sends through the page path: %lld", value);
		/* The Rust object's own stack (64 KiB a CPU): room to spare after every test. */
		if (sscanf(line, "rust_stack_peak %lld", &value) == 1)
			check(value > 0 && value <= 48 * 1024,
			      "the Rust object's stack was used, at most 48 of its 64 KiB: %lld bytes",
			      value);
		if (sscanf(line, "tx_page_fallbacks %lld", &value) == 1)
			check(value == forced_fallbacks,
			      "every page send had a zero-copy buffer but the %lld forced: %lld without",
			      forced_fallbacks, value);
	}
	if (proc)
		fclose(proc);
out:
	printf("selftest: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
