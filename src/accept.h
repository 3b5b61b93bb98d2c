/*
 * accept.h: pausing when the process is out of fds. An accept that fails
 * for want of fds or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM), or a read
 * that would bring an fd with no room for it, cannot be retried at once:
 * the socket stays readable (level-triggered), and the loop would spin on
 * it. Its owner stops watching it for ACCEPT_PAUSE_MS instead; the
 * connections wait in the backlog, or with another worker. A run of such
 * pauses is an episode, said when it starts and (where the owner wants)
 * when it ends, not at every attempt.
 *
 * Pure: the owner stops and resumes watching, arms its timer and writes
 * its own lines; this keeps the episode and says when.
 */
#ifndef HERD_ACCEPT_H
#define HERD_ACCEPT_H

#include <stdint.h>

#define ACCEPT_PAUSE_MS 100 /* stop accepting this long after EMFILE & co */

struct accept_pause {
	uint64_t since;	      /* the episode's first pause; 0: none on */
	uint64_t until;	      /* nothing is accepted before then */
	unsigned long pauses; /* in this episode */
};

/* Out of fds at now (ms, never 0): paused until now + ACCEPT_PAUSE_MS.
 * Returns 1 when this begins an episode (the owner says so), else 0. */
int accept_pause(struct accept_pause *p, uint64_t now);
/* Whether accepting is still paused at now. */
int accept_paused(const struct accept_pause *p, uint64_t now);
/* An fd was had at now: the episode, if one was on, is over. Returns 1 if
 * one was, with its length in *ms and its count of pauses in *pauses
 * (either may be NULL), else 0. */
int accept_resumed(struct accept_pause *p, uint64_t now, uint64_t *ms,
		   unsigned long *pauses);

#endif
