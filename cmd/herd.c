/*
 * herd.c: the command-line tool. Options in, library calls out: every value
 * is checked here, before anything is bound or forked, and a bad one exits
 * with status 2 and a message naming the option.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "herd.h"
#include "http_worker.h"

static const char usage_text[] =
    "usage: herd [OPTIONS] [-- PROGRAM [ARG...]]\n"
    "       herd ctl [--control PATH] COMMAND\n"
    "\n"
    "Runs a pool of pre-forked workers on shared listening sockets.\n"
    "Without PROGRAM, the workers serve the built-in HTTP responder; with\n"
    "it, each worker slot runs PROGRAM with the sockets at fd 3.. (systemd's\n"
    "LISTEN_FDS), or in passfd mode with HERD_CHANNEL_FD (docs/protocol.md).\n"
    "\n"
    "  -l, --listen [NAME=]ADDR    HOST:PORT, [IPv6]:PORT, PORT, :PORT or\n"
    "                              unix:/path; repeatable\n"
    "                              (default 127.0.0.1:8080); NAME: its\n"
    "                              name in a program's LISTEN_FDNAMES\n"
    "  -w, --workers N|auto        worker processes (default auto: one "
    "per CPU)\n"
    "  -w, --workers MIN:MAX       an adaptive pool: grows while saturated,\n"
    "                              shrinks by one when underused\n"
    "      --idle-timeout SEC      ... for this long (default 10)\n"
    "      --spawn-rate N          ... starting at most N a second\n"
    "                              (default 32)\n"
    "  -m, --mode MODE             how connections reach workers:\n"
    "                              shared (default), reuseport, passfd\n"
    "      --balance least|rr      passfd: fewest active connections\n"
    "                              (default) or round robin\n"
    "      --cpu-affinity auto     pin worker slot i to CPU i mod ncpu\n"
    "      --defer-accept          hand over a TCP connection once the\n"
    "                              client has sent something (HTTP,\n"
    "                              FastCGI; not where the server speaks\n"
    "                              first)\n"
    "  -u, --user USER[:GROUP]     run the workers as this user\n"
    "  -p, --pid-file PATH         write the master's pid here\n"
    "      --control PATH          a control socket for herd ctl (0600)\n"
    "      --metrics ADDR          serve over HTTP: /metrics (Prometheus),\n"
    "                              /status.json, /healthz (200 or 503)\n"
    "      --max-requests N        replace a worker after about N\n"
    "                              connections (plus up to a tenth)\n"
    "      --max-rss MB            replace a worker whose RSS passes MB\n"
    "      --max-connections N     a worker takes no new connection while\n"
    "                              it has N open\n"
    "      --reload-batch K        a rolling reload: K new workers at a\n"
    "                              time, each slot's old one drained once\n"
    "                              its successor is ready (default: all)\n"
    "      --shutdown-timeout SEC  graceful stop limit (default 10)\n"
    "      --log PATH              log here instead of stderr\n"
    "      --upgrade-timeout SEC   a binary upgrade (SIGUSR2) not ready by\n"
    "                              then is abandoned (default 30)\n"
    "      --check                 check the options and exit, binding\n"
    "                              nothing (0: they are good)\n"
    "  -v, --verbose               log debug lines too\n"
    "  -q, --quiet                 log warnings and errors only\n"
    "  -h, --help                  this text\n"
    "      --version               print the version\n"
    "\n"
    "With a PROGRAM:\n"
    "      --fd0                   the one socket on fd 0 (FastCGI), not fd 3\n"
    "      --notify                children speak sd_notify (NOTIFY_SOCKET):\n"
    "                              READY=1, STATUS=..., WATCHDOG=1\n"
    "      --watchdog SEC          with --notify: kill and replace a child\n"
    "                              silent for longer (without a PROGRAM:\n"
    "                              a worker whose loop stalls longer)\n"
    "      --ready-delay SEC       without --notify: ready after this long\n"
    "                              (default 1)\n"
    "      --stop-signal SIG       graceful stop (default TERM), then KILL\n"
    "                              after the shutdown timeout\n"
    "      --reload-signal SIG     on reload, send SIG to the children\n"
    "                              instead of starting new ones\n"
    "      --reopen-signal SIG     on a log reopen (USR1), send SIG to the\n"
    "                              children (default: none)\n"
    "      --inherit-output        children write to herd's stdout and\n"
    "                              stderr untouched (default: each line\n"
    "                              they write is logged, rate limited)\n"
    "\n"
    "Signals to the master: HUP reload, QUIT graceful stop, TERM/INT fast\n"
    "stop, USR1 reopen logs (see --reopen-signal), USR2 upgrade to the\n"
    "binary now at herd's path (same pid, sockets and workers kept),\n"
    "TTIN/TTOU one worker more/fewer.\n";

enum {
	OPT_SHUTDOWN = 256,
	OPT_LOG,
	OPT_VERSION,
	OPT_BALANCE,
	OPT_AFFINITY,
	OPT_FD0,
	OPT_NOTIFY,
	OPT_WATCHDOG,
	OPT_READY_DELAY,
	OPT_STOP_SIGNAL,
	OPT_RELOAD_SIGNAL,
	OPT_REOPEN_SIGNAL,
	OPT_INHERIT_OUTPUT,
	OPT_CHECK,
	OPT_UPGRADE_TIMEOUT,
	OPT_CONTROL,
	OPT_MAX_REQUESTS,
	OPT_MAX_RSS,
	OPT_METRICS,
	OPT_MAX_CONNECTIONS,
	OPT_RELOAD_BATCH,
	OPT_DEFER_ACCEPT,
	OPT_IDLE_TIMEOUT,
	OPT_SPAWN_RATE,
};

static const struct option options[] = {
    {"listen", required_argument, NULL, 'l'},
    {"workers", required_argument, NULL, 'w'},
    {"mode", required_argument, NULL, 'm'},
    {"balance", required_argument, NULL, OPT_BALANCE},
    {"cpu-affinity", required_argument, NULL, OPT_AFFINITY},
    {"pid-file", required_argument, NULL, 'p'},
    {"user", required_argument, NULL, 'u'},
    {"fd0", no_argument, NULL, OPT_FD0},
    {"notify", no_argument, NULL, OPT_NOTIFY},
    {"watchdog", required_argument, NULL, OPT_WATCHDOG},
    {"ready-delay", required_argument, NULL, OPT_READY_DELAY},
    {"stop-signal", required_argument, NULL, OPT_STOP_SIGNAL},
    {"reload-signal", required_argument, NULL, OPT_RELOAD_SIGNAL},
    {"reopen-signal", required_argument, NULL, OPT_REOPEN_SIGNAL},
    {"inherit-output", no_argument, NULL, OPT_INHERIT_OUTPUT},
    {"check", no_argument, NULL, OPT_CHECK},
    {"control", required_argument, NULL, OPT_CONTROL},
    {"max-requests", required_argument, NULL, OPT_MAX_REQUESTS},
    {"max-rss", required_argument, NULL, OPT_MAX_RSS},
    {"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
    {"reload-batch", required_argument, NULL, OPT_RELOAD_BATCH},
    {"defer-accept", no_argument, NULL, OPT_DEFER_ACCEPT},
    {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
    {"spawn-rate", required_argument, NULL, OPT_SPAWN_RATE},
    {"metrics", required_argument, NULL, OPT_METRICS},
    {"upgrade-timeout", required_argument, NULL, OPT_UPGRADE_TIMEOUT},
    {"shutdown-timeout", required_argument, NULL, OPT_SHUTDOWN},
    {"log", required_argument, NULL, OPT_LOG},
    {"verbose", no_argument, NULL, 'v'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

int usage_error(const char *opt, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "herd: %s: ", opt);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'herd --help'.\n");
	return EXIT_USAGE;
}

static int parse_workers(const char *s, int *n)
{
	char *end;
	long v;

	if (strcmp(s, "auto") == 0) {
		*n = 0;
		return 0;
	}
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 1 || v > INT_MAX)
		return -1;
	*n = (int)v;
	return 0;
}

static int parse_seconds(const char *s, double *v)
{
	char *end;

	errno = 0;
	*v = strtod(s, &end);
	return errno != 0 || end == s || *end != '\0' || !(*v >= 0) ? -1 : 0;
}

static int apply_mode(herd *h, const char *arg)
{
	static const struct {
		const char *name;
		herd_mode mode;
	} modes[] = {{"shared", HERD_MODE_SHARED},
		     {"reuseport", HERD_MODE_REUSEPORT},
		     {"passfd", HERD_MODE_PASSFD}};

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strcmp(arg, modes[i].name) == 0)
			return herd_set_mode(h, modes[i].mode) == -1 ? 1 : 0;
	return usage_error("-m/--mode",
			   "'%s': expected shared, reuseport or passfd", arg);
}

static int apply_seconds(herd *h, const char *opt, const char *arg,
			 int (*set)(herd *, double))
{
	double secs;

	if (parse_seconds(arg, &secs) == -1 || set(h, secs) == -1)
		return usage_error(opt, "'%s': expected seconds, 0..86400",
				   arg);
	return 0;
}

/* "TERM", "SIGTERM" or a number. */
static int parse_signal(const char *s, int *sig)
{
	static const struct {
		const char *name;
		int sig;
	} sigs[] = {{"HUP", SIGHUP},   {"INT", SIGINT},	    {"QUIT", SIGQUIT},
		    {"ABRT", SIGABRT}, {"KILL", SIGKILL},   {"USR1", SIGUSR1},
		    {"USR2", SIGUSR2}, {"ALRM", SIGALRM},   {"TERM", SIGTERM},
		    {"CONT", SIGCONT}, {"WINCH", SIGWINCH}, {"PWR", SIGPWR}};
	char *end;
	long v;

	if (strncmp(s, "SIG", 3) == 0)
		s += 3;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (strcmp(s, sigs[i].name) == 0) {
			*sig = sigs[i].sig;
			return 0;
		}
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 1 || v >= NSIG)
		return -1;
	*sig = (int)v;
	return 0;
}

static int apply_signal(herd *h, const char *opt, const char *arg,
			int (*set)(herd *, int))
{
	int sig;

	if (parse_signal(arg, &sig) == -1)
		return usage_error(opt,
				   "'%s': expected a signal name such as "
				   "TERM, QUIT or HUP",
				   arg);
	return set(h, sig) == -1 ? 1 : 0;
}

static const char *option_name(int c)
{
	static char buf[40];

	for (const struct option *o = options; o->name != NULL; o++)
		if (o->val == c) {
			snprintf(buf, sizeof(buf), "--%s", o->name);
			return buf;
		}
	return "?";
}

/* What was given that only makes sense with or without a PROGRAM. */
struct given {
	int listened; /* how many -l */
	int balanced, passfd, fd0, notify, watchdog, program_only, check;
	const char *program_opt;
	int ranged;		/* the last -w was MIN:MAX */
	const char *sizing_opt; /* --idle-timeout or --spawn-rate */
};

/* Recycling limits: set together once all options are read. */
static unsigned long long opt_max_requests, opt_max_rss;

/* A whole number in min..max, digits only; -1 if arg is not one. */
static long count_arg(const char *arg, unsigned long min, unsigned long max)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || arg[0] == '-' ||
	    v < min || v > max)
		return -1;
	return (long)v;
}

/* 1..HERD_MAX_CONNECTIONS: 0 would mean no cap, which is the default. */
static int apply_max_connections(herd *h, const char *arg)
{
	long v = count_arg(arg, 1, HERD_MAX_CONNECTIONS);

	if (v == -1 || herd_set_max_connections(h, (unsigned)v) == -1)
		return usage_error("--max-connections",
				   "'%s': expected a number of connections, "
				   "1..%u",
				   arg, HERD_MAX_CONNECTIONS);
	return 0;
}

/* 0..512: 0 is the default, the whole generation at once. */
static int apply_reload_batch(herd *h, const char *arg)
{
	long v = count_arg(arg, 0, 512);

	if (v == -1 || herd_set_reload_batch(h, (int)v) == -1)
		return usage_error("--reload-batch",
				   "'%s': expected a number of workers, 0..512",
				   arg);
	return 0;
}

/* -w N, auto, or MIN:MAX (an adaptive pool). */
static int apply_workers(herd *h, const char *arg)
{
	const char *colon = strchr(arg, ':');
	char lo[16];
	long min, max;
	int n;

	if (colon == NULL) {
		if (parse_workers(arg, &n) == -1 ||
		    herd_set_workers(h, n) == -1)
			return usage_error("-w/--workers",
					   "'%s': expected 1..512, auto or "
					   "MIN:MAX",
					   arg);
		return 0;
	}
	snprintf(lo, sizeof(lo), "%.*s", (int)(colon - arg), arg);
	min = (size_t)(colon - arg) < sizeof(lo) ? count_arg(lo, 1, 512) : -1;
	max = count_arg(colon + 1, 1, 512);
	if (min == -1 || max == -1 ||
	    herd_set_workers_range(h, (int)min, (int)max) == -1)
		return usage_error("-w/--workers",
				   "'%s': expected MIN:MAX with 1 <= MIN <= "
				   "MAX <= 512",
				   arg);
	return 0;
}

/* Applies one option; returns 0, or an exit status. */
static int apply(herd *h, int c, const char *arg, int *verbosity)
{
	switch (c) {
	case 'l':
		if (herd_listen(h, arg) == -1)
			return usage_error("-l/--listen", "%s", herd_error(h));
		return 0;
	case 'w':
		return apply_workers(h, arg);
	case 'm':
		return apply_mode(h, arg);
	case OPT_BALANCE:
		if (strcmp(arg, "least") == 0)
			return herd_set_balance(h, HERD_BALANCE_LEAST) ? 1 : 0;
		if (strcmp(arg, "rr") == 0)
			return herd_set_balance(h, HERD_BALANCE_RR) ? 1 : 0;
		return usage_error("--balance", "'%s': expected least or rr",
				   arg);
	case OPT_AFFINITY:
		if (strcmp(arg, "auto") != 0)
			return usage_error("--cpu-affinity",
					   "'%s': expected auto", arg);
		herd_set_cpu_affinity(h, 1);
		return 0;
	case 'p':
		if (herd_set_pid_file(h, arg) == -1)
			return usage_error("-p/--pid-file", "'%s': bad path",
					   arg);
		return 0;
	case OPT_SHUTDOWN:
		return apply_seconds(h, "--shutdown-timeout", arg,
				     herd_set_shutdown_timeout);
	case OPT_LOG:
		if (herd_set_log_file(h, arg) == -1)
			return usage_error("--log", "'%s': bad path", arg);
		return 0;
	case 'u':
		if (herd_set_user(h, arg) == -1)
			return usage_error("-u/--user", "%s", herd_error(h));
		return 0;
	case OPT_FD0:
		return herd_set_handoff(h, HERD_HANDOFF_FD0) == -1 ? 1 : 0;
	case OPT_NOTIFY:
		herd_set_notify(h, 1);
		return 0;
	case OPT_WATCHDOG: /* 0 would disable it: not what was asked */
		if (strtod(arg, NULL) <= 0)
			return usage_error("--watchdog",
					   "'%s': expected seconds above 0",
					   arg);
		return apply_seconds(h, "--watchdog", arg, herd_set_watchdog);
	case OPT_MAX_REQUESTS:
	case OPT_MAX_RSS: {
		char *end;
		unsigned long long v;

		errno = 0;
		v = strtoull(arg, &end, 10);
		if (errno != 0 || end == arg || *end != '\0' || v == 0 ||
		    arg[0] == '-' || v > (1ULL << 40))
			return usage_error(
			    c == OPT_MAX_REQUESTS ? "--max-requests"
						  : "--max-rss",
			    "'%s': expected a positive number", arg);
		if (c == OPT_MAX_REQUESTS)
			opt_max_requests = v;
		else
			opt_max_rss = v;
		return 0;
	}
	case OPT_MAX_CONNECTIONS:
		return apply_max_connections(h, arg);
	case OPT_RELOAD_BATCH:
		return apply_reload_batch(h, arg);
	case OPT_IDLE_TIMEOUT: {
		double secs;

		if (parse_seconds(arg, &secs) == -1 ||
		    herd_set_idle_timeout(h, secs) == -1)
			return usage_error("--idle-timeout",
					   "'%s': expected seconds, 0.1..86400",
					   arg);
		return 0;
	}
	case OPT_SPAWN_RATE: {
		long v = count_arg(arg, 1, 512);

		if (v == -1 || herd_set_spawn_rate(h, (unsigned)v) == -1)
			return usage_error("--spawn-rate",
					   "'%s': expected workers a second, "
					   "1..512",
					   arg);
		return 0;
	}
	case OPT_DEFER_ACCEPT:
		return herd_set_defer_accept(h, 1) == -1 ? 2 : 0;
	case OPT_METRICS:
		if (herd_set_metrics(h, arg) == -1)
			return usage_error("--metrics", "%s", herd_error(h));
		return 0;
	case OPT_CONTROL:
		if (herd_set_control(h, arg) == -1)
			return usage_error("--control", "'%s': bad path", arg);
		return 0;
	case OPT_UPGRADE_TIMEOUT:
		return apply_seconds(h, "--upgrade-timeout", arg,
				     herd_set_upgrade_timeout);
	case OPT_READY_DELAY:
		return apply_seconds(h, "--ready-delay", arg,
				     herd_set_ready_delay);
	case OPT_STOP_SIGNAL:
		return apply_signal(h, "--stop-signal", arg,
				    herd_set_stop_signal);
	case OPT_RELOAD_SIGNAL:
		return apply_signal(h, "--reload-signal", arg,
				    herd_set_reload_signal);
	case OPT_REOPEN_SIGNAL:
		return apply_signal(h, "--reopen-signal", arg,
				    herd_set_reopen_signal);
	case OPT_INHERIT_OUTPUT:
		herd_set_inherit_output(h, 1);
		return 0;
	case 'v':
		(*verbosity)++;
		return 0;
	case 'q':
		(*verbosity)--;
		return 0;
	}
	return EXIT_USAGE;
}

/* Combinations no single option can judge. */
static int check_given(const struct given *g, int program)
{
	if (g->balanced && !g->passfd)
		return usage_error("--balance", "%s",
				   "applies to --mode passfd only");
	if (g->program_only && !program)
		return usage_error(g->program_opt, "%s",
				   "applies to a PROGRAM only (herd [OPTIONS] "
				   "-- PROGRAM [ARG...])");
	if (g->sizing_opt != NULL && !g->ranged)
		return usage_error(g->sizing_opt, "%s",
				   "sizes an adaptive pool: give -w MIN:MAX");
	if (g->watchdog && program && !g->notify)
		return usage_error("--watchdog", "%s", "needs --notify");
	if (g->fd0 && g->passfd)
		return usage_error("--fd0", "%s",
				   "passfd mode passes connections, not a "
				   "listening socket");
	if (g->fd0 && g->listened > 1)
		return usage_error("--fd0", "%s",
				   "fd 0 holds one socket: give one -l");
	return 0;
}

static int parse_args(herd *h, int argc, char **argv, int *exit_now)
{
	struct given g = {0};
	int c, verbosity = 0, rc;

	opterr = 0;
	/* '+': options end at the first non-option, so a PROGRAM's own
	 * options are its own even without "--". */
	while ((c = getopt_long(argc, argv, "+:l:w:m:p:u:vqh", options,
				NULL)) != -1) {
		if (c == 'h' || c == OPT_VERSION) {
			fputs(c == 'h' ? usage_text : "herd " HERD_VERSION "\n",
			      stdout);
			*exit_now = 1;
			return 0;
		}
		if (c == '?')
			return usage_error(argv[optind - 1], "%s",
					   "unknown option");
		if (c == ':')
			return usage_error(argv[optind - 1], "%s",
					   "needs a value");
		g.listened += c == 'l';
		g.balanced |= c == OPT_BALANCE;
		g.fd0 |= c == OPT_FD0;
		g.notify |= c == OPT_NOTIFY;
		g.watchdog |= c == OPT_WATCHDOG;
		if (c == OPT_CHECK) {
			g.check = 1;
			continue;
		}
		if (c >= OPT_FD0 && c <= OPT_INHERIT_OUTPUT &&
		    c != OPT_WATCHDOG) {
			g.program_only = 1;
			g.program_opt = option_name(c);
		}
		if (c == 'm')
			g.passfd = strcmp(optarg, "passfd") == 0;
		if (c == 'w')
			g.ranged = strchr(optarg, ':') != NULL;
		if (c == OPT_IDLE_TIMEOUT || c == OPT_SPAWN_RATE)
			g.sizing_opt = c == OPT_IDLE_TIMEOUT ? "--idle-timeout"
							     : "--spawn-rate";
		if ((rc = apply(h, c, optarg, &verbosity)) != 0)
			return rc;
	}
	if ((rc = check_given(&g, optind < argc)) != 0)
		return rc;
	if ((opt_max_requests || opt_max_rss) &&
	    herd_set_recycling(h, opt_max_requests,
			       (unsigned long)opt_max_rss) == -1)
		return usage_error("--max-rss", "%s", herd_error(h));
	if (optind < argc && herd_set_program(h, argv + optind) == -1)
		return usage_error(argv[optind], "%s", herd_error(h));
	if (!g.listened && herd_listen(h, "127.0.0.1:8080") == -1)
		return 1;
	herd_set_log_level(h, HERD_LOG_INFO + verbosity);
	if (g.check) { /* what a binary upgrade runs first */
		*exit_now = 1;
		return herd_check(h) == -1 ? 1 : 0;
	}
	return 0;
}

int main(int argc, char **argv)
{
	herd *h = herd_new();
	int rc, exit_now = 0;

	if (argc > 1 && strcmp(argv[1], "ctl") == 0) {
		herd_free(h);
		return ctl_main(argc - 1, argv + 1);
	}
	if (h == NULL) {
		perror("herd");
		return 1;
	}
	rc = parse_args(h, argc, argv, &exit_now);
	if (rc == 0 && !exit_now) {
		if (optind >= argc) /* no PROGRAM: the built-in worker */
			http_worker_install(h);
		/* SIGUSR2 re-executes this binary's path with these. */
		if (herd_set_upgrade(h, argv) == -1)
			fprintf(stderr, "herd: binary upgrade disabled: %s\n",
				herd_error(h));
		rc = herd_run(h); /* failures are in the log already */
	}
	herd_free(h);
	return rc;
}
