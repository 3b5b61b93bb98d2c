/*
 * sdnotify.c: herd as a systemd Type=notify service: READY=1 once every
 * worker is ready, RELOADING=1 and READY=1 around a reload, STOPPING=1,
 * WATCHDOG=1. The protocol is a datagram of KEY=value lines to the unix
 * socket named by NOTIFY_SOCKET ('@' first: an abstract address). Sends
 * never block: a notification that cannot go now is dropped and logged.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "log.h"

static int notify_fd = -1;
static struct sockaddr_un notify_addr;
static socklen_t notify_len;

int sdnotify_open(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	size_t n;

	if (path == NULL || path[0] == '\0')
		return 0;
	n = strlen(path);
	if ((path[0] != '/' && path[0] != '@') ||
	    n >= sizeof(notify_addr.sun_path)) {
		log_warn("NOTIFY_SOCKET '%s': not a unix socket address; "
			 "ignored",
			 path);
		return 0;
	}
	memset(&notify_addr, 0, sizeof(notify_addr));
	notify_addr.sun_family = AF_UNIX;
	memcpy(notify_addr.sun_path, path, n);
	if (path[0] == '@')
		notify_addr.sun_path[0] = '\0';
	notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
				 (path[0] == '/'));
	/* Left in the environment for an upgraded image of herd; programs
	 * never see it (child_env), and get their own with --notify. */
	notify_fd =
	    socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	return notify_fd == -1 ? -1 : 0;
}

void sdnotify(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	if (notify_fd < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return;
	if (sendto(notify_fd, buf, (size_t)n, MSG_NOSIGNAL,
		   (struct sockaddr *)&notify_addr, notify_len) == -1)
		log_warn("sd_notify %.40s: %s", buf, strerror(errno));
}

int sdnotify_fd(int fd, const char *text)
{
	struct iovec iov = {(void *)text, strlen(text)};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = {.msg_name = &notify_addr,
			    .msg_namelen = notify_len,
			    .msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *c;

	if (notify_fd < 0) {
		errno = ENOTCONN;
		return -1;
	}
	memset(u.buf, 0, sizeof(u.buf));
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(notify_fd, &mh, MSG_NOSIGNAL) == -1 ? -1 : 0;
}

unsigned long long sdnotify_monotonic_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000ULL +
	       (unsigned long long)ts.tv_nsec / 1000;
}

uint64_t sdnotify_watchdog_ms(void)
{
	const char *usec = getenv("WATCHDOG_USEC");
	const char *pid = getenv("WATCHDOG_PID");
	unsigned long long v;
	char *end;

	if (notify_fd < 0 || usec == NULL)
		return 0;
	if (pid != NULL && strtol(pid, NULL, 10) != (long)getpid())
		return 0;
	errno = 0;
	v = strtoull(usec, &end, 10);
	if (errno != 0 || *end != '\0' || v < 2000)
		return 0;
	return v / 2000; /* half of it, in ms, as sd_watchdog_enabled says */
}

void sdnotify_close(void)
{
	if (notify_fd >= 0)
		close(notify_fd);
	notify_fd = -1;
}

void sdnotify_parse(char *text, size_t len, struct sd_note *n)
{
	memset(n, 0, sizeof(*n));
	for (char *line = text, *end; line < text + len; line = end + 1) {
		if ((end = memchr(line, '\n', (size_t)(text + len - line))) ==
		    NULL)
			end = text + len;
		*end = '\0';
		if (strcmp(line, "READY=1") == 0) {
			n->ready = 1;
		} else if (strncmp(line, "STATUS=", 7) == 0) {
			n->status = line + 7;
			n->status_len = (size_t)(end - line - 7);
		} else if (strcmp(line, "WATCHDOG=1") == 0) {
			n->watchdog = 1;
		} else if (strcmp(line, "WATCHDOG=trigger") == 0) {
			n->trigger = 1;
		}
	}
}
