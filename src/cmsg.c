/*
 * cmsg.c: walking a received message's control messages (cmsg.h).
 */
#include <string.h>
#include <sys/socket.h>

#include "cmsg.h"

int cmsg_walk(struct msghdr *mh, cmsg_fn *fn, void *arg)
{
	for (struct cmsghdr *h = CMSG_FIRSTHDR(mh); h != NULL;
	     h = CMSG_NXTHDR(mh, h)) {
		struct cmsg c = {h->cmsg_level, h->cmsg_type, CMSG_DATA(h), 0,
				 0};
		int r;

		if (h->cmsg_len < CMSG_LEN(0)) /* not from a kernel */
			break;
		c.len = h->cmsg_len - CMSG_LEN(0);
		if (c.level == SOL_SOCKET && c.type == SCM_RIGHTS)
			c.nfds = c.len / sizeof(int);
		if ((r = fn(&c, arg)) != 0)
			return r;
	}
	return 0;
}

int cmsg_fd(const struct cmsg *c, size_t i)
{
	int fd;

	memcpy(&fd, c->data + i * sizeof(fd), sizeof(fd));
	return fd;
}

static int credentials(const struct cmsg *c, void *arg)
{
	struct ucred cred;

	if (c->level != SOL_SOCKET || c->type != SCM_CREDENTIALS ||
	    c->len != sizeof(cred))
		return 0;
	memcpy(&cred, c->data, sizeof(cred));
	*(pid_t *)arg = cred.pid;
	return 1;
}

int cmsg_pid(struct msghdr *mh, pid_t *pid)
{
	return cmsg_walk(mh, credentials, pid) ? 0 : -1;
}
