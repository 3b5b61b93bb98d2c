/*
 * internal.h: the herd object (configuration) and the entry points that
 * tie the library's files together. Not installed.
 */
#ifndef HERD_INTERNAL_H
#define HERD_INTERNAL_H

#include <stdint.h>
#include <sys/types.h>

#include "herd.h"
#include "listen.h"

#define MAX_LISTEN  64
#define MAX_WORKERS 512
/* A worker's exit status when its start callback failed. */
#define HERD_EXIT_CONFIG 3

struct herd {
	struct listen_addr addrs[MAX_LISTEN];
	size_t naddrs;
	int workers; /* 0: one per CPU */
	herd_mode mode;
	herd_balance balance;
	int cpu_affinity; /* pin slot i to the i-th allowed CPU, modulo */
	uint64_t shutdown_ms;
	char *pid_file;
	char *log_file;
	int log_level;

	herd_start_fn on_start;
	herd_conn_fn on_connection;
	herd_msg_fn on_message;
	herd_drain_fn on_drain;
	herd_stop_fn on_stop;
	void *ud;

	char err[256];
};

/* master.c: runs the master once the sockets are bound; returns its exit
 * status. */
int master_run(herd *h);
/* The most workers the fd limit lets the master hold through a reload. */
int master_max_workers(const herd *h);

/* worker.c: the in-process worker runtime, in a freshly forked child that
 * holds exactly its channel, its inbox, the listeners and the log. Returns
 * the worker's exit status. */
int worker_main(herd *h, int slot, unsigned gen, int chan_fd, int inbox_fd);

/* spawn.c */
#include <signal.h>
/* fork() with every signal blocked. In the child (0 returned) every
 * disposition is default, PR_SET_PDEATHSIG is armed, and the mask stays
 * fully blocked for the caller to set; the parent gets its mask back. */
pid_t spawn_fork(pid_t parent);
/* Closes every fd except those in keep (which it sorts). */
int spawn_close_except(int *keep, size_t n);
/* pidfd_open, or -1 (kill() by pid is then the fallback). */
int spawn_pidfd(pid_t pid);
/* Sends sig through the pidfd, or by pid when there is none. */
int spawn_signal(int pidfd, pid_t pid, int sig);

#endif
