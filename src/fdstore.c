/*
 * fdstore.c: herd's listening sockets in the service manager's fd store
 * (fdstore.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fdstore.h"
#include "internal.h"
#include "log.h"

static long store_max; /* $FDSTORE: what the store takes; 0: none */
static long stored;    /* sent to it so far */

/* Passed back and not yet reopened as a slot's socket. */
static struct kept {
	size_t i;
	int slot, fd;
} * kept;
static size_t nkept;

static void fdstore_open(void)
{
	const char *v = getenv("FDSTORE");
	char *end;
	long n;

	if (v == NULL)
		return;
	n = strtol(v, &end, 10);
	if (*end != '\0' || n < 0) {
		log_warn("FDSTORE='%s': not a count; not storing sockets", v);
		return;
	}
	store_max = n;
}

void fdstore_held(void)
{
	stored++;
}

void fdstore_put(int fd, const char *name)
{
	char text[64];

	if (store_max == 0)
		return;
	if (stored >= store_max) {
		if (stored++ == store_max)
			log_warn("fd store: full at %ld sockets "
				 "(FileDescriptorStoreMax=); %s and the "
				 "next are not kept",
				 store_max, name);
		return;
	}
	snprintf(text, sizeof(text), "FDSTORE=1\nFDNAME=%s", name);
	if (sdnotify_fd(fd, text) == -1) {
		log_warn("fd store: %s: %s", name, strerror(errno));
		return;
	}
	stored++;
}

void fdstore_remove(const char *name)
{
	if (store_max == 0)
		return;
	sdnotify("FDSTOREREMOVE=1\nFDNAME=%s", name);
	if (stored > 0)
		stored--;
}

void fdstore_start(herd *h, int slots)
{
	char name[FDSTORE_NAME_MAX];

	fdstore_open();
	fdstore_drop_slots(slots);
	for (size_t i = 0; i < h->naddrs; i++) {
		const struct listen_addr *a = &h->addrs[i];

		if (a->fd < 0 || a->inherited || a->stored)
			continue;
		fdstore_listener_name(i, name, sizeof(name));
		fdstore_put(a->fd, name);
	}
	if (store_max > 0)
		log_info("fd store: %ld of herd's sockets kept by the service "
			 "manager",
			 stored);
}

void fdstore_listener_name(size_t i, char *buf, size_t len)
{
	snprintf(buf, len, "herd.l.%zu", i);
}

void fdstore_slot_name(size_t i, int slot, char *buf, size_t len)
{
	snprintf(buf, len, "herd.s.%zu.%d", i, slot);
}

/* Digits only, then end or '.'; the number in *n, the rest returned. */
static const char *number(const char *s, const char *end, long *n)
{
	long v = 0;
	const char *p = s;

	for (; p < end && *p >= '0' && *p <= '9' && v < 100000; p++)
		v = v * 10 + (*p - '0');
	if (p == s || v >= 100000 || (p < end && *p != '.'))
		return NULL;
	*n = v;
	return p;
}

enum fdstore_kind fdstore_parse(const char *name, size_t len, size_t *i,
				int *slot)
{
	const char *end = name + len, *p;
	long a, b;

	if (len < 8 || memcmp(name, "herd.", 5) != 0 || name[6] != '.')
		return FDSTORE_NOT_OURS;
	if ((p = number(name + 7, end, &a)) == NULL)
		return FDSTORE_NOT_OURS;
	*i = (size_t)a;
	if (name[5] == 'l' && p == end)
		return FDSTORE_LISTENER;
	if (name[5] != 's' || p == end || number(p + 1, end, &b) != end ||
	    b < 1)
		return FDSTORE_NOT_OURS;
	*slot = (int)b;
	return FDSTORE_SLOT;
}

int fdstore_keep_slot(size_t i, int slot, int fd)
{
	struct kept *k = realloc(kept, (nkept + 1) * sizeof(*k));

	if (k == NULL)
		return -1;
	kept = k;
	kept[nkept++] = (struct kept){i, slot, fd};
	return 0;
}

int fdstore_take_slot(size_t i, int slot)
{
	for (size_t k = 0; k < nkept; k++) {
		if (kept[k].i == i && kept[k].slot == slot) {
			int fd = kept[k].fd;

			kept[k] = kept[--nkept];
			return fd;
		}
	}
	return -1;
}

void fdstore_drop_slots(int from)
{
	for (;;) {
		size_t top = nkept;
		char name[FDSTORE_NAME_MAX];

		for (size_t k = 0; k < nkept; k++)
			if (kept[k].slot >= from &&
			    (top == nkept || kept[k].slot > kept[top].slot))
				top = k;
		if (top == nkept)
			break;
		fdstore_slot_name(kept[top].i, kept[top].slot, name,
				  sizeof(name));
		log_info("fd store: slot %d's socket on listener %zu is not "
			 "used any more; closing it",
			 kept[top].slot, kept[top].i);
		fdstore_remove(name);
		close(kept[top].fd);
		kept[top] = kept[--nkept];
	}
	if (nkept == 0) {
		free(kept);
		kept = NULL;
	}
}
