/*
 * herd.c: the herd object: validated configuration, then herd_run(), which
 * binds every address before anything is forked and hands over to the
 * master.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "log.h"
#include "rights.h"

herd *herd_new(void)
{
	herd *h = calloc(1, sizeof(*h));

	if (h == NULL)
		return NULL;
	h->shutdown_ms = 10000;
	h->log_level = HERD_LOG_INFO;
	h->ready_delay_ms = 1000;
	h->upgrade_timeout_ms = 30000;
	h->stop_signal = SIGTERM;
	return h;
}

static void argv_free(char **argv)
{
	for (char **a = argv; a != NULL && *a != NULL; a++)
		free(*a);
	free(argv);
}

void herd_free(herd *h)
{
	if (h == NULL)
		return;
	for (size_t i = 0; i < h->naddrs; i++)
		addr_close(&h->addrs[i]);
	free(h->pid_file);
	free(h->control_path);
	free(h->log_file);
	free(h->groups);
	free(h->user);
	argv_free(h->argv);
	argv_free(h->upgrade_argv);
	free(h->upgrade_path);
	if (h->resume != NULL) {
		upgrade_free(h->resume);
		free(h->resume);
	}
	free(h);
}

const char *herd_error(const herd *h)
{
	return h->err;
}

static int invalid(herd *h, const char *msg)
{
	snprintf(h->err, sizeof(h->err), "%s", msg);
	errno = EINVAL;
	return -1;
}

int herd_listen(herd *h, const char *addr)
{
	if (h->naddrs == MAX_LISTEN)
		return invalid(h, "too many addresses");
	if (addr_parse(addr, &h->addrs[h->naddrs], h->err, sizeof(h->err)) ==
	    -1)
		return -1;
	h->naddrs++;
	return 0;
}

int herd_set_workers(herd *h, int n)
{
	if (n < 0 || n > MAX_WORKERS)
		return invalid(h, "worker count must be 1..512");
	h->workers = n;
	return 0;
}

int herd_set_mode(herd *h, herd_mode mode)
{
	if (mode != HERD_MODE_SHARED && mode != HERD_MODE_REUSEPORT &&
	    mode != HERD_MODE_PASSFD)
		return invalid(h, "unknown mode");
	h->mode = mode;
	return 0;
}

int herd_set_balance(herd *h, herd_balance balance)
{
	if (balance != HERD_BALANCE_LEAST && balance != HERD_BALANCE_RR)
		return invalid(h, "unknown balance policy");
	h->balance = balance;
	return 0;
}

void herd_set_cpu_affinity(herd *h, int on)
{
	h->cpu_affinity = on != 0;
}

int herd_set_shutdown_timeout(herd *h, double seconds)
{
	if (!(seconds >= 0 && seconds <= 86400))
		return invalid(h, "shutdown timeout must be 0..86400 seconds");
	h->shutdown_ms = (uint64_t)(seconds * 1000);
	return 0;
}

static int set_string(herd *h, char **field, const char *value)
{
	char *copy = NULL;

	if (value != NULL && value[0] == '\0')
		return invalid(h, "empty path");
	if (value != NULL && (copy = strdup(value)) == NULL)
		return -1;
	free(*field);
	*field = copy;
	return 0;
}

int herd_set_pid_file(herd *h, const char *path)
{
	return set_string(h, &h->pid_file, path);
}

int herd_set_control(herd *h, const char *path)
{
	return set_string(h, &h->control_path, path);
}

int herd_set_metrics(herd *h, const char *addr)
{
	if (addr_parse(addr, &h->metrics_addr, h->err, sizeof(h->err)) == -1)
		return -1;
	h->metrics = 1;
	return 0;
}

int herd_set_log_file(herd *h, const char *path)
{
	return set_string(h, &h->log_file, path);
}

void herd_set_log_level(herd *h, int level)
{
	h->log_level = level;
}

/* A name, or a number that names none. */
static int id_parse(const char *s, unsigned long *v)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*v = strtoul(s, &end, 10);
	return errno != 0 || *end != '\0' || *v >= UINT_MAX ? -1 : 0;
}

/* The supplementary groups of pw (or gid alone for a bare uid), in a new
 * array: *out and *n, or -1. */
static int user_groups(herd *h, const struct passwd *pw, gid_t gid, gid_t **out,
		       int *n)
{
	int cap = 32;
	gid_t *g = NULL;

	if (pw == NULL) { /* a bare uid: its group only */
		if ((g = malloc(sizeof(gid_t))) == NULL)
			return -1;
		g[0] = gid;
		*out = g;
		*n = 1;
		return 0;
	}
	for (;;) {
		gid_t *more = realloc(g, (size_t)cap * sizeof(gid_t));
		int want = cap;

		if (more == NULL) {
			free(g);
			return -1;
		}
		g = more;
		if (getgrouplist(pw->pw_name, gid, g, &want) != -1) {
			*out = g;
			*n = want;
			return 0;
		}
		if (want <= cap || want > 65536) {
			free(g);
			return invalid(h, "cannot list the user's groups");
		}
		cap = want;
	}
}

/* Everything is looked up first and stored only once all of it is known,
 * so a failed call leaves an earlier user in place, whole. */
int herd_set_user(herd *h, const char *spec)
{
	char name[128], *colon, *copy;
	const struct passwd *pw;
	const struct group *gr;
	unsigned long id = 0;
	gid_t gid, *groups;
	uid_t uid;
	int ngroups;

	if (snprintf(name, sizeof(name), "%s", spec) >= (int)sizeof(name) ||
	    name[0] == '\0')
		return invalid(h, "user: expected USER or USER:GROUP");
	if ((colon = strchr(name, ':')) != NULL)
		*colon++ = '\0';
	errno = 0;
	if ((pw = getpwnam(name)) == NULL && id_parse(name, &id) == 0)
		pw = getpwuid((uid_t)id);
	if (pw == NULL && id_parse(name, &id) == -1) {
		snprintf(h->err, sizeof(h->err), "unknown user '%.100s'%s%s",
			 name, errno ? ": " : "", errno ? strerror(errno) : "");
		errno = EINVAL;
		return -1;
	}
	uid = pw != NULL ? pw->pw_uid : (uid_t)id;
	gid = pw != NULL ? pw->pw_gid : (gid_t)id;
	if (colon != NULL) {
		if ((gr = getgrnam(colon)) != NULL) {
			gid = gr->gr_gid;
		} else if (id_parse(colon, &id) == 0) {
			gid = (gid_t)id;
		} else {
			snprintf(h->err, sizeof(h->err),
				 "unknown group '%.128s'", colon);
			errno = EINVAL;
			return -1;
		}
	}
	if (user_groups(h, pw, gid, &groups, &ngroups) == -1)
		return -1;
	if ((copy = strdup(spec)) == NULL) {
		free(groups);
		return -1;
	}
	free(h->groups);
	free(h->user);
	h->groups = groups;
	h->ngroups = ngroups;
	h->uid = uid;
	h->gid = gid;
	h->user = copy;
	h->drop = 1;
	return 0;
}

static char **argv_copy(char *const argv[])
{
	size_t n = 0;
	char **copy;

	while (argv != NULL && argv[n] != NULL)
		n++;
	if (n == 0) {
		errno = EINVAL;
		return NULL;
	}
	if ((copy = calloc(n + 1, sizeof(*copy))) == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if ((copy[i] = strdup(argv[i])) == NULL) {
			argv_free(copy);
			return NULL;
		}
	return copy;
}

int herd_set_program(herd *h, char *const argv[])
{
	char **copy = argv_copy(argv);

	if (copy == NULL)
		return errno == EINVAL ? invalid(h, "no program to run") : -1;
	argv_free(h->argv);
	h->argv = copy;
	return 0;
}

/* An executable regular file, by the effective ids, as exec checks. */
static int is_executable(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	       faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) == 0;
}

/* execvp's search for a name without a slash: the first PATH entry that
 * holds an executable file of that name (an empty entry is the current
 * directory; no PATH is execvp's "/bin:/usr/bin"). */
static int path_search(const char *name, char *out, size_t len)
{
	const char *dirs = getenv("PATH");

	if (dirs == NULL)
		dirs = "/bin:/usr/bin";
	for (const char *d = dirs;; d++) {
		size_t dl = strcspn(d, ":");
		int n = snprintf(out, len, "%.*s%s%s", (int)dl, d,
				 dl > 0 ? "/" : "", name);

		if (n > 0 && (size_t)n < len && is_executable(out))
			return 0;
		d += dl;
		if (*d == '\0')
			break;
	}
	errno = ENOENT;
	return -1;
}

/* Relative to the current directory, which is the start directory as long
 * as this runs before anything could change it; symlinks are kept. */
static int make_absolute(char *path, size_t len)
{
	char cwd[PATH_MAX], rel[PATH_MAX];
	const char *r = path;
	int n;

	if (path[0] == '/')
		return 0;
	while (strncmp(r, "./", 2) == 0)
		r += 2;
	if (getcwd(cwd, sizeof(cwd)) == NULL ||
	    snprintf(rel, sizeof(rel), "%s", r) >= (int)sizeof(rel))
		return -1;
	n = snprintf(path, len, "%s%s%s", cwd, strcmp(cwd, "/") ? "/" : "",
		     rel);
	return n > 0 && (size_t)n < len ? 0 : -1;
}

/* The same file as the one this process runs. */
static int is_this_binary(const char *path)
{
	struct stat a, b;

	return stat(path, &a) == 0 && stat("/proc/self/exe", &b) == 0 &&
	       a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* The path a binary upgrade runs: the one herd was started from, so that
 * SIGUSR2 finds whatever is there now (a package's new /usr/sbin/herd, a
 * `current` symlink pointed at a new release). /proc/self/exe would not
 * do: it names the file this image came from, with every symlink resolved,
 * which is the old binary. argv[0] is a claim, though (a service manager
 * may set it to anything): unless it leads to this very binary, the
 * kernel's name for it is all there is. */
static int binary_path(const char *arg0, char *out, size_t len)
{
	ssize_t n;

	if (arg0 != NULL && arg0[0] != '\0' &&
	    (strchr(arg0, '/') != NULL
		 ? snprintf(out, len, "%s", arg0) < (int)len
		 : path_search(arg0, out, len) == 0) &&
	    make_absolute(out, len) == 0 && is_this_binary(out))
		return 0;
	n = readlink("/proc/self/exe", out, len - 1);
	if (n <= 0 || (size_t)n >= len - 1)
		return -1;
	out[n] = '\0';
	return 0;
}

int herd_set_upgrade(herd *h, char *const argv[])
{
	char path[PATH_MAX];
	char **copy;

	if (binary_path(argv != NULL ? argv[0] : NULL, path, sizeof(path)) ==
	    -1)
		return invalid(h, "cannot find this binary's path");
	if ((copy = argv_copy(argv)) == NULL)
		return errno == EINVAL ? invalid(h, "no arguments") : -1;
	/* The new image finds its own path in its argv[0]: absolute now, it
	 * means the same whatever the directory or PATH by then. */
	free(copy[0]);
	if ((copy[0] = strdup(path)) == NULL) {
		argv_free(copy);
		return -1;
	}
	argv_free(h->upgrade_argv);
	h->upgrade_argv = copy;
	free(h->upgrade_path);
	if ((h->upgrade_path = strdup(path)) == NULL)
		return -1;
	return 0;
}

int herd_set_handoff(herd *h, herd_handoff how)
{
	if (how != HERD_HANDOFF_SYSTEMD && how != HERD_HANDOFF_FD0)
		return invalid(h, "unknown handoff");
	h->handoff = how;
	return 0;
}

void herd_set_notify(herd *h, int on)
{
	h->notify = on != 0;
}

static int set_ms(herd *h, uint64_t *field, double seconds, const char *what)
{
	if (!(seconds >= 0 && seconds <= 86400)) {
		snprintf(h->err, sizeof(h->err), "%s must be 0..86400 seconds",
			 what);
		errno = EINVAL;
		return -1;
	}
	*field = (uint64_t)(seconds * 1000);
	return 0;
}

int herd_set_recycling(herd *h, unsigned long long max_requests,
		       unsigned long max_rss_mb)
{
	if (max_rss_mb > 1UL << 30)
		return invalid(h, "max RSS: too large");
	h->max_requests = max_requests;
	h->max_rss_kib = (uint64_t)max_rss_mb * 1024;
	return 0;
}

int herd_set_upgrade_timeout(herd *h, double seconds)
{
	return set_ms(h, &h->upgrade_timeout_ms, seconds, "upgrade timeout");
}

int herd_set_watchdog(herd *h, double seconds)
{
	if (set_ms(h, &h->watchdog_ms, seconds, "watchdog") == -1)
		return -1;
	if (seconds > 0 && h->watchdog_ms == 0)
		h->watchdog_ms = 1; /* asked for, however short: not off */
	return 0;
}

int herd_set_ready_delay(herd *h, double seconds)
{
	return set_ms(h, &h->ready_delay_ms, seconds, "ready delay");
}

int herd_set_stop_signal(herd *h, int sig)
{
	if (sig <= 0 || sig >= NSIG)
		return invalid(h, "bad signal");
	h->stop_signal = sig;
	return 0;
}

int herd_set_reload_signal(herd *h, int sig)
{
	if (sig < 0 || sig >= NSIG)
		return invalid(h, "bad signal");
	h->reload_signal = sig;
	return 0;
}

int herd_set_reopen_signal(herd *h, int sig)
{
	if (sig < 0 || sig >= NSIG)
		return invalid(h, "bad signal");
	h->reopen_signal = sig;
	return 0;
}

void herd_set_inherit_output(herd *h, int on)
{
	h->inherit_output = on != 0;
}

void herd_set_userdata(herd *h, void *ud)
{
	h->ud = ud;
}

void herd_on_start(herd *h, herd_start_fn fn)
{
	h->on_start = fn;
}

void herd_on_connection(herd *h, herd_conn_fn fn)
{
	h->on_connection = fn;
}

void herd_on_message(herd *h, herd_msg_fn fn)
{
	h->on_message = fn;
}

void herd_on_drain(herd *h, herd_drain_fn fn)
{
	h->on_drain = fn;
}

void herd_on_stop(herd *h, herd_stop_fn fn)
{
	h->on_stop = fn;
}

int herd_ncpu(void)
{
	cpu_set_t set;
	long n;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

/* ---- run ------------------------------------------------------------------
 */

__attribute__((format(printf, 2, 3))) static int fail(herd *h, const char *fmt,
						      ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(h->err, sizeof(h->err), fmt, ap);
	va_end(ap);
	log_error("%s", h->err);
	return -1;
}

/* Refuses to start a pool the fd limit cannot hold through a reload,
 * rather than starting part of it and retrying the rest forever. The soft
 * limit is raised to the hard one first, as the limit is there to be. */
static int check_fd_limit(herd *h)
{
	int want = h->workers > 0 ? h->workers : herd_ncpu();
	struct rlimit rl;

	if (master_max_workers(h) >= want)
		return 0;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0 &&
		    master_max_workers(h) >= want)
			return 0;
	}
	return fail(h,
		    "%d workers need more fds than the limit allows (at most "
		    "%d workers; raise ulimit -n)",
		    want, master_max_workers(h));
}

/* Scaling down closes a slot's socket; the kernel resets what is queued
 * on it unless it may migrate those connections to the other slots. */
static void reuseport_hint(const herd *h)
{
	char v = '1';
	int fd;

	if (h->mode != HERD_MODE_REUSEPORT)
		return;
	fd = open("/proc/sys/net/ipv4/tcp_migrate_req", O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return;
	if (read(fd, &v, 1) == 1 && v == '0')
		log_info("reuseport: net.ipv4.tcp_migrate_req is 0, so scaling "
			 "down resets connections still queued on a retired "
			 "slot; set it to 1 to have them moved");
	close(fd);
}

/* The name LISTEN_FDNAMES gives fd 3 + k, if it gives a usable one, for
 * an address the -l option did not name: what the socket unit calls it is
 * what programs look for (sd_listen_fds_with_names). */
static void inherit_name(struct listen_addr *a, const char *names, long k)
{
	size_t len;

	if (names == NULL || a->name[0] != '\0')
		return;
	for (; k > 0 && names != NULL; k--)
		if ((names = strchr(names, ':')) != NULL)
			names++;
	if (names == NULL)
		return;
	len = strcspn(names, ":");
	if (len == 0)
		return; /* none given: derived */
	if (!fdname_valid(names, len)) {
		log_warn("%s: LISTEN_FDNAMES gives it no usable name; "
			 "programs see it as derived from the address",
			 a->text);
		return;
	}
	memcpy(a->name, names, len);
	a->name[len] = '\0';
}

/* How many names LISTEN_FDNAMES holds. */
static long count_names(const char *names)
{
	long n = 1;

	for (; *names; names++)
		n += *names == ':';
	return n;
}

/* systemd's socket activation (or anything speaking its protocol): when
 * LISTEN_PID is this process, the LISTEN_FDS sockets from fd 3 are the
 * listeners, each -l address matched to one by getsockname and named by
 * LISTEN_FDNAMES unless -l named it. Returns 1 when they were taken, 0 when
 * none were passed, -1 on a mismatch. */
static int inherit_sockets(herd *h)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	const char *fdnames = getenv("LISTEN_FDNAMES");
	unsigned char used[MAX_LISTEN * 4] = {0};
	char *names = NULL;
	long n;
	char *end;

	if (pid == NULL || fds == NULL || strtol(pid, NULL, 10) != getpid())
		return 0;
	n = strtol(fds, &end, 10);
	/* unsetenv may free what getenv returned: keep a copy. */
	if (fdnames != NULL && (names = strdup(fdnames)) == NULL)
		return fail(h, "LISTEN_FDNAMES: %s", strerror(errno));
	/* Theirs, not for herd's children (programs get their own). */
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (*end != '\0' || n < 1 || n > (long)sizeof(used)) {
		free(names);
		return fail(h, "LISTEN_FDS='%s': expected 1..%zu sockets", fds,
			    sizeof(used));
	}
	/* sd_listen_fds_with_names refuses a list of another length; herd
	 * falls back to the derived names instead. */
	if (names != NULL && count_names(names) != n) {
		log_warn("LISTEN_FDNAMES has %ld names for %ld sockets; "
			 "ignoring it",
			 count_names(names), n);
		free(names);
		names = NULL;
	}
	for (size_t i = 0; i < h->naddrs; i++) {
		long k = 0;

		while (k < n &&
		       (used[k] || !addr_matches(&h->addrs[i], 3 + (int)k)))
			k++;
		if (k == n) {
			free(names);
			return fail(h,
				    "%s: not among the %ld sockets passed in "
				    "LISTEN_FDS",
				    h->addrs[i].text, n);
		}
		if (addr_adopt(&h->addrs[i], 3 + (int)k) == -1) {
			free(names);
			return fail(h, "%s: %s", h->addrs[i].text,
				    strerror(errno));
		}
		inherit_name(&h->addrs[i], names, k);
		used[k] = 1;
		log_info("listening on %s (inherited, fd %ld)",
			 h->addrs[i].text, 3 + k);
	}
	for (long k = 0; k < n; k++)
		if (!used[k]) {
			log_warn(
			    "fd %ld from LISTEN_FDS matches no -l address; "
			    "closing it",
			    3 + k);
			close(3 + (int)k);
		}
	free(names);
	return 1;
}

/* An inherited socket for reuseport mode must have been bound with
 * SO_REUSEPORT (systemd: ReusePort=yes), or no slot can join it. */
static int check_inherited(herd *h)
{
	for (size_t i = 0; i < h->naddrs; i++) {
		int on = 0;
		socklen_t len = sizeof(on);

		if (!h->addrs[i].reuseport)
			continue;
		if (getsockopt(h->addrs[i].fd, SOL_SOCKET, SO_REUSEPORT, &on,
			       &len) == -1 ||
		    !on)
			return fail(h,
				    "%s: the inherited socket has no "
				    "SO_REUSEPORT (systemd: ReusePort=yes), "
				    "which --mode reuseport needs",
				    h->addrs[i].text);
	}
	return 0;
}

static int bind_all(herd *h)
{
	char err[256];
	int inherited;

	if (h->naddrs == 0)
		return fail(h, "%s", "no address to listen on");
	/* Unix sockets have no SO_REUSEPORT: every slot shares those. */
	for (size_t i = 0; i < h->naddrs; i++)
		h->addrs[i].reuseport = h->mode == HERD_MODE_REUSEPORT &&
					h->addrs[i].sa.ss_family != AF_UNIX;
	if ((inherited = inherit_sockets(h)) == -1 ||
	    (inherited && check_inherited(h) == -1)) {
		for (size_t j = 0; j < h->naddrs; j++)
			addr_close(&h->addrs[j]);
		return -1;
	}
	for (size_t i = 0; i < h->naddrs; i++) {
		if (!inherited &&
		    addr_bind(&h->addrs[i], err, sizeof(err)) == -1) {
			for (size_t j = 0; j < i; j++)
				addr_close(&h->addrs[j]);
			return fail(h, "%s", err);
		}
		/* A program's sockets are blocking, as systemd and FastCGI
		 * hand them over; a program wanting otherwise sets it (for
		 * every process sharing them). Only passfd's master
		 * accepts. */
		if (h->argv != NULL && h->mode != HERD_MODE_PASSFD &&
		    fd_blocking(h->addrs[i].fd, 1) == -1) {
			for (size_t j = 0; j <= i; j++)
				addr_close(&h->addrs[j]);
			return fail(h, "%s: %s", h->addrs[i].text,
				    strerror(errno));
		}
		/* Whoever reads a unix connection (a built-in worker; passfd's
		 * master, which may have to close one) takes no fds from its
		 * clients: see rights.h. A program's own sockets are its
		 * business. */
		if (h->argv == NULL || h->mode == HERD_MODE_PASSFD)
			rights_refuse(h->addrs[i].fd);
		if (!inherited)
			log_info("listening on %s", h->addrs[i].text);
	}
	return 0;
}

/* What the setters cannot judge alone, refused before anything is bound. */
static int check_program(herd *h)
{
	if (h->argv == NULL &&
	    (h->notify || h->handoff != HERD_HANDOFF_SYSTEMD ||
	     h->reload_signal != 0 || h->reopen_signal != 0 ||
	     h->inherit_output))
		return fail(h, "%s",
			    "notify, fd 0, reload and reopen signals and "
			    "inherited output apply to a program only");
	if (h->max_requests > 0 && h->argv != NULL &&
	    h->mode != HERD_MODE_PASSFD)
		return fail(h, "%s",
			    "--max-requests counts a program's "
			    "connections in passfd mode only (herd "
			    "does not see what it accepts)");
	if (h->watchdog_ms > 0 && h->argv != NULL && !h->notify)
		return fail(h, "%s", "a program's watchdog needs notify");
	if (h->handoff == HERD_HANDOFF_FD0 &&
	    (h->naddrs != 1 || h->mode == HERD_MODE_PASSFD))
		return fail(h, "%s",
			    "fd 0 takes exactly one listening "
			    "socket, and not in passfd mode");
	if (!h->drop && geteuid() == 0)
		log_warn("workers run as root; --user USER would drop that");
	return 0;
}

/* Written to a temporary name and renamed, so a reader never sees it half
 * written. */
static int write_pid_file(herd *h)
{
	char tmp[4096], line[32];
	int fd, e, n = snprintf(line, sizeof(line), "%d\n", (int)getpid());

	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", h->pid_file, (int)getpid());
	/* A fresh file, never one (or a symlink) someone left at that name:
	 * herd may be root, and the directory may not be only root's. */
	if (unlink(tmp) == -1 && errno != ENOENT)
		return fail(h, "pid file %s: %s", tmp, strerror(errno));
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0644);
	if (fd == -1)
		return fail(h, "pid file %s: %s", h->pid_file, strerror(errno));
	if (write(fd, line, (size_t)n) != n) {
		e = errno ? errno : EIO;
		close(fd);
		unlink(tmp);
		return fail(h, "pid file %s: %s", h->pid_file, strerror(e));
	}
	if (close(fd) == -1 || rename(tmp, h->pid_file) == -1) {
		e = errno;
		unlink(tmp);
		return fail(h, "pid file %s: %s", h->pid_file, strerror(e));
	}
	return 0;
}

/* With fd 0, 1 or 2 closed, the next socket would take its number and
 * receive whatever is written to stdout or stderr. Not CLOEXEC: stdio. */
static int stdio_open(void)
{
	for (int fd = 0; fd < 3; fd++) {
		int null;

		if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
			continue;
		/* fd is the lowest free number, so open() returns it. */
		if ((null = open("/dev/null", O_RDWR)) == -1)
			return -1;
		if (null != fd) {
			close(null);
			errno = EBADF;
			return -1;
		}
	}
	return 0;
}

/* A log write must fail, not kill the master: past RLIMIT_FSIZE (systemd's
 * LimitFSIZE=) the kernel sends SIGXFSZ, and to a pipe whose reader is gone
 * SIGPIPE, both fatal by default. Ignored before the first line is written;
 * spawn_fork() gives children their defaults back, and in-process workers
 * ignore both again (worker.c). */
static int ignore_write_signals(void)
{
	if (signal(SIGXFSZ, SIG_IGN) == SIG_ERR ||
	    signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		return -1;
	return 0;
}

/* Whether execvp() would find name: a path, or a file in $PATH. */
static int program_runnable(const char *name)
{
	const char *path = getenv("PATH"), *p;
	char full[4096];

	if (strchr(name, '/') != NULL)
		return access(name, X_OK);
	if (path == NULL)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path;; p = strchr(p, ':') + 1) {
		size_t len = strcspn(p, ":");

		if (snprintf(full, sizeof(full), "%.*s%s%s", (int)len, p,
			     len ? "/" : "", name) < (int)sizeof(full) &&
		    access(full, X_OK) == 0)
			return 0;
		if (p[len] == '\0')
			break;
	}
	errno = ENOENT;
	return -1;
}

int herd_check(herd *h)
{
	int rc;

	if (h->naddrs == 0)
		return invalid(h, "no address to listen on");
	log_set_level(HERD_LOG_ERROR); /* nothing starts: no warnings */
	rc = check_program(h);
	if (rc == 0 && h->argv != NULL && program_runnable(h->argv[0]) == -1)
		rc = fail(h, "cannot execute %s: %s", h->argv[0],
			  strerror(errno));
	log_set_level(h->log_level);
	return rc;
}

/* Started by an upgrade: the listening sockets come from the old image,
 * in -l order, and must still be what -l says. */
static int resume_sockets(herd *h)
{
	struct upgrade_state *st = h->resume;

	if (st->naddrs != (int)h->naddrs)
		return fail(h,
			    "upgrade: %d listening sockets handed over, "
			    "%zu -l addresses given",
			    st->naddrs, h->naddrs);
	for (size_t i = 0; i < h->naddrs; i++) {
		h->addrs[i].reuseport = h->mode == HERD_MODE_REUSEPORT &&
					h->addrs[i].sa.ss_family != AF_UNIX;
		if (!addr_matches(&h->addrs[i], st->addr_fds[i]))
			return fail(h,
				    "upgrade: %s is not the socket handed over",
				    h->addrs[i].text);
		h->addrs[i].fd = st->addr_fds[i];
		/* -l names come again with the argv; socket activation's
		 * only from the old image. */
		inherit_name(&h->addrs[i], st->names, (long)i);
		log_info("listening on %s (kept across the upgrade)",
			 h->addrs[i].text);
	}
	return 0;
}

int herd_run(herd *h)
{
	int rc = 1;

	if (stdio_open() == -1) {
		snprintf(h->err, sizeof(h->err), "/dev/null: %s",
			 strerror(errno));
		return 1;
	}
	if (ignore_write_signals() == -1) {
		snprintf(h->err, sizeof(h->err), "signal: %s", strerror(errno));
		return 1;
	}
	/* A child must not flush the caller's unwritten stdio twice. */
	fflush(NULL);
	log_set_level(h->log_level);
	log_set_role("master");
	if (log_open(h->log_file) == -1) {
		int e = errno;

		/* to stderr, where the log still is. ENXIO: a FIFO is opened
		 * without waiting for a reader (log.c), a socket not at all */
		fail(h, "log %s: %s%s", h->log_file, strerror(e),
		     e == ENXIO ? " (a FIFO with no reader, or a socket?)"
				: "");
		return 1;
	}
	if ((h->resume = calloc(1, sizeof(*h->resume))) == NULL)
		goto out;
	switch (upgrade_load(h->resume)) {
	case -1:
		fail(h,
		     "upgrade: the hand-over from the old image is unusable: "
		     "%s",
		     strerror(errno));
		goto out;
	case 0:
		free(h->resume);
		h->resume = NULL;
	}
	if (check_program(h) == -1 || check_fd_limit(h) == -1 ||
	    (h->resume ? resume_sockets(h) : bind_all(h)) == -1)
		goto out;
	reuseport_hint(h);
	if (h->pid_file != NULL && write_pid_file(h) == -1) {
		for (size_t i = 0; i < h->naddrs; i++)
			addr_close(&h->addrs[i]);
		goto out;
	}
	rc = master_run(h);
	if (h->pid_file != NULL)
		unlink(h->pid_file);
	for (size_t i = 0; i < h->naddrs; i++)
		addr_close(&h->addrs[i]);
out:
	log_close();
	return rc;
}
