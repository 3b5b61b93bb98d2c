/* fuzz_channel.c: libFuzzer target for msg_decode(), the channel's
 * decoder, which sees whatever a worker (or a program speaking the passfd
 * protocol) writes. The first input byte picks the receiving end's type
 * mask, the recvmsg flags and how many fds came with the datagram (real
 * ones: dups of /dev/null, which the decoder must close on refusal); the
 * rest is the datagram. Checked: never a crash, and every fd either
 * returned in a message or closed. */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int devnull = -1;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t masks[] = {MSG_TO_WORKER, MSG_TO_MASTER,
					 MSG_TO_PEER, 0xffffffffu};
	int fds[MSG_MAX_FDS], nfds, flags = 0;
	struct msg m;
	enum msg_error e;

	if (size < 1)
		return 0;
	if (devnull < 0 && (devnull = open("/dev/null", O_RDONLY)) < 0)
		abort();
	nfds = data[0] & 3;
	if (data[0] & 4)
		flags |= MSG_TRUNC;
	if (data[0] & 8)
		flags |= MSG_CTRUNC;
	for (int i = 0; i < nfds; i++)
		if ((fds[i] = dup(devnull)) < 0)
			abort();
	e = msg_decode(data + 1, size - 1, flags, fds, nfds, data[0] & 16,
		       masks[(data[0] >> 5) & 3], &m);
	if (e == MSG_OK) {
		if (m.nfds < 0 || m.nfds > MSG_MAX_FDS || m.hdr.len > size)
			abort();
		for (int i = 0; i < m.nfds; i++)
			close(m.fds[i]);
	} else {
		/* refused: the decoder closed them all */
		for (int i = 0; i < nfds; i++)
			if (fcntl(fds[i], F_GETFD) != -1)
				abort();
	}
	return 0;
}
