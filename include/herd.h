/*
 * herd.h: the public API of libherd, nginx's master/worker process model
 * for any C server.
 *
 * A program describes its server on a herd object (addresses, worker
 * count, mode, callbacks) and calls herd_run(). The calling process
 * becomes the master: it binds the addresses, forks the workers, keeps
 * them alive and steers their lifecycle from signals. Each worker runs an
 * event loop that libherd drives; the application sees it through the
 * callbacks and the herd_worker / herd_loop functions below.
 *
 * Conventions: every function that can fail returns 0 (or a valid value)
 * on success and -1 with errno set on failure. Types are opaque so they can
 * grow without breaking the ABI; options are set one by one with setters.
 */
#ifndef HERD_H
#define HERD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HERD_VERSION "0.1.0"

typedef struct herd herd;
typedef struct herd_worker herd_worker;
typedef struct herd_loop herd_loop;
typedef struct herd_timer herd_timer;

/* How connections reach workers. The application code is the same in every
 * mode: connections arrive through the connection callback. */
typedef enum herd_mode {
	/* every worker accepts on the inherited sockets */
	HERD_MODE_SHARED = 0,
	/* each slot accepts on its own SO_REUSEPORT socket */
	HERD_MODE_REUSEPORT,
	/* the master accepts and passes each connection to a worker */
	HERD_MODE_PASSFD,
} herd_mode;

/* passfd: which worker the master hands the next connection to. */
typedef enum herd_balance {
	HERD_BALANCE_LEAST = 0, /* fewest active connections (the default) */
	HERD_BALANCE_RR,	/* round robin */
} herd_balance;

/* External programs (herd_set_program): how a child gets its sockets. */
typedef enum herd_handoff {
	/* systemd's protocol: the sockets at fd 3.., LISTEN_FDS, LISTEN_PID,
	 * LISTEN_FDNAMES (the default) */
	HERD_HANDOFF_SYSTEMD = 0,
	/* the one socket on fd 0, as FastCGI programs expect */
	HERD_HANDOFF_FD0,
} herd_handoff;

/* Log levels, most severe first. */
enum { HERD_LOG_ERROR = 0, HERD_LOG_WARN, HERD_LOG_INFO, HERD_LOG_DEBUG };

/* Destinations for herd_worker_send(). */
#define HERD_TO_MASTER (-1)
#define HERD_TO_ALL    (-2)

/* Largest application message payload, in bytes. */
#define HERD_MSG_MAX 4000
/* Largest state relayed with a connection (herd_conn_relay), in bytes. */
#define HERD_RELAY_MAX 1024

/* ---- callbacks, run in worker processes only ---------------------------- */

/* After the worker's loop exists and before it accepts. Non-zero fails the
 * worker (it exits with status 3 and the master backs off the slot). */
typedef int (*herd_start_fn)(herd_worker *w, void *ud);
/* A new connection; the fd is nonblocking, CLOEXEC and the callback's to
 * own. Close it with herd_conn_close() so the worker can count it. */
typedef void (*herd_conn_fn)(herd_worker *w, int fd, void *ud);
/* A message from another worker (from_slot >= 0). Workers are given each
 * other's inboxes (nginx's open-channel mesh) only when this callback is
 * set: without it no worker could read a peer's message, and the mesh
 * would cost every reload of N workers N^2 passed fds for nothing. */
typedef void (*herd_msg_fn)(herd_worker *w, int from_slot, const void *data,
			    size_t len, void *ud);
/* A connection another worker relayed (herd_conn_relay), with the state
 * it gave (len bytes, possibly 0): the fd is nonblocking, CLOEXEC and the
 * callback's to own, as herd_conn_fn's. Without this callback a relayed
 * connection goes to herd_conn_fn, its state ignored. */
typedef void (*herd_relay_fn)(herd_worker *w, int fd, const void *state,
			      size_t len, void *ud);
/* The worker was asked to stop gracefully: finish what is in flight and
 * close idle connections. The worker exits once its last connection is
 * closed with herd_conn_close(), or when herd_worker_stop() is called. */
typedef void (*herd_drain_fn)(herd_worker *w, void *ud);
/* Last call before the worker process exits. */
typedef void (*herd_stop_fn)(herd_worker *w, void *ud);

/* ---- master side --------------------------------------------------------- */

herd *herd_new(void);
void herd_free(herd *h);

/* Adds an address to listen on: "HOST:PORT", "[IPv6]:PORT", "PORT",
 * ":PORT" (all addresses) or "unix:/path", optionally after "NAME=", its
 * name in a program's LISTEN_FDNAMES. It is parsed now (EINVAL with a
 * message in herd_error() when malformed) and bound by herd_run(). */
int herd_listen(herd *h, const char *addr);
int herd_set_workers(herd *h, int n); /* n >= 1; 0 means one per CPU */
/* An adaptive pool of min to max workers (1 <= min <= max <= 512): it
 * starts with min, grows while saturated (connections waiting in the
 * accept queues, every worker busy, or the workers' CPU near full) and
 * shrinks by one after idle_timeout of being underused. */
int herd_set_workers_range(herd *h, int min, int max);
/* How long an adaptive pool must be underused before it shrinks by one
 * worker (default 10 s). */
int herd_set_idle_timeout(herd *h, double seconds);
/* The most workers an adaptive pool starts in a second (default 32, as
 * PHP-FPM's pm.max_spawn_rate). */
int herd_set_spawn_rate(herd *h, unsigned per_second);
int herd_set_mode(herd *h, herd_mode mode);
int herd_set_balance(herd *h, herd_balance balance);
/* Pins the worker in slot i to the i-th CPU this process may use, modulo
 * their count (nginx's worker_cpu_affinity auto). */
void herd_set_cpu_affinity(herd *h, int on);
/* At most n open connections per worker (nginx's worker_connections): at
 * n, an in-process worker stops accepting until one closes, and in passfd
 * mode the master passes a worker (a program too) no more. 0 (the
 * default): no cap. EINVAL above HERD_MAX_CONNECTIONS; a program outside
 * passfd mode is refused at start (herd does not see what it accepts). */
#define HERD_MAX_CONNECTIONS (1u << 24)
int herd_set_max_connections(herd *h, unsigned n);
/* A rolling reload (uWSGI's chain reload, Puma's phased restart): at most
 * k new workers start at once, and the old worker of a slot drains once
 * its successor is ready, so a reload of N workers runs at most N + k
 * processes. 0 (the default): the whole new generation starts at once,
 * and the old one drains when all of it is ready. EINVAL below 0 or above
 * 512, the most workers. */
int herd_set_reload_batch(herd *h, int k);
/* TCP listeners hand a connection over only once the client has sent
 * something (TCP_DEFER_ACCEPT, nginx's "deferred"): no wake-up for a
 * connection with nothing to read yet. For protocols where the client
 * speaks first (HTTP, FastCGI); a server that greets first would wait for
 * a client waiting for it, until the kernel's deferral ends (seconds). Off
 * by default; set or cleared on every listener, passed ones included. */
int herd_set_defer_accept(herd *h, int on);
int herd_set_shutdown_timeout(herd *h, double seconds);
int herd_set_pid_file(herd *h, const char *path);
/* A control socket for `herd ctl` (mode 0600; root and this uid only). */
int herd_set_control(herd *h, const char *path);
/* Serves the control socket's metrics (Prometheus text) over HTTP at
 * ADDR, GET /metrics, from the master; parsed like herd_listen(). */
int herd_set_metrics(herd *h, const char *addr);
int herd_set_log_file(herd *h, const char *path); /* reopened on SIGUSR1 */
void herd_set_log_level(herd *h, int level);

/* Workers (in-process ones and programs alike) run as this user, and its
 * group unless one is given: "USER", "USER:GROUP", names or numbers. The
 * user and group are looked up now (EINVAL and a message when unknown);
 * each child calls setgroups, setgid and setuid before anything else, and
 * exits rather than run on with privileges when one of them fails. */
int herd_set_user(herd *h, const char *spec);

/* Binary upgrade in place: on SIGUSR2 the master runs the binary now at
 * the path it was started from (argv[0], searched in PATH as execvp does
 * when it has no '/', made absolute now, symlinks kept; /proc/self/exe if
 * that is not this binary) with "--check" before argv[1..] (it must
 * exit 0), then re-executes it with argv, keeping its pid, its listening
 * sockets and its workers; the new image starts a new generation and
 * retires the old one when that is ready, or keeps the old one if it is
 * not ready within the upgrade timeout (default 30 s). argv must give the
 * same listening addresses. herd_run() in the new image resumes. */
int herd_set_upgrade(herd *h, char *const argv[]);
int herd_set_upgrade_timeout(herd *h, double seconds);
/* Recycling, as gunicorn, PHP-FPM and uWSGI do: a worker that has taken
 * max_requests connections (plus a random jitter of up to a tenth, so
 * workers do not all go at once), or whose RSS passes max_rss_mb, is
 * replaced: its successor starts in the same slot, and it drains once the
 * successor is ready. 0 disables either. Connections are counted by
 * in-process workers' reports and, for programs, in passfd mode only. */
int herd_set_recycling(herd *h, unsigned long long max_requests,
		       unsigned long max_rss_mb);
/* Validates the configuration as herd_run() would, binding nothing:
 * 0, or -1 with the reason in herd_error(). */
int herd_check(herd *h);

void herd_set_userdata(herd *h, void *ud);
void herd_on_start(herd *h, herd_start_fn fn);
void herd_on_connection(herd *h, herd_conn_fn fn);
void herd_on_relay(herd *h, herd_relay_fn fn);
void herd_on_message(herd *h, herd_msg_fn fn);
void herd_on_drain(herd *h, herd_drain_fn fn);
void herd_on_stop(herd *h, herd_stop_fn fn);

/* ---- external programs: a pool of any program ------------------------- */

/* Each worker slot runs argv (argv[0] looked up in PATH) instead of the
 * callbacks. The child gets fds 0, 1, 2, its sockets as the handoff says
 * (in passfd mode its channel instead, HERD_CHANNEL_FD; docs/protocol.md),
 * HERD_SLOT, HERD_GENERATION and HERD_WORKERS, and nothing else. argv is
 * copied. */
int herd_set_program(herd *h, char *const argv[]);
int herd_set_handoff(herd *h, herd_handoff how);
/* Gives each child NOTIFY_SOCKET: READY=1 marks it ready, STATUS= is
 * logged, WATCHDOG=1 feeds the watchdog. Senders are told apart by their
 * credentials. */
void herd_set_notify(herd *h, int on);
/* A ready child silent for longer (no WATCHDOG=1) is killed and replaced;
 * 0, the default, disables it. Needs notify. */
int herd_set_watchdog(herd *h, double seconds);
/* Without notify (and without READY on a passfd channel), a child counts as
 * ready this long after it started (default 1). */
int herd_set_ready_delay(herd *h, double seconds);
/* Sent to a child to stop it gracefully (default SIGTERM); SIGKILL
 * follows after the shutdown timeout. */
int herd_set_stop_signal(herd *h, int sig);
/* 0 (the default): a reload replaces the children with a new generation.
 * A signal: a reload forwards it to the running children instead. */
int herd_set_reload_signal(herd *h, int sig);
/* 0 (the default): a log reopen (SIGUSR1 to herd, herd ctl reopen) is not
 * forwarded, as USR1's default action kills most runtimes; a passfd child
 * still gets REOPEN on its channel. A signal: it is sent to the children. */
int herd_set_reopen_signal(herd *h, int sig);
/* 0 (the default): what a child writes to stdout or stderr is logged by
 * the master, a line at a time with its slot, pid and generation (bounded
 * and rate limited). 1: the children inherit herd's own stdout and stderr
 * and write there untouched. */
void herd_set_inherit_output(herd *h, int on);

/* For programs run by herd in passfd mode, the C side of the channel
 * protocol (docs/protocol.md). herd_child_channel() returns the channel fd
 * from HERD_CHANNEL_FD, or -1 when not run that way. herd_child_recv()
 * waits for the next message: 1 with a connection in *fd (the caller's to
 * close), 0 when herd asks the program to finish and exit (or is gone),
 * -1 on error; with errno EMFILE or ENFILE the next connection is left
 * queued, not lost, until an fd is free. herd_child_ready() says the
 * program is ready; herd_child_report() reports its load, which flow
 * control and the least policy depend on: call it after taking connections
 * and after closing them. */
int herd_child_channel(void);
int herd_child_recv(int chan, int *fd);
int herd_child_ready(int chan);
int herd_child_report(int chan, unsigned active, unsigned long long total);

/* The last error message of a failed call on h, for the user. */
const char *herd_error(const herd *h);

/* Binds, forks the workers and runs the master until it is told to stop.
 * Returns the master's exit status (0 after a graceful or fast stop, 1 when
 * it could not start). Worker processes never return from it: a worker
 * calls the stop callback, frees what libherd holds and exits, since code
 * after herd_run() is the master's and must not run twice. */
int herd_run(herd *h);

/* Number of CPUs this process may run on (at least 1). */
int herd_ncpu(void);

/* Writes one log line "TIME LEVEL PID ROLE: message" to the log (stderr or
 * the --log file), in the master and in workers alike. */
void herd_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- worker side ------------------------------------------------------------
 */

herd_loop *herd_worker_loop(herd_worker *w);
int herd_worker_slot(const herd_worker *w);
pid_t herd_worker_pid(const herd_worker *w);
unsigned herd_worker_generation(const herd_worker *w);
int herd_worker_draining(const herd_worker *w);
herd_mode herd_worker_mode(const herd_worker *w);
herd_balance herd_worker_balance(const herd_worker *w);
void *herd_worker_userdata(const herd_worker *w);
/* Connections this worker holds now (accepted and not yet closed). */
unsigned herd_worker_active(const herd_worker *w);

/* Sends len bytes (at most HERD_MSG_MAX) to the worker in slot `to`, to all
 * other workers (HERD_TO_ALL) or to the master (HERD_TO_MASTER, which logs
 * it as the worker's status line). Never blocks: what cannot go now is
 * queued; ENOBUFS when the queue is full, ENOENT for an unknown slot (and
 * for every slot without herd_on_message: see herd_msg_fn). */
int herd_worker_send(herd_worker *w, int to, const void *data, size_t len);

/* Whether this draining worker may relay its idle connections: the pool
 * goes on (a reload, a scale-down, a recycling), not herd stopping. A
 * worker that may keeps answering with keep-alive while it drains. */
int herd_worker_can_relay(const herd_worker *w);
/* Whether new connections come with their first bytes already received
 * (herd_set_defer_accept): reading one at once is then cheaper than
 * waiting for the loop to report it readable. A relayed connection may
 * still have nothing to read. */
int herd_worker_deferred(const herd_worker *w);
/* Relays an idle connection of this draining worker, with len bytes of
 * state (at most HERD_RELAY_MAX), to a serving worker of the pool, which
 * gets it through herd_relay_fn: the client keeps its connection across a
 * reload. Idle means nothing of a next request read (the next owner reads
 * it from the socket) and nothing left to write. The fd is then no longer
 * the caller's (it is out of the loop, sent, and counted as done, as by
 * herd_conn_close); if no worker can take it, the master closes it.
 * Returns 0, or -1 with errno and the fd still the caller's: EINVAL (len),
 * EPERM (not herd_worker_can_relay), EAGAIN (the master's channel is
 * backed up), EPIPE (the master is gone). */
int herd_conn_relay(herd_worker *w, int fd, const void *state, size_t len);
/* Closes a connection handed to herd_conn_fn and counts it as done. It
 * leaves the worker's loop too: no herd_loop_del() is needed first, unless
 * the fd was duplicated (dup, or a fork that has not exec'ed yet), whose
 * copy would keep the registration alive. */
void herd_conn_close(herd_worker *w, int fd);
/* recv(fd, buf, len, 0) on a connection handed to herd_conn_fn. Use it on
 * unix-domain listeners: where the kernel cannot make them refuse the fds
 * a client attaches (SO_PASSRIGHTS, Linux 6.16), recv() would drop those
 * fds on the worker's thread, and such a close can sleep as long as the
 * client chose. Here they are closed off the loop's thread. */
ssize_t herd_conn_recv(herd_worker *w, int fd, void *buf, size_t len);
/* Ends this worker once the current callback returns. */
void herd_worker_stop(herd_worker *w);

/* ---- event loop (in workers) --------------------------------------------- */

enum { HERD_READ = 1u, HERD_WRITE = 2u };

/* events: what happened, HERD_READ and/or HERD_WRITE. Level-triggered.
 * Errors and hang-ups are reported as the events the fd is watched for, so
 * the next read or write sees them. */
typedef void (*herd_io_fn)(herd_loop *l, int fd, unsigned events, void *arg);
typedef void (*herd_timer_fn)(herd_loop *l, herd_timer *t, void *arg);

int herd_loop_add(herd_loop *l, int fd, unsigned events, herd_io_fn fn,
		  void *arg);
int herd_loop_mod(herd_loop *l, int fd, unsigned events);
int herd_loop_del(herd_loop *l, int fd);
/* Monotonic milliseconds, cached at the start of each loop iteration. */
uint64_t herd_loop_now(const herd_loop *l);

/* One-shot timers, re-armable: create once, start as often as needed. */
herd_timer *herd_timer_new(herd_loop *l, herd_timer_fn fn, void *arg);
void herd_timer_start(herd_timer *t, uint64_t after_ms);
void herd_timer_stop(herd_timer *t);
int herd_timer_active(const herd_timer *t);
void herd_timer_free(herd_timer *t);

#ifdef __cplusplus
}
#endif
#endif
