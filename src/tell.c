/*
 * tell.c: the master talking to a worker: channel messages and signals, and the
 * drain, stop and escalation that go through them.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "channel.h"
#include "log.h"
#include "master.h"

void proc_signal(const struct proc *p, int sig)
{
	if (spawn_signal(p->pidfd, p->pid, sig) == -1 && errno != ESRCH)
		log_warn("signal %d to worker %d (pid %d): %s", sig, p->slot,
			 (int)p->pid, strerror(errno));
}

/* Takes ownership of fds, as chan_send does. */
int proc_send(struct master *m, struct proc *p, uint32_t type, const void *data,
	      size_t len, const int *fds, int nfds)
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

/* An in-process worker whose channel is gone drains on SIGQUIT. */
void quit_by_sigquit(struct master *m, struct proc *p)
{
	(void)m;
	proc_signal(p, SIGQUIT);
}

/* A program without a channel has only its stop signal. */
void quit_by_stop_signal(struct master *m, struct proc *p)
{
	proc_signal(p, m->h->stop_signal);
	proc_fire(p, PE_ESCALATE);
}

/* An in-process worker is told on its channel. So is a passfd program: its
 * stop signal would cut short what waits on the channel (most runtimes die
 * of TERM), so the signal comes only if it is still there at the shutdown
 * timeout (enforce_deadlines). Other programs have only the signal. */
void quit_proc(struct master *m, struct proc *p)
{
	struct msg_quit q = {0};

	if (proc_fire(p, PE_QUIT) == -1)
		return;
	q.pool_goes_on = m->h->kind->relays && relay_possible(m, p);
	/* Herd's own worker learns whether others will go on serving, and
	 * so whether to relay its idle connections (relay.c). */
	if (proc_send(m, p, MSG_QUIT, &q, m->h->kind->relays ? sizeof(q) : 0,
		      NULL, 0) != 0)
		m->h->kind->quit_unsent(m, p);
	p->deadline = herd_loop_now(m->loop) + m->h->shutdown_ms;
}

void terminate_proc(struct master *m, struct proc *p)
{
	uint64_t fast = earlier(m->h->shutdown_ms, FAST_STOP_MS);
	uint64_t deadline = herd_loop_now(m->loop) + fast;
	int sent;

	if (proc_fire(p, PE_TERMINATE) == -1)
		return;
	sent = proc_send(m, p, MSG_TERMINATE, NULL, 0, NULL, 0) == 0;
	if (m->h->kind->term_signal || !sent)
		proc_signal(p, SIGTERM);
	p->deadline = p->deadline ? earlier(p->deadline, deadline) : deadline;
}

/* The master's new file, as a worker that dropped privileges may not open
 * the path again. */
void reopen_inproc(struct master *m, struct proc *p, int reopened)
{
	int fd = reopened ? fcntl(log_fd(), F_DUPFD_CLOEXEC, 0) : -1;

	proc_send(m, p, MSG_REOPEN, NULL, 0, &fd, fd >= 0);
}

/* A program hears of it on its passfd channel, and by --reopen-signal
 * only if it named one: USR1's default action kills Python, Node and Go.
 * It reopens its own files. */
void reopen_program(struct master *m, struct proc *p, int reopened)
{
	(void)reopened;
	if (p->chan != NULL)
		proc_send(m, p, MSG_REOPEN, NULL, 0, NULL, 0);
	if (m->h->reopen_signal != 0)
		proc_signal(p, m->h->reopen_signal);
}

/* A passfd program still draining at the shutdown timeout gets its stop
 * signal, and the fast stop's time to act on it before SIGKILL. */
void escalate(struct master *m, struct proc *p, uint64_t now)
{
	int sig = m->h->stop_signal;

	log_warn("worker %d (pid %d) did not drain in time; sending it "
		 "signal %d (%s)",
		 p->slot, (int)p->pid, sig, strsignal(sig));
	proc_signal(p, sig);
	proc_fire(p, PE_ESCALATE);
	p->deadline = now + earlier(m->h->shutdown_ms, FAST_STOP_MS);
}
