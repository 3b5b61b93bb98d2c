/*
 * reply.c: building a control command's reply (reply.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "reply.h"

__attribute__((format(printf, 2, 0))) static void
vappend(struct ctl_reply *r, const char *fmt, va_list ap)
{
	va_list again;
	int n;

	va_copy(again, ap);
	n = vsnprintf(NULL, 0, fmt, again);
	va_end(again);
	if (n < 0 || r->len + (size_t)n + 1 > REPLY_MAX)
		return;
	if (r->len + (size_t)n + 1 > r->cap) {
		size_t cap = (r->len + (size_t)n + 1) * 2;
		char *b = realloc(r->buf, cap);

		if (b == NULL)
			return;
		r->buf = b;
		r->cap = cap;
	}
	vsnprintf(r->buf + r->len, (size_t)n + 1, fmt, ap);
	r->len += (size_t)n;
}

void ctl_printf(struct ctl_reply *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vappend(r, fmt, ap);
	va_end(ap);
}

void ctl_fail(struct ctl_reply *r, const char *fmt, ...)
{
	va_list ap;

	r->failed = 1;
	r->len = 0; /* the error replaces whatever was written */
	va_start(ap, fmt);
	vappend(r, fmt, ap);
	va_end(ap);
}

/* The length of the UTF-8 character at s, or 0 when the bytes there are
 * not one (a stray or missing continuation byte, an overlong form, a
 * surrogate, beyond U+10FFFF). Reads no further than the first bad byte,
 * so never past the string's NUL. */
static size_t utf8_char(const unsigned char *s)
{
	size_t n = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : 2;
	unsigned lo = 0x80, hi = 0xbf;

	if (s[0] < 0xc2 || s[0] > 0xf4)
		return 0;
	if (s[0] == 0xe0 || s[0] == 0xf0)
		lo = s[0] == 0xe0 ? 0xa0 : 0x90;
	if (s[0] == 0xed || s[0] == 0xf4)
		hi = s[0] == 0xed ? 0x9f : 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

void ctl_json_string(struct ctl_reply *r, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	ctl_printf(r, "\"");
	while (*s != '\0') {
		size_t n = *s < 0x80 ? 1 : utf8_char(s);

		if (*s == '"' || *s == '\\')
			ctl_printf(r, "\\%c", *s);
		else if (*s < 0x20)
			ctl_printf(r, "\\u%04x", *s);
		else if (n == 0) /* JSON is UTF-8: such a byte has no place */
			ctl_printf(r, "\\ufffd");
		else
			ctl_printf(r, "%.*s", (int)n, (const char *)s);
		s += n > 0 ? n : 1;
	}
	ctl_printf(r, "\"");
}

/* An error reply quotes the client's own words back ("unknown command
 * 'x'"): bytes outside printable ASCII go out as \xHH (and '\' as "\\"),
 * so that a reply, printed by herd ctl on a terminal, carries no escape
 * sequence a client sent. */
void ctl_printable(struct ctl_reply *r, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\\')
			ctl_printf(r, "\\\\");
		else if (c < 0x20 || c > 0x7e)
			ctl_printf(r, "\\x%02x", c);
		else
			ctl_printf(r, "%c", c);
	}
}
