/*
 * log.c: the log shared by the master and its workers. Each process keeps
 * its own fd and role; a reopen (SIGUSR1) replaces the fd in the process
 * that receives it, which is why the master forwards REOPEN to workers.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static struct {
	int fd;
	int level;
	int sock; /* fd is a socket: send() can be told not to block */
	char *path;
	char role[32];
} lg = {.fd = STDERR_FILENO, .level = HERD_LOG_INFO, .role = "master"};

static const char *const level_name[] = {"error", "warn", "info", "debug"};

void log_set_level(int level)
{
	if (level < HERD_LOG_ERROR)
		level = HERD_LOG_ERROR;
	if (level > HERD_LOG_DEBUG)
		level = HERD_LOG_DEBUG;
	lg.level = level;
}

void log_set_role(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(lg.role, sizeof(lg.role), fmt, ap);
	va_end(ap);
}

/* Nonblocking: a FIFO, /dev/stdout on a pipe or a terminal whose reader
 * stops must cost lines, not stall the master (on a regular file the flag
 * changes nothing). Also why a FIFO with no reader fails here with ENXIO
 * instead of waiting for one, at start and on a reopen. */
static int open_append(const char *path)
{
	return open(
	    path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0644);
}

/* A regular file on stderr opened without O_APPEND (2>file, systemd's
 * file:) is written at the offset of the description herd was given, which
 * herd's own lines, appended through another description, do not move: a
 * program's output would land on them. O_APPEND on that description makes
 * every writer append. Best effort: on failure things stay as they were. */
static void stderr_append(void)
{
	int fl = fcntl(STDERR_FILENO, F_GETFL);

	if (fl != -1 && (fl & O_APPEND) == 0)
		(void)fcntl(STDERR_FILENO, F_SETFL, fl | O_APPEND);
}

/* stderr through a description of its own, nonblocking: a reader that
 * stops reading must cost log lines, not stall the master's loop, and
 * other processes sharing stderr keep their blocking one. A socket (the
 * journal's stdout) cannot be reopened through /proc: it stays as it is,
 * and *sock says to write it with send(MSG_DONTWAIT). Without /proc, fd 2
 * is used as it is. */
static int stderr_private(int *sock)
{
	struct stat st;
	int fd;

	*sock = 0;
	if (fstat(STDERR_FILENO, &st) == -1)
		return STDERR_FILENO; /* fd 2 is open (stdio_open()) */
	if (S_ISSOCK(st.st_mode)) {
		*sock = 1;
		return STDERR_FILENO;
	}
	if (S_ISREG(st.st_mode))
		stderr_append();
	fd = open("/proc/self/fd/2",
		  O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC);
	return fd == -1 ? STDERR_FILENO : fd;
}

int log_open(const char *path)
{
	char *copy = NULL;
	int fd, sock = 0;

	if (path == NULL) {
		fd = stderr_private(&sock);
	} else {
		if ((copy = strdup(path)) == NULL)
			return -1;
		if ((fd = open_append(path)) == -1) {
			free(copy);
			return -1;
		}
	}
	log_close();
	lg.fd = fd;
	lg.sock = sock;
	lg.path = copy;
	return 0;
}

int log_reopen(void)
{
	int fd;

	if (lg.path == NULL)
		return 0;
	if ((fd = open_append(lg.path)) == -1) {
		log_error("cannot reopen log %s: %s", lg.path, strerror(errno));
		return -1;
	}
	/* dup3 swaps the file under the same fd number atomically, so a
	 * child holding the number never sees it closed. */
	if (dup3(fd, lg.fd, O_CLOEXEC) == -1) {
		log_error("cannot reopen log %s: %s", lg.path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* fd shares the master's description, O_NONBLOCK included. */
int log_adopt(int fd)
{
	int r = dup3(fd, lg.fd, O_CLOEXEC);

	close(fd);
	return r == -1 ? -1 : 0;
}

int log_fd(void)
{
	return lg.fd;
}

void log_close(void)
{
	if (lg.fd != STDERR_FILENO) {
		close(lg.fd);
		lg.sock = 0;
	}
	lg.fd = STDERR_FILENO;
	free(lg.path);
	lg.path = NULL;
}

/* Formats the time as 2026-11-22T15:48:00.123Z. */
static size_t format_time(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	n +=
	    (size_t)snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
	return n;
}

static ssize_t out(const char *buf, size_t n)
{
	if (lg.sock)
		return send(lg.fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	return write(lg.fd, buf, n);
}

void herd_log(int level, const char *fmt, ...)
{
	char line[1024];
	size_t n, max = sizeof(line) - 1;
	int saved = errno;
	va_list ap;
	int r;

	if (level > lg.level)
		return;
	if (level < HERD_LOG_ERROR)
		level = HERD_LOG_ERROR;
	n = format_time(line, max);
	r = snprintf(line + n, max - n, " %s %d %s: ", level_name[level],
		     (int)getpid(), lg.role);
	n += r > 0 ? (size_t)r : 0;
	va_start(ap, fmt);
	r = vsnprintf(line + n, max - n, fmt, ap);
	va_end(ap);
	n = r < 0 ? n : (size_t)r >= max - n ? max : n + (size_t)r;
	line[n++] = '\n';
	/* One write: a short or failed write loses this line, never blocks
	 * on a retry loop, and has nowhere better to be reported. */
	if (out(line, n) < 0) {
	}
	errno = saved;
}
