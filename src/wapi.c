/*
 * wapi.c: what the application may ask of its in-process worker
 * (herd_worker_*), read from the worker's state (worker.h).
 */
#include "internal.h"
#include "rights.h"
#include "worker.h"

herd_loop *herd_worker_loop(herd_worker *w)
{
	return w->loop;
}

int herd_worker_slot(const herd_worker *w)
{
	return w->slot;
}

pid_t herd_worker_pid(const herd_worker *w)
{
	return w->pid;
}

unsigned herd_worker_generation(const herd_worker *w)
{
	return w->gen;
}

int herd_worker_draining(const herd_worker *w)
{
	return w->draining;
}

herd_mode herd_worker_mode(const herd_worker *w)
{
	return w->h->mode;
}

herd_balance herd_worker_balance(const herd_worker *w)
{
	return w->h->balance;
}

void *herd_worker_userdata(const herd_worker *w)
{
	return w->h->ud;
}

int herd_worker_deferred(const herd_worker *w)
{
	return w->h->defer_accept;
}

unsigned herd_worker_active(const herd_worker *w)
{
	return w->active;
}

ssize_t herd_conn_recv(herd_worker *w, int fd, void *buf, size_t len)
{
	(void)w;
	return rights_recv(fd, buf, len, 0);
}
