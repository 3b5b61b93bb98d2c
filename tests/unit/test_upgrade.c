/*
 * test_upgrade.c: the binary upgrade's hand-over record, pinned byte for
 * byte. The record crosses versions: an older herd hands over to this one,
 * and this one to an older one (a downgrade), so its bytes may never
 * change, only grow at the end in a way an older reader ignores
 * (docs/design.md, "Binary upgrade"). A state built by hand is written and
 * compared with a golden copy taken from the first version of this test;
 * the golden copy is read back, and so are the hand-overs of older images
 * and of a newer one.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "proc.h"
#include "tap.h"
#include "upgrade.h"

/* The per-worker and per-pipe records as they have been since version 1:
 * a field that moves breaks every upgrade to or from an older herd. */
_Static_assert(sizeof(struct upgrade_proc) == 80, "upgrade_proc size");
_Static_assert(offsetof(struct upgrade_proc, pid) == 0, "pid");
_Static_assert(offsetof(struct upgrade_proc, pidfd) == 4, "pidfd");
_Static_assert(offsetof(struct upgrade_proc, slot) == 8, "slot");
_Static_assert(offsetof(struct upgrade_proc, state) == 12, "state");
_Static_assert(offsetof(struct upgrade_proc, killed) == 16, "killed");
_Static_assert(offsetof(struct upgrade_proc, gen) == 20, "gen");
_Static_assert(offsetof(struct upgrade_proc, chan) == 24, "chan");
_Static_assert(offsetof(struct upgrade_proc, inbox_w) == 28, "inbox_w");
_Static_assert(offsetof(struct upgrade_proc, worker_end) == 32, "worker_end");
_Static_assert(offsetof(struct upgrade_proc, exec_err) == 36, "exec_err");
_Static_assert(offsetof(struct upgrade_proc, active) == 40, "active");
_Static_assert(offsetof(struct upgrade_proc, total) == 48, "total");
_Static_assert(offsetof(struct upgrade_proc, assigned) == 56, "assigned");
_Static_assert(offsetof(struct upgrade_proc, age_ms) == 64, "age_ms");
_Static_assert(offsetof(struct upgrade_proc, deadline_left_ms) == 72,
	       "deadline_left_ms");
_Static_assert(sizeof(struct upgrade_output) == 20, "upgrade_output size");
_Static_assert(offsetof(struct upgrade_output, fd) == 0, "fd");
_Static_assert(offsetof(struct upgrade_output, pid) == 4, "pid");
_Static_assert(offsetof(struct upgrade_output, slot) == 8, "slot");
_Static_assert(offsetof(struct upgrade_output, attached) == 12, "attached");
_Static_assert(offsetof(struct upgrade_output, gen) == 16, "gen");

/* The bytes of state() on x86-64 (the record is in native layout), as the
 * hand-over of herd 0.1.0 (commit a63fb7a) wrote them. */
static const char *const golden[] = {
    /* header: magic, version, proc_size, nworkers, gen, last_gen, naddrs */
    "64726568010000005000000003000000070000000600000002000000",
    /* addr_fds[64] */
    "0300000004000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000000",
    /* notify_fd, notify_name[64] */
    "05000000",
    "40686572642d6e6f746966792d31323334000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000000",
    /* nslots, 4 bytes of padding, nprocs */
    "02000000",
    "00000000",
    "0200000000000000",
    /* slot_fds: slot 1, then slot 2 */
    "0a0000000b0000000c000000ffffffff",
    /* procs[0]: pid, pidfd, slot, state, killed, gen, chan, inbox_w,
     * worker_end, exec_err, active, padding, total, assigned, age_ms,
     * deadline_left_ms */
    "e903000014000000000000000100000000000000070000001500000016000000",
    "ffffffffffffffff050000000000000008070605040302010000000000000000",
    "60ea0000000000000000000000000000",
    /* procs[1] */
    "ea03000017000000010000000200000001000000060000001800000019000000",
    "1a0000001b00000000000000000000002a000000000000002900000000000000",
    "0300000000000000c409000000000000",
    /* names: length, bytes */
    "04000000",
    "7765623a",
    /* outputs: count, record size, then fd, pid, slot, attached, gen */
    "0200000014000000",
    "1e000000ea030000010000000100000006000000",
    "1f000000e7030000000000000000000005000000",
};

/* The header's padding before nprocs: whatever the writer's stack held
 * (the reader never looks), so not compared. */
#define PAD_AT	356
#define PAD_LEN 4

static size_t unhex(unsigned char *out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < sizeof(golden) / sizeof(golden[0]); i++)
		for (const char *s = golden[i]; s[0] && s[1] && n < max;
		     s += 2) {
			unsigned v;

			sscanf(s, "%2x", &v);
			out[n++] = (unsigned char)v;
		}
	return n;
}

static struct upgrade_proc procs[2];
static struct upgrade_output outs[2];
static int32_t slot_fds[4] = {10, 11, 12, -1};
static char names[] = "web:";

static void state(struct upgrade_state *st)
{
	memset(st, 0, sizeof(*st));
	memset(procs, 0, sizeof(procs));
	st->nworkers = 3;
	st->gen = 7;
	st->last_gen = 6;
	st->naddrs = 2;
	st->addr_fds[0] = 3;
	st->addr_fds[1] = 4;
	st->notify_fd = 5;
	strcpy(st->notify_name, "@herd-notify-1234");
	st->nslots = 2;
	st->slot_fds = slot_fds;
	procs[0] = (struct upgrade_proc){.pid = 1001,
					 .pidfd = 20,
					 .slot = 0,
					 .state = WIRE_READY,
					 .killed = 0,
					 .gen = 7,
					 .chan = 21,
					 .inbox_w = 22,
					 .worker_end = -1,
					 .exec_err = -1,
					 .active = 5,
					 .total = 0x0102030405060708ull,
					 .assigned = 0,
					 .age_ms = 60000,
					 .deadline_left_ms = 0};
	procs[1] = (struct upgrade_proc){.pid = 1002,
					 .pidfd = 23,
					 .slot = 1,
					 .state = WIRE_DRAINING,
					 .killed = 1,
					 .gen = 6,
					 .chan = 24,
					 .inbox_w = 25,
					 .worker_end = 26,
					 .exec_err = 27,
					 .active = 0,
					 .total = 42,
					 .assigned = 41,
					 .age_ms = 3,
					 .deadline_left_ms = 2500};
	st->nprocs = 2;
	st->procs = procs;
	st->names = names;
	outs[0] = (struct upgrade_output){30, 1002, 1, 1, 6};
	outs[1] = (struct upgrade_output){31, 999, 0, 0, 5};
	st->nouts = 2;
	st->outs = outs;
}

/* A memfd holding data[0..n). */
static int holding(const void *data, size_t n)
{
	int fd = memfd_create("test-upgrade", MFD_CLOEXEC);

	if (fd == -1 || write(fd, data, n) != (ssize_t)n ||
	    lseek(fd, 0, SEEK_SET) == -1) {
		perror("memfd");
		exit(1);
	}
	return fd;
}

static void hexdump(const unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		printf("%s%02x%s", i % 32 == 0 ? "#   " : "", b[i],
		       i % 32 == 31 || i + 1 == n ? "\n" : "");
}

static int same_bytes(const unsigned char *got, size_t ngot,
		      const unsigned char *want, size_t nwant)
{
	if (ngot != nwant)
		return 0;
	for (size_t i = 0; i < ngot; i++)
		if ((i < PAD_AT || i >= PAD_AT + PAD_LEN) && got[i] != want[i])
			return 0;
	return 1;
}

static void test_written(const unsigned char *want, size_t nwant)
{
	struct upgrade_state st;
	unsigned char got[1024];
	int fd = holding("", 0);
	ssize_t n;

	state(&st);
	is_int(upgrade_write(fd, &st), 0, "the state is written");
	lseek(fd, 0, SEEK_SET);
	n = read(fd, got, sizeof(got));
	if (!ok(n > 0 && same_bytes(got, (size_t)n, want, nwant),
		"its bytes are the golden copy's (%zd of %zu)", n, nwant))
		hexdump(got, n > 0 ? (size_t)n : 0);
	close(fd);
}

static int same_state(const struct upgrade_state *a,
		      const struct upgrade_state *b)
{
	return a->nworkers == b->nworkers && a->gen == b->gen &&
	       a->last_gen == b->last_gen && a->naddrs == b->naddrs &&
	       !memcmp(a->addr_fds, b->addr_fds, sizeof(a->addr_fds)) &&
	       a->notify_fd == b->notify_fd &&
	       !strcmp(a->notify_name, b->notify_name) &&
	       a->nslots == b->nslots &&
	       !memcmp(a->slot_fds, b->slot_fds,
		       (size_t)(a->nslots * a->naddrs) * sizeof(int32_t)) &&
	       a->nprocs == b->nprocs &&
	       !memcmp(a->procs, b->procs, a->nprocs * sizeof(*a->procs));
}

/* Reads data[0..n) as a hand-over: 0 and st, or -1 and errno. */
static int read_back(const void *data, size_t n, struct upgrade_state *st)
{
	int fd = holding(data, n), r = upgrade_read(fd, st), e = errno;

	close(fd);
	errno = e;
	return r;
}

static void test_read(const unsigned char *g, size_t n)
{
	struct upgrade_state want, got;

	state(&want);
	if (!ok(read_back(g, n, &got) == 0, "the golden copy is read"))
		return;
	ok(same_state(&got, &want), "into the state it was written from");
	ok(got.names != NULL && !strcmp(got.names, "web:"),
	   "with the socket names");
	ok(got.nouts == 2 && !memcmp(got.outs, outs, sizeof(outs)),
	   "and the output pipes");
	upgrade_free(&got);
}

/* An older herd wrote less: the names came after 3d08920, the output
 * pipes after 47edc99. A newer one may write more after them. */
static void test_other_versions(const unsigned char *g, size_t n)
{
	size_t before_names = 368 + 16 + 160, before_outs = before_names + 8;
	struct upgrade_state want, got;
	unsigned char more[1100];

	state(&want);
	ok(read_back(g, before_names, &got) == 0 && same_state(&got, &want) &&
	       got.names == NULL && got.nouts == 0,
	   "an image without names: read, no names, no pipes");
	upgrade_free(&got);
	ok(read_back(g, before_outs, &got) == 0 && same_state(&got, &want) &&
	       got.names && !strcmp(got.names, "web:") && got.nouts == 0,
	   "an image without output pipes: read, with the names");
	upgrade_free(&got);
	memcpy(more, g, n);
	memset(more + n, 0xa5, sizeof(more) - n);
	ok(read_back(more, sizeof(more), &got) == 0 &&
	       same_state(&got, &want) && got.nouts == 2,
	   "a newer image's record, longer: what follows is ignored");
	upgrade_free(&got);
}

static void refused(const unsigned char *data, size_t n, const char *what)
{
	struct upgrade_state got;
	int r = read_back(data, n, &got);

	ok(r == -1 && errno == EPROTO && got.procs == NULL && got.names == NULL,
	   "%s: refused, EPROTO", what);
	if (r == 0)
		upgrade_free(&got);
}

static void test_refused(const unsigned char *g, size_t n)
{
	unsigned char b[1024];

	refused(g, 100, "a header cut short");
	refused(g, 368 + 16 + 100, "a worker's record cut short");
	refused(g, 368 + 16 + 160 + 6, "names cut short");
	refused(g, n - 1, "output pipes cut short");
	memcpy(b, g, n);
	b[4] = 2;
	refused(b, n, "another version");
	memcpy(b, g, n);
	b[8] = 88;
	refused(b, n, "another worker record size");
	memcpy(b, g, n);
	b[12] = 0;
	refused(b, n, "no workers");
	memcpy(b, g, n);
	b[368 + 16 + 80 + 8] = 0xff, b[368 + 16 + 80 + 11] = 0xff;
	refused(b, n, "a worker's slot out of range");
	memcpy(b, g, n);
	b[368 + 16 + 80 + 12] = 9;
	refused(b, n, "a worker's state unknown");
	memcpy(b, g, n);
	b[n - 20] = 0xff, b[n - 17] = 0xff;
	refused(b, n, "an output pipe without an fd");
}

int main(void)
{
	unsigned char g[1024];
	size_t n = unhex(g, sizeof(g));

	if (__BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__) {
		printf("1..0 # SKIP the golden copy is little-endian\n");
		return 0;
	}
	test_written(g, n);
	test_read(g, n);
	test_other_versions(g, n);
	test_refused(g, n);
	return done_testing();
}
