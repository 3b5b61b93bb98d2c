/*
 * spawn.c: creating worker processes safely, and signalling them.
 *
 * Every signal is blocked across fork() so the child cannot run a handler
 * (or die of one) before it has reset the dispositions it inherited. The
 * child arms PR_SET_PDEATHSIG and then checks that its parent is still the
 * master, closing the race where the master died before the prctl.
 *
 * A program's child then drops privileges, lays out its fds and execs; a
 * failure on the way reaches the master through a CLOEXEC pipe (EOF there
 * means the exec happened).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "log.h"

/* Every disposition back to default: one of SIG_IGN survives exec. For a
 * program about to be executed (raw), the signals the C library reserves
 * for itself (32 and 33 in glibc), which sigaction() refuses, go through
 * the system call, with the kernel's structure all zeros: SIG_DFL, no
 * flags, an empty mask, whatever the architecture's field order. An
 * in-process worker keeps them: glibc installs its handlers for them once
 * per process. */
static void reset_dispositions(int raw)
{
	unsigned long zero[8] = {0};
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP &&
		    sigaction(sig, &sa, NULL) == -1 && errno == EINVAL && raw)
			syscall(SYS_rt_sigaction, sig, zero, NULL,
				(size_t)(NSIG - 1) / 8);
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
		reset_dispositions(0);
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

int spawn_drop_privileges(const herd *h, pid_t parent)
{
	if (!h->drop)
		return 0;
	if (setgroups((size_t)h->ngroups, h->groups) == -1 ||
	    setgid(h->gid) == -1 || setuid(h->uid) == -1)
		return -1;
	/* Never run on with a way back to root. */
	if (h->uid != 0 && (setuid(0) != -1 || geteuid() == 0)) {
		errno = EPERM;
		return -1;
	}
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1)
		return -1;
	if (getppid() != parent) {
		errno = ESRCH;
		return -1;
	}
	return 0;
}

const char *spawn_stage_name(int stage)
{
	switch (stage) {
	case SPAWN_PRIVILEGES:
		return "cannot drop privileges";
	case SPAWN_LAYOUT:
		return "cannot set up its fds";
	case SPAWN_EXEC:
		return "cannot execute";
	}
	return "cannot start";
}

void spawn_fail(int err_fd, int stage, int err)
{
	struct spawn_error e = {stage, err};

	if (err_fd >= 0 && write(err_fd, &e, sizeof(e)) != (ssize_t)sizeof(e))
		_exit(127);
	_exit(127);
}

/* Every source is first copied above the target range (close-on-exec), so
 * that putting one in place never overwrites another still to be placed;
 * dup2 then gives each target a copy without close-on-exec. */
static int layout(const struct spawn_layout *lay, int *err_fd)
{
	int high[MAX_LISTEN + 1], above = lay->first + (int)lay->n + 3;
	int moved = fcntl(*err_fd, F_DUPFD_CLOEXEC, above);

	if (moved == -1)
		return -1; /* reported on the pipe as it is */
	*err_fd = moved;
	for (size_t i = 0; i < lay->n; i++)
		if ((high[i] = fcntl(lay->fds[i], F_DUPFD_CLOEXEC, above)) ==
		    -1)
			return -1;
	for (size_t i = 0; i < lay->n; i++)
		if (dup2(high[i], lay->first + (int)i) == -1)
			return -1;
	return 0;
}

void spawn_exec(char **argv, char **env, const struct spawn_layout *lay,
		int err_fd)
{
	sigset_t none;

	if (layout(lay, &err_fd) == -1)
		spawn_fail(err_fd, SPAWN_LAYOUT, errno);
	reset_dispositions(1);
	sigemptyset(&none);
	if (sigprocmask(SIG_SETMASK, &none, NULL) == -1)
		spawn_fail(err_fd, SPAWN_LAYOUT, errno);
	execvpe(argv[0], argv, env);
	spawn_fail(err_fd, SPAWN_EXEC, errno);
}
