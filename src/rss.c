/*
 * rss.c: the workers' resident memory (rss.h).
 */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "rss.h"

unsigned long rss_kib(pid_t pid)
{
	char path[64], buf[128];
	unsigned long size = 0, rss = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (sscanf(buf, "%lu %lu", &size, &rss) != 2)
		return 0;
	return rss * (unsigned long)(sysconf(_SC_PAGESIZE) / 1024);
}

static void read_one(struct proc *p, uint64_t now)
{
	p->rss_kib = rss_kib(p->pid);
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
