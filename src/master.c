/*
 * master.c: the master process: the process table, signals, spawning and
 * reaping, and the lifecycle (reload, graceful and fast stop, scaling).
 *
 * Events (signals, channel messages, timers) only record facts; one
 * function, reconcile(), then compares the table with what should be
 * running and acts: start what is missing, retire what is surplus, kill
 * what overstayed its deadline, promote a ready generation. Being level-
 * triggered, it cannot miss an edge, and every path goes through it.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/un.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include "channel.h"
#include "cmsg.h"
#include "internal.h"
#include "log.h"
#include "loop.h"
#include "accept.h"
#include "control.h"
#include "mesh.h"
#include "orphans.h"
#include "output.h"
#include "proc.h"
#include "ratelimit.h"
#include "rights.h"
#include "rss.h"
#include "upgrade.h"

#define BACKOFF_FIRST_MS  100 /* second quick death in a row */
#define BACKOFF_MAX_MS	  5000
#define HEALTHY_MS	  10000 /* alive this long: the back-off resets */
#define PLANNED_GAP_MS	  100	/* planned exits: starts in a slot this apart */
#define START_LIMIT	  8 /* quick deaths in a row before ever ready: exit 1 */
#define STATUS_BURST	  20	/* worker status lines logged per second */
#define PENDING_READY_MS  30000 /* a reload not ready by then is abandoned */
#define FAST_STOP_MS	  3000	/* SIGTERM, then SIGKILL after this */
#define MAX_DRAINING_GENS 2	/* older generations are killed outright */
#define RECV_BATCH	  64
/* Workers started in one turn of the loop: a reload of 512 goes in turns
 * of this many, and signals, control clients and passfd's accepts are
 * served between them. Each start is a fork and its introduction. */
#define SPAWN_BATCH  2
#define REAP_BATCH   64	   /* exits handled in one turn */
#define RETIRE_BATCH 16	   /* old workers draining at once: retire_old() */
#define STARTING_MAX 4	   /* in-process workers starting at once */
#define EXEC_POLL_MS 10	   /* ready delay over, exec not yet seen */
#define RSS_WATCH_MS 10000 /* RSS is sampled this long after a status */
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
/* Generations alive at once: serving, pending and the draining ones. */
#define GENS_ALIVE (MAX_DRAINING_GENS + 2)
/* Start-up: a pool not ready this long after the start is warned about,
 * and again at this interval, until it is. */
#define UNREADY_FIRST_MS 5000
#define UNREADY_EVERY_MS 30000

enum master_state { M_RUNNING, M_QUITTING, M_TERMINATING };

struct slot_state {
	unsigned fails;	     /* quick deaths in a row */
	unsigned restarts;   /* crashes of its serving workers, ever */
	uint64_t not_before; /* back-off: no respawn before this time */
	uint64_t paced;	     /* after a planned exit: no start before this */
	unsigned proven; /* its program of this generation served, then ended
			    as planned: a successor is ready once it runs */
	int *fds; /* reuseport, slots above 0: its sockets, -1 for unix */
};

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
	int spawn_held;	       /* the budget is what STARTING_MAX leaves */
	struct mesh mesh;      /* the peers' open-channel mesh */
	herd_timer *wake;
	herd_timer *sd_watchdog; /* WATCHDOG=1 to herd's service manager */
	uint64_t sd_watchdog_ms;
	struct control *control;    /* --control */
	struct control *metrics;    /* --metrics */
	uint64_t started;	    /* ms, monotonic */
	unsigned reloads;	    /* completed, upgrades included */
	unsigned reloads_abandoned; /* never ready, or failed to start */
	unsigned long restarts;	    /* crashes of serving workers, ever */
	uint64_t rss_wanted;   /* status asked for RSS: sample until then */
	uint64_t unready_warn; /* start-up: when to say what is awaited */
	int recheck;	       /* passfd: a worker reached --max-requests */
	unsigned long long gone_total; /* connections of exited workers */
	struct orphans orphans;	       /* at stop, what the pool left behind */
	int notify_fd;	      /* --notify: the children's NOTIFY_SOCKET */
	char notify_name[64]; /* its abstract name, '@' first */
	struct slot_state slots[MAX_WORKERS];
};

/* Signals are per process, and so is the master: channel callbacks find it
 * here rather than through a back pointer in every table entry. */
static struct master *the_master;

static void reconcile(struct master *m);
static void fast_stop(struct master *m);
static void passfd_update(struct master *m);

static uint64_t earlier(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* ---- talking to workers -------------------------------------------------- */

static void proc_signal(const struct proc *p, int sig)
{
	if (spawn_signal(p->pidfd, p->pid, sig) == -1 && errno != ESRCH)
		log_warn("signal %d to worker %d (pid %d): %s", sig, p->slot,
			 (int)p->pid, strerror(errno));
}

/* Takes ownership of fds, as chan_send does. */
static int proc_send(struct master *m, struct proc *p, uint32_t type,
		     const void *data, size_t len, const int *fds, int nfds)
{
	struct msg_hdr hdr = {type, (uint32_t)len, m->pid, -1, m->gen, 0};

	if (p->chan == NULL) {
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		errno = EPIPE;
		return -1;
	}
	return chan_send(p->chan, &hdr, data, fds, nfds);
}

/* An in-process worker is told on its channel. So is a passfd program: its
 * stop signal would cut short what waits on the channel (most runtimes die
 * of TERM), so the signal comes only if it is still there at the shutdown
 * timeout (enforce_deadlines). Other programs have only the signal. */
static void quit_proc(struct master *m, struct proc *p)
{
	int sent = proc_send(m, p, MSG_QUIT, NULL, 0, NULL, 0) == 0;

	if (m->h->argv != NULL && !sent) {
		proc_signal(p, m->h->stop_signal);
		p->signalled = 1;
	} else if (!sent) {
		proc_signal(p, SIGQUIT);
	}
	p->state = PS_DRAINING;
	p->deadline = herd_loop_now(m->loop) + m->h->shutdown_ms;
}

static void terminate_proc(struct master *m, struct proc *p)
{
	uint64_t fast = earlier(m->h->shutdown_ms, FAST_STOP_MS);
	uint64_t deadline = herd_loop_now(m->loop) + fast;

	int sent = proc_send(m, p, MSG_TERMINATE, NULL, 0, NULL, 0) == 0;

	if (m->h->argv != NULL || !sent)
		proc_signal(p, SIGTERM);
	p->state = PS_STOPPING;
	p->deadline = p->deadline ? earlier(p->deadline, deadline) : deadline;
}

/* ---- spawning ------------------------------------------------------------ */

/* ---- reuseport: sockets per slot ----------------------------------------- */

static void slot_sockets_close(struct master *m, int slot)
{
	struct slot_state *s = &m->slots[slot];

	if (s->fds == NULL)
		return;
	for (size_t i = 0; i < m->h->naddrs; i++)
		if (s->fds[i] >= 0)
			close(s->fds[i]);
	free(s->fds);
	s->fds = NULL;
}

static int slot_open_one(struct master *m, int slot)
{
	struct slot_state *s = &m->slots[slot];
	herd *h = m->h;

	if ((s->fds = malloc(h->naddrs * sizeof(int))) == NULL)
		return -1;
	for (size_t i = 0; i < h->naddrs; i++)
		s->fds[i] = -1;
	for (size_t i = 0; i < h->naddrs; i++) {
		if (!h->addrs[i].reuseport)
			continue;
		if ((s->fds[i] = addr_bind_another(&h->addrs[i])) == -1 ||
		    (h->argv != NULL && fd_blocking(s->fds[i], 1) == -1)) {
			int e = errno;

			log_error("slot %d: cannot listen on %s: %s", slot,
				  h->addrs[i].text, strerror(e));
			slot_sockets_close(m, slot);
			errno = e;
			return -1;
		}
	}
	return 0;
}

/* Slot 0 uses the sockets bound at start (with SO_REUSEPORT); every other
 * slot gets its own on the same addresses, kept across respawns and
 * reloads, so a slot's backlog outlives its worker. They are opened in
 * slot order, lower slots first, so that the kernel's index of a slot's
 * socket in the reuseport group is the slot's number (see addr_steer). */
static int slot_sockets_open(struct master *m, int slot)
{
	if (m->h->mode != HERD_MODE_REUSEPORT)
		return 0;
	for (int k = 1; k <= slot; k++)
		if (m->slots[k].fds == NULL && slot_open_one(m, k) == -1)
			return -1;
	return 0;
}

/* A retired slot's sockets close once no worker of the slot is left (the
 * steering sent it nothing new meanwhile), and only from the top slot
 * down: the kernel fills a closed socket's place in the group with the
 * last one, and the top one is the last, so index == slot still holds. */
static void slot_sockets_retire(struct master *m)
{
	for (int s = MAX_WORKERS - 1; s >= m->nworkers && s > 0; s--) {
		if (m->slots[s].fds == NULL)
			continue;
		for (size_t i = 0; i < m->procs.n; i++)
			if (m->procs.v[i]->slot == s)
				return;
		slot_sockets_close(m, s); /* what is queued is reset */
	}
}

/* reuseport: new connections go only to the slots that have a ready
 * worker. A slot being retired, or whose worker died or is starting, gets
 * none, so nothing waits in its backlog; the kernel's own hash would give
 * every socket in the group its share. Before anything is ready, every
 * slot takes its share and the backlogs wait for the workers. */
static void steer(struct master *m)
{
	unsigned char ready[MAX_WORKERS] = {0};
	uint16_t live[MAX_WORKERS];
	size_t n = 0;
	int failed = 0;
	herd *h = m->h;

	if (h->mode != HERD_MODE_REUSEPORT)
		return;
	for (size_t i = 0; i < m->procs.n; i++)
		if (m->procs.v[i]->state == PS_READY)
			ready[m->procs.v[i]->slot] = 1;
	for (int s = 0; s < m->nworkers; s++)
		if (ready[s])
			live[n++] = (uint16_t)s;
	for (int s = 0; n == 0 && s < m->nworkers; s++)
		live[s] = (uint16_t)s;
	if (n == 0)
		n = (size_t)m->nworkers;
	if (n == m->nsteer && memcmp(live, m->steer, n * sizeof(*live)) == 0)
		return;
	for (size_t i = 0; i < h->naddrs; i++) {
		if (!h->addrs[i].reuseport ||
		    addr_steer(h->addrs[i].fd, live, n) == 0)
			continue;
		failed = 1; /* not recorded: tried again on the next pass */
		if (!m->steer_warned++)
			log_warn("reuseport: cannot steer connections on %s "
				 "(%s); the kernel spreads them over every "
				 "slot's socket",
				 h->addrs[i].text, strerror(errno));
	}
	memcpy(m->steer, live, n * sizeof(*live));
	m->nsteer = failed ? 0 : n;
	log_debug("reuseport: new connections go to %zu of %d slots", n,
		  m->nworkers);
}

/* In the child: the listeners this worker accepts on, by mode. The child's
 * copy of h is its own to change. */
static void child_listeners(struct master *m, int slot)
{
	const int *mine = m->slots[slot].fds;
	herd *h = m->h;

	for (size_t i = 0; i < h->naddrs; i++) {
		if (h->mode == HERD_MODE_PASSFD)
			h->addrs[i].fd = -1; /* the master accepts */
		else if (mine != NULL && mine[i] >= 0)
			h->addrs[i].fd = mine[i];
	}
}

/* nginx's worker_cpu_affinity auto: slot i on the i-th allowed CPU. */
static void child_pin_cpu(int slot)
{
	cpu_set_t allowed, one;
	int k;

	if (sched_getaffinity(0, sizeof(allowed), &allowed) == -1 ||
	    CPU_COUNT(&allowed) == 0)
		return;
	k = slot % CPU_COUNT(&allowed);
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &allowed) || k-- > 0)
			continue;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		if (sched_setaffinity(0, sizeof(one), &one) == -1)
			log_warn("worker %d: cannot pin to CPU %d: %s", slot,
				 cpu, strerror(errno));
		return;
	}
}

/* A new worker leaves the master's memory alone: it stays reachable
 * through the_master (so the sanitizers and valgrind see no leak), and it
 * is never written, so never copied. Freeing it, as this did, wrote to
 * every page of the master's heap in every new worker: copy-on-write
 * faults in proportion to the table, which made a reload at 512 workers
 * a third slower. Its fds were closed by spawn_close_except(). */
static void child_run(struct master *m, int slot, unsigned gen, int chan_fd,
		      int inbox_fd)
{
	herd *h = m->h;
	int keep[MAX_LISTEN + 6];
	size_t n = 0;
	int code;

	child_listeners(m, slot);
	if (h->cpu_affinity)
		child_pin_cpu(slot);
	keep[n++] = 0;
	keep[n++] = 1;
	keep[n++] = 2;
	keep[n++] = log_fd();
	keep[n++] = chan_fd;
	keep[n++] = inbox_fd;
	for (size_t i = 0; i < h->naddrs; i++)
		keep[n++] = h->addrs[i].fd;
	if (spawn_close_except(keep, n) == -1) {
		log_error("worker %d: closing inherited fds: %s", slot,
			  strerror(errno));
		_exit(1);
	}
	if (spawn_drop_privileges(h, m->pid) == -1) {
		log_error("worker %d: cannot become user %s: %s", slot, h->user,
			  strerror(errno));
		_exit(HERD_EXIT_CONFIG);
	}
	code = worker_main(h, slot, gen, chan_fd, inbox_fd);
	herd_free(h);
	log_close();
	exit(code);
}

/* ---- programs ------------------------------------------------------------ */

static const char *const child_vars[] = {
    "LISTEN_FDS",      "LISTEN_PID",   "LISTEN_FDNAMES",  "HERD_SLOT",
    "HERD_GENERATION", "HERD_WORKERS", "HERD_CHANNEL_FD", "NOTIFY_SOCKET",
    "WATCHDOG_USEC",   "WATCHDOG_PID",
};
#define NCHILD_VARS (sizeof(child_vars) / sizeof(child_vars[0]))

static int is_child_var(const char *entry)
{
	for (size_t i = 0; i < NCHILD_VARS; i++) {
		size_t n = strlen(child_vars[i]);

		if (strncmp(entry, child_vars[i], n) == 0 && entry[n] == '=')
			return 1;
	}
	return 0;
}

__attribute__((format(printf, 3, 4))) static void env_add(char **env, size_t *n,
							  const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&env[*n], fmt, ap) != -1)
		(*n)++;
	va_end(ap);
}

/* herd's environment without what herd sets, then what herd sets. The
 * child's memory: exec replaces it. */
static char **child_env(struct master *m, int slot, unsigned gen, size_t nsocks)
{
	extern char **environ;
	herd *h = m->h;
	size_t n = 0, cap = NCHILD_VARS + 1;
	pid_t pid = getpid();
	char **env, names[MAX_LISTEN * (FDNAME_MAX + 1)];

	for (char **e = environ; *e != NULL; e++)
		cap++;
	if ((env = calloc(cap, sizeof(*env))) == NULL)
		return NULL;
	for (char **e = environ; *e != NULL; e++)
		if (!is_child_var(*e))
			env[n++] = *e;
	env_add(env, &n, "HERD_SLOT=%d", slot);
	env_add(env, &n, "HERD_GENERATION=%u", gen);
	env_add(env, &n, "HERD_WORKERS=%d", m->nworkers);
	if (h->mode == HERD_MODE_PASSFD) {
		env_add(env, &n, "HERD_CHANNEL_FD=3");
	} else if (h->handoff == HERD_HANDOFF_SYSTEMD) {
		/* In fd order; a reuseport slot's sockets are its own but
		 * stand for the same addresses, so take the same names. */
		char *w = names;

		for (size_t i = 0; i < nsocks; i++) {
			if (i > 0)
				*w++ = ':';
			addr_fdname(&h->addrs[i], w, FDNAME_MAX + 1);
			w += strlen(w);
		}
		*w = '\0';
		env_add(env, &n, "LISTEN_FDS=%zu", nsocks);
		env_add(env, &n, "LISTEN_PID=%d", (int)pid);
		env_add(env, &n, "LISTEN_FDNAMES=%s", names);
	}
	if (h->notify)
		env_add(env, &n, "NOTIFY_SOCKET=%s", m->notify_name);
	if (h->notify && h->watchdog_ms > 0) {
		env_add(env, &n, "WATCHDOG_USEC=%llu",
			(unsigned long long)h->watchdog_ms * 1000);
		env_add(env, &n, "WATCHDOG_PID=%d", (int)pid);
	}
	env[n] = NULL;
	return env;
}

/* In a new child of a program's pool: its output pipe (out_w, unless -1)
 * on fds 1 and 2, its sockets (or its channel) at fd 3 on, or its one
 * socket at fd 0; privileges dropped; exec. Any failure is reported on
 * err_fd, for the master to log with its errno. */
static void child_exec(struct master *m, int slot, unsigned gen, int chan_fd,
		       int err_fd, int out_w)
{
	herd *h = m->h;
	struct spawn_layout lay = {.n = 0, .first = 3};
	int keep[MAX_LISTEN + 5];
	size_t n = 0;
	char **env;

	/* First, while out_w is still itself: its number may be one the
	 * layout fills. Fds 1 and 2 hold nothing the layout needs: its fds
	 * are above 2, since herd_run() opened 0-2 before any socket. */
	if (out_w >= 0 && output_child(out_w) == -1)
		spawn_fail(err_fd, SPAWN_LAYOUT, errno);
	child_listeners(m, slot);
	if (h->cpu_affinity)
		child_pin_cpu(slot);
	if (chan_fd >= 0) {
		lay.fds[lay.n++] = chan_fd;
	} else if (h->handoff == HERD_HANDOFF_FD0) {
		lay.fds[lay.n++] = h->addrs[0].fd;
		lay.first = 0;
	} else {
		for (size_t i = 0; i < h->naddrs; i++)
			lay.fds[lay.n++] = h->addrs[i].fd;
	}
	keep[n++] = 0;
	keep[n++] = 1;
	keep[n++] = 2;
	keep[n++] = err_fd;
	for (size_t i = 0; i < lay.n; i++)
		keep[n++] = lay.fds[i];
	if (spawn_close_except(keep, n) == -1)
		spawn_fail(err_fd, SPAWN_LAYOUT, errno);
	if (spawn_drop_privileges(h, m->pid) == -1)
		spawn_fail(err_fd, SPAWN_PRIVILEGES, errno);
	if ((env = child_env(m, slot, gen, lay.n)) == NULL)
		spawn_fail(err_fd, SPAWN_LAYOUT, errno);
	spawn_exec(h->argv, env, &lay, err_fd);
	_exit(127); /* not reached: spawn_exec exits on failure */
}

static void on_worker_chan(herd_loop *l, int fd, unsigned events, void *arg);

/* Returns -1 when the worker was started but cannot be spoken to: it is
 * being stopped, and its slot should back off. */
static int proc_started(struct master *m, struct proc *p, pid_t pid,
			int chan_fd, int inbox_w)
{
	uint64_t n = m->h->max_requests;

	/* Up to a tenth more, so that workers started together do not all
	 * recycle together. */
	p->request_limit = n ? n + (uint64_t)random() % (n / 10 + 1) : 0;
	p->pid = pid;
	p->state = PS_STARTING;
	p->started = herd_loop_now(m->loop);
	p->inbox_w = inbox_w;
	if ((p->pidfd = spawn_pidfd(pid)) == -1)
		log_debug("pidfd_open: %s; signalling by pid", strerror(errno));
	if (chan_fd < 0) /* a program outside passfd mode: signals only */
		p->chan = NULL;
	else if ((p->chan = chan_new(chan_fd, MSG_TO_MASTER, m->loop,
				     on_worker_chan, p)) == NULL) {
		log_error("worker %d: no channel: %s", p->slot,
			  strerror(errno));
		close(chan_fd);
		terminate_proc(m, p);
		return -1;
	}
	log_info("worker %d started (pid %d, generation %u)", p->slot, (int)pid,
		 p->gen);
	return 0; /* mesh_update() tells its peers, at the end of the turn */
}

static int spawn_one(struct master *m, unsigned gen, int slot)
{
	int flags = SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC;
	int ext = m->h->argv != NULL, passfd = m->h->mode == HERD_MODE_PASSFD;
	int ch[2] = {-1, -1}, ib[2] = {-1, -1}, ep[2] = {-1, -1}, ow = -1;
	struct output *out = NULL;
	struct proc *p = NULL;
	pid_t pid = -1;

	/* In-process workers: a channel, and an inbox if workers read their
	 * peers' messages (herd_on_message): without, the peer mesh, N^2 fds
	 * passed at every reload of N, would serve nobody. Programs: an exec
	 * error pipe, an output pipe unless --inherit-output, and a channel in
	 * passfd mode only. Out of fds, the start fails like any other. */
	if (slot_sockets_open(m, slot) == -1 ||
	    ((!ext || passfd) && socketpair(AF_UNIX, flags, 0, ch) == -1) ||
	    (!ext && m->h->on_message != NULL &&
	     socketpair(AF_UNIX, flags, 0, ib) == -1) ||
	    (ext && pipe2(ep, O_CLOEXEC | O_NONBLOCK) == -1) ||
	    (output_captured(m->h) &&
	     (out = output_open(m->loop, slot, gen, &ow)) == NULL) ||
	    (p = proc_add(&m->procs)) == NULL)
		goto fail;
	/* The master's end and the inbox take no fds: refused before the
	 * worker exists, so none can be queued (see rights.h). */
	if (ch[0] >= 0)
		rights_refuse(ch[0]);
	if (ib[0] >= 0)
		rights_refuse(ib[0]);
	p->slot = slot;
	p->gen = gen;
	/* A program's channel is blocking, the simplest to read; it is its
	 * own, and the master reads its copy with MSG_DONTWAIT. */
	if (ext && passfd && fd_blocking(ch[1], 1) == -1)
		goto fail;
	if ((pid = spawn_fork(m->pid)) == 0) {
		if (ext)
			child_exec(m, slot, gen, ch[1], ep[1], ow);
		child_run(m, slot, gen, ch[1], ib[0]);
	}
	if (pid == -1)
		goto fail;
	if (passfd)
		p->worker_end = ch[1]; /* see leftover_keep() */
	else if (ch[1] >= 0)
		close(ch[1]);
	if (ib[0] >= 0)
		close(ib[0]);
	if (ep[1] >= 0)
		close(ep[1]);
	if (ow >= 0)
		close(ow);
	output_started(out, pid);
	p->out = out;
	p->exec_err = ep[0];
	return proc_started(m, p, pid, ch[0], ib[1]);
fail:
	log_error("cannot start worker %d: %s", slot, strerror(errno));
	if (p != NULL)
		proc_remove(&m->procs, p);
	output_discard(out);
	if (ow >= 0)
		close(ow);
	for (int i = 0; i < 2; i++) {
		if (ch[i] >= 0)
			close(ch[i]);
		if (ib[i] >= 0)
			close(ib[i]);
		if (ep[i] >= 0)
			close(ep[i]);
	}
	return -1;
}

/* ---- exits --------------------------------------------------------------- */

/* A program's exec: 1 done (its error pipe closed on exec), 0 not yet,
 * -1 failed (p->exec_error says why). In-process workers: 1. */
static int exec_done(struct proc *p)
{
	ssize_t n;

	if (p->exec_failed)
		return -1;
	if (p->exec_err < 0)
		return 1;
	n = read(p->exec_err, p->exec_error, sizeof(p->exec_error));
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return 0;
	close(p->exec_err);
	p->exec_err = -1;
	if (n == (ssize_t)sizeof(p->exec_error)) {
		p->exec_failed = 1;
		return -1;
	}
	return 1; /* EOF: the exec happened */
}

static void describe_exit(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d",
			 WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)%s",
			 WTERMSIG(status), strsignal(WTERMSIG(status)),
			 WCOREDUMP(status) ? ", core dumped" : "");
	else
		snprintf(buf, len, "ended with wait status %#x", status);
}

/* The respawn delay for a slot whose worker just died.
 *
 * A worker that was ready and had lived BACKOFF_FIRST_MS (proven) showed
 * that it can start: it is replaced at once, as nginx does, whatever killed
 * it (a crash on one request, the OOM killer, an operator), and the slot's
 * count of quick deaths starts again.
 *
 * Any other death (before ready, within BACKOFF_FIRST_MS, or by the
 * watchdog) is a quick death: 0 the first time, then doubling from
 * BACKOFF_FIRST_MS up to BACKOFF_MAX_MS while the slot's workers keep dying
 * so; one that lived HEALTHY_MS starts the count again. A crash loop at
 * start-up backs off; a pool under fire keeps its strength, and the master
 * never forks for a slot more often than every BACKOFF_FIRST_MS unless the
 * worker before lived that long. */
static uint64_t slot_backoff(struct master *m, int slot, uint64_t lived,
			     int ready)
{
	struct slot_state *s = &m->slots[slot];
	int proven = ready && lived >= BACKOFF_FIRST_MS;
	uint64_t delay;

	if (proven || lived >= HEALTHY_MS)
		s->fails = 0;
	if (proven)
		delay = 0;
	else if (++s->fails == 1)
		delay = 0;
	else if (s->fails - 2 >= 6)
		delay = BACKOFF_MAX_MS;
	else
		delay = earlier((uint64_t)BACKOFF_FIRST_MS << (s->fails - 2),
				BACKOFF_MAX_MS);
	s->not_before = herd_loop_now(m->loop) + delay;
	return delay;
}

/* A program that exits with status 0 on its own (herd did not ask it to
 * stop) after its exec ended as planned: php-cgi does so after
 * PHP_FCGI_MAX_REQUESTS. Under load that is well within 100 ms and the
 * ready delay, so neither its age nor its readiness may make it a crash.
 * What herd cannot see is whether it served; `true` looks the same. */
static int planned_exit(const struct master *m, int status, int ran)
{
	return m->h->argv != NULL && ran && WIFEXITED(status) &&
	       WEXITSTATUS(status) == 0;
}

/* The successor of a planned exit starts at once, but never sooner than
 * PLANNED_GAP_MS after its predecessor started, in the serving and the
 * pending generation alike: a program that exits 0 at every start costs
 * 10 forks a second per slot, not a tight loop, and one that recycles
 * after PHP_FCGI_MAX_REQUESTS=500 is never held. */
static uint64_t slot_pace(struct master *m, int slot, uint64_t lived)
{
	uint64_t delay = lived >= PLANNED_GAP_MS ? 0 : PLANNED_GAP_MS - lived;

	m->slots[slot].paced = herd_loop_now(m->loop) + delay;
	return delay;
}

static void abandon_pending(struct master *m, const char *why)
{
	log_error("reload abandoned: generation %u %s; generation %u keeps "
		  "serving",
		  m->pending, why, m->gen);
	sdnotify("READY=1\nSTATUS=reload abandoned: generation %u %s; "
		 "generation %u serves",
		 m->pending, why, m->gen);
	for (size_t i = 0; i < m->procs.n; i++)
		if (m->procs.v[i]->gen == m->pending &&
		    m->procs.v[i]->state != PS_STOPPING)
			terminate_proc(m, m->procs.v[i]);
	m->pending = 0;
	m->upgraded = 0; /* the upgrade's reload is over, too */
	m->reloads_abandoned++;
}

static void leftover_keep(struct master *m, struct proc *p);

static void proc_gone(struct master *m, struct proc *p)
{
	m->gone_total += p->total;
	mesh_gone(&m->mesh, p);
	leftover_keep(m, p);
	chan_free(p->chan);
	if (p->pidfd >= 0)
		close(p->pidfd);
	if (p->inbox_w >= 0)
		close(p->inbox_w);
	if (p->exec_err >= 0)
		close(p->exec_err);
	output_gone(p->out);
	proc_remove(&m->procs, p);
}

/* shutdown(2) by one process on a listening socket it shares stops the
 * socket for all: the whole pool would stop accepting, for good. Programs
 * do it (some on their way out), so after every worker's exit the master
 * makes sure its TCP listeners still listen. One getsockopt each. */
static void listeners_check(struct master *m)
{
	const herd *h = m->h;

	for (int sl = 0; sl < MAX_WORKERS; sl++) {
		if (sl > 0 && m->slots[sl].fds == NULL)
			continue;
		for (size_t i = 0; i < h->naddrs; i++) {
			int fd = sl == 0 ? h->addrs[i].fd : m->slots[sl].fds[i];
			int r = fd < 0 ? 0 : addr_relisten(fd);

			if (r == 1)
				log_warn(
				    "%s: the listening socket was shut down "
				    "(by a worker?); listening again",
				    h->addrs[i].text);
			else if (r == -1)
				log_error("%s: the listening socket: %s",
					  h->addrs[i].text, strerror(errno));
		}
	}
}

static void proc_exited(struct master *m, struct proc *p, int status)
{
	int slot = p->slot, crashed = p->state <= PS_READY;
	int ready = p->state == PS_READY;
	unsigned gen = p->gen;
	uint64_t lived = herd_loop_now(m->loop) - p->started;
	char why[96], what[160];

	int ran = exec_done(p), never_ran = ran == -1;
	struct spawn_error se = {p->exec_error[0], p->exec_error[1]};

	describe_exit(status, why, sizeof(why));
	snprintf(what, sizeof(what), "worker %d (pid %d, generation %u) %s",
		 slot, (int)p->pid, gen, why);
	if (never_ran)
		log_error("worker %d (pid %d): %s%s%s: %s", slot, (int)p->pid,
			  spawn_stage_name(se.stage),
			  se.stage == SPAWN_EXEC ? " " : "",
			  se.stage == SPAWN_EXEC ? m->h->argv[0] : "",
			  strerror(se.err));
	proc_gone(m, p);
	listeners_check(m);
	if (!crashed || m->state != M_RUNNING) {
		log_info("%s", what);
	} else if (planned_exit(m, status, ran == 1)) {
		/* Not a crash: no back-off, no restart counted; in a pending
		 * generation it is replaced, the reload not abandoned. */
		m->slots[slot].proven = gen;
		log_info("%s: a planned exit; replacing it in %llu ms", what,
			 (unsigned long long)slot_pace(m, slot, lived));
	} else if (never_ran && !m->announced) {
		/* Not a crash loop to wait out: the program cannot run. */
		log_error("%s: the program could not be started; stopping",
			  what);
		m->exit_code = 1;
		fast_stop(m);
	} else if (gen == m->pending) {
		log_error("%s before its generation was ready", what);
		abandon_pending(m, "did not start");
	} else if (!m->announced && m->h->argv == NULL && WIFEXITED(status) &&
		   WEXITSTATUS(status) == HERD_EXIT_CONFIG) {
		/* A worker that cannot start before the pool ever served is a
		 * configuration error: say so and stop, not respawn forever. */
		log_error(
		    "%s: its start failed before the pool was ever ready; "
		    "stopping",
		    what);
		m->exit_code = 1;
		fast_stop(m);
	} else if (gen == m->gen && slot < m->nworkers) {
		uint64_t delay = slot_backoff(m, slot, lived, ready);

		m->slots[slot].restarts++;
		m->restarts++;
		if (!m->announced && m->slots[slot].fails >= START_LIMIT) {
			/* As systemd's StartLimitBurst: a pool that never
			 * served says so with its exit status, rather than
			 * retry every 5 s where nobody is told (a container's
			 * orchestrator restarts it, or reports it). */
			log_error("%s; %u quick deaths in a row before the "
				  "pool was ever ready: giving up",
				  what, m->slots[slot].fails);
			m->exit_code = 1;
			fast_stop(m);
		} else {
			log_warn("%s; restarting in %llu ms", what,
				 (unsigned long long)delay);
		}
	} else {
		log_warn("%s", what);
	}
}

/* ---- binary upgrade ------------------------------------------------------ */

static void on_notify(herd_loop *l, int fd, unsigned events, void *arg);
static void reload(struct master *m);

/* The state the new image needs, pointing into m (fds stay m's). */
/* The names given (by -l or by socket activation), "" for a derived one,
 * ':'-joined: a malloc'ed string, or NULL with errno. */
static char *upgrade_names(const herd *h)
{
	char *names = malloc(h->naddrs * (FDNAME_MAX + 1) + 1), *w = names;

	if (names == NULL)
		return NULL;
	for (size_t i = 0; i < h->naddrs; i++)
		w += sprintf(w, "%s%s", i > 0 ? ":" : "", h->addrs[i].name);
	*w = '\0';
	return names;
}

static int upgrade_collect(struct master *m, struct upgrade_state *st)
{
	herd *h = m->h;
	uint64_t now = herd_loop_now(m->loop);
	int top = 0;

	memset(st, 0, sizeof(*st));
	st->nworkers = m->nworkers;
	st->gen = m->gen;
	st->last_gen = m->last_gen;
	st->naddrs = (int32_t)h->naddrs;
	for (size_t i = 0; i < h->naddrs; i++)
		st->addr_fds[i] = h->addrs[i].fd;
	st->notify_fd = m->notify_fd;
	memcpy(st->notify_name, m->notify_name, sizeof(st->notify_name));
	if ((st->names = upgrade_names(h)) == NULL)
		return -1;
	for (int sl = 1; sl < MAX_WORKERS; sl++)
		if (m->slots[sl].fds != NULL)
			top = sl;
	st->nslots = top;
	st->slot_fds = calloc((size_t)top * h->naddrs + 1, sizeof(int32_t));
	st->procs = calloc(m->procs.n + 1, sizeof(*st->procs));
	if (st->slot_fds == NULL || st->procs == NULL)
		return -1;
	for (int sl = 1; sl <= top; sl++)
		for (size_t i = 0; i < h->naddrs; i++)
			st->slot_fds[(size_t)(sl - 1) * h->naddrs + i] =
			    m->slots[sl].fds ? m->slots[sl].fds[i] : -1;
	for (size_t i = 0; i < m->procs.n; i++) {
		struct proc *p = m->procs.v[i];
		struct upgrade_proc *u = &st->procs[st->nprocs++];

		if (p->chan != NULL)
			chan_flush(p->chan); /* best effort: a queue is lost */
		u->pid = p->pid;
		u->pidfd = p->pidfd;
		u->slot = p->slot;
		u->state = p->state;
		u->killed = p->killed;
		u->gen = p->gen;
		u->chan = p->chan != NULL ? chan_fd(p->chan) : -1;
		u->inbox_w = p->inbox_w;
		u->worker_end = p->worker_end;
		u->exec_err = p->exec_err;
		u->active = p->active;
		u->total = p->total;
		u->assigned = p->assigned;
		u->age_ms = now - p->started;
		u->deadline_left_ms =
		    p->deadline == 0
			? 0
			: (p->deadline > now ? p->deadline - now : 1);
	}
	return output_collect(st);
}

static void upgrade_exec_now(struct master *m)
{
	struct upgrade_state st;
	herd *h = m->h;

	if (upgrade_collect(m, &st) == -1) {
		log_error("upgrade: %s; carrying on", strerror(errno));
		upgrade_free(&st);
		return;
	}
	log_info("upgrade: executing %s (pid %d stays)", h->upgrade_path,
		 (int)m->pid);
	sdnotify("RELOADING=1\nMONOTONIC_USEC=%llu", sdnotify_monotonic_usec());
	upgrade_exec(&st, h->upgrade_path, h->upgrade_argv);
	log_error("upgrade: cannot execute %s: %s; carrying on",
		  h->upgrade_path, strerror(errno));
	sdnotify("READY=1");
	upgrade_free(&st);
}

static void describe_exit(int status, char *buf, size_t len);

static void upgrade_checked(struct master *m, int status)
{
	char why[96];

	m->check_pid = 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		if (m->state == M_RUNNING)
			upgrade_exec_now(m);
		return;
	}
	describe_exit(status, why, sizeof(why));
	log_error("upgrade: '%s --check' %s; the running binary carries on",
		  m->h->upgrade_path, why);
}

/* SIGUSR2: first the new binary checks the arguments it will be given, in
 * a child of its own, so that a broken binary never replaces a working
 * master; the master goes on meanwhile (upgrade_checked). */
static int upgrade_start(struct master *m)
{
	herd *h = m->h;
	size_t n = 0;
	char **argv;
	pid_t pid;

	if (h->upgrade_path == NULL) {
		log_warn("upgrade: not enabled; SIGUSR2 ignored");
		return -1;
	}
	if (m->state != M_RUNNING || m->check_pid != 0 || m->pending != 0) {
		log_warn("upgrade: %s; SIGUSR2 ignored",
			 m->state != M_RUNNING ? "stopping"
			 : m->check_pid != 0   ? "a check is running"
					       : "a reload is under way");
		return -1;
	}
	while (h->upgrade_argv[n] != NULL)
		n++;
	if ((argv = calloc(n + 2, sizeof(*argv))) == NULL) {
		log_error("upgrade: %s", strerror(errno));
		return -1;
	}
	argv[0] = h->upgrade_path;
	argv[1] = "--check";
	for (size_t i = 1; i < n; i++)
		argv[i + 1] = h->upgrade_argv[i];
	if ((pid = spawn_fork(m->pid)) == 0) {
		int keep[] = {0, 1, 2};
		sigset_t none;

		sigemptyset(&none);
		if (spawn_close_except(keep, 3) == -1 ||
		    sigprocmask(SIG_SETMASK, &none, NULL) == -1)
			_exit(127);
		execv(argv[0], argv);
		_exit(127);
	}
	free(argv);
	if (pid == -1) {
		log_error("upgrade: cannot fork the check: %s",
			  strerror(errno));
		return -1;
	}
	m->check_pid = pid;
	m->check_deadline = herd_loop_now(m->loop) + h->upgrade_timeout_ms;
	log_info("upgrade: checking %s (pid %d)", h->upgrade_path, (int)pid);
	return 0;
}

/* The new image: the old one's workers, sockets and counters are ours. */
static int upgrade_resume(struct master *m)
{
	struct upgrade_state *st = m->h->resume;
	uint64_t now = herd_loop_now(m->loop);
	herd *h = m->h;

	m->nworkers = st->nworkers;
	m->gen = st->gen;
	m->last_gen = st->last_gen;
	m->announced = 1;
	m->upgraded = 1;
	for (int sl = 1; sl <= st->nslots && sl < MAX_WORKERS; sl++) {
		int32_t *fds = st->slot_fds + (size_t)(sl - 1) * h->naddrs;
		int any = 0;

		for (size_t i = 0; i < h->naddrs; i++)
			any |= fds[i] >= 0;
		if (!any)
			continue;
		if ((m->slots[sl].fds = malloc(h->naddrs * sizeof(int))) ==
		    NULL)
			return -1;
		for (size_t i = 0; i < h->naddrs; i++)
			m->slots[sl].fds[i] = fds[i];
	}
	if (st->notify_fd >= 0) {
		m->notify_fd = st->notify_fd;
		rights_refuse(m->notify_fd); /* an older image may not have */
		memcpy(m->notify_name, st->notify_name, sizeof(m->notify_name));
		if (herd_loop_add(m->loop, m->notify_fd, HERD_READ, on_notify,
				  m) == -1)
			return -1;
	}
	for (size_t i = 0; i < st->nprocs; i++) {
		const struct upgrade_proc *u = &st->procs[i];
		struct proc *p = proc_add(&m->procs);

		if (p == NULL)
			return -1;
		p->pid = u->pid;
		p->pidfd = u->pidfd;
		p->slot = u->slot;
		p->gen = u->gen;
		p->state = (enum proc_state)u->state;
		p->killed = u->killed;
		p->inbox_w = u->inbox_w;
		p->introduced = 1; /* the old image introduced them */
		p->worker_end = u->worker_end;
		p->exec_err = u->exec_err;
		p->active = u->active;
		p->total = u->total;
		p->assigned = u->assigned;
		p->started = now > u->age_ms ? now - u->age_ms : 0;
		p->deadline =
		    u->deadline_left_ms ? now + u->deadline_left_ms : 0;
		p->watchdog_at = now + h->watchdog_ms;
		if (u->chan >= 0 &&
		    (p->chan = chan_new(u->chan, MSG_TO_MASTER, m->loop,
					on_worker_chan, p)) == NULL)
			return -1;
	}
	if (output_resume(m->loop, st, &m->procs) == -1)
		return -1;
	log_info("upgrade: resumed as %s %s (pid %d) with %zu workers of "
		 "generation %u",
		 h->upgrade_path ? h->upgrade_path : "herd", HERD_VERSION,
		 (int)m->pid, m->procs.n, m->gen);
	/* Then as a reload: a new generation on the new binary, the old one
	 * retired once it is ready, or kept if it is not in time. */
	reload(m);
	m->pending_ms = h->upgrade_timeout_ms;
	return 0;
}

/* At most REAP_BATCH a turn: when a reload's old generation of 512 exits
 * at once, the rest waits a turn rather than the loop waiting for all. */
static void reap(struct master *m)
{
	m->reap_more = 0;
	for (int i = 0; i < REAP_BATCH; i++) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		struct proc *p;

		if (pid == -1 && errno == EINTR)
			continue;
		if (pid <= 0)
			return; /* 0: none exited; ECHILD: no children */
		if ((p = proc_by_pid(&m->procs, pid)) != NULL)
			proc_exited(m, p, status);
		else if (pid == m->check_pid)
			upgrade_checked(m, status);
		else
			log_debug("reaped pid %d, not a worker", (int)pid);
	}
	m->reap_more = 1; /* the wake timer comes back at once */
}

/* ---- messages from workers ----------------------------------------------- */

/* A worker's status line, made printable and bounded before it is logged;
 * at most STATUS_BURST lines a second from all workers together, so that a
 * chatty or hostile worker cannot fill the master's disk. */
static void log_status(struct master *m, const struct proc *p,
		       const unsigned char *data, size_t len)
{
	enum rl_verdict v;
	unsigned long unsaid;
	char text[201];
	size_t n = len < sizeof(text) - 1 ? len : sizeof(text) - 1;

	v = ratelimit(&m->status_rl, herd_loop_now(m->loop), STATUS_BURST,
		      &unsaid);
	if (unsaid > 0)
		log_warn("worker status: %lu lines were not logged", unsaid);
	if (v == RL_DROP_FIRST)
		log_warn("worker status: more than %d lines in a "
			 "second; not logging the rest of it",
			 STATUS_BURST);
	if (v != RL_LOG)
		return;
	for (size_t i = 0; i < n; i++)
		text[i] =
		    data[i] >= 0x20 && data[i] < 0x7f ? (char)data[i] : '?';
	text[n] = '\0';
	log_info("worker %d status: %s", p->slot, text);
}

static void mark_ready(struct master *m, struct proc *p)
{
	p->state = PS_READY;
	p->watchdog_at = herd_loop_now(m->loop) + m->h->watchdog_ms;
}

/* Returns whether the message changed what reconcile() looks at. */
static int worker_message(struct proc *p, const struct msg *msg)
{
	struct msg_load load;

	switch (msg->hdr.type) {
	case MSG_READY:
		if (p->state != PS_STARTING)
			return 0;
		mark_ready(the_master, p);
		return 1;
	case MSG_HEARTBEAT: /* also the in-process watchdog's sign of life */
		p->watchdog_at = herd_loop_now(the_master->loop) +
				 the_master->h->watchdog_ms;
		memcpy(&load, msg->data, sizeof(load));
		p->active = load.active;
		p->total = load.total;
		/* --max-requests reached: reconcile() starts its successor */
		return the_master->h->max_requests && !p->recycle &&
		       the_master->h->argv == NULL &&
		       p->total >= p->request_limit;
	case MSG_APP:
		if (msg->hdr.dst == HERD_TO_MASTER)
			log_status(the_master, p, msg->data, msg->hdr.len);
		break;
	default: /* the channel accepts no other type */
		break;
	}
	return 0;
}

static void on_worker_chan(herd_loop *l, int fd, unsigned events, void *arg)
{
	struct master *m = the_master;
	struct proc *p = arg;
	struct msg msg;
	int r = 0, changed = 0;

	(void)l;
	(void)fd;
	(void)events;
	for (int i = 0; i < RECV_BATCH; i++) {
		if ((r = chan_recv(p->chan, &msg)) != 1)
			break;
		changed |= worker_message(p, &msg);
	}
	if (r == -1) {
		/* The worker is exiting (or closed its end): SIGCHLD follows,
		 * and signals still reach it through its pidfd. */
		log_debug("worker %d (pid %d) closed its channel", p->slot,
			  (int)p->pid);
		chan_free(p->chan);
		p->chan = NULL;
		changed = 1;
	}
	/* Heartbeats alone change nothing but passfd's view of the load: no
	 * O(workers^2) pass for them. */
	if (changed)
		reconcile(m);
	else
		passfd_update(m);
}

/* ---- sd_notify from programs -------------------------------------------- */

#define NOTIFY_MAX 4096 /* systemd's own limit on a notification */

/* One notification: newline-separated assignments. Returns whether it
 * changed what reconcile() looks at. */
static int notify_message(struct master *m, struct proc *p, char *text,
			  size_t len)
{
	struct sd_note n;
	int changed = 0;

	sdnotify_parse(text, len, &n);
	if (n.status != NULL)
		log_status(m, p, (const unsigned char *)n.status, n.status_len);
	if (n.ready && p->state == PS_STARTING) {
		mark_ready(m, p);
		changed = 1;
	}
	if (n.watchdog)
		p->watchdog_at = herd_loop_now(m->loop) + m->h->watchdog_ms;
	if (n.trigger) {
		p->watchdog_at = herd_loop_now(m->loop);
		p->watchdog_trigger = 1;
		changed = 1;
	}
	return changed;
}

static void on_notify(herd_loop *l, int fd, unsigned events, void *arg)
{
	struct master *m = arg;
	int changed = 0;

	(void)l;
	(void)events;
	for (int i = 0; i < RECV_BATCH; i++) {
		char buf[NOTIFY_MAX + 1];
		union {
			struct cmsghdr h;
			/* room for all a sender can attach: see rights.h */
			char b[CMSG_SPACE(sizeof(struct ucred)) +
			       CMSG_SPACE(RIGHTS_MAX * sizeof(int))];
		} cm;
		struct iovec iov = {buf, NOTIFY_MAX};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = &cm,
				    .msg_controllen = sizeof(cm)};
		struct proc *p = NULL;
		pid_t pid = 0;
		ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			if (errno != EAGAIN)
				log_warn("notify socket: %s", strerror(errno));
			break;
		}
		rights_close_msg(&mh); /* fd stores are not kept */
		/* The sender is who the kernel says, not what the message
		 * claims: only a worker's own process is heard. */
		if (cmsg_pid(&mh, &pid) == 0)
			p = proc_by_pid(&m->procs, pid);
		if (p == NULL || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
			log_debug("notify: dropped a message from pid %d%s",
				  (int)pid, p == NULL ? ", not a worker" : "");
			continue;
		}
		changed |= notify_message(m, p, buf, (size_t)n);
	}
	if (changed)
		reconcile(m);
}

/* An abstract socket: no file to clean up, nothing a dropped user cannot
 * reach. Its name is unguessable, and senders are checked anyway. */
static int notify_open(struct master *m)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	unsigned char rnd[8];
	int one = 1;
	socklen_t len;

	if (!m->h->notify || m->h->resume != NULL) /* resumed: it is kept */
		return 0;
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return -1;
	snprintf(m->notify_name, sizeof(m->notify_name),
		 "@herd-%d-%02x%02x%02x%02x%02x%02x%02x%02x", (int)m->pid,
		 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6],
		 rnd[7]);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
			  strlen(m->notify_name));
	memcpy(sa.sun_path + 1, m->notify_name + 1, strlen(m->notify_name) - 1);
	m->notify_fd =
	    socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (m->notify_fd == -1)
		return -1;
	rights_refuse(m->notify_fd); /* fd stores are not kept */
	if (setsockopt(m->notify_fd, SOL_SOCKET, SO_PASSCRED, &one,
		       sizeof(one)) == -1 ||
	    bind(m->notify_fd, (struct sockaddr *)&sa, len) == -1)
		return -1;
	return herd_loop_add(m->loop, m->notify_fd, HERD_READ, on_notify, m);
}

/* Programs that speak neither sd_notify nor the channel's READY are ready
 * after the ready delay. Returns when to look again. */
static uint64_t ready_by_delay(struct master *m, uint64_t now)
{
	uint64_t next = UINT64_MAX;

	if (m->h->argv == NULL || m->h->notify)
		return next;
	for (size_t i = 0; i < m->procs.n; i++) {
		struct proc *p = m->procs.v[i];
		uint64_t at = p->started + m->h->ready_delay_ms;

		if (p->state != PS_STARTING)
			continue;
		/* Its predecessor in the slot ran the same program and served:
		 * waiting out the delay again would keep a generation whose
		 * workers live less than it (php-cgi under load) from ever
		 * being ready, and its reload from completing. */
		if (m->slots[p->slot].proven == p->gen)
			at = p->started;
		if (now < at) {
			next = earlier(next, at);
			continue;
		}
		/* Not before the program runs: a fork slow to exec, or an exec
		 * that failed, is not a ready worker. */
		switch (exec_done(p)) {
		case 1:
			mark_ready(m, p);
			break;
		case 0:
			next = earlier(next, now + EXEC_POLL_MS);
			break;
		}
	}
	return next;
}

/* systemd's WatchdogSec for each worker: SIGABRT (a core to look at),
 * SIGKILL after FAST_STOP_MS, and a replacement at once. */
static uint64_t enforce_watchdog(struct master *m, uint64_t now)
{
	uint64_t next = UINT64_MAX;

	if (m->h->watchdog_ms == 0)
		return next;
	for (size_t i = 0; i < m->procs.n; i++) {
		struct proc *p = m->procs.v[i];

		if (p->state != PS_READY)
			continue;
		if (now < p->watchdog_at) {
			next = earlier(next, p->watchdog_at);
			continue;
		}
		if (m->h->argv == NULL) {
			/* An in-process worker's loop sends a heartbeat at
			 * least three times per watchdog period: silence means
			 * a handler that does not return. */
			log_warn("worker %d (pid %d): watchdog: its loop has "
				 "not run for %llu ms (stuck in a handler?); "
				 "killing it",
				 p->slot, (int)p->pid,
				 (unsigned long long)m->h->watchdog_ms);
			proc_signal(p, SIGKILL);
			p->killed = 1;
		} else {
			log_warn("worker %d (pid %d): watchdog: %s; killing it",
				 p->slot, (int)p->pid,
				 p->watchdog_trigger
				     ? "it sent WATCHDOG=trigger"
				     : "no WATCHDOG=1 in time");
			proc_signal(p, SIGABRT);
		}
		p->state = PS_STOPPING;
		p->deadline = now + FAST_STOP_MS;
		/* A failure like a crash: a program that hangs at once must
		 * not be replaced (and dump core) in a tight loop. */
		log_warn("worker %d: restarting in %llu ms", p->slot,
			 (unsigned long long)slot_backoff(m, p->slot,
							  now - p->started, 0));
	}
	return next;
}

/* ---- lifecycle commands -------------------------------------------------- */

static void graceful_stop(struct master *m)
{
	if (m->state != M_RUNNING)
		return;
	m->state = M_QUITTING;
	m->pending = 0;
	sdnotify("STOPPING=1");
	log_info("graceful stop: draining %zu workers (at most %llu ms)",
		 m->procs.n, (unsigned long long)m->h->shutdown_ms);
	for (size_t i = 0; i < m->procs.n; i++)
		if (m->procs.v[i]->state <= PS_READY)
			quit_proc(m, m->procs.v[i]);
}

static void fast_stop(struct master *m)
{
	if (m->state == M_TERMINATING)
		return;
	m->state = M_TERMINATING;
	m->pending = 0;
	sdnotify("STOPPING=1");
	log_info("fast stop: terminating %zu workers", m->procs.n);
	for (size_t i = 0; i < m->procs.n; i++)
		if (m->procs.v[i]->state != PS_STOPPING)
			terminate_proc(m, m->procs.v[i]);
}

static void reload(struct master *m)
{
	if (m->state != M_RUNNING) {
		log_info("reload ignored: stopping");
		return;
	}
	/* systemd's Type=notify-reload: RELOADING=1 with the time, then
	 * READY=1 when done (promote_pending, abandon_pending). A resumed
	 * upgrade's reload is the one the old image announced before its
	 * exec: a second RELOADING=1 would start another. */
	if (!m->upgraded)
		sdnotify("RELOADING=1\nMONOTONIC_USEC=%llu",
			 sdnotify_monotonic_usec());
	if (m->h->reload_signal != 0) { /* the program reloads itself */
		log_info("reload: sending signal %d (%s) to the workers",
			 m->h->reload_signal, strsignal(m->h->reload_signal));
		for (size_t i = 0; i < m->procs.n; i++)
			if (m->procs.v[i]->state <= PS_READY)
				proc_signal(m->procs.v[i], m->h->reload_signal);
		sdnotify("READY=1");
		return;
	}
	if (m->pending != 0) {
		log_info("reload: generation %u was not ready yet; retiring it",
			 m->pending);
		for (size_t i = 0; i < m->procs.n; i++)
			if (m->procs.v[i]->gen == m->pending &&
			    m->procs.v[i]->state <= PS_READY)
				quit_proc(m, m->procs.v[i]);
	}
	m->pending = ++m->last_gen;
	m->pending_since = herd_loop_now(m->loop);
	m->pending_ms = PENDING_READY_MS;
	log_info("reload: starting generation %u", m->pending);
}

/* A program hears of it on its passfd channel, and by --reopen-signal
 * only if it named one: USR1's default action kills Python, Node and Go. */
static void reopen_program(struct master *m, struct proc *p)
{
	if (p->chan != NULL)
		proc_send(m, p, MSG_REOPEN, NULL, 0, NULL, 0);
	if (m->h->reopen_signal != 0)
		proc_signal(p, m->h->reopen_signal);
}

static void reopen(struct master *m)
{
	int reopened = log_reopen() == 0 && m->h->log_file != NULL;

	for (size_t i = 0; i < m->procs.n; i++) {
		int fd;

		if (m->h->argv != NULL) { /* a program reopens its own */
			reopen_program(m, m->procs.v[i]);
			continue;
		}
		/* The master's new file, as a worker that dropped privileges
		 * may not open the path again. */
		fd = reopened ? fcntl(log_fd(), F_DUPFD_CLOEXEC, 0) : -1;
		proc_send(m, m->procs.v[i], MSG_REOPEN, NULL, 0, &fd, fd >= 0);
	}
	log_info("log reopened");
}

int master_max_workers(const herd *h)
{
	int passfd = h->mode == HERD_MODE_PASSFD, out = output_captured(h);
	/* passfd: the dead workers' channels kept for what they never read;
	 * programs: output pipes their descendants still hold */
	rlim_t base = FDS_BASE + h->naddrs + (passfd ? LEFTOVER_MAX : 0) +
		      (out ? OUTPUT_LINGER_MAX : 0);
	struct rlimit rl;
	rlim_t room;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur == RLIM_INFINITY)
		return MAX_WORKERS;
	if (rl.rlim_cur <= base)
		return 0;
	/* passfd: the copy of the worker's end; reuseport: each slot's own
	 * sockets, shared by its generations */
	room = (rl.rlim_cur - base) /
	       ((FDS_PER_WORKER + passfd + out) * GENS_ALIVE +
		(h->mode == HERD_MODE_REUSEPORT ? h->naddrs : 0));
	return room < MAX_WORKERS ? (int)room : MAX_WORKERS;
}

static void scale(struct master *m, int delta)
{
	int n = m->nworkers + delta, max = master_max_workers(m->h);

	/* Stopping, reconcile() starts nothing: a new count would be logged
	 * as a change that never happens. */
	if (m->state != M_RUNNING) {
		if (delta != 0)
			log_warn("workers: %+d ignored: herd is stopping",
				 delta);
		return;
	}
	if (n < 1)
		n = 1;
	if (n > max && n > m->nworkers) {
		log_warn("workers: cannot grow past %d within the fd limit "
			 "(ulimit -n)",
			 max);
		n = max > m->nworkers ? max : m->nworkers;
	}
	if (n == m->nworkers)
		return;
	log_info("workers: %d -> %d", m->nworkers, n);
	m->nworkers = n;
	sdnotify("STATUS=%d workers, generation %u", n, m->gen);
}

/* ---- passfd: the master accepts and hands connections out ---------------- */

/* Passed to the worker and not yet reported received by it. */
static uint64_t inflight(const struct proc *p)
{
	return p->assigned > p->total ? p->assigned - p->total : 0;
}

/* Only the serving generation gets connections (a reload stops sending to
 * the old one), and never a worker whose channel is backed up. */
static int can_take(const struct master *m, const struct proc *p)
{
	return p->gen == m->gen && p->state == PS_READY && p->chan != NULL &&
	       chan_queued(p->chan) == 0 && !chan_dead(p->chan) &&
	       inflight(p) < INFLIGHT_MAX;
}

/* The worker for the next connection, or NULL when none can take it: one
 * pass over the table, starting past the last worker given one, so rr
 * takes turns and least's ties do not all go to one worker. Only
 * pass_connection() moves that start: a pick that finds nothing to accept
 * must not use up a worker's turn. */
static struct proc *pick(struct master *m)
{
	size_t n = m->procs.n, chosen = 0;
	uint64_t best_load = UINT64_MAX;
	struct proc *best = NULL;

	for (size_t k = 0; k < n; k++) {
		size_t i = (m->rr + k) % n;
		struct proc *p = m->procs.v[i];
		uint64_t load = p->active + inflight(p);

		if (!can_take(m, p) || load >= best_load)
			continue;
		best = p;
		best_load = load;
		chosen = i;
		if (m->h->balance == HERD_BALANCE_RR)
			break; /* the first that can take it */
	}
	m->picked = chosen;
	return best;
}

/* p is what pick() just returned. */
static void pass_connection(struct master *m, struct proc *p, int fd)
{
	m->rr = m->picked + 1; /* the next search starts past this one */
	p->assigned++;
	if (m->h->argv != NULL && m->h->max_requests && !p->recycle &&
	    p->assigned >= p->request_limit)
		m->recheck = 1; /* a program's count is the master's */
	/* can_take() saw an empty queue and a live channel, so this sends or
	 * queues; it fails (and closes fd) only when memory runs out. */
	if (proc_send(m, p, MSG_CONNECTION, NULL, 0, &fd, 1) == -1)
		log_warn("connection for worker %d dropped: %s", p->slot,
			 strerror(errno));
}

/* A passfd worker's channel outlives the worker: the master holds a copy
 * of the worker's end, so the connections sent to a worker that died (or
 * exited) before receiving them are still in that end's receive queue,
 * not reset with it. They go to other workers as soon as one can take
 * them, before any new connection is accepted. */
static void leftover_keep(struct master *m, struct proc *p)
{
	struct chan *c;

	if (p->worker_end < 0)
		return;
	if (p->chan != NULL)
		chan_flush(p->chan); /* what is queued joins the rest */
	if ((c = chan_new(p->worker_end, MSG_TO_WORKER, NULL, NULL, NULL)) ==
	    NULL) {
		close(p->worker_end);
		p->worker_end = -1;
		return;
	}
	p->worker_end = -1;
	if (m->nleftover == LEFTOVER_MAX) { /* the oldest is dropped */
		chan_free(m->leftover[0]);
		memmove(m->leftover, m->leftover + 1,
			(LEFTOVER_MAX - 1) * sizeof(*m->leftover));
		m->nleftover--;
	}
	m->leftover[m->nleftover++] = c;
}

static void leftover_dispatch(struct master *m)
{
	unsigned long moved = 0;
	struct proc *p;
	struct msg msg;

	while (m->nleftover > 0 && (p = pick(m)) != NULL) {
		struct chan *c = m->leftover[0];

		if (chan_recv(c, &msg) == 1) {
			if (msg.hdr.type == MSG_CONNECTION) {
				pass_connection(m, p, msg.fds[0]);
				moved++;
			} else {
				for (int i = 0; i < msg.nfds; i++)
					close(msg.fds[i]);
			}
			continue;
		}
		chan_free(c); /* drained */
		memmove(m->leftover, m->leftover + 1,
			(m->nleftover - 1) * sizeof(*m->leftover));
		m->nleftover--;
	}
	if (moved > 0)
		log_info("passfd: %lu connections a gone worker never received "
			 "were handed to others",
			 moved);
}

static void accept_failed(struct master *m, int e)
{
	if (accept_pause(&m->starved, herd_loop_now(m->loop)))
		log_warn("accept: %s; pausing accepts for %d ms at a time",
			 strerror(e), ACCEPT_PAUSE_MS);
}

static void on_listener(herd_loop *l, int lfd, unsigned events, void *arg)
{
	struct master *m = arg;

	(void)l;
	(void)events;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct proc *p = pick(m);
		int fd;

		if (p == NULL)
			break; /* every worker is full: the backlog waits */
		if ((fd = addr_accept(lfd)) == -1) {
			if (errno != EAGAIN)
				accept_failed(m, errno);
			break;
		}
		accept_resumed(&m->starved, herd_loop_now(m->loop), NULL, NULL);
		pass_connection(m, p, fd);
	}
	if (m->recheck) {
		m->recheck = 0;
		reconcile(m);
	}
	passfd_update(m);
}

static int any_can_take(const struct master *m)
{
	for (size_t i = 0; i < m->procs.n; i++)
		if (can_take(m, m->procs.v[i]))
			return 1;
	return 0;
}

/* Watches the listeners exactly while a connection could be handed out:
 * when every worker is full the master stops reading them, and the
 * backlog waits in the kernel instead of in the master. */
static void passfd_update(struct master *m)
{
	herd *h = m->h;
	int want;

	if (h->mode != HERD_MODE_PASSFD)
		return;
	if (m->state == M_RUNNING)
		leftover_dispatch(m);
	want = m->state == M_RUNNING &&
	       !accept_paused(&m->starved, herd_loop_now(m->loop)) &&
	       any_can_take(m);
	if (want == m->accepting)
		return;
	for (size_t i = 0; i < h->naddrs; i++) {
		if (want && herd_loop_add(m->loop, h->addrs[i].fd, HERD_READ,
					  on_listener, m) == -1)
			log_error("watch %s: %s", h->addrs[i].text,
				  strerror(errno));
		else if (!want)
			herd_loop_del(m->loop, h->addrs[i].fd);
	}
	m->accepting = want;
}

/* ---- recycling ------------------------------------------------------------
 */

/* --max-requests, --max-rss: a worker past a limit is marked; its slot then
 * counts as empty, so fill_slots() starts a successor in the same slot, and
 * the worker drains once that successor is ready. Returns when to look
 * again (RSS is read once a second). */
static uint64_t recycle(struct master *m, uint64_t now)
{
	herd *h = m->h;
	size_t draining = 0;

	(void)now;
	if (!h->max_requests && !h->max_rss_kib)
		return UINT64_MAX;
	/* At most one recycled worker draining per slot: however low the
	 * limits, they cannot pile up past the fd budget. */
	for (size_t i = 0; i < m->procs.n; i++)
		draining += m->procs.v[i]->gen == m->gen &&
			    m->procs.v[i]->state == PS_DRAINING;
	for (size_t i = 0; i < m->procs.n; i++) {
		struct proc *p = m->procs.v[i], *next;
		uint64_t taken = h->argv != NULL ? p->assigned : p->total;
		unsigned long rss;

		if (p->gen != m->gen || p->state != PS_READY)
			continue;
		if (p->recycle) {
			next = proc_in_slot(&m->procs, m->gen, p->slot);
			if (next != NULL && next->state == PS_READY) {
				log_info("worker %d: pid %d takes over from "
					 "pid %d",
					 p->slot, (int)next->pid, (int)p->pid);
				quit_proc(m, p);
			}
			continue;
		}
		if (draining + 1 > (size_t)m->nworkers)
			continue; /* looked at again on the next report */
		if (h->max_requests && taken >= p->request_limit) {
			draining++;
			p->recycle = 1;
			log_info("worker %d (pid %d) took %llu connections "
				 "(limit %llu); replacing it",
				 p->slot, (int)p->pid,
				 (unsigned long long)taken,
				 (unsigned long long)p->request_limit);
		} else if (h->max_rss_kib &&
			   (rss = p->rss_kib) > h->max_rss_kib) {
			draining++;
			p->recycle = 1;
			log_info(
			    "worker %d (pid %d) uses %lu KiB (limit %llu); "
			    "replacing it",
			    p->slot, (int)p->pid, rss,
			    (unsigned long long)h->max_rss_kib);
		}
	}
	return UINT64_MAX; /* sample_rss() says when RSS is read again */
}

/* ---- herd ctl -------------------------------------------------------------
 */

static const char *mode_name(herd_mode mode)
{
	return mode == HERD_MODE_REUSEPORT ? "reuseport"
	       : mode == HERD_MODE_PASSFD  ? "passfd"
					   : "shared";
}

/* RSS is read while --max-rss, or a status asked in the last RSS_WATCH_MS,
 * needs it (rss.h). Returns when to look again. */
static int rss_needed(const struct master *m, uint64_t now)
{
	return m->h->max_rss_kib || now < m->rss_wanted;
}

static uint64_t sample_rss(struct master *m, uint64_t now)
{
	if (!rss_needed(m, now))
		return UINT64_MAX;
	return rss_sample(&m->procs, now);
}

static void status(struct master *m, int json, struct ctl_reply *r)
{
	struct proc *by_slot[MAX_WORKERS];
	uint64_t now = herd_loop_now(m->loop);
	herd *h = m->h;

	if (json) { /* every string through ctl_json_string() */
		ctl_printf(r, "{\"pid\":%d,\"version\":", (int)m->pid);
		ctl_json_string(r, HERD_VERSION);
		ctl_printf(r, ",\"uptime_ms\":%llu,\"mode\":",
			   (unsigned long long)(now - m->started));
		ctl_json_string(r, mode_name(h->mode));
		ctl_printf(r,
			   ",\"workers\":%d,\"generation\":%u,\"pending\":%u,"
			   "\"reloads\":%u,\"listen\":[",
			   m->nworkers, m->gen, m->pending, m->reloads);
		for (size_t i = 0; i < h->naddrs; i++) {
			ctl_printf(r, "%s", i ? "," : "");
			ctl_json_string(r, h->addrs[i].text);
		}
		ctl_printf(r, "],\"procs\":[");
	} else {
		ctl_printf(r,
			   "master   pid %d, herd %s, up %llu s, mode %s, %d "
			   "workers, generation %u%s, %u reloads\n",
			   (int)m->pid, HERD_VERSION,
			   (unsigned long long)(now - m->started) / 1000,
			   mode_name(h->mode), m->nworkers, m->gen,
			   m->pending ? " (next starting)" : "", m->reloads);
		for (size_t i = 0; i < h->naddrs; i++)
			ctl_printf(r, "listen   %s\n", h->addrs[i].text);
		ctl_printf(r, "%-5s %-8s %-4s %-9s %9s %8s %7s %9s %9s\n",
			   "slot", "pid", "gen", "state", "uptime_s",
			   "restarts", "active", "total", "rss_kib");
	}
	for (size_t i = 0; i < m->procs.n; i++) {
		const struct proc *p = m->procs.v[i];
		unsigned long long up = (now - p->started) / 1000;

		if (json) {
			ctl_printf(
			    r,
			    "%s{\"slot\":%d,\"pid\":%d,\"generation\":%u,"
			    "\"state\":",
			    i ? "," : "", p->slot, (int)p->pid, p->gen);
			ctl_json_string(r, proc_state_name(p->state));
			ctl_printf(
			    r,
			    ",\"uptime_ms\":%llu,\"restarts\":%u,\"active\":%u,"
			    "\"total\":%llu,\"rss_kib\":%lu}",
			    (unsigned long long)(now - p->started),
			    m->slots[p->slot].restarts, p->active,
			    (unsigned long long)p->total, p->rss_kib);
		} else
			ctl_printf(r,
				   "%-5d %-8d %-4u %-9s %9llu %8u %7u %9llu "
				   "%9lu\n",
				   p->slot, (int)p->pid, p->gen,
				   proc_state_name(p->state), up,
				   m->slots[p->slot].restarts, p->active,
				   (unsigned long long)p->total, p->rss_kib);
	}
	/* Slots of the serving generation with no worker: backing off. */
	proc_slots(&m->procs, m->gen, by_slot, m->nworkers);
	for (int s = 0; s < m->nworkers; s++) {
		if (by_slot[s] != NULL)
			continue;
		if (json)
			ctl_printf(
			    r,
			    "%s{\"slot\":%d,\"state\":\"backoff\","
			    "\"restarts\":%u,\"next_start_ms\":%llu}",
			    m->procs.n || s ? "," : "", s, m->slots[s].restarts,
			    (unsigned long long)(m->slots[s].not_before > now
						     ? m->slots[s].not_before -
							   now
						     : 0));
		else
			ctl_printf(
			    r,
			    "%-5d %-8s %-4s %-9s next start in %llu "
			    "ms, %u restarts\n",
			    s, "-", "-", "backoff",
			    (unsigned long long)(m->slots[s].not_before > now
						     ? m->slots[s].not_before -
							   now
						     : 0),
			    m->slots[s].restarts);
	}
	if (json)
		ctl_printf(r, "]}\n");
}

/* Prometheus' text format (version 0.0.4). */
static void metrics(struct master *m, struct ctl_reply *r)
{
	static const enum proc_state states[] = {PS_STARTING, PS_READY,
						 PS_DRAINING, PS_STOPPING};
	unsigned long long total = m->gone_total, active = 0;

	ctl_printf(r, "# HELP herd_workers Worker processes by state.\n"
		      "# TYPE herd_workers gauge\n");
	for (size_t k = 0; k < sizeof(states) / sizeof(states[0]); k++) {
		unsigned n = 0;

		for (size_t i = 0; i < m->procs.n; i++)
			n += m->procs.v[i]->state == states[k];
		ctl_printf(r, "herd_workers{state=\"%s\"} %u\n",
			   proc_state_name(states[k]), n);
	}
	for (size_t i = 0; i < m->procs.n; i++) {
		total += m->procs.v[i]->total;
		active += m->procs.v[i]->active;
	}
	ctl_printf(
	    r,
	    "# HELP herd_workers_wanted Worker slots configured.\n"
	    "# TYPE herd_workers_wanted gauge\nherd_workers_wanted %d\n"
	    "# HELP herd_generation The generation serving.\n"
	    "# TYPE herd_generation gauge\nherd_generation %u\n"
	    "# HELP herd_restarts_total Serving workers that died and were "
	    "restarted.\n"
	    "# TYPE herd_restarts_total counter\nherd_restarts_total %lu\n"
	    "# HELP herd_reloads_total Reloads completed (upgrades "
	    "included).\n"
	    "# TYPE herd_reloads_total counter\nherd_reloads_total %u\n"
	    "# HELP herd_connections_active Connections open in workers, as "
	    "last reported.\n"
	    "# TYPE herd_connections_active gauge\n"
	    "herd_connections_active %llu\n"
	    "# HELP herd_connections_total Connections taken by workers, as "
	    "last reported.\n"
	    "# TYPE herd_connections_total counter\n"
	    "herd_connections_total %llu\n"
	    "# HELP herd_uptime_seconds Time since the master started.\n"
	    "# TYPE herd_uptime_seconds gauge\nherd_uptime_seconds %.3f\n",
	    m->nworkers, m->gen, m->restarts, m->reloads, active, total,
	    (double)(herd_loop_now(m->loop) - m->started) / 1000.0);
	ctl_printf(r,
		   "# HELP herd_log_lines_lost_total Log lines the master "
		   "could not write (log full, blocked or too large).\n"
		   "# TYPE herd_log_lines_lost_total counter\n"
		   "herd_log_lines_lost_total %llu\n"
		   "# HELP herd_peer_fds_leaked_total fds peers sent that "
		   "could not be closed without blocking.\n"
		   "# TYPE herd_peer_fds_leaked_total counter\n"
		   "herd_peer_fds_leaked_total %lu\n"
		   "# HELP herd_reloads_abandoned_total Reloads given up: the "
		   "new generation was not ready in time, or did not start.\n"
		   "# TYPE herd_reloads_abandoned_total counter\n"
		   "herd_reloads_abandoned_total %u\n",
		   log_lost_lines(), rights_leaked(), m->reloads_abandoned);
}

/* A status reads RSS figures sample_rss() keeps; the first one after a
 * quiet spell reads them all itself, and starts the sampling. */
static void rss_watch(struct master *m)
{
	uint64_t now = herd_loop_now(m->loop);

	if (!rss_needed(m, now))
		rss_sample_all(&m->procs, now);
	m->rss_wanted = now + RSS_WATCH_MS;
	reconcile(m); /* arms the wake timer for sample_rss() */
}

static void control_command(void *arg, const char *cmd, const char *args,
			    struct ctl_reply *r)
{
	struct master *m = arg;
	char *end;
	long n;

	if (strcmp(cmd, "status") == 0 &&
	    (*args == '\0' || strcmp(args, "--json") == 0)) {
		rss_watch(m);
		status(m, *args != '\0', r);
		return;
	}
	if (strcmp(cmd, "metrics") == 0 && *args == '\0') {
		metrics(m, r);
		return;
	}
	if (*args != '\0' && strcmp(cmd, "scale") != 0) {
		ctl_fail(r, "%s takes no argument", cmd);
		return;
	}
	if (m->state != M_RUNNING && strcmp(cmd, "stop") != 0) {
		ctl_fail(r, "%s refused: herd is stopping", cmd);
		return;
	}
	if (strcmp(cmd, "reload") == 0) {
		reload(m);
	} else if (strcmp(cmd, "quit") == 0) {
		graceful_stop(m);
	} else if (strcmp(cmd, "stop") == 0) {
		fast_stop(m);
	} else if (strcmp(cmd, "reopen") == 0) {
		reopen(m);
	} else if (strcmp(cmd, "upgrade") == 0) {
		if (upgrade_start(m) == -1) {
			ctl_fail(r,
				 "upgrade refused: not enabled, stopping, or "
				 "a check or reload under way (see the log)");
			return;
		}
		ctl_printf(r, "upgrade: checking %s; the log tells the rest\n",
			   m->h->upgrade_path);
	} else if (strcmp(cmd, "scale") == 0) {
		/* Digits only: strtol() also takes a sign, and "+3", which
		 * reads as three more, set the count to 3. N is the count
		 * (herd.1); TTIN and TTOU are the relative steps. */
		errno = 0;
		n = strtol(args, &end, 10);
		if (args[strspn(args, "0123456789")] != '\0' || errno != 0 ||
		    end == args || n < 1 || n > master_max_workers(m->h)) {
			ctl_fail(r,
				 "scale: '%s': expected the number of workers, "
				 "1..%d (no sign: scale sets the count)",
				 args, master_max_workers(m->h));
			return;
		}
		scale(m, (int)n - m->nworkers);
		ctl_printf(r, "workers: %d\n", m->nworkers);
	} else {
		ctl_fail(r,
			 "unknown command '%.64s' (status [--json], metrics, "
			 "reload, quit, stop, reopen, scale N, upgrade)",
			 cmd);
		return;
	}
	log_info("control: %s%s%s", cmd, *args ? " " : "", args);
	reconcile(m);
}

/* ---- reconcile ----------------------------------------------------------- */

/* A passfd program still draining at the shutdown timeout gets its stop
 * signal, and the fast stop's time to act on it before SIGKILL. */
static void escalate(struct master *m, struct proc *p, uint64_t now)
{
	int sig = m->h->stop_signal;

	log_warn("worker %d (pid %d) did not drain in time; sending it "
		 "signal %d (%s)",
		 p->slot, (int)p->pid, sig, strsignal(sig));
	proc_signal(p, sig);
	p->signalled = 1;
	p->deadline = now + earlier(m->h->shutdown_ms, FAST_STOP_MS);
}

static uint64_t enforce_deadlines(struct master *m, uint64_t now)
{
	uint64_t next = UINT64_MAX;

	for (size_t i = 0; i < m->procs.n; i++) {
		struct proc *p = m->procs.v[i];

		if (p->deadline == 0 || p->killed)
			continue;
		if (now >= p->deadline && p->state == PS_DRAINING &&
		    m->h->argv != NULL && !p->signalled)
			escalate(m, p, now);
		if (now < p->deadline) {
			next = earlier(next, p->deadline);
			continue;
		}
		log_warn("worker %d (pid %d) did not %s in time; killing it",
			 p->slot, (int)p->pid,
			 p->state == PS_DRAINING ? "drain" : "stop");
		proc_signal(p, SIGKILL);
		p->killed = 1;
	}
	return next;
}

/* How many workers fill_slots() may start now: SPAWN_BATCH a turn, and
 * in-process workers only while fewer than STARTING_MAX are still on
 * their way to READY (a few ms each). Forked faster than they start, a
 * reload's new workers pile up runnable and take the CPU from the master.
 * A program's start is its own business, and its --ready-delay would make
 * such a bound a crawl. */
static void spawn_budget(struct master *m)
{
	size_t starting = 0;

	if (m->spawn_pass != loop_pass(m->loop)) {
		m->spawn_pass = loop_pass(m->loop);
		m->spawn_budget = SPAWN_BATCH;
	}
	m->spawn_held = 0;
	if (m->h->argv != NULL)
		return;
	for (size_t i = 0; i < m->procs.n; i++)
		starting += m->procs.v[i]->state == PS_STARTING;
	if (starting + m->spawn_budget > STARTING_MAX) {
		m->spawn_budget = starting < STARTING_MAX
				      ? (unsigned)(STARTING_MAX - starting)
				      : 0;
		m->spawn_held = 1;
	}
}

/* Starts what generation gen lacks in slots 0..nworkers-1 (as much as the
 * spawn budget allows) and retires its workers above. Returns when
 * reconcile should look again. */
static uint64_t fill_slots(struct master *m, unsigned gen, uint64_t now)
{
	struct proc *by_slot[MAX_WORKERS];
	uint64_t next = UINT64_MAX;

	proc_slots(&m->procs, gen, by_slot, m->nworkers);
	for (int s = 0; s < m->nworkers && gen != 0; s++) {
		if (by_slot[s] != NULL)
			continue;
		if (gen == m->gen && m->slots[s].not_before > now) {
			next = earlier(next, m->slots[s].not_before);
			continue;
		}
		if (m->slots[s].paced > now) {
			next = earlier(next, m->slots[s].paced);
			continue;
		}
		if (m->spawn_budget == 0) {
			/* The rest on the next turn; or, held back by workers
			 * still starting, when one is ready (or dies). */
			if (!m->spawn_held)
				next = now;
			break;
		}
		m->spawn_budget--;
		if (spawn_one(m, gen, s) == -1) {
			if (gen == m->pending) {
				abandon_pending(m, "could not be started");
				break;
			}
			next = earlier(next, now + slot_backoff(m, s, 0, 0));
		}
	}
	for (size_t i = 0; i < m->procs.n; i++) {
		struct proc *p = m->procs.v[i];

		if (p->gen == gen && p->state <= PS_READY &&
		    p->slot >= m->nworkers)
			quit_proc(m, p);
	}
	return next;
}

static int gen_ready(const struct master *m, unsigned gen)
{
	struct proc *by_slot[MAX_WORKERS];

	proc_slots(&m->procs, gen, by_slot, m->nworkers);
	for (int s = 0; s < m->nworkers; s++)
		if (by_slot[s] == NULL || by_slot[s]->state != PS_READY)
			return 0;
	return 1;
}

static void promote_pending(struct master *m)
{
	if (m->pending == 0 || !gen_ready(m, m->pending))
		return;
	log_info("generation %u ready; retiring generation %u", m->pending,
		 m->gen);
	if (m->upgraded) /* the pid systemd watches: still this one */
		sdnotify("MAINPID=%d\nREADY=1\nSTATUS=%d workers, generation "
			 "%u, upgraded",
			 (int)m->pid, m->nworkers, m->pending);
	else
		sdnotify("READY=1\nSTATUS=%d workers, generation %u",
			 m->nworkers, m->pending);
	m->upgraded = 0; /* retire_old() tells the old ones, in waves */
	m->reloads++;	 /* done: abandoned ones are counted apart */
	m->gen = m->pending;
	m->pending = 0;
	for (int s = 0; s < MAX_WORKERS; s++) { /* fresh back-off, same fds */
		m->slots[s].fails = 0;
		m->slots[s].not_before = 0;
	}
}

/* Of a generation that no longer serves (draining, stopping, or waiting
 * for retire_old() to tell it), and not yet sent SIGKILL. */
static int retiring(const struct master *m, const struct proc *p)
{
	return p->gen != m->gen && p->gen != m->pending && !p->killed;
}

/* Tells the workers of generations that no longer serve to drain, oldest
 * first, at most RETIRE_BATCH draining at a time. All at once, a reload's
 * N old workers exited together: with 512 on two CPUs the master waited
 * a third of a second for one, and nothing is gained, since every slot is
 * served by the new generation already. The rest serve meanwhile. */
static void retire_old(struct master *m)
{
	size_t draining = 0, i;

	for (i = 0; i < m->procs.n; i++)
		draining += retiring(m, m->procs.v[i]) &&
			    m->procs.v[i]->state == PS_DRAINING;
	while (draining < RETIRE_BATCH) {
		struct proc *oldest = NULL;

		for (i = 0; i < m->procs.n; i++) {
			struct proc *p = m->procs.v[i];

			if (retiring(m, p) && p->state <= PS_READY &&
			    (oldest == NULL || p->gen < oldest->gen))
				oldest = p;
		}
		if (oldest == NULL)
			return;
		quit_proc(m, oldest);
		draining++;
	}
}

/* Counts the retiring generations and finds the oldest of them. */
/* The distinct generations retiring, in one pass: a reload's N exits each
 * ran the O(N^2) scan this was. Past the array, a generation may be
 * counted twice: only when there are more than MAX_DRAINING_GENS anyway. */
static size_t retiring_gens(const struct master *m, unsigned *oldest)
{
	unsigned seen[2 * GENS_ALIVE];
	size_t n = 0;

	*oldest = 0;
	for (size_t i = 0; i < m->procs.n; i++) {
		const struct proc *p = m->procs.v[i];
		size_t k = 0;

		if (!retiring(m, p))
			continue;
		if (*oldest == 0 || p->gen < *oldest)
			*oldest = p->gen;
		while (k < n && k < 2 * GENS_ALIVE && seen[k] != p->gen)
			k++;
		if (k < n && k < 2 * GENS_ALIVE)
			continue; /* seen */
		if (n < 2 * GENS_ALIVE)
			seen[n] = p->gen;
		n++;
	}
	return n;
}

static void bound_retiring(struct master *m)
{
	unsigned g;

	while (retiring_gens(m, &g) > MAX_DRAINING_GENS) {
		log_warn(
		    "more than %d generations retiring; killing generation "
		    "%u",
		    MAX_DRAINING_GENS, g);
		for (size_t i = 0; i < m->procs.n; i++) {
			struct proc *p = m->procs.v[i];

			if (p->gen == g && retiring(m, p)) {
				proc_signal(p, SIGKILL);
				p->killed = 1;
			}
		}
	}
}

/* The serving generation's slots at start-up: ready, starting, or empty
 * (backing off after quick deaths, the first of them in slot). */
struct unready {
	unsigned ready, starting, empty;
	int slot;
};

static void unready_count(const struct master *m, struct unready *u)
{
	struct proc *by_slot[MAX_WORKERS];

	*u = (struct unready){0, 0, 0, -1};
	proc_slots(&m->procs, m->gen, by_slot, m->nworkers);
	for (int s = 0; s < m->nworkers; s++) {
		const struct proc *p = by_slot[s];

		if (p == NULL && u->empty++ == 0)
			u->slot = s;
		else if (p != NULL && p->state == PS_READY)
			u->ready++;
		else if (p != NULL)
			u->starting++;
	}
}

/* What a starting worker waits for before it counts as ready. */
static void starting_waits_for(const struct master *m, unsigned n, char *buf,
			       size_t len)
{
	const herd *h = m->h;
	const char *s = n == 1 ? "" : "s";

	if (h->argv == NULL)
		snprintf(buf, len,
			 "READY from %u starting worker%s (a start callback "
			 "that has not returned?)",
			 n, s);
	else if (h->notify)
		snprintf(buf, len, "READY=1 from %u program%s (--notify)", n,
			 s);
	else
		snprintf(buf, len,
			 "%u program%s to run for --ready-delay (%g s)%s", n, s,
			 (double)h->ready_delay_ms / 1000,
			 h->mode == HERD_MODE_PASSFD ? " or send READY" : "");
}

/* A pool that never becomes ready would wait in silence: UNREADY_FIRST_MS
 * after the start, and every UNREADY_EVERY_MS after that, say what it
 * waits for. Returns when to look again. */
static uint64_t warn_unready(struct master *m, uint64_t now)
{
	char starting[160] = "", empty[160] = "";
	struct unready u;

	if (m->announced)
		return UINT64_MAX;
	if (m->unready_warn == 0)
		m->unready_warn = m->started + UNREADY_FIRST_MS;
	if (now < m->unready_warn)
		return m->unready_warn;
	m->unready_warn = now + UNREADY_EVERY_MS;
	unready_count(m, &u);
	if (u.starting > 0)
		starting_waits_for(m, u.starting, starting, sizeof(starting));
	if (u.empty > 0) {
		uint64_t at = m->slots[u.slot].not_before;

		snprintf(empty, sizeof(empty),
			 "%s%u slot%s backing off after quick deaths (slot "
			 "%d: %u in a row, next start in %llu ms)",
			 u.starting > 0 ? "; " : "", u.empty,
			 u.empty == 1 ? "" : "s", u.slot,
			 m->slots[u.slot].fails,
			 (unsigned long long)(at > now ? at - now : 0));
	}
	log_warn("%u of %d workers ready %llu s after start: waiting for %s%s",
		 u.ready, m->nworkers,
		 (unsigned long long)(now - m->started) / 1000, starting,
		 empty);
	return m->unready_warn;
}

static void announce(struct master *m)
{
	if (m->announced || !gen_ready(m, m->gen))
		return;
	m->announced = 1;
	log_info("ready: %d workers (generation %u)", m->nworkers, m->gen);
	sdnotify("READY=1\nSTATUS=%d workers, generation %u", m->nworkers,
		 m->gen);
}

/* The pool is gone; herd exits when what it left is gone too. Only
 * programs: herd is their subreaper, while in-process workers run code of
 * this library's user, whose other children are not the pool's. */
static uint64_t stop_orphans(struct master *m, uint64_t now)
{
	uint64_t grace = m->h->shutdown_ms, next = 0;

	if (m->state == M_TERMINATING)
		grace = earlier(grace, FAST_STOP_MS);
	if (m->h->argv != NULL)
		next = orphans_stop(&m->orphans, now, m->h->stop_signal, grace);
	if (next == 0) {
		loop_stop(m->loop);
		return UINT64_MAX;
	}
	return next;
}

static void reconcile(struct master *m)
{
	uint64_t now = herd_loop_now(m->loop), next = UINT64_MAX;

	if (m->state != M_RUNNING) {
		if (m->procs.n == 0)
			next = stop_orphans(m, now);
	} else {
		if (m->pending != 0 && now - m->pending_since >= m->pending_ms)
			abandon_pending(m, "was not ready in time");
		if (m->pending != 0)
			next = earlier(next, m->pending_since + m->pending_ms);
		next = earlier(next, enforce_watchdog(m, now));
		next = earlier(next, sample_rss(m, now));
		next = earlier(next, recycle(m, now));
		if (m->check_pid != 0 && now >= m->check_deadline) {
			log_error("upgrade: '%s --check' did not finish in "
				  "time; killing it",
				  m->h->upgrade_path);
			kill(m->check_pid, SIGKILL);
			m->check_deadline = UINT64_MAX;
		} else if (m->check_pid != 0) {
			next = earlier(next, m->check_deadline);
		}
		/* Before spawning, so the bound holds at every instant. */
		bound_retiring(m);
		/* Before fill_slots() asks a retired slot's worker to drain:
		 * it takes what is queued on its socket, and nothing more
		 * may arrive there after that. */
		steer(m);
		spawn_budget(m);
		next = earlier(next, fill_slots(m, m->gen, now));
		next = earlier(next, fill_slots(m, m->pending, now));
		mesh_update(&m->mesh, &m->procs, m->gen);
		next = earlier(next, ready_by_delay(m, now));
		promote_pending(m);
		bound_retiring(m);
		retire_old(m);
		announce(m);
		next = earlier(next, warn_unready(m, now));
		steer(m);
		slot_sockets_retire(m);
		if (accept_paused(&m->starved, now))
			next = earlier(next, m->starved.until);
	}
	passfd_update(m);
	/* Last: the steps above may have set new deadlines. */
	next = earlier(next, enforce_deadlines(m, now));
	if (m->reap_more)
		next = now;
	if (next == UINT64_MAX)
		herd_timer_stop(m->wake);
	else
		herd_timer_start(m->wake, next > now ? next - now : 0);
}

static void on_sd_watchdog(herd_loop *l, herd_timer *t, void *arg)
{
	struct master *m = arg;

	(void)l;
	sdnotify("WATCHDOG=1");
	herd_timer_start(t, m->sd_watchdog_ms);
}

static void on_wake(herd_loop *l, herd_timer *t, void *arg)
{
	struct master *m = arg;

	(void)l;
	(void)t;
	if (m->reap_more)
		reap(m);
	reconcile(m);
}

/* ---- signals
 * ------------------------------------------------------------------------------
 */

static const int master_signals[] = {SIGCHLD, SIGHUP,  SIGINT,	SIGTERM,
				     SIGQUIT, SIGUSR1, SIGUSR2, SIGTTIN,
				     SIGTTOU, SIGWINCH};

static void on_signals(herd_loop *l, int fd, unsigned events, void *arg)
{
	struct master *m = arg;
	struct signalfd_siginfo si;
	unsigned got[NSIG] = {0};
	ssize_t n;

	(void)l;
	(void)events;
	while ((n = read(fd, &si, sizeof(si))) == (ssize_t)sizeof(si))
		if (si.ssi_signo < NSIG)
			got[si.ssi_signo]++;
	if (n == -1 && errno != EAGAIN && errno != EINTR)
		log_error("signalfd: %s", strerror(errno));
	/* Stops first, so a worker that died of the same ^C is not
	 * respawned by the reap below. */
	if (got[SIGTERM] || got[SIGINT])
		fast_stop(m);
	if (got[SIGQUIT])
		graceful_stop(m);
	if (got[SIGHUP])
		reload(m);
	if (got[SIGUSR1])
		reopen(m);
	if (got[SIGUSR2])
		upgrade_start(m);
	if (got[SIGTTIN] || got[SIGTTOU])
		scale(m, (int)got[SIGTTIN] - (int)got[SIGTTOU]);
	reap(m);
	reconcile(m);
}

static int setup_signals(struct master *m)
{
	sigset_t set;

	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(master_signals) / sizeof(int); i++)
		sigaddset(&set, master_signals[i]);
	if (sigprocmask(SIG_BLOCK, &set, &m->oldmask) == -1)
		return -1;
	m->masked = 1;
	/* A log reader that went away (herd | head) must cost log lines, not
	 * the master. Children reset it in spawn_fork(). */
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		return -1;
	/* SIGCHLD ignored on entry (inherited across exec) would make the
	 * kernel reap the workers itself: nothing would be seen to die. */
	if (signal(SIGCHLD, SIG_DFL) == SIG_ERR)
		return -1;
	m->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (m->sigfd == -1)
		return -1;
	return herd_loop_add(m->loop, m->sigfd, HERD_READ, on_signals, m);
}

/* ---- run
 * ------------------------------------------------------------------------------------
 */

/* Every exit path ends here with no worker left behind. */
static void kill_all(struct master *m)
{
	for (size_t i = 0; i < m->procs.n; i++)
		proc_signal(m->procs.v[i], SIGKILL);
	while (m->procs.n > 0) {
		int status;
		pid_t pid = waitpid(m->procs.v[0]->pid, &status, 0);

		if (pid == -1 && errno == EINTR)
			continue;
		proc_gone(m, m->procs.v[0]);
	}
}

static void master_free(struct master *m)
{
	kill_all(m);
	if (m->h->argv != NULL) /* none, unless the loop failed */
		orphans_kill_all();
	orphans_free(&m->orphans);
	output_close_all(); /* what the workers' descendants left in pipes */
	if (m->sigfd >= 0)
		close(m->sigfd);
	if (m->h->argv != NULL) /* herd_run() returns to its caller */
		prctl(PR_SET_CHILD_SUBREAPER, 0);
	if (m->notify_fd >= 0)
		rights_close(m->notify_fd); /* datagrams may hold fds */
	control_close(m->control);
	control_close(m->metrics);
	sdnotify_close();
	if (m->masked)
		sigprocmask(SIG_SETMASK, &m->oldmask, NULL);
	for (int s = 0; s < MAX_WORKERS; s++)
		slot_sockets_close(m, s);
	for (size_t i = 0; i < m->nleftover; i++)
		chan_free(m->leftover[i]);
	mesh_free(&m->mesh);
	proctab_free(&m->procs);
	loop_free(m->loop);
	free(m);
	the_master = NULL;
}

int master_run(herd *h)
{
	struct master *m = calloc(1, sizeof(*m));
	int rc = 0;

	if (m == NULL)
		return 1;
	m->h = h;
	m->pid = getpid();
	m->mesh.pid = m->pid;
	m->sigfd = -1;
	m->notify_fd = -1;
	m->spawn_pass = UINT64_MAX; /* no turn yet: a full budget */
	m->nworkers = h->workers > 0 ? h->workers : herd_ncpu();
	m->gen = m->last_gen = 1;
	the_master = m;
	/* Orphans a program leaves behind are reaped here, not left to
	 * whoever started herd (or to nobody, in a container). Programs
	 * only: an in-process worker runs code of this library's user, who
	 * knows what it forks (and under ASan, LeakSanitizer's tracer of a
	 * killed worker would otherwise become the master's child). */
	if (h->argv != NULL && prctl(PR_SET_CHILD_SUBREAPER, 1) == -1)
		log_warn("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
	if ((m->loop = loop_new()) == NULL || setup_signals(m) == -1 ||
	    notify_open(m) == -1 || sdnotify_open() == -1 ||
	    (m->wake = herd_timer_new(m->loop, on_wake, m)) == NULL ||
	    (m->sd_watchdog = herd_timer_new(m->loop, on_sd_watchdog, m)) ==
		NULL) {
		log_error("master start-up failed: %s", strerror(errno));
		master_free(m);
		return 1;
	}
	log_info("herd %s master started (pid %d, %d workers)", HERD_VERSION,
		 (int)m->pid, m->nworkers);
	if ((m->sd_watchdog_ms = sdnotify_watchdog_ms()) > 0)
		on_sd_watchdog(m->loop, m->sd_watchdog, m);
	m->started = herd_loop_now(m->loop);
	srandom((unsigned)m->pid ^ (unsigned)m->started);
	/* At start a control socket or metrics address that cannot be had is
	 * a configuration error. After an upgrade the workers are already
	 * running and serving: losing a side door is no reason to take them
	 * down, so the new image logs it and carries on. */
	if (h->control_path != NULL) {
		char err[256];
		if ((m->control =
			 control_open(m->loop, h->control_path, control_command,
				      m, err, sizeof(err))) == NULL) {
			log_error("%s%s", err,
				  h->resume ? "; serving without it" : "");
			if (h->resume == NULL) {
				master_free(m);
				return 1;
			}
		}
	}
	if (h->metrics) {
		char err[256];

		if (addr_bind(&h->metrics_addr, err, sizeof(err)) == -1 ||
		    (m->metrics = control_open_http(m->loop, h->metrics_addr.fd,
						    control_command, m, err,
						    sizeof(err))) == NULL) {
			h->metrics_addr.fd = -1;
			log_error("--metrics: %s%s", err,
				  h->resume ? "; serving without it" : "");
			if (h->resume == NULL) {
				master_free(m);
				return 1;
			}
		} else {
			h->metrics_addr.fd = -1; /* the control's now */
			log_info("metrics on http://%s/metrics",
				 h->metrics_addr.text);
		}
	}
	if (h->resume != NULL && upgrade_resume(m) == -1) {
		log_error("upgrade: cannot resume: %s", strerror(errno));
		master_free(m);
		return 1;
	}
	reconcile(m);
	if (loop_run(m->loop) == -1)
		rc = 1;
	if (m->exit_code != 0)
		rc = m->exit_code;
	if (m->procs.n > 0)
		log_error("master stopping with %zu workers left; killing them",
			  m->procs.n);
	master_free(m);
	log_info("master exiting with status %d", rc);
	return rc;
}
