/*
 * passfd_child.c: a program for herd's passfd mode in C, one connection at
 * a time, on the helpers libherd gives such programs:
 *
 *   herd -m passfd -l 127.0.0.1:8080 -w 4 -- ./passfd_child
 *
 * Each connection is read up to the end of the request head and answered
 * "hello" (or, for /whoami, "pid=P slot=S gen=G"). A real program would
 * multiplex; the protocol is the same (docs/protocol.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "herd.h"

static void answer(int fd)
{
	char req[4096], body[128], resp[512];
	size_t got = 0;
	ssize_t n;
	int len;

	/* Connections come nonblocking; this simple program wants to wait. */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	while (got < sizeof(req) - 1 &&
	       (n = read(fd, req + got, sizeof(req) - 1 - got)) > 0) {
		got += (size_t)n;
		req[got] = '\0';
		if (strstr(req, "\r\n\r\n") != NULL)
			break;
	}
	if (got == 0)
		return;
	if (strncmp(req, "GET /whoami ", 12) == 0)
		snprintf(body, sizeof(body), "pid=%d slot=%s gen=%s\n",
			 (int)getpid(), getenv("HERD_SLOT"),
			 getenv("HERD_GENERATION"));
	else
		snprintf(body, sizeof(body), "hello\n");
	len = snprintf(resp, sizeof(resp),
		       "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n"
		       "Connection: close\r\n\r\n%s",
		       strlen(body), body);
	if (write(fd, resp, (size_t)len) != len)
		perror("passfd_child: write");
}

int main(void)
{
	int chan = herd_child_channel(), fd, r;
	unsigned long long total = 0;

	if (chan == -1) {
		fprintf(stderr, "passfd_child: no HERD_CHANNEL_FD; run me "
				"under herd -m passfd\n");
		return 2;
	}
	if (herd_child_ready(chan) == -1)
		perror("passfd_child: ready");
	while ((r = herd_child_recv(chan, &fd)) == 1) {
		/* Reported at once: flow control counts what was received. */
		herd_child_report(chan, 1, ++total);
		answer(fd);
		close(fd);
		herd_child_report(chan, 0, total);
	}
	if (r == -1)
		perror("passfd_child: recv");
	return r == -1;
}
