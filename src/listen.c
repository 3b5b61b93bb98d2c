/*
 * listen.c: turns the user's address strings into bound listening sockets.
 *
 * Everything is validated by addr_parse() before anything is bound, so a
 * typo in the third -l never leaves the first two bound. Host names are
 * resolved at parse time (once, at start-up), numeric forms never touch DNS.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "listen.h"

#define BACKLOG 4096 /* the kernel caps it at net.core.somaxconn */
/* --defer-accept: as nginx's and HAProxy's, the kernel's shortest; a
 * client that sends nothing is queued after about one SYN-ACK resend. */
#define DEFER_ACCEPT_SECS 1

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen,
						      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	errno = EINVAL;
	return -1;
}

/* Strict: digits only, 1..65535. */
static int parse_port(const char *s, unsigned short *port)
{
	unsigned long v = 0;

	if (*s == '\0' || strlen(s) > 5)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned long)(*s - '0');
	}
	if (v < 1 || v > 65535)
		return -1;
	*port = (unsigned short)v;
	return 0;
}

static int parse_unix(const char *path, struct listen_addr *a, char *err,
		      size_t errlen)
{
	struct sockaddr_un *un = (struct sockaddr_un *)&a->sa;

	if (*path == '\0')
		return fail(err, errlen, "'%s': empty unix socket path",
			    a->text);
	if (strlen(path) >= sizeof(un->sun_path))
		return fail(err, errlen, "'%s': unix socket path too long",
			    a->text);
	un->sun_family = AF_UNIX;
	memcpy(un->sun_path, path, strlen(path) + 1);
	a->len = (socklen_t)sizeof(*un);
	return 0;
}

/* Every address (dual-stack [::]; addr_bind falls back to 0.0.0.0). */
static void set_wildcard(struct listen_addr *a, unsigned short port)
{
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a->sa;

	in6->sin6_family = AF_INET6;
	in6->sin6_addr = in6addr_any;
	in6->sin6_port = htons(port);
	a->len = (socklen_t)sizeof(*in6);
	a->wildcard = 1;
}

static int resolve(const char *host, int numeric, unsigned short port,
		   struct listen_addr *a, char *err, size_t errlen)
{
	struct addrinfo hints = {0}, *res = NULL;
	int rc;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | (numeric ? AI_NUMERICHOST : 0);
	rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "'%s': bad host '%s': %s", a->text, host,
			 gai_strerror(rc));
		errno = EINVAL;
		return -1;
	}
	/* The first answer, as nginx does for a name in "listen". */
	memcpy(&a->sa, res->ai_addr, res->ai_addrlen);
	a->len = res->ai_addrlen;
	freeaddrinfo(res);
	if (a->sa.ss_family == AF_INET)
		((struct sockaddr_in *)&a->sa)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)&a->sa)->sin6_port = htons(port);
	return 0;
}

/* Splits "[v6]:port" or "host:port" into host and port strings. */
static int split_host_port(const char *s, char *host, size_t hostlen,
			   const char **port, int *bracketed)
{
	const char *colon;

	*bracketed = s[0] == '[';
	if (*bracketed) {
		const char *close = strchr(s, ']');

		if (close == NULL || close[1] != ':')
			return -1;
		colon = close + 1;
		s++;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || strchr(s, ':') != colon)
			return -1; /* no port, or IPv6 without brackets */
	}
	if ((size_t)(colon - s - *bracketed) >= hostlen)
		return -1;
	memcpy(host, s, (size_t)(colon - s - *bracketed));
	host[colon - s - *bracketed] = '\0';
	*port = colon + 1;
	return 0;
}

int fdname_valid(const char *s, size_t len)
{
	if (len < 1 || len > FDNAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (s[i] < ' ' || s[i] > '~' || s[i] == ':')
			return 0;
	return 1;
}

void addr_fdname(const struct listen_addr *a, char *buf, size_t buflen)
{
	size_t i = 0;

	if (buflen == 0)
		return;
	if (a->name[0] != '\0') {
		snprintf(buf, buflen, "%s", a->name);
		return;
	}
	/* Names may not hold ':', systemd's separator. */
	for (; a->text[i] != '\0' && i + 1 < buflen; i++)
		buf[i] = a->text[i] == ':' ? '_' : a->text[i];
	buf[i] = '\0';
}

/* "NAME=ADDR": takes NAME into a->name and returns ADDR; anything else is
 * all address. Only a '=' before any ':' or '/' starts an address, so that
 * no address ("unix:/a=b", "[::1]:80") is read as a name. */
static const char *split_name(const char *s, struct listen_addr *a, char *err,
			      size_t errlen)
{
	size_t len = strcspn(s, "=:/");

	if (s[len] != '=')
		return s;
	if (!fdname_valid(s, len)) {
		fail(err, errlen,
		     "'%.40s': a name is 1..%d printable ASCII characters "
		     "other than ':'",
		     s, FDNAME_MAX);
		return NULL;
	}
	memcpy(a->name, s, len);
	a->name[len] = '\0';
	return s + len + 1;
}

int addr_parse(const char *s, struct listen_addr *a, char *err, size_t errlen)
{
	char host[ADDR_TEXT_MAX];
	const char *port_s;
	unsigned short port;
	int bracketed;

	memset(a, 0, sizeof(*a));
	a->fd = -1;
	if ((s = split_name(s, a, err, errlen)) == NULL)
		return -1;
	if (strlen(s) >= sizeof(a->text))
		return fail(err, errlen, "'%.40s...': address too long", s);
	snprintf(a->text, sizeof(a->text), "%s", s);
	if (strncmp(s, "unix:", 5) == 0)
		return parse_unix(s + 5, a, err, errlen);
	if (strchr(s, ':') == NULL && s[0] != '[') {
		if (parse_port(s, &port) == 0) {
			set_wildcard(a, port);
			return 0;
		}
		return fail(err, errlen,
			    "'%s': no port (use HOST:PORT, [IPv6]:PORT, PORT "
			    "or unix:/path)",
			    s);
	}
	if (split_host_port(s, host, sizeof(host), &port_s, &bracketed) == -1)
		return fail(err, errlen,
			    "'%s': expected HOST:PORT or [IPv6]:PORT", s);
	if (parse_port(port_s, &port) == -1)
		return fail(err, errlen, "'%s': port must be 1..65535", s);
	if (host[0] == '\0' && !bracketed) {
		set_wildcard(a, port);
		return 0;
	}
	if (resolve(host, bracketed, port, a, err, errlen) == -1)
		return -1;
	if (bracketed && a->sa.ss_family != AF_INET6)
		return fail(err, errlen, "'%s': brackets are for IPv6", s);
	return 0;
}

/* ---- binding ------------------------------------------------------------- */

/* The test connection does not wait: a listener that never accepts would
 * block a blocking connect once its backlog is full, and herd's start with
 * it. On a unix socket EAGAIN means just that full backlog: someone
 * listens. Only ECONNREFUSED (nobody listens) makes the file stale. */
static enum unix_state unix_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, r, e;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return UNIX_UNKNOWN;
	}
	memcpy(sa.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return UNIX_UNKNOWN;
	r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	e = errno;
	close(fd);
	if (r == 0)
		return UNIX_LIVE;
	if (e == EAGAIN || e == EINPROGRESS)
		return UNIX_FULL;
	if (e == ECONNREFUSED || e == ENOENT) /* ENOENT: gone meanwhile */
		return UNIX_STALE;
	errno = e;
	return UNIX_UNKNOWN;
}

enum unix_state unix_probe(const char *path)
{
	struct stat st;

	if (lstat(path, &st) == -1)
		return errno == ENOENT ? UNIX_ABSENT : UNIX_UNKNOWN;
	if (!S_ISSOCK(st.st_mode))
		return UNIX_NOT_SOCKET;
	return unix_connect(path);
}

enum unix_state unix_clear(const char *path)
{
	enum unix_state st = unix_probe(path);

	if (st != UNIX_STALE)
		return st;
	return unlink(path) == -1 && errno != ENOENT ? UNIX_STALE : UNIX_ABSENT;
}

/* A stale socket file is replaced; a live one, or one that cannot be
 * told, is not. */
static int unix_prepare(const struct listen_addr *a, char *err, size_t errlen)
{
	const char *path = ((const struct sockaddr_un *)&a->sa)->sun_path;

	switch (unix_clear(path)) {
	case UNIX_ABSENT:
		return 0;
	case UNIX_STALE:
	case UNIX_UNKNOWN:
		snprintf(err, errlen, "%s: %s", a->text, strerror(errno));
		return -1;
	case UNIX_NOT_SOCKET:
		snprintf(err, errlen, "%s: exists and is not a socket",
			 a->text);
		errno = EEXIST;
		return -1;
	case UNIX_LIVE:
	case UNIX_FULL:
		break;
	}
	snprintf(err, errlen, "%s: a running server is listening there",
		 a->text);
	errno = EADDRINUSE;
	return -1;
}

static int set_options(int fd, const struct listen_addr *a)
{
	int on = 1, v6only = !a->wildcard;

	if (a->sa.ss_family == AF_UNIX)
		return 0;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1)
		return -1;
	if (a->reuseport &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) == -1)
		return -1;
	if (a->defer && addr_defer_accept(a, fd) == -1)
		return -1;
	/* An explicit [::1] means IPv6 only, as in nginx; "PORT" means both
	 * stacks. */
	if (a->sa.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only,
		       sizeof(v6only)) == -1)
		return -1;
	return 0;
}

/* The host has no IPv6: "PORT" falls back to 0.0.0.0:PORT. */
static void wildcard_to_v4(struct listen_addr *a)
{
	unsigned short port = ((struct sockaddr_in6 *)&a->sa)->sin6_port;
	struct sockaddr_in *in = (struct sockaddr_in *)&a->sa;

	memset(&a->sa, 0, sizeof(a->sa));
	in->sin_family = AF_INET;
	in->sin_addr.s_addr = htonl(INADDR_ANY);
	in->sin_port = port;
	a->len = (socklen_t)sizeof(*in);
}

static int open_socket(struct listen_addr *a)
{
	int type = SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC;
	int fd = socket(a->sa.ss_family, type, 0);

	if (fd == -1 && a->wildcard && errno == EAFNOSUPPORT) {
		wildcard_to_v4(a);
		fd = socket(AF_INET, type, 0);
	}
	return fd;
}

/* socket, options, bind, listen: the fd, or -1 with errno set. */
static int bind_socket(struct listen_addr *a)
{
	int fd = open_socket(a), e;

	if (fd == -1)
		return -1;
	if (set_options(fd, a) == -1 ||
	    bind(fd, (struct sockaddr *)&a->sa, a->len) == -1 ||
	    listen(fd, BACKLOG) == -1) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int addr_bind(struct listen_addr *a, char *err, size_t errlen)
{
	if (a->sa.ss_family == AF_UNIX && unix_prepare(a, err, errlen) == -1) {
		if (errno != EEXIST && errno != EADDRINUSE)
			snprintf(err, errlen, "%s: %s", a->text,
				 strerror(errno));
		return -1;
	}
	if ((a->fd = bind_socket(a)) == -1) {
		snprintf(err, errlen, "cannot listen on %s: %s", a->text,
			 strerror(errno));
		return -1;
	}
	return 0;
}

int addr_bind_another(struct listen_addr *a)
{
	if (!a->reuseport) {
		errno = EINVAL;
		return -1;
	}
	return bind_socket(a);
}

int addr_defer_accept(const struct listen_addr *a, int fd)
{
	int secs = a->defer ? DEFER_ACCEPT_SECS : 0;

	if (a->sa.ss_family == AF_UNIX)
		return 0;
	return setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs,
			  sizeof(secs));
}

int addr_steer(int fd, const uint16_t *idx, size_t n)
{
	struct sock_filter *code;
	struct sock_fprog prog;
	size_t k = 0;
	int identity = 1, r;

	if (n == 0 || n > BPF_MAXINSNS / 2 - 2) {
		errno = EINVAL;
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		identity &= idx[i] == i;
	if ((code = calloc(2 * n + 2, sizeof(*code))) == NULL)
		return -1;
	/* A = random() % n: uniform, like the kernel's own hash, but over
	 * the chosen sockets only. A handshake stays with the socket its SYN
	 * picked, so a per-connection choice is all it takes. */
	code[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
						 SKF_AD_OFF + SKF_AD_RANDOM);
	code[k++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_MOD | BPF_K,
						 (uint32_t)n);
	if (identity) {
		code[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_A, 0);
	} else {
		/* A table: if A == i return idx[i]. */
		for (size_t i = 0; i + 1 < n; i++) {
			code[k++] = (struct sock_filter)BPF_JUMP(
			    BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)i, 0, 1);
			code[k++] = (struct sock_filter)BPF_STMT(
			    BPF_RET | BPF_K, idx[i]);
		}
		code[k++] =
		    (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, idx[n - 1]);
	}
	memset(&prog, 0, sizeof(prog)); /* the padding goes to the kernel too */
	prog.len = (unsigned short)k;
	prog.filter = code;
	r = setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog,
		       sizeof(prog));
	free(code);
	return r;
}

int addr_relisten(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int on = 0;
	socklen_t onlen = sizeof(on);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1 ||
	    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &onlen) == -1)
		return -1;
	/* A unix socket shut down cannot be revived by listen(), and still
	 * says SO_ACCEPTCONN: nothing to do here (docs/security.md). */
	if (on || (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
		return 0;
	return listen(fd, BACKLOG) == -1 ? -1 : 1;
}

int addr_accept(int lfd)
{
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0 || (errno != EINTR && errno != ECONNABORTED &&
				errno != EPROTO && errno != EPERM))
			return fd;
	}
	errno = EAGAIN; /* the rest waits for the next wake-up */
	return -1;
}

static int any_address(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_addr.s_addr ==
		       htonl(INADDR_ANY);
	return ss->ss_family == AF_INET6 &&
	       IN6_IS_ADDR_UNSPECIFIED(
		   &((const struct sockaddr_in6 *)ss)->sin6_addr);
}

static unsigned short port_of(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_port;
	return ((const struct sockaddr_in6 *)ss)->sin6_port;
}

int addr_matches(const struct listen_addr *a, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss), olen = sizeof(int);
	int type = 0, listening = 0;

	memset(&ss, 0, sizeof(ss));
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1 ||
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &olen) == -1 ||
	    type != SOCK_STREAM)
		return 0;
	olen = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &olen) ==
		-1 ||
	    !listening)
		return 0;
	if (a->sa.ss_family == AF_UNIX)
		return ss.ss_family == AF_UNIX &&
		       strcmp(((struct sockaddr_un *)&ss)->sun_path,
			      ((const struct sockaddr_un *)&a->sa)->sun_path) ==
			   0;
	if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
		return 0;
	if (port_of(&ss) != port_of(&a->sa))
		return 0;
	if (a->wildcard)
		return any_address(&ss);
	if (ss.ss_family != a->sa.ss_family)
		return 0;
	if (ss.ss_family == AF_INET)
		return ((struct sockaddr_in *)&ss)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)&a->sa)->sin_addr.s_addr;
	return memcmp(&((struct sockaddr_in6 *)&ss)->sin6_addr,
		      &((const struct sockaddr_in6 *)&a->sa)->sin6_addr,
		      sizeof(struct in6_addr)) == 0;
}

int addr_adopt(struct listen_addr *a, int fd)
{
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1 || fd_blocking(fd, 0) == -1)
		return -1;
	a->fd = fd;
	a->inherited = 1;
	return 0;
}

int fd_blocking(int fd, int blocking)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl == -1)
		return -1;
	fl = blocking ? fl & ~O_NONBLOCK : fl | O_NONBLOCK;
	return fcntl(fd, F_SETFL, fl);
}

void addr_close(struct listen_addr *a)
{
	if (a->fd == -1)
		return;
	close(a->fd);
	a->fd = -1;
	if (a->sa.ss_family == AF_UNIX && !a->inherited)
		unlink(((struct sockaddr_un *)&a->sa)->sun_path);
}

void addr_format(const struct sockaddr *sa, socklen_t len, char *buf,
		 size_t buflen)
{
	char host[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(buf, buflen, "%s:%u", host, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
		    (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(buf, buflen, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else if (sa->sa_family == AF_UNIX &&
		   len > offsetof(struct sockaddr_un, sun_path)) {
		snprintf(buf, buflen, "unix:%s",
			 ((const struct sockaddr_un *)sa)->sun_path);
	} else {
		snprintf(buf, buflen, "(family %d)", sa->sa_family);
	}
}
