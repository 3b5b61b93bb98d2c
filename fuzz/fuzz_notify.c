/* fuzz_notify.c: libFuzzer target for sdnotify_parse(), which reads the
 * datagrams children send to --notify's socket. Checked: no crash, and a
 * STATUS= points inside the message, NUL-terminated where it says. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1);
	struct sd_note n;

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	sdnotify_parse(buf, size, &n);
	if (n.status != NULL &&
	    (n.status < buf || n.status + n.status_len > buf + size ||
	     n.status[n.status_len] != '\0'))
		abort();
	free(buf);
	return 0;
}
