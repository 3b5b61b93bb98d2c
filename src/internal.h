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
#include "upgrade.h"

#define MAX_LISTEN  64
#define MAX_WORKERS 512
/* A worker's exit status when its start callback failed. */
#define HERD_EXIT_CONFIG 3

struct kind_ops;
struct mode_ops;

struct herd {
	struct listen_addr addrs[MAX_LISTEN];
	size_t naddrs;
	int workers;	     /* 0: one per CPU; -w MIN:MAX: MIN */
	int workers_max;     /* -w MIN:MAX: MAX; 0: a fixed pool */
	uint64_t idle_ms;    /* --idle-timeout; 0: the default */
	unsigned spawn_rate; /* --spawn-rate; 0: the default */
	herd_mode mode;
	const struct mode_ops *conn; /* mode's operations (mode.h) */
	herd_balance balance;
	int cpu_affinity;   /* pin slot i to the i-th allowed CPU, modulo */
	unsigned max_conns; /* --max-connections per worker; 0: none */
	int reload_batch; /* --reload-batch: slots replaced at a time; 0: all */
	int defer_accept; /* --defer-accept: TCP_DEFER_ACCEPT on the listeners
			   */
	uint64_t shutdown_ms;
	char *pid_file;
	char *control_path; /* --control */
	int metrics;	    /* --metrics: metrics_addr is set */
	struct listen_addr metrics_addr;
	char *log_file;
	int log_level;

	/* a pool of a program (herd_set_program) */
	char **argv;		     /* NULL: in-process workers */
	const struct kind_ops *kind; /* in-process or program (kind.h) */
	herd_handoff handoff;
	int notify;
	uint64_t watchdog_ms;	 /* 0: none */
	uint64_t ready_delay_ms; /* without notify */
	int stop_signal;
	int reload_signal;  /* 0: a reload replaces the workers */
	int reopen_signal;  /* 0: a log reopen is not forwarded */
	int inherit_output; /* children write to herd's stdout, stderr */

	/* binary upgrade (herd_set_upgrade) */
	char *upgrade_path; /* the binary, where it was at start */
	char **upgrade_argv;
	uint64_t upgrade_timeout_ms;

	/* recycling (herd_set_recycling) */
	uint64_t max_requests;	      /* 0: none */
	uint64_t max_rss_kib;	      /* 0: none */
	struct upgrade_state *resume; /* set when started by an upgrade */

	/* workers run as (herd_set_user) */
	int drop;
	uid_t uid;
	gid_t gid;
	gid_t *groups;
	int ngroups;
	char *user; /* as given, for messages */

	herd_start_fn on_start;
	herd_conn_fn on_connection;
	herd_relay_fn on_relay;
	herd_msg_fn on_message;
	herd_drain_fn on_drain;
	herd_stop_fn on_stop;
	void *ud;

	char err[256];
};

/* herd.c: frees a NULL-terminated copy of an argv. */
void argv_free(char **argv);
/* Sets the message herd_error() returns and logs it; returns -1. */
__attribute__((format(printf, 2, 3))) int start_fail(herd *h, const char *fmt,
						     ...);

/* config.c: what the setters cannot judge alone, refused before anything
 * is bound. */
int config_check(herd *h);

/* master.c: runs the master once the sockets are bound; returns its exit
 * status. */
int master_run(herd *h);
/* The most workers the fd limit lets the master hold through a reload. */
int master_max_workers(const herd *h);

/* worker.c: the in-process worker runtime, in a freshly forked child that
 * holds exactly its channel, its inbox, the listeners and the log. Returns
 * the worker's exit status. */
int worker_main(herd *h, int slot, unsigned gen, int chan_fd, int inbox_fd);

/* sdnotify.c: herd's own notifications to its service manager. */
int sdnotify_open(void); /* from NOTIFY_SOCKET; 0 when there is none */
void sdnotify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* text with fd attached (SCM_RIGHTS), as the fd store takes them: 0, or
 * -1 with errno (ENOTCONN: no NOTIFY_SOCKET). Never blocks. */
int sdnotify_fd(int fd, const char *text);
unsigned long long sdnotify_monotonic_usec(void);
/* How often to send WATCHDOG=1 (ms), or 0 when no watchdog is asked. */
uint64_t sdnotify_watchdog_ms(void);
void sdnotify_close(void);
/* What a child's notification says: sd_notify's KEY=value lines. */
struct sd_note {
	int ready;	    /* READY=1 */
	int watchdog;	    /* WATCHDOG=1 */
	int trigger;	    /* WATCHDOG=trigger */
	const char *status; /* the last STATUS=, or NULL */
	size_t status_len;
};
/* Parses text[0..len); text[len] must be writable, lines are cut in
 * place. Pure: the master acts on the result; fuzzed. */
void sdnotify_parse(char *text, size_t len, struct sd_note *n);

/* spawn.c */
#include <signal.h>
/* In a new child, before anything else runs: becomes h's user (setgroups,
 * setgid, setuid; checks the root cannot be regained) and re-arms
 * PR_SET_PDEATHSIG, which a change of credentials clears. Returns 0, or -1
 * with errno; the child must then exit. Nothing to do without a user. */
int spawn_drop_privileges(const herd *h, pid_t parent);
/* Where a program's fds go: fds[i] becomes fd first + i, the rest close on
 * exec. */
struct spawn_layout {
	int fds[MAX_LISTEN + 1];
	size_t n;
	int first;
};
/* Why a child never ran its program, through the exec error pipe. */
struct spawn_error {
	int stage; /* enum spawn_stage */
	int err;   /* errno */
};
enum spawn_stage { SPAWN_PRIVILEGES = 1, SPAWN_LAYOUT, SPAWN_EXEC };
const char *spawn_stage_name(int stage);
/* In a new child: lays out the fds, sets an empty signal mask and execs
 * argv with env. Returns only on failure, having written a spawn_error to
 * err_fd; the caller then _exits. */
void spawn_exec(char **argv, char **env, const struct spawn_layout *lay,
		int err_fd);
/* Reports a failure before exec on err_fd and exits the child. */
__attribute__((noreturn)) void spawn_fail(int err_fd, int stage, int err);
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
