/* test_orphans.c: finding this process's children, both ways, and the
 * stop's signal, deadline and SIGKILL on real children. */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "orphans.h"
#include "tap.h"

#define N 3

static int has(const pid_t *v, long n, pid_t pid)
{
	for (long i = 0; i < n; i++)
		if (v[i] == pid)
			return 1;
	return 0;
}

static int all(const pid_t *kids, const pid_t *v, long n)
{
	for (int i = 0; i < N; i++)
		if (!has(v, n, kids[i]))
			return 0;
	return 1;
}

/* A child that ignores TERM (when asked) and waits to be killed; it is
 * returned once its disposition is set. */
static pid_t child(int ignore_term)
{
	int p[2];
	char c;
	pid_t pid;

	if (pipe(p) == -1 || (pid = fork()) == -1)
		abort();
	if (pid == 0) {
		if (ignore_term)
			signal(SIGTERM, SIG_IGN);
		alarm(30); /* never outlives a failed test for long */
		if (write(p[1], "", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(p[1]);
	while (read(p[0], &c, 1) == -1)
		;
	close(p[0]);
	return pid;
}

static int exit_signal(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) == -1)
		;
	return WIFSIGNALED(status) ? WTERMSIG(status) : -1;
}

int main(void)
{
	pid_t kids[N], v[16], one;
	long n;
	struct orphans o = {0};
	uint64_t next;

	n = orphans_children(v, 16);
	is_int(n, 0, "no children at first");
	for (int i = 0; i < N; i++)
		kids[i] = child(i == 0);
	n = orphans_children(v, 16);
	ok(n == N && all(kids, v, n), "the children files list all three");
	n = orphans_scan_proc(getpid(), v, 16);
	ok(n == N && all(kids, v, n), "so does the /proc scan");
	n = orphans_children(v, 2);
	is_int(n, N, "the count is whole when the array is short");

	next = orphans_stop(&o, 1000, SIGTERM, 500);
	ok(next > 1000 && next <= 1500, "a look again before the deadline");
	for (int i = 1; i < N; i++)
		is_int(exit_signal(kids[i]), SIGTERM, "child %d got TERM", i);
	next = orphans_stop(&o, 1200, SIGTERM, 10000);
	ok(next > 1200 && next <= 1500, "a longer grace keeps the deadline");
	ok(kill(kids[0], 0) == 0, "the one ignoring TERM runs on");
	next = orphans_stop(&o, 1500, SIGTERM, 500);
	is_int(exit_signal(kids[0]), SIGKILL, "killed at the deadline");
	is_int(orphans_stop(&o, 1600, SIGTERM, 500), 0, "then none is left");
	orphans_free(&o);

	one = child(1);
	orphans_kill_all();
	ok(kill(one, 0) == -1, "orphans_kill_all() kills and reaps");
	return done_testing();
}
