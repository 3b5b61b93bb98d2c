/*
 * upgrade.h: binary upgrade in place. The master re-executes its binary
 * (the same pid, so service managers and pid files follow), handing the
 * new image its listening sockets and its process table through one
 * inherited memfd named in HERD_UPGRADE_FD. The new image adopts the
 * running workers and starts a new generation; the old one retires once
 * the new one is ready, as in a reload.
 */
#ifndef HERD_UPGRADE_H
#define HERD_UPGRADE_H

#include <stddef.h>
#include <stdint.h>

#define UPGRADE_ENV "HERD_UPGRADE_FD"

/*
 * The hand-over's fields, each written once. A row is
 *
 *	X(type, name, dim, how, fd)
 *
 * type, name, dim: the member, in every record that carries it (dim is
 * [N] for an array, else empty).
 * how, on the master's side (handover.c, output.c):
 *	COPY	the live object's field of the same name, both ways;
 *	HAND	converted by put_<name>() and take_<name>(), defined next to
 *		the collect and the resume (a clock, a channel...);
 *	LAYOUT	the record's counts and arrays, filled and used by named
 *		steps (the sockets: collect_sockets(), herd.c's
 *		resume_sockets()); nothing is generated for them.
 * fd, for the walk over the fds (upgrade.c): NOFD; FD, an fd kept across
 *	the exec (close-on-exec cleared for it, set again after); OPEN, such
 *	an fd that must be open, or the new image refuses the hand-over;
 *	FDS, an array of OPEN fds walked with its count.
 *
 * The records are in native layout and cross versions, an old herd
 * handing over to a new one and back: a row is never changed, moved or
 * inserted (tests/unit/test_upgrade.c pins the bytes). New data goes in a
 * new section at the end (upgrade.c: sections[]), which an older reader
 * never reads, and a newer reader finds absent in an older hand-over.
 */
/* clang-format off */
/* The header (struct master): the listening sockets in -l order, the
 * children's NOTIFY_SOCKET (--notify, or -1), and reuseport's per-slot
 * sockets (slots 1..nslots, in slot_fds). */
#define UPGRADE_HEAD_FIELDS(X)                          \
	X(int32_t,  nworkers,    ,     COPY,   NOFD)      \
	X(uint32_t, gen,         ,     COPY,   NOFD)      \
	X(uint32_t, last_gen,    ,     COPY,   NOFD)      \
	X(int32_t,  naddrs,      ,     LAYOUT, NOFD)      \
	X(int32_t,  addr_fds,    [64], LAYOUT, FDS)       \
	X(int32_t,  notify_fd,   ,     HAND,   FD)        \
	X(char,     notify_name, [64], HAND,   NOFD)      \
	X(int32_t,  nslots,      ,     LAYOUT, NOFD)

/* Per worker (struct proc); age_ms since it started, deadline_left_ms 0
 * for none. */
#define UPGRADE_PROC_FIELDS(X)                          \
	X(int32_t,  pid,              , COPY, NOFD)     \
	X(int32_t,  pidfd,            , COPY, OPEN)     \
	X(int32_t,  slot,             , COPY, NOFD)     \
	X(int32_t,  state,            , HAND, NOFD)     \
	X(int32_t,  killed,           , HAND, NOFD)     \
	X(uint32_t, gen,              , COPY, NOFD)     \
	X(int32_t,  chan,             , HAND, OPEN)     \
	X(int32_t,  inbox_w,          , COPY, FD)       \
	X(int32_t,  worker_end,       , COPY, FD)       \
	X(int32_t,  exec_err,         , COPY, FD)       \
	X(uint32_t, active,           , COPY, NOFD)     \
	X(uint64_t, total,            , COPY, NOFD)     \
	X(uint64_t, assigned,         , COPY, NOFD)     \
	X(uint64_t, age_ms,           , HAND, NOFD)     \
	X(uint64_t, deadline_left_ms, , HAND, NOFD)

/* Per program output pipe (output.c): its read end and whose it is;
 * attached 0: its worker is gone, its descendants hold it. */
#define UPGRADE_OUTPUT_FIELDS(X)                        \
	X(int32_t,  fd,       , COPY, OPEN)             \
	X(int32_t,  pid,      , COPY, NOFD)             \
	X(int32_t,  slot,     , COPY, NOFD)             \
	X(int32_t,  attached, , COPY, NOFD)             \
	X(uint32_t, gen,      , COPY, NOFD)
/* clang-format on */

#define UPGRADE_MEMBER(type, name, dim, how, fd) type name dim;

struct upgrade_proc {
	UPGRADE_PROC_FIELDS(UPGRADE_MEMBER)
};

struct upgrade_output {
	UPGRADE_OUTPUT_FIELDS(UPGRADE_MEMBER)
};

struct upgrade_state {
	UPGRADE_HEAD_FIELDS(UPGRADE_MEMBER)
	int32_t *slot_fds; /* nslots * naddrs, slot 1 first; -1 for none */
	size_t nprocs;
	struct upgrade_proc *procs;
	/* The addresses' LISTEN_FDNAMES names, ':'-joined in -l order, ""
	 * for a derived one: socket activation's names are in no argv. NULL
	 * when an older image handed over none. */
	char *names;
	/* The programs' output pipes, after the names for the same reason
	 * (an image that knows nothing of them ignores them, and one that
	 * does finds none in an older image's hand-over). */
	size_t nouts;
	struct upgrade_output *outs;
};

/*
 * The collect and the resume, generated from a list: with the record u,
 * the live object o (struct master, proc or output) and the master m in
 * scope, UPGRADE_PUT copies o into u and UPGRADE_TAKE u into o; a HAND
 * row calls put_<name>(u, o, m), or take_<name>(o, u, m), which returns
 * 0 or -1, or'ed into err (in scope too).
 */
#define UPGRADE_PUT(type, name, dim, how, fd) UPGRADE_PUT_##how(name)
#define UPGRADE_PUT_COPY(name)		      u->name = o->name;
#define UPGRADE_PUT_HAND(name)		      put_##name(u, o, m);
#define UPGRADE_PUT_LAYOUT(name)
#define UPGRADE_TAKE(type, name, dim, how, fd) UPGRADE_TAKE_##how(name)
#define UPGRADE_TAKE_COPY(name)		       o->name = u->name;
#define UPGRADE_TAKE_HAND(name)		       err |= take_##name(o, u, m);
#define UPGRADE_TAKE_LAYOUT(name)

/* The record itself, apart from the exec and the environment so that a
 * test can pin its bytes: writes st to fd, 0 or -1 with errno. */
int upgrade_write(int fd, const struct upgrade_state *st);
/* Reads a record from fd into st (arrays malloc'ed), checking what indexes
 * the master's arrays but not the fds it names: 0, or -1 with errno
 * (EPROTO: not a record this image can use) and st empty. */
int upgrade_read(int fd, struct upgrade_state *st);
/* Old image: writes st to a memfd, makes that fd and every fd st names
 * inheritable, sets HERD_UPGRADE_FD and execs path with argv. Returns only
 * on failure, with everything as it was and errno set. */
int upgrade_exec(const struct upgrade_state *st, const char *path,
		 char *const argv[]);
/* New image: 1 and st filled (arrays malloc'ed; the fds close-on-exec
 * again) when started by an upgrade, 0 when not, -1 on a bad hand-over. */
int upgrade_load(struct upgrade_state *st);
void upgrade_free(struct upgrade_state *st);

#endif
