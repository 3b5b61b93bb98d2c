/*
 * master.h: the master's state and the functions its files share (private
 * to the master; libherd exports only herd_*).
 */
#ifndef HERD_MASTER_H
#define HERD_MASTER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "accept.h"
#include "control.h"
#include "history.h"
#include "internal.h"
#include "kind.h"
#include "loop.h"
#include "mesh.h"
#include "meter.h"
#include "mode.h"
#include "orphans.h"
#include "policy.h"
#include "proc.h"
#include "ratelimit.h"
#include "supervise.h"

#define STATUS_BURST	 20    /* worker status lines logged per second */
#define PENDING_READY_MS 30000 /* a reload not ready by then is abandoned */
#define FAST_STOP_MS	 3000  /* SIGTERM, then SIGKILL after this */
#define RECV_BATCH	 64
#define REAP_BATCH	 64    /* exits handled in one turn */
#define EXEC_POLL_MS	 10    /* ready delay over, exec not yet seen */
#define RSS_WATCH_MS	 10000 /* RSS is sampled this long after a status */
/* The master's fds: per worker its channel, its inbox's write end and its
 * pidfd (a program: its pidfd, its exec error pipe, and in passfd mode its
 * channel; passfd adds a copy of the worker's end, and a program's output
 * pipe one more, counted apart); besides,
 * stdio, the log, epoll, signalfd, the listeners, and the socketpairs and
 * dups of a spawn in progress. */
#define FDS_PER_WORKER 3
/* passfd: connections passed to a worker and not yet reported received;
 * beyond, the worker is skipped (it may be stuck), and what a worker that
 * dies had in flight is bounded by it. */
#define INFLIGHT_MAX 64
#define FDS_BASE     16
/* passfd: the channels of dead workers, kept until what was sent on them
 * and never received is handed to other workers (or dropped, oldest
 * first, beyond this many). */
#define LEFTOVER_MAX 16
/* Start-up: a pool not ready this long after the start is warned about,
 * and again at this interval, until it is. */
#define UNREADY_FIRST_MS 5000
#define UNREADY_EVERY_MS 30000

enum master_state { M_RUNNING, M_QUITTING, M_TERMINATING };

struct master {
	herd *h;
	herd_loop *loop;
	int sigfd;
	int masked; /* oldmask holds the mask to restore */
	sigset_t oldmask;
	pid_t pid;
	struct proctab procs;
	struct ratelimit status_rl; /* log_status's lines */
	int nworkers;
	unsigned gen;	  /* the generation that serves */
	unsigned pending; /* the generation starting after a reload, or 0 */
	unsigned last_gen;
	uint64_t pending_since;
	uint64_t pending_ms; /* abandoned if not ready within this */
	pid_t check_pid;     /* upgrade: the new binary's --check run */
	uint64_t check_deadline;
	int upgraded; /* this image was started by an upgrade */
	enum master_state state;
	int exit_code;
	int announced;
	int reload_queued;	     /* asked while one was starting: next */
	struct history history;	     /* the last reloads' outcomes */
	struct crashes crashes;	     /* the last crashes, for status */
	int accepting;		     /* passfd: the listeners are watched */
	struct accept_pause starved; /* passfd: out of fds */
	size_t rr;		     /* passfd: where the next pick starts */
	size_t picked;		     /* passfd: where pick() found one */
	struct chan *leftover[LEFTOVER_MAX]; /* passfd: dead workers' ends */
	size_t nleftover;
	uint16_t steer[MAX_WORKERS]; /* reuseport: slots taking connections */
	size_t nsteer;
	int steer_warned;
	int reap_more;	       /* reap() stopped at REAP_BATCH */
	unsigned spawn_budget; /* starts left in this turn (SPAWN_BATCH) */
	uint64_t spawn_pass;   /* the loop's turn that budget is for */
	struct mesh mesh;      /* the peers' open-channel mesh */
	herd_timer *wake;
	herd_timer *sd_watchdog; /* WATCHDOG=1 to herd's service manager */
	uint64_t sd_watchdog_ms;
	struct control *control;     /* --control */
	struct control *metrics;     /* --metrics */
	uint64_t started;	     /* ms, monotonic */
	unsigned reloads;	     /* completed, upgrades included */
	unsigned reloads_abandoned;  /* never ready, or failed to start */
	unsigned long restarts;	     /* crashes of serving workers, ever */
	unsigned long relays;	     /* idle connections passed on (relay.c) */
	unsigned long relays_closed; /* relayed, and no worker to take them */
	uint64_t rss_wanted;   /* status asked for RSS: sample until then */
	uint64_t unready_warn; /* start-up: when to say what is awaited */
	int recheck;	       /* passfd: a worker reached --max-requests */
	unsigned long long gone_total; /* connections of exited workers */
	struct orphans orphans;	       /* at stop, what the pool left behind */
	int notify_fd;	      /* --notify: the children's NOTIFY_SOCKET */
	char notify_name[64]; /* its abstract name, '@' first */
	struct slot_state slots[MAX_WORKERS];
	struct supervisor sup; /* the planner's callbacks and plan */
	struct meter meter;    /* the pool's load; the adaptive pool */
};

/* The one master of this process (master.c). */
extern struct master *the_master;

/* master.c */
void reconcile(struct master *m);

/* dispatch.c: the serving generation, and during a rolling reload the
 * pending one: whose serving workers may be given connections. */
int gen_takes_connections(const struct master *m, unsigned gen);

/* relay.c: a draining worker's idle connection, passed on or closed. */
struct msg;
void relay_connection(struct master *m, struct proc *from,
		      const struct msg *msg);
/* Whether another worker could take from's connections now: what its QUIT
 * tells it, so that it keeps answering with keep-alive only then. */
int relay_possible(struct master *m, const struct proc *from);

/* tell.c */
void proc_signal(const struct proc *p, int sig);
int proc_send(struct master *m, struct proc *p, uint32_t type, const void *data,
	      size_t len, const int *fds, int nfds);
void quit_proc(struct master *m, struct proc *p);
void terminate_proc(struct master *m, struct proc *p);
void escalate(struct master *m, struct proc *p, uint64_t now);

/* reuseport.c */
void slot_sockets_close(struct master *m, int slot);
int slot_sockets_open(struct master *m, int slot);
void slot_sockets_retire(struct master *m);

/* exit.c */
int exec_done(struct proc *p);
void describe_exit(int status, char *buf, size_t len);
uint64_t slot_backoff(struct master *m, int slot, uint64_t lived, int ready);
void proc_gone(struct master *m, struct proc *p);
void reap(struct master *m);

/* handover.c */
void upgrade_checked(struct master *m, int status);
const char *upgrade_start(struct master *m, const char *by);
int upgrade_resume(struct master *m);

/* report.c */
void log_status(struct master *m, const struct proc *p,
		const unsigned char *data, size_t len);
int mark_ready(struct master *m, struct proc *p);
void on_worker_chan(herd_loop *l, int fd, unsigned events, void *arg);
/* What a worker that is gone sent and was not read yet (its relays). */
void worker_chan_last(struct proc *p);

/* notify.c */
void on_notify(herd_loop *l, int fd, unsigned events, void *arg);
int notify_open(struct master *m);

/* apply.c: the planner's actions done (supervise.h) */
void pool_facts(const struct master *m, struct pool_facts *pool);
void abandon_pending(struct master *m, const char *why);
/* A turn of the policy while the pool runs; its deadlines, also while it
 * stops. Each returns when to look again. */
uint64_t supervise(struct master *m);
uint64_t enforce_deadlines(struct master *m);

/* unready.c */
uint64_t warn_unready(struct master *m, uint64_t now);

/* ctl.c; a string returned is why it refused, NULL when it acted */
const char *graceful_stop(struct master *m);
void fast_stop(struct master *m);
const char *reload(struct master *m);
void reopen(struct master *m);
const char *scale(struct master *m, int delta);
/* The pool's size to n, within 1 and the fd limit; why (or NULL) for the
 * log. */
const char *scale_to(struct master *m, int n, const char *why);
void control_command(void *arg, const char *cmd, const char *args,
		     struct ctl_reply *r);
void command_signals(sigset_t *set);
void signal_commands(struct master *m, const unsigned *got);

/* dispatch.c */
void leftover_keep(struct master *m, struct proc *p);

/* status.c */
uint64_t sample_rss(struct master *m, uint64_t now);
void rss_watch(struct master *m);

/* spawn.c */
int spawn_one(struct master *m, unsigned gen, int slot);

#endif
