/*
 * ebpf.h: reuseport steering in the kernel's socket selection: an eBPF
 * program per address that picks the less loaded of two ready slots and
 * migrates a closing slot socket's connections to a ready one (ebpf.c).
 */
#ifndef HERD_EBPF_H
#define HERD_EBPF_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* Master: creates the maps (the counters mapped shared, so that workers
 * forked after inherit them), loads one program per reuseport address and
 * attaches it to the address's group through h->addrs[i].fd. Once: later
 * calls return what the first did. counted: workers count their accepts
 * (in-process workers), so the load can be told; else the choice is
 * random among the ready slots. Returns 0, or -1 with errno (bpf()
 * refused: the caller keeps the classic program). HERD_TEST_NO_EBPF in
 * the environment makes it fail with EPERM, for the tests. */
int ebpf_steer_init(herd *h, int counted);
/* Whether ebpf_steer_init() succeeded in this process. */
int ebpf_steer_active(void);
/* Master: slot's socket for address i takes connections the program picks
 * for the slot (a closed socket leaves the map by itself). -1 with errno. */
int ebpf_steer_socket(size_t addr, int slot, int fd);
/* Master: the slots that take new connections, n >= 1. */
void ebpf_steer_ready(const uint16_t *slots, size_t n);
/* Master: a slot whose sockets are new starts with no load. */
void ebpf_steer_reset(int slot);
/* Worker: a connection was accepted on lfd; counted against the slot's
 * load when lfd is one of its reuseport sockets. Cheap: an atomic add. */
void ebpf_steer_accepted(const herd *h, int slot, int lfd);

#endif
