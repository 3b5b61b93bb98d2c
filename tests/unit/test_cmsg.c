/* test_cmsg.c: walking control messages, on a real unix socket (fds and
 * credentials from the kernel) and on hand-made ones. */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmsg.h"
#include "tap.h"

struct seen {
	int rights, others, fds[8];
	size_t nfds;
};

static int look(const struct cmsg *c, void *arg)
{
	struct seen *s = arg;

	if (c->nfds == 0) {
		s->others++;
		return 0;
	}
	s->rights++;
	for (size_t i = 0; i < c->nfds && s->nfds < 8; i++)
		s->fds[s->nfds++] = cmsg_fd(c, i);
	return 0;
}

static int stop(const struct cmsg *c, void *arg)
{
	(void)c;
	++*(int *)arg;
	return 7;
}

/* Sends two fds on sv[0] with the sender's credentials; receives them on
 * sv[1] into mh. */
static void send_two(int sv[2], struct msghdr *mh, void *cbuf, size_t clen)
{
	union {
		char b[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} u;
	int fds[2] = {0, 1};
	char byte = 'x', in;
	struct iovec iov = {&byte, 1}, iov_in = {&in, 1};
	struct msghdr out = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = u.b,
			     .msg_controllen = sizeof(u.b)};
	struct cmsghdr *h = CMSG_FIRSTHDR(&out);

	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(h), fds, sizeof(fds));
	if (sendmsg(sv[0], &out, 0) != 1)
		abort();
	memset(mh, 0, sizeof(*mh));
	mh->msg_iov = &iov_in;
	mh->msg_iovlen = 1;
	mh->msg_control = cbuf;
	mh->msg_controllen = clen;
	if (recvmsg(sv[1], mh, MSG_CMSG_CLOEXEC) != 1)
		abort();
}

static void from_the_kernel(void)
{
	union {
		char b[CMSG_SPACE(sizeof(struct ucred)) +
		       CMSG_SPACE(8 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh;
	struct seen s = {0};
	struct stat st;
	int sv[2], on = 1, calls = 0;
	pid_t pid = 0;

	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) == -1 ||
	    setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) == -1)
		abort();
	send_two(sv, &mh, u.b, sizeof(u.b));
	is_int(cmsg_walk(&mh, look, &s), 0, "a walk to the end returns 0");
	is_int(s.rights, 1, "one SCM_RIGHTS");
	is_int(s.others, 1, "one other (the credentials)");
	is_int(s.nfds, 2, "with the two fds sent");
	ok(s.nfds == 2 && fstat(s.fds[0], &st) == 0 &&
	       fstat(s.fds[1], &st) == 0,
	   "both open in this process");
	ok(cmsg_pid(&mh, &pid) == 0 && pid == getpid(),
	   "the sender's pid, from the kernel");
	is_int(cmsg_walk(&mh, stop, &calls), 7,
	       "a non-zero return stops the walk and is returned");
	is_int(calls, 1, "after one call");
	for (size_t i = 0; i < s.nfds; i++)
		close(s.fds[i]);
	close(sv[0]);
	close(sv[1]);
}

static void hand_made(void)
{
	union {
		char b[CMSG_SPACE(sizeof(struct ucred) + 1)];
		struct cmsghdr align;
	} u;
	struct msghdr mh = {.msg_control = u.b, .msg_controllen = sizeof(u.b)};
	struct cmsghdr *h = CMSG_FIRSTHDR(&mh);
	struct ucred cred = {42, 0, 0};
	pid_t pid = 0;
	struct seen s = {0};

	memset(u.b, 0, sizeof(u.b));
	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_CREDENTIALS;
	h->cmsg_len = CMSG_LEN(sizeof(cred) + 1);
	memcpy(CMSG_DATA(h), &cred, sizeof(cred));
	is_int(cmsg_pid(&mh, &pid), -1, "credentials of the wrong size: none");
	h->cmsg_len = CMSG_LEN(sizeof(cred));
	ok(cmsg_pid(&mh, &pid) == 0 && pid == 42, "the right size: its pid");
	h->cmsg_len = 1;
	is_int(cmsg_walk(&mh, look, &s), 0, "a length shorter than a header");
	ok(s.rights == 0 && s.others == 0, "ends the walk");
	mh.msg_controllen = 0;
	is_int(cmsg_pid(&mh, &pid), -1, "no control data: no pid");
}

int main(void)
{
	from_the_kernel();
	hand_made();
	return done_testing();
}
