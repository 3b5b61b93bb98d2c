/*
 * control.h: the control socket (--control PATH) that `herd ctl` talks to.
 * A unix stream socket, mode 0600, checked per connection with SO_PEERCRED
 * (root or the master's own uid); one command line in, one reply out:
 * "ok" or "error: why" on the first line, then the body. Never blocks the
 * master: a client that is slow to send or to read is cut off.
 */
#ifndef HERD_CONTROL_H
#define HERD_CONTROL_H

#include <stddef.h>

#include "herd.h"
#include "reply.h"

#define CONTROL_LINE_MAX 512

struct control;

/* Runs one command: cmd is the first word, args the rest (may be ""). */
typedef void (*control_fn)(void *arg, const char *cmd, const char *args,
			   struct ctl_reply *r);

/* Creates the socket at path (a stale file is replaced, a live herd's
 * refused; a missing directory is created 0700). NULL with a message in
 * err on failure. */
struct control *control_open(herd_loop *l, const char *path, control_fn fn,
			     void *arg, char *err, size_t errlen);
/* The same commands' "metrics" over HTTP (--metrics ADDR): GET /metrics
 * on lfd, a listening socket it takes; anyone who can connect may read. */
struct control *control_open_http(herd_loop *l, int lfd, control_fn fn,
				  void *arg, char *err, size_t errlen);
/* Closes it and removes its file. */
void control_close(struct control *c);
/* In a new worker: frees the memory, touching neither fds nor file. */
void control_forget(struct control *c);
/* Its listening fd, for a binary upgrade to hand over. */
int control_fd(const struct control *c);

/* Splits a command line in place: *cmd its first word, *args the rest,
 * both without surrounding blanks or the line's end. Pure; fuzzed. */
void control_split(char *line, char **cmd, char **args);

#endif
