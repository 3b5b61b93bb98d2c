/* test_status.c: a hand-made status snapshot rendered as herd ctl status's
 * text and JSON and as Prometheus metrics, byte for byte: the integration
 * tests and users' scripts parse them. No master, no process, no clock. */
#include <stdlib.h>
#include <string.h>

#include "meter.h"
#include "status.h"
#include "tap.h"

static const char *addrs[] = {"127.0.0.1:8080", "unix:/tmp/a\"b"};

static struct status_worker procs[] = {
    {0, 100, 2, "ready", 99999, 0, 3, 12000, 2048, 1500},
    {1, 101, 1, "draining", 5, 7, 0, 7, 0, 0},
    {2, 103, 3, "starting", 0, 1, 1, 338, 999, 20},
};

static struct status_backoff backoff[] = {{1, 7, 1500}, {2, 1, 0}};

/* The TCP listener's socket, shared; the unix one without figures. */
static struct status_queue queues[] = {
    {0, -1, NULL, {3, 4096, 7}},
    {1, -1, "unix socket, no TCP_INFO", {0, 0, 0}},
};

/* reuseport: each slot's socket; slot 2's could not be read. */
static struct status_queue slot_queues[] = {
    {0, 0, NULL, {2, 128, 0}},
    {0, 1, NULL, {129, 128, 45}},
    {0, 2, "Bad file descriptor", {0, 0, 0}},
    {1, -1, "unix socket, no TCP_INFO", {0, 0, 0}},
};

/* A reload under way: three workers of generations 1 to 3. */
/* Generation 2 became ready; the upgrade to 3 failed its check; 4 starts. */
static struct history recent;

static void take_recent(void)
{
	history_start(&recent, 2, 0, 1000);
	history_end(&recent, 2, ATT_READY, NULL, 1250);
	history_start(&recent, 3, 1, 1500);
	history_end(&recent, 3, ATT_ABANDONED, "'/x\"y --check' exited", 1600);
	history_start(&recent, 4, 0, 2000);
}

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
	    .relays = 9,
	    .relays_closed = 1,
	    .restarts = 11,
	    .active = 4,
	    .total = 12345,
	    .log_lines_lost = 6,
	    .peer_fds_leaked = 1,
	    .listen = addrs,
	    .nlisten = 2,
	    .queues = queues,
	    .nqueues = 2,
	    .overflows_known = 1,
	    .listen_overflows = 12,
	    .states = {{"starting", 1},
		       {"ready", 1},
		       {"draining", 1},
		       {"stopping", 0}},
	    .procs = procs,
	    .nprocs = 3,
	    .history = &recent,
	    .now_ms = 2500,
	    .pool = {.min = 3, .max = 3, .idle_ms = 10000},
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
	s.history = NULL;
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
		       "listen   127.0.0.1:8080  queue 3 of 4096, 7 dropped\n"
		       "listen   unix:/tmp/a\"b  (no queue: unix socket, no "
		       "TCP_INFO)\n" HEADER
		       "0     100      2    ready            99        0       "
		       "3     12000      2048\n"
		       "1     101      1    draining          0        7       "
		       "0         7         0\n"
		       "2     103      3    starting          0        1       "
		       "1       338       999\n"),
	   "text: master line, addresses, a row per worker in seconds");
	s = crashing();
	status_text(&s, &r);
	ok(text_is(
	       &r,
	       "master   pid 4242, herd 1.2.3, up 123 s, mode shared, "
	       "3 workers, generation 2, 5 reloads\n"
	       "listen   127.0.0.1:8080  queue 3 of 4096, 7 dropped\n" HEADER
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
	ok(text_is(
	       &r,
	       "{\"pid\":4242,\"version\":\"1.2.3\",\"uptime_ms\":"
	       "123456,\"mode\":\"passfd\",\"workers\":3,"
	       "\"generation\":2,\"pending\":3,\"reloads\":5,\"relays\":9,"
	       "\"relays_closed\":1,"
	       "\"listen\":[\"127.0.0.1:8080\",\"unix:/tmp/a\\\"b\"],"
	       "\"listeners\":[{\"address\":\"127.0.0.1:8080\",\"queue\":3,"
	       "\"backlog\":4096,\"drops\":7},{\"address\":"
	       "\"unix:/tmp/a\\\"b\",\"queue\":null,\"backlog\":null,"
	       "\"drops\":null}],\"listen_overflows\":12,"
	       "\"procs\":[{\"slot\":0,\"pid\":100,\"generation\":2,"
	       "\"state\":\"ready\",\"uptime_ms\":99999,\"restarts\":0,"
	       "\"active\":3,\"total\":12000,\"rss_kib\":2048,\"cpu_ms\":1500},"
	       "{\"slot\":1,\"pid\":101,\"generation\":1,\"state\":"
	       "\"draining\",\"uptime_ms\":5,\"restarts\":7,\"active\":"
	       "0,\"total\":7,\"rss_kib\":0,\"cpu_ms\":0},{\"slot\":2,\"pid\":"
	       "103,"
	       "\"generation\":3,\"state\":\"starting\",\"uptime_ms\":0,"
	       "\"restarts\":1,\"active\":1,\"total\":338,\"rss_kib\":"
	       "999,\"cpu_ms\":20}],\"recent_reloads\":[{\"generation\":4,"
	       "\"upgrade\":"
	       "false,\"state\":\"starting\",\"seconds\":0.500,\"why\":"
	       "\"\"},{\"generation\":3,\"upgrade\":true,\"state\":"
	       "\"abandoned\",\"seconds\":0.100,\"why\":\"'/x\\\"y "
	       "--check' exited\"},{\"generation\":2,\"upgrade\":false,"
	       "\"state\":\"ready\",\"seconds\":0.250,\"why\":\"\"}],"
	       "\"recent_crashes\":[],\"pool\":{\"min\":3,\"max\":3,"
	       "\"adaptive\":false,\"idle_timeout_ms\":10000,\"grown\":0,"
	       "\"shrunk\":0,\"last\":null,\"last_ago_ms\":null},"
	       "\"load_history\":[]}\n"),
	   "json: one object, the address escaped, workers in ms, the "
	   "reloads newest first");
	s = crashing();
	status_json(&s, &r);
	ok(text_is(&r,
		   "{\"pid\":4242,\"version\":\"1.2.3\",\"uptime_ms\":"
		   "123456,\"mode\":\"shared\",\"workers\":3,"
		   "\"generation\":2,\"pending\":0,\"reloads\":5,"
		   "\"relays\":9,\"relays_closed\":1,"
		   "\"listen\":[\"127.0.0.1:8080\"],\"listeners\":[{"
		   "\"address\":\"127.0.0.1:8080\",\"queue\":3,\"backlog\":"
		   "4096,\"drops\":7}],\"listen_overflows\":12,"
		   "\"procs\":[{\"slot\":1,"
		   "\"state\":\"backoff\",\"restarts\":7,\"next_start_ms\":"
		   "1500},{\"slot\":2,\"state\":\"backoff\",\"restarts\":1,"
		   "\"next_start_ms\":0}],\"recent_reloads\":[],"
		   "\"recent_crashes\":[],\"pool\":{\"min\":3,\"max\":3,"
		   "\"adaptive\":false,\"idle_timeout_ms\":10000,\"grown\":0,"
		   "\"shrunk\":0,\"last\":null,\"last_ago_ms\":null},"
		   "\"load_history\":[]}\n"),
	   "json: backing-off slots in procs, no comma before the first");
	s.nlisten = 0;
	s.nbackoff = 0;
	status_json(&s, &r);
	ok(text_is(&r,
		   "{\"pid\":4242,\"version\":\"1.2.3\",\"uptime_ms\":"
		   "123456,\"mode\":\"shared\",\"workers\":3,"
		   "\"generation\":2,\"pending\":0,\"reloads\":5,"
		   "\"relays\":9,\"relays_closed\":1,"
		   "\"listen\":[],\"listeners\":[],\"listen_overflows\":12,"
		   "\"procs\":[],\"recent_reloads\":[],"
		   "\"recent_crashes\":[],\"pool\":{\"min\":3,\"max\":3,"
		   "\"adaptive\":false,\"idle_timeout_ms\":10000,\"grown\":0,"
		   "\"shrunk\":0,\"last\":null,\"last_ago_ms\":null},"
		   "\"load_history\":[]}\n"),
	   "json: empty lists");
}

#define QUEUE_HELP                                                             \
	"# HELP herd_listen_queue Connections waiting in a listening "         \
	"socket's accept queue (TCP_INFO), per slot in reuseport mode. "       \
	"Unix-domain listeners have no figures.\n"                             \
	"# TYPE herd_listen_queue gauge\n"
#define BACKLOG_HELP                                                           \
	"# HELP herd_listen_backlog The most connections that may wait in "    \
	"that queue: the backlog, as the kernel capped it "                    \
	"(net.core.somaxconn).\n"                                              \
	"# TYPE herd_listen_backlog gauge\n"
#define DROPS_HELP                                                             \
	"# HELP herd_listen_drops_total SYNs and handshakes the kernel "       \
	"dropped at that socket (SO_MEMINFO), its queue full or out of "       \
	"memory; a client's retries count again.\n"                            \
	"# TYPE herd_listen_drops_total counter\n"

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
	       "# HELP herd_workers_min The pool's lower bound (-w MIN:MAX; a "
	       "fixed pool's size).\n"
	       "# TYPE herd_workers_min gauge\nherd_workers_min 3\n"
	       "# HELP herd_workers_max The pool's upper bound.\n"
	       "# TYPE herd_workers_max gauge\nherd_workers_max 3\n"
	       "# HELP herd_pool_resizes_total The adaptive pool's changes of "
	       "size.\n"
	       "# TYPE herd_pool_resizes_total counter\n"
	       "herd_pool_resizes_total{direction=\"grow\"} 0\n"
	       "herd_pool_resizes_total{direction=\"shrink\"} 0\n"
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
	       "herd_reloads_abandoned_total 2\n"
	       "# HELP herd_connections_relayed_total Idle connections "
	       "draining workers relayed: passed to a serving worker, or "
	       "closed for want of one.\n"
	       "# TYPE herd_connections_relayed_total counter\n"
	       "herd_connections_relayed_total{outcome=\"passed\"} 9\n"
	       "herd_connections_relayed_total{outcome=\"closed\"} "
	       "1\n" QUEUE_HELP
	       "herd_listen_queue{listen=\"127.0.0.1:8080\"} 3\n" BACKLOG_HELP
	       "herd_listen_backlog{listen=\"127.0.0.1:8080\"} "
	       "4096\n" DROPS_HELP
	       "herd_listen_drops_total{listen=\"127.0.0.1:8080\"} 7\n"
	       "# HELP herd_listen_overflows_total Connections refused "
	       "because an accept queue was full, counted by the kernel for "
	       "the whole network namespace (TcpExt ListenOverflows), other "
	       "servers' included: it counts no socket apart.\n"
	       "# TYPE herd_listen_overflows_total counter\n"
	       "herd_listen_overflows_total 12\n"),
	   "prometheus: every family, HELP and TYPE, uptime in seconds, "
	   "the unix listener without queue figures");
}

/* reuseport: a slot's socket each; one unreadable; the address needs
 * escaping in a label; the namespace's overflows unknown. */
static struct status by_slot(void)
{
	static const char *odd[] = {"a\\b\"c\nd:80", "unix:/tmp/s"};
	struct status s = busy();

	s.mode = "reuseport";
	s.listen = odd;
	s.queues = slot_queues;
	s.nqueues = sizeof(slot_queues) / sizeof(*slot_queues);
	s.overflows_known = 0;
	s.nprocs = 0;
	s.history = NULL;
	return s;
}

/* What render wrote ends with want; r is emptied. */
static int tail_is(struct ctl_reply *r, const char *want)
{
	size_t n = strlen(want);

	if (r->len >= n && memcmp(r->buf + r->len - n, want, n) == 0) {
		free(r->buf);
		memset(r, 0, sizeof(*r));
		return 1;
	}
	return text_is(r, want);
}

static void queues_by_slot(void)
{
	struct ctl_reply r = {0};
	struct status s = by_slot();

	status_text(&s, &r);
	ok(text_is(&r, "master   pid 4242, herd 1.2.3, up 123 s, mode "
		       "reuseport, 3 workers, generation 2 (next starting), 5 "
		       "reloads\n"
		       "listen   a\\b\"c\nd:80  queue 131 of 256, 45 dropped\n"
		       "         slot 0   queue 2 of 128, 0 dropped\n"
		       "         slot 1   queue 129 of 128, 45 dropped\n"
		       "         slot 2   (no queue: Bad file descriptor)\n"
		       "listen   unix:/tmp/s  (no queue: unix socket, no "
		       "TCP_INFO)\n" HEADER),
	   "text: a listener's sums, then each slot's socket");
	status_json(&s, &r);
	ok(text_is(&r,
		   "{\"pid\":4242,\"version\":\"1.2.3\",\"uptime_ms\":"
		   "123456,\"mode\":\"reuseport\",\"workers\":3,"
		   "\"generation\":2,\"pending\":3,\"reloads\":5,\"relays\":9,"
		   "\"relays_closed\":1,"
		   "\"listen\":[\"a\\\\b\\\"c\\u000ad:80\",\"unix:/tmp/s\"],"
		   "\"listeners\":[{\"address\":\"a\\\\b\\\"c\\u000ad:80\","
		   "\"queue\":131,\"backlog\":256,\"drops\":45,\"slots\":["
		   "{\"slot\":0,\"queue\":2,\"backlog\":128,\"drops\":0},"
		   "{\"slot\":1,\"queue\":129,\"backlog\":128,\"drops\":45},"
		   "{\"slot\":2,\"queue\":null,\"backlog\":null,\"drops\":"
		   "null}]},{\"address\":\"unix:/tmp/s\",\"queue\":null,"
		   "\"backlog\":null,\"drops\":null}],\"listen_overflows\":"
		   "null,\"procs\":[],\"recent_reloads\":[],"
		   "\"recent_crashes\":[],\"pool\":{\"min\":3,\"max\":3,"
		   "\"adaptive\":false,\"idle_timeout_ms\":10000,\"grown\":0,"
		   "\"shrunk\":0,\"last\":null,\"last_ago_ms\":null},"
		   "\"load_history\":[]}\n"),
	   "json: slots under their listener, nulls where unknown");
	status_prometheus(&s, &r);
	ok(tail_is(&r, "herd_connections_relayed_total{outcome=\"closed\"} "
		       "1\n" QUEUE_HELP
		       "herd_listen_queue{listen=\"a\\\\b\\\"c\\nd:80\",slot="
		       "\"0\"} 2\n"
		       "herd_listen_queue{listen=\"a\\\\b\\\"c\\nd:80\",slot="
		       "\"1\"} 129\n" BACKLOG_HELP
		       "herd_listen_backlog{listen=\"a\\\\b\\\"c\\nd:80\","
		       "slot=\"0\"} 128\n"
		       "herd_listen_backlog{listen=\"a\\\\b\\\"c\\nd:80\","
		       "slot=\"1\"} 128\n" DROPS_HELP
		       "herd_listen_drops_total{listen=\"a\\\\b\\\"c\\nd:80\","
		       "slot=\"0\"} 0\n"
		       "herd_listen_drops_total{listen=\"a\\\\b\\\"c\\nd:80\","
		       "slot=\"1\"} 45\n"),
	   "prometheus: a series per slot socket, the label escaped, no "
	   "overflows when unknown");
}

static const char netstat[] =
    "TcpExt: SyncookiesSent ListenOverflowsX ListenOverflows ListenDrops\n"
    "TcpExt: 1 99 42 43\n"
    "IpExt: InNoRoutes ListenOverflows\n"
    "IpExt: 5 6\n";

static void netstat_counters(void)
{
	unsigned long long v = 0;

	ok(netstat_counter(netstat, "TcpExt", "ListenOverflows", &v) == 0 &&
	       v == 42,
	   "netstat: a counter by its name, not one it begins");
	ok(netstat_counter(netstat, "IpExt", "ListenOverflows", &v) == 0 &&
	       v == 6,
	   "netstat: in its own group");
	ok(netstat_counter(netstat, "TcpExt", "Nothing", &v) == -1,
	   "netstat: a name not there");
	ok(netstat_counter("TcpExt: A B\nTcpExt: 1\n", "TcpExt", "B", &v) == -1,
	   "netstat: a name without its value");
	ok(netstat_counter("TcpExt: A B\n", "TcpExt", "A", &v) == -1,
	   "netstat: no values line");
	ok(netstat_counter("TcpExt: A\nTcpExt: 1x\n", "TcpExt", "A", &v) == -1,
	   "netstat: a value that is not a number");
}

/* An adaptive pool that grew and shrank, a crash, two history points. */
static struct meter two_points;
static struct crashes one_crash;

static struct status adaptive(void)
{
	struct status s = busy();

	s.now_ms = 20000;
	crash_note(&one_crash,
		   "worker 2 (pid 103, generation 3) killed by signal 11 "
		   "<SIGSEGV>",
		   2000);
	two_points.hist[0] = (struct meter_point){10000, 1, 1, 3, 6, -1};
	two_points.hist[1] = (struct meter_point){15000, 4, 4, 8, 0, 120};
	two_points.n = 2;
	s.crashes = &one_crash;
	s.pool = (struct status_pool){
	    1,	  4, 2000, "2 -> 4: 3 connections waiting in the accept queue",
	    1500, 2, 1,	   &two_points};
	return s;
}

static int has(const struct ctl_reply *r, const char *want)
{
	size_t n = strlen(want);

	for (size_t i = 0; r->buf != NULL && i + n <= r->len; i++)
		if (memcmp(r->buf + i, want, n) == 0)
			return 1;
	printf("#   missing: %s\n", want);
	return 0;
}

static void adaptive_pool(void)
{
	struct ctl_reply r = {0};
	struct status s = adaptive();
	int all = 1;

	status_text(&s, &r);
	ok(has(&r, "generation 2 (next starting), 5 reloads\n"
		   "pool     adaptive 1:4, idle timeout 2.0 s, grown 2, shrunk "
		   "1 times; last 1.5 s ago: 2 -> 4: 3 connections waiting in "
		   "the accept queue\nlisten   127.0.0.1:8080"),
	   "text: the pool's bounds and last change, under the master line");
	free(r.buf);
	memset(&r, 0, sizeof(r));
	status_json(&s, &r);
	ok(tail_is(&r,
		   "\"recent_crashes\":[{\"ago_ms\":18000,\"what\":\"worker 2 "
		   "(pid 103, generation 3) killed by signal 11 <SIGSEGV>\"}],"
		   "\"pool\":{\"min\":1,\"max\":4,\"adaptive\":true,"
		   "\"idle_timeout_ms\":2000,\"grown\":2,\"shrunk\":1,"
		   "\"last\":\"2 -> 4: 3 connections waiting in the accept "
		   "queue\",\"last_ago_ms\":1500},\"load_history\":[{"
		   "\"ago_ms\":10000,\"workers\":1,\"ready\":1,\"active\":3,"
		   "\"queued\":6,\"cpu_permille\":null},{\"ago_ms\":5000,"
		   "\"workers\":4,\"ready\":4,\"active\":8,\"queued\":0,"
		   "\"cpu_permille\":120}]}\n"),
	   "json: the crashes, the pool, the history oldest first");
	status_prometheus(&s, &r);
	ok(has(&r, "herd_workers_min 1\n") && has(&r, "herd_workers_max 4\n") &&
	       has(&r, "herd_pool_resizes_total{direction=\"grow\"} 2\n") &&
	       has(&r, "herd_pool_resizes_total{direction=\"shrink\"} 1\n"),
	   "prometheus: the bounds and the resizes");
	free(r.buf);
	memset(&r, 0, sizeof(r));
	status_html(&s, &r);
	all &= has(&r, "<!DOCTYPE html>\n");
	all &= has(&r, "<meta http-equiv=\"refresh\" content=\"2\">");
	all &= has(&r, "<td>100</td>") && has(&r, "<td>101</td>") &&
	       has(&r, "<td>103</td>");
	all &= has(&r, "killed by signal 11 &lt;SIGSEGV&gt;");
	all &= has(&r, "unix:/tmp/a&quot;b");
	all &= has(&r, "&#39;/x&quot;y --check&#39; exited");
	all &= has(&r, "adaptive pool 1:4");
	all &= has(&r, "<polyline");
	all &= has(&r, "</html>\n");
	ok(all, "html: every worker's row, the crash, the listener and the "
		"abandoned upgrade escaped, the charts, a refresh");
	ok(!strstr(r.buf, "<script") && !strstr(r.buf, "src=") &&
	       !strstr(r.buf, "http://") && !strstr(r.buf, "https://") &&
	       !strstr(r.buf, "@import") && !strstr(r.buf, "<form"),
	   "html: self-contained and read-only: no script, nothing loaded "
	   "from elsewhere, no form");
	free(r.buf);
}

int main(void)
{
	take_recent();
	text();
	json();
	prometheus();
	queues_by_slot();
	netstat_counters();
	adaptive_pool();
	return done_testing();
}
