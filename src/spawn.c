/*
 * spawn.c: creating worker processes safely, and signalling them.
 *
 * Every signal is blocked across fork() so the child cannot run a handler
 * (or die of one) before it has reset the dispositions it inherited. The
 * child arms PR_SET_PDEATHSIG and then checks that its parent is still the
 * master, closing the race where the master died before the prctl.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "log.h"

static void reset_dispositions(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &sa, NULL); /* EINVAL for RT internals */
}

pid_t spawn_fork(pid_t parent)
{
	sigset_t all, old;
	pid_t pid;
	int e;

	sigfillset(&all);
	if (sigprocmask(SIG_SETMASK, &all, &old) == -1)
		return -1;
	pid = fork();
	if (pid == 0) {
		reset_dispositions();
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 ||
		    getppid() != parent)
			_exit(1);
		return 0;
	}
	e = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	errno = e;
	return pid;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

static int close_from_to(unsigned lo, unsigned hi)
{
	if (lo > hi)
		return 0;
	if (syscall(SYS_close_range, lo, hi, 0) == 0)
		return 0;
	if (errno != ENOSYS)
		return -1;
	/* Kernels before 5.9: close one by one, bounded by the fd limit. */
	for (long fd = lo, max = sysconf(_SC_OPEN_MAX);
	     fd <= (long)hi && fd < (max > 0 ? max : 65536); fd++)
		close((int)fd);
	return 0;
}

int spawn_close_except(int *keep, size_t n)
{
	unsigned next = 0;

	qsort(keep, n, sizeof(*keep), cmp_int);
	for (size_t i = 0; i < n; i++) {
		if (keep[i] < 0 || (unsigned)keep[i] < next)
			continue;
		if ((unsigned)keep[i] > next &&
		    close_from_to(next, (unsigned)keep[i] - 1) == -1)
			return -1;
		next = (unsigned)keep[i] + 1;
	}
	return close_from_to(next, ~0u);
}

int spawn_pidfd(pid_t pid)
{
	/* pidfds are always close-on-exec. */
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

int spawn_signal(int pidfd, pid_t pid, int sig)
{
	if (pidfd >= 0)
		return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
	/* Safe only because the master signals nothing it has reaped. */
	return kill(pid, sig);
}
