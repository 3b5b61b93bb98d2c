/*
 * http_worker.h: the built-in HTTP worker that the herd CLI runs when it is
 * given no program. It answers GET and HEAD on "/" and "/whoami" with
 * keep-alive, pipelining, timeouts and graceful draining.
 */
#ifndef HERD_HTTP_WORKER_H
#define HERD_HTTP_WORKER_H

#include "herd.h"

/* Registers the worker's start, connection, drain and stop callbacks on h.
 * It uses no userdata, so h's userdata stays free for the caller. */
void http_worker_install(herd *h);

#endif
