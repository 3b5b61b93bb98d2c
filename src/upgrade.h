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

struct upgrade_proc {
	int32_t pid, pidfd, slot, state, killed;
	uint32_t gen;
	int32_t chan, inbox_w, worker_end, exec_err; /* fds, or -1 */
	uint32_t active;
	uint64_t total, assigned;
	uint64_t age_ms;	   /* since it started */
	uint64_t deadline_left_ms; /* 0: none */
};

/* A program's output pipe (output.c): its read end and whose it is. */
struct upgrade_output {
	int32_t fd, pid, slot;
	int32_t attached; /* 0: its worker is gone, its descendants hold it */
	uint32_t gen;
};

struct upgrade_state {
	int32_t nworkers;
	uint32_t gen, last_gen;
	int32_t naddrs;
	int32_t addr_fds[64];
	int32_t notify_fd; /* --notify's socket, or -1 */
	char notify_name[64];
	int32_t nslots;	   /* reuseport: slots 1.. with sockets */
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
