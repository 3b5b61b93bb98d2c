/*
 * test_http_parse.c: unit tests for the built-in worker's HTTP parser
 * (demo/http_parse.c), one or a few checks per rule. Every input is copied
 * to a heap block of exactly its length so ASan catches any read past it.
 */
#include "http_parse.h"
#include "tap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------- */

/* The copy the last parse read; *req points into it until the next one. */
static char *last_copy;

/* Parses the first n bytes of s from an exact-size copy. */
static int parse_n(const char *s, size_t n, http_request *req)
{
	free(last_copy);
	last_copy = malloc(n ? n : 1);
	if (last_copy == NULL)
		abort();
	memcpy(last_copy, s, n);
	return http_parse_request(last_copy, n, req);
}

static int parse(const char *s, http_request *req)
{
	return parse_n(s, strlen(s), req);
}

/* Status of a request, for the many tests that only need that. */
static int status_of(const char *s)
{
	http_request req;

	return parse(s, &req);
}

static int span_is(const char *p, size_t n, const char *want)
{
	return p != NULL && n == strlen(want) && memcmp(p, want, n) == 0;
}

/* Feeds a body in slices of step bytes; returns the result and the bytes
 * used in total. */
static int feed(const char *body, size_t len, size_t step, size_t *total)
{
	http_chunked c;
	size_t off = 0, used = 0;
	int r = 0;

	http_chunked_init(&c);
	*total = 0;
	while (off < len && r == 0) {
		size_t n = len - off < step ? len - off : step;
		char *copy = malloc(n ? n : 1);

		if (copy == NULL)
			abort();
		memcpy(copy, body + off, n);
		r = http_chunked_feed(&c, copy, n, &used);
		free(copy);
		off += used;
		*total += used;
	}
	return r;
}

static int chunked_status(const char *body)
{
	size_t used;

	return feed(body, strlen(body), strlen(body), &used);
}

/* A head of exactly size bytes: request line, Host, padding field. */
static char *head_of_size(size_t size)
{
	static const char start[] = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ";
	size_t fixed = strlen(start) + 4; /* "\r\n\r\n" */
	char *s = malloc(size + 1);

	if (s == NULL || size < fixed)
		abort();
	memcpy(s, start, strlen(start));
	memset(s + strlen(start), 'x', size - fixed);
	memcpy(s + size - 4, "\r\n\r\n", 5);
	return s;
}

/* ---- request line and basics --------------------------------------------- */

static void test_good_get(void)
{
	const char *s = "GET /index.html?a=1 HTTP/1.1\r\nHost: x\r\n\r\n";
	http_request req;

	is_int(parse(s, &req), strlen(s), "good GET: whole head consumed");
	ok(span_is(req.method, req.method_len, "GET"), "good GET: method");
	ok(span_is(req.path, req.path_len, "/index.html"), "good GET: path");
	ok(span_is(req.query, req.query_len, "a=1"), "good GET: query");
	ok(span_is(req.target, req.target_len, "/index.html?a=1"),
	   "good GET: target as sent");
	is_int(req.minor, 1, "good GET: minor version");
	is_int(req.keep_alive, 1, "good GET: 1.1 keeps alive");
	is_int(req.body, HTTP_BODY_NONE, "good GET: no body");
	is_int(parse("GET / HTTP/1.1\r\nHost: x\r\n\r\n", &req) > 0 &&
		   req.query == NULL,
	       1, "no '?': query is NULL");
}

static void test_pipelined(void)
{
	const char *s = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
			"HEAD /b HTTP/1.1\r\nHost: x\r\n\r\n";
	size_t first = strlen("GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
	http_request req;
	int n = parse(s, &req);

	is_int(n, first, "pipelined: first head length");
	ok(span_is(req.path, req.path_len, "/a"), "pipelined: first path");
	is_int(parse(s + n, &req), strlen(s) - first,
	       "pipelined: second head length");
	ok(span_is(req.method, req.method_len, "HEAD"),
	   "pipelined: second method");
}

/* Every proper prefix of a valid head must ask for more, not fail. */
static void test_every_split(void)
{
	static const char *const reqs[] = {
	    "GET /a?b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	    "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n",
	    "POST / HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n\n",
	    "\r\nGET http://h/x HTTP/1.0\r\nA:\r\n\r\n",
	};
	size_t i, k;

	for (i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
		size_t len = strlen(reqs[i]), bad = len;
		http_request req;

		for (k = 0; k < len && bad == len; k++)
			if (parse_n(reqs[i], k, &req) != 0)
				bad = k;
		if (!ok(bad == len, "every split of request %zu needs more", i))
			printf("#   prefix of %zu bytes did not\n", bad);
		is_int(parse_n(reqs[i], len, &req), len,
		       "request %zu complete at full length", i);
	}
}

static void test_lf_only(void)
{
	const char *s = "GET /x HTTP/1.1\nHost: a\nAccept: */*\n\n";
	http_request req;

	is_int(parse(s, &req), strlen(s), "LF-only head parses");
	ok(span_is(req.path, req.path_len, "/x"), "LF-only: path");
	is_int(parse("GET / HTTP/1.1\r\nHost: a\n\r\n", &req), 26,
	       "mixed CRLF and LF");
	is_int(status_of("GET / HTTP/1.1\rHost: a\r\n\r\n"), -400,
	       "bare CR inside the head is refused");
}

static void test_leading_empty_lines(void)
{
	const char *s = "\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
	http_request req;

	is_int(parse(s, &req), strlen(s), "empty lines before a request");
	is_int(parse("\r\n\r\n", &req), 0, "only empty lines: need more");
}

static void test_request_line(void)
{
	is_int(status_of("G(T / HTTP/1.1\r\nHost: a\r\n\r\n"), -400,
	       "method that is not a token");
	is_int(status_of(" / HTTP/1.1\r\nHost: a\r\n\r\n"), -400,
	       "empty method");
	is_int(status_of("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), -400,
	       "double space in the request line");
	is_int(status_of("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), -400,
	       "trailing space in the request line");
	is_int(status_of("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"), -400,
	       "space inside the target");
	is_int(status_of("GET / \r\n\r\n"), -400, "missing version");
	is_int(status_of("GET\r\n\r\n"), -400, "method alone");
	is_int(status_of("GET a/b HTTP/1.1\r\nHost: a\r\n\r\n"), -400,
	       "target neither origin- nor absolute-form");
	is_int(status_of("GET /#f HTTP/1.1\r\nHost: a\r\n\r\n"), -400,
	       "fragment in the target");
	is_int(status_of("GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n"), -400,
	       "control character in the target");
	is_int(status_of("GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"), -400,
	       "raw non-ASCII byte in the target");
	is_int(status_of("GARBAGE\r\n"), -400,
	       "bad request line refused before the head is complete");
}

static void test_versions(void)
{
	http_request req;

	is_int(status_of("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), -505,
	       "HTTP/2.0 is 505");
	is_int(status_of("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), -505,
	       "HTTP/1.2 is 505");
	is_int(status_of("GET / HTTP/0.9\r\n\r\n"), -505, "HTTP/0.9 is 505");
	is_int(status_of("GET / HTTP/1.1x\r\nHost: a\r\n\r\n"), -400,
	       "junk after the version");
	is_int(status_of("GET / http/1.1\r\nHost: a\r\n\r\n"), -400,
	       "lower-case protocol name");
	is_int(status_of("GET / HTTP/11\r\nHost: a\r\n\r\n"), -400,
	       "version without a dot");
	ok(parse("GET / HTTP/1.0\r\n\r\n", &req) > 0 && req.minor == 0,
	   "HTTP/1.0 accepted with minor 0");
}

static void test_absolute_form(void)
{
	http_request req;

	ok(parse("GET http://ex.com/a/b?q=1 HTTP/1.1\r\nHost: ex.com\r\n\r\n",
		 &req) > 0 &&
	       span_is(req.path, req.path_len, "/a/b") &&
	       span_is(req.query, req.query_len, "q=1"),
	   "absolute-form: path and query taken");
	ok(parse("GET HTTPS://ex.com:8/x HTTP/1.1\r\nHost: e\r\n\r\n", &req) >
		   0 &&
	       span_is(req.path, req.path_len, "/x"),
	   "absolute-form: scheme is case-insensitive");
	ok(parse("GET http://ex.com HTTP/1.1\r\nHost: e\r\n\r\n", &req) > 0 &&
	       span_is(req.path, req.path_len, "/"),
	   "absolute-form without a path means /");
	ok(parse("GET http://ex.com?z HTTP/1.1\r\nHost: e\r\n\r\n", &req) > 0 &&
	       span_is(req.path, req.path_len, "/") &&
	       span_is(req.query, req.query_len, "z"),
	   "absolute-form: query without a path");
	is_int(status_of("GET http:///x HTTP/1.1\r\nHost: e\r\n\r\n"), -400,
	       "absolute-form without authority");
	is_int(status_of("GET ftp://h/x HTTP/1.1\r\nHost: e\r\n\r\n"), -400,
	       "absolute-form with another scheme");
}

/* ---- header fields ------------------------------------------------------- */

static void test_field_syntax(void)
{
	is_int(status_of("GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n  2\r\n\r\n"),
	       -400, "obs-fold with spaces");
	is_int(status_of("GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\t2\r\n\r\n"),
	       -400, "obs-fold with a tab");
	is_int(status_of("GET / HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n"), -400,
	       "space before the colon");
	is_int(status_of("GET / HTTP/1.1\r\nHost: a\r\nX-A\t: b\r\n\r\n"), -400,
	       "tab before the colon");
	is_int(status_of("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), -400,
	       "space before the colon of Host");
	is_int(status_of("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n"), -400,
	       "field line without a colon");
	is_int(status_of("GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n"), -400,
	       "empty field name");
	is_int(status_of("GET / HTTP/1.1\r\nHost: a\r\nX\"Y: v\r\n\r\n"), -400,
	       "field name that is not a token");
}

static void test_control_chars(void)
{
	static const char nul[] =
	    "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n";
	http_request req;

	is_int(status_of("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n"),
	       -400, "control character in a value");
	is_int(status_of("GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n"), -400,
	       "DEL in a value");
	is_int(status_of("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n"), -400,
	       "bare CR in a value");
	is_int(parse_n(nul, sizeof nul - 1, &req), -400, "NUL in a value");
	ok(parse("GET / HTTP/1.1\r\nHost: a\r\nX: a\tb \xff\r\n\r\n", &req) > 0,
	   "tab, space and obs-text allowed in a value");
}

static void test_host(void)
{
	http_request req;

	is_int(status_of("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n"), -400,
	       "HTTP/1.1 without Host");
	ok(parse("GET / HTTP/1.0\r\n\r\n", &req) > 0,
	   "HTTP/1.0 without Host is fine");
	is_int(status_of("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), -400,
	       "two Host fields");
	ok(parse("GET / HTTP/1.1\r\nhOsT: a\r\n\r\n", &req) > 0,
	   "field names are case-insensitive");
}

static int keep_alive_of(const char *s)
{
	http_request req;

	return parse(s, &req) > 0 ? req.keep_alive : -1;
}

static void test_keep_alive(void)
{
	is_int(keep_alive_of("GET / HTTP/1.0\r\n\r\n"), 0,
	       "1.0 closes by default");
	is_int(
	    keep_alive_of("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
	    1, "1.0 with keep-alive keeps alive");
	is_int(
	    keep_alive_of("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"),
	    1, "Connection tokens are case-insensitive");
	is_int(keep_alive_of("GET / HTTP/1.0\r\nConnection: keep-alive, close"
			     "\r\n\r\n"),
	       0, "close wins over keep-alive");
	is_int(keep_alive_of("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 1,
	       "1.1 keeps alive by default");
	is_int(keep_alive_of("GET / HTTP/1.1\r\nHost: a\r\nConnection: close"
			     "\r\n\r\n"),
	       0, "1.1 with close closes");
	is_int(keep_alive_of("GET / HTTP/1.1\r\nHost: a\r\nConnection: "
			     "Upgrade,  CLOSE ,\r\n\r\n"),
	       0, "close found in a list");
	is_int(keep_alive_of("GET / HTTP/1.1\r\nHost: a\r\nConnection: "
			     "closed\r\n\r\n"),
	       1, "closed is not close");
	is_int(keep_alive_of("GET / HTTP/1.0\r\nConnection: a\r\n"
			     "Connection: keep-alive\r\n\r\n"),
	       1, "Connection fields combine");
}

static void test_expect(void)
{
	http_request req;

	ok(parse("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n"
		 "Content-Length: 1\r\n\r\n",
		 &req) > 0 &&
	       req.expect_continue == 1,
	   "Expect: 100-continue noticed");
	ok(parse("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &req) > 0 &&
	       req.expect_continue == 0,
	   "no Expect, no continue");
}

/* ---- size limits --------------------------------------------------------- */

static void test_head_limit(void)
{
	char *s = head_of_size(HTTP_HEAD_MAX);
	char *t = head_of_size(HTTP_HEAD_MAX + 1);
	char *u = malloc(HTTP_HEAD_MAX + 100);
	http_request req;

	if (u == NULL)
		abort();
	is_int(parse(s, &req), HTTP_HEAD_MAX, "head of exactly 8192 bytes");
	is_int(parse(t, &req), -431, "head of 8193 bytes is 431");
	memcpy(u, s, HTTP_HEAD_MAX);
	memcpy(u + HTTP_HEAD_MAX, "GET / HT", 8);
	is_int(parse_n(u, HTTP_HEAD_MAX + 8, &req), HTTP_HEAD_MAX,
	       "8192-byte head followed by more bytes");
	memset(u, 'a', HTTP_HEAD_MAX + 100);
	memcpy(u, "GET /", 5);
	is_int(parse_n(u, HTTP_HEAD_MAX, &req), 0,
	       "8192 bytes without an end: need more");
	is_int(parse_n(u, HTTP_HEAD_MAX + 1, &req), -431,
	       "8193 bytes without an end: 431 at once");
	is_int(parse_n(t, HTTP_HEAD_MAX, &req), 0,
	       "oversized head not yet past the limit: need more");
	free(s);
	free(t);
	free(u);
}

static int length_of(const char *fields, size_t *len)
{
	char buf[512];
	http_request req;
	int r;

	snprintf(buf, sizeof buf, "POST / HTTP/1.1\r\nHost: a\r\n%s\r\n\r\n",
		 fields);
	r = parse(buf, &req);
	*len = req.content_length;
	return r < 0 ? r : (int)req.body;
}

static void test_content_length(void)
{
	size_t n;

	is_int(length_of("Content-Length: 5", &n), HTTP_BODY_LENGTH,
	       "Content-Length: framing");
	is_int(n, 5, "Content-Length: value");
	is_int(length_of("Content-Length: 5, 5", &n), HTTP_BODY_LENGTH,
	       "same value twice in a list");
	is_int(length_of("Content-Length: 5\r\nContent-Length: 005", &n),
	       HTTP_BODY_LENGTH, "same value in two fields");
	is_int(n, 5, "repeated value kept");
	is_int(length_of("Content-Length: 5, 6", &n), -400,
	       "differing values in a list");
	is_int(length_of("Content-Length: 5\r\nContent-Length: 6", &n), -400,
	       "differing values in two fields");
	is_int(length_of("Content-Length: +5", &n), -400, "sign refused");
	is_int(length_of("Content-Length: 0x5", &n), -400, "hex refused");
	is_int(length_of("Content-Length: 5 5", &n), -400,
	       "space inside refused");
	is_int(length_of("Content-Length: ", &n), -400, "empty refused");
	is_int(length_of("Content-Length: 0", &n), HTTP_BODY_LENGTH,
	       "zero accepted");
	is_int(n, 0, "zero value");
	is_int(length_of("Content-Length: 1048576", &n), HTTP_BODY_LENGTH,
	       "exactly 1 MiB accepted");
	is_int(length_of("Content-Length: 1048577", &n), -413,
	       "1 MiB + 1 is 413");
	is_int(length_of("Content-Length: 99999999999999999999999999", &n),
	       -413, "huge value is 413, no overflow");
}

static void test_transfer_encoding(void)
{
	size_t n;

	is_int(length_of("Transfer-Encoding: chunked", &n), HTTP_BODY_CHUNKED,
	       "chunked");
	is_int(length_of("Transfer-Encoding: CHUNKED", &n), HTTP_BODY_CHUNKED,
	       "coding names are case-insensitive");
	is_int(length_of("Transfer-Encoding: gzip", &n), -501,
	       "gzip alone is 501");
	is_int(length_of("Transfer-Encoding: gzip, chunked", &n), -501,
	       "gzip then chunked is 501");
	is_int(length_of("Transfer-Encoding: chunked, chunked", &n), -400,
	       "chunked twice is 400");
	is_int(length_of("Transfer-Encoding: ", &n), -400,
	       "empty Transfer-Encoding is 400");
	is_int(length_of("Content-Length: 5\r\nTransfer-Encoding: chunked", &n),
	       -400, "Content-Length then Transfer-Encoding is 400");
	is_int(length_of("Transfer-Encoding: chunked\r\nContent-Length: 5", &n),
	       -400, "Transfer-Encoding then Content-Length is 400");
	is_int(
	    status_of("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
	    -400, "Transfer-Encoding in HTTP/1.0 is 400");
}

/* ---- chunked skipper ----------------------------------------------------- */

static void test_chunked_good(void)
{
	static const char body[] = "5\r\nhello\r\n1A;ext=\"v\"\r\n"
				   "abcdefghijklmnopqrstuvwxyz\r\n"
				   "0\r\nTrailer: t\r\n\r\nGET";
	size_t len = strlen(body), body_len = len - 3, used;

	is_int(feed(body, len, len, &used), 1, "chunked in one slice ends");
	is_int(used, body_len, "one slice: stops at the body's end");
	is_int(feed(body, len, 1, &used), 1, "chunked byte by byte ends");
	is_int(used, body_len, "byte by byte: stops at the body's end");
	is_int(feed(body, len, 7, &used), 1, "chunked in 7-byte slices");
	is_int(used, body_len, "7-byte slices: same length");
	is_int(feed(body, body_len - 1, 1, &used), 0,
	       "all but the last byte: needs more");
	is_int(chunked_status("0\r\n\r\n"), 1, "empty chunked body");
	is_int(chunked_status("000\r\n\r\n"), 1, "last chunk with zeros");
	is_int(chunked_status("3 ;x\r\nabc\r\n0\r\n\r\n"), 1,
	       "whitespace before an extension");
}

static void test_chunked_sticky(void)
{
	http_chunked c;
	size_t used;

	http_chunked_init(&c);
	is_int(http_chunked_feed(&c, "0\r\n\r\n", 5, &used), 1, "skipper ends");
	is_int(http_chunked_feed(&c, "x", 1, &used), 1,
	       "ended skipper stays ended");
	is_int(used, 0, "ended skipper takes nothing");
	http_chunked_init(&c);
	is_int(http_chunked_feed(&c, "z", 1, &used), -400, "skipper fails");
	is_int(http_chunked_feed(&c, "0\r\n\r\n", 5, &used), -400,
	       "failed skipper stays failed");
}

static void test_chunked_bad(void)
{
	is_int(chunked_status("x\r\n"), -400, "non-hex size");
	is_int(chunked_status("\r\n"), -400, "empty size");
	is_int(chunked_status("-1\r\n"), -400, "negative size");
	is_int(chunked_status("0x5\r\n"), -400, "0x prefix");
	is_int(chunked_status("5 5\r\n"), -400, "space inside the size");
	is_int(chunked_status("5\n"), -400, "bare LF after the size");
	is_int(chunked_status("5\rx"), -400, "CR without LF after the size");
	is_int(chunked_status("3\r\nabcX\r\n"), -400,
	       "data longer than its size");
	is_int(chunked_status("3\r\nabc\n0\r\n\r\n"), -400,
	       "bare LF after the data");
	is_int(chunked_status("1;a\x01\r\n"), -400,
	       "control character in an extension");
	is_int(chunked_status("0\r\nT: \x01\r\n\r\n"), -400,
	       "control character in a trailer");
	is_int(chunked_status("0\r\n\rx"), -400, "CR without LF at the end");
}

static void test_chunked_limits(void)
{
	static const char big[] = "100000\r\n"; /* exactly 1 MiB */
	http_chunked c;
	size_t used;
	char *data = calloc(HTTP_BODY_MAX, 1);

	if (data == NULL)
		abort();
	is_int(chunked_status("fffffffffffffffffffffffff\r\n"), -413,
	       "huge chunk size is 413, no overflow");
	is_int(chunked_status("100001\r\n"), -413, "chunk of 1 MiB + 1");
	http_chunked_init(&c);
	http_chunked_feed(&c, big, strlen(big), &used);
	http_chunked_feed(&c, data, HTTP_BODY_MAX, &used);
	is_int(http_chunked_feed(&c, "\r\n0\r\n\r\n", 7, &used), 1,
	       "exactly 1 MiB of data accepted");
	http_chunked_init(&c);
	http_chunked_feed(&c, "80000\r\n", 7, &used);
	http_chunked_feed(&c, data, HTTP_BODY_MAX / 2, &used);
	http_chunked_feed(&c, "\r\n80000\r\n", 9, &used);
	http_chunked_feed(&c, data, HTTP_BODY_MAX / 2, &used);
	is_int(http_chunked_feed(&c, "\r\n1\r\n", 5, &used), -413,
	       "total over 1 MiB across chunks is 413");
	memset(data, '0', HTTP_BODY_MAX);
	http_chunked_init(&c);
	is_int(http_chunked_feed(&c, data, HTTP_BODY_MAX, &used), 0,
	       "1 MiB of size digits still parses");
	is_int(http_chunked_feed(&c, "0", 1, &used), -413,
	       "framing over 1 MiB is 413");
	free(data);
}

/* ---- robustness ---------------------------------------------------------- */

/* A fixed pseudo-random byte source, so failures are reproducible. */
static unsigned next_rand(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return (*s >> 16) & 0x7fff;
}

static int valid_result(int r, size_t len)
{
	return (r >= 0 && (size_t)r <= len) || r == -400 || r == -413 ||
	       r == -431 || r == -501 || r == -505;
}

static void test_random_bytes(void)
{
	static const char alphabet[] = "GET /HTP1.0\r\n:Host,chunked\t\x01\x80";
	char buf[600];
	unsigned seed = 1;
	int i, bad = 0;

	for (i = 0; i < 20000; i++) {
		size_t len = next_rand(&seed) % sizeof buf, k;
		http_request req;
		size_t used;
		http_chunked c;
		int r;

		for (k = 0; k < len; k++)
			buf[k] =
			    alphabet[next_rand(&seed) % (sizeof alphabet - 1)];
		if (!valid_result(parse_n(buf, len, &req), len))
			bad++;
		http_chunked_init(&c);
		r = http_chunked_feed(&c, buf, len, &used);
		if ((r != 0 && r != 1 && r != -400 && r != -413) || used > len)
			bad++;
	}
	is_int(bad, 0, "random inputs give only documented results");
}

/* ---- heads that arrive in pieces ----------------------------------------- */

/* A copy of s[0..n) in a block of exactly n bytes. */
static char *exact_copy(const char *s, size_t n)
{
	char *p = malloc(n ? n : 1);

	if (p == NULL)
		abort();
	memcpy(p, s, n);
	return p;
}

/* Where a pointer of a parsed request points: its offset into buf, or the
 * pointer itself when it points elsewhere (NULL, the constant "/"). */
static uintptr_t where(const char *p, const char *buf, size_t len)
{
	uintptr_t u = (uintptr_t)p, b = (uintptr_t)buf;

	return u >= b && u <= b + len ? u - b : u;
}

/* Two parses of the same bytes gave the same request. */
static int same_request(const http_request *a, const http_request *b,
			const char *buf, size_t len)
{
	return where(a->method, buf, len) == where(b->method, buf, len) &&
	       a->method_len == b->method_len &&
	       where(a->target, buf, len) == where(b->target, buf, len) &&
	       a->target_len == b->target_len &&
	       where(a->path, buf, len) == where(b->path, buf, len) &&
	       a->path_len == b->path_len &&
	       where(a->query, buf, len) == where(b->query, buf, len) &&
	       a->query_len == b->query_len && a->minor == b->minor &&
	       a->keep_alive == b->keep_alive &&
	       a->expect_continue == b->expect_continue && a->body == b->body &&
	       a->content_length == b->content_length;
}

/* One call of the incremental parser, checked against the whole-buffer
 * parser on the same bytes; *bad counts disagreements. */
static int parse_more(http_head *h, const char *buf, size_t len, int *bad)
{
	http_request a, b;
	int r = http_head_parse(h, buf, len, &a);
	int want = http_parse_request(buf, len, &b);

	if (r != want || (r > 0 && !same_request(&a, &b, buf, len))) {
		if (*bad == 0)
			printf("#   after %zu bytes: got %d, want %d\n", len, r,
			       want);
		++*bad;
	}
	return r;
}

/* What the heads in s[0..len) parse to, in order: their lengths, then the
 * error or 0 (more needed) that stopped the parse. Up to max answers. */
struct answers {
	int r[16];
	size_t n;
};

static void answer(struct answers *out, int r)
{
	if (out->n < sizeof out->r / sizeof out->r[0])
		out->r[out->n++] = r;
}

/* The reference: each head parsed whole from where the last one ended. */
static void parse_all(const char *s, size_t len, struct answers *out)
{
	size_t at = 0;
	int r;

	out->n = 0;
	do {
		char *buf = exact_copy(s + at, len - at);
		http_request req;

		r = http_parse_request(buf, len - at, &req);
		free(buf);
		answer(out, r);
		at += r > 0 ? (size_t)r : 0;
	} while (r > 0 && at < len);
	if (r > 0)
		answer(out, 0);
}

/*
 * Feeds s to http_head_parse() as the worker does: the bytes arrive in
 * pieces ending at cuts[0..n) (increasing, the last one len); each arrival
 * is a new block of exactly what is unparsed, so a head moves between
 * calls and ASan sees any read past what arrived; a complete head is
 * consumed, and the next one is parsed from the bytes after it. Every call
 * is checked against http_parse_request(); returns the disagreements.
 */
static int parse_pieces(const char *s, const size_t *cuts, size_t n,
			struct answers *out)
{
	http_head h;
	size_t off = 0, i;
	int bad = 0, r = 0;

	http_head_init(&h);
	out->n = 0;
	for (i = 0; i < n && r >= 0; i++) {
		size_t have = cuts[i] - off, at = 0;
		char *buf = exact_copy(s + off, have);

		do {
			r = parse_more(&h, buf + at, have - at, &bad);
			if (r > 0) {
				answer(out, r);
				at += (size_t)r;
				http_head_init(&h);
			}
		} while (r > 0 && at < have);
		off += at;
		free(buf);
	}
	answer(out, r > 0 ? 0 : r);
	return bad;
}

static int same_answers(const struct answers *a, const struct answers *b)
{
	return a->n == b->n && memcmp(a->r, b->r, a->n * sizeof a->r[0]) == 0;
}

/* Parses s in the pieces cuts[] gives and checks it all; name says what
 * and how. */
static void check_pieces(const char *s, size_t len, const size_t *cuts,
			 size_t n, const char *name)
{
	struct answers whole, pieces;
	int bad = parse_pieces(s, cuts, n, &pieces);

	parse_all(s, len, &whole);
	if (!ok(bad == 0 && same_answers(&whole, &pieces),
		"%s: parses as if whole", name))
		printf("#   %d calls disagreed; %zu answers, whole %zu; first "
		       "%d, whole %d\n",
		       bad, pieces.n, whole.n, pieces.r[0], whole.r[0]);
}

/* Heads with every outcome, LF-only, pipelined, and errors decided by one
 * line, by two lines together, or only at the end. */
static const char *const piece_cases[] = {
    "GET /a?b HTTP/1.1\r\nHost: x\r\nAccept: */*\r\nConnection: close"
    "\r\n\r\n",
    "GET /x HTTP/1.1\nHost: a\nAccept: */*\n\n",
    "\r\n\nGET http://h?q HTTP/1.0\r\nConnection: keep-alive\n\r\n",
    "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 007\r\nExpect: "
    "100-continue\r\nContent-Length: 7, 7\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip,\r\n"
    "Transfer-Encoding: chunked\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
    "Transfer-Encoding: chunked\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
    "Content-Length: 1\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n\r\n",
    "GET / HTTP/1.1\r\nAccept: x\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nX: y\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: "
    "6\r\nX: y\r\n\r\n",
    "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
    "GARBAGE\r\nHost: a\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
    "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nHEAD /2 HTTP/1.0\n\nGET /3 HTTP/1.1"
    "\r\nHost: a\r\n\r\nGET /4 HT",
    "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n"
    "\r\nBAD\r\n",
};

#define NCASES (sizeof piece_cases / sizeof piece_cases[0])

/* Cuts after every byte: each byte arrives as a read of its own. */
static size_t *cuts_every_byte(size_t len)
{
	size_t *cuts = malloc((len ? len : 1) * sizeof *cuts), i;

	if (cuts == NULL)
		abort();
	for (i = 0; i < len; i++)
		cuts[i] = i + 1;
	return cuts;
}

static void test_pieces_byte_by_byte(void)
{
	char name[64];
	size_t i;

	for (i = 0; i < NCASES; i++) {
		size_t len = strlen(piece_cases[i]);
		size_t *cuts = cuts_every_byte(len);

		snprintf(name, sizeof name, "case %zu byte by byte", i);
		check_pieces(piece_cases[i], len, cuts, len, name);
		free(cuts);
	}
}

/* Random pieces, 1 to 8 of them; a fixed seed, so failures repeat. */
static void test_pieces_random(void)
{
	unsigned seed = 12;
	size_t i, k, t;

	for (i = 0; i < NCASES; i++) {
		size_t len = strlen(piece_cases[i]);
		int bad = 0;

		for (t = 0; t < 300; t++) {
			size_t cuts[8], n = 1 + next_rand(&seed) % 8;
			struct answers whole, pieces;

			for (k = 0; k + 1 < n; k++)
				cuts[k] = next_rand(&seed) % (len + 1);
			cuts[n - 1] = len;
			for (k = 1; k < n; k++) /* sorted, for the arrivals */
				for (size_t j = k;
				     j > 0 && cuts[j - 1] > cuts[j]; j--) {
					size_t x = cuts[j];
					cuts[j] = cuts[j - 1];
					cuts[j - 1] = x;
				}
			parse_all(piece_cases[i], len, &whole);
			if (parse_pieces(piece_cases[i], cuts, n, &pieces) ||
			    !same_answers(&whole, &pieces))
				bad++;
		}
		if (!ok(bad == 0,
			"case %zu in random pieces: parses as if whole", i))
			printf("#   %d of 300 splits disagreed\n", bad);
	}
}

/* The head's final CRLF CRLF split every way it can be. */
static void test_pieces_terminator(void)
{
	const char *s = piece_cases[0], *lf = piece_cases[1];
	size_t len = strlen(s), lf_len = strlen(lf), k;
	size_t each[] = {len - 3, len - 2, len - 1, len};
	char name[64];

	for (k = 1; k <= 4; k++) {
		size_t cuts[] = {len - k, len};

		snprintf(name, sizeof name, "CRLF CRLF cut %zu from the end",
			 k);
		check_pieces(s, len, cuts, 2, name);
	}
	check_pieces(s, len, each, 4, "CRLF CRLF a byte each");
	for (k = 1; k <= 2; k++) {
		size_t cuts[] = {lf_len - k, lf_len};

		snprintf(name, sizeof name, "LF LF cut %zu from the end", k);
		check_pieces(lf, lf_len, cuts, 2, name);
	}
}

/* At the head limit: 8192 bytes complete, one more is 431, and a line
 * that never ends is 431 as soon as it passes the limit. */
static void test_pieces_limit(void)
{
	static const char next[] = "GET /n HTTP/1.1\r\nHost: a\r\n\r\n";
	char *at = head_of_size(HTTP_HEAD_MAX);
	char *over = head_of_size(HTTP_HEAD_MAX + 1);
	char *two = malloc(HTTP_HEAD_MAX + sizeof next);
	char *endless = malloc(HTTP_HEAD_MAX + 100);
	size_t *cuts = cuts_every_byte(HTTP_HEAD_MAX + 100);

	if (two == NULL || endless == NULL)
		abort();
	memcpy(two, at, HTTP_HEAD_MAX);
	memcpy(two + HTTP_HEAD_MAX, next, sizeof next);
	memset(endless, 'a', HTTP_HEAD_MAX + 100);
	memcpy(endless, "GET /", 5);
	check_pieces(at, HTTP_HEAD_MAX, cuts, HTTP_HEAD_MAX,
		     "8192 bytes, byte by byte");
	check_pieces(over, HTTP_HEAD_MAX + 1, cuts, HTTP_HEAD_MAX + 1,
		     "8193 bytes, byte by byte");
	check_pieces(two, HTTP_HEAD_MAX + sizeof next - 1, cuts,
		     HTTP_HEAD_MAX + sizeof next - 1,
		     "8192 bytes and a pipelined head, byte by byte");
	check_pieces(endless, HTTP_HEAD_MAX + 100, cuts, HTTP_HEAD_MAX + 100,
		     "no end, byte by byte");
	free(at);
	free(over);
	free(two);
	free(endless);
	free(cuts);
}

/*
 * What makes a head sent a byte at a time cost time linear in its size:
 * no call reads again what an earlier one parsed or searched. These two
 * break, on purpose, the rule that bytes already given stay the same:
 * without a clock, that is how to see which bytes a call reads.
 */
static void test_head_resumes(void)
{
	static const char fields[] = "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n";
	static const char partial[] = "GET / HTTP/1.1\r\nHost: a\r\nX: abcd";
	size_t flen = strlen(fields), plen = strlen(partial);
	char *buf = malloc(flen + 2);
	http_request req;
	http_head h;

	if (buf == NULL)
		abort();
	memcpy(buf, fields, flen);
	http_head_init(&h);
	is_int(http_head_parse(&h, buf, flen, &req), 0, "fields: need more");
	memset(buf + 16, 1, 7); /* "Host: a", refused if read again */
	memset(buf + 25, 1, 6); /* "X-A: 1" */
	memcpy(buf + flen, "\r\n", 2);
	is_int(http_head_parse(&h, buf, flen + 2, &req), flen + 2,
	       "fields parsed by an earlier call are not read again");
	free(buf);

	buf = exact_copy(partial, plen);
	http_head_init(&h);
	is_int(http_head_parse(&h, buf, plen, &req), 0,
	       "partial line: need more");
	memcpy(buf + plen - 3, "\n\r\n", 3); /* would end the head */
	is_int(http_head_parse(&h, buf, plen, &req), 0,
	       "bytes searched for the end of a line are not searched again");
	free(buf);
}

int main(void)
{
	test_good_get();
	test_pipelined();
	test_every_split();
	test_lf_only();
	test_leading_empty_lines();
	test_request_line();
	test_versions();
	test_absolute_form();
	test_field_syntax();
	test_control_chars();
	test_host();
	test_keep_alive();
	test_expect();
	test_head_limit();
	test_content_length();
	test_transfer_encoding();
	test_chunked_good();
	test_chunked_sticky();
	test_chunked_bad();
	test_chunked_limits();
	test_random_bytes();
	test_pieces_byte_by_byte();
	test_pieces_random();
	test_pieces_terminator();
	test_pieces_limit();
	test_head_resumes();
	free(last_copy);
	return done_testing();
}
