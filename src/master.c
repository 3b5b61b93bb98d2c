/*
 * master.c: the master's wiring: its event sources (the signalfd, the wake
 * timer, the service manager's watchdog), the turn that runs the policy,
 * start and teardown. What each turn decides is in supervise.c, a
 * worker's start in spawn.c, its exit in exit.c; docs/design.md lists the
 * master's files.
 *
 * Events (signals, channel messages, timers) only record facts; one
 * function, reconcile(), then runs a turn of the policy: supervise.c plans
 * from the table what should change (start what is missing, retire what is
 * surplus, kill what overstayed its deadline, promote a ready generation)
 * and apply.c does it. Being level-triggered, it cannot miss an edge, and
 * every path goes through it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>

#include "channel.h"
#include "fdstore.h"
#include "log.h"
#include "output.h"
#include "rights.h"
#include "master.h"

/* Signals are per process, and so is the master: channel callbacks find it
 * here rather than through a back pointer in every table entry. */
struct master *the_master;

/* The pool is gone; herd exits when what it left is gone too. Only
 * programs: herd is their subreaper, while in-process workers run code of
 * this library's user, whose other children are not the pool's. */
static uint64_t stop_orphans(struct master *m, uint64_t now)
{
	uint64_t grace = m->h->shutdown_ms, next = 0;

	if (m->state == M_TERMINATING)
		grace = earlier(grace, FAST_STOP_MS);
	if (m->h->kind->subreaper)
		next = orphans_stop(&m->orphans, now, m->h->stop_signal, grace);
	if (next == 0) {
		loop_stop(m->loop);
		return UINT64_MAX;
	}
	return next;
}

/* An upgrade's `--check` run of the new binary has a deadline too. */
static uint64_t check_deadline(struct master *m, uint64_t now)
{
	if (m->check_pid == 0)
		return UINT64_MAX;
	if (now < m->check_deadline)
		return m->check_deadline;
	log_error("upgrade: '%s --check' did not finish in time; killing it",
		  m->h->upgrade_path);
	kill(m->check_pid, SIGKILL);
	m->check_deadline = UINT64_MAX;
	return UINT64_MAX;
}

void reconcile(struct master *m)
{
	uint64_t now = herd_loop_now(m->loop), next = UINT64_MAX;

	if (m->state != M_RUNNING) {
		if (m->procs.n == 0)
			next = stop_orphans(m, now);
	} else {
		next = earlier(next, check_deadline(m, now));
		next = earlier(next, supervise(m)); /* supervise.c's turn */
		if (accept_paused(&m->starved, now))
			next = earlier(next, m->starved.until);
	}
	m->h->conn->dispatch(m); /* passfd: watch the listeners, or not */
	/* Last: the steps above may have set new deadlines. */
	next = earlier(next, enforce_deadlines(m));
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
	/* The commands they mean (ctl.c's table), stops first: a worker
	 * that died of the same ^C is not respawned by the reap below. */
	signal_commands(m, got);
	reap(m);
	reconcile(m);
}

static int setup_signals(struct master *m)
{
	sigset_t set;

	/* The commands' signals (ctl.c), children's exits, and WINCH
	 * (nginx's graceful stop of workers), which herd reads and
	 * ignores. */
	sigemptyset(&set);
	command_signals(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGWINCH);
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
	if (m->h->kind->subreaper) /* none, unless the loop failed */
		orphans_kill_all();
	orphans_free(&m->orphans);
	plan_free(&m->sup.plan);
	output_close_all(); /* what the workers' descendants left in pipes */
	if (m->sigfd >= 0)
		close(m->sigfd);
	if (m->h->kind->subreaper) /* herd_run() returns to its caller */
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

static struct master *master_new(herd *h)
{
	struct master *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
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
	if (h->kind->subreaper && prctl(PR_SET_CHILD_SUBREAPER, 1) == -1)
		log_warn("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
	return m;
}

/* The loop and the master's own event sources. */
static int master_open(struct master *m)
{
	if ((m->loop = loop_new()) == NULL || setup_signals(m) == -1 ||
	    notify_open(m) == -1 || sdnotify_open() == -1 ||
	    (m->wake = herd_timer_new(m->loop, on_wake, m)) == NULL ||
	    (m->sd_watchdog = herd_timer_new(m->loop, on_sd_watchdog, m)) ==
		NULL) {
		log_error("master start-up failed: %s", strerror(errno));
		return -1;
	}
	log_info("herd %s master started (pid %d, %d workers)", HERD_VERSION,
		 (int)m->pid, m->nworkers);
	fdstore_start(m->h, m->h->conn->slot_sockets ? m->nworkers : 1);
	if (meter_start(m) == -1) {
		log_error("master start-up failed: %s", strerror(errno));
		return -1;
	}
	if ((m->sd_watchdog_ms = sdnotify_watchdog_ms()) > 0)
		on_sd_watchdog(m->loop, m->sd_watchdog, m);
	m->started = herd_loop_now(m->loop);
	srandom((unsigned)m->pid ^ (unsigned)m->started);
	return 0;
}

/* At start a control socket or metrics address that cannot be had is a
 * configuration error. After an upgrade the workers are already running
 * and serving: losing a side door is no reason to take them down, so the
 * new image logs it and carries on. Returns -1 when herd must stop. */
static int side_door_failed(struct master *m, const char *what, const char *err)
{
	log_error("%s%s%s", what, err,
		  m->h->resume ? "; serving without it" : "");
	return m->h->resume == NULL ? -1 : 0;
}

static int control_open_side(struct master *m)
{
	char err[256];

	if (m->h->control_path == NULL)
		return 0;
	m->control = control_open(m->loop, m->h->control_path, control_command,
				  m, err, sizeof(err));
	return m->control == NULL ? side_door_failed(m, "", err) : 0;
}

static int metrics_open_side(struct master *m)
{
	herd *h = m->h;
	char err[256];

	if (!h->metrics)
		return 0;
	if (addr_bind(&h->metrics_addr, err, sizeof(err)) == -1 ||
	    (m->metrics =
		 control_open_http(m->loop, h->metrics_addr.fd, control_command,
				   m, err, sizeof(err))) == NULL) {
		h->metrics_addr.fd = -1;
		return side_door_failed(m, "--metrics: ", err);
	}
	h->metrics_addr.fd = -1; /* the control's now */
	log_info("metrics on http://%s/metrics", h->metrics_addr.text);
	return 0;
}

int master_run(herd *h)
{
	struct master *m = master_new(h);
	int rc = 0;

	if (m == NULL)
		return 1;
	if (master_open(m) == -1 || control_open_side(m) == -1 ||
	    metrics_open_side(m) == -1) {
		master_free(m);
		return 1;
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
