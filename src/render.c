/*
 * render.c: a status snapshot (status.h) as `herd ctl status` prints it,
 * as text or JSON, and as Prometheus' text format for `metrics`. Pure: no
 * process, no clock; tests/unit/test_status.c pins every byte, which the
 * integration tests and users' scrapers parse.
 */
#include <stddef.h>
#include <string.h>

#include "meter.h"
#include "status.h"

/* ---- the listeners' queues ---------------------------------------------- */

/* Listener i's queue summed over its sockets (the one all share, or each
 * slot's): returns how many had figures; *slots whether they are per slot,
 * *none why the first without figures has none. */
static size_t queue_sum(const struct status *s, size_t i,
			struct accept_queue *sum, int *slots, const char **none)
{
	size_t known = 0;

	*sum = (struct accept_queue){0};
	*slots = 0;
	*none = NULL;
	for (size_t k = 0; k < s->nqueues; k++) {
		const struct status_queue *q = &s->queues[k];

		if (q->listener != i)
			continue;
		*slots |= q->slot >= 0;
		if (q->none != NULL) {
			*none = *none ? *none : q->none;
			continue;
		}
		sum->queue += q->q.queue;
		sum->backlog += q->q.backlog;
		sum->drops += q->q.drops;
		known++;
	}
	return known;
}

static void text_figures(const struct accept_queue *q, struct ctl_reply *r)
{
	ctl_printf(r, "queue %u of %u, %u dropped\n", q->queue, q->backlog,
		   q->drops);
}

/* "listen   ADDR  queue Q of B, D dropped", then a line per slot socket. */
static void text_listener(const struct status *s, size_t i, struct ctl_reply *r)
{
	struct accept_queue sum;
	const char *none;
	int slots;

	ctl_printf(r, "listen   %s  ", s->listen[i]);
	if (queue_sum(s, i, &sum, &slots, &none) > 0)
		text_figures(&sum, r);
	else
		ctl_printf(r, "(no queue: %s)\n", none ? none : "no socket");
	for (size_t k = 0; slots && k < s->nqueues; k++) {
		const struct status_queue *q = &s->queues[k];

		if (q->listener != i)
			continue;
		ctl_printf(r, "         slot %-3d ", q->slot);
		if (q->none == NULL)
			text_figures(&q->q, r);
		else
			ctl_printf(r, "(no queue: %s)\n", q->none);
	}
}

/* "queue":Q,"backlog":B,"drops":D, or nulls when there are no figures. */
static void json_figures(const struct accept_queue *q, struct ctl_reply *r)
{
	if (q == NULL)
		ctl_printf(r, "\"queue\":null,\"backlog\":null,\"drops\":null");
	else
		ctl_printf(r, "\"queue\":%u,\"backlog\":%u,\"drops\":%u",
			   q->queue, q->backlog, q->drops);
}

/* {"address":A,"queue":Q,"backlog":B,"drops":D[,"slots":[...]]} */
static void json_listener(const struct status *s, size_t i, struct ctl_reply *r)
{
	struct accept_queue sum;
	const char *none;
	int slots, first = 1;
	size_t known = queue_sum(s, i, &sum, &slots, &none);

	ctl_printf(r, "%s{\"address\":", i ? "," : "");
	ctl_json_string(r, s->listen[i]);
	ctl_printf(r, ",");
	json_figures(known ? &sum : NULL, r);
	if (slots)
		ctl_printf(r, ",\"slots\":[");
	for (size_t k = 0; slots && k < s->nqueues; k++) {
		const struct status_queue *q = &s->queues[k];

		if (q->listener != i)
			continue;
		ctl_printf(r, "%s{\"slot\":%d,", first ? "" : ",", q->slot);
		json_figures(q->none ? NULL : &q->q, r);
		ctl_printf(r, "}");
		first = 0;
	}
	ctl_printf(r, "%s}", slots ? "]" : "");
}

/* ---- status, as text and JSON ------------------------------------------- */

int status_adaptive(const struct status *s)
{
	return s->pool.max > s->pool.min;
}

static void text_master(const struct status *s, struct ctl_reply *r)
{
	ctl_printf(r,
		   "master   pid %d, herd %s, up %llu s, mode %s, %d "
		   "workers, generation %u%s, %u reloads\n",
		   s->pid, s->version, (unsigned long long)s->uptime_ms / 1000,
		   s->mode, s->workers, s->gen,
		   s->pending ? " (next starting)" : "", s->reloads);
	if (status_adaptive(s)) {
		ctl_printf(r,
			   "pool     adaptive %d:%d, idle timeout %.1f s, "
			   "grown %lu, shrunk %lu times",
			   s->pool.min, s->pool.max,
			   (double)s->pool.idle_ms / 1000, s->pool.grown,
			   s->pool.shrunk);
		if (s->pool.last != NULL)
			ctl_printf(r, "; last %.1f s ago: %s",
				   (double)s->pool.last_ago_ms / 1000,
				   s->pool.last);
		ctl_printf(r, "\n");
	}
	for (size_t i = 0; i < s->nlisten; i++)
		text_listener(s, i, r);
	ctl_printf(r, "%-5s %-8s %-4s %-9s %9s %8s %7s %9s %9s\n", "slot",
		   "pid", "gen", "state", "uptime_s", "restarts", "active",
		   "total", "rss_kib");
}

void status_text(const struct status *s, struct ctl_reply *r)
{
	text_master(s, r);
	for (size_t i = 0; i < s->nprocs; i++) {
		const struct status_worker *w = &s->procs[i];

		ctl_printf(r, "%-5d %-8d %-4u %-9s %9llu %8u %7u %9llu %9lu\n",
			   w->slot, w->pid, w->gen, w->state,
			   (unsigned long long)w->uptime_ms / 1000, w->restarts,
			   w->active, (unsigned long long)w->total, w->rss_kib);
	}
	for (size_t i = 0; i < s->nbackoff; i++) {
		const struct status_backoff *b = &s->backoff[i];

		ctl_printf(r,
			   "%-5d %-8s %-4s %-9s next start in %llu ms, %u "
			   "restarts\n",
			   b->slot, "-", "-", "backoff",
			   (unsigned long long)b->next_start_ms, b->restarts);
	}
}

/* Every string through ctl_json_string(): addresses are the user's text. */
static void json_master(const struct status *s, struct ctl_reply *r)
{
	ctl_printf(r, "{\"pid\":%d,\"version\":", s->pid);
	ctl_json_string(r, s->version);
	ctl_printf(r, ",\"uptime_ms\":%llu,\"mode\":",
		   (unsigned long long)s->uptime_ms);
	ctl_json_string(r, s->mode);
	ctl_printf(r,
		   ",\"workers\":%d,\"generation\":%u,\"pending\":%u,"
		   "\"reloads\":%u,\"relays\":%lu,\"relays_closed\":%lu,"
		   "\"listen\":[",
		   s->workers, s->gen, s->pending, s->reloads, s->relays,
		   s->relays_closed);
	for (size_t i = 0; i < s->nlisten; i++) {
		ctl_printf(r, "%s", i ? "," : "");
		ctl_json_string(r, s->listen[i]);
	}
	ctl_printf(r, "],\"listeners\":[");
	for (size_t i = 0; i < s->nlisten; i++)
		json_listener(s, i, r);
	if (s->overflows_known)
		ctl_printf(r, "],\"listen_overflows\":%llu,\"procs\":[",
			   s->listen_overflows);
	else
		ctl_printf(r, "],\"listen_overflows\":null,\"procs\":[");
}

static void json_worker(const struct status_worker *w, int first,
			struct ctl_reply *r)
{
	ctl_printf(r, "%s{\"slot\":%d,\"pid\":%d,\"generation\":%u,\"state\":",
		   first ? "" : ",", w->slot, w->pid, w->gen);
	ctl_json_string(r, w->state);
	ctl_printf(r,
		   ",\"uptime_ms\":%llu,\"restarts\":%u,\"active\":%u,"
		   "\"total\":%llu,\"rss_kib\":%lu,\"cpu_ms\":%llu}",
		   (unsigned long long)w->uptime_ms, w->restarts, w->active,
		   (unsigned long long)w->total, w->rss_kib,
		   (unsigned long long)w->cpu_ms);
}

/* The last reloads and upgrades, newest first (history.h). */
static void json_reloads(const struct status *s, struct ctl_reply *r)
{
	const struct attempt *a;

	ctl_printf(r, ",\"recent_reloads\":[");
	for (size_t i = 0;
	     s->history != NULL && (a = history_nth(s->history, i)) != NULL;
	     i++) {
		uint64_t end = a->ended != 0 ? a->ended : s->now_ms;

		ctl_printf(r,
			   "%s{\"generation\":%u,\"upgrade\":%s,\"state\":"
			   "\"%s\",\"seconds\":%.3f,\"why\":",
			   i ? "," : "", a->gen, a->upgrade ? "true" : "false",
			   attempt_state_name(a->state),
			   (double)(end - a->started) / 1000.0);
		ctl_json_string(r, a->why);
		ctl_printf(r, "}");
	}
	ctl_printf(r, "]");
}

/* The last crashes, newest first, as the log said them. */
static void json_crashes(const struct status *s, struct ctl_reply *r)
{
	const struct crash *c;

	ctl_printf(r, ",\"recent_crashes\":[");
	for (size_t i = 0;
	     s->crashes != NULL && (c = crash_nth(s->crashes, i)) != NULL;
	     i++) {
		ctl_printf(r, "%s{\"ago_ms\":%llu,\"what\":", i ? "," : "",
			   (unsigned long long)(s->now_ms - c->at));
		ctl_json_string(r, c->what);
		ctl_printf(r, "}");
	}
	ctl_printf(r, "]");
}

/* "pool": the bounds, the adaptive pool's last decision; then
 * "load_history", a point per METER_EVERY_MS, oldest first. */
static void json_pool(const struct status *s, struct ctl_reply *r)
{
	const struct status_pool *p = &s->pool;
	const struct meter *mt = p->meter;

	ctl_printf(r,
		   ",\"pool\":{\"min\":%d,\"max\":%d,\"adaptive\":%s,"
		   "\"idle_timeout_ms\":%llu,\"grown\":%lu,\"shrunk\":%lu,"
		   "\"last\":",
		   p->min, p->max, status_adaptive(s) ? "true" : "false",
		   (unsigned long long)p->idle_ms, p->grown, p->shrunk);
	if (p->last != NULL) {
		ctl_json_string(r, p->last);
		ctl_printf(r, ",\"last_ago_ms\":%llu}",
			   (unsigned long long)p->last_ago_ms);
	} else {
		ctl_printf(r, "null,\"last_ago_ms\":null}");
	}
	ctl_printf(r, ",\"load_history\":[");
	for (size_t i = 0; mt != NULL && i < mt->n; i++) {
		const struct meter_point *pt = meter_point(mt, i);

		ctl_printf(r,
			   "%s{\"ago_ms\":%llu,\"workers\":%d,\"ready\":%d,"
			   "\"active\":%u,\"queued\":%u,\"cpu_permille\":",
			   i ? "," : "",
			   (unsigned long long)(s->now_ms - pt->at),
			   pt->workers, pt->ready, pt->active, pt->queued);
		if (pt->cpu < 0)
			ctl_printf(r, "null}");
		else
			ctl_printf(r, "%d}", pt->cpu);
	}
	ctl_printf(r, "]");
}

/* Workers and backing-off slots are one list, "procs". */
void status_json(const struct status *s, struct ctl_reply *r)
{
	json_master(s, r);
	for (size_t i = 0; i < s->nprocs; i++)
		json_worker(&s->procs[i], i == 0, r);
	for (size_t i = 0; i < s->nbackoff; i++)
		ctl_printf(r,
			   "%s{\"slot\":%d,\"state\":\"backoff\","
			   "\"restarts\":%u,\"next_start_ms\":%llu}",
			   s->nprocs || i ? "," : "", s->backoff[i].slot,
			   s->backoff[i].restarts,
			   (unsigned long long)s->backoff[i].next_start_ms);
	ctl_printf(r, "]");
	json_reloads(s, r);
	json_crashes(s, r);
	json_pool(s, r);
	ctl_printf(r, "}\n");
}

static void prometheus_workers(const struct status *s, struct ctl_reply *r)
{
	ctl_printf(r, "# HELP herd_workers Worker processes by state.\n"
		      "# TYPE herd_workers gauge\n");
	for (size_t k = 0; k < STATUS_NSTATES; k++)
		ctl_printf(r, "herd_workers{state=\"%s\"} %u\n",
			   s->states[k].state, s->states[k].n);
}

static void prometheus_pool(const struct status *s, struct ctl_reply *r)
{
	ctl_printf(
	    r,
	    "# HELP herd_workers_wanted Worker slots configured.\n"
	    "# TYPE herd_workers_wanted gauge\nherd_workers_wanted %d\n"
	    "# HELP herd_workers_min The pool's lower bound (-w MIN:MAX; a "
	    "fixed pool's size).\n"
	    "# TYPE herd_workers_min gauge\nherd_workers_min %d\n"
	    "# HELP herd_workers_max The pool's upper bound.\n"
	    "# TYPE herd_workers_max gauge\nherd_workers_max %d\n"
	    "# HELP herd_pool_resizes_total The adaptive pool's changes of "
	    "size.\n"
	    "# TYPE herd_pool_resizes_total counter\n"
	    "herd_pool_resizes_total{direction=\"grow\"} %lu\n"
	    "herd_pool_resizes_total{direction=\"shrink\"} %lu\n"
	    "# HELP herd_generation The generation serving.\n"
	    "# TYPE herd_generation gauge\nherd_generation %u\n"
	    "# HELP herd_restarts_total Serving workers that died and were "
	    "restarted.\n"
	    "# TYPE herd_restarts_total counter\nherd_restarts_total %lu\n"
	    "# HELP herd_reloads_total Reloads completed (upgrades "
	    "included).\n"
	    "# TYPE herd_reloads_total counter\nherd_reloads_total %u\n"
	    "# HELP herd_connections_active Connections open in workers, as "
	    "last reported.\n"
	    "# TYPE herd_connections_active gauge\n"
	    "herd_connections_active %llu\n"
	    "# HELP herd_connections_total Connections taken by workers, as "
	    "last reported.\n"
	    "# TYPE herd_connections_total counter\n"
	    "herd_connections_total %llu\n"
	    "# HELP herd_uptime_seconds Time since the master started.\n"
	    "# TYPE herd_uptime_seconds gauge\nherd_uptime_seconds %.3f\n",
	    s->workers, s->pool.min, s->pool.max, s->pool.grown, s->pool.shrunk,
	    s->gen, s->restarts, s->reloads, s->active, s->total,
	    (double)s->uptime_ms / 1000.0);
}

/* What the master itself lost. */
static void prometheus_losses(const struct status *s, struct ctl_reply *r)
{
	ctl_printf(r,
		   "# HELP herd_log_lines_lost_total Log lines the master "
		   "could not write (log full, blocked or too large).\n"
		   "# TYPE herd_log_lines_lost_total counter\n"
		   "herd_log_lines_lost_total %llu\n"
		   "# HELP herd_peer_fds_leaked_total fds peers sent that "
		   "could not be closed without blocking.\n"
		   "# TYPE herd_peer_fds_leaked_total counter\n"
		   "herd_peer_fds_leaked_total %lu\n"
		   "# HELP herd_reloads_abandoned_total Reloads given up: the "
		   "new generation was not ready in time, or did not start.\n"
		   "# TYPE herd_reloads_abandoned_total counter\n"
		   "herd_reloads_abandoned_total %u\n",
		   s->log_lines_lost, s->peer_fds_leaked, s->reloads_abandoned);
	ctl_printf(r,
		   "# HELP herd_connections_relayed_total Idle connections "
		   "draining workers relayed: passed to a serving worker, or "
		   "closed for want of one.\n"
		   "# TYPE herd_connections_relayed_total counter\n"
		   "herd_connections_relayed_total{outcome=\"passed\"} %lu\n"
		   "herd_connections_relayed_total{outcome=\"closed\"} %lu\n",
		   s->relays, s->relays_closed);
}

/* v as a label value: '\\', '"' and newlines escaped. */
static void prometheus_label(const char *v, struct ctl_reply *r)
{
	while (*v) {
		size_t n = strcspn(v, "\\\"\n");

		ctl_printf(r, "%.*s", (int)n, v);
		v += n;
		if (*v)
			ctl_printf(r, "\\%c", *v == '\n' ? 'n' : *v);
		v += *v != '\0';
	}
}

/* The per-socket families, a series per socket with figures: labelled
 * with the listener's address, and its slot in reuseport mode. */
static const struct {
	const char *name, *type, *help;
	size_t field; /* in struct accept_queue */
} queue_families[] = {
    {"herd_listen_queue", "gauge",
     "Connections waiting in a listening socket's accept queue (TCP_INFO), "
     "per slot in reuseport mode. Unix-domain listeners have no figures.",
     offsetof(struct accept_queue, queue)},
    {"herd_listen_backlog", "gauge",
     "The most connections that may wait in that queue: the backlog, as "
     "the kernel capped it (net.core.somaxconn).",
     offsetof(struct accept_queue, backlog)},
    {"herd_listen_drops_total", "counter",
     "SYNs and handshakes the kernel dropped at that socket (SO_MEMINFO), "
     "its queue full or out of memory; a client's retries count again.",
     offsetof(struct accept_queue, drops)},
};

static void prometheus_family(const struct status *s, size_t f,
			      struct ctl_reply *r)
{
	const char *name = queue_families[f].name;

	ctl_printf(r, "# HELP %s %s\n# TYPE %s %s\n", name,
		   queue_families[f].help, name, queue_families[f].type);
	for (size_t k = 0; k < s->nqueues; k++) {
		const struct status_queue *q = &s->queues[k];
		uint32_t v;

		if (q->none != NULL || q->listener >= s->nlisten)
			continue;
		memcpy(&v, (const char *)&q->q + queue_families[f].field,
		       sizeof(v));
		ctl_printf(r, "%s{listen=\"", name);
		prometheus_label(s->listen[q->listener], r);
		if (q->slot >= 0)
			ctl_printf(r, "\",slot=\"%d", q->slot);
		ctl_printf(r, "\"} %u\n", v);
	}
}

static void prometheus_queues(const struct status *s, struct ctl_reply *r)
{
	for (size_t f = 0; f < sizeof(queue_families) / sizeof(*queue_families);
	     f++)
		prometheus_family(s, f, r);
	if (!s->overflows_known)
		return;
	ctl_printf(r,
		   "# HELP herd_listen_overflows_total Connections refused "
		   "because an accept queue was full, counted by the kernel "
		   "for the whole network namespace (TcpExt ListenOverflows), "
		   "other servers' included: it counts no socket apart.\n"
		   "# TYPE herd_listen_overflows_total counter\n"
		   "herd_listen_overflows_total %llu\n",
		   s->listen_overflows);
}

/* Prometheus' text format (version 0.0.4). */
void status_prometheus(const struct status *s, struct ctl_reply *r)
{
	prometheus_workers(s, r);
	prometheus_pool(s, r);
	prometheus_losses(s, r);
	prometheus_queues(s, r);
}
