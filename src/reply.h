/*
 * reply.h: a control command's reply, built whole before it is sent (it
 * has no length field: it ends where the master closes the connection),
 * and the ways text goes into it: printf, an error that replaces it, a
 * JSON string, a client's own bytes made printable.
 */
#ifndef HERD_REPLY_H
#define HERD_REPLY_H

#include <stddef.h>

#define REPLY_MAX (1 << 20) /* beyond, what is appended is left out */

/* All zero: empty. buf is the caller's to free. */
struct ctl_reply {
	char *buf;
	size_t len, cap;
	int failed;
};

void ctl_printf(struct ctl_reply *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The reply is an error: fmt replaces whatever was written. */
void ctl_fail(struct ctl_reply *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* str as a JSON string, quotes included: '"', '\' and control characters
 * escaped, bytes that are not UTF-8 as U+FFFD. Every string in a JSON reply
 * goes through it: addresses are the user's text (unix:/tmp/a"b). */
void ctl_json_string(struct ctl_reply *r, const char *str);
/* s[0..n) with every byte outside printable ASCII as \xHH, and '\' as
 * "\\", for the client's words quoted in an error reply. */
void ctl_printable(struct ctl_reply *r, const char *s, size_t n);

#endif
