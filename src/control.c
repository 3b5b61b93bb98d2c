/*
 * control.c: the control socket (control.h): clients, their command
 * lines, and sending the reply that reply.c builds.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "accept.h"
#include "control.h"
#include "listen.h"
#include "log.h"
#include "loop.h"
#include "ratelimit.h"
#include "rights.h"

#define CLIENT_TIMEOUT_MS 2000 /* to send its line, and to read the reply */
#define CLIENTS_MAX	  16
/* --metrics: an HTTP request's head, as a browser sends it (Chromium's is
 * near 1 KiB with its client hints); nginx's large_client_header_buffers
 * allow 8 KiB a line. */
#define HTTP_HEAD_MAX 8192

struct client {
	struct control *c;
	int fd;
	char in[HTTP_HEAD_MAX + 1];
	size_t in_len;
	struct ctl_reply out;
	size_t sent;
	herd_timer *timer;
};

struct control {
	herd_loop *loop;
	int fd;
	int http; /* --metrics: GET /metrics, no credentials */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	control_fn fn;
	void *arg;
	struct client *clients[CLIENTS_MAX];
	int watching;		   /* the listener is in the loop */
	int closing;		   /* control_close: no more watching */
	herd_timer *resume;	   /* after an accept error: watch again */
	struct ratelimit warnings; /* warn_limited's */
};

/* Clients and strangers decide how often these warnings come: at most one
 * line a second, with a count of those left out. */
__attribute__((format(printf, 2, 3))) static void
warn_limited(struct control *c, const char *fmt, ...)
{
	unsigned long unsaid;
	char text[160];
	va_list ap;

	if (ratelimit(&c->warnings, herd_loop_now(c->loop), 1, &unsaid) !=
	    RL_LOG)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (unsaid > 0)
		log_warn("%s: %s (and %lu more like it, not logged)",
			 c->http ? "metrics" : "control", text, unsaid);
	else
		log_warn("%s: %s", c->http ? "metrics" : "control", text);
}

static void on_listen(herd_loop *l, int lfd, unsigned events, void *arg);

/* While every client slot is taken, or accept fails for want of fds or
 * memory, the listener is left out of the loop: new clients wait in its
 * backlog instead of making the master spin on a readiness it cannot
 * consume. */
static void watch_listener(struct control *c, int on)
{
	if (c->closing || on == c->watching)
		return;
	if (on ? herd_loop_add(c->loop, c->fd, HERD_READ, on_listen, c)
	       : herd_loop_del(c->loop, c->fd)) {
		log_error("control: epoll: %s", strerror(errno));
		return;
	}
	c->watching = on;
}

static void resume_listener(herd_loop *l, herd_timer *t, void *arg)
{
	(void)l;
	(void)t;
	watch_listener(arg, 1);
}

static void client_free(struct client *cl)
{
	struct control *c = cl->c;

	for (int i = 0; i < CLIENTS_MAX; i++)
		if (c->clients[i] == cl)
			c->clients[i] = NULL;
	herd_loop_del(c->loop, cl->fd);
	rights_close(cl->fd); /* fds queued on it are purged with it */
	herd_timer_free(cl->timer);
	free(cl->out.buf);
	free(cl);
	if (!herd_timer_active(c->resume))
		watch_listener(c, 1); /* a slot is free */
}

static void on_client(herd_loop *l, int fd, unsigned events, void *arg);
static void client_write(struct client *cl);

/* Sends what it can at once (a reply usually fits the socket), and the
 * rest when the loop says there is room: not a turn of the loop later,
 * which under load (a reload at 512 workers) is a turn's whole work. */
static void client_reply(struct client *cl)
{
	herd_loop_mod(cl->c->loop, cl->fd, HERD_WRITE);
	client_write(cl);
}

void control_split(char *line, char **cmd, char **args)
{
	char *end;

	line[strcspn(line, "\r\n")] = '\0';
	*cmd = line + strspn(line, " \t");
	*args = *cmd + strcspn(*cmd, " \t");
	if (**args != '\0')
		*(*args)++ = '\0';
	*args += strspn(*args, " \t");
	end = *args + strlen(*args); /* trailing blanks are not an argument */
	while (end > *args && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
}

/* What --metrics serves: each path a read-only command's reply. A command
 * that refuses (health while herd stops) answers 503 with why. */
static const struct route {
	const char *path, *cmd, *args, *type;
} routes[] = {
    {"/metrics", "metrics", "", "text/plain; version=0.0.4"},
    {"/status.json", "status", "--json", "application/json"},
    {"/healthz", "health", "", "text/plain"},
    {"/", "status", "--html", "text/html; charset=utf-8"},
};

/* The route "GET PATH" asks for (the path ends at a blank or the CR of an
 * HTTP/0.9-style line), or NULL. */
static const struct route *route_of(const char *in)
{
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		size_t n = strlen(routes[i].path);

		if (strncmp(in, "GET ", 4) == 0 &&
		    strncmp(in + 4, routes[i].path, n) == 0 &&
		    (in[4 + n] == ' ' || in[4 + n] == '\r'))
			return &routes[i];
	}
	return NULL;
}

/* HTTP: once the request head is in, the route's answer or a 404. */
static void client_run_http(struct client *cl)
{
	const struct route *rt = route_of(cl->in);
	struct ctl_reply r = {0};
	const char *status = "404 Not Found", *type = "text/plain";

	if (rt != NULL) {
		cl->c->fn(cl->c->arg, rt->cmd, rt->args, &r);
		status = r.failed ? "503 Service Unavailable" : "200 OK";
		type = r.failed ? "text/plain" : rt->type;
	} else {
		ctl_printf(&r, "not found\n");
	}
	ctl_printf(&cl->out,
		   "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: "
		   "%zu\r\nConnection: close\r\n\r\n%.*s",
		   status, type, r.len, (int)r.len, r.buf ? r.buf : "");
	free(r.buf);
	client_reply(cl);
}

/* A line control_split() would cut short is refused whole: a NUL, or a
 * CR before the end of the line, hides what follows it ("quit\0junk" ran
 * quit). in holds a newline. */
static const char *line_malformed(const char *in, size_t len)
{
	size_t n = (size_t)((const char *)memchr(in, '\n', len) - in);

	if (n > 0 && in[n - 1] == '\r') /* CRLF ends a line too */
		n--;
	if (memchr(in, '\0', n) != NULL)
		return "a NUL byte";
	if (memchr(in, '\r', n) != NULL)
		return "a CR inside the line";
	return NULL;
}

/* The first line of the reply says how it went; the body follows. */
static void client_run(struct client *cl)
{
	const char *bad = line_malformed(cl->in, cl->in_len);
	struct ctl_reply r = {0};
	char *cmd, *args;

	control_split(cl->in, &cmd, &args);
	if (bad != NULL)
		ctl_fail(&r, "malformed command: %s", bad);
	else if (*cmd == '\0')
		ctl_fail(&r, "empty command");
	else
		cl->c->fn(cl->c->arg, cmd, args, &r);
	if (r.failed) {
		ctl_printf(&cl->out, "error: ");
		ctl_printable(&cl->out, r.buf, r.len);
		ctl_printf(&cl->out, "\n");
	} else {
		ctl_printf(&cl->out, "ok\n%.*s", (int)r.len,
			   r.len > 0 ? r.buf : "");
	}
	free(r.buf);
	client_reply(cl);
}

/* A request head past HTTP_HEAD_MAX: 431, as a server says it. What has
 * come of the rest is read and dropped first: a close with unread data
 * resets the connection, and the client would lose the answer. */
static void client_too_long_http(struct client *cl)
{
	static const char body[] = "request head too long\n";
	char sink[4096];

	for (int i = 0; i < 16 && rights_recv(cl->fd, sink, sizeof(sink),
					      MSG_DONTWAIT) > 0;
	     i++)
		;

	ctl_printf(&cl->out,
		   "HTTP/1.0 431 Request Header Fields Too Large\r\n"
		   "Content-Type: text/plain\r\nContent-Length: %zu\r\n"
		   "Connection: close\r\n\r\n%s",
		   sizeof(body) - 1, body);
	client_reply(cl);
}

static void client_read(struct client *cl)
{
	size_t max = cl->c->http ? HTTP_HEAD_MAX : CONTROL_LINE_MAX;

	for (;;) {
		ssize_t n = rights_recv(cl->fd, cl->in + cl->in_len,
					max - cl->in_len, MSG_DONTWAIT);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		if (n <= 0) {
			client_free(cl);
			return;
		}
		cl->in_len += (size_t)n;
		cl->in[cl->in_len] = '\0';
		if (cl->c->http && (strstr(cl->in, "\r\n\r\n") != NULL ||
				    strstr(cl->in, "\n\n") != NULL)) {
			client_run_http(cl);
			return;
		}
		if (!cl->c->http && memchr(cl->in, '\n', cl->in_len) != NULL) {
			client_run(cl);
			return;
		}
		if (cl->in_len == max && cl->c->http) {
			client_too_long_http(cl);
			return;
		}
		if (cl->in_len == max) {
			static const char e[] = "error: command too long\n";

			if (send(cl->fd, e, sizeof(e) - 1, MSG_NOSIGNAL) < 0)
				log_debug("control: %s", strerror(errno));
			log_warn("control: a command longer than %d bytes; "
				 "dropped",
				 CONTROL_LINE_MAX);
			client_free(cl);
			return;
		}
	}
}

static void client_write(struct client *cl)
{
	while (cl->sent < cl->out.len) {
		ssize_t n = send(cl->fd, cl->out.buf + cl->sent,
				 cl->out.len - cl->sent, MSG_NOSIGNAL);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		if (n <= 0)
			break;
		cl->sent += (size_t)n;
	}
	client_free(cl);
}

static void on_client(herd_loop *l, int fd, unsigned events, void *arg)
{
	struct client *cl = arg;

	(void)l;
	(void)fd;
	if (cl->out.len > 0) {
		if (events & HERD_WRITE)
			client_write(cl);
		return;
	}
	if (events & HERD_READ)
		client_read(cl);
}

static void on_client_timeout(herd_loop *l, herd_timer *t, void *arg)
{
	struct client *cl = arg;

	(void)l;
	(void)t;
	warn_limited(cl->c, "a client too slow; cut off");
	client_free(cl);
}

/* Root or the master's own user: nobody else steers it. */
static int peer_allowed(int fd, struct ucred *cred)
{
	socklen_t len = sizeof(*cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &len) == -1)
		return 0;
	return cred->uid == 0 || cred->uid == getuid();
}

/* A client accepted into slot; its line is most often there already. */
static void client_add(struct control *c, int fd, int slot)
{
	struct client *cl = calloc(1, sizeof(*cl));

	if (cl == NULL ||
	    (cl->timer = herd_timer_new(c->loop, on_client_timeout, cl)) ==
		NULL ||
	    herd_loop_add(c->loop, fd, HERD_READ, on_client, cl) == -1) {
		warn_limited(c, "a client dropped: %s", strerror(errno));
		if (cl != NULL)
			herd_timer_free(cl->timer);
		free(cl);
		rights_close(fd);
		return;
	}
	cl->c = c;
	cl->fd = fd;
	c->clients[slot] = cl;
	herd_timer_start(cl->timer, CLIENT_TIMEOUT_MS);
	client_read(cl);
}

static void on_listen(herd_loop *l, int lfd, unsigned events, void *arg)
{
	struct control *c = arg;

	(void)l;
	(void)events;
	for (int k = 0; k < CLIENTS_MAX; k++) {
		struct ucred cred = {0, (uid_t)-1, (gid_t)-1};
		int fd, slot = -1;

		for (int i = 0; i < CLIENTS_MAX && slot < 0; i++)
			if (c->clients[i] == NULL)
				slot = i;
		if (slot < 0) { /* full: the rest wait in the backlog */
			watch_listener(c, 0);
			return;
		}
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EAGAIN || errno == EINTR ||
			    errno == ECONNABORTED)
				return;
			/* Not once per episode (accept.h): strangers may
			 * end one with a connection, so the line keeps to
			 * the warnings' one a second. */
			warn_limited(c, "accept: %s; pausing for %d ms",
				     strerror(errno), ACCEPT_PAUSE_MS);
			watch_listener(c, 0);
			herd_timer_start(c->resume, ACCEPT_PAUSE_MS);
			return;
		}
		if (!c->http && !peer_allowed(fd, &cred)) {
			static const char e[] =
			    "error: refused: not root or herd's own user\n";

			warn_limited(c, "refused pid %d, uid %d", (int)cred.pid,
				     (int)cred.uid);
			if (send(fd, e, sizeof(e) - 1, MSG_NOSIGNAL) < 0)
				log_debug("control: %s", strerror(errno));
			rights_close(fd);
			continue;
		}
		client_add(c, fd, slot);
	}
}

/* The socket's directory, 0700, unless it exists. */
static int make_dir(const char *path, char *err, size_t errlen)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)], *slash;
	struct stat st;

	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) == NULL || slash == dir)
		return 0;
	*slash = '\0';
	if (stat(dir, &st) == -1 && errno == ENOENT && mkdir(dir, 0700) == -1) {
		snprintf(err, errlen, "--control %s: cannot create %s: %s",
			 path, dir, strerror(errno));
		return -1;
	}
	return 0;
}

/* A socket file someone answers on belongs to a live herd: not ours to
 * take. One nobody answers on is left from a dead one: replaced. */
static int prepare_path(const char *path, char *err, size_t errlen)
{
	if (make_dir(path, err, errlen) == -1)
		return -1;
	switch (unix_clear(path)) {
	case UNIX_ABSENT:
		return 0;
	case UNIX_STALE: /* not removed: control_open() says why */
		return -1;
	case UNIX_NOT_SOCKET:
		snprintf(err, errlen,
			 "--control %s: exists and is not a socket", path);
		return -1;
	case UNIX_LIVE:
		snprintf(err, errlen,
			 "--control %s: another herd answers there", path);
		return -1;
	case UNIX_FULL:
		snprintf(err, errlen,
			 "--control %s: a server listens there but does not "
			 "accept (its backlog is full); not replaced",
			 path);
		return -1;
	case UNIX_UNKNOWN:
		break;
	}
	snprintf(err, errlen,
		 "--control %s: cannot tell whether a server listens there: "
		 "%s",
		 path, strerror(errno));
	return -1;
}

struct control *control_open(herd_loop *l, const char *path, control_fn fn,
			     void *arg, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct control *c;
	mode_t old;
	int r;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "--control %s: path too long", path);
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, errlen, "control: %s", strerror(errno));
		return NULL;
	}
	err[0] = '\0';
	if (prepare_path(path, err, errlen) == -1) {
		if (err[0] == '\0')
			snprintf(err, errlen, "--control %s: %s", path,
				 strerror(errno));
		free(c);
		return NULL;
	}
	memcpy(sa.sun_path, path, strlen(path));
	snprintf(c->path, sizeof(c->path), "%s", path);
	c->loop = l;
	c->fn = fn;
	c->arg = arg;
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd >= 0)
		rights_refuse(c->fd); /* inherited by what it accepts */
	old = umask(0177);	      /* the file is born 0600 */
	r = c->fd == -1 ? -1 : bind(c->fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r == -1 || listen(c->fd, 16) == -1 ||
	    (c->resume = herd_timer_new(l, resume_listener, c)) == NULL ||
	    herd_loop_add(l, c->fd, HERD_READ, on_listen, c) == -1) {
		snprintf(err, errlen, "--control %s: %s", path,
			 strerror(errno));
		if (c->fd >= 0)
			close(c->fd);
		if (r == 0)
			unlink(path);
		herd_timer_free(c->resume);
		free(c);
		return NULL;
	}
	c->watching = 1;
	return c;
}

struct control *control_open_http(herd_loop *l, int lfd, control_fn fn,
				  void *arg, char *err, size_t errlen)
{
	struct control *c = calloc(1, sizeof(*c));

	rights_refuse(lfd); /* a unix one: inherited by what it accepts */
	if (c == NULL ||
	    (c->resume = herd_timer_new(l, resume_listener, c)) == NULL ||
	    herd_loop_add(l, lfd, HERD_READ, on_listen, c) == -1) {
		snprintf(err, errlen, "--metrics: %s", strerror(errno));
		if (c != NULL)
			herd_timer_free(c->resume);
		free(c);
		close(lfd);
		return NULL;
	}
	c->watching = 1;
	c->loop = l;
	c->fd = lfd;
	c->http = 1;
	c->fn = fn;
	c->arg = arg;
	return c;
}

int control_fd(const struct control *c)
{
	return c->fd;
}

void control_forget(struct control *c)
{
	if (c == NULL)
		return;
	for (int i = 0; i < CLIENTS_MAX; i++)
		if (c->clients[i] != NULL) {
			herd_timer_free(c->clients[i]->timer);
			free(c->clients[i]->out.buf);
			free(c->clients[i]);
		}
	herd_timer_free(c->resume);
	free(c);
}

void control_close(struct control *c)
{
	if (c == NULL)
		return;
	watch_listener(c, 0);
	c->closing = 1;
	for (int i = 0; i < CLIENTS_MAX; i++)
		if (c->clients[i] != NULL)
			client_free(c->clients[i]);
	herd_timer_free(c->resume);
	close(c->fd);
	if (!c->http)
		unlink(c->path);
	free(c);
}
