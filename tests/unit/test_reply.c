/* test_reply.c: building a control reply: appending, an error replacing
 * it, the size bound, JSON strings and printable quoting. */
#include <stdlib.h>
#include <string.h>

#include "reply.h"
#include "tap.h"

/* r's text equals want; r is emptied. */
static int text_is(struct ctl_reply *r, const char *want)
{
	int same = r->len == strlen(want) &&
		   (r->len == 0 || memcmp(r->buf, want, r->len) == 0);

	if (!same)
		printf("#   got '%.*s', want '%s'\n", (int)r->len,
		       r->buf != NULL ? r->buf : "", want);
	free(r->buf);
	memset(r, 0, sizeof(*r));
	return same;
}

static void building(void)
{
	struct ctl_reply r = {0};
	char *big = malloc(REPLY_MAX);

	ctl_printf(&r, "workers %d", 4);
	ctl_printf(&r, "%s", ", ready");
	ok(text_is(&r, "workers 4, ready") && !r.failed, "printf appends");
	ctl_printf(&r, "half a reply");
	ctl_fail(&r, "unknown command '%s'", "x");
	ok(r.failed && text_is(&r, "unknown command 'x'"),
	   "an error replaces what was written");
	memset(big, 'a', REPLY_MAX - 1);
	big[REPLY_MAX - 1] = '\0';
	ctl_printf(&r, "%s", big + 10);
	ctl_printf(&r, "%s", big + REPLY_MAX - 10);
	is_int(r.len, REPLY_MAX - 11 + 9, "up to REPLY_MAX");
	ctl_printf(&r, "%s", "not this");
	is_int(r.len, REPLY_MAX - 2, "and nothing beyond");
	free(r.buf);
	free(big);
}

static void json(void)
{
	struct ctl_reply r = {0};

	ctl_json_string(&r, "unix:/tmp/a\"b\\c");
	ok(text_is(&r, "\"unix:/tmp/a\\\"b\\\\c\""), "quote and backslash");
	ctl_json_string(&r, "a\nb\x01");
	ok(text_is(&r, "\"a\\u000ab\\u0001\""), "control characters");
	ctl_json_string(&r, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	ok(text_is(&r, "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""),
	   "UTF-8 of 2, 3 and 4 bytes kept");
	ctl_json_string(&r, "\xff|\xc0\xaf|\xed\xa0\x80|\xe2\x82");
	ok(text_is(&r, "\"\\ufffd|\\ufffd\\ufffd|\\ufffd\\ufffd\\ufffd|"
		       "\\ufffd\\ufffd\""),
	   "invalid, overlong, surrogate, cut short: U+FFFD a byte");
	ctl_json_string(&r, "");
	ok(text_is(&r, "\"\""), "the empty string");
}

static void printable(void)
{
	struct ctl_reply r = {0};

	ctl_printable(&r, "quit\0junk\x1b[2J\\~\x7f\xc3", 17);
	ok(text_is(&r, "quit\\x00junk\\x1b[2J\\\\~\\x7f\\xc3"),
	   "NUL, escape, backslash, DEL and high bytes quoted");
}

int main(void)
{
	building();
	json();
	printable();
	return done_testing();
}
