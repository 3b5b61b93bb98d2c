/*
 * reuseport.c: reuseport mode: each slot's own listening sockets, opened in
 * slot order and closed from the top, and the steering of new connections to
 * the slots that serve: by the eBPF program (ebpf.c), or where bpf() is
 * refused by the classic one (addr_steer).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ebpf.h"
#include "fdstore.h"
#include "log.h"
#include "master.h"

/* A slot's sockets join the eBPF program's map; its counters start at 0
 * when the sockets are new. Failing, the kernel's hash serves the slot's
 * share of the connections the program leaves to it. */
static void slot_publish(struct master *m, int slot, int fresh)
{
	herd *h = m->h;

	if (!ebpf_steer_active() || m->slots[slot].fds == NULL)
		return;
	if (fresh)
		ebpf_steer_reset(slot);
	for (size_t i = 0; i < h->naddrs; i++)
		if (h->addrs[i].reuseport && m->slots[slot].fds[i] >= 0 &&
		    ebpf_steer_socket(i, slot, m->slots[slot].fds[i]) == -1)
			log_warn("reuseport: slot %d on %s: cannot join the "
				 "steering program's map: %s",
				 slot, h->addrs[i].text, strerror(errno));
}

/* Whether the kernel resets, rather than migrates, the connections queued
 * on a closing listener (what the classic program cannot help). */
static int migrate_req_off(void)
{
	char v = '1';
	int fd =
	    open("/proc/sys/net/ipv4/tcp_migrate_req", O_RDONLY | O_CLOEXEC);

	if (fd == -1)
		return 0;
	if (read(fd, &v, 1) != 1)
		v = '1';
	close(fd);
	return v == '0';
}

/* Once, before the first worker is forked (the counters are mapped shared
 * and the workers inherit them): the eBPF program, or the classic one,
 * said in the log. The slots an upgrade handed over join the map. */
static void steer_setup(struct master *m)
{
	static int done;
	herd *h = m->h;

	if (done++)
		return;
	if (ebpf_steer_init(h, !h->kind->execs) == -1) {
		log_warn("reuseport: no eBPF steering (bpf: %s); the classic "
			 "program picks at random among ready slots%s",
			 strerror(errno),
			 migrate_req_off() ? ", and net.ipv4.tcp_migrate_req "
					     "is 0: scaling down resets what "
					     "is queued on a retired slot (set "
					     "it to 1 to have it moved)"
					   : "");
		return;
	}
	log_info("reuseport: eBPF steering: the less loaded of two ready "
		 "slots%s; a closing slot's connections migrate to a ready "
		 "one, whatever net.ipv4.tcp_migrate_req says",
		 h->kind->execs ? " (programs: at random, their accepts "
				  "are not counted)"
				: "");
	for (int s = 1; s < MAX_WORKERS; s++)
		slot_publish(m, s, 0);
}

void slot_sockets_close(struct master *m, int slot)
{
	struct slot_state *s = &m->slots[slot];

	if (s->fds == NULL)
		return;
	for (size_t i = 0; i < m->h->naddrs; i++) {
		char name[FDSTORE_NAME_MAX];

		if (s->fds[i] < 0)
			continue;
		fdstore_slot_name(i, slot, name, sizeof(name));
		fdstore_remove(name);
		close(s->fds[i]);
	}
	free(s->fds);
	s->fds = NULL;
}

/* Slot's socket on the i-th address: the one the fd store gave back, with
 * its backlog, or a new one, which goes to the store. */
static int slot_socket(herd *h, size_t i, int slot)
{
	int fd = fdstore_take_slot(i, slot);
	char name[FDSTORE_NAME_MAX];

	if (fd >= 0 && addr_matches(&h->addrs[i], fd) &&
	    fd_blocking(fd, 0) == 0 &&
	    addr_defer_accept(&h->addrs[i], fd) == 0) {
		log_info("slot %d: listening on %s (from the fd store)", slot,
			 h->addrs[i].text);
		return fd;
	}
	if (fd >= 0) {
		log_warn("slot %d: the fd store's socket for %s is not that "
			 "address; binding a new one",
			 slot, h->addrs[i].text);
		close(fd);
	}
	if ((fd = addr_bind_another(&h->addrs[i])) >= 0) {
		fdstore_slot_name(i, slot, name, sizeof(name));
		fdstore_put(fd, name);
	}
	return fd;
}

static int slot_open_one(struct master *m, int slot)
{
	struct slot_state *s = &m->slots[slot];
	herd *h = m->h;

	if ((s->fds = malloc(h->naddrs * sizeof(int))) == NULL)
		return -1;
	for (size_t i = 0; i < h->naddrs; i++)
		s->fds[i] = -1;
	for (size_t i = 0; i < h->naddrs; i++) {
		if (!h->addrs[i].reuseport)
			continue;
		if ((s->fds[i] = slot_socket(h, i, slot)) == -1 ||
		    (h->kind->blocking && fd_blocking(s->fds[i], 1) == -1)) {
			int e = errno;

			log_error("slot %d: cannot listen on %s: %s", slot,
				  h->addrs[i].text, strerror(e));
			slot_sockets_close(m, slot);
			errno = e;
			return -1;
		}
	}
	return 0;
}

/* Slot 0 uses the sockets bound at start (with SO_REUSEPORT); every other
 * slot gets its own on the same addresses, kept across respawns and
 * reloads, so a slot's backlog outlives its worker. They are opened in
 * slot order, lower slots first, so that the kernel's index of a slot's
 * socket in the reuseport group is the slot's number (see addr_steer). */
int slot_sockets_open(struct master *m, int slot)
{
	steer_setup(m);
	for (int k = 1; k <= slot; k++) {
		if (m->slots[k].fds != NULL)
			continue;
		if (slot_open_one(m, k) == -1)
			return -1;
		slot_publish(m, k, 1);
	}
	return 0;
}

/* A retired slot's sockets close once no worker of the slot is left (the
 * steering sent it nothing new meanwhile), and only from the top slot
 * down: the kernel fills a closed socket's place in the group with the
 * last one, and the top one is the last, so index == slot still holds. */
void slot_sockets_retire(struct master *m)
{
	for (int s = MAX_WORKERS - 1; s >= m->nworkers && s > 0; s--) {
		if (m->slots[s].fds == NULL)
			continue;
		for (size_t i = 0; i < m->procs.n; i++)
			if (m->procs.v[i]->slot == s)
				return;
		slot_sockets_close(m, s); /* what is queued is reset */
	}
}

/* The classic program on each address's group; 0, or -1 when one could
 * not be attached (warned about once). */
static int steer_classic(struct master *m, const uint16_t *live, size_t n)
{
	herd *h = m->h;
	int failed = 0;

	for (size_t i = 0; i < h->naddrs; i++) {
		if (!h->addrs[i].reuseport ||
		    addr_steer(h->addrs[i].fd, live, n) == 0)
			continue;
		failed = -1;
		if (!m->steer_warned++)
			log_warn("reuseport: cannot steer connections on %s "
				 "(%s); the kernel spreads them over every "
				 "slot's socket",
				 h->addrs[i].text, strerror(errno));
	}
	return failed;
}

/* reuseport: new connections go only to the slots that have a ready
 * worker. A slot being retired, or whose worker died or is starting, gets
 * none, so nothing waits in its backlog; the kernel's own hash would give
 * every socket in the group its share. Before anything is ready, every
 * slot takes its share and the backlogs wait for the workers. The eBPF
 * program reads the ready slots from the shared map; the classic one is
 * rebuilt with them. */
void reuseport_steer(struct master *m)
{
	unsigned char ready[MAX_WORKERS] = {0};
	uint16_t live[MAX_WORKERS];
	size_t n = 0;
	int failed = 0;

	for (size_t i = 0; i < m->procs.n; i++)
		if (proc_info(m->procs.v[i]->state)->serving)
			ready[m->procs.v[i]->slot] = 1;
	for (int s = 0; s < m->nworkers; s++)
		if (ready[s])
			live[n++] = (uint16_t)s;
	for (int s = 0; n == 0 && s < m->nworkers; s++)
		live[s] = (uint16_t)s;
	if (n == 0)
		n = (size_t)m->nworkers;
	if (n == m->nsteer && memcmp(live, m->steer, n * sizeof(*live)) == 0)
		return;
	steer_setup(m);
	if (ebpf_steer_active())
		ebpf_steer_ready(live, n);
	else
		failed =
		    steer_classic(m, live, n); /* not recorded: tried again */
	memcpy(m->steer, live, n * sizeof(*live));
	m->nsteer = failed ? 0 : n;
	log_debug("reuseport: new connections go to %zu of %d slots", n,
		  m->nworkers);
}
