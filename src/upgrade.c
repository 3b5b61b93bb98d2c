/*
 * upgrade.c: the hand-over between the old and the new image of a master
 * (upgrade.h). The format is private to herd but crosses versions, an
 * older herd handing over to a newer one and back: a header with a magic
 * number and a version, the slots' sockets, the workers' records, then
 * sections an older image did not write and an older reader never reads.
 * The reader refuses anything it does not recognise rather than guess.
 * The fields are listed once, in upgrade.h; the records, the copies of the
 * header and the walk over the fds are generated from the lists.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h" /* MAX_WORKERS */
#include "proc.h"     /* enum proc_state */
#include "upgrade.h"

#define UPGRADE_MAGIC	0x68657264u /* "herd" */
#define UPGRADE_VERSION 1

#define NAMES_MAX   (64 * 256) /* 64 addresses, FDNAME_MAX and a ':' each */
#define OUTPUTS_MAX (1u << 16)
#define PROCS_MAX   (1u << 16)
#define SLOTS_MAX   4096

struct header {
	uint32_t magic, version;
	uint32_t proc_size; /* sizeof(struct upgrade_proc), as a check */
	UPGRADE_HEAD_FIELDS(UPGRADE_MEMBER)
	uint64_t nprocs;
};
/* Version 1's, padding before nprocs included (tests/unit/test_upgrade.c
 * pins the bytes). */
_Static_assert(sizeof(struct header) == 368, "the header of version 1");

/* ---- reading and writing whole ------------------------------------------- */

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);

		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_all(int fd, void *p, size_t n)
{
	char *c = p;

	while (n > 0) {
		ssize_t r = read(fd, c, n);

		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			errno = r == 0 ? EPROTO : errno;
			return -1;
		}
		c += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Reads n bytes of an optional record: 0 when the hand-over ends before
 * it (an older image wrote nothing more), 1 when read, -1 on a short one. */
static int read_more(int fd, void *p, size_t n)
{
	ssize_t r;

	do
		r = read(fd, p, 1);
	while (r == -1 && errno == EINTR);
	if (r <= 0)
		return (int)r;
	return read_all(fd, (char *)p + 1, n - 1) == -1 ? -1 : 1;
}

/* ---- the sections after the workers -------------------------------------- */

/* The names: a length and the bytes. */
static int write_names(int fd, const struct upgrade_state *st)
{
	uint32_t len;

	if (st->names == NULL) { /* the reader would take the next for them */
		errno = EINVAL;
		return -1;
	}
	len = (uint32_t)strlen(st->names);
	if (write_all(fd, &len, sizeof(len)) == -1)
		return -1;
	return write_all(fd, st->names, len);
}

static int read_names(int fd, struct upgrade_state *st)
{
	uint32_t len;
	int r;

	if ((r = read_more(fd, &len, sizeof(len))) <= 0)
		return r;
	if (len > NAMES_MAX) {
		errno = EPROTO;
		return -1;
	}
	if ((st->names = malloc(len + 1)) == NULL ||
	    read_all(fd, st->names, len) == -1)
		return -1;
	st->names[len] = '\0';
	return 1;
}

/* The output pipes: a count, the record size (a check), the records. */
static int write_outputs(int fd, const struct upgrade_state *st)
{
	uint32_t head[2] = {(uint32_t)st->nouts, sizeof(*st->outs)};

	if (write_all(fd, head, sizeof(head)) == -1)
		return -1;
	return write_all(fd, st->outs, st->nouts * sizeof(*st->outs));
}

static int read_outputs(int fd, struct upgrade_state *st)
{
	uint32_t head[2];
	int r;

	if ((r = read_more(fd, head, sizeof(head))) <= 0)
		return r;
	if (head[0] > OUTPUTS_MAX || head[1] != sizeof(*st->outs)) {
		errno = EPROTO;
		return -1;
	}
	if ((st->outs = calloc(head[0] + 1, sizeof(*st->outs))) == NULL)
		return -1;
	st->nouts = head[0];
	if (read_all(fd, st->outs, st->nouts * sizeof(*st->outs)) == -1)
		return -1;
	return 1;
}

/* In this order, each after the one before: an older image's hand-over
 * ends before those it did not know (get() returns 0, and what follows is
 * absent too), and an older reader stops before those it does not know.
 * New data is a new row at the end, never a change to a row above. */
static const struct section {
	int (*put)(int fd, const struct upgrade_state *st);
	int (*get)(int fd, struct upgrade_state *st); /* 1, 0 absent, -1 */
} sections[] = {
    {write_names, read_names},	   /* since 47edc99 */
    {write_outputs, read_outputs}, /* since 7c02359 */
};

static int write_sections(int fd, const struct upgrade_state *st)
{
	/* A state without them is written as an image before them wrote
	 * it: nothing after the workers. */
	if (st->names == NULL && st->nouts == 0)
		return 0;
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		if (sections[i].put(fd, st) == -1)
			return -1;
	return 0;
}

static int read_sections(int fd, struct upgrade_state *st)
{
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		int r = sections[i].get(fd, st);

		if (r <= 0)
			return r;
	}
	return 0;
}

/* ---- the fds ------------------------------------------------------------- */

/* Called on every fd the state names, with whether it must be open. */
typedef void fd_fn(int fd, int must_be_open, int *arg);

#define WALK(type, name, dim, how, fd) WALK_##fd(name)
#define WALK_NOFD(name)
#define WALK_FD(name)	fn(r->name, 0, arg);
#define WALK_OPEN(name) fn(r->name, 1, arg);
#define WALK_FDS(name)	/* with its count: walk_head() */

static void walk_head(const struct upgrade_state *r, fd_fn *fn, int *arg)
{
	UPGRADE_HEAD_FIELDS(WALK)
	for (int i = 0; i < r->naddrs; i++)
		fn(r->addr_fds[i], 1, arg);
	for (int i = 0; i < r->nslots * r->naddrs; i++)
		fn(r->slot_fds[i], 1, arg);
}

static void walk_proc(const struct upgrade_proc *r, fd_fn *fn, int *arg)
{
	UPGRADE_PROC_FIELDS(WALK)
}

static void walk_output(const struct upgrade_output *r, fd_fn *fn, int *arg)
{
	UPGRADE_OUTPUT_FIELDS(WALK)
}

static void each_fd(const struct upgrade_state *st, fd_fn *fn, int *arg)
{
	walk_head(st, fn, arg);
	for (size_t i = 0; i < st->nprocs; i++)
		walk_proc(&st->procs[i], fn, arg);
	for (size_t i = 0; i < st->nouts; i++)
		walk_output(&st->outs[i], fn, arg);
}

static void set_cloexec(int fd, int must_be_open, int *on)
{
	(void)must_be_open;
	if (fd >= 0)
		fcntl(fd, F_SETFD, *on ? FD_CLOEXEC : 0);
}

/* A hand-over that lost an fd it needs is refused whole. */
static void check_open(int fd, int must_be_open, int *ok)
{
	if (must_be_open && fd >= 0 && fcntl(fd, F_GETFD) == -1)
		*ok = 0;
}

/* ---- the old image ------------------------------------------------------- */

#define TO_HEADER(type, name, dim, how, fd)                                    \
	memcpy(&h.name, &st->name, sizeof(h.name));

static int write_header(int fd, const struct upgrade_state *st)
{
	struct header h;

	memset(&h, 0, sizeof(h)); /* the padding too */
	h.magic = UPGRADE_MAGIC;
	h.version = UPGRADE_VERSION;
	h.proc_size = sizeof(struct upgrade_proc);
	UPGRADE_HEAD_FIELDS(TO_HEADER)
	h.nprocs = st->nprocs;
	return write_all(fd, &h, sizeof(h));
}

int upgrade_write(int fd, const struct upgrade_state *st)
{
	size_t nslot_fds = (size_t)(st->nslots * st->naddrs);

	if (st->naddrs < 0 || st->naddrs > 64) {
		errno = EINVAL;
		return -1;
	}
	if (write_header(fd, st) == -1 ||
	    write_all(fd, st->slot_fds, nslot_fds * sizeof(int32_t)) == -1 ||
	    write_all(fd, st->procs, st->nprocs * sizeof(*st->procs)) == -1)
		return -1;
	return write_sections(fd, st);
}

int upgrade_exec(const struct upgrade_state *st, const char *path,
		 char *const argv[])
{
	int fd, e, cloexec_off = 0, cloexec_on = 1;
	char num[16];

	if ((fd = memfd_create("herd-upgrade", MFD_CLOEXEC)) == -1)
		return -1;
	if (upgrade_write(fd, st) == -1 || lseek(fd, 0, SEEK_SET) == -1)
		goto fail;
	snprintf(num, sizeof(num), "%d", fd);
	if (setenv(UPGRADE_ENV, num, 1) == -1)
		goto fail;
	each_fd(st, set_cloexec, &cloexec_off);
	set_cloexec(fd, 0, &cloexec_off);
	execv(path, argv);
	e = errno; /* still here: the old image carries on */
	each_fd(st, set_cloexec, &cloexec_on);
	unsetenv(UPGRADE_ENV);
	close(fd);
	errno = e;
	return -1;
fail:
	e = errno;
	close(fd);
	errno = e;
	return -1;
}

/* ---- the new image ------------------------------------------------------- */

#define FROM_HEADER(type, name, dim, how, fd)                                  \
	memcpy(&st->name, &h.name, sizeof(st->name));

static int read_header(int fd, struct upgrade_state *st)
{
	struct header h;

	if (read_all(fd, &h, sizeof(h)) == -1)
		return -1;
	if (h.magic != UPGRADE_MAGIC || h.version != UPGRADE_VERSION ||
	    h.proc_size != sizeof(struct upgrade_proc) || h.naddrs < 0 ||
	    h.naddrs > 64 || h.nslots < 0 || h.nslots > SLOTS_MAX ||
	    h.nprocs > PROCS_MAX) {
		errno = EPROTO;
		return -1;
	}
	UPGRADE_HEAD_FIELDS(FROM_HEADER)
	st->notify_name[sizeof(st->notify_name) - 1] = '\0';
	st->nprocs = (size_t)h.nprocs;
	return 0;
}

/* The slots' sockets and the workers, as many as the header says. */
static int read_records(int fd, struct upgrade_state *st)
{
	size_t nslot_fds = (size_t)(st->nslots * st->naddrs);

	st->slot_fds = calloc(nslot_fds + 1, sizeof(int32_t));
	st->procs = calloc(st->nprocs + 1, sizeof(*st->procs));
	if (st->slot_fds == NULL || st->procs == NULL ||
	    read_all(fd, st->slot_fds, nslot_fds * sizeof(int32_t)) == -1)
		return -1;
	return read_all(fd, st->procs, st->nprocs * sizeof(*st->procs));
}

static int slot_in_range(int32_t slot)
{
	return slot >= 0 && slot < MAX_WORKERS;
}

/* The state comes from the previous image, but it indexes arrays: what is
 * out of range refuses the hand-over, not overruns them. */
static int in_range(const struct upgrade_state *st)
{
	if (st->nworkers < 1 || st->nworkers > MAX_WORKERS ||
	    st->nslots > MAX_WORKERS)
		return 0;
	for (size_t i = 0; i < st->nprocs; i++)
		if (!slot_in_range(st->procs[i].slot) ||
		    st->procs[i].state < WIRE_STARTING ||
		    st->procs[i].state > WIRE_STOPPING)
			return 0;
	for (size_t i = 0; i < st->nouts; i++)
		if (st->outs[i].fd < 0 || !slot_in_range(st->outs[i].slot))
			return 0;
	return 1;
}

int upgrade_read(int fd, struct upgrade_state *st)
{
	memset(st, 0, sizeof(*st));
	if (read_header(fd, st) == -1 || read_records(fd, st) == -1 ||
	    read_sections(fd, st) == -1)
		goto fail;
	if (!in_range(st)) {
		errno = EPROTO;
		goto fail;
	}
	return 0;
fail:
	upgrade_free(st);
	return -1;
}

/* HERD_UPGRADE_FD's memfd, or -1: it is gone from the environment after. */
static int handover_fd(const char *v)
{
	char *end;
	long fd = strtol(v, &end, 10);

	unsetenv(UPGRADE_ENV);
	if (*end != '\0' || fd < 3 || fd > 1 << 20) {
		errno = EPROTO; /* not a number herd writes */
		return -1;
	}
	return (int)fd;
}

int upgrade_load(struct upgrade_state *st)
{
	const char *v = getenv(UPGRADE_ENV);
	int fd, r, e, cloexec_on = 1, ok = 1;

	memset(st, 0, sizeof(*st));
	if (v == NULL)
		return 0;
	if ((fd = handover_fd(v)) == -1)
		return -1;
	r = upgrade_read(fd, st);
	e = errno;
	close(fd);
	errno = e;
	if (r == -1)
		return -1;
	each_fd(st, set_cloexec, &cloexec_on);
	each_fd(st, check_open, &ok);
	if (!ok) {
		upgrade_free(st);
		errno = EBADF;
		return -1;
	}
	return 1;
}

void upgrade_free(struct upgrade_state *st)
{
	free(st->slot_fds);
	free(st->procs);
	free(st->names);
	free(st->outs);
	st->outs = NULL;
	st->nouts = 0;
	st->slot_fds = NULL;
	st->procs = NULL;
	st->names = NULL;
}
