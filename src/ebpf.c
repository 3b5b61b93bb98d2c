/*
 * ebpf.c: reuseport steering by an eBPF program in the kernel's choice of a
 * listening socket (BPF_PROG_TYPE_SK_REUSEPORT), hand-assembled: no
 * library, no compiler for the BPF target.
 *
 * Two maps. A REUSEPORT_SOCKARRAY holds each slot's socket per address, at
 * key addr * MAX_WORKERS + slot: the program names the socket by its slot,
 * whatever its place in the kernel's group. An ARRAY of one value, made
 * BPF_F_MMAPABLE and mapped shared by the master before it forks, holds the
 * ready slots (written by the master) and per slot two counters: steered
 * (by the program, when it picks the slot) and accepted (by the slot's
 * in-process worker). Their difference is what waits for the worker, so a
 * stuck worker's growing queue repels new connections.
 *
 * The program is loaded as BPF_SK_REUSEPORT_SELECT_OR_MIGRATE: the kernel
 * also runs it for each connection queued or half-open on a listening
 * socket that closes (a retired slot), whatever net.ipv4.tcp_migrate_req
 * says. A closing socket has already left the sockarray, so selecting it
 * fails and the program takes its other choice, or leaves it to the
 * kernel's hash over the sockets still listening: it never drops one.
 */
#include <errno.h>
#include <linux/bpf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ebpf.h"
#include "log.h"

#define SLOT_STRIDE 64 /* a slot's counters: a cache line of their own */
#define OFF_N	    0  /* u32: how many slots are ready */
#define OFF_COUNTED 4  /* u32: workers count accepts */
#define OFF_READY   8  /* u16 [MAX_WORKERS]: the ready slots */
#define OFF_SLOTS                                                              \
	((OFF_READY + 2 * MAX_WORKERS + SLOT_STRIDE - 1) / SLOT_STRIDE *       \
	 SLOT_STRIDE)
#define OFF_STEERED  0 /* within a slot's line: u64 */
#define OFF_ACCEPTED 8 /* u64 */
#define SHM_SIZE     (OFF_SLOTS + SLOT_STRIDE * MAX_WORKERS)

_Static_assert((MAX_WORKERS & (MAX_WORKERS - 1)) == 0,
	       "the program bounds a slot number with a mask");

static struct {
	int tried, ok, err; /* init done; with success; its errno */
	int sockarray;	    /* the master's: -1 once forked away */
	unsigned char *shm; /* SHM_SIZE bytes, shared with the workers */
} bpf = {.sockarray = -1};

static long sys_bpf(int cmd, union bpf_attr *attr)
{
	return syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

static int map_create(uint32_t type, uint32_t value_size, uint32_t entries,
		      uint32_t flags)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.map_type = type;
	a.key_size = 4;
	a.value_size = value_size;
	a.max_entries = entries;
	a.map_flags = flags;
	return (int)sys_bpf(BPF_MAP_CREATE, &a); /* the fd is CLOEXEC */
}

/* ---- the program --------------------------------------------------------- */

#define PROG_MAX 128 /* the program takes about 90 */

struct prog {
	struct bpf_insn v[PROG_MAX];
	size_t n;
};

static void emit(struct prog *p, uint8_t code, uint8_t dst, uint8_t src,
		 int16_t off, int32_t imm)
{
	if (p->n == PROG_MAX)
		abort(); /* a bug, seen at the first start */
	p->v[p->n++] = (struct bpf_insn){.code = code,
					 .dst_reg = dst & 0xf,
					 .src_reg = src & 0xf,
					 .off = off,
					 .imm = imm};
}

#define ALU64_K(p, op, d, k)  emit(p, BPF_ALU64 | (op) | BPF_K, d, 0, 0, k)
#define ALU64_X(p, op, d, s)  emit(p, BPF_ALU64 | (op) | BPF_X, d, s, 0, 0)
#define MOV_K(p, d, k)	      ALU64_K(p, BPF_MOV, d, k)
#define MOV_X(p, d, s)	      ALU64_X(p, BPF_MOV, d, s)
#define LDX(p, sz, d, s, o)   emit(p, BPF_LDX | (sz) | BPF_MEM, d, s, o, 0)
#define STX(p, sz, d, s, o)   emit(p, BPF_STX | (sz) | BPF_MEM, d, s, o, 0)
#define ST_K(p, sz, d, o, k)  emit(p, BPF_ST | (sz) | BPF_MEM, d, 0, o, k)
#define JMP_K(p, op, d, k, o) emit(p, BPF_JMP | (op) | BPF_K, d, 0, o, k)
#define JMP_X(p, op, d, s, o) emit(p, BPF_JMP | (op) | BPF_X, d, s, o, 0)
#define CALL(p, fn)	      emit(p, BPF_JMP | BPF_CALL, 0, 0, 0, fn)
#define EXIT(p)		      emit(p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

static void ld_map(struct prog *p, uint8_t dst, int fd)
{
	emit(p, BPF_LD | BPF_DW | BPF_IMM, dst, BPF_PSEUDO_MAP_FD, 0, fd);
	emit(p, 0, 0, 0, 0, 0);
}

/* A forward jump's offset, once its target is known. */
static void land(struct prog *p, size_t at)
{
	p->v[at].off = (int16_t)(p->n - at - 1);
}

/* dst = the address of slot's line in the shared value (r7), for a slot
 * number in reg (masked: the verifier sees it in bounds). */
static void slot_line(struct prog *p, uint8_t dst, uint8_t reg)
{
	MOV_X(p, dst, reg);
	ALU64_K(p, BPF_AND, dst, MAX_WORKERS - 1);
	ALU64_K(p, BPF_LSH, dst, 6); /* SLOT_STRIDE */
	ALU64_X(p, BPF_ADD, dst, 7);
}

/* reg = ready[reg], reg holding an index below n. */
static void ready_at(struct prog *p, uint8_t reg)
{
	ALU64_K(p, BPF_AND, reg, MAX_WORKERS - 1);
	ALU64_K(p, BPF_LSH, reg, 1);
	ALU64_X(p, BPF_ADD, reg, 7);
	LDX(p, BPF_H, reg, reg, OFF_READY);
}

/* r6 = ctx, r7 = the shared value, r8 = n; leaves i in r9 and j in r0:
 * two distinct random indices below n (the same one when n is 1). */
static void pick_two(struct prog *p)
{
	size_t one, two;

	CALL(p, BPF_FUNC_get_prandom_u32);
	ALU64_X(p, BPF_MOD, 0, 8);
	MOV_X(p, 9, 0);
	one = p->n;
	JMP_K(p, BPF_JEQ, 8, 1, 0);
	CALL(p, BPF_FUNC_get_prandom_u32); /* j = i + 1 + rand % (n - 1) */
	MOV_X(p, 1, 8);
	ALU64_K(p, BPF_SUB, 1, 1);
	ALU64_X(p, BPF_MOD, 0, 1);
	ALU64_K(p, BPF_ADD, 0, 1);
	ALU64_X(p, BPF_ADD, 0, 9);
	ALU64_X(p, BPF_MOD, 0, 8);
	two = p->n;
	emit(p, BPF_JMP | BPF_JA, 0, 0, 0, 0);
	land(p, one);
	MOV_X(p, 0, 9);
	land(p, two);
}

/* r8, r9 = the slots at i and j, the less loaded first when the workers
 * count their accepts (a tie keeps the random order). */
static void order_two(struct prog *p)
{
	size_t same, keep;

	ready_at(p, 9);
	ready_at(p, 0);
	MOV_X(p, 8, 9);
	MOV_X(p, 9, 0);
	LDX(p, BPF_W, 1, 7, OFF_COUNTED);
	same = p->n;
	JMP_K(p, BPF_JEQ, 1, 0, 0);
	slot_line(p, 1, 8); /* r3 = load of r8, r4 = load of r9 */
	LDX(p, BPF_DW, 3, 1, OFF_SLOTS + OFF_STEERED);
	LDX(p, BPF_DW, 2, 1, OFF_SLOTS + OFF_ACCEPTED);
	ALU64_X(p, BPF_SUB, 3, 2);
	slot_line(p, 1, 9);
	LDX(p, BPF_DW, 4, 1, OFF_SLOTS + OFF_STEERED);
	LDX(p, BPF_DW, 2, 1, OFF_SLOTS + OFF_ACCEPTED);
	ALU64_X(p, BPF_SUB, 4, 2);
	keep = p->n;
	JMP_X(p, BPF_JSLE, 3, 4, 0);
	MOV_X(p, 1, 8);
	MOV_X(p, 8, 9);
	MOV_X(p, 9, 1);
	land(p, keep);
	land(p, same);
}

/* Selects the socket of the slot in reg; on success counts it as steered
 * there and returns SK_PASS. Falls through with r0 != 0 on failure (that
 * slot has no socket in the map: closing, or not yet open). */
static void select_slot(struct prog *p, int sockarray, uint32_t base,
			uint8_t reg)
{
	size_t failed;

	MOV_X(p, 1, reg);
	ALU64_K(p, BPF_ADD, 1, (int32_t)base);
	STX(p, BPF_W, 10, 1, -8);
	MOV_X(p, 1, 6);
	ld_map(p, 2, sockarray);
	MOV_X(p, 3, 10);
	ALU64_K(p, BPF_ADD, 3, -8);
	MOV_K(p, 4, 0);
	CALL(p, BPF_FUNC_sk_select_reuseport);
	failed = p->n;
	JMP_K(p, BPF_JNE, 0, 0, 0);
	slot_line(p, 1, reg);
	MOV_K(p, 2, 1);
	emit(p, BPF_STX | BPF_DW | BPF_ATOMIC, 1, 2, OFF_SLOTS + OFF_STEERED,
	     BPF_ADD);
	MOV_K(p, 0, SK_PASS);
	EXIT(p);
	land(p, failed);
}

/* The program for the address whose sockets are at base in the sockarray.
 * SK_PASS without a selection leaves the choice to the kernel's hash. */
static void assemble(struct prog *p, int shm, int sockarray, uint32_t base)
{
	size_t none, zero, many;

	MOV_X(p, 6, 1);
	ST_K(p, BPF_W, 10, -4, 0);
	ld_map(p, 1, shm);
	MOV_X(p, 2, 10);
	ALU64_K(p, BPF_ADD, 2, -4);
	CALL(p, BPF_FUNC_map_lookup_elem);
	none = p->n;
	JMP_K(p, BPF_JEQ, 0, 0, 0);
	MOV_X(p, 7, 0);
	LDX(p, BPF_W, 8, 7, OFF_N);
	zero = p->n;
	JMP_K(p, BPF_JEQ, 8, 0, 0);
	many = p->n;
	JMP_K(p, BPF_JGT, 8, MAX_WORKERS, 0);
	pick_two(p);
	order_two(p);
	select_slot(p, sockarray, base, 8);
	select_slot(p, sockarray, base, 9);
	land(p, none);
	land(p, zero);
	land(p, many);
	MOV_K(p, 0, SK_PASS);
	EXIT(p);
}

/* ---- loading ------------------------------------------------------------- */

static int prog_load(const struct prog *p, uint32_t attach, char *vlog,
		     size_t vlen)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_SK_REUSEPORT;
	a.expected_attach_type = attach;
	a.insns = (uint64_t)(uintptr_t)p->v;
	a.insn_cnt = (uint32_t)p->n;
	/* The helpers it calls are not GPL-only: the string claims nothing. */
	a.license = (uint64_t)(uintptr_t) "herd";
	if (vlog != NULL) {
		a.log_buf = (uint64_t)(uintptr_t)vlog;
		a.log_size = (uint32_t)vlen;
		a.log_level = 1;
	}
	return (int)sys_bpf(BPF_PROG_LOAD, &a); /* the fd is CLOEXEC */
}

/* Loads and attaches address i's program. A kernel before 5.14 has no
 * SELECT_OR_MIGRATE: refused, like bpf() itself (the classic program then
 * serves as before). The verifier's words go to the debug log. */
static int attach_one(const herd *h, size_t i, int shm)
{
	static char vlog[8192];
	struct prog p = {.n = 0};
	int fd, e;

	assemble(&p, shm, bpf.sockarray, (uint32_t)(i * MAX_WORKERS));
	fd = prog_load(&p, BPF_SK_REUSEPORT_SELECT_OR_MIGRATE, NULL, 0);
	if (fd == -1 && (errno == EINVAL || errno == EACCES)) {
		e = errno;
		vlog[0] = '\0';
		if (prog_load(&p, BPF_SK_REUSEPORT_SELECT_OR_MIGRATE, vlog,
			      sizeof(vlog)) == -1)
			log_debug("reuseport: the verifier says: %.900s", vlog);
		errno = e;
		return -1;
	}
	if (fd == -1)
		return -1;
	if (setsockopt(h->addrs[i].fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF,
		       &fd, sizeof(fd)) == -1) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	close(fd); /* the group holds the program, the program its maps */
	return ebpf_steer_socket(i, 0, h->addrs[i].fd);
}

static int init(herd *h, int counted)
{
	int shm, e;
	void *p;

	if (getenv("HERD_TEST_NO_EBPF") != NULL) {
		errno = EPERM;
		return -1;
	}
	if ((shm = map_create(BPF_MAP_TYPE_ARRAY, SHM_SIZE, 1,
			      BPF_F_MMAPABLE)) == -1)
		return -1;
	p = mmap(NULL, SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, shm, 0);
	if (p == MAP_FAILED)
		goto fail;
	bpf.shm = p;
	*(uint32_t *)(bpf.shm + OFF_COUNTED) = counted != 0;
	bpf.sockarray = map_create(BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, 8,
				   (uint32_t)(h->naddrs * MAX_WORKERS), 0);
	if (bpf.sockarray == -1)
		goto fail;
	for (size_t i = 0; i < h->naddrs; i++)
		if (h->addrs[i].reuseport && h->addrs[i].fd >= 0 &&
		    attach_one(h, i, shm) == -1)
			goto fail;
	close(shm); /* the mapping and the programs keep the map */
	return 0;
fail:
	e = errno;
	close(shm);
	if (bpf.sockarray >= 0)
		close(bpf.sockarray);
	bpf.sockarray = -1;
	if (bpf.shm != NULL)
		munmap(bpf.shm, SHM_SIZE);
	bpf.shm = NULL;
	errno = e;
	return -1;
}

int ebpf_steer_init(herd *h, int counted)
{
	if (!bpf.tried) {
		bpf.tried = 1;
		bpf.ok = init(h, counted) == 0;
		bpf.err = bpf.ok ? 0 : errno;
	}
	errno = bpf.err;
	return bpf.ok ? 0 : -1;
}

int ebpf_steer_active(void)
{
	return bpf.ok;
}

/* ---- the master's side --------------------------------------------------- */

int ebpf_steer_socket(size_t addr, int slot, int fd)
{
	uint32_t key = (uint32_t)(addr * MAX_WORKERS + (size_t)slot);
	uint64_t value = (uint64_t)fd;
	union bpf_attr a;

	if (bpf.sockarray < 0) {
		errno = EBADF;
		return -1;
	}
	memset(&a, 0, sizeof(a));
	a.map_fd = (uint32_t)bpf.sockarray;
	a.key = (uint64_t)(uintptr_t)&key;
	a.value = (uint64_t)(uintptr_t)&value;
	a.flags = BPF_ANY;
	return (int)sys_bpf(BPF_MAP_UPDATE_ELEM, &a);
}

/* The program reads n, then entries below it, with no lock: a shrinking
 * list gets its new n first, a growing one its entries first, so an entry
 * read is always a slot number; one stale for a connection or two is a
 * slot that was ready a moment ago (if it closes, what it got migrates). */
void ebpf_steer_ready(const uint16_t *slots, size_t n)
{
	uint32_t *np, old;
	uint16_t *r;

	if (bpf.shm == NULL || n == 0 || n > MAX_WORKERS)
		return;
	np = (uint32_t *)(void *)(bpf.shm + OFF_N);
	r = (uint16_t *)(void *)(bpf.shm + OFF_READY);
	old = __atomic_load_n(np, __ATOMIC_RELAXED);
	if (n < old)
		__atomic_store_n(np, (uint32_t)n, __ATOMIC_RELEASE);
	for (size_t i = 0; i < n; i++)
		__atomic_store_n(&r[i], slots[i], __ATOMIC_RELEASE);
	__atomic_store_n(np, (uint32_t)n, __ATOMIC_RELEASE);
}

static uint64_t *counter(int slot, size_t off)
{
	return (uint64_t *)(void *)(bpf.shm + OFF_SLOTS +
				    (size_t)slot * SLOT_STRIDE + off);
}

/* Only for a slot with no socket in the map and no worker: nothing else
 * writes its counters meanwhile. Its old figures would count what a
 * closed socket queued (migrated since) as waiting. */
void ebpf_steer_reset(int slot)
{
	if (bpf.shm == NULL || slot < 0 || slot >= MAX_WORKERS)
		return;
	__atomic_store_n(counter(slot, OFF_STEERED), 0, __ATOMIC_RELAXED);
	__atomic_store_n(counter(slot, OFF_ACCEPTED), 0, __ATOMIC_RELAXED);
}

/* ---- the worker's side --------------------------------------------------- */

void ebpf_steer_accepted(const herd *h, int slot, int lfd)
{
	if (bpf.shm == NULL || slot < 0 || slot >= MAX_WORKERS)
		return;
	for (size_t i = 0; i < h->naddrs; i++)
		if (h->addrs[i].fd == lfd) {
			if (h->addrs[i].reuseport)
				__atomic_fetch_add(counter(slot, OFF_ACCEPTED),
						   1, __ATOMIC_RELAXED);
			return;
		}
}
