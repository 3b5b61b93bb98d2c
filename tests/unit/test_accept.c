/* test_accept.c: episodes of accept pauses when out of fds, with a fake
 * clock. */
#include "accept.h"
#include "tap.h"

#define T0 5000 /* a monotonic clock in ms is never near 0 */

int main(void)
{
	struct accept_pause p = {0};
	uint64_t ms = 0;
	unsigned long pauses = 0;

	ok(!accept_paused(&p, T0), "not paused at first");
	ok(!accept_resumed(&p, T0, &ms, &pauses),
	   "an accept with no episode on ends nothing");
	ok(accept_pause(&p, T0), "the first pause begins an episode");
	ok(accept_paused(&p, T0 + ACCEPT_PAUSE_MS - 1),
	   "paused for ACCEPT_PAUSE_MS");
	ok(!accept_paused(&p, T0 + ACCEPT_PAUSE_MS), "and no longer");
	ok(!accept_pause(&p, T0 + 100), "the next pause is the same episode");
	ok(!accept_pause(&p, T0 + 200), "and the one after");
	is_int(p.until, T0 + 200 + ACCEPT_PAUSE_MS,
	       "each pause runs from its own failure");
	ok(accept_resumed(&p, T0 + 250, &ms, &pauses),
	   "an accept ends the episode");
	is_int(ms, 250, "which lasted from its first pause");
	is_int(pauses, 3, "with its three pauses");
	ok(!accept_resumed(&p, T0 + 260, NULL, NULL), "it ends once");
	ok(accept_pause(&p, T0 + 1000), "the next failure begins another");
	ok(accept_resumed(&p, T0 + 1100, NULL, NULL),
	   "the figures are optional");
	ok(accept_pause(&p, T0 + 2000) &&
	       accept_resumed(&p, T0 + 2000, &ms, &pauses),
	   "a third episode");
	is_int(pauses, 1, "counts its pauses from 1 again");
	is_int(ms, 0, "and its own length");
	return done_testing();
}
