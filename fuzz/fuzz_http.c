/* fuzz_http.c: libFuzzer target for the built-in HTTP worker's parser:
 * http_parse_request() on the input; http_head_parse() on the same bytes
 * arriving in two pieces (split where the last byte says) and a byte at a
 * time, as the worker parses a head that is still arriving; and the
 * chunked-body skipper on what follows a head that declares one, fed in
 * two pieces. Checked: no crash, a head length within the input, every
 * answer of the incremental parser the same as the whole-buffer parser's
 * on the same bytes, and the skipper's bytes used within what it was
 * given. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Two parses of the same buffer gave the same request. */
static int same_request(const http_request *a, const http_request *b)
{
	return a->method == b->method && a->method_len == b->method_len &&
	       a->target == b->target && a->target_len == b->target_len &&
	       a->path == b->path && a->path_len == b->path_len &&
	       a->query == b->query && a->query_len == b->query_len &&
	       a->minor == b->minor && a->keep_alive == b->keep_alive &&
	       a->expect_continue == b->expect_continue && a->body == b->body &&
	       a->content_length == b->content_length;
}

/* One incremental call; aborts unless it answers as a whole parse would. */
static int parse_more(http_head *h, const char *buf, size_t len)
{
	http_request a, b;
	int r = http_head_parse(h, buf, len, &a);

	if (r != http_parse_request(buf, len, &b) ||
	    (r > 0 && !same_request(&a, &b)))
		abort();
	return r;
}

/* The first k bytes from a copy that is freed before the rest comes, so
 * that ASan catches a state that kept a pointer into it. */
static void check_two_pieces(const char *buf, size_t size, size_t k)
{
	char *first = malloc(k ? k : 1);
	http_head h;
	int r;

	if (first == NULL)
		abort();
	memcpy(first, buf, k);
	http_head_init(&h);
	r = parse_more(&h, first, k);
	free(first);
	if (r == 0)
		parse_more(&h, buf, size);
}

/* A byte more per call until an answer, which must come at the length
 * where the whole parser first gives one: checked there and a byte
 * before (checking every length would make this quadratic). */
static void check_bytewise(const char *buf, size_t size)
{
	http_request got, want;
	http_head h;
	size_t k = 0;
	int r = 0;

	http_head_init(&h);
	while (r == 0 && k < size)
		r = http_head_parse(&h, buf, ++k, &got);
	if (r != http_parse_request(buf, k, &want) ||
	    (r > 0 && !same_request(&got, &want)))
		abort();
	if (r != 0 && http_parse_request(buf, k - 1, &want) != 0)
		abort();
}

static void check_chunked(const char *buf, size_t size, size_t n)
{
	http_chunked c;
	size_t used = 0, half = (size - n) / 2;

	http_chunked_init(&c);
	if (http_chunked_feed(&c, buf + n, half, &used) == 0) {
		if (used != half)
			abort();
		if (http_chunked_feed(&c, buf + n + half, size - n - half,
				      &used) >= 0 &&
		    used > size - n - half)
			abort();
	} else if (used > half) {
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	http_request req;
	int n = http_parse_request(buf, size, &req);

	if (n > (int)size)
		abort();
	if (size > 0)
		check_two_pieces(buf, size, data[size - 1] * (size + 1) / 256);
	check_bytewise(buf, size);
	if (n > 0 && req.body == HTTP_BODY_CHUNKED)
		check_chunked(buf, size, (size_t)n);
	return 0;
}
