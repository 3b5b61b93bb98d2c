/*
 * rss.h: the workers' resident memory, read from /proc by the master a
 * slice at a time, for --max-rss and for status: a status at 1024 workers
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

/* VmRSS of pid in KiB, from /proc/PID/statm; 0 if it cannot be read. */
unsigned long rss_kib(pid_t pid);
/* Reads the RSS of the workers whose figure is RSS_CHECK_MS old, at most
 * RSS_PER_TURN of them. Returns when to call again. */
uint64_t rss_sample(struct proctab *t, uint64_t now);
/* Reads every worker's now (the first status after a quiet spell). */
void rss_sample_all(struct proctab *t, uint64_t now);

#endif
