/*
 * rights.h: fds a peer chose, and sockets that may hold them queued.
 *
 * close() can sleep: a TCP socket with SO_LINGER and unsent data waits up
 * to its linger time (the master, with every signal blocked, waits all of
 * it), and a FUSE file waits for its daemon. A unix socket's in-flight
 * SCM_RIGHTS are released by whoever drops them: a recvmsg() that has no
 * room for them, or the close() of the socket holding them queued. So an
 * fd an untrusted peer sent must never be closed, nor purged, on a loop's
 * thread. Where the kernel can (SO_PASSRIGHTS, Linux 6.16), sockets that
 * need no fds refuse them at the source: the sender gets EPERM. Elsewhere
 * a helper thread closes them, and sleeps in the loop's place.
 */
#ifndef HERD_RIGHTS_H
#define HERD_RIGHTS_H

#include <sys/types.h>

/* The largest number of fds one SCM_RIGHTS can carry (the kernel's
 * SCM_MAX_FD). A receive buffer with room for them all is never
 * truncated, so the kernel never drops fds on our thread. */
#define RIGHTS_MAX 253

/* Makes the socket fd refuse fds from its peers, before anyone can send
 * (a socket of another family carries none: 0). Returns 0, or -1 when
 * the kernel cannot: from then on this process closes through the helper
 * thread (rights_close). */
int rights_refuse(int fd);

/* Closes an fd a peer chose, or a socket whose peer may have queued fds
 * on it, never blocking the caller. Refused at the source, it is a plain
 * close(). */
void rights_close(int fd);
void rights_close_all(const int *fds, int n);
/* rights_close on every fd of every SCM_RIGHTS in a received message. */
struct msghdr;
void rights_close_msg(struct msghdr *mh);

/* recv() on a socket whose peer may attach fds: where the kernel could
 * not refuse them, they are received (never dropped by the kernel on this
 * thread for want of room) and closed through rights_close(). */
ssize_t rights_recv(int fd, void *buf, size_t len, int flags);

/* Whether the kernel refuses fds at the source for this process's
 * sockets (0 after a failed rights_refuse). */
int rights_at_source(void);

/* fds that could be closed neither here nor by the helper (it was stuck
 * and its queue full): left open, counted, said once. */
unsigned long rights_leaked(void);

#endif
