/*
 * rss.c: the workers' resident memory and CPU time (rss.h).
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "rss.h"

int proc_usage_parse(const char *stat, struct proc_usage *u)
{
	/* pid (comm) state ...: comm may hold spaces and parentheses, so
	 * the fields are counted from the last ')'. utime and stime are
	 * fields 14 and 15, rss (pages) 24. */
	const char *s = strrchr(stat, ')');
	unsigned long long utime, stime;
	long rss;

	if (s == NULL ||
	    sscanf(s + 1,
		   " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu"
		   " %*d %*d %*d %*d %*d %*d %*u %*u %ld",
		   &utime, &stime, &rss) != 3 ||
	    rss < 0)
		return -1;
	u->cpu_ticks = utime + stime;
	u->rss_pages = (unsigned long)rss;
	return 0;
}

int proc_usage(pid_t pid, struct proc_usage *u)
{
	char path[64], buf[1024];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return proc_usage_parse(buf, u);
}

static void read_one(struct proc *p, uint64_t now)
{
	static long page_kib, tck;
	struct proc_usage u;

	if (page_kib == 0) {
		page_kib = sysconf(_SC_PAGESIZE) / 1024;
		tck = sysconf(_SC_CLK_TCK);
		if (tck <= 0)
			tck = 100; /* USER_HZ on every Linux */
	}
	if (proc_usage(p->pid, &u) == -1) {
		p->rss_kib = 0;
		p->rss_at = now;
		return;
	}
	p->rss_kib = u.rss_pages * (unsigned long)page_kib;
	/* CPU use since the last reading, in permille of one CPU. */
	if (p->rss_at != 0 && now > p->rss_at && u.cpu_ticks >= p->cpu_ticks)
		p->cpu_permille =
		    (unsigned)((u.cpu_ticks - p->cpu_ticks) * 1000000ULL /
			       (unsigned long)tck / (now - p->rss_at));
	p->cpu_ticks = u.cpu_ticks;
	p->cpu_ms = u.cpu_ticks * 1000ULL / (unsigned long)tck;
	p->rss_at = now;
}

uint64_t rss_sample(struct proctab *t, uint64_t now)
{
	uint64_t next = UINT64_MAX;
	unsigned n = 0;

	for (size_t i = 0; i < t->n; i++) {
		struct proc *p = t->v[i];

		if (p->rss_at != 0 && p->rss_at + RSS_CHECK_MS > now) {
			if (p->rss_at + RSS_CHECK_MS < next)
				next = p->rss_at + RSS_CHECK_MS;
		} else if (n == RSS_PER_TURN) {
			return now; /* the rest on the next turn */
		} else {
			read_one(p, now);
			n++;
		}
	}
	return next;
}

void rss_sample_all(struct proctab *t, uint64_t now)
{
	for (size_t i = 0; i < t->n; i++)
		read_one(t->v[i], now);
}
