/*
 * herd.c: the herd object itself: its creation and release, the error
 * message a failed call leaves in it, and herd_ncpu() (the pool size when
 * none is set). Its configuration is config.c's, herd_run()'s start-up
 * boot.c's.
 */
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"
#include "kind.h"
#include "log.h"
#include "mode.h"

herd *herd_new(void)
{
	herd *h = calloc(1, sizeof(*h));

	if (h == NULL)
		return NULL;
	h->shutdown_ms = 10000;
	h->log_level = HERD_LOG_INFO;
	h->ready_delay_ms = 1000;
	h->upgrade_timeout_ms = 30000;
	h->stop_signal = SIGTERM;
	h->conn = mode_ops(h->mode);
	h->kind = &kind_inproc; /* until herd_set_program() */
	return h;
}

void argv_free(char **argv)
{
	for (char **a = argv; a != NULL && *a != NULL; a++)
		free(*a);
	free(argv);
}

void herd_free(herd *h)
{
	if (h == NULL)
		return;
	for (size_t i = 0; i < h->naddrs; i++)
		addr_close(&h->addrs[i]);
	free(h->pid_file);
	free(h->control_path);
	free(h->log_file);
	free(h->groups);
	free(h->user);
	argv_free(h->argv);
	argv_free(h->upgrade_argv);
	free(h->upgrade_path);
	if (h->resume != NULL) {
		upgrade_free(h->resume);
		free(h->resume);
	}
	free(h);
}

const char *herd_error(const herd *h)
{
	return h->err;
}

int herd_ncpu(void)
{
	cpu_set_t set;
	long n;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

int start_fail(herd *h, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(h->err, sizeof(h->err), fmt, ap);
	va_end(ap);
	log_error("%s", h->err);
	return -1;
}
