/* badstart.c: a libherd program whose workers' start callback fails, for
 * the integration tests: herd must report it and stop, not respawn it
 * forever. Usage: badstart ADDR */
#include <stdio.h>

#include "herd.h"

static int on_start(herd_worker *w, void *ud)
{
	(void)ud;
	herd_log(HERD_LOG_ERROR, "slot %d: cannot open my configuration",
		 herd_worker_slot(w));
	return -1;
}

int main(int argc, char **argv)
{
	herd *h = herd_new();
	int rc;

	if (h == NULL || argc < 2 || herd_listen(h, argv[1]) == -1 ||
	    herd_set_workers(h, 2) == -1) {
		fprintf(stderr, "usage: badstart ADDR\n");
		herd_free(h);
		return 2;
	}
	herd_on_start(h, on_start);
	rc = herd_run(h);
	herd_free(h);
	return rc;
}
