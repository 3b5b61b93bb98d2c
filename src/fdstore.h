/*
 * fdstore.h: herd's listening sockets in the service manager's file
 * descriptor store (systemd's FileDescriptorStoreMax=, offered as
 * $FDSTORE), so that a master that dies, or an upgrade that dies after its
 * check, refuses no connection: the sockets and their backlogs live on in
 * the store while the service manager starts herd again, and herd takes
 * them back by name (LISTEN_FDS, LISTEN_FDNAMES).
 *
 * Names: "herd.l.I" for the I-th -l address, "herd.s.I.S" for its socket
 * of reuseport slot S.
 */
#ifndef HERD_FDSTORE_H
#define HERD_FDSTORE_H

#include <stddef.h>

#define FDSTORE_NAME_MAX 32

enum fdstore_kind { FDSTORE_NOT_OURS, FDSTORE_LISTENER, FDSTORE_SLOT };

/* One of herd's sockets came back from the store: it is counted there. */
void fdstore_held(void);
/* Stores fd under name (no-op without a store); a failure is logged. */
void fdstore_put(int fd, const char *name);
/* Takes name out of the store, before herd closes that socket itself. */
void fdstore_remove(const char *name);
void fdstore_listener_name(size_t i, char *buf, size_t len);
void fdstore_slot_name(size_t i, int slot, char *buf, size_t len);
/* What a LISTEN_FDNAMES name is to herd: its listener i, its socket of
 * (i, slot), or not herd's. The name is len bytes, not NUL-terminated. */
enum fdstore_kind fdstore_parse(const char *name, size_t len, size_t *i,
				int *slot);
/* At the master's start: reads $FDSTORE, stores every listener herd bound
 * itself (a socket-activated one lives in its socket unit already), and
 * drops the kept slot sockets of slots from `slots` up. */
struct herd;
void fdstore_start(struct herd *h, int slots);
/* Slot sockets passed back, kept until their slot opens (reuseport.c). */
int fdstore_keep_slot(size_t i, int slot, int fd);
/* The kept socket of (i, slot), now the caller's, or -1. */
int fdstore_take_slot(size_t i, int slot);
/* Closes the kept sockets of slots from `from` up, highest first (a
 * reuseport group moves its last socket into a closed one's place), and
 * takes them out of the store. */
void fdstore_drop_slots(int from);

#endif
