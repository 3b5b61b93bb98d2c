/*
 * rights.c: refusing peers' fds at the source, and closing off the loop's
 * thread those that still arrive (see rights.h for why close can sleep).
 *
 * The helper is a thread, not a process: it needs no channel, shares the
 * fd table (so handing it an fd is writing its number to a pipe) and dies
 * with the process. It starts on first need in the process that needs it,
 * since fork() copies no thread: a child finds the pid changed and starts
 * its own. Every signal is blocked in it, so signals still reach the loop's
 * signalfd. Caveat: an fd queued for it when the master forks is inherited
 * by the child, whose own close (at exit, or exec's close-on-exec) then
 * drops it; that costs a worker's start, never the master's loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cmsg.h"
#include "log.h"
#include "rights.h"

#ifndef SO_PASSRIGHTS
#define SO_PASSRIGHTS 83 /* Linux 6.16; older headers lack it */
#endif

static struct {
	int fallback; /* the kernel cannot refuse: close through the helper */
	pid_t pid;    /* the process whose helper w feeds; 0: none yet */
	int w;	      /* the helper's pipe, write end (nonblocking) */
	unsigned long leaked;
} rt = {0, 0, -1, 0};

int rights_refuse(int fd)
{
	int off = 0;

	/* The test suite's way to run the fallback on a kernel that has
	 * SO_PASSRIGHTS: as if the kernel did not know the option. */
	if (getenv("HERD_TEST_NO_PASSRIGHTS") != NULL)
		errno = ENOPROTOOPT;
	else if (setsockopt(fd, SOL_SOCKET, SO_PASSRIGHTS, &off, sizeof(off)) ==
		 0)
		return 0;
	else if (errno == EOPNOTSUPP)
		return 0; /* not a unix socket: nothing can arrive on it */
	if (!rt.fallback)
		log_debug("SO_PASSRIGHTS: %s; peers' fds are closed by a "
			  "helper thread",
			  strerror(errno));
	rt.fallback = 1;
	return -1;
}

int rights_at_source(void)
{
	return !rt.fallback;
}

unsigned long rights_leaked(void)
{
	return rt.leaked;
}

static void *closer(void *arg)
{
	int r = (int)(intptr_t)arg, fd;

	for (;;) {
		ssize_t n = read(r, &fd, sizeof(fd));

		if (n == (ssize_t)sizeof(fd))
			close(fd); /* may sleep: that is what we are for */
		else if (!(n == -1 && errno == EINTR))
			return NULL; /* pipe closed: the process is ending */
	}
}

/* Starts this process's helper unless it runs already. */
static int closer_start(void)
{
	sigset_t all, old;
	pthread_attr_t at;
	pthread_t t;
	int p[2], e;

	if (rt.pid == getpid())
		return 0;
	/* A forked child: the parent's pipe feeds a thread that is not
	 * here. Forgotten, not closed: a worker closed every inherited fd
	 * at its start, and the number may be one of its own by now. */
	rt.w = -1;
	rt.pid = 0;
	if (pipe2(p, O_CLOEXEC) == -1)
		return -1;
	if (fcntl(p[1], F_SETFL, O_NONBLOCK) == -1) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if ((e = pthread_attr_init(&at)) == 0) {
		/* Born with every signal blocked: they are for the loop's
		 * signalfd, which sees only what no thread would take. */
		sigfillset(&all);
		e = pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		if (e == 0)
			e = pthread_sigmask(SIG_SETMASK, &all, &old);
		if (e == 0) {
			e = pthread_create(&t, &at, closer,
					   (void *)(intptr_t)p[0]);
			pthread_sigmask(SIG_SETMASK, &old, NULL); /* no error */
		}
		pthread_attr_destroy(&at);
	}
	if (e != 0) {
		close(p[0]);
		close(p[1]);
		errno = e;
		return -1;
	}
	rt.w = p[1];
	rt.pid = getpid();
	return 0;
}

static int closer_give(int fd)
{
	ssize_t n;

	if (closer_start() == -1)
		return -1;
	do
		n = write(rt.w, &fd, sizeof(fd));
	while (n == -1 && errno == EINTR);
	return n == (ssize_t)sizeof(fd) ? 0 : -1;
}

void rights_close(int fd)
{
	if (fd < 0)
		return;
	if (!rt.fallback) {
		close(fd);
		return;
	}
	if (closer_give(fd) == 0)
		return;
	/* The helper is stuck on earlier fds, with thousands queued (or it
	 * could not start): leaking one beats sleeping in the loop. */
	if (rt.leaked++ == 0)
		log_warn("an fd a peer sent cannot be closed without blocking "
			 "(%s); left open, and counted",
			 strerror(errno));
}

void rights_close_all(const int *fds, int n)
{
	for (int i = 0; i < n; i++)
		rights_close(fds[i]);
}

static int close_rights(const struct cmsg *c, void *arg)
{
	(void)arg;
	for (size_t i = 0; i < c->nfds; i++)
		rights_close(cmsg_fd(c, i));
	return 0;
}

void rights_close_msg(struct msghdr *mh)
{
	cmsg_walk(mh, close_rights, NULL);
}

ssize_t rights_recv(int fd, void *buf, size_t len, int flags)
{
	union {
		char b[CMSG_SPACE(RIGHTS_MAX * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = {buf, len};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = u.b,
			    .msg_controllen = sizeof(u.b)};
	ssize_t n;

	if (!rt.fallback) /* refused at the source: none can be attached */
		return recv(fd, buf, len, flags);
	if ((n = recvmsg(fd, &mh, flags | MSG_CMSG_CLOEXEC)) >= 0)
		rights_close_msg(&mh);
	return n;
}
