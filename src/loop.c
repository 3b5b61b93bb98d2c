/*
 * loop.c: an epoll loop with a binary heap of one-shot timers.
 *
 * Registrations live in an array indexed by fd. Each registration has a
 * serial number that travels in the epoll event, so an event fetched in
 * the same batch as the callback that closed its fd (and perhaps reused
 * the number) is recognised as stale and skipped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"

#define BATCH	 64
#define NO_INDEX SIZE_MAX

struct io {
	herd_io_fn fn;
	void *arg;
	unsigned events;
	uint32_t serial; /* 0: not registered */
};

struct herd_timer {
	herd_loop *loop;
	herd_timer_fn fn;
	void *arg;
	uint64_t due;
	uint64_t pass; /* loop pass it was started in */
	size_t index;  /* in the heap, or NO_INDEX */
};

struct herd_loop {
	int epfd;
	int stopped;
	uint32_t next_serial;
	uint64_t now;
	uint64_t pass;
	struct io *io;
	size_t nio;
	herd_timer **heap;
	size_t nheap, capheap;
	herd_timer **all; /* every timer, so loop_free can free them */
	size_t nall, capall;
};

uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

herd_loop *loop_new(void)
{
	herd_loop *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	if ((l->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		free(l);
		return NULL;
	}
	l->now = mono_ms();
	return l;
}

void loop_free(herd_loop *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->nall; i++)
		free(l->all[i]);
	free(l->all);
	free(l->heap);
	free(l->io);
	close(l->epfd);
	free(l);
}

void loop_stop(herd_loop *l)
{
	l->stopped = 1;
}

uint64_t loop_pass(const herd_loop *l)
{
	return l->pass;
}

uint64_t herd_loop_now(const herd_loop *l)
{
	return l->now;
}

/* ---- fds ----------------------------------------------------------------- */

static int io_reserve(herd_loop *l, int fd)
{
	size_t n = l->nio ? l->nio : 64;
	struct io *v;

	if (fd < 0) {
		errno = EBADF;
		return -1;
	}
	if ((size_t)fd < l->nio)
		return 0;
	while (n <= (size_t)fd)
		n *= 2;
	if ((v = realloc(l->io, n * sizeof(*v))) == NULL)
		return -1;
	memset(v + l->nio, 0, (n - l->nio) * sizeof(*v));
	l->io = v;
	l->nio = n;
	return 0;
}

static uint32_t to_epoll(unsigned events)
{
	return (events & HERD_READ ? EPOLLIN : 0u) |
	       (events & HERD_WRITE ? EPOLLOUT : 0u);
}

static struct io *io_get(const herd_loop *l, int fd)
{
	if (fd < 0 || (size_t)fd >= l->nio || l->io[fd].serial == 0)
		return NULL;
	return &l->io[fd];
}

int loop_has(const herd_loop *l, int fd)
{
	return io_get(l, fd) != NULL;
}

int loop_add_flags(herd_loop *l, int fd, unsigned events, uint32_t flags,
		   herd_io_fn fn, void *arg)
{
	struct epoll_event ev = {0};
	struct io *io;

	if (io_reserve(l, fd) == -1)
		return -1;
	io = &l->io[fd];
	if (io->serial != 0) {
		errno = EEXIST;
		return -1;
	}
	if (++l->next_serial == 0)
		l->next_serial = 1;
	ev.events = to_epoll(events) | flags;
	ev.data.u64 = (uint64_t)l->next_serial << 32 | (uint32_t)fd;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) == -1)
		return -1;
	*io = (struct io){fn, arg, events, l->next_serial};
	return 0;
}

int herd_loop_add(herd_loop *l, int fd, unsigned events, herd_io_fn fn,
		  void *arg)
{
	return loop_add_flags(l, fd, events, 0, fn, arg);
}

int herd_loop_mod(herd_loop *l, int fd, unsigned events)
{
	struct io *io = io_get(l, fd);
	struct epoll_event ev = {0};

	if (io == NULL) {
		errno = ENOENT;
		return -1;
	}
	if (io->events == events)
		return 0;
	ev.events = to_epoll(events);
	ev.data.u64 = (uint64_t)io->serial << 32 | (uint32_t)fd;
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) == -1)
		return -1;
	io->events = events;
	return 0;
}

void loop_forget(herd_loop *l, int fd)
{
	struct io *io = io_get(l, fd);

	if (io != NULL)
		io->serial = 0;
}

int herd_loop_del(herd_loop *l, int fd)
{
	struct io *io = io_get(l, fd);

	if (io == NULL) {
		errno = ENOENT;
		return -1;
	}
	io->serial = 0;
	/* EBADF/ENOENT: the fd was closed already, which removed it. */
	if (epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL) == -1 &&
	    errno != EBADF && errno != ENOENT)
		return -1;
	return 0;
}

/* ---- timers (a binary min-heap on due time) --------------------------------
 */

static void heap_swap(herd_loop *l, size_t a, size_t b)
{
	herd_timer *t = l->heap[a];

	l->heap[a] = l->heap[b];
	l->heap[b] = t;
	l->heap[a]->index = a;
	l->heap[b]->index = b;
}

static void heap_up(herd_loop *l, size_t i)
{
	while (i > 0 && l->heap[(i - 1) / 2]->due > l->heap[i]->due) {
		heap_swap(l, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void heap_down(herd_loop *l, size_t i)
{
	for (;;) {
		size_t c = 2 * i + 1, m = i;

		if (c < l->nheap && l->heap[c]->due < l->heap[m]->due)
			m = c;
		if (c + 1 < l->nheap && l->heap[c + 1]->due < l->heap[m]->due)
			m = c + 1;
		if (m == i)
			return;
		heap_swap(l, i, m);
		i = m;
	}
}

static void heap_remove(herd_loop *l, herd_timer *t)
{
	size_t i = t->index;

	t->index = NO_INDEX;
	if (i != --l->nheap) {
		l->heap[i] = l->heap[l->nheap];
		l->heap[i]->index = i;
		heap_down(l, i);
		heap_up(l, i);
	}
}

/* Grows a pointer array by doubling. */
static int grow(herd_timer ***v, size_t *cap, size_t need)
{
	size_t n = *cap ? *cap * 2 : 16;
	herd_timer **p;

	if (need <= *cap)
		return 0;
	if ((p = realloc(*v, n * sizeof(*p))) == NULL)
		return -1;
	*v = p;
	*cap = n;
	return 0;
}

herd_timer *herd_timer_new(herd_loop *l, herd_timer_fn fn, void *arg)
{
	herd_timer *t;

	/* Reserve heap room now so that starting a timer cannot fail. */
	if (grow(&l->all, &l->capall, l->nall + 1) == -1 ||
	    grow(&l->heap, &l->capheap, l->nall + 1) == -1)
		return NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	*t = (herd_timer){l, fn, arg, 0, 0, NO_INDEX};
	l->all[l->nall++] = t;
	return t;
}

void herd_timer_start(herd_timer *t, uint64_t after_ms)
{
	herd_loop *l = t->loop;

	if (t->index != NO_INDEX)
		heap_remove(l, t);
	t->due = l->now + after_ms;
	t->pass = l->pass;
	t->index = l->nheap;
	l->heap[l->nheap++] = t;
	heap_up(l, t->index);
}

void herd_timer_stop(herd_timer *t)
{
	if (t->index != NO_INDEX)
		heap_remove(t->loop, t);
}

int herd_timer_active(const herd_timer *t)
{
	return t->index != NO_INDEX;
}

void herd_timer_free(herd_timer *t)
{
	herd_loop *l;

	if (t == NULL)
		return;
	l = t->loop;
	herd_timer_stop(t);
	for (size_t i = 0; i < l->nall; i++) {
		if (l->all[i] == t) {
			l->all[i] = l->all[--l->nall];
			break;
		}
	}
	free(t);
}

/* Runs the timers that are due. A timer started during this pass waits for
 * the next one, so a callback that re-arms with 0 cannot starve the fds. */
static void run_timers(herd_loop *l)
{
	while (l->nheap > 0 && !l->stopped) {
		herd_timer *t = l->heap[0];

		if (t->due > l->now || t->pass == l->pass)
			return;
		heap_remove(l, t);
		t->fn(l, t, t->arg);
	}
}

static int next_timeout(const herd_loop *l)
{
	uint64_t due;

	if (l->nheap == 0)
		return -1;
	due = l->heap[0]->due;
	if (due <= l->now)
		return 0;
	return due - l->now > 60000 ? 60000 : (int)(due - l->now);
}

static void dispatch(herd_loop *l, const struct epoll_event *ev)
{
	int fd = (int)(uint32_t)ev->data.u64;
	uint32_t serial = (uint32_t)(ev->data.u64 >> 32);
	struct io *io = io_get(l, fd);
	unsigned what = 0;

	if (io == NULL || io->serial != serial)
		return; /* removed earlier in this batch */
	if (ev->events & EPOLLIN)
		what |= HERD_READ;
	if (ev->events & EPOLLOUT)
		what |= HERD_WRITE;
	/* Errors and hang-ups go to whichever side is being watched, so the
	 * next read or write reports them. */
	if (ev->events & (EPOLLERR | EPOLLHUP))
		what |= io->events;
	if (what != 0)
		io->fn(l, fd, what, io->arg);
}

int loop_run(herd_loop *l)
{
	struct epoll_event ev[BATCH];

	l->stopped = 0;
	while (!l->stopped) {
		int n = epoll_wait(l->epfd, ev, BATCH, next_timeout(l));

		if (n == -1 && errno != EINTR) {
			log_error("epoll_wait: %s", strerror(errno));
			return -1;
		}
		l->now = mono_ms();
		l->pass++;
		for (int i = 0; i < n && !l->stopped; i++)
			dispatch(l, &ev[i]);
		run_timers(l);
	}
	return 0;
}
