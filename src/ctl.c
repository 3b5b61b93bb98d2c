/*
 * ctl.c: the lifecycle commands, from signals and from herd ctl: stop
 * (graceful, fast), reload, reopen, scale and its fd budget.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <fcntl.h>

#include "channel.h"
#include "log.h"
#include "output.h"
#include "master.h"

void graceful_stop(struct master *m)
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

void fast_stop(struct master *m)
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

void reload(struct master *m)
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

void reopen(struct master *m)
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

void scale(struct master *m, int delta)
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

void control_command(void *arg, const char *cmd, const char *args,
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
