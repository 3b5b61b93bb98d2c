/*
 * http_parse.c: the request-head parser and chunked-body skipper declared
 * in http_parse.h.
 *
 * The input is hostile: every read is bounded by the length given, no state
 * outlives a call except two small structs (http_head, http_chunked), and
 * anything the grammar does not allow is refused rather than repaired.
 *
 * The head parser works a line at a time and keeps, between calls, where
 * the next line starts and what the fields parsed so far decided. It used
 * to be re-run from the start of the buffer as bytes arrived, which is
 * quadratic: a head of 8 KB sent a byte at a time cost the worker hundreds
 * of ms of CPU. What the state cannot hold (pointers into the buffer, which
 * the caller may move) is found again once, when the head is complete.
 */
#include "http_parse.h"

#include <string.h>

/* http_head's offsets hold any position within a head. */
_Static_assert(HTTP_HEAD_MAX <= UINT16_MAX, "http_head offsets are 16 bits");

/* A slice of the input. */
struct span {
	const char *p;
	size_t n;
};

/* ---- characters and spans --------------------------------------------- */

static int is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static int is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* RFC 9110 tchar: what methods and field names are made of. */
static int is_tchar(unsigned char c)
{
	static const char extra[] = "!#$%&'*+-.^_`|~";

	return is_digit(c) || is_alpha(c) ||
	       memchr(extra, c, sizeof extra - 1) != NULL;
}

/* Field values may hold HT, SP, VCHAR and obs-text; no other control. */
static int is_value_char(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* Visible ASCII but '#': a fragment is never sent in a request. */
static int is_target_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '#';
}

static int lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* Case-insensitive comparison with a lower-case ASCII literal; no locale. */
static int span_ieq(struct span s, const char *lit)
{
	size_t i;

	if (s.n != strlen(lit))
		return 0;
	for (i = 0; i < s.n; i++)
		if (lower((unsigned char)s.p[i]) != (unsigned char)lit[i])
			return 0;
	return 1;
}

static int span_all(struct span s, int (*pred)(unsigned char))
{
	size_t i;

	for (i = 0; i < s.n; i++)
		if (!pred((unsigned char)s.p[i]))
			return 0;
	return 1;
}

static int is_token(struct span s)
{
	return s.n > 0 && span_all(s, is_tchar);
}

static struct span trim(const char *p, size_t n)
{
	while (n > 0 && (p[0] == ' ' || p[0] == '\t'))
		p++, n--;
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	return (struct span){p, n};
}

/* Takes the next non-empty element of a comma-separated list, trimmed;
 * 0 at the end. Empty elements are allowed by the list grammar. */
static int list_next(struct span *rest, struct span *elem)
{
	while (rest->n > 0) {
		const char *comma = memchr(rest->p, ',', rest->n);
		size_t len = comma ? (size_t)(comma - rest->p) : rest->n;
		size_t skip = comma ? len + 1 : len;

		*elem = trim(rest->p, len);
		rest->p += skip;
		rest->n -= skip;
		if (elem->n > 0)
			return 1;
	}
	return 0;
}

/* ---- lines ------------------------------------------------------------ */

/* Finds the line at h->next: 1 with it (without its LF or CRLF) and
 * h->next past it, 0 when buf[0..len) holds no LF yet; len is at most
 * HTTP_HEAD_MAX. Bytes searched in vain are not searched again, so a long
 * line that arrives a byte at a time costs its length once. A CR elsewhere
 * stays in the line, where the character checks refuse it. */
static int next_line(http_head *h, const char *buf, size_t len,
		     struct span *line)
{
	const char *lf;
	size_t n;

	if (h->scanned >= len)
		return 0;
	lf = memchr(buf + h->scanned, '\n', len - h->scanned);
	if (lf == NULL) {
		h->scanned = (uint16_t)len;
		return 0;
	}
	n = (size_t)(lf - (buf + h->next));
	line->p = buf + h->next;
	line->n = n > 0 && line->p[n - 1] == '\r' ? n - 1 : n;
	h->next = h->scanned = (uint16_t)(h->next + n + 1);
	return 1;
}

/* ---- request line ----------------------------------------------------- */

static void split_query(struct span s, http_request *req)
{
	const char *q = memchr(s.p, '?', s.n);

	req->path = s.p;
	req->path_len = q ? (size_t)(q - s.p) : s.n;
	req->query = q ? q + 1 : NULL;
	req->query_len = q ? s.n - req->path_len - 1 : 0;
}

/* absolute-form "http://authority/path?query": keep the path and query. */
static int parse_absolute(struct span t, http_request *req)
{
	size_t skip, a;

	if (t.n > 7 && span_ieq((struct span){t.p, 7}, "http://"))
		skip = 7;
	else if (t.n > 8 && span_ieq((struct span){t.p, 8}, "https://"))
		skip = 8;
	else
		return -400;
	for (a = skip; a < t.n && t.p[a] != '/' && t.p[a] != '?'; a++)
		;
	if (a == skip)
		return -400;
	split_query((struct span){t.p + a, t.n - a}, req);
	if (req->path_len == 0) {
		req->path = "/";
		req->path_len = 1;
	}
	return 0;
}

static int parse_target(struct span t, http_request *req)
{
	if (t.n == 0 || !span_all(t, is_target_char))
		return -400;
	req->target = t.p;
	req->target_len = t.n;
	if (t.p[0] != '/')
		return parse_absolute(t, req);
	split_query(t, req);
	return 0;
}

/* "HTTP/" DIGIT "." DIGIT; well-formed but not 1.0 or 1.1 is a 505. */
static int parse_version(struct span v, int *minor)
{
	if (v.n != 8 || memcmp(v.p, "HTTP/", 5) != 0 ||
	    !is_digit((unsigned char)v.p[5]) || v.p[6] != '.' ||
	    !is_digit((unsigned char)v.p[7]))
		return -400;
	if (v.p[5] != '1' || (v.p[7] != '0' && v.p[7] != '1'))
		return -505;
	*minor = v.p[7] - '0';
	return 0;
}

/* method SP request-target SP HTTP-version, single spaces only. */
static int parse_request_line(struct span l, http_request *req)
{
	const char *sp1 = memchr(l.p, ' ', l.n), *sp2, *end = l.p + l.n;
	struct span method;
	int r;

	if (sp1 == NULL)
		return -400;
	method = (struct span){l.p, (size_t)(sp1 - l.p)};
	if (!is_token(method))
		return -400;
	req->method = method.p;
	req->method_len = method.n;
	sp2 = memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1));
	if (sp2 == NULL)
		return -400;
	r = parse_target((struct span){sp1 + 1, (size_t)(sp2 - sp1 - 1)}, req);
	if (r < 0)
		return r;
	return parse_version((struct span){sp2 + 1, (size_t)(end - sp2 - 1)},
			     &req->minor);
}

/* ---- header fields ---------------------------------------------------- */

/* The first Content-Length value, which h keeps as an offset into buf. */
static struct span first_length(const http_head *h, const char *buf)
{
	return (struct span){buf + h->cl, h->cl_len};
}

/* Content-Length: digits only; repeats (in a list or in several fields)
 * must all be the same number, else the body's end is ambiguous. */
static int apply_length(http_head *h, const char *buf, struct span v)
{
	struct span e;
	int any = 0;

	while (list_next(&v, &e)) {
		struct span first = first_length(h, buf);

		if (!span_all(e, is_digit))
			return -400;
		while (e.n > 1 && e.p[0] == '0')
			e.p++, e.n--;
		if (h->cl_seen && (e.n != first.n || memcmp(e.p, first.p, e.n)))
			return -400;
		h->cl = (uint16_t)(e.p - buf);
		h->cl_len = (uint16_t)e.n;
		h->cl_seen = 1;
		any = 1;
	}
	return any ? 0 : -400;
}

/* Only whether chunked came exactly once matters: the count stops at 2. */
static void apply_coding(http_head *h, struct span v)
{
	struct span e;

	h->te_seen = 1;
	while (list_next(&v, &e)) {
		if (!span_ieq(e, "chunked"))
			h->te_other = 1;
		else if (h->te_chunked < 2)
			h->te_chunked++;
	}
}

static void apply_connection(http_head *h, struct span v)
{
	struct span e;

	while (list_next(&v, &e)) {
		if (span_ieq(e, "close"))
			h->conn_close = 1;
		else if (span_ieq(e, "keep-alive"))
			h->conn_keep = 1;
	}
}

/* Records the fields that decide framing and persistence; others pass. */
static int apply_field(http_head *h, const char *buf, struct span name,
		       struct span v)
{
	if (span_ieq(name, "host")) {
		if (h->host)
			return -400;
		h->host = 1;
		return 0;
	}
	if (span_ieq(name, "content-length"))
		return apply_length(h, buf, v);
	if (span_ieq(name, "transfer-encoding"))
		apply_coding(h, v);
	else if (span_ieq(name, "connection"))
		apply_connection(h, v);
	else if (span_ieq(name, "expect") && span_ieq(v, "100-continue"))
		h->expect = 1;
	return 0;
}

/* name ":" OWS value OWS. The name must be a token, and SP and HT are not
 * token characters, so this refuses obs-fold (a line starting with SP or
 * HT), whitespace before the first field and whitespace before ':'. */
static int parse_field(http_head *h, const char *buf, struct span l)
{
	const char *colon;
	struct span name, value;

	colon = memchr(l.p, ':', l.n);
	if (colon == NULL)
		return -400;
	name = (struct span){l.p, (size_t)(colon - l.p)};
	value = (struct span){colon + 1, l.n - name.n - 1};
	if (!is_token(name) || !span_all(value, is_value_char))
		return -400;
	return apply_field(h, buf, name, trim(value.p, value.n));
}

/* ---- the whole head --------------------------------------------------- */

/* Decimal value of a digit string, saturated just past the body limit. */
static size_t length_value(struct span s)
{
	size_t i, v = 0;

	for (i = 0; i < s.n; i++) {
		v = v * 10 + (size_t)(s.p[i] - '0');
		if (v > HTTP_BODY_MAX)
			return (size_t)HTTP_BODY_MAX + 1;
	}
	return v;
}

/* Framing: Transfer-Encoding with Content-Length is how requests get
 * smuggled past proxies, and 1.0 has no chunked coding, so both are 400. */
static int decide_body(const http_head *h, const char *buf, http_request *req)
{
	if (h->te_seen) {
		if (h->cl_seen || req->minor == 0)
			return -400;
		if (h->te_other)
			return -501;
		if (h->te_chunked != 1)
			return -400;
		req->body = HTTP_BODY_CHUNKED;
	} else if (h->cl_seen) {
		req->content_length = length_value(first_length(h, buf));
		if (req->content_length > HTTP_BODY_MAX)
			return -413;
		req->body = HTTP_BODY_LENGTH;
	}
	return 0;
}

/* The request line passed its checks when it came; this parses it again
 * for req's pointers, which the state could not keep. */
static int finish_head(const http_head *h, const char *buf, http_request *req)
{
	int r =
	    parse_request_line((struct span){buf + h->line, h->line_len}, req);

	if (r < 0) /* only if the caller changed bytes it had given */
		return r;
	if (req->minor == 1 && !h->host)
		return -400;
	if (req->minor == 1)
		req->keep_alive = !h->conn_close;
	else
		req->keep_alive = h->conn_keep && !h->conn_close;
	req->expect_continue = h->expect;
	r = decide_body(h, buf, req);
	return r < 0 ? r : (int)h->next;
}

/* Checks the request line and remembers where it is. */
static int start_fields(http_head *h, const char *buf, struct span line)
{
	http_request scratch;
	int r = parse_request_line(line, &scratch);

	if (r < 0)
		return r;
	h->line = (uint16_t)(line.p - buf);
	h->line_len = (uint16_t)line.n;
	h->in_fields = 1;
	return 0;
}

/* Parses the lines of buf[0..len) not parsed yet, len already cut to the
 * head limit. Empty lines before a request are allowed (RFC 9112 2.2). */
static int parse_lines(http_head *h, const char *buf, size_t len,
		       http_request *req)
{
	struct span line;
	int r = 0;

	while (r == 0 && next_line(h, buf, len, &line)) {
		if (!h->in_fields)
			r = line.n > 0 ? start_fields(h, buf, line) : 0;
		else if (line.n == 0)
			return finish_head(h, buf, req);
		else
			r = parse_field(h, buf, line);
	}
	return r;
}

void http_head_init(http_head *h)
{
	memset(h, 0, sizeof *h);
}

int http_head_parse(http_head *h, const char *buf, size_t len,
		    http_request *req)
{
	size_t win = len < HTTP_HEAD_MAX ? len : HTTP_HEAD_MAX;
	int r;

	memset(req, 0, sizeof *req);
	r = parse_lines(h, buf, win, req);
	if (r == 0 && len > HTTP_HEAD_MAX)
		return -431;
	return r;
}

int http_parse_request(const char *buf, size_t len, http_request *req)
{
	http_head h;

	http_head_init(&h);
	return http_head_parse(&h, buf, len, req);
}

/* ---- chunked bodies --------------------------------------------------- */

enum {
	CK_SIZE0,      /* first hex digit of a chunk size */
	CK_SIZE,       /* more hex digits */
	CK_EXT_WS,     /* whitespace after the size: ';' or CR next */
	CK_EXT,	       /* a chunk extension, up to CR */
	CK_SIZE_LF,    /* LF ending the size line */
	CK_DATA,       /* chunk data */
	CK_DATA_CR,    /* CR after the data */
	CK_DATA_LF,    /* LF after the data */
	CK_TRAILER0,   /* start of a trailer line, or CR of the last line */
	CK_TRAILER,    /* inside a trailer line */
	CK_TRAILER_LF, /* LF ending a trailer line */
	CK_END_LF,     /* LF ending the body */
	CK_DONE,
	CK_ERROR,
};

void http_chunked_init(http_chunked *c)
{
	memset(c, 0, sizeof *c);
	c->state = CK_SIZE0;
}

static int hex_value(unsigned char ch)
{
	if (is_digit(ch))
		return ch - '0';
	if (lower(ch) >= 'a' && lower(ch) <= 'f')
		return lower(ch) - 'a' + 10;
	return -1;
}

static int chunk_fail(http_chunked *c, int status)
{
	c->state = CK_ERROR;
	c->status = -status;
	return c->status;
}

/* One more hex digit of the size; the limit check keeps the sum in range
 * since left <= HTTP_BODY_MAX before each step. */
static int chunk_digit(http_chunked *c, int d)
{
	c->left = c->left * 16 + (size_t)d;
	if (c->left > HTTP_BODY_MAX - c->data)
		return chunk_fail(c, 413);
	c->state = CK_SIZE;
	return 0;
}

/* Takes one byte after the size digits: extension, whitespace or CR. */
static int chunk_after_size(http_chunked *c, unsigned char ch)
{
	if (ch == '\r')
		c->state = CK_SIZE_LF;
	else if (ch == ';')
		c->state = CK_EXT;
	else if (ch == ' ' || ch == '\t')
		c->state = CK_EXT_WS;
	else
		return chunk_fail(c, 400);
	return 0;
}

/* Takes a byte of a line the skipper ignores (extension or trailer): up to
 * CR, no other control character. */
static int chunk_skip_line(http_chunked *c, unsigned char ch, int cr_state)
{
	if (ch == '\r')
		c->state = cr_state;
	else if (!is_value_char(ch))
		return chunk_fail(c, 400);
	return 0;
}

/* Expects the byte want, then moves to next; anything else is malformed. */
static int chunk_expect(http_chunked *c, unsigned char ch, int want, int next)
{
	if (ch != want)
		return chunk_fail(c, 400);
	c->state = next;
	return next == CK_DONE;
}

/* First byte of a trailer line: CR of the empty last line, or a field. */
static int chunk_trailer0(http_chunked *c, unsigned char ch)
{
	if (ch == '\r') {
		c->state = CK_END_LF;
		return 0;
	}
	c->state = CK_TRAILER;
	return chunk_skip_line(c, ch, CK_TRAILER_LF);
}

static int chunk_size_byte(http_chunked *c, unsigned char ch)
{
	int d = hex_value(ch);

	if (c->state == CK_SIZE0)
		return d < 0 ? chunk_fail(c, 400) : chunk_digit(c, d);
	if (c->state == CK_SIZE && d >= 0)
		return chunk_digit(c, d);
	if (c->state == CK_SIZE)
		return chunk_after_size(c, ch);
	if (ch == ' ' || ch == '\t' || ch == '\r' || ch == ';') /* EXT_WS */
		return chunk_after_size(c, ch);
	return chunk_fail(c, 400);
}

/* Advances the state machine by one framing byte: 0 go on, 1 done, < 0. */
static int chunk_byte(http_chunked *c, unsigned char ch)
{
	switch (c->state) {
	case CK_SIZE0:
	case CK_SIZE:
	case CK_EXT_WS:
		return chunk_size_byte(c, ch);
	case CK_EXT:
		return chunk_skip_line(c, ch, CK_SIZE_LF);
	case CK_SIZE_LF:
		return chunk_expect(c, ch, '\n',
				    c->left ? CK_DATA : CK_TRAILER0);
	case CK_DATA_CR:
		return chunk_expect(c, ch, '\r', CK_DATA_LF);
	case CK_DATA_LF:
		return chunk_expect(c, ch, '\n', CK_SIZE0);
	case CK_TRAILER0:
		return chunk_trailer0(c, ch);
	case CK_TRAILER:
		return chunk_skip_line(c, ch, CK_TRAILER_LF);
	case CK_TRAILER_LF:
		return chunk_expect(c, ch, '\n', CK_TRAILER0);
	case CK_END_LF:
		return chunk_expect(c, ch, '\n', CK_DONE);
	}
	return chunk_fail(c, 400);
}

/* Skips as much chunk data as buf holds; returns how much. */
static size_t chunk_data(http_chunked *c, size_t avail)
{
	size_t n = avail < c->left ? avail : c->left;

	c->left -= n;
	c->data += n;
	if (c->left == 0)
		c->state = CK_DATA_CR;
	return n;
}

int http_chunked_feed(http_chunked *c, const char *buf, size_t len,
		      size_t *used)
{
	size_t i = 0;
	int r = 0;

	if (c->state == CK_DONE || c->state == CK_ERROR) {
		*used = 0;
		return c->state == CK_DONE ? 1 : c->status;
	}
	while (i < len && r == 0) {
		if (c->state == CK_DATA) {
			i += chunk_data(c, len - i);
			continue;
		}
		if (++c->framing > HTTP_BODY_MAX)
			r = chunk_fail(c, 413);
		else
			r = chunk_byte(c, (unsigned char)buf[i]);
		i++;
	}
	*used = i;
	return r;
}
