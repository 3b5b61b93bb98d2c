/*
 * config.c: the herd's configuration: the herd_set_* and herd_on_* setters,
 * each refusing a value it can judge alone, and the checks across them
 * (herd_check()), made before anything is bound.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "autoscale.h"
#include "internal.h"
#include "kind.h"
#include "log.h"
#include "mode.h"

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

int herd_set_mode(herd *h, herd_mode mode)
{
	const struct mode_ops *ops = mode_ops(mode);

	if (ops == NULL)
		return invalid(h, "unknown mode");
	h->mode = mode;
	h->conn = ops;
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

int herd_set_max_connections(herd *h, unsigned n)
{
	if (n > HERD_MAX_CONNECTIONS)
		return invalid(h, "max connections: too large");
	h->max_conns = n;
	return 0;
}

int herd_set_reload_batch(herd *h, int k)
{
	if (k < 0 || k > MAX_WORKERS)
		return invalid(h, "reload batch: out of range");
	h->reload_batch = k;
	return 0;
}

int herd_set_defer_accept(herd *h, int on)
{
	h->defer_accept = on != 0;
	return 0;
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

/* The user's own group alone, in a new array (for a bare uid). */
static int group_only(gid_t gid, gid_t **out, int *n)
{
	gid_t *g = malloc(sizeof(gid_t));

	if (g == NULL)
		return -1;
	g[0] = gid;
	*out = g;
	*n = 1;
	return 0;
}

/* The supplementary groups of pw (or gid alone for a bare uid), in a new
 * array: *out and *n, or -1. */
static int user_groups(herd *h, const struct passwd *pw, gid_t gid, gid_t **out,
		       int *n)
{
	int cap = 32;
	gid_t *g = NULL;

	if (pw == NULL)
		return group_only(gid, out, n);
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

/* USER: a name, or a number that names none (then *pw is NULL, and the
 * number is its group's too). */
static int user_lookup(herd *h, const char *name, const struct passwd **pw,
		       uid_t *uid, gid_t *gid)
{
	unsigned long id = 0;

	errno = 0;
	if ((*pw = getpwnam(name)) == NULL && id_parse(name, &id) == 0)
		*pw = getpwuid((uid_t)id);
	if (*pw == NULL && id_parse(name, &id) == -1) {
		snprintf(h->err, sizeof(h->err), "unknown user '%.100s'%s%s",
			 name, errno ? ": " : "", errno ? strerror(errno) : "");
		errno = EINVAL;
		return -1;
	}
	*uid = *pw != NULL ? (*pw)->pw_uid : (uid_t)id;
	*gid = *pw != NULL ? (*pw)->pw_gid : (gid_t)id;
	return 0;
}

/* GROUP: a name, or a number. */
static int group_lookup(herd *h, const char *name, gid_t *gid)
{
	const struct group *gr;
	unsigned long id;

	if ((gr = getgrnam(name)) != NULL) {
		*gid = gr->gr_gid;
	} else if (id_parse(name, &id) == 0) {
		*gid = (gid_t)id;
	} else {
		snprintf(h->err, sizeof(h->err), "unknown group '%.128s'",
			 name);
		errno = EINVAL;
		return -1;
	}
	return 0;
}

/* Everything is looked up first and stored only once all of it is known,
 * so a failed call leaves an earlier user in place, whole. */
int herd_set_user(herd *h, const char *spec)
{
	char name[128], *colon, *copy;
	const struct passwd *pw;
	gid_t gid, *groups;
	uid_t uid;
	int ngroups;

	if (snprintf(name, sizeof(name), "%s", spec) >= (int)sizeof(name) ||
	    name[0] == '\0')
		return invalid(h, "user: expected USER or USER:GROUP");
	if ((colon = strchr(name, ':')) != NULL)
		*colon++ = '\0';
	if (user_lookup(h, name, &pw, &uid, &gid) == -1 ||
	    (colon != NULL && group_lookup(h, colon, &gid) == -1) ||
	    user_groups(h, pw, gid, &groups, &ngroups) == -1)
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
	h->kind = &kind_program;
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
 * holds an executable file of that name, in out (an empty entry is the
 * current directory; with no PATH, the entries of dflt). */
static int path_search(const char *name, const char *dflt, char *out,
		       size_t len)
{
	const char *dirs = getenv("PATH");

	if (dirs == NULL)
		dirs = dflt;
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
		 : path_search(arg0, "/bin:/usr/bin", out, len) == 0) &&
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

void herd_on_relay(herd *h, herd_relay_fn fn)
{
	h->on_relay = fn;
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

/* What the setters cannot judge alone, refused before anything is bound. */
int config_check(herd *h)
{
	if (h->argv == NULL &&
	    (h->notify || h->handoff != HERD_HANDOFF_SYSTEMD ||
	     h->reload_signal != 0 || h->reopen_signal != 0 ||
	     h->inherit_output))
		return start_fail(h, "%s",
				  "notify, fd 0, reload and reopen signals and "
				  "inherited output apply to a program only");
	if (h->max_requests > 0 && h->argv != NULL &&
	    h->mode != HERD_MODE_PASSFD)
		return start_fail(h, "%s",
				  "--max-requests counts a program's "
				  "connections in passfd mode only (herd "
				  "does not see what it accepts)");
	if (h->max_conns > 0 && h->argv != NULL && h->mode != HERD_MODE_PASSFD)
		return start_fail(h, "%s",
				  "--max-connections caps a program's "
				  "connections in passfd mode only (herd "
				  "does not see what it accepts)");
	if (autoscale_check(h) == -1)
		return -1;
	if (h->reload_batch > 0 && h->reload_signal != 0)
		return start_fail(h, "%s",
				  "--reload-batch rolls generations, and "
				  "--reload-signal starts none: the program "
				  "reloads itself");
	if (h->watchdog_ms > 0 && h->argv != NULL && !h->notify)
		return start_fail(h, "%s", "a program's watchdog needs notify");
	if (h->handoff == HERD_HANDOFF_FD0 &&
	    (h->naddrs != 1 || h->mode == HERD_MODE_PASSFD))
		return start_fail(h, "%s",
				  "fd 0 takes exactly one listening "
				  "socket, and not in passfd mode");
	if (!h->drop && geteuid() == 0)
		log_warn("workers run as root; --user USER would drop that");
	return 0;
}

/* Whether execvp() would find name: a path, or a file in $PATH. */
static int program_runnable(const char *name)
{
	char full[PATH_MAX];

	if (strchr(name, '/') != NULL)
		return access(name, X_OK);
	return path_search(name, "/usr/local/bin:/usr/bin:/bin", full,
			   sizeof(full));
}

int herd_check(herd *h)
{
	int rc;

	if (h->naddrs == 0)
		return invalid(h, "no address to listen on");
	log_set_level(HERD_LOG_ERROR); /* nothing starts: no warnings */
	rc = config_check(h);
	if (rc == 0 && h->argv != NULL && program_runnable(h->argv[0]) == -1)
		rc = start_fail(h, "cannot execute %s: %s", h->argv[0],
				strerror(errno));
	log_set_level(h->log_level);
	return rc;
}
