/* test_ratelimit.c: the rate-limited log line with a fake clock, and the
 * "first N, then every Mth" sample. */
#include "ratelimit.h"
#include "tap.h"

#define T0 5000 /* a monotonic clock in ms is never near 0 */

/* Lines at now, one each: how many were said. */
static unsigned said(struct ratelimit *r, uint64_t now, unsigned n,
		     unsigned burst)
{
	unsigned long unsaid;
	unsigned k = 0;

	for (unsigned i = 0; i < n; i++)
		k += ratelimit(r, now, burst, &unsaid) == RL_LOG;
	return k;
}

static void burst_of_three(void)
{
	struct ratelimit r = {0};
	unsigned long unsaid = 99;

	is_int(ratelimit(&r, T0, 3, &unsaid), RL_LOG, "the first line is said");
	is_int(unsaid, 0, "and nothing was left out before it");
	is_int(said(&r, T0 + 10, 2, 3), 2, "the burst's other two too");
	is_int(ratelimit(&r, T0 + 20, 3, &unsaid), RL_DROP_FIRST,
	       "the fourth in the second is the first left out");
	is_int(ratelimit(&r, T0 + 30, 3, &unsaid), RL_DROP,
	       "the fifth is one more left out");
	is_int(unsaid, 0, "no count while the window lasts");
	is_int(ratelimit(&r, T0 + 999, 3, &unsaid), RL_DROP,
	       "still the same second at 999 ms");
	is_int(ratelimit(&r, T0 + 1000, 3, &unsaid), RL_LOG,
	       "a new second at 1000 ms");
	is_int(unsaid, 3, "which says the 3 left out of the last");
	is_int(said(&r, T0 + 1500, 5, 3), 2, "then 2 more in this second");
	is_int(ratelimit(&r, T0 + 5000, 3, &unsaid), RL_LOG,
	       "after a quiet spell, said at once");
	is_int(unsaid, 3, "with the count of the window before");
	is_int(ratelimit(&r, T0 + 5001, 3, &unsaid), RL_LOG,
	       "the window opened with that line, not on a grid");
	is_int(unsaid, 0, "and counts only once");
}

static void one_a_second(void)
{
	struct ratelimit r = {0};
	unsigned long unsaid = 99;

	is_int(ratelimit(&r, T0, 1, &unsaid), RL_LOG, "burst 1: said");
	is_int(said(&r, T0 + 100, 4, 1), 0, "the next 4 in that second not");
	is_int(ratelimit(&r, T0 + 1100, 1, &unsaid), RL_LOG,
	       "a second after the last said line: said");
	is_int(unsaid, 4, "with the 4 left out since");
	is_int(ratelimit(&r, T0 + 1200, 1, &unsaid), RL_DROP_FIRST,
	       "and the second is counted from it");
}

static void sample(void)
{
	unsigned long n = 0;
	unsigned k = 0, last = 0;

	for (unsigned i = 1; i <= 5000; i++)
		if (ratelimit_sample(&n, 10, 1000)) {
			k++;
			last = i;
		}
	is_int(n, 5000, "every event is counted");
	is_int(k, 15, "the first 10, then the 1000th to the 5000th");
	is_int(last, 5000, "the last said is the 5000th");
	n = 10;
	ok(!ratelimit_sample(&n, 10, 1000), "the 11th is not said");
}

/* Two limits on one line (a worker's output, and all workers'): a line
 * is said when both have room, and counted left out by the worker's. */
static void two_limits(void)
{
	struct ratelimit mine = {0}, all = {0};
	unsigned said = 0, left = 0, firsts = 0;

	for (int i = 0; i < 10; i++) {
		ratelimit_roll(&mine, 1000);
		ratelimit_roll(&all, 1000);
		if (ratelimit_room(&mine, 5) && ratelimit_room(&all, 3)) {
			ratelimit_take(&mine);
			ratelimit_take(&all);
			said++;
		} else {
			firsts += ratelimit_drop(&mine);
			left++;
		}
	}
	ok(said == 3 && left == 7, "the smaller of two limits holds: 3 said");
	is_int((int)firsts, 1, "one first drop in the window");
	is_int((int)ratelimit_roll(&mine, 1500), 0,
	       "mid-window: no new window, nothing to say");
	is_int((int)ratelimit_roll(&mine, 2000), 7,
	       "the next window says the 7 left out");
	ok(ratelimit_room(&mine, 5) && mine.dropped == 0, "and starts empty");
}

int main(void)
{
	burst_of_three();
	one_a_second();
	sample();
	two_limits();
	return done_testing();
}
