/* test_status.c: a hand-made status snapshot rendered as herd ctl status's
 * text and JSON and as Prometheus metrics, byte for byte: the integration
 * tests and users' scripts parse them. No master, no process, no clock. */
#include <stdlib.h>
#include <string.h>

#include "status.h"
#include "tap.h"

static const char *addrs[] = {"127.0.0.1:8080", "unix:/tmp/a\"b"};

static struct status_worker procs[] = {
    {0, 100, 2, "ready", 99999, 0, 3, 12000, 2048},
    {1, 101, 1, "draining", 5, 7, 0, 7, 0},
    {2, 103, 3, "starting", 0, 1, 1, 338, 999},
};

static struct status_backoff backoff[] = {{1, 7, 1500}, {2, 1, 0}};

/* A reload under way: three workers of generations 1 to 3. */
static struct status busy(void)
{
	return (struct status){
	    .pid = 4242,
	    .version = "1.2.3",
	    .mode = "passfd",
	    .uptime_ms = 123456,
	    .workers = 3,
	    .gen = 2,
	    .pending = 3,
	    .reloads = 5,
	    .reloads_abandoned = 2,
	    .restarts = 11,
	    .active = 4,
	    .total = 12345,
	    .log_lines_lost = 6,
	    .peer_fds_leaked = 1,
	    .listen = addrs,
	    .nlisten = 2,
	    .states = {{"starting", 1},
		       {"ready", 1},
		       {"draining", 1},
		       {"stopping", 0}},
	    .procs = procs,
	    .nprocs = 3,
	};
}

/* No worker at all: two slots backing off, no reload. */
static struct status crashing(void)
{
	struct status s = busy();

	s.mode = "shared";
	s.pending = 0;
	s.nlisten = 1;
	s.procs = NULL;
	s.nprocs = 0;
	s.backoff = backoff;
	s.nbackoff = 2;
	return s;
}

/* What render wrote equals want; r is emptied. */
static int text_is(struct ctl_reply *r, const char *want)
{
	int same = r->len == strlen(want) &&
		   (r->len == 0 || memcmp(r->buf, want, r->len) == 0);

	if (!same)
		printf("#   got:\n%.*s#   want:\n%s", (int)r->len,
		       r->buf != NULL ? r->buf : "", want);
	free(r->buf);
	memset(r, 0, sizeof(*r));
	return same;
}

#define HEADER                                                                 \
	"slot  pid      gen  state      uptime_s restarts  active     total  " \
	" "                                                                    \
	"rss_kib\n"

static void text(void)
{
	struct ctl_reply r = {0};
	struct status s = busy();

	status_text(&s, &r);
	ok(text_is(&r, "master   pid 4242, herd 1.2.3, up 123 s, mode passfd, "
		       "3 workers, generation 2 (next starting), 5 reloads\n"
		       "listen   127.0.0.1:8080\n"
		       "listen   unix:/tmp/a\"b\n" HEADER
		       "0     100      2    ready            99        0       "
		       "3     12000      2048\n"
		       "1     101      1    draining          0        7       "
		       "0         7         0\n"
		       "2     103      3    starting          0        1       "
		       "1       338       999\n"),
	   "text: master line, addresses, a row per worker in seconds");
	s = crashing();
	status_text(&s, &r);
	ok(text_is(&r, "master   pid 4242, herd 1.2.3, up 123 s, mode shared, "
		       "3 workers, generation 2, 5 reloads\n"
		       "listen   127.0.0.1:8080\n" HEADER
		       "1     -        -    backoff   next start in 1500 ms, 7 "
		       "restarts\n"
		       "2     -        -    backoff   next start in 0 ms, 1 "
		       "restarts\n"),
	   "text: no reload under way, slots backing off in ms");
}

static void json(void)
{
	struct ctl_reply r = {0};
	struct status s = busy();

	status_json(&s, &r);
	ok(text_is(&r,
		   "{\"pid\":4242,\"version\":\"1.2.3\",\"uptime_ms\":"
		   "123456,\"mode\":\"passfd\",\"workers\":3,"
		   "\"generation\":2,\"pending\":3,\"reloads\":5,"
		   "\"listen\":[\"127.0.0.1:8080\",\"unix:/tmp/a\\\"b\"],"
		   "\"procs\":[{\"slot\":0,\"pid\":100,\"generation\":2,"
		   "\"state\":\"ready\",\"uptime_ms\":99999,\"restarts\":0,"
		   "\"active\":3,\"total\":12000,\"rss_kib\":2048},"
		   "{\"slot\":1,\"pid\":101,\"generation\":1,\"state\":"
		   "\"draining\",\"uptime_ms\":5,\"restarts\":7,\"active\":"
		   "0,\"total\":7,\"rss_kib\":0},{\"slot\":2,\"pid\":103,"
		   "\"generation\":3,\"state\":\"starting\",\"uptime_ms\":0,"
		   "\"restarts\":1,\"active\":1,\"total\":338,\"rss_kib\":"
		   "999}]}\n"),
	   "json: one object, the address escaped, workers in ms");
	s = crashing();
	status_json(&s, &r);
	ok(text_is(&r, "{\"pid\":4242,\"version\":\"1.2.3\",\"uptime_ms\":"
		       "123456,\"mode\":\"shared\",\"workers\":3,"
		       "\"generation\":2,\"pending\":0,\"reloads\":5,"
		       "\"listen\":[\"127.0.0.1:8080\"],\"procs\":[{\"slot\":1,"
		       "\"state\":\"backoff\",\"restarts\":7,\"next_start_ms\":"
		       "1500},{\"slot\":2,\"state\":\"backoff\",\"restarts\":1,"
		       "\"next_start_ms\":0}]}\n"),
	   "json: backing-off slots in procs, no comma before the first");
	s.nlisten = 0;
	s.nbackoff = 0;
	status_json(&s, &r);
	ok(text_is(&r, "{\"pid\":4242,\"version\":\"1.2.3\",\"uptime_ms\":"
		       "123456,\"mode\":\"shared\",\"workers\":3,"
		       "\"generation\":2,\"pending\":0,\"reloads\":5,"
		       "\"listen\":[],\"procs\":[]}\n"),
	   "json: empty lists");
}

static void prometheus(void)
{
	struct ctl_reply r = {0};
	struct status s = busy();

	s.uptime_ms = 123;
	status_prometheus(&s, &r);
	ok(text_is(
	       &r,
	       "# HELP herd_workers Worker processes by state.\n"
	       "# TYPE herd_workers gauge\n"
	       "herd_workers{state=\"starting\"} 1\n"
	       "herd_workers{state=\"ready\"} 1\n"
	       "herd_workers{state=\"draining\"} 1\n"
	       "herd_workers{state=\"stopping\"} 0\n"
	       "# HELP herd_workers_wanted Worker slots configured.\n"
	       "# TYPE herd_workers_wanted gauge\nherd_workers_wanted 3\n"
	       "# HELP herd_generation The generation serving.\n"
	       "# TYPE herd_generation gauge\nherd_generation 2\n"
	       "# HELP herd_restarts_total Serving workers that died and were "
	       "restarted.\n"
	       "# TYPE herd_restarts_total counter\nherd_restarts_total 11\n"
	       "# HELP herd_reloads_total Reloads completed (upgrades "
	       "included).\n"
	       "# TYPE herd_reloads_total counter\nherd_reloads_total 5\n"
	       "# HELP herd_connections_active Connections open in workers, as "
	       "last reported.\n"
	       "# TYPE herd_connections_active gauge\n"
	       "herd_connections_active 4\n"
	       "# HELP herd_connections_total Connections taken by workers, as "
	       "last reported.\n"
	       "# TYPE herd_connections_total counter\n"
	       "herd_connections_total 12345\n"
	       "# HELP herd_uptime_seconds Time since the master started.\n"
	       "# TYPE herd_uptime_seconds gauge\nherd_uptime_seconds 0.123\n"
	       "# HELP herd_log_lines_lost_total Log lines the master could "
	       "not write (log full, blocked or too large).\n"
	       "# TYPE herd_log_lines_lost_total counter\n"
	       "herd_log_lines_lost_total 6\n"
	       "# HELP herd_peer_fds_leaked_total fds peers sent that could "
	       "not be closed without blocking.\n"
	       "# TYPE herd_peer_fds_leaked_total counter\n"
	       "herd_peer_fds_leaked_total 1\n"
	       "# HELP herd_reloads_abandoned_total Reloads given up: the new "
	       "generation was not ready in time, or did not start.\n"
	       "# TYPE herd_reloads_abandoned_total counter\n"
	       "herd_reloads_abandoned_total 2\n"),
	   "prometheus: every family, HELP and TYPE, uptime in seconds");
}

int main(void)
{
	text();
	json();
	prometheus();
	return done_testing();
}
