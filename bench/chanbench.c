/*
 * chanbench.c: how many file descriptors per second pass through a herd
 * channel (src/channel.c), against a bare sendmsg/recvmsg loop.
 *
 * Each run makes a SOCK_SEQPACKET socketpair, nonblocking and CLOEXEC as
 * the master makes them, and forks: the child receives, the parent sends N
 * messages (-n, 200000) of K fds each, every fd a fresh dup() of /dev/null.
 *   bare: sendmsg with one SCM_RIGHTS of K fds and a header-sized payload,
 *         then close the sender's copies; recvmsg(MSG_CMSG_CLOEXEC) and
 *         close each fd. Both sides poll() on EAGAIN.
 *   herd: chan_send (which owns the fds and closes them once sent), then
 *         poll(POLLOUT) and chan_flush while chan_queued() > 0; chan_recv on
 *         a MSG_TO_WORKER end, poll(POLLIN) when it returns 0, close each fd.
 * No herd type carries more than one fd, so herd-4 sends MSG_CONNECTION
 * with 4 fds (chan_send does not check fd counts per type) and chan_recv
 * refuses each one (wrong fd count) after the same recvmsg, closing the 4
 * fds itself; those refusals are what herd-4 counts. Its receiver logs
 * errors only, so the refusals cost no log lines.
 *
 * The clock (CLOCK_MONOTONIC, system-wide) starts just before the first
 * send, once the child has said it is ready, and stops when the child has
 * received and closed the last fd; the child reports that time through a
 * pipe. Rates are the median of the runs (-r, 3), the variants taking
 * turns within each round; spread is (fastest - slowest) / median. CPU per
 * message is the sender's own (getrusage) and the receiver's (wait4)
 * user+system time: with one core each, the busier side sets the rate.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "channel.h"
#include "log.h"

#define MAX_K	   16
#define MAX_RUNS   15
#define TIMEOUT_MS 10000 /* a lost message fails the run, not hangs it */

enum kind { BARE, HERD };

static const struct variant {
	const char *name;
	enum kind kind;
	int k;
	const char *what;
} variants[] = {
    {"bare-1", BARE, 1, "sendmsg/recvmsg, 1 fd per message"},
    {"bare-4", BARE, 4, "sendmsg/recvmsg, 4 fds per message"},
    {"bare-16", BARE, 16, "sendmsg/recvmsg, 16 fds per message"},
    {"herd-1", HERD, 1, "chan_send/chan_recv, MSG_CONNECTION (1 fd)"},
    {"herd-4", HERD, 4,
     "chan_send 4 fds, chan_recv refuses them (fd count) and closes them"},
};
#define NVARIANTS (sizeof(variants) / sizeof(variants[0]))

struct result { /* child -> parent, through the pipe */
	struct timespec end;
	unsigned long msgs, fds;
};

struct series { /* one variant's runs: elapsed; CPU per message */
	double secs[MAX_RUNS], snd_us[MAX_RUNS], rcv_us[MAX_RUNS];
};

static double ts_sec(const struct timespec *t)
{
	return (double)t->tv_sec + (double)t->tv_nsec / 1e9;
}

static double ru_sec(const struct rusage *r)
{
	return (double)r->ru_utime.tv_sec + (double)r->ru_utime.tv_usec / 1e6 +
	       (double)r->ru_stime.tv_sec + (double)r->ru_stime.tv_usec / 1e6;
}

static void die(const char *what)
{
	fprintf(stderr, "chanbench: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* Waits until fd is ready for ev; a timeout is an error (ETIMEDOUT). */
static int wait_for(int fd, short ev)
{
	struct pollfd p = {.fd = fd, .events = ev};
	int r;

	do
		r = poll(&p, 1, TIMEOUT_MS);
	while (r == -1 && errno == EINTR);
	if (r == 0)
		errno = ETIMEDOUT;
	return r > 0 ? 0 : -1;
}

static int close_all(const int *fds, int n)
{
	int rc = 0;

	for (int i = 0; i < n; i++)
		if (close(fds[i]) == -1)
			rc = -1;
	return rc;
}

static int dup_fds(int src, int *fds, int k)
{
	for (int i = 0; i < k; i++) {
		if ((fds[i] = dup(src)) == -1) {
			close_all(fds, i);
			return -1;
		}
	}
	return 0;
}

static int full_io(int fd, void *buf, size_t len, int writing)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = writing ? write(fd, p, len) : read(fd, p, len);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EPIPE;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---- bare ---------------------------------------------------------------- */

/* One datagram of sizeof(struct msg_hdr) bytes, as herd sends, with k fds. */
static int bare_send1(int sock, const int *fds, int k)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * MAX_K)];
		struct cmsghdr align;
	} u;
	struct msg_hdr h = {.type = MSG_CONNECTION, .slot = -1};
	struct iovec iov = {&h, sizeof(h)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *cm;

	memset(&u, 0, sizeof(u));
	mh.msg_control = u.buf;
	mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)k);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)k);
	memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)k);
	for (;;) {
		if (sendmsg(sock, &mh, MSG_NOSIGNAL) >= 0)
			return 0;
		if (errno == EAGAIN && wait_for(sock, POLLOUT) == 0)
			continue;
		if (errno != EINTR)
			return -1;
	}
}

/* Consumes sock. */
static int bare_send(int sock, int src, int k, unsigned long n)
{
	int fds[MAX_K];

	for (unsigned long i = 0; i < n; i++) {
		if (dup_fds(src, fds, k) == -1)
			return -1;
		if (bare_send1(sock, fds, k) == -1) {
			close_all(fds, k);
			return -1;
		}
		if (close_all(fds, k) == -1)
			return -1;
	}
	return close(sock);
}

/* Closes every fd that came with mh; returns how many, -1 on failure. */
static int close_rights(struct msghdr *mh)
{
	int n = 0, rc = 0;

	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm != NULL;
	     cm = CMSG_NXTHDR(mh, cm)) {
		size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int fds[MAX_K];

		if (cm->cmsg_type != SCM_RIGHTS || k > MAX_K)
			return -1;
		memcpy(fds, CMSG_DATA(cm), k * sizeof(int));
		rc |= close_all(fds, (int)k);
		n += (int)k;
	}
	return rc == -1 ? -1 : n;
}

/* Receives and closes one message of k fds: 1, 0 (nothing waiting), -1. */
static int bare_recv1(int sock, int k)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * MAX_K)];
		struct cmsghdr align;
	} u;
	struct msg_hdr h;
	struct iovec iov = {&h, sizeof(h)};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf)};
	ssize_t n;

	do
		n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return errno == EAGAIN ? 0 : -1;
	if (close_rights(&mh) != k || n != (ssize_t)sizeof(h) ||
	    (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		errno = EPROTO; /* also a 0-byte datagram: the sender died */
		return -1;
	}
	return 1;
}

static int bare_recv(int sock, int k, unsigned long n, struct result *r)
{
	while (r->msgs < n) {
		int got = bare_recv1(sock, k);

		if (got == -1)
			return -1;
		if (got == 0 && wait_for(sock, POLLIN) == -1)
			return -1;
		r->msgs += (unsigned long)got;
		r->fds += (unsigned long)got * (unsigned long)k;
	}
	return 0;
}

/* ---- herd ---------------------------------------------------------------- */

static int drain(struct chan *c)
{
	while (chan_queued(c) > 0)
		if (wait_for(chan_fd(c), POLLOUT) == -1 || chan_flush(c) == -1)
			return -1;
	return 0;
}

/* Consumes sock (the channel owns it). */
static int herd_send(int sock, int src, int k, unsigned long n)
{
	struct msg_hdr h = {
	    .type = MSG_CONNECTION, .pid = (int32_t)getpid(), .slot = -1};
	struct chan *c = chan_new(sock, 0, NULL, NULL, NULL);
	int fds[MAX_K], rc = 0;

	if (c == NULL)
		return -1;
	for (unsigned long i = 0; i < n && rc == 0; i++) {
		if (dup_fds(src, fds, k) == -1 ||
		    chan_send(c, &h, NULL, fds, k) == -1 || drain(c) == -1)
			rc = -1;
	}
	chan_free(c);
	return rc;
}

static unsigned long refused_total(void)
{
	unsigned long t = 0;

	for (int e = 0; e < MSG_ERR_END; e++)
		t += msg_refused[e];
	return t;
}

/* An accepted message: it must be what was sent; its fds are ours. */
static int take(const struct msg *m, int k, unsigned long *ok)
{
	if (m->hdr.type != MSG_CONNECTION || m->nfds != k) {
		errno = EPROTO;
		return -1;
	}
	(*ok)++;
	return close_all(m->fds, m->nfds);
}

/* herd-4's messages are refused for their fd count, their fds closed by
 * chan_recv; each counts as received. Any other refusal is a failure. */
static int count_refused(int k, unsigned long ok, struct result *r)
{
	unsigned long fds_refused = msg_refused[MSG_ERR_FDS];

	if (refused_total() != fds_refused || (k == 1 && fds_refused > 0)) {
		errno = EPROTO;
		return -1;
	}
	r->msgs = ok + fds_refused;
	r->fds = r->msgs * (unsigned long)k;
	return 0;
}

static int herd_recv(int sock, int k, unsigned long n, struct result *r)
{
	struct chan *c = chan_new(sock, MSG_TO_WORKER, NULL, NULL, NULL);
	unsigned long ok = 0;
	struct msg m;
	int rc = 0;

	if (c == NULL)
		return -1;
	while (rc == 0 && r->msgs < n) {
		int got = chan_recv(c, &m);

		/* Refusals first: one chan_recv may refuse the last messages
		 * and then meet the sender's close (returning -1). */
		if ((got == 1 && take(&m, k, &ok) == -1) ||
		    count_refused(k, ok, r) == -1)
			rc = -1;
		else if (r->msgs < n && got == -1) {
			if (errno == EAGAIN) /* end of file: errno is stale */
				errno = EPIPE;
			rc = -1;
		} else if (r->msgs < n && got == 0 &&
			   wait_for(chan_fd(c), POLLIN) == -1)
			rc = -1;
	}
	chan_free(c);
	return rc;
}

/* ---- one run ------------------------------------------------------------- */

static void receiver(const struct variant *v, int sock, int out,
		     unsigned long n)
{
	struct result r = {{0, 0}, 0, 0};
	int rc;

	if (v->kind == HERD && v->k > 1)
		log_set_level(HERD_LOG_ERROR); /* the refusals, by design */
	if (full_io(out, "r", 1, 1) == -1)
		_exit(1);
	if (v->kind == BARE)
		rc = bare_recv(sock, v->k, n, &r);
	else
		rc = herd_recv(sock, v->k, n, &r);
	if (rc == -1) {
		fprintf(stderr, "chanbench: %s receiver: %s\n", v->name,
			strerror(errno));
		_exit(1);
	}
	if (clock_gettime(CLOCK_MONOTONIC, &r.end) == -1 ||
	    full_io(out, &r, sizeof(r), 1) == -1)
		_exit(1);
	_exit(0);
}

static pid_t start_receiver(const struct variant *v, int sv[2], int pp[2],
			    unsigned long n)
{
	pid_t pid;
	char ready;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC,
		       0, sv) == -1)
		die("socketpair");
	if (pipe2(pp, O_CLOEXEC) == -1)
		die("pipe2");
	if ((pid = fork()) == -1)
		die("fork");
	if (pid == 0) {
		if (close(sv[0]) == -1 || close(pp[0]) == -1)
			_exit(1);
		receiver(v, sv[1], pp[1], n);
	}
	if (close(sv[1]) == -1 || close(pp[1]) == -1)
		die("close");
	if (full_io(pp[0], &ready, 1, 0) == -1)
		die("receiver start");
	return pid;
}

static void finish_receiver(pid_t pid, int in, struct result *r,
			    struct rusage *ru)
{
	int st;

	if (full_io(in, r, sizeof(*r), 0) == -1)
		die("receiver result");
	if (close(in) == -1)
		die("close");
	while (wait4(pid, &st, 0, ru) == -1)
		if (errno != EINTR)
			die("wait4");
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "chanbench: receiver failed (status %d)\n", st);
		exit(1);
	}
}

static void run_once(const struct variant *v, int src, unsigned long n,
		     struct series *s, int run)
{
	struct rusage r0, r1, rc;
	struct timespec t0;
	struct result res;
	int sv[2], pp[2], rv;
	pid_t pid = start_receiver(v, sv, pp, n);

	if (getrusage(RUSAGE_SELF, &r0) == -1 ||
	    clock_gettime(CLOCK_MONOTONIC, &t0) == -1)
		die("clock");
	if (v->kind == BARE)
		rv = bare_send(sv[0], src, v->k, n);
	else
		rv = herd_send(sv[0], src, v->k, n);
	if (rv == -1)
		die(v->name);
	if (getrusage(RUSAGE_SELF, &r1) == -1)
		die("getrusage");
	finish_receiver(pid, pp[0], &res, &rc);
	if (res.msgs != n || res.fds != n * (unsigned long)v->k) {
		fprintf(stderr, "chanbench: %s: %lu messages, %lu fds\n",
			v->name, res.msgs, res.fds);
		exit(1);
	}
	s->secs[run] = ts_sec(&res.end) - ts_sec(&t0);
	s->snd_us[run] = (ru_sec(&r1) - ru_sec(&r0)) * 1e6 / (double)n;
	s->rcv_us[run] = ru_sec(&rc) * 1e6 / (double)n;
}

/* ---- report -------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(const double *runs_of, int runs)
{
	double v[MAX_RUNS];

	memcpy(v, runs_of, sizeof(double) * (size_t)runs);
	qsort(v, (size_t)runs, sizeof(double), cmp_double);
	return runs % 2 ? v[runs / 2] : (v[runs / 2 - 1] + v[runs / 2]) / 2;
}

/* (fastest run - slowest run) / median, in per cent of the rate. */
static double spread(const double *secs, int runs, double med)
{
	double lo = secs[0], hi = secs[0];

	for (int i = 1; i < runs; i++) {
		lo = secs[i] < lo ? secs[i] : lo;
		hi = secs[i] > hi ? secs[i] : hi;
	}
	return (1 / lo - 1 / hi) * med * 100;
}

/* The index of a variant, or -1. */
static int index_of(enum kind kind, int k)
{
	for (size_t i = 0; i < NVARIANTS; i++)
		if (variants[i].kind == kind && variants[i].k == k)
			return (int)i;
	return -1;
}

/* Prints variant i's row; returns its median msgs/s. */
static double report(size_t i, const struct series *s, int runs,
		     unsigned long n, const double *rate)
{
	const struct variant *v = &variants[i];
	int b = index_of(BARE, v->k);
	double med = median(s->secs, runs), msgs = (double)n / med;
	char vs[16] = "-";

	if (v->kind == HERD && b >= 0 && rate[b] > 0)
		snprintf(vs, sizeof(vs), "%.2f", msgs / rate[b]);
	printf("%-8s %7d %10.0f %11.0f %6.0f%% %7s %10.2f %10.2f  %s\n",
	       v->name, v->k, msgs, msgs * v->k, spread(s->secs, runs, med), vs,
	       median(s->snd_us, runs), median(s->rcv_us, runs), v->what);
	return msgs;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: chanbench [-n MESSAGES] [-r RUNS (1..%d)] "
		"[-v VARIANT]...\nvariants:",
		MAX_RUNS);
	for (size_t i = 0; i < NVARIANTS; i++)
		fprintf(stderr, " %s", variants[i].name);
	fputc('\n', stderr);
	exit(2);
}

static unsigned long number(const char *s, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v == 0 || v > max)
		usage();
	return v;
}

static void pick(const char *name, int *on)
{
	for (size_t i = 0; i < NVARIANTS; i++) {
		if (strcmp(name, variants[i].name) == 0) {
			on[i] = 1;
			return;
		}
	}
	usage();
}

static void options(int argc, char **argv, unsigned long *n, int *runs, int *on)
{
	int opt, any = 0;

	while ((opt = getopt(argc, argv, "n:r:v:")) != -1) {
		if (opt == 'n')
			*n = number(optarg, 1000000000UL);
		else if (opt == 'r')
			*runs = (int)number(optarg, MAX_RUNS);
		else if (opt == 'v') {
			pick(optarg, on);
			any = 1;
		} else
			usage();
	}
	if (optind != argc)
		usage();
	for (size_t i = 0; i < NVARIANTS && !any; i++)
		on[i] = 1;
}

/* Lets the kernel's count of fds in flight exceed the soft limit. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		die("getrlimit");
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		die("setrlimit");
}

int main(int argc, char **argv)
{
	static struct series s[NVARIANTS];
	double rate[NVARIANTS] = {0};
	unsigned long n = 200000;
	int runs = 3, on[NVARIANTS] = {0}, src;
	int bare1 = index_of(BARE, 1), herd1 = index_of(HERD, 1);

	options(argc, argv, &n, &runs, on);
	raise_nofile();
	if ((src = open("/dev/null", O_RDONLY | O_CLOEXEC)) == -1)
		die("/dev/null");
	for (int r = 0; r < runs; r++)
		for (size_t i = 0; i < NVARIANTS; i++)
			if (on[i])
				run_once(&variants[i], src, n, &s[i], r);
	printf("chanbench: %lu messages per run, median of %d runs, first "
	       "send to last receive\n",
	       n, runs);
	printf("%-8s %7s %10s %11s %7s %7s %10s %10s  %s\n", "variant",
	       "fds/msg", "msgs/s", "fds/s", "spread", "vs bare", "snd us/msg",
	       "rcv us/msg", "what");
	for (size_t i = 0; i < NVARIANTS; i++)
		if (on[i])
			rate[i] = report(i, &s[i], runs, n, rate);
	if (rate[bare1] > 0 && rate[herd1] > 0)
		printf("chanbench: herd/bare (1 fd per message) = %.2f\n",
		       rate[herd1] / rate[bare1]);
	return close(src) == -1;
}
