/*
 * output.h: what a program's children write to stdout and stderr, logged
 * by the master a line at a time as "worker N (pid P, generation G): line".
 *
 * Each child gets one pipe on both fd 1 and fd 2 (so the order between
 * the two is kept); the master reads the other end, nonblocking, in its
 * loop. Lines are bounded (cut into pieces of OUTPUT_LINE_MAX bytes), made
 * printable, and rate limited per pipe and for all of them together: what
 * goes beyond the rate is read and counted, never left in the pipe, so a
 * program never waits on herd for long. A pipe outlives its worker while
 * the worker's own children still hold it, up to OUTPUT_LINGER_MAX such
 * pipes. In-process workers, and programs run with --inherit-output, keep
 * herd's own stdout and stderr instead.
 */
#ifndef HERD_OUTPUT_H
#define HERD_OUTPUT_H

#include <sys/types.h>

#include "internal.h"
#include "proc.h"

#define OUTPUT_LINE_MAX	   768	 /* bytes of a line in one log line */
#define OUTPUT_PER_SEC	   100	 /* lines a second logged from one pipe */
#define OUTPUT_ALL_PER_SEC 1000	 /* lines a second logged from all pipes */
#define OUTPUT_READ_MAX	   65536 /* bytes read from one pipe per event */
/* Pipes kept open for a gone worker's descendants; beyond, the oldest is
 * closed. They count in the master's fd budget. */
#define OUTPUT_LINGER_MAX 8

struct output;

/* Whether the children of h have their output captured: programs only,
 * unless --inherit-output. */
int output_captured(const herd *h);
/* A new pipe for the worker about to be forked in slot with generation
 * gen, already watched in loop: *wfd is the write end for the child,
 * blocking and close-on-exec, the caller's to close after the fork.
 * NULL with errno when the pipe cannot be made. */
struct output *output_open(herd_loop *loop, int slot, unsigned gen, int *wfd);
/* The fork worked: lines are labelled with pid from now on. */
void output_started(struct output *o, pid_t pid);
/* The fork failed: closes the read end and forgets o. NULL is ignored. */
void output_discard(struct output *o);
/* In the forked child, before its fds are laid out: stdout and stderr
 * become wfd. 0, or -1 with errno. */
int output_child(int wfd);
/* The worker is gone: what is in the pipe is read now (bounded); the
 * pipe stays open only while its descendants hold the write end. */
void output_gone(struct output *o);
/* The master is exiting: reads what is left (bounded) and closes all. */
void output_close_all(void);

struct upgrade_state;
/* Binary upgrade: partial lines are logged, and the open read ends are
 * listed in st (st->outs, malloc'ed) for the new image. 0 or -1. */
int output_collect(struct upgrade_state *st);
/* The new image adopts the pipes the old one listed, each with its worker
 * in t where it is still there. 0, or -1 with errno. */
int output_resume(herd_loop *loop, const struct upgrade_state *st,
		  struct proctab *t);

#endif
