/*
 * child.c: the C side of the passfd protocol, for programs herd runs
 * (herd -m passfd -- PROGRAM). docs/protocol.md is the reference; these
 * are a convenience over it, and the integration tests hold them to it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "channel.h"
#include "herd.h"

static int env_int(const char *name, int fallback)
{
	const char *v = getenv(name);
	char *end;
	long n;

	if (v == NULL)
		return fallback;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || n < 0 || n > 1 << 30)
		return fallback;
	return (int)n;
}

int herd_child_channel(void)
{
	int fd = env_int("HERD_CHANNEL_FD", -1);

	if (fd < 0 || fcntl(fd, F_GETFD) == -1) {
		errno = ENOENT;
		return -1;
	}
	return fd;
}

static int child_send(int chan, uint32_t type, const void *data, uint32_t len)
{
	unsigned char buf[sizeof(struct msg_hdr) + sizeof(struct msg_load)];
	struct msg_hdr hdr = {type,
			      len,
			      (int32_t)getpid(),
			      env_int("HERD_SLOT", -1),
			      (uint32_t)env_int("HERD_GENERATION", 0),
			      0};

	memcpy(buf, &hdr, sizeof(hdr));
	if (len > 0)
		memcpy(buf + sizeof(hdr), data, len);
	return msg_sendraw(chan, buf, sizeof(hdr) + len, NULL, 0) == -1 ? -1
									: 0;
}

int herd_child_ready(int chan)
{
	return child_send(chan, MSG_READY, NULL, 0);
}

int herd_child_report(int chan, unsigned active, unsigned long long total)
{
	struct msg_load load = {active, 0, total};

	return child_send(chan, MSG_HEARTBEAT, &load, sizeof(load));
}

int herd_child_recv(int chan, int *fd)
{
	int copy = fcntl(chan, F_DUPFD_CLOEXEC, 0);
	struct chan *c;
	struct msg m;
	int r, result = -1;

	*fd = -1;
	if (copy == -1)
		return -1; /* EMFILE and the like: not "herd is gone" */
	if ((c = chan_new(copy, MSG_TO_WORKER, NULL, NULL, NULL)) == NULL) {
		close(copy);
		return -1;
	}
	for (;;) {
		if (!chan_room(c)) /* a connection would be lost: left queued */
			break;
		errno = 0;
		r = chan_recv(c, &m);
		if (r == -1) { /* errno 0: end of file, herd is gone */
			result = errno == 0 ? 0 : -1;
			break;
		}
		if (r == 0) { /* nothing yet: wait, unless told not to */
			struct pollfd pfd = {chan, POLLIN, 0};
			int fl = fcntl(chan, F_GETFL);

			if (fl == -1 || (fl & O_NONBLOCK)) {
				errno = fl == -1 ? errno : EAGAIN;
				break;
			}
			if (poll(&pfd, 1, -1) == -1 && errno != EINTR)
				break;
			continue;
		}
		if (m.hdr.type == MSG_CONNECTION) {
			*fd = m.fds[0];
			result = 1;
			break;
		}
		for (int i = 0; i < m.nfds; i++)
			close(m.fds[i]);
		if (m.hdr.type == MSG_QUIT || m.hdr.type == MSG_TERMINATE) {
			result = 0;
			break;
		}
	}
	chan_free(c);
	return result;
}
