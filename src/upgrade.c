/*
 * upgrade.c: the hand-over between the old and the new image of a master
 * (upgrade.h). The format is private to one version of herd talking to the
 * next: a header with a magic number and a version, then the arrays; the
 * reader refuses anything it does not recognise rather than guess.
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

#define NAMES_MAX (64 * 256) /* 64 addresses, FDNAME_MAX and a ':' each */

struct header {
	uint32_t magic, version;
	uint32_t proc_size; /* sizeof(struct upgrade_proc), as a check */
	int32_t nworkers;
	uint32_t gen, last_gen;
	int32_t naddrs;
	int32_t addr_fds[64];
	int32_t notify_fd;
	char notify_name[64];
	int32_t nslots;
	uint64_t nprocs;
};

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

/* The names go last, as a length and the bytes, so that the header and
 * the version stay those of images that know nothing of them: either way
 * round, the reader finds what it expects and the rest is ignored. */
static int write_names(int fd, const char *names)
{
	uint32_t len = names != NULL ? (uint32_t)strlen(names) : 0;

	if (names == NULL)
		return 0;
	if (write_all(fd, &len, sizeof(len)) == -1)
		return -1;
	return write_all(fd, names, len);
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

/* NULL in *names, and 0, when the hand-over ends before them (an older
 * image); -1 on a short or oversized record. */
static int read_names(int fd, char **names)
{
	uint32_t len;
	int r;

	*names = NULL;
	if ((r = read_more(fd, &len, sizeof(len))) <= 0)
		return r;
	if (len > NAMES_MAX) {
		errno = EPROTO;
		return -1;
	}
	if ((*names = malloc(len + 1)) == NULL ||
	    read_all(fd, *names, len) == -1)
		return -1;
	(*names)[len] = '\0';
	return 1;
}

/* After the names: a count, the record size (a check), the records. */
static int write_outputs(int fd, const struct upgrade_state *st)
{
	uint32_t head[2] = {(uint32_t)st->nouts, sizeof(*st->outs)};

	if (st->names == NULL && st->nouts == 0)
		return 0;
	if (st->names == NULL) { /* the reader would take them for names */
		errno = EINVAL;
		return -1;
	}
	if (write_all(fd, head, sizeof(head)) == -1)
		return -1;
	return write_all(fd, st->outs, st->nouts * sizeof(*st->outs));
}

static int read_outputs(int fd, struct upgrade_state *st)
{
	uint32_t head[2];
	int r;

	if (st->names == NULL || (r = read_more(fd, head, sizeof(head))) == 0)
		return 0;
	if (r == -1)
		return -1;
	if (head[0] > 1u << 16 || head[1] != sizeof(*st->outs)) {
		errno = EPROTO;
		return -1;
	}
	if ((st->outs = calloc(head[0] + 1, sizeof(*st->outs))) == NULL)
		return -1;
	st->nouts = head[0];
	return read_all(fd, st->outs, st->nouts * sizeof(*st->outs));
}

/* Calls fn on every fd the state names. */
static void each_fd(const struct upgrade_state *st, void (*fn)(int, int),
		    int arg)
{
	for (int i = 0; i < st->naddrs; i++)
		fn(st->addr_fds[i], arg);
	for (int i = 0; i < st->nslots * st->naddrs; i++)
		fn(st->slot_fds[i], arg);
	fn(st->notify_fd, arg);
	for (size_t i = 0; i < st->nprocs; i++) {
		const struct upgrade_proc *p = &st->procs[i];

		fn(p->pidfd, arg);
		fn(p->chan, arg);
		fn(p->inbox_w, arg);
		fn(p->worker_end, arg);
		fn(p->exec_err, arg);
	}
	for (size_t i = 0; i < st->nouts; i++)
		fn(st->outs[i].fd, arg);
}

static void set_cloexec(int fd, int on)
{
	if (fd >= 0)
		fcntl(fd, F_SETFD, on ? FD_CLOEXEC : 0);
}

int upgrade_write(int fd, const struct upgrade_state *st)
{
	struct header h = {UPGRADE_MAGIC,
			   UPGRADE_VERSION,
			   sizeof(struct upgrade_proc),
			   st->nworkers,
			   st->gen,
			   st->last_gen,
			   st->naddrs,
			   {0},
			   st->notify_fd,
			   {0},
			   st->nslots,
			   st->nprocs};

	if (st->naddrs < 0 || st->naddrs > 64) {
		errno = EINVAL;
		return -1;
	}
	memcpy(h.addr_fds, st->addr_fds, sizeof(h.addr_fds));
	memcpy(h.notify_name, st->notify_name, sizeof(h.notify_name));
	if (write_all(fd, &h, sizeof(h)) == -1 ||
	    write_all(fd, st->slot_fds,
		      (size_t)(st->nslots * st->naddrs) * sizeof(int32_t)) ==
		-1 ||
	    write_all(fd, st->procs, st->nprocs * sizeof(*st->procs)) == -1 ||
	    write_names(fd, st->names) == -1 || write_outputs(fd, st) == -1)
		return -1;
	return 0;
}

int upgrade_exec(const struct upgrade_state *st, const char *path,
		 char *const argv[])
{
	char num[16];
	int fd, e;

	if ((fd = memfd_create("herd-upgrade", MFD_CLOEXEC)) == -1)
		return -1;
	if (upgrade_write(fd, st) == -1 || lseek(fd, 0, SEEK_SET) == -1)
		goto fail;
	snprintf(num, sizeof(num), "%d", fd);
	if (setenv(UPGRADE_ENV, num, 1) == -1)
		goto fail;
	each_fd(st, set_cloexec, 0);
	set_cloexec(fd, 0);
	execv(path, argv);
	e = errno; /* still here: the old image carries on */
	each_fd(st, set_cloexec, 1);
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

/* Every fd the state names must be open: a hand-over that lost one is
 * refused whole. */
static int check_fd(int fd)
{
	return fd < 0 || fcntl(fd, F_GETFD) != -1;
}

int upgrade_read(int fd, struct upgrade_state *st)
{
	struct header h;
	size_t nslot_fds;

	memset(st, 0, sizeof(*st));
	if (read_all(fd, &h, sizeof(h)) == -1)
		goto bad;
	if (h.magic != UPGRADE_MAGIC || h.version != UPGRADE_VERSION ||
	    h.proc_size != sizeof(struct upgrade_proc) || h.naddrs < 0 ||
	    h.naddrs > 64 || h.nslots < 0 || h.nslots > 4096 ||
	    h.nprocs > 1u << 16) {
		errno = EPROTO;
		goto bad;
	}
	st->nworkers = h.nworkers;
	st->gen = h.gen;
	st->last_gen = h.last_gen;
	st->naddrs = h.naddrs;
	memcpy(st->addr_fds, h.addr_fds, sizeof(st->addr_fds));
	st->notify_fd = h.notify_fd;
	memcpy(st->notify_name, h.notify_name, sizeof(st->notify_name));
	st->notify_name[sizeof(st->notify_name) - 1] = '\0';
	st->nslots = h.nslots;
	st->nprocs = (size_t)h.nprocs;
	nslot_fds = (size_t)(h.nslots * h.naddrs);
	st->slot_fds = calloc(nslot_fds + 1, sizeof(int32_t));
	st->procs = calloc(st->nprocs + 1, sizeof(*st->procs));
	if (st->slot_fds == NULL || st->procs == NULL ||
	    read_all(fd, st->slot_fds, nslot_fds * sizeof(int32_t)) == -1 ||
	    read_all(fd, st->procs, st->nprocs * sizeof(*st->procs)) == -1 ||
	    read_names(fd, &st->names) == -1 || read_outputs(fd, st) == -1)
		goto bad;
	/* The state comes from the previous image, but it indexes arrays:
	 * what is out of range refuses the hand-over, not overruns them. */
	if (st->nworkers < 1 || st->nworkers > MAX_WORKERS ||
	    st->nslots > MAX_WORKERS)
		goto range;
	for (size_t i = 0; i < st->nprocs; i++)
		if (st->procs[i].slot < 0 || st->procs[i].slot >= MAX_WORKERS ||
		    st->procs[i].state < PS_STARTING ||
		    st->procs[i].state > PS_STOPPING)
			goto range;
	for (size_t i = 0; i < st->nouts; i++)
		if (st->outs[i].fd < 0 || st->outs[i].slot < 0 ||
		    st->outs[i].slot >= MAX_WORKERS)
			goto range;
	return 0;
range:
	errno = EPROTO;
bad:
	upgrade_free(st);
	return -1;
}

int upgrade_load(struct upgrade_state *st)
{
	const char *v = getenv(UPGRADE_ENV);
	size_t nslot_fds;
	char *end;
	long fd;
	int ok = 1, e;

	memset(st, 0, sizeof(*st));
	if (v == NULL)
		return 0;
	fd = strtol(v, &end, 10);
	unsetenv(UPGRADE_ENV);
	if (*end != '\0' || fd < 3 || fd > 1 << 20) {
		errno = EPROTO; /* not a number herd writes */
		return -1;
	}
	if (upgrade_read((int)fd, st) == -1) {
		e = errno;
		close((int)fd);
		errno = e;
		return -1;
	}
	close((int)fd);
	nslot_fds = (size_t)(st->nslots * st->naddrs);
	each_fd(st, set_cloexec, 1);
	for (int i = 0; i < st->naddrs; i++)
		ok &= check_fd(st->addr_fds[i]);
	for (size_t i = 0; i < nslot_fds; i++)
		ok &= check_fd(st->slot_fds[i]);
	for (size_t i = 0; i < st->nprocs; i++)
		ok &=
		    check_fd(st->procs[i].chan) && check_fd(st->procs[i].pidfd);
	for (size_t i = 0; i < st->nouts; i++)
		ok &= check_fd(st->outs[i].fd);
	if (!ok) {
		errno = EBADF;
		upgrade_free(st);
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
