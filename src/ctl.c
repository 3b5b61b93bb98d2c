/*
 * ctl.c: the commands, from signals and from herd ctl, as one table (name,
 * signals, argument, function); the lifecycle ones: stop (graceful, fast),
 * reload, reopen, scale and its fd budget.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "channel.h"
#include "log.h"
#include "output.h"
#include "master.h"
#include "status.h"

/* The refusal of every command but stop while herd stops. */
static const char stopping[] = "herd is stopping";

const char *graceful_stop(struct master *m)
{
	if (m->state != M_RUNNING)
		return stopping;
	m->state = M_QUITTING;
	m->pending = 0;
	sdnotify("STOPPING=1");
	log_info("graceful stop: draining %zu workers (at most %llu ms)",
		 m->procs.n, (unsigned long long)m->h->shutdown_ms);
	for (size_t i = 0; i < m->procs.n; i++)
		if (proc_info(m->procs.v[i]->state)->live)
			quit_proc(m, m->procs.v[i]);
	return NULL;
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
		if (proc_takes(m->procs.v[i], PE_TERMINATE))
			terminate_proc(m, m->procs.v[i]);
}

/* --reload-signal: the program reloads itself. */
static void reload_by_signal(struct master *m)
{
	log_info("reload: sending signal %d (%s) to the workers",
		 m->h->reload_signal, strsignal(m->h->reload_signal));
	for (size_t i = 0; i < m->procs.n; i++)
		if (proc_info(m->procs.v[i]->state)->live)
			proc_signal(m->procs.v[i], m->h->reload_signal);
	sdnotify("READY=1");
}

const char *reload(struct master *m)
{
	if (m->state != M_RUNNING) {
		log_info("reload ignored: stopping");
		return stopping;
	}
	/* One generation starts at a time: a reload asked meanwhile follows
	 * it (promote, abandon_pending), one for any number asked. Replacing
	 * the starting one outright, quick reloads piled up generations past
	 * MAX_DRAINING_GENS, and the bound killed workers that had taken
	 * connections (a starting worker accepts in shared mode). */
	if (m->pending != 0 && m->h->reload_signal == 0) {
		if (!m->reload_queued)
			log_info(
			    "reload: generation %u is still starting; the "
			    "next one starts when it is ready or abandoned",
			    m->pending);
		m->reload_queued = 1;
		/* It will be the next number (one at a time: nothing else
		 * starts a generation meanwhile); herd ctl waits on it. */
		history_start(&m->history, m->last_gen + 1, 0,
			      herd_loop_now(m->loop));
		return NULL;
	}
	/* systemd's Type=notify-reload: RELOADING=1 with the time, then
	 * READY=1 when done (promote_pending, abandon_pending). A resumed
	 * upgrade's reload is the one the old image announced before its
	 * exec: a second RELOADING=1 would start another. */
	if (!m->upgraded)
		sdnotify("RELOADING=1\nMONOTONIC_USEC=%llu",
			 sdnotify_monotonic_usec());
	if (m->h->reload_signal != 0) {
		reload_by_signal(m);
		return NULL;
	}
	m->pending = ++m->last_gen;
	m->pending_since = herd_loop_now(m->loop);
	m->pending_ms = PENDING_READY_MS;
	history_start(&m->history, m->pending, m->upgraded,
		      herd_loop_now(m->loop));
	log_info("reload: starting generation %u", m->pending);
	return NULL;
}

void reopen(struct master *m)
{
	int reopened = log_reopen() == 0 && m->h->log_file != NULL;

	for (size_t i = 0; i < m->procs.n; i++)
		m->h->kind->reopen(m, m->procs.v[i], reopened);
	log_info("log reopened");
}

int master_max_workers(const herd *h)
{
	const struct mode_ops *mode = h->conn;
	int out = output_captured(h);
	/* passfd: the dead workers' channels kept for what they never read;
	 * programs: output pipes their descendants still hold */
	rlim_t base = FDS_BASE + h->naddrs + mode->fds_base +
		      (out ? OUTPUT_LINGER_MAX : 0);
	struct rlimit rl;
	rlim_t room;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur == RLIM_INFINITY)
		return MAX_WORKERS;
	if (rl.rlim_cur <= base)
		return 0;
	/* passfd: the copy of the worker's end; reuseport: each slot's own
	 * sockets, shared by its generations */
	room =
	    (rl.rlim_cur - base) /
	    ((FDS_PER_WORKER + mode->fds_worker + (unsigned)out) * GENS_ALIVE +
	     mode->fds_slot * h->naddrs);
	return room < MAX_WORKERS ? (int)room : MAX_WORKERS;
}

const char *scale_to(struct master *m, int n, const char *why)
{
	int max = master_max_workers(m->h);

	/* Stopping, reconcile() starts nothing: a new count would be logged
	 * as a change that never happens. */
	if (m->state != M_RUNNING) {
		if (n != m->nworkers)
			log_warn("workers: %+d ignored: %s", n - m->nworkers,
				 stopping);
		return stopping;
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
		return NULL;
	log_info("workers: %d -> %d%s%s%s", m->nworkers, n, why ? " (" : "",
		 why ? why : "", why ? ")" : "");
	m->nworkers = n;
	sdnotify("STATUS=%d workers, generation %u", n, m->gen);
	return NULL;
}

/* A change by signal (TTIN, TTOU) stays within an adaptive pool's
 * bounds; herd ctl's count was checked against them (workers_arg). */
const char *scale(struct master *m, int delta)
{
	int n = m->nworkers + delta;

	if (meter_adaptive(m) && n > m->meter.max)
		n = m->meter.max;
	if (meter_adaptive(m) && n < m->meter.min)
		n = m->meter.min;
	return scale_to(m, n, NULL);
}

/* herd ctl scale's reply: the count, and an adaptive pool's bounds. */
static void say_size(const struct master *m, struct ctl_reply *r)
{
	if (meter_adaptive(m))
		ctl_printf(r, "workers: %d, adaptive %d:%d\n", m->nworkers,
			   m->meter.min, m->meter.max);
	else
		ctl_printf(r, "workers: %d\n", m->nworkers);
}

/* scale MIN:MAX: new bounds, the size brought within them. */
static const char *scale_bounds(struct master *m, int min, int max,
				struct ctl_reply *r)
{
	int n = m->nworkers < min ? min : m->nworkers > max ? max : m->nworkers;
	const char *why;

	if (m->state != M_RUNNING)
		return stopping;
	meter_bounds(m, min, max);
	if ((why = scale_to(m, n, "new bounds")) == NULL)
		say_size(m, r);
	return why;
}

/* ---- The command table ---- */

/* A command acts and returns NULL, or refuses and returns why: herd ctl
 * replies "NAME refused: WHY"; from a signal nothing more is said than
 * what the command logs where it decides (as it always did). sig: the
 * signal that asked, 0 when herd ctl did. */
typedef const char *command_fn(struct master *m, int arg, int sig,
			       struct ctl_reply *r);

enum command_arg {
	ARG_NONE,
	ARG_JSON,    /* status: "", "--json" or "--html": 0, 1 or 2 */
	ARG_GEN,     /* generation N */
	ARG_WORKERS, /* scale: the function gets the change in the count */
};

enum {
	C_READ = 1, /* answers, changes nothing: no log line, no turn */
	/* herd ctl takes it while herd stops, and refuses the others then.
	 * A signal reaches its command whatever the state: USR1 reopens the
	 * log during a long drain, and the rest refuse by themselves. */
	C_STOPPING = 2,
};

struct command {
	const char *name;
	/* The signals that mean it, 0 for none; for ARG_WORKERS, the first
	 * adds a worker and the second removes one, each as many times as it
	 * arrived. */
	int signals[2];
	enum command_arg arg;
	unsigned flags;
	command_fn *fn;
};

static const char *cmd_stop(struct master *m, int arg, int sig,
			    struct ctl_reply *r)
{
	(void)arg;
	(void)sig;
	(void)r;
	fast_stop(m);
	return NULL;
}

static const char *cmd_quit(struct master *m, int arg, int sig,
			    struct ctl_reply *r)
{
	(void)arg;
	(void)sig;
	(void)r;
	return graceful_stop(m);
}

/* The reply names the generation the reload starts, or follows the
 * starting one with; herd ctl reload waits for it (cmd_generation). */
static const char *cmd_reload(struct master *m, int arg, int sig,
			      struct ctl_reply *r)
{
	unsigned before = m->pending;
	const char *why = reload(m);

	(void)arg;
	(void)sig;
	if (why != NULL)
		return why;
	if (m->h->reload_signal != 0)
		ctl_printf(r, "reload: signal %d sent to the workers\n",
			   m->h->reload_signal);
	else if (before != 0)
		ctl_printf(r, "reload: generation %u follows generation %u\n",
			   m->last_gen + 1, before);
	else
		ctl_printf(r, "reload: generation %u starting\n", m->pending);
	return NULL;
}

/* generation N: how generation N's reload or upgrade went. */
static const char *cmd_generation(struct master *m, int gen, int sig,
				  struct ctl_reply *r)
{
	const struct attempt *a = history_find(&m->history, (unsigned)gen);
	uint64_t end =
	    a == NULL || a->ended == 0 ? herd_loop_now(m->loop) : a->ended;

	(void)sig;
	if (a == NULL)
		return "not one of the last reloads or upgrades";
	ctl_printf(r, "generation %u: %s %s %.2f s%s%s\n", a->gen,
		   attempt_state_name(a->state),
		   a->state == ATT_STARTING ? "for"
		   : a->state == ATT_READY  ? "in"
					    : "after",
		   (double)(end - a->started) / 1000.0, a->why[0] ? ": " : "",
		   a->why);
	return NULL;
}

static const char *cmd_reopen(struct master *m, int arg, int sig,
			      struct ctl_reply *r)
{
	(void)arg;
	(void)sig;
	(void)r;
	reopen(m);
	return NULL;
}

static const char *cmd_upgrade(struct master *m, int arg, int sig,
			       struct ctl_reply *r)
{
	const char *why;

	(void)arg;
	/* Only USR2 means it (the table below). */
	why = upgrade_start(m, sig ? "SIGUSR2 ignored"
				   : "herd ctl upgrade refused");
	if (why == NULL)
		ctl_printf(r,
			   "upgrade: checking %s; generation %u follows if "
			   "it passes\n",
			   m->h->upgrade_path, m->last_gen + 1);
	return why;
}

static const char *cmd_scale(struct master *m, int delta, int sig,
			     struct ctl_reply *r)
{
	const char *why = scale(m, delta);

	(void)sig;
	if (why == NULL)
		say_size(m, r);
	return why;
}

/* Status and metrics: the master's state taken once, rendered (render.c). */
static const char *cmd_status(struct master *m, int json, int sig,
			      struct ctl_reply *r)
{
	struct status s;

	(void)sig;
	rss_watch(m);
	if (status_take(m, &s) == -1)
		return "out of memory";
	/* 0: text, 1: --json, 2: --html (the status page) */
	(json == 2 ? status_html : json ? status_json : status_text)(&s, r);
	status_release(&s);
	return NULL;
}

static const char *cmd_metrics(struct master *m, int arg, int sig,
			       struct ctl_reply *r)
{
	struct status s;

	(void)arg;
	(void)sig;
	if (status_take(m, &s) == -1)
		return "out of memory";
	status_prometheus(&s, r);
	status_release(&s);
	return NULL;
}

/* health: herd serves (a ready worker, not stopping), or why not: what
 * a load balancer's or Kubernetes' probe asks (GET /healthz). */
static const char *cmd_health(struct master *m, int arg, int sig,
			      struct ctl_reply *r)
{
	size_t ready = 0;

	(void)arg;
	(void)sig;
	if (m->state != M_RUNNING)
		return stopping;
	for (size_t i = 0; i < m->procs.n; i++)
		ready += proc_info(m->procs.v[i]->state)->serving;
	if (ready == 0)
		return "no worker is ready";
	ctl_printf(r, "ok: %zu workers ready, generation %u\n", ready, m->gen);
	return NULL;
}

/* Signals run their commands in this order: stops first, so that the reap
 * after them does not respawn a worker that died of the same ^C. */
static const struct command commands[] = {
    {"stop", {SIGTERM, SIGINT}, ARG_NONE, C_STOPPING, cmd_stop},
    {"quit", {SIGQUIT, 0}, ARG_NONE, 0, cmd_quit},
    {"reload", {SIGHUP, 0}, ARG_NONE, 0, cmd_reload},
    {"reopen", {SIGUSR1, 0}, ARG_NONE, 0, cmd_reopen},
    {"upgrade", {SIGUSR2, 0}, ARG_NONE, 0, cmd_upgrade},
    {"scale", {SIGTTIN, SIGTTOU}, ARG_WORKERS, 0, cmd_scale},
    {"status", {0, 0}, ARG_JSON, C_READ | C_STOPPING, cmd_status},
    {"metrics", {0, 0}, ARG_NONE, C_READ | C_STOPPING, cmd_metrics},
    {"generation", {0, 0}, ARG_GEN, C_READ | C_STOPPING, cmd_generation},
    {"health", {0, 0}, ARG_NONE, C_READ | C_STOPPING, cmd_health},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/* Adds every signal the table gives a meaning to: the master blocks and
 * reads exactly these, so a row with a new signal needs nothing else. */
void command_signals(sigset_t *set)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		for (int k = 0; k < 2; k++)
			if (commands[i].signals[k] != 0)
				sigaddset(set, commands[i].signals[k]);
}

/* got[sig]: how many times sig arrived in one read of the signalfd; TTIN
 * and TTOU add up. A command refusing logged why itself. */
void signal_commands(struct master *m, const unsigned *got)
{
	struct ctl_reply unread = {0}; /* what herd ctl would have printed */

	for (size_t i = 0; i < NCOMMANDS; i++) {
		const struct command *c = &commands[i];
		unsigned more = got[c->signals[0]], less = got[c->signals[1]];

		if (more == 0 && less == 0)
			continue;
		c->fn(m, c->arg == ARG_WORKERS ? (int)more - (int)less : 0,
		      more > 0 ? c->signals[0] : c->signals[1], &unread);
	}
	free(unread.buf);
}

static const struct command *command_named(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/* Whether herd ctl's argument suits c, before anything else is said. */
static int arg_fits(const struct command *c, const char *args)
{
	switch (c->arg) {
	case ARG_JSON:
		return *args == '\0' || strcmp(args, "--json") == 0 ||
		       strcmp(args, "--html") == 0;
	case ARG_WORKERS:
	case ARG_GEN:
		return 1; /* checked by workers_arg(), gen_arg() */
	default:
		return *args == '\0';
	}
}

/* A count in 1..max, digits only: strtol() also takes a sign, and "+3",
 * which reads as three more, would have set a count of 3. -1 if not. */
static long digits_arg(const char *args, long max)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(args, &end, 10);
	if (args[strspn(args, "0123456789")] != '\0' || errno != 0 ||
	    end == args || n < 1 || n > max)
		return -1;
	return n;
}

/* scale N: N is the count (herd.1), into *delta as the change; TTIN and
 * TTOU are the relative steps. An adaptive pool's count stays within its
 * bounds: scale MIN:MAX (bounds_arg) changes those. */
static int workers_arg(const struct master *m, const char *args, int *delta,
		       struct ctl_reply *r)
{
	int max = master_max_workers(m->h);
	long n = digits_arg(args, max);

	if (n == -1) {
		ctl_fail(r,
			 "scale: '%s': expected the number of workers, 1..%d, "
			 "or bounds MIN:MAX (no sign: scale sets the count)",
			 args, max);
		return -1;
	}
	if (meter_adaptive(m) && (n < m->meter.min || n > m->meter.max)) {
		ctl_fail(r,
			 "scale: %ld is outside the adaptive pool's bounds "
			 "%d:%d (scale MIN:MAX changes them)",
			 n, m->meter.min, m->meter.max);
		return -1;
	}
	*delta = (int)n - m->nworkers;
	return 0;
}

/* scale MIN:MAX: 1 <= MIN <= MAX <= the most workers; MIN == MAX fixes
 * the pool's size. */
static int bounds_arg(const char *args, int *min, int *max, struct ctl_reply *r)
{
	const char *colon = strchr(args, ':');
	char lo[16];
	long a = -1, b;

	if (colon != NULL && (size_t)(colon - args) < sizeof(lo)) {
		snprintf(lo, sizeof(lo), "%.*s", (int)(colon - args), args);
		a = digits_arg(lo, MAX_WORKERS);
	}
	b = colon != NULL ? digits_arg(colon + 1, MAX_WORKERS) : -1;
	if (a == -1 || b == -1 || a > b) {
		ctl_fail(r,
			 "scale: '%s': expected bounds MIN:MAX, "
			 "1 <= MIN <= MAX <= %d",
			 args, MAX_WORKERS);
		return -1;
	}
	*min = (int)a;
	*max = (int)b;
	return 0;
}

/* generation N: a generation number. */
static int gen_arg(const char *args, int *gen, struct ctl_reply *r)
{
	long n = digits_arg(args, INT_MAX);

	if (n == -1) {
		ctl_fail(r, "generation: '%s': expected a generation number",
			 args);
		return -1;
	}
	*gen = (int)n;
	return 0;
}

/* herd ctl's checks before a command runs: that it is one, its argument,
 * and the state (C_STOPPING). 0 with the error in r. */
static int ctl_admits(const struct master *m, const struct command *c,
		      const char *name, const char *args, struct ctl_reply *r)
{
	if (c == NULL)
		ctl_fail(
		    r,
		    "unknown command '%.64s' (status [--json|--html], metrics, "
		    "reload, quit, stop, reopen, scale N|MIN:MAX, upgrade, "
		    "generation N, health)",
		    name);
	else if (!arg_fits(c, args))
		ctl_fail(r, "%s takes no argument", name);
	else if (m->state != M_RUNNING && !(c->flags & C_STOPPING))
		ctl_fail(r, "%s refused: %s", name, stopping);
	else
		return 1;
	return 0;
}

void control_command(void *arg, const char *name, const char *args,
		     struct ctl_reply *r)
{
	const struct command *c = command_named(name);
	struct master *m = arg;
	const char *why;
	int n = strcmp(args, "--html") == 0 ? 2 : *args != '\0'; /* ARG_JSON */

	if (!ctl_admits(m, c, name, args, r))
		return;
	if (c->arg == ARG_WORKERS && strchr(args, ':') != NULL) {
		int min, max;

		if (bounds_arg(args, &min, &max, r) == -1)
			return;
		if ((why = scale_bounds(m, min, max, r)) != NULL) {
			ctl_fail(r, "%s refused: %s", name, why);
			return;
		}
		log_info("control: %s %s", name, args);
		reconcile(m);
		return;
	}
	if (c->arg == ARG_WORKERS && workers_arg(m, args, &n, r) == -1)
		return;
	if (c->arg == ARG_GEN && gen_arg(args, &n, r) == -1)
		return;
	if ((why = c->fn(m, n, 0, r)) != NULL) {
		ctl_fail(r, "%s refused: %s", name, why);
		return;
	}
	if (c->flags & C_READ)
		return;
	log_info("control: %s%s%s", name, *args ? " " : "", args);
	reconcile(m);
}
