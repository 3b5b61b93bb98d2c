/*
 * spawn.c: creating worker processes safely, and signalling them.
 *
 * Every signal is blocked across fork() so the child cannot run a handler
 * (or die of one) before it has reset the dispositions it inherited. The
 * child arms PR_SET_PDEATHSIG and then checks that its parent is still the
 * master, closing the race where the master died before the prctl.
 *
 * A program's child then drops privileges, lays out its fds and execs; a
 * failure on the way reaches the master through a CLOEXEC pipe (EOF there
 * means the exec happened).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <sched.h>
#include <fcntl.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "channel.h"
#include "load.h"
#include "master.h"
#include "output.h"
#include "rights.h"
#include "log.h"

/* Every disposition back to default: one of SIG_IGN survives exec. For a
 * program about to be executed (raw), the signals the C library reserves
 * for itself (32 and 33 in glibc), which sigaction() refuses, go through
 * the system call, with the kernel's structure all zeros: SIG_DFL, no
 * flags, an empty mask, whatever the architecture's field order. An
 * in-process worker keeps them: glibc installs its handlers for them once
 * per process. */
static void reset_dispositions(int raw)
{
	unsigned long zero[8] = {0};
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP &&
		    sigaction(sig, &sa, NULL) == -1 && errno == EINVAL && raw)
			syscall(SYS_rt_sigaction, sig, zero, NULL,
				(size_t)(NSIG - 1) / 8);
}

pid_t spawn_fork(pid_t parent)
{
	sigset_t all, old;
	pid_t pid;
	int e;

	sigfillset(&all);
	if (sigprocmask(SIG_SETMASK, &all, &old) == -1)
		return -1;
	pid = fork();
	if (pid == 0) {
		reset_dispositions(0);
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 ||
		    getppid() != parent)
			_exit(1);
		return 0;
	}
	e = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	errno = e;
	return pid;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

static int close_from_to(unsigned lo, unsigned hi)
{
	if (lo > hi)
		return 0;
	if (syscall(SYS_close_range, lo, hi, 0) == 0)
		return 0;
	if (errno != ENOSYS)
		return -1;
	/* Kernels before 5.9: close one by one, bounded by the fd limit. */
	for (long fd = lo, max = sysconf(_SC_OPEN_MAX);
	     fd <= (long)hi && fd < (max > 0 ? max : 65536); fd++)
		close((int)fd);
	return 0;
}

int spawn_close_except(int *keep, size_t n)
{
	unsigned next = 0;

	qsort(keep, n, sizeof(*keep), cmp_int);
	for (size_t i = 0; i < n; i++) {
		if (keep[i] < 0 || (unsigned)keep[i] < next)
			continue;
		if ((unsigned)keep[i] > next &&
		    close_from_to(next, (unsigned)keep[i] - 1) == -1)
			return -1;
		next = (unsigned)keep[i] + 1;
	}
	return close_from_to(next, ~0u);
}

int spawn_pidfd(pid_t pid)
{
	/* pidfds are always close-on-exec. */
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

int spawn_signal(int pidfd, pid_t pid, int sig)
{
	if (pidfd >= 0)
		return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
	/* Safe only because the master signals nothing it has reaped. */
	return kill(pid, sig);
}

int spawn_drop_privileges(const herd *h, pid_t parent)
{
	if (!h->drop)
		return 0;
	if (setgroups((size_t)h->ngroups, h->groups) == -1 ||
	    setgid(h->gid) == -1 || setuid(h->uid) == -1)
		return -1;
	/* Never run on with a way back to root. */
	if (h->uid != 0 && (setuid(0) != -1 || geteuid() == 0)) {
		errno = EPERM;
		return -1;
	}
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1)
		return -1;
	if (getppid() != parent) {
		errno = ESRCH;
		return -1;
	}
	return 0;
}

const char *spawn_stage_name(int stage)
{
	switch (stage) {
	case SPAWN_PRIVILEGES:
		return "cannot drop privileges";
	case SPAWN_LAYOUT:
		return "cannot set up its fds";
	case SPAWN_EXEC:
		return "cannot execute";
	}
	return "cannot start";
}

void spawn_fail(int err_fd, int stage, int err)
{
	struct spawn_error e = {stage, err};

	if (err_fd >= 0 && write(err_fd, &e, sizeof(e)) != (ssize_t)sizeof(e))
		_exit(127);
	_exit(127);
}

/* Every source is first copied above the target range (close-on-exec), so
 * that putting one in place never overwrites another still to be placed;
 * dup2 then gives each target a copy without close-on-exec. */
static int layout(const struct spawn_layout *lay, int *err_fd)
{
	int high[MAX_LISTEN + 1], above = lay->first + (int)lay->n + 3;
	int moved = fcntl(*err_fd, F_DUPFD_CLOEXEC, above);

	if (moved == -1)
		return -1; /* reported on the pipe as it is */
	*err_fd = moved;
	for (size_t i = 0; i < lay->n; i++)
		if ((high[i] = fcntl(lay->fds[i], F_DUPFD_CLOEXEC, above)) ==
		    -1)
			return -1;
	for (size_t i = 0; i < lay->n; i++)
		if (dup2(high[i], lay->first + (int)i) == -1)
			return -1;
	return 0;
}

void spawn_exec(char **argv, char **env, const struct spawn_layout *lay,
		int err_fd)
{
	sigset_t none;

	if (layout(lay, &err_fd) == -1)
		spawn_fail(err_fd, SPAWN_LAYOUT, errno);
	reset_dispositions(1);
	sigemptyset(&none);
	if (sigprocmask(SIG_SETMASK, &none, NULL) == -1)
		spawn_fail(err_fd, SPAWN_LAYOUT, errno);
	execvpe(argv[0], argv, env);
	spawn_fail(err_fd, SPAWN_EXEC, errno);
}

/* ---- the master's side: a worker's start, and its child until exec ---- */

/* In the child: the listeners this worker accepts on, by mode. The child's
 * copy of h is its own to change. */
static void child_listeners(struct master *m, int slot)
{
	const int *mine = m->slots[slot].fds;
	herd *h = m->h;

	for (size_t i = 0; i < h->naddrs; i++) {
		if (h->conn->passes)
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

/* What a start makes before the fork: the master's ends and the child's. */
struct start_fds {
	int ch[2]; /* the channel: the master's end, the worker's */
	int ib[2]; /* the inbox: the worker's read end, the peers' write end */
	int ep[2]; /* a program's exec error pipe */
	int ow;	   /* a program's output pipe, the child's end */
	struct output *out;
	unsigned load_slot; /* an in-process worker's load entry (load.h) */
};

/* A new worker leaves the master's memory alone: it stays reachable
 * through the_master (so the sanitizers and valgrind see no leak), and it
 * is never written, so never copied. Freeing it, as this did, wrote to
 * every page of the master's heap in every new worker: copy-on-write
 * faults in proportion to the table, which made a reload at 512 workers
 * a third slower. Its fds were closed by spawn_close_except(). */
void child_run(struct master *m, int slot, unsigned gen,
	       const struct start_fds *f)
{
	herd *h = m->h;
	int keep[MAX_LISTEN + 6], chan_fd = f->ch[1], inbox_fd = f->ib[0];
	size_t n = 0;
	int code;

	child_listeners(m, slot);
	load_attach(f->load_slot);
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

static const char *const child_vars[] = {
    "LISTEN_FDS",      "LISTEN_PID",   "LISTEN_FDNAMES",  "HERD_SLOT",
    "HERD_GENERATION", "HERD_WORKERS", "HERD_CHANNEL_FD", "NOTIFY_SOCKET",
    "WATCHDOG_USEC",   "WATCHDOG_PID", "FDSTORE",
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
	if (h->conn->passes) {
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
void child_exec(struct master *m, int slot, unsigned gen,
		const struct start_fds *f)
{
	int chan_fd = f->ch[1], err_fd = f->ep[1], out_w = f->ow;
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

/* In-process workers: a channel, and an inbox if workers read their
 * peers' messages (herd_on_message): without, the peer mesh, N^2 fds
 * passed at every reload of N, would serve nobody. Programs: an exec error
 * pipe, an output pipe unless --inherit-output, and a channel in passfd
 * mode only. Out of fds, the start fails like any other. */
static int start_prepare(struct master *m, unsigned gen, int slot,
			 struct start_fds *f)
{
	int flags = SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC;
	const struct kind_ops *kind = m->h->kind;

	if (m->h->conn->slot_open(m, slot) == -1 ||
	    ((kind->channel || m->h->conn->passes) &&
	     socketpair(AF_UNIX, flags, 0, f->ch) == -1) ||
	    (kind->inbox && m->h->on_message != NULL &&
	     socketpair(AF_UNIX, flags, 0, f->ib) == -1) ||
	    (kind->execs && pipe2(f->ep, O_CLOEXEC | O_NONBLOCK) == -1) ||
	    (output_captured(m->h) &&
	     (f->out = output_open(m->loop, slot, gen, &f->ow)) == NULL))
		return -1;
	/* The master's end and the inbox take no fds: refused before the
	 * worker exists, so none can be queued (see rights.h). Herd's own
	 * worker relays connections to the master (relay.c): it is the
	 * application's own code, and what it sends is passed on, or closed
	 * off the loop's thread. */
	if (f->ch[0] >= 0 && !kind->relays)
		rights_refuse(f->ch[0]);
	if (f->ib[0] >= 0)
		rights_refuse(f->ib[0]);
	/* A program's channel is blocking, the simplest to read; it is its
	 * own, and the master reads its copy with MSG_DONTWAIT. */
	if (kind->blocking && f->ch[1] >= 0 && fd_blocking(f->ch[1], 1) == -1)
		return -1;
	return 0;
}

/* In the master once the child runs: the child's ends go, but passfd's
 * copy of the worker's end (see leftover_keep()). */
static void start_parent_ends(struct master *m, struct proc *p,
			      struct start_fds *f, pid_t pid)
{
	if (m->h->conn->passes)
		p->worker_end = f->ch[1];
	else if (f->ch[1] >= 0)
		close(f->ch[1]);
	if (f->ib[0] >= 0)
		close(f->ib[0]);
	if (f->ep[1] >= 0)
		close(f->ep[1]);
	if (f->ow >= 0)
		close(f->ow);
	output_started(f->out, pid);
	p->out = f->out;
	p->exec_err = f->ep[0];
}

static void start_cleanup(struct start_fds *f)
{
	output_discard(f->out);
	if (f->ow >= 0)
		close(f->ow);
	for (int i = 0; i < 2; i++) {
		if (f->ch[i] >= 0)
			close(f->ch[i]);
		if (f->ib[i] >= 0)
			close(f->ib[i]);
		if (f->ep[i] >= 0)
			close(f->ep[i]);
	}
}

int spawn_one(struct master *m, unsigned gen, int slot)
{
	struct start_fds f = {{-1, -1}, {-1, -1}, {-1, -1}, -1, NULL, 0};
	struct proc *p = NULL;
	pid_t pid;

	if (start_prepare(m, gen, slot, &f) == -1 ||
	    (p = proc_add(&m->procs)) == NULL)
		goto fail;
	p->slot = slot;
	p->gen = gen;
	p->served = gen == m->gen; /* a pending one's serve once promoted */
	if (!m->h->kind->execs)	   /* a program cannot write the table */
		p->load_slot = f.load_slot = load_claim(&m->procs);
	if ((pid = spawn_fork(m->pid)) == 0) {
		m->h->kind->child(m, slot, gen, &f);
		_exit(127); /* not reached: the child never returns */
	}
	if (pid == -1)
		goto fail;
	start_parent_ends(m, p, &f, pid);
	return proc_started(m, p, pid, f.ch[0], f.ib[1]);
fail:
	log_error("cannot start worker %d: %s", slot, strerror(errno));
	if (p != NULL)
		proc_remove(&m->procs, p);
	start_cleanup(&f);
	return -1;
}
