/*
 * log.c: the log shared by the master and its workers. Each process keeps
 * its own fd and role; a reopen (SIGUSR1) replaces the fd in the process
 * that receives it, which is why the master forwards REOPEN to workers.
 *
 * Writing a line never waits and never kills: every description written to
 * is herd's own and nonblocking, a socket gets send(MSG_DONTWAIT |
 * MSG_NOSIGNAL), and SIGXFSZ and SIGPIPE are ignored (herd_run(), and
 * worker.c for in-process workers), so a full pipe, a full disk or
 * RLIMIT_FSIZE cost lines. Those are counted per process and, once a write
 * works again, said in one line (at most one such line a second).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define LOG_LINE     1024 /* bytes of a line, its newline included */
#define NOTICE_EVERY 1000 /* ms between two "lines were lost" lines */

/* A nonblocking write to a pipe of at most PIPE_BUF bytes goes whole or
 * not at all, so a line in a pipe is never cut, whoever else writes. */
_Static_assert(LOG_LINE <= PIPE_BUF, "a log line must fit in PIPE_BUF");

static struct {
	int fd;
	int level;
	int sock; /* fd is a socket: send() can be told not to block */
	char *path;
	char role[32];
	char tail[LOG_LINE]; /* what a short write left of a line */
	size_t tail_len;
	unsigned long long lost;   /* lines not written, ever */
	unsigned long long unsaid; /* of those, not yet said in the log */
	int lost_errno;		   /* why the last one was lost */
	uint64_t said_ms;	   /* when that was last said, 0: never */
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

static void lose(int err)
{
	lg.lost++;
	lg.unsaid++;
	lg.lost_errno = err;
}

/* A new file takes no end of a line begun in the old one: that line is
 * lost, for the reason its write stopped short. */
static void drop_tail(void)
{
	if (lg.tail_len > 0)
		lose(lg.lost_errno);
	lg.tail_len = 0;
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
	drop_tail();
	return 0;
}

/* fd shares the master's description, O_NONBLOCK included. */
int log_adopt(int fd)
{
	int r = dup3(fd, lg.fd, O_CLOEXEC);

	close(fd);
	if (r == -1)
		return -1;
	drop_tail();
	return 0;
}

int log_fd(void)
{
	return lg.fd;
}

unsigned long long log_lost_lines(void)
{
	return lg.lost;
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
	drop_tail();
}

/* ---- writing ------------------------------------------------------------ */

static uint64_t now_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		return 0;
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Formats the time as 2026-11-22T15:48:00.123Z. */
static size_t format_time(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	if (clock_gettime(CLOCK_REALTIME, &ts) == -1)
		memset(&ts, 0, sizeof(ts));
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	n +=
	    (size_t)snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
	return n;
}

/* The length of the text after snprintf() returned r for what it wrote at
 * n into a buffer of cap bytes: a cut text ends before its NUL. */
static size_t fitted(size_t n, int r, size_t cap)
{
	if (r < 0)
		return n;
	return (size_t)r < cap - n ? n + (size_t)r : cap - 1;
}

/* "TIME LEVEL PID ROLE: message\n" in line (LOG_LINE bytes), cut to fit. */
__attribute__((format(printf, 3, 0))) static size_t
format_line(char *line, int level, const char *fmt, va_list ap)
{
	size_t cap = LOG_LINE - 1, n; /* 1 byte kept for the newline */
	int r;

	if (level < HERD_LOG_ERROR)
		level = HERD_LOG_ERROR;
	n = format_time(line, cap);
	r = snprintf(line + n, cap - n, " %s %d %s: ", level_name[level],
		     (int)getpid(), lg.role);
	n = fitted(n, r, cap);
	r = vsnprintf(line + n, cap - n, fmt, ap);
	n = fitted(n, r, cap);
	line[n++] = '\n';
	return n;
}

__attribute__((format(printf, 3, 4))) static size_t
make_line(char *line, int level, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	n = format_line(line, level, fmt, ap);
	va_end(ap);
	return n;
}

static ssize_t out(const char *buf, size_t n)
{
	if (lg.sock)
		return send(lg.fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	return write(lg.fd, buf, n);
}

/* As much of buf as goes now; errno says why when it is short. Every
 * description is nonblocking, so this ends at the first EAGAIN (a file
 * at its size limit or a full disk: at EFBIG or ENOSPC). */
static size_t put(const char *buf, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = out(buf + done, n - done);

		if (r > 0) {
			done += (size_t)r;
		} else if (r == 0) {
			errno = EIO; /* no progress and no reason: stop */
			break;
		} else if (errno != EINTR) {
			break;
		}
	}
	return done;
}

/* Writes a line, keeping what a short write (a file at its limit, a
 * stream socket) left of it for put_tail(): a cut line with the next one
 * after it would garble both. Returns 0 when none of it went. */
static int put_line(const char *line, size_t n)
{
	size_t done = put(line, n);

	if (done > 0 && done < n) {
		memcpy(lg.tail, line + done, n - done);
		lg.tail_len = n - done;
		lg.lost_errno = errno; /* the reason, should it never go */
	}
	return done > 0;
}

/* The rest of a cut line goes before anything else. */
static int put_tail(void)
{
	size_t len = lg.tail_len, done;

	if (len == 0)
		return 1;
	done = put(lg.tail, len);
	memmove(lg.tail, lg.tail + done, len - done);
	lg.tail_len = len - done;
	return lg.tail_len == 0;
}

/* Lines were lost: once a write works again, one line says how many and
 * why, at most every NOTICE_EVERY ms, so a log at the edge of full does not
 * fill up with these. Returns 0 when the log still takes nothing (or took
 * only part of this line): the caller's line is lost too. */
static int say_lost(void)
{
	char line[LOG_LINE];
	uint64_t now;
	size_t n;

	if (lg.unsaid == 0)
		return 1;
	now = now_ms();
	if (lg.said_ms != 0 && now - lg.said_ms < NOTICE_EVERY)
		return 1;
	n = make_line(line, HERD_LOG_WARN,
		      "log: %llu line%s could not be written (%s); %llu in all",
		      lg.unsaid, lg.unsaid == 1 ? "" : "s",
		      strerror(lg.lost_errno), lg.lost);
	if (!put_line(line, n))
		return 0;
	lg.unsaid = 0;
	lg.said_ms = now;
	return lg.tail_len == 0;
}

/* At most one failed write per line, whatever happens: a log that takes
 * nothing costs a system call per line, and never a retry loop. */
static void emit(const char *line, size_t n)
{
	if (!put_tail() || !say_lost() || !put_line(line, n))
		lose(errno);
}

void herd_log(int level, const char *fmt, ...)
{
	char line[LOG_LINE];
	int saved = errno;
	va_list ap;
	size_t n;

	if (level > lg.level)
		return;
	va_start(ap, fmt);
	n = format_line(line, level, fmt, ap);
	va_end(ap);
	emit(line, n);
	errno = saved;
}
