/*
 * http_worker.c: the built-in HTTP worker (see http_worker.h).
 *
 * Each connection reads into an input buffer, answers every complete
 * request in it in order (pipelining), and writes the answers from a
 * growable output buffer straight to the socket. Both buffers exist only
 * while a request is in progress: taken on the first read, given back once
 * everything read is answered and written, so an idle keep-alive
 * connection costs its struct conn and nothing more (see "memory"). Request
 * bodies are read and thrown away: only GET and HEAD are served. A connection
 * is always in one phase (struct conn.phase), and one timer per connection
 * enforces the deadline of that phase, so no client can hold a worker by being
 * slow.
 *
 * Every worker is its own single-threaded process, so the per-process
 * state lives in one static struct.
 */
#include "http_worker.h"
#include "http_parse.h"

#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* ---- limits and timeouts ---------------------------------------------- */

/* Accept, or first byte of a request, until its head is complete; then 408
 * (or a silent close when nothing came at all). */
#define HEADER_TIMEOUT_MS 10000
/* Keep-alive connection with nothing buffered either way. */
#define IDLE_TIMEOUT_MS 15000
/* End of a head until the end of its body; then 408. */
#define BODY_TIMEOUT_MS 30000
/* Output pending and not a byte of it accepted by the peer. */
#define SEND_TIMEOUT_MS 30000
/* After the last response: read and drop what the client still sends, so
 * that closing does not reset the connection under the response. */
#define LINGER_TIMEOUT_MS 2000
/* While draining, an idle keep-alive connection stays this long: a busy
 * client's next request, perhaps already on the wire, is answered with
 * "Connection: close" instead of meeting a closed socket. A client idle
 * longer is not about to send, and closing it then rarely races. */
#define DRAIN_GRACE_MS 1000

/* Input buffer: IN_FIRST bytes, enough for most heads (nginx starts with
 * 1 KB); a head that fills it grows it once to IN_CAP, a whole head at the
 * limit plus room for pipelined ones. The parser must be able to see
 * HTTP_HEAD_MAX + 1 bytes to report 431. */
#define IN_FIRST 2048
#define IN_CAP	 (HTTP_HEAD_MAX + 8192)
#define OUT_INIT 1024	      /* first output buffer */
#define OUT_HIGH (64 * 1024)  /* stop reading while more is pending */
#define OUT_MAX	 (256 * 1024) /* never buffer more: drop the connection */
/* Buffers of the first sizes kept for the next request, per direction. */
#define POOL_MAX 32
/* Give free heap pages back to the kernel once this much, and half of the
 * peak, was freed: after a burst, never under steady load. */
#define TRIM_MIN (256 * 1024)

/* ---- state ------------------------------------------------------------ */

enum phase {
	PH_HEAD,    /* waiting for (the rest of) a request head */
	PH_IDLE,    /* between requests, nothing received */
	PH_BODY,    /* reading and discarding a request body */
	PH_CLOSING, /* last response queued: write it, then linger */
	PH_LINGER,  /* written and shut down: drop input until EOF */
};

enum route { ROUTE_NONE, ROUTE_HELLO, ROUTE_WHOAMI };

/* The answer to the current request, decided from its head and sent once
 * its body is gone. */
struct reply {
	int status;
	enum route route;
	int head_only;	/* HEAD: headers without the body */
	int keep_alive; /* the request allows another one after it */
	int minor;	/* 1.0 keep-alive must be confirmed in a header */
};

struct conn {
	struct conn *prev, *next; /* every open connection, for drain/stop */
	int fd;
	unsigned events; /* interest registered with the loop */
	int watched;	 /* registered with the loop at all */
	enum phase phase;
	int eof;	      /* the peer will send nothing more */
	int linger;	      /* an error reply: unread input may follow it */
	uint64_t since;	      /* when the phase began, loop milliseconds */
	uint64_t write_since; /* last progress of pending output */
	uint64_t deadline;    /* what the timer is armed for */
	herd_timer *timer;
	struct reply reply;
	size_t body_left; /* Content-Length bytes still to discard */
	int chunked;	  /* the body is chunked: see chunk */
	http_chunked chunk;
	http_head head; /* how far the head at in_off has been parsed */
	char *out;	/* NULL while nothing is pending */
	size_t out_len, out_cap;
	char *in; /* NULL between requests */
	size_t in_cap;
	size_t in_off, in_len; /* unparsed input is in[in_off, in_len) */
};

/* A bounded free list of buffers of one size. */
struct pool {
	size_t size;
	unsigned n;
	void *free[POOL_MAX];
};

static struct {
	herd_worker *w;
	herd_loop *loop;
	struct conn *conns;
	struct pool in_pool, out_pool;
	size_t live, peak; /* bytes malloc'ed here, now and at the peak */
	time_t date_sec;   /* the second date[] shows */
	char date[64];
} g;

static uint64_t now_ms(void)
{
	return herd_loop_now(g.loop);
}

static void set_phase(struct conn *c, enum phase p)
{
	c->phase = p;
	c->since = now_ms();
}

/* ---- memory ----------------------------------------------------------- */

static void mem_took(size_t n)
{
	g.live += n;
	if (g.live > g.peak)
		g.peak = g.live;
}

/* Call after the free(). glibc keeps freed memory in the heap, and what
 * lies below the top of it stays resident: after a burst of connections
 * the worker would hold its peak for good. malloc_trim() gives the free
 * pages back (madvise); it walks the heap, so it runs only once half of
 * the peak and at least TRIM_MIN are free, which steady load never
 * reaches. */
static void mem_gave(size_t n)
{
	g.live -= n;
	if (g.peak - g.live < TRIM_MIN || g.live > g.peak / 2)
		return;
#ifdef __GLIBC__
	malloc_trim(0);
#endif
	g.peak = g.live;
}

static void *pool_get(struct pool *p)
{
	void *b;

	if (p->n > 0)
		return p->free[--p->n];
	if ((b = malloc(p->size)) != NULL)
		mem_took(p->size);
	return b;
}

/* Gives back a buffer of cap bytes: to the pool when it has the pool's
 * size and the pool has room, else to malloc. */
static void buf_release(struct pool *p, void *b, size_t cap)
{
	if (b == NULL)
		return;
	if (cap == p->size && p->n < POOL_MAX) {
		p->free[p->n++] = b;
		return;
	}
	free(b);
	mem_gave(cap);
}

/* Resizes b from *cap to want bytes; NULL (b untouched) without memory. */
static void *buf_resize(void *b, size_t *cap, size_t want)
{
	void *p = realloc(b, want);

	if (p == NULL)
		return NULL;
	mem_took(want - *cap);
	*cap = want;
	return p;
}

/* ---- responses -------------------------------------------------------- */

struct status {
	int code;
	const char *reason;
	const char *body;
};

/* The first entry answers any code missing from the table. */
static const struct status statuses[] = {
    {500, "Internal Server Error", "internal server error\n"},
    {200, "OK", "hello\n"},
    {400, "Bad Request", "bad request\n"},
    {404, "Not Found", "not found\n"},
    {405, "Method Not Allowed", "method not allowed\n"},
    {408, "Request Timeout", "request timeout\n"},
    {413, "Content Too Large", "content too large\n"},
    {431, "Request Header Fields Too Large", "header too large\n"},
    {501, "Not Implemented", "not implemented\n"},
    {505, "HTTP Version Not Supported", "http version not supported\n"},
};

static const struct status *status_find(int code)
{
	size_t i;

	for (i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
		if (statuses[i].code == code)
			return &statuses[i];
	return &statuses[0];
}

/* IMF-fixdate of now, formatted at most once a second. Names are spelled
 * out rather than taken from strftime, which follows the locale. */
static const char *http_date(void)
{
	static const char days[][4] = {"Sun", "Mon", "Tue", "Wed",
				       "Thu", "Fri", "Sat"};
	static const char months[][4] = {"Jan", "Feb", "Mar", "Apr",
					 "May", "Jun", "Jul", "Aug",
					 "Sep", "Oct", "Nov", "Dec"};
	time_t now = time(NULL);
	struct tm tm;

	if (g.date[0] != '\0' && now == g.date_sec)
		return g.date;
	if (now == (time_t)-1 || gmtime_r(&now, &tm) == NULL)
		return g.date[0] ? g.date : "Thu, 01 Jan 1970 00:00:00 GMT";
	snprintf(g.date, sizeof g.date, "%s, %02d %s %04d %02d:%02d:%02d GMT",
		 days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
		 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
	g.date_sec = now;
	return g.date;
}

/* Writes the body of the current reply into buf; returns its length. */
static size_t reply_body(const struct reply *r, char *buf, size_t size)
{
	int n;

	if (r->status == 200 && r->route == ROUTE_WHOAMI)
		n = snprintf(buf, size, "pid=%ld slot=%d gen=%u\n",
			     (long)herd_worker_pid(g.w), herd_worker_slot(g.w),
			     herd_worker_generation(g.w));
	else
		n = snprintf(buf, size, "%s", status_find(r->status)->body);
	if (n < 0)
		return 0;
	return (size_t)n < size ? (size_t)n : size - 1;
}

/* ---- output buffer ---------------------------------------------------- */

/* Room for more bytes of output: the pool's first buffer, doubled as
 * needed up to OUT_MAX. */
static int out_reserve(struct conn *c, size_t more)
{
	size_t need = c->out_len + more, cap = OUT_INIT;
	char *p;

	if (need <= c->out_cap)
		return 0;
	if (need > OUT_MAX) {
		herd_log(HERD_LOG_WARN, "http: fd %d: output over %d bytes",
			 c->fd, OUT_MAX);
		return -1;
	}
	while (cap < need)
		cap *= 2;
	if (c->out == NULL && cap == OUT_INIT) {
		if ((p = pool_get(&g.out_pool)) != NULL)
			c->out_cap = OUT_INIT;
	} else {
		p = buf_resize(c->out, &c->out_cap,
			       cap < OUT_MAX ? cap : OUT_MAX);
	}
	if (p == NULL) {
		herd_log(HERD_LOG_WARN, "http: fd %d: out of memory", c->fd);
		return -1;
	}
	c->out = p;
	return 0;
}

static int out_append(struct conn *c, const char *data, size_t len)
{
	if (len == 0)
		return 0;
	if (out_reserve(c, len) < 0)
		return -1;
	if (c->out_len == 0)
		c->write_since = now_ms();
	memcpy(c->out + c->out_len, data, len);
	c->out_len += len;
	return 0;
}

/* Drops the first n bytes, which the peer has taken. */
static void out_consume(struct conn *c, size_t n)
{
	if (n == 0)
		return;
	memmove(c->out, c->out + n, c->out_len - n);
	c->out_len -= n;
	c->write_since = now_ms();
	if (c->out_len == 0) { /* all written: nothing held while idle */
		buf_release(&g.out_pool, c->out, c->out_cap);
		c->out = NULL;
		c->out_cap = 0;
	}
}

/* Sends what it can; EAGAIN leaves the rest for the next HERD_WRITE. */
static int conn_flush(struct conn *c)
{
	size_t off = 0;

	while (off < c->out_len) {
		ssize_t n =
		    send(c->fd, c->out + off, c->out_len - off, MSG_NOSIGNAL);
		if (n > 0) {
			off += (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			break;
		} else {
			herd_log(HERD_LOG_DEBUG, "http: fd %d: send: %s", c->fd,
				 n < 0 ? strerror(errno) : "wrote nothing");
			return -1;
		}
	}
	out_consume(c, off);
	return 0;
}

/* ---- answering -------------------------------------------------------- */

static const char *connection_header(const struct reply *r, int keep)
{
	if (!keep)
		return "Connection: close\r\n";
	return r->minor == 0 ? "Connection: keep-alive\r\n" : "";
}

/* Queues the answer to the current request and moves to the next phase:
 * closing when the request, an error or draining says so. Returns 1 (the
 * request is done) or -1 when it could not be queued. */
static int conn_respond(struct conn *c)
{
	const struct reply *r = &c->reply;
	/* Draining, keep-alive holds only where the connection can be
	 * relayed to a serving worker once it is idle (conn_relay). */
	int keep = r->keep_alive &&
		   (!herd_worker_draining(g.w) || herd_worker_can_relay(g.w));
	char head[512], body[128];
	size_t blen = reply_body(r, body, sizeof body);
	int n;

	n = snprintf(head, sizeof head,
		     "HTTP/1.1 %d %s\r\nServer: herd/" HERD_VERSION
		     "\r\nDate: %s\r\nContent-Type: text/plain\r\n"
		     "Content-Length: %zu\r\n%s%s\r\n",
		     r->status, status_find(r->status)->reason, http_date(),
		     blen, r->status == 405 ? "Allow: GET, HEAD\r\n" : "",
		     connection_header(r, keep));
	if (n < 0 || (size_t)n >= sizeof head ||
	    out_append(c, head, (size_t)n) < 0 ||
	    (!r->head_only && out_append(c, body, blen) < 0))
		return -1;
	if (!keep)
		set_phase(c, PH_CLOSING);
	else
		set_phase(c, c->in_off < c->in_len ? PH_HEAD : PH_IDLE);
	return 1;
}

/* Answers an error that ends the connection: malformed or oversized
 * requests, timeouts. */
static int conn_fail(struct conn *c, int status)
{
	herd_log(HERD_LOG_DEBUG, "http: fd %d: answering %d and closing", c->fd,
		 status);
	memset(&c->reply, 0, sizeof c->reply);
	c->reply.status = status;
	c->linger = 1;
	return conn_respond(c);
}

static int span_is(const char *p, size_t n, const char *lit)
{
	return n == strlen(lit) && memcmp(p, lit, n) == 0;
}

/* Routes a parsed head to the reply it will get. */
static void conn_decide(struct conn *c, const http_request *req)
{
	struct reply *r = &c->reply;
	int get = span_is(req->method, req->method_len, "GET");

	r->head_only = span_is(req->method, req->method_len, "HEAD");
	r->keep_alive = req->keep_alive;
	r->minor = req->minor;
	r->route = ROUTE_NONE;
	if (!get && !r->head_only) {
		r->status = 405;
		return;
	}
	if (span_is(req->path, req->path_len, "/"))
		r->route = ROUTE_HELLO;
	else if (span_is(req->path, req->path_len, "/whoami"))
		r->route = ROUTE_WHOAMI;
	r->status = r->route == ROUTE_NONE ? 404 : 200;
}

/* ---- reading requests ------------------------------------------------- */

/* After a head: discard its body first, or answer at once. A 1.1 client
 * that waits for "100 Continue" gets it unless its body is already here
 * (1.0 clients must not get interim responses). */
static int conn_start_body(struct conn *c, const http_request *req)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

	if (req->body == HTTP_BODY_CHUNKED) {
		c->chunked = 1;
		http_chunked_init(&c->chunk);
	} else if (req->body == HTTP_BODY_LENGTH && req->content_length > 0) {
		c->chunked = 0;
		c->body_left = req->content_length;
	} else {
		return conn_respond(c);
	}
	set_phase(c, PH_BODY);
	if (req->expect_continue && req->minor == 1 && c->in_off == c->in_len &&
	    out_append(c, cont, sizeof cont - 1) < 0)
		return -1;
	return 1;
}

/* Parses the next head, from where the last read of it stopped: 1 one was
 * handled, 0 need more, -1 close. */
static int conn_head(struct conn *c)
{
	http_request req;
	int n = http_head_parse(&c->head, c->in + c->in_off,
				c->in_len - c->in_off, &req);

	if (n == 0)
		return 0;
	if (n < 0)
		return conn_fail(c, -n);
	http_head_init(&c->head); /* for the head after this one */
	memset(&c->reply, 0, sizeof c->reply);
	conn_decide(c, &req);
	c->in_off += (size_t)n;
	return conn_start_body(c, &req);
}

/* Discards body bytes: 1 the body ended (answered), 0 need more, -1. */
static int conn_body(struct conn *c)
{
	size_t avail = c->in_len - c->in_off, used;
	int r;

	if (!c->chunked) {
		used = avail < c->body_left ? avail : c->body_left;
		c->in_off += used;
		c->body_left -= used;
		return c->body_left > 0 ? 0 : conn_respond(c);
	}
	r = http_chunked_feed(&c->chunk, c->in + c->in_off, avail, &used);
	c->in_off += used;
	if (r < 0)
		return conn_fail(c, -r);
	return r > 0 ? conn_respond(c) : 0;
}

/* Handles the buffered input: 0 when it needs more input (or the phase
 * takes none), 1 when it stopped for pending output, -1 to close. */
static int conn_process(struct conn *c)
{
	for (;;) {
		int r;

		if (c->phase == PH_LINGER)
			c->in_off = c->in_len = 0;
		if (c->phase == PH_CLOSING || c->in_off == c->in_len)
			return 0;
		if (c->out_len > OUT_HIGH)
			return 1;
		r = c->phase == PH_BODY ? conn_body(c) : conn_head(c);
		if (r <= 0)
			return r;
	}
}

/* Moves unparsed input to the front so a read has room behind it. */
static void in_compact(struct conn *c)
{
	if (c->in_off == 0)
		return;
	memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
	c->in_len -= c->in_off;
	c->in_off = 0;
}

/* Room to read into, 0 without memory. The buffer is taken from the pool
 * on the first read of a request, and grown to IN_CAP when unparsed input
 * fills IN_FIRST. */
static size_t in_room(struct conn *c)
{
	char *p;

	in_compact(c);
	if (c->in == NULL) {
		if ((c->in = pool_get(&g.in_pool)) == NULL)
			return 0;
		c->in_cap = IN_FIRST;
	} else if (c->in_len == c->in_cap && c->in_cap < IN_CAP) {
		if ((p = buf_resize(c->in, &c->in_cap, IN_CAP)) == NULL)
			return 0;
		c->in = p;
	}
	return c->in_cap - c->in_len;
}

/* Gives the input buffer back once everything read has been used. */
static void in_release(struct conn *c)
{
	if (c->in == NULL || c->in_off < c->in_len)
		return;
	buf_release(&g.in_pool, c->in, c->in_cap);
	c->in = NULL;
	c->in_cap = c->in_off = c->in_len = 0;
}

/* One recv: 1 progress (bytes or EOF), 0 EAGAIN, -1 error. *drained is
 * set when the read came back short of the room offered: the socket had no
 * more, so the next recv would only say EAGAIN (the loop is level-triggered
 * and reports anything that arrives later). */
static int conn_fill(struct conn *c, int *drained)
{
	size_t room = in_room(c);
	ssize_t n;

	if (room == 0) {
		herd_log(HERD_LOG_WARN, "http: fd %d: out of memory", c->fd);
		return -1;
	}
	do
		n = herd_conn_recv(g.w, c->fd, c->in + c->in_len, room);
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		if (c->phase == PH_IDLE) /* the header clock starts now */
			set_phase(c, PH_HEAD);
		c->in_len += (size_t)n;
		*drained = (size_t)n < room;
		return 1;
	}
	if (n == 0) {
		c->eof = 1;
		return 1;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return 0;
	herd_log(HERD_LOG_DEBUG, "http: fd %d: recv: %s", c->fd,
		 strerror(errno));
	return -1;
}

static int conn_can_read(const struct conn *c)
{
	return !c->eof && c->phase != PH_CLOSING && c->out_len <= OUT_HIGH &&
	       c->in_len - c->in_off < IN_CAP;
}

/* The last response is out: half-close, then linger (or close at EOF). */
/* Lingering (shut down writing, read until the client's EOF) keeps a
 * close from resetting the connection under the response when the client
 * still sends: after an error reply, or with pipelined input buffered. A
 * request read whole and answered with "Connection: close" needs none of
 * it and closes at once, as nginx does: two syscalls less per request. */
static int conn_linger(struct conn *c)
{
	if (c->eof || (!c->linger && c->in_off == c->in_len))
		return -1;
	if (shutdown(c->fd, SHUT_WR) < 0) {
		herd_log(HERD_LOG_DEBUG, "http: fd %d: shutdown: %s", c->fd,
			 strerror(errno));
		return -1;
	}
	set_phase(c, PH_LINGER);
	return 0;
}

/* Processes, writes and reads until the socket has nothing more for now.
 * Returns 0 to keep the connection, -1 to close it. */
static int conn_step(struct conn *c)
{
	int drained = 0;

	for (;;) {
		int r = conn_process(c);

		if (r < 0 || conn_flush(c) < 0)
			return -1;
		if (r > 0 && c->out_len > 0) /* backpressure: wait for WRITE */
			return 0;
		if (r > 0) /* all out already: parse on */
			continue;
		if (c->phase == PH_CLOSING && c->out_len == 0 &&
		    conn_linger(c) < 0)
			return -1;
		if (c->eof) /* all answered: close once written */
			return c->out_len > 0 ? 0 : -1;
		if (!conn_can_read(c) || drained)
			return 0;
		r = conn_fill(c, &drained);
		if (r <= 0)
			return r;
	}
}

/* ---- events, timers, closing ------------------------------------------ */

static void conn_free(struct conn *c)
{
	if (c->timer != NULL)
		herd_timer_free(c->timer);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		g.conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	buf_release(&g.out_pool, c->out, c->out_cap);
	buf_release(&g.in_pool, c->in, c->in_cap);
	free(c);
	mem_gave(sizeof *c);
}

/* herd_conn_close() takes the fd out of the loop as well. */
static void conn_close(struct conn *c)
{
	herd_conn_close(g.w, c->fd);
	conn_free(c);
}

/* Idle: nothing of a next request received, nothing left to write. */
static int conn_idle(const struct conn *c)
{
	return c->out_len == 0 &&
	       (c->phase == PH_IDLE ||
		(c->phase == PH_HEAD && c->in_off == c->in_len));
}

/* The deadline of the current phase; pending output has its own. */
static uint64_t conn_deadline(const struct conn *c)
{
	if (c->out_len > 0)
		return c->write_since + SEND_TIMEOUT_MS;
	if (herd_worker_draining(g.w) && conn_idle(c))
		return c->since + DRAIN_GRACE_MS;
	switch (c->phase) {
	case PH_HEAD:
		return c->since + HEADER_TIMEOUT_MS;
	case PH_IDLE:
		return c->since + IDLE_TIMEOUT_MS;
	case PH_BODY:
		return c->since + BODY_TIMEOUT_MS;
	case PH_LINGER:
		return c->since + LINGER_TIMEOUT_MS;
	case PH_CLOSING:
		break;
	}
	return c->since + SEND_TIMEOUT_MS;
}

static void conn_arm_timer(struct conn *c)
{
	uint64_t now = now_ms(), d = conn_deadline(c);

	if (d == c->deadline && herd_timer_active(c->timer))
		return;
	c->deadline = d;
	herd_timer_start(c->timer, d > now ? d - now : 0);
}

static void conn_on_io(herd_loop *l, int fd, unsigned events, void *arg);

/* Matches the loop's interest to what the connection can do now, and
 * puts it in the loop the first time it waits for something. */
static int conn_set_events(struct conn *c)
{
	unsigned want = (conn_can_read(c) ? HERD_READ : 0u) |
			(c->out_len > 0 ? HERD_WRITE : 0u);

	if (want == c->events)
		return 0;
	if (!c->watched) {
		if (herd_loop_add(g.loop, c->fd, want, conn_on_io, c) < 0) {
			herd_log(HERD_LOG_WARN, "http: fd %d: loop add: %s",
				 c->fd, strerror(errno));
			return -1;
		}
		c->watched = 1;
	} else if (herd_loop_mod(g.loop, c->fd, want) < 0) {
		herd_log(HERD_LOG_WARN, "http: fd %d: loop mod: %s", c->fd,
			 strerror(errno));
		return -1;
	}
	c->events = want;
	return 0;
}

/* A draining worker's idle connection, nothing of a next request read:
 * relayed to a serving worker, which reads that request from the socket.
 * Returns 1 when c is gone. */
static int conn_relay(struct conn *c)
{
	if (!herd_worker_can_relay(g.w) || !conn_idle(c) ||
	    c->in_off != c->in_len || c->eof || c->linger)
		return 0;
	if (herd_conn_relay(g.w, c->fd, NULL, 0) == -1) {
		herd_log(HERD_LOG_DEBUG, "http: fd %d: relay: %s", c->fd,
			 strerror(errno));
		return 0;
	}
	conn_free(c);
	return 1;
}

static void conn_run(struct conn *c)
{
	if (conn_step(c) < 0 || conn_set_events(c) < 0) {
		conn_close(c);
		return;
	}
	if (conn_relay(c))
		return;
	in_release(c);
	conn_arm_timer(c);
}

static void conn_on_io(herd_loop *l, int fd, unsigned events, void *arg)
{
	(void)l;
	(void)fd;
	(void)events; /* conn_step tries both directions anyway */
	conn_run(arg);
}

/* A deadline passed: a request in progress gets 408, others just close. */
static void conn_on_timer(herd_loop *l, herd_timer *t, void *arg)
{
	struct conn *c = arg;
	int partial = c->out_len == 0 &&
		      ((c->phase == PH_HEAD && c->in_off < c->in_len) ||
		       c->phase == PH_BODY);

	(void)t;
	c->deadline = 0;
	if (herd_loop_now(l) < conn_deadline(c)) {
		conn_arm_timer(c);
		return;
	}
	herd_log(HERD_LOG_DEBUG, "http: fd %d: timeout in phase %d", c->fd,
		 (int)c->phase);
	if (!partial || conn_fail(c, 408) < 0) {
		conn_close(c);
		return;
	}
	conn_run(c);
}

static struct conn *conn_new(int fd)
{
	struct conn *c = calloc(1, sizeof *c);

	if (c == NULL)
		return NULL;
	mem_took(sizeof *c);
	c->fd = fd;
	http_head_init(&c->head);
	c->timer = herd_timer_new(g.loop, conn_on_timer, c);
	if (c->timer == NULL) {
		free(c);
		mem_gave(sizeof *c);
		return NULL;
	}
	set_phase(c, PH_HEAD); /* the header clock starts at accept */
	c->next = g.conns;
	if (g.conns != NULL)
		g.conns->prev = c;
	g.conns = c;
	return c;
}

/* ---- worker callbacks ------------------------------------------------- */

static int on_start(herd_worker *w, void *ud)
{
	(void)ud;
	g.w = w;
	g.loop = herd_worker_loop(w);
	g.conns = NULL;
	g.in_pool.size = IN_FIRST;
	g.out_pool.size = OUT_INIT;
	return g.loop != NULL ? 0 : -1;
}

static void on_connection(herd_worker *w, int fd, void *ud)
{
	struct conn *c = conn_new(fd);

	(void)ud;
	if (c == NULL) {
		herd_log(HERD_LOG_WARN, "http: fd %d: no memory, closing", fd);
		herd_conn_close(w, fd);
		return;
	}
	/* With --defer-accept the request came before the connection could
	 * be accepted: it is read at once, and a connection answered and
	 * closed never enters the loop. Otherwise no read yet: the request
	 * rarely follows the handshake's last ACK (which made the connection
	 * acceptable) before it is accepted, even when the master accepted
	 * and passed it, and a recv that fails costs as much as the
	 * readiness the loop reports when the request comes. */
	if (herd_worker_deferred(w)) {
		conn_run(c);
		return;
	}
	if (conn_set_events(c) < 0) {
		conn_close(c);
		return;
	}
	conn_arm_timer(c);
}

/* When the pool goes on (a reload, a scale-down), idle connections are
 * relayed to a serving worker now, and the others once their request is
 * answered (conn_relay), so clients keep them. When herd stops, requests
 * in flight finish with "Connection: close" (conn_respond), and idle
 * connections get DRAIN_GRACE_MS from when they turned idle (at once for
 * those idle longer): their timers are re-armed for that deadline. The
 * same where a relay fails. */
static void on_drain(herd_worker *w, void *ud)
{
	struct conn *c = g.conns, *next;

	(void)w;
	(void)ud;
	for (; c != NULL; c = next) {
		next = c->next;
		if (conn_idle(c) && !conn_relay(c))
			conn_arm_timer(c);
	}
}

static void on_stop(herd_worker *w, void *ud)
{
	(void)w;
	(void)ud;
	while (g.conns != NULL)
		conn_close(g.conns);
}

void http_worker_install(herd *h)
{
	herd_on_start(h, on_start);
	herd_on_connection(h, on_connection);
	herd_on_drain(h, on_drain);
	herd_on_stop(h, on_stop);
}
