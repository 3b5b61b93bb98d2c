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
#include <time.h>
#include <unistd.h>

#include "log.h"

static struct {
	int fd;
	int level;
	char *path;
	char role[32];
} lg = {STDERR_FILENO, HERD_LOG_INFO, NULL, "master"};

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

static int open_append(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

/* stderr through a description of its own, nonblocking: a reader that
 * stops reading must cost log lines, not stall the master's loop, and
 * other processes sharing stderr keep their blocking one. A socket (the
 * journal's) cannot be reopened this way and stays as it is. */
static int stderr_nonblocking(void)
{
	int fd = open("/proc/self/fd/2",
		      O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC);

	return fd == -1 ? STDERR_FILENO : fd;
}

int log_open(const char *path)
{
	char *copy = NULL;
	int fd;

	if (path == NULL) {
		fd = stderr_nonblocking();
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
	if (lg.fd != STDERR_FILENO)
		close(lg.fd);
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
	if (write(lg.fd, line, n) < 0) {
	}
	errno = saved;
}
