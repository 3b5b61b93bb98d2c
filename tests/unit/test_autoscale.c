/* test_autoscale.c: the adaptive pool's policy, tick by tick, on made-up
 * samples and a made-up clock; the pressure files' and /proc/PID/stat's
 * parsers on their real formats. */
#include <string.h>

#include "autoscale.h"
#include "rss.h"
#include "tap.h"

#define TICK AUTOSCALE_TICK_MS

/* A pool of n ready workers of 1..8, nothing waiting, CPU unknown. */
static struct pool_sample quiet(uint64_t now, int n)
{
	return (struct pool_sample){.now = now,
				    .workers = n,
				    .min = 1,
				    .max = 8,
				    .room = 512,
				    .ready = n,
				    .busy = -1,
				    .cpu = -1};
}

static struct scale_decision decide(struct autoscale *a, struct pool_sample s)
{
	struct scale_decision d;

	autoscale_decide(a, &s, &d);
	return d;
}

static void growth(void)
{
	struct autoscale a;
	struct pool_sample s = quiet(1000, 1);
	struct scale_decision d;

	autoscale_init(&a, 2000, 32);
	s.queued = 5;
	d = decide(&a, s);
	ok(d.verdict == SCALE_STAY,
	   "one saturated sample is not enough (a moment's burst)");
	s.now += TICK;
	d = decide(&a, s);
	ok(d.verdict == SCALE_GROW && d.to == 2 &&
	       strcmp(d.why, "5 connections waiting in the accept queue") == 0,
	   "two running: grows by one, saying why (%s)", d.why);
	s.now += TICK;
	s.workers = 2;
	s.starting = 1;
	d = decide(&a, s);
	ok(d.verdict == SCALE_STAY, "not while the last growth is starting");
	s.now += TICK;
	s.starting = 0;
	s.ready = 2;
	d = decide(&a, s);
	ok(d.verdict == SCALE_GROW && d.to == 4,
	   "still saturated: the step doubles (2 -> 4)");
	s.now += TICK;
	s.workers = s.ready = 4;
	d = decide(&a, s);
	ok(d.verdict == SCALE_GROW && d.to == 8, "and again (4 -> 8)");
	s.now += TICK;
	s.workers = s.ready = 8;
	d = decide(&a, s);
	ok(d.verdict == SCALE_STAY && d.why[0] != '\0',
	   "at the maximum: stays, nothing refused");
	s.workers = s.ready = 3;
	s.backing_off = 1;
	s.now += TICK;
	d = decide(&a, s);
	ok(d.verdict == SCALE_STAY, "not while a slot backs off after a crash");
}

/* The same sample twice, step ms apart: the second decision. */
static struct scale_decision twice(struct autoscale *a, struct pool_sample *s,
				   uint64_t step)
{
	decide(a, *s);
	s->now += step;
	return decide(a, *s);
}

static void signals(void)
{
	struct autoscale a;
	struct pool_sample s = quiet(1000, 2);
	struct scale_decision d;

	autoscale_init(&a, 2000, 32);
	s.busy = 2;
	d = twice(&a, &s, TICK);
	ok(d.verdict == SCALE_GROW && strcmp(d.why, "all 2 workers busy") == 0,
	   "every worker busy (where herd counts them) is saturation");
	autoscale_init(&a, 2000, 32);
	s = quiet(1000, 2);
	s.busy = 1;
	ok(twice(&a, &s, TICK).verdict == SCALE_STAY, "one of two busy is not");
	autoscale_init(&a, 2000, 32);
	s = quiet(1000, 2);
	s.cpu = 950;
	d = twice(&a, &s, TICK);
	ok(d.verdict == SCALE_GROW && strcmp(d.why, "workers at 95% CPU") == 0,
	   "the workers' CPU near a whole CPU is saturation");
}

static void refusals(void)
{
	struct autoscale a;
	struct pool_sample s = quiet(1000, 3);
	struct scale_decision d;

	autoscale_init(&a, 2000, 32);
	s.queued = 2;
	s.pressure = "CPU pressure: 95%";
	d = twice(&a, &s, TICK);
	ok(d.verdict == SCALE_REFUSE && d.say && d.to == 3 &&
	       strstr(d.why, "not growing: CPU pressure: 95%") != NULL,
	   "the machine saturated: refused, and why (%s)", d.why);
	s.now += TICK;
	d = decide(&a, s);
	ok(d.verdict == SCALE_REFUSE && !d.say, "said once, not every tick");
	s.pressure = NULL;
	s.room = 3;
	s.now += TICK;
	d = decide(&a, s);
	ok(d.verdict == SCALE_REFUSE && d.say &&
	       strstr(d.why, "fd limit") != NULL,
	   "at the fd limit: refused, a new reason said again");
	s.room = 4;
	s.now += TICK;
	d = decide(&a, s);
	ok(d.verdict == SCALE_GROW && d.to == 4,
	   "never past the fd limit: the step is cut to it");
}

static void rate(void)
{
	struct autoscale a;
	struct pool_sample s = quiet(1000, 1);
	struct scale_decision d;
	int grown = 0;

	autoscale_init(&a, 2000, 2); /* --spawn-rate 2 */
	s.max = 64;
	s.queued = 9;
	decide(&a, s);
	for (int i = 0; i < 8; i++) { /* two seconds of ticks */
		s.now += TICK;
		d = decide(&a, s);
		if (d.verdict == SCALE_GROW) {
			grown += d.to - s.workers;
			s.workers = s.ready = d.to;
		}
	}
	ok(grown >= 3 && grown <= 6,
	   "--spawn-rate 2: %d started in 2 s (the burst of 2, then 2 a "
	   "second)",
	   grown);
}

static void shrink(void)
{
	struct autoscale a;
	struct pool_sample s = quiet(1000, 4);
	struct scale_decision d;
	uint64_t t0 = s.now;

	autoscale_init(&a, 2000, 32);
	do {
		d = decide(&a, s);
		s.now += TICK;
	} while (d.verdict == SCALE_STAY && s.now < t0 + 10000);
	ok(d.verdict == SCALE_SHRINK && d.to == 3 &&
	       s.now - TICK - t0 == 2000 &&
	       strcmp(d.why, "underused for 2000 ms") == 0,
	   "underused for the idle timeout: one fewer (%s)", d.why);
	s.workers = s.ready = 3;
	d = decide(&a, s);
	ok(d.verdict == SCALE_STAY, "the next one after another idle spell");
	s.now += 1000;
	s.queued = 1;
	decide(&a, s);
	s.queued = 0;
	s.now += 1500;
	d = decide(&a, s);
	ok(d.verdict == SCALE_STAY,
	   "a waiting connection restarts the idle clock");
	autoscale_init(&a, 500, 32);
	s = quiet(1000, 2);
	s.min = 2;
	ok(twice(&a, &s, 5000).verdict == SCALE_STAY,
	   "never below the minimum");
	autoscale_init(&a, 500, 32);
	s = quiet(1000, 3);
	s.cpu = 500; /* 1.5 CPUs would be 75% each on two */
	ok(twice(&a, &s, 1000).verdict == SCALE_STAY,
	   "CPU that two could not carry spare: stays");
	autoscale_init(&a, 500, 32);
	s.cpu = 300; /* 0.9 CPUs: 45% each on two */
	ok(twice(&a, &s, 1000).verdict == SCALE_SHRINK,
	   "CPU two can carry: shrinks");
	autoscale_init(&a, 500, 32);
	s = quiet(1000, 3);
	s.busy = 3;
	ok(twice(&a, &s, 1000).verdict == SCALE_GROW,
	   "busy 3 of 3: saturated, not underused");
	autoscale_init(&a, 500, 32);
	s.busy = 2;
	ok(twice(&a, &s, 1000).verdict == SCALE_SHRINK,
	   "busy 2 of 3: the load fits two");
}

static void bounds_and_reloads(void)
{
	struct autoscale a;
	struct pool_sample s = quiet(1000, 10);
	struct scale_decision d;

	autoscale_init(&a, 2000, 32);
	d = decide(&a, s);
	ok(d.verdict == SCALE_SHRINK && d.to == 8,
	   "above new bounds: brought to the maximum");
	s = quiet(1000, 1);
	s.min = 3;
	d = decide(&a, s);
	ok(d.verdict == SCALE_GROW && d.to == 3, "below: to the minimum");
	s = quiet(1000, 2);
	s.queued = 4;
	decide(&a, s);
	s.reloading = 1;
	s.now += TICK;
	d = decide(&a, s);
	ok(d.verdict == SCALE_STAY, "no change while a generation starts");
	s.reloading = 0;
	s.now += TICK;
	d = decide(&a, s);
	ok(d.verdict == SCALE_STAY,
	   "after it: two saturated samples of its own again");
}

static void parsers(void)
{
	const char *cpu = "some avg10=93.25 avg60=40.00 avg300=10.00 "
			  "total=123\nfull avg10=0.00 avg60=0.00 avg300=0.00 "
			  "total=0\n";
	struct proc_usage u;

	ok(psi_avg10(cpu, "some") > 93.2 && psi_avg10(cpu, "some") < 93.3,
	   "psi: some avg10");
	ok(psi_avg10(cpu, "full") == 0.0, "psi: full avg10");
	ok(psi_avg10("some avg60=1\n", "some") == -1 &&
	       psi_avg10("", "full") == -1,
	   "psi: no figure, -1");
	ok(proc_usage_parse("4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 "
			    "0 0 37 5 0 0 20 0 1 0 555 12345678 812 "
			    "18446744073709551615",
			    &u) == 0 &&
	       u.cpu_ticks == 42 && u.rss_pages == 812,
	   "/proc/PID/stat: utime + stime, rss, past a comm with ')' in it");
	ok(proc_usage_parse("4242 (x", &u) == -1, "/proc/PID/stat: cut short");
}

int main(void)
{
	growth();
	signals();
	refusals();
	rate();
	shrink();
	bounds_and_reloads();
	parsers();
	return done_testing();
}
