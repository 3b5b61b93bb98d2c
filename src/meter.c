/*
 * meter.c: the pool's load, sampled; the adaptive pool applied (meter.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "load.h"
#include "log.h"
#include "master.h"
#include "meter.h"
#include "rss.h"

/* ---- pressure stall information ---------------------------------------- */

static ssize_t read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd == -1)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

/* herd's cgroup (v2) where it has pressure files, else the system's. */
static const char *psi_dir(void)
{
	static char dir[512];
	char text[1024], probe[600];
	const char *p;

	if (dir[0] != '\0')
		return dir;
	snprintf(dir, sizeof(dir), "/proc/pressure/");
	if (read_small("/proc/self/cgroup", text, sizeof(text)) <= 0 ||
	    (p = strstr(text, "0::/")) == NULL || (p != text && p[-1] != '\n'))
		return dir;
	p += 3;
	text[strcspn(text, "\n") + (size_t)(p - text)] = '\0';
	snprintf(probe, sizeof(probe), "/sys/fs/cgroup%.500s%scpu.pressure", p,
		 p[strlen(p) - 1] == '/' ? "" : "/");
	if (strcmp(p, "/") != 0 && access(probe, R_OK) == 0)
		snprintf(dir, sizeof(dir), "%.*s", (int)(strlen(probe) - 12),
			 probe);
	return dir;
}

/* The kind avg10 figure of a pressure file at or past max: why, in buf. */
static const char *over(const char *file, const char *kind, double max,
			const char *what, char *buf, size_t len)
{
	char path[600], text[512];
	double v;

	snprintf(path, sizeof(path), "%s%s", psi_dir(), file);
	if (read_small(path, text, sizeof(text)) <= 0 ||
	    (v = psi_avg10(text, kind)) < max)
		return NULL;
	snprintf(buf, len, "%s %.0f%% of the last 10 s (%s)", what, v, path);
	return buf;
}

const char *psi_check(char *buf, size_t len)
{
	const char *why =
	    over("cpu", "some", PSI_CPU_SOME_MAX,
		 "CPU pressure: tasks waited for a CPU", buf, len);

	return why != NULL ? why
			   : over("memory", "full", PSI_MEMORY_FULL_MAX,
				  "memory pressure: every task stalled on "
				  "memory",
				  buf, len);
}

/* ---- sampling ------------------------------------------------------------ */

static uint32_t queue_of(int fd)
{
	struct accept_queue q;

	return fd >= 0 && listen_queue(fd, &q) == 0 ? q.queue : 0;
}

static uint32_t queued(const struct master *m)
{
	const herd *h = m->h;
	uint32_t n = 0;

	for (size_t i = 0; i < h->naddrs; i++) {
		if (h->addrs[i].sa.ss_family == AF_UNIX)
			continue;
		n += queue_of(h->addrs[i].fd);
		if (!h->addrs[i].reuseport)
			continue;
		for (int sl = 1; sl < MAX_WORKERS; sl++)
			if (m->slots[sl].fds != NULL)
				n += queue_of(m->slots[sl].fds[i]);
	}
	return n;
}

/* What a worker holds when it is busy, or 0 when herd cannot tell. */
static unsigned capacity(const struct master *m)
{
	if (m->h->max_conns > 0)
		return m->h->max_conns;
	return m->h->conn->passes && m->h->argv != NULL ? 1 : 0;
}

static int counted(const struct master *m, const struct proc *p)
{
	return p->load_slot != 0 || m->h->conn->passes;
}

static void take_sample(struct master *m, struct pool_sample *s, uint64_t now,
			uint32_t *active, int *cpu_sum)
{
	unsigned cap = capacity(m);
	int cpu_n = 0, fresh;

	*s = (struct pool_sample){.now = now,
				  .workers = m->nworkers,
				  .min = m->meter.min,
				  .max = m->meter.max,
				  .room = master_max_workers(m->h),
				  .reloading =
				      m->pending != 0 || m->check_pid != 0,
				  .busy = cap > 0 ? 0 : -1};
	*active = 0;
	*cpu_sum = -1;
	for (size_t i = 0; i < m->procs.n; i++) {
		struct proc *p = m->procs.v[i];
		uint64_t held;

		load_sync(p);
		*active += p->active;
		fresh = p->rss_at != 0 && p->rss_at + 2 * RSS_CHECK_MS > now;
		if (fresh)
			*cpu_sum = (*cpu_sum < 0 ? 0 : *cpu_sum) +
				   (int)p->cpu_permille;
		if (p->gen != m->gen)
			continue;
		if (p->state == PS_STARTING) {
			s->starting++;
			continue;
		}
		if (!proc_info(p->state)->serving)
			continue;
		s->ready++;
		held = p->active + proc_inflight(p);
		if (s->busy >= 0 && counted(m, p) && held >= cap)
			s->busy++;
		if (fresh && p->started + RSS_CHECK_MS <= p->rss_at) {
			s->cpu =
			    (cpu_n == 0 ? 0 : s->cpu) + (int)p->cpu_permille;
			cpu_n++;
		}
	}
	s->cpu = cpu_n > 0 ? s->cpu / cpu_n : -1;
	s->queued = queued(m);
	for (int sl = 0; sl < m->nworkers; sl++)
		if (m->slots[sl].not_before > now)
			s->backing_off = 1;
}

/* ---- history ------------------------------------------------------------- */

/* The sample into the point being gathered, which is kept once it spans
 * METER_EVERY_MS; the next one starts from this tick. */
static void gather(struct meter *mt, const struct pool_sample *s,
		   uint32_t active, int cpu)
{
	struct meter_point *a = &mt->acc;

	if (mt->acc_since == 0) { /* the first tick */
		mt->acc_since = s->now;
		*a = (struct meter_point){.cpu = -1};
	}
	a->active = active > a->active ? active : a->active;
	a->queued = s->queued > a->queued ? s->queued : a->queued;
	a->cpu = cpu > a->cpu ? cpu : a->cpu;
	a->workers = s->workers;
	a->ready = s->ready;
	if (s->now - mt->acc_since + AUTOSCALE_TICK_MS / 2 < METER_EVERY_MS)
		return;
	a->at = s->now;
	if (mt->n < METER_POINTS)
		mt->hist[(mt->head + mt->n++) % METER_POINTS] = *a;
	else {
		mt->hist[mt->head] = *a;
		mt->head = (mt->head + 1) % METER_POINTS;
	}
	mt->acc_since = s->now;
	*a = (struct meter_point){.cpu = -1};
}

const struct meter_point *meter_point(const struct meter *mt, size_t i)
{
	return &mt->hist[(mt->head + i) % METER_POINTS];
}

/* ---- the adaptive pool --------------------------------------------------- */

static void resize(struct master *m, struct pool_sample *s)
{
	struct meter *mt = &m->meter;
	struct scale_decision d;
	char pressure[256];

	/* The pressure files are read only when a growth may follow. */
	if (s->queued > 0 || s->busy >= s->ready || s->cpu >= CPU_BUSY_PERMILLE)
		s->pressure = psi_check(pressure, sizeof(pressure));
	autoscale_decide(&mt->as, s, &d);
	if (d.verdict == SCALE_REFUSE) {
		if (d.say) {
			log_warn("workers: %d: %s", s->workers, d.why);
			snprintf(mt->last, sizeof(mt->last), "%d: %.160s",
				 s->workers, d.why);
			mt->last_at = s->now;
		}
		return;
	}
	if (d.verdict == SCALE_STAY || scale_to(m, d.to, d.why) != NULL)
		return;
	snprintf(mt->last, sizeof(mt->last), "%d -> %d: %.160s", s->workers,
		 m->nworkers, d.why);
	mt->last_at = s->now;
	if (m->nworkers > s->workers)
		mt->grown++;
	else
		mt->shrunk++;
	/* The planner starts or drains workers to match, now: the master
	 * may have no other event for a while. */
	reconcile(m);
}

static void on_tick(herd_loop *l, herd_timer *t, void *arg)
{
	struct master *m = arg;
	struct pool_sample s;
	uint32_t active;
	int cpu;

	(void)l;
	if (m->state != M_RUNNING)
		return; /* stopping: nothing to size, and no tick again */
	take_sample(m, &s, herd_loop_now(m->loop), &active, &cpu);
	gather(&m->meter, &s, active, cpu);
	if (meter_adaptive(m))
		resize(m, &s);
	herd_timer_start(t, meter_adaptive(m) ? AUTOSCALE_TICK_MS
					      : METER_EVERY_MS);
}

int meter_adaptive(const struct master *m)
{
	return m->meter.max > m->meter.min;
}

void meter_bounds(struct master *m, int min, int max)
{
	struct meter *mt = &m->meter;
	int was = meter_adaptive(m);

	mt->min = min;
	mt->max = max;
	if (!was && meter_adaptive(m)) { /* ticks faster from now */
		autoscale_init(&mt->as, m->h->idle_ms, m->h->spawn_rate);
		herd_timer_start(mt->timer, AUTOSCALE_TICK_MS);
	}
}

int meter_start(struct master *m)
{
	struct meter *mt = &m->meter;
	const herd *h = m->h;

	if ((mt->timer = herd_timer_new(m->loop, on_tick, m)) == NULL)
		return -1;
	mt->min = h->workers;
	mt->max = h->workers_max > 0 ? h->workers_max : h->workers;
	autoscale_init(&mt->as, h->idle_ms, h->spawn_rate);
	if (meter_adaptive(m) && master_max_workers(h) < mt->max)
		log_warn("workers: -w %d:%d, but the fd limit (ulimit -n) "
			 "allows %d: the pool will not grow past that",
			 mt->min, mt->max, master_max_workers(h));
	herd_timer_start(mt->timer, meter_adaptive(m) ? AUTOSCALE_TICK_MS
						      : METER_EVERY_MS);
	return 0;
}
