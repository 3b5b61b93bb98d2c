/*
 * output.c: programs' stdout and stderr as log lines (output.h).
 *
 * The master reads each pipe nonblocking, at most OUTPUT_READ_MAX bytes
 * per event: the loop is level-triggered, so what is left comes on the
 * next turn, after everything else that was ready, and one flooding
 * program cannot starve signals, herd ctl or the other pipes. Lines go
 * through herd_log(), so they land wherever the log goes and follow its
 * reopen.
 *
 * The rate limit counts log lines (a long line cut in pieces counts one
 * per piece) in windows of a second: OUTPUT_PER_SEC per pipe and
 * OUTPUT_ALL_PER_SEC for all, so 512 chatty workers cost at most that
 * many lines a second on disk. What is over is still read (a pipe left
 * full would block the program) and counted, and one warning per pipe at
 * the end of its window says how many lines were not logged.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kind.h"
#include "log.h"
#include "loop.h"
#include "output.h"
#include "ratelimit.h"
#include "upgrade.h"

/* Room log.c leaves for the text of a line, at most 1023 bytes in all:
 * the time, level, pid and role (under 60 bytes) and "worker N (pid P,
 * generation G) continued: " (under 70) before it. */
_Static_assert(OUTPUT_LINE_MAX + 160 <= 1023, "a piece must fit a log line");

struct output {
	int fd; /* the read end; -1 once closed */
	int slot;
	pid_t pid;
	unsigned gen;
	int attached;	     /* its worker is in the master's table */
	int continued;	     /* the next piece continues a cut line */
	struct ratelimit rl; /* OUTPUT_PER_SEC lines a second */
	struct output *prev, *next;
	size_t len;
	unsigned char line[OUTPUT_LINE_MAX]; /* the line so far, as read */
};

static struct {
	herd_loop *loop;
	herd_timer *timer; /* the end of the first window that dropped lines */
	uint64_t due;
	struct output *head, *tail; /* every pipe, oldest first */
	size_t lingering;	    /* open pipes whose worker is gone */
	struct ratelimit rl;	    /* OUTPUT_ALL_PER_SEC from all pipes */
} outputs;

int output_captured(const herd *h)
{
	return h->kind->output && !h->inherit_output;
}

/* ---- making lines printable ---------------------------------------------- */

/* The length of the UTF-8 character at s (n bytes there): 2..4 when it is
 * well formed and not a C1 control (U+0080..U+009F: terminal commands
 * too), 0 when it is not, -1 when n ends it before it could be told. */
static int utf8_char(const unsigned char *s, size_t n)
{
	unsigned c = s[0], lo = 0x80, hi = 0xbf;
	int len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;

	if (c < 0xc2 || c > 0xf4)
		return 0; /* a continuation byte, or an overlong or too large
			     character's lead */
	if (c == 0xc2 || c == 0xe0)
		lo = 0xa0; /* C1 controls; overlong three-byte forms */
	else if (c == 0xed)
		hi = 0x9f; /* surrogates */
	else if (c == 0xf0)
		lo = 0x90; /* overlong four-byte forms */
	else if (c == 0xf4)
		hi = 0x8f; /* past U+10FFFF */
	for (int i = 1; i < len; i++) {
		if ((size_t)i >= n)
			return -1;
		if (s[i] < (i == 1 ? lo : 0x80) || s[i] > (i == 1 ? hi : 0xbf))
			return 0;
	}
	return len;
}

/* s[0..n) as text for the log, in out (n + 1 bytes): printable ASCII,
 * tabs and well-formed UTF-8 are kept, every other byte becomes '?', so no
 * byte of a program's can end a log line or command a terminal. */
static void printable(const unsigned char *s, size_t n, char *out)
{
	size_t i = 0, w = 0;

	while (i < n) {
		int k = s[i] < 0x80 ? 1 : utf8_char(s + i, n - i);

		if (k <= 0 ||
		    (k == 1 && (s[i] < 0x20 || s[i] == 0x7f) && s[i] != '\t')) {
			out[w++] = '?';
			i++;
			continue;
		}
		memcpy(out + w, s + i, (size_t)k);
		w += (size_t)k;
		i += (size_t)k;
	}
	out[w] = '\0';
}

/* Where to cut s[0..n) so that no character is split: before a character
 * that n ends too early, else at n. */
static size_t whole_chars(const unsigned char *s, size_t n)
{
	for (size_t back = 1; back <= 3 && back <= n; back++) {
		unsigned c = s[n - back];

		if (c < 0x80)
			return n;
		if (c >= 0xc0)
			return utf8_char(s + n - back, back) == -1 ? n - back
								   : n;
	}
	return n;
}

/* ---- the rate limit ------------------------------------------------------ */

static void say_count(const struct output *o, unsigned long n)
{
	if (n == 0)
		return;
	log_warn("worker %d (pid %d): %lu lines of output not logged (more "
		 "than %d a second from one worker, or %d from all)",
		 o->slot, (int)o->pid, n, OUTPUT_PER_SEC, OUTPUT_ALL_PER_SEC);
}

/* What the current window left out, said now. */
static void say_dropped(struct output *o)
{
	say_count(o, o->rl.dropped);
	o->rl.dropped = 0;
}

static void arm(uint64_t at)
{
	uint64_t now = herd_loop_now(outputs.loop);

	if (herd_timer_active(outputs.timer) && outputs.due <= at)
		return;
	outputs.due = at;
	herd_timer_start(outputs.timer, at > now ? at - now : 0);
}

/* A window that dropped lines is said at its end, even when the pipe has
 * gone quiet (or its program is stopped) since. */
static void on_window(herd_loop *l, herd_timer *t, void *arg)
{
	uint64_t now = herd_loop_now(l), next = UINT64_MAX;

	(void)t;
	(void)arg;
	for (struct output *o = outputs.head; o != NULL; o = o->next) {
		uint64_t end = o->rl.start + RATELIMIT_WINDOW_MS;

		if (o->rl.dropped == 0)
			continue;
		if (now >= end)
			say_dropped(o);
		else if (end < next)
			next = end;
	}
	if (next != UINT64_MAX)
		arm(next);
}

/* Whether one more line of o's may be logged now. */
static int admit(struct output *o)
{
	uint64_t now = herd_loop_now(outputs.loop);

	say_count(o, ratelimit_roll(&o->rl, now));
	(void)ratelimit_roll(&outputs.rl, now); /* said per pipe */
	if (ratelimit_room(&o->rl, OUTPUT_PER_SEC) &&
	    ratelimit_room(&outputs.rl, OUTPUT_ALL_PER_SEC)) {
		ratelimit_take(&o->rl);
		ratelimit_take(&outputs.rl);
		return 1;
	}
	if (ratelimit_drop(&o->rl))
		arm(o->rl.start + RATELIMIT_WINDOW_MS);
	return 0;
}

/* ---- lines --------------------------------------------------------------- */

/* One piece of a line: the whole line (cut 0, its CR of a CRLF dropped),
 * or the first OUTPUT_LINE_MAX bytes of one (cut 1), whose next piece is
 * logged as "continued". */
static void emit(struct output *o, const unsigned char *s, size_t n, int cut)
{
	char text[OUTPUT_LINE_MAX + 1];
	int cont = o->continued;

	o->continued = cut;
	if (!cut && n > 0 && s[n - 1] == '\r')
		n--;
	if (!admit(o))
		return;
	printable(s, n, text);
	log_info("worker %d (pid %d, generation %u)%s: %s", o->slot,
		 (int)o->pid, o->gen, cont ? " continued" : "", text);
}

/* What the line buffer holds, as a line of its own: at the end of the
 * pipe, and before an upgrade (the new image starts a new line). */
static void emit_partial(struct output *o)
{
	if (o->len > 0)
		emit(o, o->line, o->len, 0);
	o->len = 0;
}

/* Splits what was read into lines: a line is logged at its newline, or in
 * a piece once OUTPUT_LINE_MAX bytes of it wait. */
static void feed(struct output *o, const unsigned char *s, size_t n)
{
	while (n > 0) {
		const unsigned char *nl = memchr(s, '\n', n);
		size_t take = nl != NULL ? (size_t)(nl - s) : n;
		size_t room = OUTPUT_LINE_MAX - o->len;
		size_t k = take < room ? take : room;

		memcpy(o->line + o->len, s, k);
		o->len += k;
		s += k;
		n -= k;
		if (nl != NULL && take <= room) { /* the line ends here */
			emit(o, o->line, o->len, 0);
			o->len = 0;
			s++; /* the newline */
			n--;
		} else if (o->len == OUTPUT_LINE_MAX) {
			size_t at = whole_chars(o->line, o->len);

			emit(o, o->line, at, 1);
			memmove(o->line, o->line + at, o->len - at);
			o->len -= at;
		}
	}
}

/* ---- pipes --------------------------------------------------------------- */

/* Reads what o's pipe holds, at most OUTPUT_READ_MAX bytes. Returns 1
 * while it is open, 0 at its end (every write end closed) or on an error.
 * One buffer for all: the master reads one pipe at a time. */
static int drain(struct output *o)
{
	static unsigned char buf[OUTPUT_READ_MAX];
	size_t total = 0;

	while (total < sizeof(buf)) {
		ssize_t n = read(o->fd, buf, sizeof(buf) - total);

		if (n > 0) {
			feed(o, buf, (size_t)n);
			total += (size_t)n;
		} else if (n == -1 && errno == EINTR) {
			continue;
		} else if (n == -1 && errno == EAGAIN) {
			return 1;
		} else {
			if (n == -1)
				log_warn("worker %d (pid %d): output: %s",
					 o->slot, (int)o->pid, strerror(errno));
			return 0;
		}
	}
	return 1;
}

static void link_output(struct output *o)
{
	o->prev = outputs.tail;
	o->next = NULL;
	if (outputs.tail != NULL)
		outputs.tail->next = o;
	else
		outputs.head = o;
	outputs.tail = o;
}

static void unlink_free(struct output *o)
{
	if (o->prev != NULL)
		o->prev->next = o->next;
	else
		outputs.head = o->next;
	if (o->next != NULL)
		o->next->prev = o->prev;
	else
		outputs.tail = o->prev;
	free(o);
}

/* The pipe is done with: what is left of a line, what was not logged,
 * and the fd. o is freed unless its worker still points to it. */
static void finish(struct output *o)
{
	emit_partial(o);
	say_dropped(o);
	herd_loop_del(outputs.loop, o->fd);
	close(o->fd);
	o->fd = -1;
	if (!o->attached) {
		outputs.lingering--;
		unlink_free(o);
	}
}

static void on_output(herd_loop *l, int fd, unsigned events, void *arg)
{
	struct output *o = arg;

	(void)l;
	(void)fd;
	(void)events;
	if (!drain(o))
		finish(o);
}

static int setup(herd_loop *loop)
{
	if (outputs.loop == loop)
		return 0;
	if ((outputs.timer = herd_timer_new(loop, on_window, NULL)) == NULL)
		return -1;
	outputs.loop = loop;
	return 0;
}

/* A new entry for the read end fd, watched in the loop; NULL with errno
 * (fd left to the caller). */
static struct output *adopt(int fd, int slot, pid_t pid, unsigned gen)
{
	struct output *o = calloc(1, sizeof(*o));

	if (o == NULL)
		return NULL;
	if (herd_loop_add(outputs.loop, fd, HERD_READ, on_output, o) == -1) {
		free(o);
		return NULL;
	}
	o->fd = fd;
	o->slot = slot;
	o->pid = pid;
	o->gen = gen;
	o->attached = 1;
	link_output(o);
	return o;
}

struct output *output_open(herd_loop *loop, int slot, unsigned gen, int *wfd)
{
	struct output *o;
	int p[2], e;

	if (setup(loop) == -1 || pipe2(p, O_CLOEXEC | O_NONBLOCK) == -1)
		return NULL;
	/* The program's end blocks, as a stdout does: many programs take
	 * EAGAIN on a write to stdout for a fatal error. It never waits long,
	 * since the master reads everything, logged or not. */
	if (fd_blocking(p[1], 1) == 0 && (o = adopt(p[0], slot, 0, gen))) {
		*wfd = p[1];
		return o;
	}
	e = errno;
	close(p[0]);
	close(p[1]);
	errno = e;
	return NULL;
}

void output_started(struct output *o, pid_t pid)
{
	if (o != NULL)
		o->pid = pid;
}

void output_discard(struct output *o)
{
	if (o == NULL)
		return;
	herd_loop_del(outputs.loop, o->fd);
	close(o->fd);
	unlink_free(o);
}

int output_child(int wfd)
{
	if (dup2(wfd, STDOUT_FILENO) == -1 || dup2(wfd, STDERR_FILENO) == -1)
		return -1;
	return 0;
}

/* Beyond OUTPUT_LINGER_MAX pipes held by gone workers' descendants, the
 * oldest is closed: its writers then get EPIPE (or die of SIGPIPE), which
 * is what a closed stdout does; the warning says so. */
static void bound_lingering(void)
{
	struct output *o = outputs.head;

	while (outputs.lingering > OUTPUT_LINGER_MAX && o != NULL) {
		struct output *next = o->next;

		if (!o->attached && o->fd >= 0) {
			log_warn("worker %d (pid %d): more than %d output "
				 "pipes outlive their workers; closing this "
				 "one (its holders' writes now fail)",
				 o->slot, (int)o->pid, OUTPUT_LINGER_MAX);
			finish(o);
		}
		o = next;
	}
}

void output_gone(struct output *o)
{
	if (o == NULL)
		return;
	o->attached = 0;
	if (o->fd < 0) {
		unlink_free(o);
		return;
	}
	outputs.lingering++;
	/* Its last lines now, before herd logs its exit; the end of the
	 * pipe too, unless a process it started still holds it. */
	if (!drain(o))
		finish(o);
	else
		bound_lingering();
}

void output_close_all(void)
{
	struct output *o;

	while ((o = outputs.head) != NULL) {
		if (o->fd < 0) {
			unlink_free(o);
			continue;
		}
		if (o->attached) {
			o->attached = 0;
			outputs.lingering++;
		}
		(void)drain(o);
		finish(o);
	}
	/* The timer is the loop's, freed with it. */
	memset(&outputs, 0, sizeof(outputs));
}

/* ---- binary upgrade ------------------------------------------------------ */

/* The record's fields, listed in upgrade.h (all COPY). */
static void put_output(struct upgrade_output *u, const struct output *o)
{
	UPGRADE_OUTPUT_FIELDS(UPGRADE_PUT)
}

static void take_output(struct output *o, const struct upgrade_output *u)
{
	UPGRADE_OUTPUT_FIELDS(UPGRADE_TAKE)
}

int output_collect(struct upgrade_state *st)
{
	size_t n = 0;

	for (struct output *o = outputs.head; o != NULL; o = o->next)
		n += o->fd >= 0;
	if ((st->outs = calloc(n + 1, sizeof(*st->outs))) == NULL)
		return -1;
	for (struct output *o = outputs.head; o != NULL; o = o->next) {
		if (o->fd < 0)
			continue;
		emit_partial(o);
		say_dropped(o);
		put_output(&st->outs[st->nouts++], o);
	}
	return 0;
}

int output_resume(herd_loop *loop, const struct upgrade_state *st,
		  struct proctab *t)
{
	if (st->nouts > 0 && setup(loop) == -1)
		return -1;
	for (size_t i = 0; i < st->nouts; i++) {
		const struct upgrade_output *u = &st->outs[i];
		struct output *o = adopt(u->fd, u->slot, u->pid, u->gen);
		struct proc *p;

		if (o == NULL)
			return -1;
		take_output(o, u); /* attached, as the old image had it */
		p = o->attached ? proc_by_pid(t, o->pid) : NULL;
		if (p != NULL) {
			p->out = o;
		} else {
			o->attached = 0;
			outputs.lingering++;
		}
	}
	return 0;
}
