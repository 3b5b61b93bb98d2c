/* test_history.c: the ring of the last reloads' outcomes. */
#include <string.h>

#include "history.h"
#include "tap.h"

int main(void)
{
	struct history hs = {0};
	const struct attempt *a;
	char longwhy[400];

	ok(history_nth(&hs, 0) == NULL && history_find(&hs, 1) == NULL,
	   "empty: nothing to find");
	history_start(&hs, 2, 0, 100);
	a = history_find(&hs, 2);
	ok(a != NULL && a->state == ATT_STARTING && a->started == 100 &&
	       a->ended == 0,
	   "a started attempt is starting");
	history_end(&hs, 2, ATT_READY, NULL, 350);
	ok(a->state == ATT_READY && a->ended == 350 && a->why[0] == '\0',
	   "then ready, when it ended");
	history_start(&hs, 3, 1, 400);
	history_start(&hs, 3, 1, 500);
	ok(hs.n == 2 && history_find(&hs, 3)->started == 500,
	   "started again (an upgrade's check, then the new image): one entry");
	memset(longwhy, 'x', sizeof(longwhy) - 1);
	longwhy[sizeof(longwhy) - 1] = '\0';
	history_end(&hs, 3, ATT_ABANDONED, longwhy, 900);
	a = history_find(&hs, 3);
	ok(a->state == ATT_ABANDONED && strlen(a->why) == sizeof(a->why) - 1,
	   "abandoned, why cut to fit");
	history_end(&hs, 9, ATT_ABANDONED, "check failed", 950);
	a = history_nth(&hs, 0);
	ok(a != NULL && a->gen == 9 && a->started == 950 &&
	       strcmp(a->why, "check failed") == 0,
	   "an attempt not known is recorded as it ends, newest first");
	for (unsigned g = 10; g < 10 + HISTORY_MAX; g++)
		history_start(&hs, g, 0, g);
	ok(history_find(&hs, 9) == NULL &&
	       history_find(&hs, 10 + HISTORY_MAX - 1) != NULL &&
	       history_nth(&hs, HISTORY_MAX - 1)->gen == 10 &&
	       history_nth(&hs, HISTORY_MAX) == NULL,
	   "past %d, the oldest are forgotten", HISTORY_MAX);
	is_int(strcmp(attempt_state_name(ATT_ABANDONED), "abandoned"), 0,
	       "state names");
	return done_testing();
}
