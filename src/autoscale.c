/*
 * autoscale.c: the pool's size: its options, and the adaptive pool's
 * policy (autoscale.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autoscale.h"
#include "internal.h"

static int refuse(herd *h, const char *msg)
{
	snprintf(h->err, sizeof(h->err), "%s", msg);
	errno = EINVAL;
	return -1;
}

int herd_set_workers(herd *h, int n)
{
	if (n < 0 || n > MAX_WORKERS)
		return refuse(h, "worker count must be 1..512");
	h->workers = n;
	h->workers_max = 0;
	return 0;
}

int herd_set_workers_range(herd *h, int min, int max)
{
	if (min < 1 || max < min || max > MAX_WORKERS)
		return refuse(h, "worker range must be MIN:MAX with "
				 "1 <= MIN <= MAX <= 512");
	h->workers = min;
	h->workers_max = max;
	return 0;
}

int herd_set_idle_timeout(herd *h, double seconds)
{
	if (!(seconds >= 0.1 && seconds <= 86400))
		return refuse(h, "idle timeout: 0.1 to 86400 seconds");
	h->idle_ms = (uint64_t)(seconds * 1000);
	return 0;
}

int herd_set_spawn_rate(herd *h, unsigned per_second)
{
	if (per_second < 1 || per_second > MAX_WORKERS)
		return refuse(h, "spawn rate: 1 to 512 workers a second");
	h->spawn_rate = per_second;
	return 0;
}

int autoscale_check(herd *h)
{
	if (h->workers_max == 0 && (h->idle_ms != 0 || h->spawn_rate != 0))
		return start_fail(h, "%s",
				  "--idle-timeout and --spawn-rate size an "
				  "adaptive pool: give -w MIN:MAX");
	return 0;
}

void autoscale_init(struct autoscale *a, uint64_t idle_ms, unsigned rate)
{
	memset(a, 0, sizeof(*a));
	a->idle_ms = idle_ms ? idle_ms : IDLE_TIMEOUT_MS;
	a->rate = rate ? rate : SPAWN_RATE_DEFAULT;
	a->step = 1;
	a->tokens = (uint64_t)a->rate * 1000;
}

/* Saturated: why, into d->why; 0 when it is not. */
static int saturated(const struct pool_sample *s, struct scale_decision *d)
{
	if (s->queued > 0)
		snprintf(d->why, sizeof(d->why),
			 "%u connections waiting in the accept queue",
			 s->queued);
	else if (s->busy >= 0 && s->ready > 0 && s->busy >= s->ready)
		snprintf(d->why, sizeof(d->why), "all %d workers busy",
			 s->ready);
	else if (s->cpu >= CPU_BUSY_PERMILLE)
		snprintf(d->why, sizeof(d->why), "workers at %d%% CPU",
			 s->cpu / 10);
	else
		return 0;
	return 1;
}

/* The load would fit one worker fewer. */
static int underused(const struct pool_sample *s)
{
	int fewer = s->ready - 1;

	if (s->queued > 0 || s->ready < 1)
		return 0;
	if (s->busy >= 0 && s->busy > fewer)
		return 0;
	return s->cpu < 0 ||
	       (long)s->cpu * s->ready <= (long)CPU_SPARE_PERMILLE * fewer;
}

static void refill(struct autoscale *a, uint64_t now)
{
	uint64_t cap = (uint64_t)a->rate * 1000;

	if (now > a->tokens_at)
		a->tokens += (now - a->tokens_at) * a->rate;
	if (a->tokens > cap)
		a->tokens = cap;
	a->tokens_at = now;
}

/* A growth wanted and not made: why, after what made it wanted. Said
 * once until the reason changes (key) or the pool grows. */
static void refused(struct autoscale *a, struct scale_decision *d,
		    const char *key, const char *why)
{
	size_t n = strlen(d->why);

	snprintf(d->why + n, sizeof(d->why) - n, "; not growing: %s", why);
	d->verdict = SCALE_REFUSE;
	d->say = a->refused != key;
	a->refused = key;
}

/* Saturated twice running: grow by the step, as far as the bounds, the fd
 * limit, the spawn rate and the machine allow. */
static void grow(struct autoscale *a, const struct pool_sample *s,
		 struct scale_decision *d)
{
	int k = (int)a->step;
	uint64_t have = a->tokens / 1000;

	if (s->workers >= s->max)
		return; /* as large as it may be: nothing to say */
	if (s->starting > 0 || s->backing_off)
		return; /* the last growth, or a crash, first */
	if (s->workers >= s->room) {
		refused(a, d, "room",
			"the fd limit (ulimit -n) allows no more");
		return;
	}
	if (s->pressure != NULL) {
		refused(a, d, "pressure", s->pressure);
		return;
	}
	if (have == 0)
		return; /* --spawn-rate: the next tick */
	if (k > s->max - s->workers)
		k = s->max - s->workers;
	if (k > s->room - s->workers)
		k = s->room - s->workers;
	if ((uint64_t)k > have)
		k = (int)have;
	a->tokens -= (uint64_t)k * 1000;
	if (a->step < (unsigned)MAX_WORKERS)
		a->step *= 2;
	a->refused = NULL;
	d->verdict = SCALE_GROW;
	d->to = s->workers + k;
}

void autoscale_decide(struct autoscale *a, const struct pool_sample *s,
		      struct scale_decision *d)
{
	int was = a->saturated;

	d->verdict = SCALE_STAY;
	d->to = s->workers;
	d->why[0] = '\0';
	d->say = 0;
	refill(a, s->now);
	if (s->workers < s->min || s->workers > s->max) {
		d->to = s->workers < s->min ? s->min : s->max;
		d->verdict = d->to > s->workers ? SCALE_GROW : SCALE_SHRINK;
		snprintf(d->why, sizeof(d->why), "the bounds are %d:%d", s->min,
			 s->max);
		return;
	}
	if (s->reloading) { /* a new generation: its own samples */
		a->saturated = 0;
		a->idle_since = 0;
		a->step = 1;
		return;
	}
	a->saturated = saturated(s, d);
	if (a->saturated) {
		a->idle_since = 0;
		if (was)
			grow(a, s, d);
		return;
	}
	a->step = 1;
	a->refused = NULL;
	if (!underused(s) || s->workers <= s->min) {
		a->idle_since = 0;
		return;
	}
	if (a->idle_since == 0)
		a->idle_since = s->now;
	if (s->now - a->idle_since < a->idle_ms)
		return;
	a->idle_since = s->now; /* the next one after another idle spell */
	d->verdict = SCALE_SHRINK;
	d->to = s->workers - 1;
	snprintf(d->why, sizeof(d->why), "underused for %llu ms",
		 (unsigned long long)a->idle_ms);
}

double psi_avg10(const char *text, const char *kind)
{
	size_t n = strlen(kind);

	for (const char *l = text; l != NULL && *l != '\0';) {
		const char *at;

		if (strncmp(l, kind, n) == 0 && l[n] == ' ' &&
		    (at = strstr(l, "avg10=")) != NULL &&
		    (strchr(l, '\n') == NULL || at < strchr(l, '\n'))) {
			char *end;
			double v = strtod(at + 6, &end);

			return end == at + 6 ? -1 : v;
		}
		l = strchr(l, '\n');
		if (l != NULL)
			l++;
	}
	return -1;
}
