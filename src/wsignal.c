/*
 * wsignal.c: the in-process worker's own signals, read on a signalfd: sent
 * to a worker directly, they mean what they mean to the master, for it.
 */
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "worker.h"

static void worker_sigset(sigset_t *set)
{
	static const int sigs[] = {SIGTERM, SIGINT,  SIGQUIT, SIGHUP,  SIGUSR1,
				   SIGUSR2, SIGTTIN, SIGTTOU, SIGWINCH};

	sigemptyset(set);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(set, sigs[i]);
}

/* Signals sent to a worker directly (a terminal's ^C reaches the whole
 * process group) mean what they mean to the master, for this worker. */
static void on_signal(herd_loop *l, int fd, unsigned events, void *arg)
{
	herd_worker *w = arg;
	struct signalfd_siginfo si;

	(void)l;
	(void)events;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
			worker_finish(w, 0);
		else if (si.ssi_signo == SIGQUIT)
			start_drain(w);
		else if (si.ssi_signo == SIGUSR1)
			log_reopen();
	}
}

int worker_signals(herd_worker *w)
{
	sigset_t set;

	/* A write past RLIMIT_FSIZE or to a reader gone (the log, a client)
	 * must fail with EFBIG or EPIPE, not kill the worker: spawn_fork()
	 * reset both to their defaults. */
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR ||
	    signal(SIGXFSZ, SIG_IGN) == SIG_ERR)
		return -1;
	worker_sigset(&set);
	if (sigprocmask(SIG_SETMASK, &set, NULL) == -1)
		return -1;
	w->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (w->sigfd == -1)
		return -1;
	return herd_loop_add(w->loop, w->sigfd, HERD_READ, on_signal, w);
}
