/*
 * listen.h: listening addresses: parse the -l syntax, bind, describe.
 */
#ifndef HERD_LISTEN_H
#define HERD_LISTEN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define ADDR_TEXT_MAX 160
#define FDNAME_MAX    255 /* systemd's limit for FileDescriptorName= */

struct listen_addr {
	char text[ADDR_TEXT_MAX];  /* the address as given, for messages */
	char name[FDNAME_MAX + 1]; /* for LISTEN_FDNAMES; "": from text */
	int wildcard;		   /* "PORT" or ":PORT": every address */
	int reuseport;		   /* bind with SO_REUSEPORT (reuseport mode) */
	int defer;		   /* TCP_DEFER_ACCEPT (--defer-accept) */
	socklen_t len;
	struct sockaddr_storage sa;
	int fd;	       /* the bound socket, or -1 */
	int inherited; /* from whoever started herd: its file is theirs */
	int stored;    /* taken back from the service manager's fd store */
};

/* Parses "HOST:PORT", "[IPv6]:PORT", "PORT", ":PORT" or "unix:/path",
 * each optionally after "NAME=" (the socket's name for programs). A '='
 * after a ':' or '/' belongs to the address ("unix:/tmp/a=b"). Returns 0,
 * or -1 with a message for the user in err. */
int addr_parse(const char *s, struct listen_addr *a, char *err, size_t errlen);
/* Whether s is a name systemd would take in LISTEN_FDNAMES (its
 * FileDescriptorName= rules, less the empty name): 1..FDNAME_MAX
 * printable ASCII characters, no ':', the list's separator. */
int fdname_valid(const char *s, size_t len);
/* Writes a's name for LISTEN_FDNAMES: the one it was given, or else its
 * text with each ':' made '_'. */
void addr_fdname(const struct listen_addr *a, char *buf, size_t buflen);
/* Creates a->fd: nonblocking, CLOEXEC, listening. A unix path left by a dead
 * server is replaced; one a live server answers on is refused. Returns 0,
 * or -1 with errno set and a message in err. */
int addr_bind(struct listen_addr *a, char *err, size_t errlen);
/* What is at a unix socket path, for a server about to bind there. */
enum unix_state {
	UNIX_ABSENT,	 /* nothing: free */
	UNIX_NOT_SOCKET, /* a file of another kind */
	UNIX_LIVE,	 /* a server took a test connection */
	UNIX_FULL,	 /* a server listens, its backlog full */
	UNIX_STALE,	 /* nobody listens: left by a dead server */
	UNIX_UNKNOWN,	 /* cannot tell: errno says why */
};
/* Looks at path (lstat, then a connection that does not wait). */
enum unix_state unix_probe(const char *path);
/* Clears path for a bind: a stale socket file is removed. Returns
 * UNIX_ABSENT once the path is free, else what stands there and must not
 * be replaced; UNIX_STALE when its removal failed (errno), UNIX_UNKNOWN
 * with errno when the probe could not tell. */
enum unix_state unix_clear(const char *path);
/* Another listening socket on the same address, for a reuseport slot:
 * returns its fd (nonblocking, CLOEXEC) or -1 with errno set. */
int addr_bind_another(struct listen_addr *a);
/* reuseport: which sockets of an address's SO_REUSEPORT group take new
 * connections. Attaches to the group (through fd, any member of it) a
 * classic BPF program that picks, per connection and at random, one of the
 * n group indices in idx. The kernel numbers a group's sockets in the
 * order they began listening and fills a closed one's place with the last;
 * the master opens slot sockets in slot order and closes them from the top
 * down, so a slot's index is its number. Returns 0, or -1 with errno. */
int addr_steer(int fd, const uint16_t *idx, size_t n);
#define ACCEPT_BATCH 64 /* connections per wake-up per socket */

/* accept4(SOCK_NONBLOCK | SOCK_CLOEXEC), going past what concerns one
 * connection only (EINTR, ECONNABORTED, EPROTO, EPERM from a firewall) at
 * most ACCEPT_BATCH times. Returns the fd, or -1 with errno: EAGAIN when
 * none waits; anything else (EMFILE, ENFILE, ENOBUFS, ENOMEM...) means
 * the caller should pause accepting rather than spin on a level-triggered
 * readiness it cannot consume (accept.h). Shared by workers and the passfd
 * master. */
int addr_accept(int lfd);
/* A TCP listening socket a worker shut down (shutdown(2) on a shared socket
 * stops it for every process that holds it) listens again. Returns 1 if it
 * had stopped and listens again, 0 if it was listening (or is not TCP), -1
 * with errno when it cannot be told or restored. */
int addr_relisten(int fd);
/* Sets TCP_DEFER_ACCEPT on a listening socket of a taken over (passed, or
 * from the fd store or an upgrade) as a->defer says, on or off: a
 * connection is queued for accept only once data came, or once the
 * deferral (DEFER_ACCEPT_SECS) ran out. Sockets bound here have it from
 * birth. 0 for a unix socket. */
int addr_defer_accept(const struct listen_addr *a, int fd);
/* Whether fd is a listening stream socket bound to a's address (a port
 * alone matches either stack's any-address). */
int addr_matches(const struct listen_addr *a, int fd);
/* Takes fd (inherited, listening, matching) as a's socket: CLOEXEC and
 * nonblocking from now on; its file is not removed on close. Returns 0 or
 * -1 with errno. */
int addr_adopt(struct listen_addr *a, int fd);
/* A listening TCP socket's accept queue (acceptq.c). */
struct accept_queue {
	uint32_t queue;	  /* connections waiting for accept() now */
	uint32_t backlog; /* how many may wait: listen()'s, as capped */
	uint32_t drops;	  /* SYNs and handshakes dropped there, ever */
};
/* Reads fd's queue (TCP_INFO) and drops (SO_MEMINFO): two getsockopt
 * calls, no waiting. Returns 0, or -1 with errno: EOPNOTSUPP for a unix
 * socket (no TCP_INFO), EINVAL for a TCP socket not listening. */
int listen_queue(int fd, struct accept_queue *q);
/* Connections the kernel refused because an accept queue was full, in
 * this network namespace (TcpExt ListenOverflows, /proc/net/netstat): it
 * counts no socket apart. Returns 0, or -1 with errno. */
int listen_overflows(unsigned long long *n);
/* From /proc/net/netstat's text: the counter name of group ("TcpExt"),
 * whose names line is followed by its values line. Returns 0, or -1 when
 * it is not there. */
int netstat_counter(const char *text, const char *group, const char *name,
		    unsigned long long *v);
/* Clears or sets O_NONBLOCK on fd. Returns 0 or -1 with errno. */
int fd_blocking(int fd, int blocking);
/* Closes a->fd and, for a unix socket, removes its file. */
void addr_close(struct listen_addr *a);
/* Writes a printable form of sa ("127.0.0.1:8080", "[::1]:80", "unix:/p"). */
void addr_format(const struct sockaddr *sa, socklen_t len, char *buf,
		 size_t buflen);

#endif
