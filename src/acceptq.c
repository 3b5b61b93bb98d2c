/*
 * acceptq.c: what waits in a listening socket's accept queue, for
 * `herd ctl status` and the metrics: the queue and the backlog from
 * TCP_INFO, the socket's drops from SO_MEMINFO, and the network
 * namespace's ListenOverflows from /proc/net/netstat. Each is a
 * getsockopt or a read of procfs: nothing here waits.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "listen.h"

#define TCP_STATE_LISTEN 10 /* the kernel's TCP_LISTEN */
#define NETSTAT_MAX	 16384

int listen_queue(int fd, struct accept_queue *q)
{
	struct tcp_info ti;
	uint32_t mem[SK_MEMINFO_VARS];
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	/* A unix socket has no TCP_INFO: EOPNOTSUPP. */
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == -1)
		return -1;
	/* On a listener the kernel reuses two fields: tcpi_unacked is the
	 * accept queue's length, tcpi_sacked its limit (the backlog given to
	 * listen(), capped at net.core.somaxconn). The queue can hold one
	 * more than the backlog: the kernel's test is "more than". */
	if (ti.tcpi_state != TCP_STATE_LISTEN) {
		errno = EINVAL;
		return -1;
	}
	q->queue = ti.tcpi_unacked;
	q->backlog = ti.tcpi_sacked;
	/* sk_drops: a listener counts there every SYN or handshake it drops
	 * (tcp_listendrop: its queue full, or out of memory), each retry of
	 * the same client included. */
	len = sizeof(mem);
	memset(mem, 0, sizeof(mem));
	if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &len) == -1)
		return -1;
	q->drops =
	    len > SK_MEMINFO_DROPS * sizeof(*mem) ? mem[SK_MEMINFO_DROPS] : 0;
	return 0;
}

/* The next space-separated word of *s, its length in *n; NULL at the end
 * of the line. */
static const char *word(const char **s, size_t *n)
{
	const char *w = *s + strspn(*s, " ");

	*n = strcspn(w, " \n");
	*s = w + *n;
	return *n ? w : NULL;
}

/* The first line at or after s that starts with prefix; NULL if none. */
static const char *line_with(const char *s, const char *prefix)
{
	size_t n = strlen(prefix);

	while (s != NULL && strncmp(s, prefix, n) != 0)
		if ((s = strchr(s, '\n')) != NULL)
			s++;
	return s;
}

int netstat_counter(const char *text, const char *group, const char *name,
		    unsigned long long *v)
{
	char prefix[32];
	const char *names, *values, *n, *val;
	size_t nl, vl;

	if (strlen(group) + 2 > sizeof(prefix))
		return -1;
	strcpy(prefix, group);
	strcat(prefix, ":");
	/* Two lines per group: the names, then the values in that order. */
	if ((names = line_with(text, prefix)) == NULL ||
	    (values = line_with(strchr(names, '\n'), prefix)) == NULL)
		return -1;
	while ((n = word(&names, &nl)) != NULL &&
	       (val = word(&values, &vl)) != NULL) {
		char *end;

		if (nl != strlen(name) || strncmp(n, name, nl) != 0)
			continue;
		errno = 0;
		*v = strtoull(val, &end, 10);
		return errno == 0 && end == val + vl ? 0 : -1;
	}
	return -1;
}

/* Reads path whole into buf (NUL-terminated); -1 with errno. */
static int read_small(const char *path, char *buf, size_t size)
{
	size_t len = 0;
	ssize_t got = 1;
	int fd = open(path, O_RDONLY | O_CLOEXEC), e;

	if (fd == -1)
		return -1;
	while (got > 0 && len + 1 < size) {
		got = read(fd, buf + len, size - 1 - len);
		if (got == -1 && errno == EINTR)
			got = 1;
		else if (got > 0)
			len += (size_t)got;
	}
	e = errno;
	close(fd);
	buf[len] = '\0';
	errno = e;
	return got == -1 ? -1 : 0;
}

int listen_overflows(unsigned long long *n)
{
	char *buf = malloc(NETSTAT_MAX);
	int r = -1;

	if (buf == NULL)
		return -1;
	if (read_small("/proc/net/netstat", buf, NETSTAT_MAX) == 0)
		r = netstat_counter(buf, "TcpExt", "ListenOverflows", n);
	free(buf);
	return r;
}
