/* test_loop.c: the event loop's timers and fd dispatch, including an event
 * that goes stale when an earlier callback in the same batch closes its
 * fd and the number is reused. */
#include <unistd.h>

#include "loop.h"
#include "tap.h"

static int order[8], norder;
static int zero_runs;
static int pipe_a[2], pipe_b[2];
static int b_calls, reused_calls;

static void record(herd_loop *l, herd_timer *t, void *arg)
{
	(void)t;
	order[norder++] = (int)(long)arg;
	if (norder == 3)
		loop_stop(l);
}

static void timers_in_order(void)
{
	herd_loop *l = loop_new();
	herd_timer *t1 = herd_timer_new(l, record, (void *)1L);
	herd_timer *t2 = herd_timer_new(l, record, (void *)2L);
	herd_timer *t3 = herd_timer_new(l, record, (void *)3L);
	herd_timer *t4 = herd_timer_new(l, record, (void *)4L);

	herd_timer_start(t3, 30);
	herd_timer_start(t1, 10);
	herd_timer_start(t2, 20);
	herd_timer_start(t4, 15);
	herd_timer_stop(t4);
	ok(!herd_timer_active(t4) && herd_timer_active(t1), "active flags");
	herd_timer_start(t1, 25); /* re-arming moves it */
	loop_run(l);
	ok(norder == 3 && order[0] == 2 && order[1] == 1 && order[2] == 3,
	   "timers fire by due time; a stopped one never (%d %d %d)", order[0],
	   order[1], order[2]);
	herd_timer_free(t2);
	loop_free(l); /* frees t1, t3, t4 */
}

static void rearm_zero(herd_loop *l, herd_timer *t, void *arg)
{
	(void)arg;
	if (++zero_runs < 5)
		herd_timer_start(t, 0);
	else
		loop_stop(l);
}

static void on_b(herd_loop *l, int fd, unsigned ev, void *arg)
{
	(void)l;
	(void)fd;
	(void)ev;
	b_calls += arg == NULL;
	reused_calls += arg != NULL;
}

static int reused[2];

static void on_a(herd_loop *l, int fd, unsigned ev, void *arg)
{
	(void)ev;
	(void)arg;
	/* Close b and reuse its number for a new pipe, registered anew: the
	 * event already fetched for the old b must reach neither callback. */
	herd_loop_del(l, pipe_b[0]);
	close(pipe_b[0]);
	close(pipe_b[1]);
	if (pipe(reused) == -1)
		_exit(98);
	herd_loop_add(l, reused[0], HERD_READ, on_b, (void *)1);
	herd_loop_del(l, fd);
	herd_timer_start(herd_timer_new(l, record, (void *)9L), 20);
}

static void stale_events(void)
{
	herd_loop *l = loop_new();
	herd_timer *t = herd_timer_new(l, rearm_zero, NULL);

	herd_timer_start(t, 0);
	loop_run(l);
	is_int(zero_runs, 5, "a timer re-armed with 0 runs once per pass");

	if (pipe(pipe_a) == -1 || pipe(pipe_b) == -1)
		_exit(99);
	herd_loop_add(l, pipe_a[0], HERD_READ, on_a, NULL);
	herd_loop_add(l, pipe_b[0], HERD_READ, on_b, NULL);
	/* Ready in this order, so one epoll batch reports a, then b. */
	(void)!write(pipe_a[1], "x", 1);
	(void)!write(pipe_b[1], "x", 1);
	norder = 2; /* record() stops the loop at its next call */
	loop_run(l);
	ok(reused[0] == pipe_b[0], "the fd number was reused (%d)", reused[0]);
	ok(b_calls == 0 && reused_calls == 0,
	   "a stale event reaches neither the old nor the new callback");
	ok(loop_has(l, pipe_a[0]) == 0, "deleted fds are unregistered");
	ok(herd_loop_del(l, pipe_a[0]) == -1, "deleting twice fails");
	ok(herd_loop_add(l, -1, HERD_READ, on_b, NULL) == -1, "bad fd refused");
	close(pipe_a[0]);
	close(pipe_a[1]);
	close(reused[0]);
	close(reused[1]);
	loop_free(l);
}

static int forgot_calls;

static void on_forgot(herd_loop *l, int fd, unsigned ev, void *arg)
{
	(void)fd;
	(void)ev;
	forgot_calls += arg != NULL;
	loop_stop(l);
}

/* loop_forget() then close(): the close takes the fd out of the epoll set,
 * and its number can be registered anew at once. */
static void forgotten(void)
{
	herd_loop *l = loop_new();
	int p[2], q[2];

	if (pipe(p) == -1)
		_exit(99);
	herd_loop_add(l, p[0], HERD_READ, on_forgot, NULL);
	loop_forget(l, p[0]);
	ok(!loop_has(l, p[0]), "a forgotten fd is unregistered");
	close(p[0]);
	close(p[1]);
	if (pipe(q) == -1)
		_exit(99);
	ok(q[0] == p[0] &&
	       herd_loop_add(l, q[0], HERD_READ, on_forgot, (void *)1) == 0,
	   "its number, reused, is registered again");
	(void)!write(q[1], "x", 1);
	loop_run(l);
	is_int(forgot_calls, 1, "and the new registration's events arrive");
	close(q[0]);
	close(q[1]);
	loop_free(l);
}

int main(void)
{
	timers_in_order();
	stale_events();
	forgotten();
	return done_testing();
}
