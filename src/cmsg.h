/*
 * cmsg.h: the control messages of a received message (fds in SCM_RIGHTS,
 * the sender in SCM_CREDENTIALS), walked in one place. Their bytes are
 * copied out, never read through a cast of CMSG_DATA.
 */
#ifndef HERD_CMSG_H
#define HERD_CMSG_H

#include <stddef.h>
#include <sys/types.h>

struct msghdr;

/* One control message, as cmsg_walk() hands it over. */
struct cmsg {
	int level, type;
	const unsigned char *data; /* CMSG_DATA */
	size_t len;		   /* bytes of data */
	size_t nfds; /* SOL_SOCKET/SCM_RIGHTS: fds in data; else 0 */
};

/* Calls fn on each control message of mh, in order, until one returns
 * non-zero; returns that, or 0. */
typedef int cmsg_fn(const struct cmsg *c, void *arg);
int cmsg_walk(struct msghdr *mh, cmsg_fn *fn, void *arg);
/* The i-th fd of an SCM_RIGHTS message, i < c->nfds. */
int cmsg_fd(const struct cmsg *c, size_t i);
/* The sender's pid, as the kernel says in SCM_CREDENTIALS (SO_PASSCRED):
 * 0, or -1 when the message carries none. */
int cmsg_pid(struct msghdr *mh, pid_t *pid);

#endif
