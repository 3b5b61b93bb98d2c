/*
 * notify.c: the children's NOTIFY_SOCKET: an abstract datagram socket, senders
 * known by their credentials, the sd_notify protocol for programs.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/un.h>

#include "cmsg.h"
#include "log.h"
#include "rights.h"
#include "master.h"

#define NOTIFY_MAX 4096 /* systemd's own limit on a notification */

/* One notification: newline-separated assignments. Returns whether it
 * changed what reconcile() looks at. */
static int notify_message(struct master *m, struct proc *p, char *text,
			  size_t len)
{
	struct sd_note n;
	int changed = 0;

	sdnotify_parse(text, len, &n);
	if (n.status != NULL)
		log_status(m, p, (const unsigned char *)n.status, n.status_len);
	if (n.ready && mark_ready(m, p)) /* a starting worker only */
		changed = 1;
	if (n.watchdog)
		p->watchdog_at = herd_loop_now(m->loop) + m->h->watchdog_ms;
	if (n.trigger) {
		p->watchdog_at = herd_loop_now(m->loop);
		p->watchdog_trigger = 1;
		changed = 1;
	}
	return changed;
}

void on_notify(herd_loop *l, int fd, unsigned events, void *arg)
{
	struct master *m = arg;
	int changed = 0;

	(void)l;
	(void)events;
	for (int i = 0; i < RECV_BATCH; i++) {
		char buf[NOTIFY_MAX + 1];
		union {
			struct cmsghdr h;
			/* room for all a sender can attach: see rights.h */
			char b[CMSG_SPACE(sizeof(struct ucred)) +
			       CMSG_SPACE(RIGHTS_MAX * sizeof(int))];
		} cm;
		struct iovec iov = {buf, NOTIFY_MAX};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = &cm,
				    .msg_controllen = sizeof(cm)};
		struct proc *p = NULL;
		pid_t pid = 0;
		ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			if (errno != EAGAIN)
				log_warn("notify socket: %s", strerror(errno));
			break;
		}
		rights_close_msg(&mh); /* fd stores are not kept */
		/* The sender is who the kernel says, not what the message
		 * claims: only a worker's own process is heard. */
		if (cmsg_pid(&mh, &pid) == 0)
			p = proc_by_pid(&m->procs, pid);
		if (p == NULL || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
			log_debug("notify: dropped a message from pid %d%s",
				  (int)pid, p == NULL ? ", not a worker" : "");
			continue;
		}
		changed |= notify_message(m, p, buf, (size_t)n);
	}
	if (changed)
		reconcile(m);
}

/* An abstract socket: no file to clean up, nothing a dropped user cannot
 * reach. Its name is unguessable, and senders are checked anyway. */
int notify_open(struct master *m)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	unsigned char rnd[8];
	int one = 1;
	socklen_t len;

	if (!m->h->notify || m->h->resume != NULL) /* resumed: it is kept */
		return 0;
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return -1;
	snprintf(m->notify_name, sizeof(m->notify_name),
		 "@herd-%d-%02x%02x%02x%02x%02x%02x%02x%02x", (int)m->pid,
		 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6],
		 rnd[7]);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
			  strlen(m->notify_name));
	memcpy(sa.sun_path + 1, m->notify_name + 1, strlen(m->notify_name) - 1);
	m->notify_fd =
	    socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (m->notify_fd == -1)
		return -1;
	rights_refuse(m->notify_fd); /* fd stores are not kept */
	if (setsockopt(m->notify_fd, SOL_SOCKET, SO_PASSCRED, &one,
		       sizeof(one)) == -1 ||
	    bind(m->notify_fd, (struct sockaddr *)&sa, len) == -1)
		return -1;
	return herd_loop_add(m->loop, m->notify_fd, HERD_READ, on_notify, m);
}
