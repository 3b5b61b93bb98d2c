/*
 * status.c: herd ctl status (text and JSON) and the Prometheus metrics, with
 * the RSS figures they show.
 */

#include "log.h"
#include "rights.h"
#include "rss.h"
#include "master.h"

static const char *mode_name(herd_mode mode)
{
	return mode == HERD_MODE_REUSEPORT ? "reuseport"
	       : mode == HERD_MODE_PASSFD  ? "passfd"
					   : "shared";
}

/* RSS is read while --max-rss, or a status asked in the last RSS_WATCH_MS,
 * needs it (rss.h). Returns when to look again. */
static int rss_needed(const struct master *m, uint64_t now)
{
	return m->h->max_rss_kib || now < m->rss_wanted;
}

uint64_t sample_rss(struct master *m, uint64_t now)
{
	if (!rss_needed(m, now))
		return UINT64_MAX;
	return rss_sample(&m->procs, now);
}

void status(struct master *m, int json, struct ctl_reply *r)
{
	struct proc *by_slot[MAX_WORKERS];
	uint64_t now = herd_loop_now(m->loop);
	herd *h = m->h;

	if (json) { /* every string through ctl_json_string() */
		ctl_printf(r, "{\"pid\":%d,\"version\":", (int)m->pid);
		ctl_json_string(r, HERD_VERSION);
		ctl_printf(r, ",\"uptime_ms\":%llu,\"mode\":",
			   (unsigned long long)(now - m->started));
		ctl_json_string(r, mode_name(h->mode));
		ctl_printf(r,
			   ",\"workers\":%d,\"generation\":%u,\"pending\":%u,"
			   "\"reloads\":%u,\"listen\":[",
			   m->nworkers, m->gen, m->pending, m->reloads);
		for (size_t i = 0; i < h->naddrs; i++) {
			ctl_printf(r, "%s", i ? "," : "");
			ctl_json_string(r, h->addrs[i].text);
		}
		ctl_printf(r, "],\"procs\":[");
	} else {
		ctl_printf(r,
			   "master   pid %d, herd %s, up %llu s, mode %s, %d "
			   "workers, generation %u%s, %u reloads\n",
			   (int)m->pid, HERD_VERSION,
			   (unsigned long long)(now - m->started) / 1000,
			   mode_name(h->mode), m->nworkers, m->gen,
			   m->pending ? " (next starting)" : "", m->reloads);
		for (size_t i = 0; i < h->naddrs; i++)
			ctl_printf(r, "listen   %s\n", h->addrs[i].text);
		ctl_printf(r, "%-5s %-8s %-4s %-9s %9s %8s %7s %9s %9s\n",
			   "slot", "pid", "gen", "state", "uptime_s",
			   "restarts", "active", "total", "rss_kib");
	}
	for (size_t i = 0; i < m->procs.n; i++) {
		const struct proc *p = m->procs.v[i];
		unsigned long long up = (now - p->started) / 1000;

		if (json) {
			ctl_printf(
			    r,
			    "%s{\"slot\":%d,\"pid\":%d,\"generation\":%u,"
			    "\"state\":",
			    i ? "," : "", p->slot, (int)p->pid, p->gen);
			ctl_json_string(r, proc_state_name(p->state));
			ctl_printf(
			    r,
			    ",\"uptime_ms\":%llu,\"restarts\":%u,\"active\":%u,"
			    "\"total\":%llu,\"rss_kib\":%lu}",
			    (unsigned long long)(now - p->started),
			    m->slots[p->slot].restarts, p->active,
			    (unsigned long long)p->total, p->rss_kib);
		} else
			ctl_printf(r,
				   "%-5d %-8d %-4u %-9s %9llu %8u %7u %9llu "
				   "%9lu\n",
				   p->slot, (int)p->pid, p->gen,
				   proc_state_name(p->state), up,
				   m->slots[p->slot].restarts, p->active,
				   (unsigned long long)p->total, p->rss_kib);
	}
	/* Slots of the serving generation with no worker: backing off. */
	proc_slots(&m->procs, m->gen, by_slot, m->nworkers);
	for (int s = 0; s < m->nworkers; s++) {
		if (by_slot[s] != NULL)
			continue;
		if (json)
			ctl_printf(
			    r,
			    "%s{\"slot\":%d,\"state\":\"backoff\","
			    "\"restarts\":%u,\"next_start_ms\":%llu}",
			    m->procs.n || s ? "," : "", s, m->slots[s].restarts,
			    (unsigned long long)(m->slots[s].not_before > now
						     ? m->slots[s].not_before -
							   now
						     : 0));
		else
			ctl_printf(
			    r,
			    "%-5d %-8s %-4s %-9s next start in %llu "
			    "ms, %u restarts\n",
			    s, "-", "-", "backoff",
			    (unsigned long long)(m->slots[s].not_before > now
						     ? m->slots[s].not_before -
							   now
						     : 0),
			    m->slots[s].restarts);
	}
	if (json)
		ctl_printf(r, "]}\n");
}

/* Prometheus' text format (version 0.0.4). */
void metrics(struct master *m, struct ctl_reply *r)
{
	static const enum proc_state states[] = {PS_STARTING, PS_READY,
						 PS_DRAINING, PS_STOPPING};
	unsigned long long total = m->gone_total, active = 0;

	ctl_printf(r, "# HELP herd_workers Worker processes by state.\n"
		      "# TYPE herd_workers gauge\n");
	for (size_t k = 0; k < sizeof(states) / sizeof(states[0]); k++) {
		unsigned n = 0;

		for (size_t i = 0; i < m->procs.n; i++)
			n += m->procs.v[i]->state == states[k];
		ctl_printf(r, "herd_workers{state=\"%s\"} %u\n",
			   proc_state_name(states[k]), n);
	}
	for (size_t i = 0; i < m->procs.n; i++) {
		total += m->procs.v[i]->total;
		active += m->procs.v[i]->active;
	}
	ctl_printf(
	    r,
	    "# HELP herd_workers_wanted Worker slots configured.\n"
	    "# TYPE herd_workers_wanted gauge\nherd_workers_wanted %d\n"
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
	    m->nworkers, m->gen, m->restarts, m->reloads, active, total,
	    (double)(herd_loop_now(m->loop) - m->started) / 1000.0);
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
		   log_lost_lines(), rights_leaked(), m->reloads_abandoned);
}

/* A status reads RSS figures sample_rss() keeps; the first one after a
 * quiet spell reads them all itself, and starts the sampling. */
void rss_watch(struct master *m)
{
	uint64_t now = herd_loop_now(m->loop);

	if (!rss_needed(m, now))
		rss_sample_all(&m->procs, now);
	m->rss_wanted = now + RSS_WATCH_MS;
	reconcile(m); /* arms the wake timer for sample_rss() */
}
