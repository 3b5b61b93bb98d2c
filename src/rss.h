/*
 * rss.h: the workers' resident memory and CPU time, read from /proc by
 * the master a slice at a time, for --max-rss, the adaptive pool and
 * status: a status at 1024 workers
 * read 1024 files while its client waited (30 ms on a small VM), and
 * --max-rss all of them in one turn every second.
 */
#ifndef HERD_RSS_H
#define HERD_RSS_H

#include <stdint.h>
#include <sys/types.h>

#include "proc.h"

#define RSS_CHECK_MS 1000 /* a worker's figure is read this often */
#define RSS_PER_TURN 32	  /* at most this many in one turn */

/* A process's figures, from /proc/PID/stat. */
struct proc_usage {
	unsigned long long cpu_ticks; /* utime + stime, clock ticks */
	unsigned long rss_pages;
};

/* From the text of /proc/PID/stat: 0, or -1 when it does not parse. */
int proc_usage_parse(const char *stat, struct proc_usage *u);
/* pid's figures: 0, or -1 with errno (it is gone). */
int proc_usage(pid_t pid, struct proc_usage *u);
/* Reads the RSS of the workers whose figure is RSS_CHECK_MS old, at most
 * RSS_PER_TURN of them. Returns when to call again. */
uint64_t rss_sample(struct proctab *t, uint64_t now);
/* Reads every worker's now (the first status after a quiet spell). */
void rss_sample_all(struct proctab *t, uint64_t now);

#endif
