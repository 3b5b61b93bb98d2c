/*
 * handover.c: the master's side of a binary upgrade: the new binary's --check,
 * collecting the state to hand over, the exec, and resuming from it in the new
 * image (the record itself is upgrade.c's).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "log.h"
#include "output.h"
#include "rights.h"
#include "master.h"

/* ---- the collect: the state the new image needs ------------------------ */

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

/* The lists' HAND rows (upgrade.h), each way: put_ into the record, take_
 * from it. The notify socket is ours only when there is one. */
static void put_notify_fd(struct upgrade_state *u, const struct master *o,
			  const struct master *m)
{
	(void)m;
	u->notify_fd = o->notify_fd;
}

static int take_notify_fd(struct master *o, const struct upgrade_state *u,
			  struct master *m)
{
	(void)m;
	if (u->notify_fd < 0)
		return 0;
	o->notify_fd = u->notify_fd;
	rights_refuse(o->notify_fd); /* an older image may not have */
	return herd_loop_add(o->loop, o->notify_fd, HERD_READ, on_notify, o);
}

static void put_notify_name(struct upgrade_state *u, const struct master *o,
			    const struct master *m)
{
	(void)m;
	memcpy(u->notify_name, o->notify_name, sizeof(u->notify_name));
}

static int take_notify_name(struct master *o, const struct upgrade_state *u,
			    struct master *m)
{
	(void)m;
	if (u->notify_fd >= 0)
		memcpy(o->notify_name, u->notify_name, sizeof(o->notify_name));
	return 0;
}

/* A worker's channel goes as its fd, what is queued on it first (best
 * effort: a queue that cannot go now is lost). */
static void put_chan(struct upgrade_proc *u, const struct proc *o,
		     const struct master *m)
{
	(void)m;
	if (o->chan != NULL)
		chan_flush(o->chan);
	u->chan = o->chan != NULL ? chan_fd(o->chan) : -1;
}

static int take_chan(struct proc *o, const struct upgrade_proc *u,
		     struct master *m)
{
	if (u->chan >= 0 && (o->chan = chan_new(u->chan, MSG_TO_MASTER, m->loop,
						on_worker_chan, o)) == NULL)
		return -1;
	return 0;
}

/* Times go as durations (how long it has run, how long it has left),
 * read against the new image's clock. */
/* A worker's state goes as the four states and the killed flag every
 * image reads (proc_wire_state()); it is taken back once both are read:
 * killed comes after state in the list. */
static void put_state(struct upgrade_proc *u, const struct proc *o,
		      const struct master *m)
{
	int killed;

	(void)m;
	u->state = (int32_t)proc_wire_state(o, &killed);
}

static int take_state(struct proc *o, const struct upgrade_proc *u,
		      struct master *m)
{
	(void)o;
	(void)u;
	(void)m;
	return 0;
}

static void put_killed(struct upgrade_proc *u, const struct proc *o,
		       const struct master *m)
{
	(void)m;
	proc_wire_state(o, &u->killed);
}

static int take_killed(struct proc *o, const struct upgrade_proc *u,
		       struct master *m)
{
	(void)m;
	if (proc_adopt(o, u->state, u->killed) == -1) {
		errno = EPROTO;
		return -1;
	}
	return 0;
}

static void put_age_ms(struct upgrade_proc *u, const struct proc *o,
		       const struct master *m)
{
	u->age_ms = herd_loop_now(m->loop) - o->started;
}

static int take_age_ms(struct proc *o, const struct upgrade_proc *u,
		       struct master *m)
{
	uint64_t now = herd_loop_now(m->loop);

	o->started = now > u->age_ms ? now - u->age_ms : 0;
	return 0;
}

/* 0: none; a deadline already past goes as 1 ms. */
static void put_deadline_left_ms(struct upgrade_proc *u, const struct proc *o,
				 const struct master *m)
{
	uint64_t now = herd_loop_now(m->loop);

	u->deadline_left_ms =
	    o->deadline == 0 ? 0 : (o->deadline > now ? o->deadline - now : 1);
}

static int take_deadline_left_ms(struct proc *o, const struct upgrade_proc *u,
				 struct master *m)
{
	o->deadline = u->deadline_left_ms
			  ? herd_loop_now(m->loop) + u->deadline_left_ms
			  : 0;
	return 0;
}

/* The header's LAYOUT rows: the listening sockets in -l order, and the
 * reuseport slots' sockets up to the highest slot that has any. */
static int collect_sockets(const struct master *m, struct upgrade_state *st)
{
	const herd *h = m->h;
	int top = 0;

	st->naddrs = (int32_t)h->naddrs;
	for (size_t i = 0; i < h->naddrs; i++)
		st->addr_fds[i] = h->addrs[i].fd;
	for (int sl = 1; sl < MAX_WORKERS; sl++)
		if (m->slots[sl].fds != NULL)
			top = sl;
	st->nslots = top;
	st->slot_fds = calloc((size_t)top * h->naddrs + 1, sizeof(int32_t));
	if (st->slot_fds == NULL)
		return -1;
	for (int sl = 1; sl <= top; sl++)
		for (size_t i = 0; i < h->naddrs; i++)
			st->slot_fds[(size_t)(sl - 1) * h->naddrs + i] =
			    m->slots[sl].fds ? m->slots[sl].fds[i] : -1;
	return 0;
}

static int collect_head(const struct master *m, struct upgrade_state *u)
{
	const struct master *o = m;

	UPGRADE_HEAD_FIELDS(UPGRADE_PUT)
	if ((u->names = upgrade_names(m->h)) == NULL)
		return -1;
	return collect_sockets(m, u);
}

static void collect_proc(const struct master *m, struct upgrade_proc *u,
			 const struct proc *o)
{
	UPGRADE_PROC_FIELDS(UPGRADE_PUT)
}

/* The state the new image needs, pointing into m (fds stay m's). */
static int upgrade_collect(struct master *m, struct upgrade_state *st)
{
	memset(st, 0, sizeof(*st));
	if (collect_head(m, st) == -1)
		return -1;
	if ((st->procs = calloc(m->procs.n + 1, sizeof(*st->procs))) == NULL)
		return -1;
	for (size_t i = 0; i < m->procs.n; i++)
		collect_proc(m, &st->procs[st->nprocs++], m->procs.v[i]);
	return output_collect(st);
}

/* The upgrade will not happen: its generation is abandoned before it
 * began, for herd ctl upgrade to say, and its number is used up. */
static void upgrade_gave_up(struct master *m, const char *why)
{
	history_end(&m->history, m->last_gen + 1, ATT_ABANDONED, why,
		    herd_loop_now(m->loop));
	m->last_gen++;
}

static void upgrade_exec_now(struct master *m)
{
	struct upgrade_state st;
	herd *h = m->h;
	char why[160];

	if (upgrade_collect(m, &st) == -1) {
		log_error("upgrade: %s; carrying on", strerror(errno));
		upgrade_gave_up(m, strerror(errno));
		upgrade_free(&st);
		return;
	}
	log_info("upgrade: executing %s (pid %d stays)", h->upgrade_path,
		 (int)m->pid);
	sdnotify("RELOADING=1\nMONOTONIC_USEC=%llu", sdnotify_monotonic_usec());
	upgrade_exec(&st, h->upgrade_path, h->upgrade_argv);
	snprintf(why, sizeof(why), "cannot execute %s: %s", h->upgrade_path,
		 strerror(errno));
	log_error("upgrade: %s; carrying on", why);
	upgrade_gave_up(m, why);
	sdnotify("READY=1");
	upgrade_free(&st);
}

void upgrade_checked(struct master *m, int status)
{
	char why[96], said[160];

	m->check_pid = 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		if (m->state == M_RUNNING)
			upgrade_exec_now(m);
		else
			upgrade_gave_up(m, "herd is stopping");
		return;
	}
	describe_exit(status, why, sizeof(why));
	snprintf(said, sizeof(said), "'%s --check' %s", m->h->upgrade_path,
		 why);
	log_error("upgrade: %s; the running binary carries on", said);
	upgrade_gave_up(m, said);
}

/* ---- the check: the new binary's --check, in a child -------------------- */

/* Why an upgrade is refused now, or NULL. */
static const char *upgrade_refused(const struct master *m)
{
	if (m->h->upgrade_path == NULL)
		return "not enabled";
	if (m->state != M_RUNNING)
		return "stopping";
	if (m->check_pid != 0)
		return "a check is running";
	if (m->pending != 0)
		return "a reload is under way";
	return NULL;
}

/* The check's command line: the new binary, --check, then the arguments
 * it will be given. malloc'ed (the strings are h's), or NULL with errno. */
static char **check_argv(const herd *h)
{
	size_t n = 0;
	char **argv;

	while (h->upgrade_argv[n] != NULL)
		n++;
	if ((argv = calloc(n + 2, sizeof(*argv))) == NULL)
		return NULL;
	argv[0] = h->upgrade_path;
	argv[1] = "--check";
	for (size_t i = 1; i < n; i++)
		argv[i + 1] = h->upgrade_argv[i];
	return argv;
}

/* Forks the check: stdio only, no signal blocked. Its pid, or -1. */
static pid_t fork_check(const struct master *m, char **argv)
{
	pid_t pid = spawn_fork(m->pid);

	if (pid == 0) {
		int keep[] = {0, 1, 2};
		sigset_t none;

		sigemptyset(&none);
		if (spawn_close_except(keep, 3) == -1 ||
		    sigprocmask(SIG_SETMASK, &none, NULL) == -1)
			_exit(127);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* The check could not start: why, logged, and why as herd ctl says it. */
static const char *check_failed(const char *what)
{
	log_error("upgrade: %s%s", what, strerror(errno));
	return "the check could not be started (see the log)";
}

/* SIGUSR2 or herd ctl upgrade: first the new binary checks the arguments
 * it will be given, in a child of its own, so that a broken binary never
 * replaces a working master; the master goes on meanwhile
 * (upgrade_checked). by says what asked, for the log of a refusal
 * ("SIGUSR2 ignored"). Returns NULL once the check runs, else why not. */
const char *upgrade_start(struct master *m, const char *by)
{
	const char *why = upgrade_refused(m);
	herd *h = m->h;
	char **argv;
	pid_t pid;

	if (why != NULL) {
		log_warn("upgrade: %s; %s", why, by);
		return why;
	}
	if ((argv = check_argv(h)) == NULL)
		return check_failed("");
	pid = fork_check(m, argv);
	free(argv);
	if (pid == -1)
		return check_failed("cannot fork the check: ");
	m->check_pid = pid;
	m->check_deadline = herd_loop_now(m->loop) + h->upgrade_timeout_ms;
	history_start(&m->history, m->last_gen + 1, 1, herd_loop_now(m->loop));
	log_info("upgrade: checking %s (pid %d)", h->upgrade_path, (int)pid);
	return NULL;
}

/* ---- the resume: the new image takes the old one's state --------------- */

static int resume_head(struct master *m, const struct upgrade_state *u)
{
	struct master *o = m;
	int err = 0;

	UPGRADE_HEAD_FIELDS(UPGRADE_TAKE)
	m->announced = 1;
	m->upgraded = 1;
	return err;
}

/* The reuseport slots that had sockets (the header's LAYOUT rows; the
 * listening sockets were herd_run()'s, resume_sockets()). */
static int resume_slots(struct master *m, const struct upgrade_state *st)
{
	size_t naddrs = m->h->naddrs;

	for (int sl = 1; sl <= st->nslots && sl < MAX_WORKERS; sl++) {
		const int32_t *fds = st->slot_fds + (size_t)(sl - 1) * naddrs;
		int any = 0;

		for (size_t i = 0; i < naddrs; i++)
			any |= fds[i] >= 0;
		if (!any)
			continue;
		if ((m->slots[sl].fds = malloc(naddrs * sizeof(int))) == NULL)
			return -1;
		for (size_t i = 0; i < naddrs; i++) {
			m->slots[sl].fds[i] = fds[i];
			if (fds[i] >= 0 &&
			    addr_defer_accept(&m->h->addrs[i], fds[i]) == -1)
				log_warn("slot %d: %s: TCP_DEFER_ACCEPT: %s",
					 sl, m->h->addrs[i].text,
					 strerror(errno));
		}
	}
	return 0;
}

static int resume_proc(struct master *m, const struct upgrade_proc *u)
{
	struct proc *o = proc_add(&m->procs);
	int err = 0;

	if (o == NULL)
		return -1;
	UPGRADE_PROC_FIELDS(UPGRADE_TAKE)
	o->introduced = 1; /* the old image introduced them */
	o->watchdog_at = herd_loop_now(m->loop) + m->h->watchdog_ms;
	return err;
}

/* The new image: the old one's workers, sockets and counters are ours. */
int upgrade_resume(struct master *m)
{
	struct upgrade_state *st = m->h->resume;
	herd *h = m->h;

	if (resume_head(m, st) == -1 || resume_slots(m, st) == -1)
		return -1;
	for (size_t i = 0; i < st->nprocs; i++)
		if (resume_proc(m, &st->procs[i]) == -1)
			return -1;
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
