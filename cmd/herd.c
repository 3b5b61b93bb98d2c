/*
 * herd.c: the command-line tool. Options in, library calls out: every value
 * is checked here, before anything is bound or forked, and a bad one exits
 * with status 2 and a message naming the option.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herd.h"
#include "http_worker.h"

#define EXIT_USAGE 2

static const char usage_text[] =
    "usage: herd [OPTIONS] [-- PROGRAM [ARG...]]\n"
    "\n"
    "Runs a pool of pre-forked workers on shared listening sockets.\n"
    "Without PROGRAM, the workers serve the built-in HTTP responder.\n"
    "\n"
    "  -l, --listen ADDR           HOST:PORT, [IPv6]:PORT, PORT, :PORT or\n"
    "                              unix:/path; repeatable\n"
    "                              (default 127.0.0.1:8080)\n"
    "  -w, --workers N|auto        worker processes (default auto: one "
    "per CPU)\n"
    "  -m, --mode MODE             how connections reach workers:\n"
    "                              shared (default), reuseport, passfd\n"
    "      --balance least|rr      passfd: fewest active connections\n"
    "                              (default) or round robin\n"
    "      --cpu-affinity auto     pin worker slot i to CPU i mod ncpu\n"
    "  -p, --pid-file PATH         write the master's pid here\n"
    "      --shutdown-timeout SEC  graceful stop limit (default 10)\n"
    "      --log PATH              log here instead of stderr\n"
    "  -v, --verbose               log debug lines too\n"
    "  -q, --quiet                 log warnings and errors only\n"
    "  -h, --help                  this text\n"
    "      --version               print the version\n"
    "\n"
    "Signals to the master: HUP reload, QUIT graceful stop, TERM/INT fast\n"
    "stop, USR1 reopen logs, TTIN/TTOU one worker more/fewer.\n";

enum { OPT_SHUTDOWN = 256, OPT_LOG, OPT_VERSION, OPT_BALANCE, OPT_AFFINITY };

static const struct option options[] = {
    {"listen", required_argument, NULL, 'l'},
    {"workers", required_argument, NULL, 'w'},
    {"mode", required_argument, NULL, 'm'},
    {"balance", required_argument, NULL, OPT_BALANCE},
    {"cpu-affinity", required_argument, NULL, OPT_AFFINITY},
    {"pid-file", required_argument, NULL, 'p'},
    {"shutdown-timeout", required_argument, NULL, OPT_SHUTDOWN},
    {"log", required_argument, NULL, OPT_LOG},
    {"verbose", no_argument, NULL, 'v'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

__attribute__((format(printf, 2, 3))) static int
usage_error(const char *opt, const char *fmt, ...)
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

/* Applies one option; returns 0, or an exit status. */
static int apply(herd *h, int c, const char *arg, int *verbosity)
{
	double secs;
	int n;

	switch (c) {
	case 'l':
		if (herd_listen(h, arg) == -1)
			return usage_error("-l/--listen", "%s", herd_error(h));
		return 0;
	case 'w':
		if (parse_workers(arg, &n) == -1 ||
		    herd_set_workers(h, n) == -1)
			return usage_error("-w/--workers",
					   "'%s': expected 1..512 or auto",
					   arg);
		return 0;
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
		if (parse_seconds(arg, &secs) == -1 ||
		    herd_set_shutdown_timeout(h, secs) == -1)
			return usage_error("--shutdown-timeout",
					   "'%s': expected seconds, 0..86400",
					   arg);
		return 0;
	case OPT_LOG:
		if (herd_set_log_file(h, arg) == -1)
			return usage_error("--log", "'%s': bad path", arg);
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

static int parse_args(herd *h, int argc, char **argv, int *exit_now)
{
	int c, verbosity = 0, rc, listened = 0, balanced = 0, passfd = 0;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":l:w:m:p:vqh", options, NULL)) !=
	       -1) {
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
		listened |= c == 'l';
		balanced |= c == OPT_BALANCE;
		if (c == 'm')
			passfd = strcmp(optarg, "passfd") == 0;
		if ((rc = apply(h, c, optarg, &verbosity)) != 0)
			return rc;
	}
	if (balanced && !passfd)
		return usage_error("--balance", "%s",
				   "applies to --mode passfd only");
	if (optind < argc)
		return usage_error(argv[optind], "%s",
				   "running a program is not supported yet "
				   "(only the built-in HTTP worker)");
	if (!listened && herd_listen(h, "127.0.0.1:8080") == -1)
		return 1;
	herd_set_log_level(h, HERD_LOG_INFO + verbosity);
	return 0;
}

int main(int argc, char **argv)
{
	herd *h = herd_new();
	int rc, exit_now = 0;

	if (h == NULL) {
		perror("herd");
		return 1;
	}
	rc = parse_args(h, argc, argv, &exit_now);
	if (rc == 0 && !exit_now) {
		http_worker_install(h);
		rc = herd_run(h); /* failures are in the log already */
	}
	herd_free(h);
	return rc;
}
