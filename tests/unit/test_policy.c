/* test_policy.c: the supervision policy's decisions (src/policy.c), with
 * a fake clock and no processes: back-off sequences and their reset, what
 * an exit means, slots held by back-off or pace, the spawn budget,
 * deadlines, the watchdog, recycling, promotion and retiring
 * generations. */
#include <string.h>
#include <sys/wait.h>

#include "gens.h"
#include "kind.h"
#include "internal.h"
#include "policy.h"
#include "tap.h"

#define EXITED(code)  ((code) << 8) /* as waitpid() reports exit(code) */
#define SIGNALLED(sg) (sg)	    /* ... and death by signal sg */

static const struct pool_facts serving = {1, 1, &kind_program, 4, 5, 0};

static void backoff(void)
{
	static const uint64_t want[] = {0,    100,  200,  400, 800,
					1600, 3200, 5000, 5000};
	struct slot_state s = {0};
	uint64_t d;

	for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		d = policy_backoff(&s, 1000, 10, 0);
		ok(d == want[i] && s.fails == i + 1 && s.not_before == 1000 + d,
		   "quick death %u in a row: %llu ms (got %llu)", i + 1,
		   (unsigned long long)want[i], (unsigned long long)d);
	}
	d = policy_backoff(&s, 2000, BACKOFF_FIRST_MS, 1);
	ok(d == 0 && s.fails == 0 && s.not_before == 2000,
	   "a worker ready for BACKOFF_FIRST_MS is replaced at once, count "
	   "reset");
	s.fails = 5;
	d = policy_backoff(&s, 0, BACKOFF_FIRST_MS - 1, 1);
	ok(d == 1600 && s.fails == 6, "ready, but dead within 100 ms: quick");
	d = policy_backoff(&s, 0, HEALTHY_MS, 0);
	ok(d == 0 && s.fails == 1, "alive HEALTHY_MS: the count starts again");
}

static void pace(void)
{
	struct slot_state s = {0};

	is_int((int)policy_pace(&s, 500, 30), PLANNED_GAP_MS - 30,
	       "a planned exit 30 ms after start: its successor waits the "
	       "rest of PLANNED_GAP_MS");
	ok(s.paced == 500 + PLANNED_GAP_MS - 30,
	   "the slot is paced until then");
	is_int((int)policy_pace(&s, 500, 150), 0,
	       "after PLANNED_GAP_MS: at once");
}

static enum exit_verdict judge(struct exit_facts e,
			       const struct pool_facts *pool,
			       struct slot_state *s, uint64_t *delay)
{
	return policy_exit(&e, pool, s, 1000, delay);
}

static void exits(void)
{
	struct pool_facts pool = serving, inproc = serving, young = serving;
	struct slot_state s = {0};
	uint64_t d;
	/* slot 1 of generation 5, crashed unasked, ran, lived 50 ms */
	struct exit_facts e = {1, 5, 1, 1, 1, SIGNALLED(SIGSEGV), 50};

	inproc.kind = &kind_inproc;
	young.announced = 0;
	is_int(judge(e, &pool, &s, &d), EXIT_RESTART, "a crash: restart");
	ok(s.restarts == 1 && s.fails == 1, "counted as a restart and a "
					    "quick death");
	e.unasked = 0;
	is_int(judge(e, &pool, &s, &d), EXIT_EXPECTED, "asked to go: expected");
	e.unasked = 1;
	pool.running = 0;
	is_int(judge(e, &pool, &s, &d), EXIT_EXPECTED,
	       "any exit while herd stops: expected");
	pool.running = 1;

	memset(&s, 0, sizeof(s));
	e.status = EXITED(0);
	is_int(judge(e, &pool, &s, &d), EXIT_PLANNED,
	       "a program's status 0 after its exec: planned");
	ok(s.restarts == 0 && s.fails == 0 && s.proven == 5 && d == 50,
	   "no restart, no back-off; the slot proven; paced 50 ms");
	is_int(judge(e, &inproc, &s, &d), EXIT_RESTART,
	       "an in-process worker's status 0 is a crash");
	e.ran = 0;
	is_int(judge(e, &pool, &s, &d), EXIT_RESTART,
	       "status 0 with the exec not seen: not planned");
	e.ran = 1;
	e.gen = 6;
	pool.pending = 6;
	is_int(judge(e, &pool, &s, &d), EXIT_PLANNED,
	       "a planned exit in a pending generation: replaced, not "
	       "abandoned");
	e.gen = 5;
	judge(e, &pool, &s, &d);
	ok(s.proven == 6 && policy_proven(&s, 6) && policy_proven(&s, 5),
	   "the serving generation recycling in the slot leaves the pending "
	   "one proven");
	ok(!policy_proven(&s, 7), "a newer generation is not proven by it");
	e.gen = 6;
	e.status = EXITED(1);
	is_int(judge(e, &pool, &s, &d), EXIT_PENDING,
	       "a pending generation's crash abandons the reload");
	pool.pending = 0;
	e.gen = 5;

	e.ran = -1;
	is_int(judge(e, &young, &s, &d), EXIT_CANNOT_RUN,
	       "never ran, the pool never ready: stop");
	is_int(judge(e, &pool, &s, &d), EXIT_RESTART,
	       "never ran once the pool served: a crash like any");
	e.ran = 1;
	young.kind = &kind_inproc;
	e.status = EXITED(HERD_EXIT_CONFIG);
	is_int(judge(e, &young, &s, &d), EXIT_CONFIG,
	       "an in-process start failing before the pool was ready: stop");
	is_int(judge(e, &inproc, &s, &d), EXIT_RESTART,
	       "... once it was ready: restart");
	young.kind = &kind_program;
	is_int(judge(e, &young, &s, &d), EXIT_RESTART,
	       "a program's own status 3 is no herd configuration error");

	e.slot = 4; /* scaled down: pool of 4 is slots 0..3 */
	is_int(judge(e, &pool, &s, &d), EXIT_STRAY,
	       "a crash above the pool's slots: not replaced");
	e.slot = 1;
	e.gen = 3;
	is_int(judge(e, &pool, &s, &d), EXIT_STRAY,
	       "an old generation's crash: not replaced");
}

static void start_limit(void)
{
	struct pool_facts young = serving, pool = serving;
	struct exit_facts e = {0, 5, 1, 0, 1, EXITED(1), 5};
	struct slot_state s = {0};
	enum exit_verdict v = EXIT_RESTART;
	uint64_t d;
	int n = 0;

	young.announced = 0;
	while (v == EXIT_RESTART && n < 100) {
		v = policy_exit(&e, &young, &s, 0, &d);
		n++;
	}
	ok(v == EXIT_GIVE_UP && n == START_LIMIT,
	   "START_LIMIT (%d) quick deaths before ever ready: give up (after "
	   "%d)",
	   START_LIMIT, n);
	is_int(policy_exit(&e, &pool, &s, 0, &d), EXIT_RESTART,
	       "a pool that served never gives up");
}

static void slots(void)
{
	struct slot_state s = {0};
	uint64_t until = 0;

	is_int(policy_slot(&s, 100, 1, &until), SLOT_START,
	       "a free slot starts");
	s.not_before = 300;
	ok(policy_slot(&s, 100, 1, &until) == SLOT_BACKOFF && until == 300,
	   "a serving slot in back-off waits until its time");
	is_int(policy_slot(&s, 100, 0, &until), SLOT_START,
	       "a pending generation ignores the back-off it replaces");
	is_int(policy_slot(&s, 300, 1, &until), SLOT_START,
	       "the back-off over, it starts");
	s.paced = 250;
	ok(policy_slot(&s, 200, 0, &until) == SLOT_PACED && until == 250,
	   "a paced slot waits, pending or not");
}

static void budget(void)
{
	int held = 7;

	ok(policy_spawn_budget(2, 10, 1, &held) == 2 && held == 0,
	   "programs: the batch, whatever is starting");
	ok(policy_spawn_budget(2, 0, 0, &held) == 2 && held == 0,
	   "in-process, none starting: the batch");
	ok(policy_spawn_budget(2, 3, 0, &held) == 1 && held == 1,
	   "3 starting: one more, held");
	ok(policy_spawn_budget(2, STARTING_MAX, 0, &held) == 0 && held == 1,
	   "STARTING_MAX starting: none");
	ok(policy_spawn_budget(2, 9, 0, &held) == 0 && held == 1,
	   "more than STARTING_MAX (after an upgrade): none");
}

static void deadlines(void)
{
	struct proc p = {.state = PS_DRAINING};

	is_int(policy_deadline(&p, 5, 1), DEADLINE_NONE,
	       "no deadline: nothing");
	p.deadline = 10;
	is_int(policy_deadline(&p, 5, 1), DEADLINE_LATER, "before it: wait");
	is_int(policy_deadline(&p, 10, 1), DEADLINE_ESCALATE,
	       "a draining program at its deadline: its stop signal");
	p.state = PS_SIGNALLED;
	is_int(policy_deadline(&p, 10, 1), DEADLINE_KILL,
	       "signalled already: SIGKILL");
	p.state = PS_DRAINING;
	is_int(policy_deadline(&p, 10, 0), DEADLINE_KILL,
	       "a draining in-process worker: SIGKILL");
	p.state = PS_STOPPING;
	is_int(policy_deadline(&p, 11, 1), DEADLINE_KILL,
	       "a stopping program: SIGKILL");
	p.state = PS_KILLED;
	is_int(policy_deadline(&p, 11, 1), DEADLINE_NONE,
	       "SIGKILL sent: nothing more");
}

static void watchdog(void)
{
	struct proc p = {.state = PS_STARTING, .watchdog_at = 100};

	is_int(policy_watchdog(&p, 200, 1), WATCHDOG_NONE,
	       "a starting worker is not watched");
	p.state = PS_DRAINING;
	is_int(policy_watchdog(&p, 200, 1), WATCHDOG_NONE,
	       "nor a draining one");
	p.state = PS_READY;
	is_int(policy_watchdog(&p, 99, 1), WATCHDOG_LATER, "heard in time");
	is_int(policy_watchdog(&p, 100, 1), WATCHDOG_ABORT,
	       "a silent program: SIGABRT");
	is_int(policy_watchdog(&p, 100, 0), WATCHDOG_KILL,
	       "a silent in-process loop: SIGKILL");
}

static void recycling(void)
{
	struct proc p = {.state = PS_READY, .request_limit = 100},
		    next = {.state = PS_STARTING};

	is_int(policy_recycle(&p, NULL, 0, 4, 99, 100, 0), RECYCLE_NONE,
	       "under the limit");
	is_int(policy_recycle(&p, NULL, 0, 4, 100, 100, 0), RECYCLE_REQUESTS,
	       "at --max-requests: replace it");
	is_int(policy_recycle(&p, NULL, 0, 4, 1000, 0, 0), RECYCLE_NONE,
	       "no limits: never");
	is_int(policy_recycle(&p, NULL, 4, 4, 100, 100, 0), RECYCLE_NONE,
	       "as many draining as the pool has slots: wait");
	p.rss_kib = 2048;
	is_int(policy_recycle(&p, NULL, 0, 4, 0, 0, 2048), RECYCLE_NONE,
	       "RSS at --max-rss: kept");
	is_int(policy_recycle(&p, NULL, 0, 4, 0, 0, 2047), RECYCLE_RSS,
	       "RSS above: replace it");
	p.state = PS_REPLACING;
	is_int(policy_recycle(&p, &next, 0, 4, 100, 100, 0), RECYCLE_NONE,
	       "marked, its successor still starting: it serves on");
	is_int(policy_recycle(&p, NULL, 0, 4, 100, 100, 0), RECYCLE_NONE,
	       "marked, no successor yet: it serves on");
	next.state = PS_READY;
	is_int(policy_recycle(&p, &next, 0, 4, 100, 100, 0), RECYCLE_TAKEN_OVER,
	       "marked, its successor ready: it drains");
	p.state = PS_DRAINING;
	is_int(policy_recycle(&p, &next, 0, 4, 100, 100, 0), RECYCLE_NONE,
	       "a draining worker is not looked at");
}

static void generations(void)
{
	struct proc a = {.gen = 5, .state = PS_READY},
		    b = {.gen = 5, .state = PS_STARTING},
		    old1 = {.gen = 3, .state = PS_DRAINING},
		    old2 = {.gen = 4, .state = PS_READY},
		    dead = {.gen = 2, .state = PS_KILLED},
		    pend = {.gen = 6, .state = PS_STARTING};
	struct proc *by_slot[2] = {&a, &b},
		    *v[] = {&a, &old1, &old2, &dead, &pend, &b};
	struct proctab t = {v, 6, 6};
	struct pool_facts pool = serving;
	struct gens g;

	ok(!policy_gen_ready(by_slot, 2), "a starting slot: not ready");
	b.state = PS_READY;
	ok(policy_gen_ready(by_slot, 2), "every slot ready: ready");
	by_slot[1] = NULL;
	ok(!policy_gen_ready(by_slot, 2), "an empty slot: not ready");
	pool.pending = 6;
	ok(!policy_retiring(&a, &pool) && !policy_retiring(&pend, &pool),
	   "the serving and the pending generation do not retire");
	ok(policy_retiring(&old1, &pool) && policy_retiring(&old2, &pool),
	   "older ones retire, draining or not yet told");
	ok(!policy_retiring(&dead, &pool), "a SIGKILLed one counts no more");
	gens_take(&g, &t, &pool);
	ok(g.retiring == 2 && gens_victim(&g) == 3,
	   "two generations retiring, the oldest 3");
	ok(g.n == 4 && g.v[0].gen == 5 && g.v[0].role == GEN_SERVING &&
	       g.v[0].workers == 2 && g.v[3].role == GEN_PENDING &&
	       g.v[1].draining == 1 && g.v[2].draining == 0,
	   "the table: serving 5 (two workers), 3 draining, 4 not yet told, "
	   "pending 6; none for the SIGKILLed");
	dead.state = PS_DRAINING;
	gens_take(&g, &t, &pool);
	ok(g.retiring == 3 && gens_victim(&g) == 2,
	   "three, the oldest 2: past MAX_DRAINING_GENS (%d)",
	   MAX_DRAINING_GENS);
	dead.served = old1.served = 1;
	gens_take(&g, &t, &pool);
	ok(g.retiring == 3 && gens_victim(&g) == 4,
	   "a generation that never served goes first, newer or not");
	old2.served = 1;
	gens_take(&g, &t, &pool);
	ok(g.retiring == 3 && gens_victim(&g) == 2, "all served: the oldest");
}

int main(void)
{
	backoff();
	pace();
	exits();
	start_limit();
	slots();
	budget();
	deadlines();
	watchdog();
	recycling();
	generations();
	return done_testing();
}
