/*
 * channel.h: typed messages over SOCK_SEQPACKET socketpairs, with fds.
 *
 * Every worker has two sockets to the world:
 *   channel: master <-> worker, both ways; commands and reports;
 *   inbox:   peers -> worker; the master hands each worker the write end of
 *            every other worker's inbox (OPEN_CHANNEL), so workers message
 *            each other directly and can never forge a master command.
 */
#ifndef HERD_CHANNEL_H
#define HERD_CHANNEL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "herd.h"

/* The most fds one message carries: OPEN_CHANNEL introduces up to this
 * many peers at once (the others carry 0 or 1). */
#define MSG_MAX_FDS	32
#define MSG_PAYLOAD_MAX HERD_MSG_MAX
/* The most connections one CONNECTIONS message carries: one sendmsg and
 * one recvmsg for what a wake-up of the master accepted for a worker. */
#define MSG_CONN_BATCH 16
#define CHAN_QUEUE_MAX 1024 /* messages waiting for one peer */

enum msg_type {
	MSG_OPEN_CHANNEL = 1, /* m->w: peers' inboxes (n msg_peer, n fds) */
	MSG_CLOSE_CHANNEL,    /* m->w: peers are gone (n msg_peer) */
	MSG_QUIT,	      /* m->w: drain and exit */
	MSG_TERMINATE,	      /* m->w: exit now */
	MSG_REOPEN,	      /* m->w: reopen the log */
	MSG_READY,	      /* w->m: accepting */
	MSG_HEARTBEAT,	      /* w->m: alive, with its load */
	MSG_APP,	      /* w->w, w->m: application bytes */
	MSG_CONNECTION,	      /* m->w: an accepted connection (1 fd; passfd) */
	MSG_CONNECTIONS,      /* m->w: 1..MSG_CONN_BATCH of them (herd's own
				 workers only: a program takes one at a time) */
	MSG_RELAY,	      /* w->m->w: a draining worker's idle connection
				 (1 fd) with its state, for a serving one */
	MSG_TYPE_END
};

struct msg_hdr {
	uint32_t type;
	uint32_t len; /* payload bytes after the header */
	int32_t pid;  /* sender's claim; the master trusts the socket instead */
	int32_t slot; /* sender's slot, -1 for the master */
	uint32_t gen;
	int32_t dst; /* MSG_APP: destination slot or HERD_TO_* */
};

struct msg_peer { /* OPEN_CHANNEL (one per fd), CLOSE_CHANNEL */
	int32_t slot;
	int32_t pid;
	uint32_t gen;
};
/* The most peers one CLOSE_CHANNEL names. */
#define MSG_PEERS_MAX (MSG_PAYLOAD_MAX / sizeof(struct msg_peer))

struct msg_quit { /* QUIT to herd's own workers (a program's is empty) */
	uint32_t pool_goes_on; /* 1: another worker serves on and could take
				* this one's idle connections (relay.c); 0:
				* none could, or herd stops */
};

struct msg_load { /* HEARTBEAT */
	uint32_t active;
	uint32_t pad;
	uint64_t total;
};

/* Which types an end receives: a set of MSG_BIT(type). */
#define MSG_BIT(t) (1u << (t))
#define MSG_TO_WORKER                                                          \
	(MSG_BIT(MSG_OPEN_CHANNEL) | MSG_BIT(MSG_CLOSE_CHANNEL) |              \
	 MSG_BIT(MSG_QUIT) | MSG_BIT(MSG_TERMINATE) | MSG_BIT(MSG_REOPEN) |    \
	 MSG_BIT(MSG_CONNECTION) | MSG_BIT(MSG_CONNECTIONS) |                  \
	 MSG_BIT(MSG_RELAY))
#define MSG_TO_MASTER                                                          \
	(MSG_BIT(MSG_READY) | MSG_BIT(MSG_HEARTBEAT) | MSG_BIT(MSG_APP) |      \
	 MSG_BIT(MSG_RELAY))
#define MSG_TO_PEER MSG_BIT(MSG_APP)

struct msg {
	struct msg_hdr hdr;
	unsigned char data[MSG_PAYLOAD_MAX];
	int fds[MSG_MAX_FDS];
	int nfds;
};

/* Why a received message was refused; also the index into the counters. */
enum msg_error {
	MSG_OK = 0,
	MSG_ERR_SHORT,	   /* shorter than the header */
	MSG_ERR_TRUNC,	   /* MSG_TRUNC: longer than the largest message */
	MSG_ERR_CTRUNC,	   /* MSG_CTRUNC: more fds than a message may carry */
	MSG_ERR_LENGTH,	   /* header length disagrees with the datagram */
	MSG_ERR_TYPE,	   /* unknown type */
	MSG_ERR_SIZE,	   /* payload size wrong for the type */
	MSG_ERR_FDS,	   /* fd count wrong for the type */
	MSG_ERR_CMSG,	   /* control data other than SCM_RIGHTS */
	MSG_ERR_DIRECTION, /* a type this end never receives (forged command) */
	MSG_ERR_END
};

const char *msg_type_name(uint32_t type);
const char *msg_error_name(enum msg_error e);

/* Validates a datagram that recvmsg delivered (n bytes, flags, the fds that
 * came with it) for an end that receives the types in accept. On any error
 * every fd is closed and m->nfds is 0. Pure apart from close(), so it is
 * unit tested and fuzzed directly. */
enum msg_error msg_decode(const void *buf, size_t n, int flags, const int *fds,
			  int nfds, int bad_cmsg, uint32_t accept,
			  struct msg *m);

/* Sends one datagram with nfds fds (at most MSG_RAW_MAX_FDS) in one
 * SCM_RIGHTS, never blocking, retrying EINTR; the fds stay the caller's.
 * The queue sends through it; the tests use it to forge messages. */
#define MSG_RAW_MAX_FDS 64
ssize_t msg_sendraw(int fd, const void *buf, size_t len, const int *fds,
		    int nfds);

struct chan;

/* Wraps a connected SEQPACKET fd (taking ownership) that receives the types
 * in accept (0 for a send-only end). With a loop, the channel registers
 * itself: for reading when fn is given, and for writing while its queue is
 * not empty. fn is called with HERD_READ when there is something to read,
 * and with HERD_WRITE when a backed-up queue has drained. */
struct chan *chan_new(int fd, uint32_t accept, herd_loop *loop, herd_io_fn fn,
		      void *arg);
void chan_free(struct chan *c);
int chan_fd(const struct chan *c);
/* Stops (1) or resumes (0) watching for something to read; what arrives
 * meanwhile waits in the socket, and the sender sees it back up. */
void chan_pause(struct chan *c, int paused);
/* Whether one more fd can be opened now: 1, or 0 with errno (EMFILE...).
 * recvmsg installs a message's fds as it reads it; with the table full the
 * kernel drops them (MSG_CTRUNC), and a dropped passfd connection is lost.
 * So an end that receives fds reads only while this says 1: two cheap
 * syscalls a message, against a connection reset. A connection and the
 * log travel alone, so one free slot is enough for them; peers' inboxes
 * come up to MSG_MAX_FDS at once, and a worker that short of fds loses
 * those peers (the message is refused and counted), never a connection. */
int chan_room(const struct chan *c);
/* Whether n more fds can be opened now (n <= MSG_MAX_FDS), as a message
 * of n fds needs: 1, or 0 with errno. One probe, like chan_room(): that
 * the lowest of the n highest fds the limit allows is free, and with it,
 * the kernel giving the lowest free fd first, the n above; so a table with
 * room for fewer than n is found out, and one with holes below but a used
 * fd in its top n is taken for full (cautious: the channel waits). */
int chan_room_for(const struct chan *c, int n);
/* chan_room_for() spread over a stream of messages of up to n fds each:
 * one probe finds the top CHAN_ROOM_AHEAD fds free, and the fds read
 * since count that down (what was closed meanwhile is not counted back),
 * less CHAN_ROOM_SLACK for what the process opens itself between probes.
 * The next probe comes once fewer than n are left. When the limit is too
 * low for that, or the top CHAN_ROOM_AHEAD are not all free, every message
 * is probed as by chan_room_for(). */
#define CHAN_ROOM_AHEAD 256
#define CHAN_ROOM_SLACK 64
int chan_room_ahead(struct chan *c, int n);
size_t chan_queued(const struct chan *c);
/* Whether the peer was found gone: nothing more can be sent. */
int chan_dead(const struct chan *c);

/* Queues a message and tries to send what is queued. The channel owns the
 * fds from this call on: they are closed once sent, or when dropped.
 * Returns 0 (sent or queued) or -1: ENOBUFS when the queue is full, EPIPE
 * when the peer is gone, EMSGSIZE when len is too large. */
int chan_send(struct chan *c, const struct msg_hdr *hdr, const void *data,
	      const int *fds, int nfds);
/* Sends what is queued. Returns 0, or -1 when the peer is gone. */
int chan_flush(struct chan *c);

/* Receives one message. Returns 1 with *m filled, 0 when nothing is
 * waiting, -1 on end of file or error. A malformed message is dropped (its
 * fds closed), counted and logged, and receiving goes on. */
int chan_recv(struct chan *c, struct msg *m);

/* Messages this process has refused, by enum msg_error. */
extern unsigned long msg_refused[MSG_ERR_END];

#endif
