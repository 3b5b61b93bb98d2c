/*
 * kind.h: the two kinds of worker, in-process (worker_main() running the
 * library user's callbacks) and program (a command herd execs,
 * herd_set_program()), as two instances of one operations struct: what
 * the master does differently for each as functions, the facts that
 * differ as fields. h->kind is chosen with the program (config.c); no code
 * needs to test h->argv to learn the kind.
 */
#ifndef HERD_KIND_H
#define HERD_KIND_H

struct master;
struct proc;
struct start_fds;

struct kind_ops {
	const char *name;
	/* In the new child: the worker's fds put in place, then the worker
	 * runs (worker_main(), or the program's exec). Never returns. */
	void (*child)(struct master *m, int slot, unsigned gen,
		      const struct start_fds *f);
	/* Tells p to reopen its log; reopened: the master reopened its own
	 * log file, whose new fd an in-process worker is given. */
	void (*reopen)(struct master *m, struct proc *p, int reopened);
	/* Stops p, whose QUIT could not go on a channel (none, or dead). */
	void (*quit_unsent)(struct master *m, struct proc *p);

	/* A channel to the master always (a program: in passfd only). */
	int channel;
	/* Reads its peers' messages (herd_on_message): an inbox. */
	int inbox;
	/* Execs: a pipe tells the master why the exec failed. */
	int execs;
	/* Its stdout and stderr become log lines, unless --inherit-output. */
	int output;
	/* Its listening sockets and its channel are blocking, as systemd and
	 * FastCGI hand them over; herd's own worker sets its own. */
	int blocking;
	/* Herd's code reads its connections: they take no fds from clients
	 * (rights.h). A program's sockets are its own business. */
	int herd_reads;
	/* Its requests are the connections the master passed it (passfd):
	 * it reports none. An in-process worker counts its own. */
	int master_counts;
	/* A fast stop signals it even when its channel told it. */
	int term_signal;
	/* Says READY on its channel once started: never ready by delay. */
	int sends_ready;
	/* Its own exit with status 0 is planned (php-cgi after
	 * PHP_FCGI_MAX_REQUESTS), not a crash: policy_exit(). */
	int exit0_planned;
	/* Exit status HERD_EXIT_CONFIG means its start callback failed. */
	int config_exit;
	/* Starts unbounded by STARTING_MAX: its start is its own business,
	 * and its ready delay would make the bound a crawl. */
	int own_pace;
	/* Still draining at the shutdown timeout: its stop signal first. */
	int drain_escalates;
	/* A missed watchdog is SIGABRT (a core to debug), not SIGKILL. */
	int watchdog_abort;
	/* herd is the subreaper of what it leaves behind, and stops that at
	 * the end; an in-process worker runs the user's code, who knows what
	 * it forks. */
	int subreaper;
	/* Relays its idle connections when it drains (relay.c): its QUIT
	 * says whether others serve on, and the master's end of its channel
	 * takes fds. */
	int relays;
};

extern const struct kind_ops kind_inproc, kind_program;

/* The kinds' functions, in the files of their concern. spawn.c: */
void child_run(struct master *m, int slot, unsigned gen,
	       const struct start_fds *f);
void child_exec(struct master *m, int slot, unsigned gen,
		const struct start_fds *f);
/* tell.c: */
void reopen_inproc(struct master *m, struct proc *p, int reopened);
void reopen_program(struct master *m, struct proc *p, int reopened);
void quit_by_sigquit(struct master *m, struct proc *p);
void quit_by_stop_signal(struct master *m, struct proc *p);

#endif
