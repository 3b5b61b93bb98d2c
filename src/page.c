/*
 * page.c: the status page that --metrics serves at "/": the snapshot
 * (status.h) as one self-contained HTML document (no script, font or
 * image from elsewhere: the charts are inline SVG) that asks the browser
 * to load it again every PAGE_REFRESH_S. Pure, as render.c: read-only by
 * construction, and a hand-made snapshot tests it (test_status.c).
 */
#include <stdint.h>
#include <string.h>

#include "meter.h"
#include "status.h"

#define PAGE_REFRESH_S 2
#define CHART_W	       600
#define CHART_H	       90
#define CHART_PAD      14 /* above and below the lines, for the labels */
#define CHART_SPAN_MS  ((uint64_t)METER_POINTS * METER_EVERY_MS)

/* Text in HTML, from anywhere (addresses and log lines are the user's). */
static void esc(struct ctl_reply *r, const char *s)
{
	for (; *s != '\0'; s++) {
		size_t n = strcspn(s, "&<>\"'");

		ctl_printf(r, "%.*s", (int)n, s);
		s += n;
		switch (*s) {
		case '&':
			ctl_printf(r, "&amp;");
			break;
		case '<':
			ctl_printf(r, "&lt;");
			break;
		case '>':
			ctl_printf(r, "&gt;");
			break;
		case '"':
			ctl_printf(r, "&quot;");
			break;
		case '\'':
			ctl_printf(r, "&#39;");
			break;
		default:
			return; /* the end */
		}
	}
}

static const char style[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}"
    "h1{font-size:1.3em;margin:0 0 .3em}h2{font-size:1.05em;margin:1.2em 0 "
    ".3em}table{border-collapse:collapse}td,th{padding:2px 10px;text-align:"
    "right;border-bottom:1px solid #ddd}th{background:#f3f3f3}td.l,th.l{"
    "text-align:left}.ok{color:#176117}.bad{color:#a11}.dim{color:#777}"
    "h3{font-size:.95em;margin:.6em 0 .2em}svg{background:#fafafa;border:1px "
    "solid #ddd}svg text{font-size:11px;fill:#777}.lg span{margin-right:"
    "1.2em}.k{display:inline-block;width:.9em;height:.9em;margin-right:"
    ".3em;vertical-align:-2px}";

static void head(const struct status *s, size_t ready, struct ctl_reply *r)
{
	ctl_printf(r,
		   "<!DOCTYPE html>\n<html lang=\"en\"><head><meta "
		   "charset=\"utf-8\"><meta http-equiv=\"refresh\" "
		   "content=\"%d\"><title>herd: %zu of %d workers ready"
		   "</title><style>%s</style></head><body>\n",
		   PAGE_REFRESH_S, ready, s->workers, style);
	ctl_printf(r,
		   "<h1>herd %s</h1><p>master pid %d, mode %s, up %llu s, "
		   "generation %u%s, %u reloads, %lu restarts</p>\n",
		   s->version, s->pid, s->mode,
		   (unsigned long long)s->uptime_ms / 1000, s->gen,
		   s->pending ? " (next starting)" : "", s->reloads,
		   s->restarts);
	ctl_printf(r,
		   "<p id=\"health\" class=\"%s\">%s: %zu of %d workers "
		   "ready",
		   ready > 0 ? "ok" : "bad",
		   ready > 0 ? "serving" : "not serving", ready, s->workers);
	if (status_adaptive(s))
		ctl_printf(r,
			   " (adaptive pool %d:%d, grown %lu and shrunk "
			   "%lu times)",
			   s->pool.min, s->pool.max, s->pool.grown,
			   s->pool.shrunk);
	ctl_printf(r, "</p>\n");
	if (s->pool.last != NULL) {
		ctl_printf(r, "<p>last size change %.1f s ago: ",
			   (double)s->pool.last_ago_ms / 1000);
		esc(r, s->pool.last);
		ctl_printf(r, "</p>\n");
	}
}

/* The four figures a chart draws, of a history point. */
static unsigned figure(const struct meter_point *p, int which)
{
	return which == 0   ? (unsigned)p->workers
	       : which == 1 ? (unsigned)p->ready
	       : which == 2 ? p->active
			    : p->queued;
}

/* The pool now, as a point at the right edge of the charts. */
static struct meter_point now_point(const struct status *s, size_t ready)
{
	struct meter_point p = {.at = s->now_ms,
				.workers = s->workers,
				.ready = (int)ready,
				.active = (uint32_t)s->active};

	for (size_t k = 0; k < s->nqueues; k++)
		p.queued += s->queues[k].none ? 0 : s->queues[k].q.queue;
	return p;
}

static void point(const struct status *s, const struct meter_point *p,
		  int which, unsigned top, struct ctl_reply *r)
{
	uint64_t ago = s->now_ms - p->at;

	if (ago <= CHART_SPAN_MS)
		ctl_printf(r, "%llu,%u ",
			   (unsigned long long)(CHART_W -
						ago * CHART_W / CHART_SPAN_MS),
			   CHART_H - CHART_PAD -
			       figure(p, which) * (CHART_H - 2 * CHART_PAD) /
				   top);
}

/* One series of the history and now as a polyline, x from the age of
 * each point (the right edge is now), y scaled to top. */
static void series(const struct status *s, const struct meter_point *now,
		   int which, unsigned top, const char *colour,
		   struct ctl_reply *r)
{
	const struct meter *mt = s->pool.meter;

	ctl_printf(r,
		   "<polyline fill=\"none\" stroke=\"%s\" "
		   "stroke-width=\"2\" points=\"",
		   colour);
	for (size_t i = 0; mt != NULL && i < mt->n; i++)
		point(s, meter_point(mt, i), which, top, r);
	point(s, now, which, top, r);
	ctl_printf(r, "\"/>");
}

static void chart(const struct status *s, const struct meter_point *now,
		  const char *title, int a, int b, struct ctl_reply *r)
{
	const struct meter *mt = s->pool.meter;
	static const char *names[] = {"workers wanted", "workers ready",
				      "connections open",
				      "connections waiting"};
	static const char *colours[] = {"#888", "#1a7f37", "#0b61a4",
					"#c2410c"};
	unsigned top = 1;

	for (size_t i = 0; mt != NULL && i <= mt->n; i++) {
		const struct meter_point *p =
		    i < mt->n ? meter_point(mt, i) : now;

		top = figure(p, a) > top ? figure(p, a) : top;
		top = figure(p, b) > top ? figure(p, b) : top;
	}
	ctl_printf(r,
		   "<h3>%s</h3><svg role=\"img\" width=\"%d\" height=\"%d\" "
		   "viewBox=\"0 0 %d %d\"><text x=\"4\" y=\"12\">%u</text>"
		   "<text x=\"4\" y=\"%d\">0</text><text x=\"%d\" y=\"%d\" "
		   "text-anchor=\"end\">%llu min ago ... now</text>",
		   title, CHART_W, CHART_H, CHART_W, CHART_H, top, CHART_H - 3,
		   CHART_W - 4, CHART_H - 3,
		   (unsigned long long)(CHART_SPAN_MS / 60000));
	series(s, now, a, top, colours[a], r);
	series(s, now, b, top, colours[b], r);
	ctl_printf(r,
		   "</svg><div class=\"lg\"><span><i class=\"k\" style=\""
		   "background:%s\"></i>%s</span><span><i class=\"k\" "
		   "style=\"background:%s\"></i>%s</span></div>\n",
		   colours[a], names[a], colours[b], names[b]);
}

static void workers(const struct status *s, struct ctl_reply *r)
{
	ctl_printf(r, "<h2>Workers</h2><table id=\"workers\"><tr><th>slot</th>"
		      "<th>pid</th><th>generation</th><th class=\"l\">state"
		      "</th><th>uptime s</th><th>restarts</th><th>active</th>"
		      "<th>total</th><th>RSS MiB</th><th>CPU s</th></tr>\n");
	for (size_t i = 0; i < s->nprocs; i++) {
		const struct status_worker *w = &s->procs[i];

		ctl_printf(r,
			   "<tr class=\"worker\"><td>%d</td><td>%d</td><td>%u"
			   "</td><td class=\"l\">%s</td><td>%llu</td><td>%u"
			   "</td><td>%u</td><td>%llu</td><td>%.1f</td><td>"
			   "%.2f</td></tr>\n",
			   w->slot, w->pid, w->gen, w->state,
			   (unsigned long long)w->uptime_ms / 1000, w->restarts,
			   w->active, (unsigned long long)w->total,
			   (double)w->rss_kib / 1024, (double)w->cpu_ms / 1000);
	}
	for (size_t i = 0; i < s->nbackoff; i++)
		ctl_printf(r,
			   "<tr><td>%d</td><td>-</td><td>-</td><td class=\"l "
			   "bad\">backoff: next start in %llu ms</td><td>"
			   "</td><td>%u</td><td></td><td></td><td></td><td>"
			   "</td></tr>\n",
			   s->backoff[i].slot,
			   (unsigned long long)s->backoff[i].next_start_ms,
			   s->backoff[i].restarts);
	ctl_printf(r, "</table>\n");
}

static void listeners(const struct status *s, struct ctl_reply *r)
{
	ctl_printf(r, "<h2>Listeners</h2><table id=\"listeners\"><tr><th "
		      "class=\"l\">address</th><th>slot</th><th>waiting</th>"
		      "<th>backlog</th><th>dropped</th></tr>\n");
	for (size_t k = 0; k < s->nqueues; k++) {
		const struct status_queue *q = &s->queues[k];

		if (q->listener >= s->nlisten)
			continue;
		ctl_printf(r, "<tr><td class=\"l\">");
		esc(r, s->listen[q->listener]);
		if (q->slot >= 0)
			ctl_printf(r, "</td><td>%d", q->slot);
		else
			ctl_printf(r, "</td><td>");
		if (q->none != NULL) {
			ctl_printf(r, "</td><td colspan=\"3\" class=\"dim\">");
			esc(r, q->none);
			ctl_printf(r, "</td></tr>\n");
		} else {
			ctl_printf(r,
				   "</td><td>%u</td><td>%u</td><td>%u</td>"
				   "</tr>\n",
				   q->q.queue, q->q.backlog, q->q.drops);
		}
	}
	ctl_printf(r, "</table>\n");
}

static void events(const struct status *s, struct ctl_reply *r)
{
	const struct attempt *a;
	const struct crash *c;

	ctl_printf(r, "<h2>Recent reloads</h2><table id=\"reloads\"><tr><th>"
		      "generation</th><th class=\"l\">kind</th><th class=\"l\">"
		      "outcome</th><th>seconds</th><th class=\"l\">why</th>"
		      "</tr>\n");
	for (size_t i = 0;
	     s->history != NULL && (a = history_nth(s->history, i)) != NULL;
	     i++) {
		uint64_t end = a->ended != 0 ? a->ended : s->now_ms;

		ctl_printf(r,
			   "<tr><td>%u</td><td class=\"l\">%s</td><td class="
			   "\"l %s\">%s</td><td>%.3f</td><td class=\"l\">",
			   a->gen, a->upgrade ? "upgrade" : "reload",
			   a->state == ATT_ABANDONED ? "bad" : "ok",
			   attempt_state_name(a->state),
			   (double)(end - a->started) / 1000.0);
		esc(r, a->why);
		ctl_printf(r, "</td></tr>\n");
	}
	ctl_printf(r,
		   "</table>\n<h2>Recent crashes</h2><table id=\"crashes\">"
		   "<tr><th>seconds ago</th><th class=\"l\">what</th></tr>\n");
	for (size_t i = 0;
	     s->crashes != NULL && (c = crash_nth(s->crashes, i)) != NULL;
	     i++) {
		ctl_printf(r, "<tr><td>%.1f</td><td class=\"l\">",
			   (double)(s->now_ms - c->at) / 1000);
		esc(r, c->what);
		ctl_printf(r, "</td></tr>\n");
	}
	ctl_printf(r, "</table>\n");
}

void status_html(const struct status *s, struct ctl_reply *r)
{
	struct meter_point now;
	size_t ready = 0;

	for (size_t i = 0; i < s->nprocs; i++)
		ready += s->procs[i].gen == s->gen &&
			 (strcmp(s->procs[i].state, "ready") == 0 ||
			  strcmp(s->procs[i].state, "replacing") == 0);
	now = now_point(s, ready);
	head(s, ready, r);
	ctl_printf(r,
		   "<h2>Load <span class=\"dim\">(a point every %d s)</span>"
		   "</h2>\n",
		   METER_EVERY_MS / 1000);
	chart(s, &now, "Workers", 0, 1, r);
	chart(s, &now, "Connections", 2, 3, r);
	workers(s, r);
	listeners(s, r);
	events(s, r);
	ctl_printf(r,
		   "<p class=\"dim\">Read-only. Also: <a href=\"/status."
		   "json\">/status.json</a>, <a href=\"/metrics\">/metrics"
		   "</a>, <a href=\"/healthz\">/healthz</a>. This page "
		   "reloads every %d s.</p>\n</body></html>\n",
		   PAGE_REFRESH_S);
}
