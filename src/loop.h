/*
 * loop.h: the epoll event loop and its timers (the public half is in
 * herd.h). The master and every in-process worker run one each.
 */
#ifndef HERD_LOOP_H
#define HERD_LOOP_H

#include <stdint.h>

#include "herd.h"

herd_loop *loop_new(void);
/* Frees the loop and every timer still attached; closes the epoll fd. */
void loop_free(herd_loop *l);
/* Like herd_loop_add, with extra epoll flags (EPOLLEXCLUSIVE). */
int loop_add_flags(herd_loop *l, int fd, unsigned events, uint32_t flags,
		   herd_io_fn fn, void *arg);
/* Runs until loop_stop(); -1 only when epoll_wait itself fails. */
int loop_run(herd_loop *l);
void loop_stop(herd_loop *l);
/* Which turn of the loop this is: a new value after every epoll_wait. */
uint64_t loop_pass(const herd_loop *l);
/* Whether fd is registered. */
int loop_has(const herd_loop *l, int fd);
/* Drops fd's registration without EPOLL_CTL_DEL, for an fd about to be
 * closed whose close removes it from the epoll set: the caller holds the
 * only reference to its open file. (Should another reference live on, its
 * events carry a stale serial and are skipped.) */
void loop_forget(herd_loop *l, int fd);
uint64_t mono_ms(void);

#endif
