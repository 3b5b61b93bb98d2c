/*
 * mode.c: the three connection modes, side by side: what differs between
 * shared, reuseport and passfd, read in one place (mode.h says what each
 * member means).
 */
#include "master.h"

static int no_slot_sockets(struct master *m, int slot)
{
	(void)m;
	(void)slot;
	return 0;
}

static void nothing(struct master *m)
{
	(void)m;
}

const struct mode_ops mode_shared = {
    .name = "shared",
    .slot_open = no_slot_sockets,
    .steer = nothing,
    .dispatch = nothing,
};

const struct mode_ops mode_reuseport = {
    .name = "reuseport",
    .slot_open = slot_sockets_open,
    .steer = reuseport_steer,
    .dispatch = nothing,
    .slot_sockets = 1,
    .fds_slot = 1,
};

const struct mode_ops mode_passfd = {
    .name = "passfd",
    .slot_open = no_slot_sockets,
    .steer = nothing,
    .dispatch = passfd_dispatch,
    .passes = 1,
    .fds_base = LEFTOVER_MAX,
    .fds_worker = 1,
};

const struct mode_ops *mode_ops(herd_mode mode)
{
	static const struct mode_ops *const modes[] = {
	    [HERD_MODE_SHARED] = &mode_shared,
	    [HERD_MODE_REUSEPORT] = &mode_reuseport,
	    [HERD_MODE_PASSFD] = &mode_passfd,
	};

	if ((unsigned)mode >= sizeof(modes) / sizeof(modes[0]))
		return NULL;
	return modes[mode];
}
