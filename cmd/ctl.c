/*
 * ctl.c: herd ctl, the control socket's client. One command line goes to
 * the master, and the reply is printed once it is known to be whole. A
 * reload or an upgrade then waits for its generation's outcome (the
 * master's "generation N"), unless --no-wait.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define WAIT_POLL_MS 100   /* between two looks at the outcome */
#define WAIT_LOST_MS 10000 /* the master unreachable this long: give up */

static const char ctl_usage[] =
    "usage: herd ctl [--control PATH] [--no-wait] COMMAND\n"
    "\n"
    "Commands: status [--json|--html], metrics (Prometheus text), reload,\n"
    "quit, stop, reopen, scale N|MIN:MAX, upgrade, generation N, health.\n"
    "PATH is the master's --control socket (default: $HERD_CONTROL).\n"
    "reload and upgrade wait until the new generation serves (exit 0) or\n"
    "is abandoned (exit 1, with why); --no-wait returns once it starts.\n"
    "Exit status: 0 done, 1 refused or failed, 2 usage.\n";

/* The master's replies are at most 1 MiB (REPLY_MAX in src/control.c). */
#define CTL_REPLY_MAX (16 << 20)

struct ctl_buf {
	char *buf;
	size_t len, cap;
};

/* Connected to the master at path with line sent, or -1 with errno. */
static int ctl_connect(const char *path, const char *line, size_t len)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timeval tv = {10, 0};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memcpy(sa.sun_path, path, strlen(path));
	/* A master that refuses us may answer and close before our line is
	 * sent: then the send fails (EPIPE) but its answer is there to read. */
	if (fd == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    (send(fd, line, len, MSG_NOSIGNAL) != (ssize_t)len &&
	     errno != EPIPE && errno != ECONNRESET)) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* A reply has no length of its own: it ends where the master closes the
 * connection. Reads to that end of file: 0; or -1 with errno on an error,
 * after 10 s without a byte (EAGAIN), or past CTL_REPLY_MAX (EMSGSIZE). */
static int ctl_read(int fd, struct ctl_buf *r)
{
	for (;;) {
		ssize_t n;

		if (r->cap - r->len < 4096) {
			size_t cap = r->cap > 0 ? r->cap * 2 : 65536;
			char *b;

			if (cap > CTL_REPLY_MAX) {
				errno = EMSGSIZE;
				return -1;
			}
			if ((b = realloc(r->buf, cap)) == NULL)
				return -1;
			r->buf = b;
			r->cap = cap;
		}
		n = recv(fd, r->buf + r->len, r->cap - r->len, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? 0 : -1;
		r->len += (size_t)n;
	}
}

/* Why the reply is not a whole one, or NULL. Whole is "ok\n" or "error: "
 * first, a newline last (every reply the master writes ends with one),
 * then the end of file. A reset after a whole error line is an end too:
 * the master refuses a stranger or an overlong line without reading all
 * of it, and closing with unread data is what the kernel reports as
 * ECONNRESET. A reply cut short while the master sent it (the master
 * killed, a timeout) can only be told by what it lacks. */
static const char *ctl_incomplete(const struct ctl_buf *r, int rc, int err)
{
	int ok = r->len >= 3 && memcmp(r->buf, "ok\n", 3) == 0;
	int error = r->len >= 7 && memcmp(r->buf, "error: ", 7) == 0;
	int ends = r->len > 0 && r->buf[r->len - 1] == '\n';

	if (rc == -1 && !(err == ECONNRESET && error && ends))
		return err == EAGAIN	 ? "no end of the reply within 10 s"
		       : err == EMSGSIZE ? "a reply over 16 MiB"
					 : strerror(err);
	if (r->len == 0)
		return "no reply";
	if (!ok && !error)
		return "not a reply of herd's";
	return ends ? NULL : "the reply was cut short";
}

/* The body of an ok reply on stdout; an error's on stderr. */
static int ctl_print(const struct ctl_buf *r)
{
	if (memcmp(r->buf, "ok\n", 3) == 0) {
		if (fwrite(r->buf + 3, 1, r->len - 3, stdout) != r->len - 3 ||
		    fflush(stdout) == EOF) {
			fprintf(stderr, "herd ctl: standard output: %s\n",
				strerror(errno));
			return 1;
		}
		return 0;
	}
	fputs("herd ctl: ", stderr);
	fwrite(r->buf + 7, 1, r->len - 7, stderr);
	return 1;
}

/* One command line to the master and its whole reply into r, NUL-ended:
 * 0, or -1 with why. */
static int ctl_ask(const char *path, const char *line, size_t len,
		   struct ctl_buf *r, const char **why)
{
	int fd, rc, err;

	r->len = 0;
	if ((fd = ctl_connect(path, line, len)) == -1) {
		*why = strerror(errno);
		return -1;
	}
	rc = ctl_read(fd, r);
	err = errno;
	close(fd);
	if ((*why = ctl_incomplete(r, rc, err)) != NULL)
		return -1;
	r->buf[r->len] = '\0'; /* ctl_read left room */
	return 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* The generation a reload or upgrade reply names ("generation N"), or 0:
 * a reload by signal starts none. */
static unsigned named_generation(const struct ctl_buf *r)
{
	const char *g = strstr(r->buf, "generation ");
	unsigned gen;

	if (g == NULL || sscanf(g, "generation %u", &gen) != 1)
		return 0;
	return gen;
}

/* Asks "generation N" until it is no longer starting; prints the outcome.
 * An upgrade's exec closes the connection the master was answering, and
 * the new image answers once it has resumed: a master unreachable for
 * less than WAIT_LOST_MS is waited for. */
static int ctl_wait(const char *path, unsigned gen, struct ctl_buf *r)
{
	char line[64];
	int len = snprintf(line, sizeof(line), "generation %u\n", gen);
	long lost = 0;
	const char *why;

	for (;;) {
		sleep_ms(WAIT_POLL_MS);
		if (ctl_ask(path, line, (size_t)len, r, &why) == -1) {
			if ((lost += WAIT_POLL_MS) < WAIT_LOST_MS)
				continue;
			fprintf(stderr,
				"herd ctl: %s: %s; generation %u's outcome is "
				"unknown\n",
				path, why, gen);
			return 1;
		}
		lost = 0;
		if (strncmp(r->buf, "ok\n", 3) != 0)
			return ctl_print(r);
		if (strstr(r->buf, ": starting ") != NULL)
			continue;
		if (strstr(r->buf, ": ready ") != NULL)
			return ctl_print(r);
		fprintf(stderr, "herd ctl: %s", r->buf + 3);
		return 1;
	}
}

/* herd ctl: one command line to the control socket, the reply printed
 * only once it is known to be whole. */
int ctl_main(int argc, char **argv)
{
	const char *path = getenv("HERD_CONTROL");
	struct ctl_buf reply = {NULL, 0, 0};
	const char *why;
	char line[512];
	size_t used = 0;
	int i = 1, rc, wait = 1, waits;
	unsigned gen;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--control") == 0) {
			if (++i >= argc)
				return usage_error("--control", "%s",
						   "needs a path");
			path = argv[i];
		} else if (strcmp(argv[i], "--no-wait") == 0) {
			wait = 0;
		} else if (strcmp(argv[i], "-h") == 0 ||
			   strcmp(argv[i], "--help") == 0) {
			fputs(ctl_usage, stdout);
			return 0;
		} else {
			return usage_error("herd ctl", "'%s': unknown option",
					   argv[i]);
		}
	}
	if (i >= argc)
		return usage_error("herd ctl", "%s", "no command");
	if (path == NULL)
		return usage_error("herd ctl", "%s",
				   "no --control PATH (or HERD_CONTROL)");
	if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return usage_error("--control", "'%s': path too long", path);
	waits =
	    wait && i + 1 == argc &&
	    (strcmp(argv[i], "reload") == 0 || strcmp(argv[i], "upgrade") == 0);
	for (; i < argc; i++) {
		int n = snprintf(line + used, sizeof(line) - used, "%s%s",
				 used ? " " : "", argv[i]);

		if (n < 0 || (size_t)n >= sizeof(line) - used - 1)
			return usage_error("herd ctl", "%s",
					   "command too long");
		used += (size_t)n;
	}
	line[used++] = '\n';
	if (ctl_ask(path, line, used, &reply, &why) == -1) {
		fprintf(stderr, "herd ctl: %s: %s\n", path, why);
		rc = 1;
	} else {
		rc = ctl_print(&reply);
		if (rc == 0 && waits && (gen = named_generation(&reply)) != 0)
			rc = ctl_wait(path, gen, &reply);
	}
	free(reply.buf);
	return rc;
}
