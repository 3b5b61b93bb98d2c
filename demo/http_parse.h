/*
 * http_parse.h: the HTTP/1.x request parser of the built-in worker.
 *
 * Two pieces, both free of allocation and I/O and safe on any bytes:
 * http_head_parse() reads a request head from the start of a buffer as it
 * fills up (http_parse_request() when it is already whole), and
 * http_chunked_feed() skips a chunked body fed in arbitrary slices.
 * Errors come back as negated HTTP status codes (-400, -413, -431, -501,
 * -505) so the caller can answer them as they are.
 */
#ifndef HERD_HTTP_PARSE_H
#define HERD_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* Largest request head in bytes, request line to the empty line included. */
#define HTTP_HEAD_MAX 8192u
/* Largest request body in bytes (chunk data for a chunked body). */
#define HTTP_BODY_MAX (1024u * 1024u)

typedef enum http_body {
	HTTP_BODY_NONE =
	    0,		   /* no body framing: the request ends with its head */
	HTTP_BODY_LENGTH,  /* Content-Length bytes follow (possibly 0) */
	HTTP_BODY_CHUNKED, /* a chunked body follows; see http_chunked_feed */
} http_body;

/*
 * A parsed request head. The pointers point into the parsed buffer (or, for
 * path only, at a constant "/"), so they live as long as that buffer does.
 */
typedef struct http_request {
	const char *method; /* a token, case-sensitive ("GET", "HEAD", ...) */
	size_t method_len;
	const char *target; /* the request-target as sent */
	size_t target_len;
	const char *path; /* the path, without query; "/" for "http://host" */
	size_t path_len;
	const char *query; /* after '?', NULL when there is no '?' */
	size_t query_len;
	int minor;	     /* 0 for HTTP/1.0, 1 for HTTP/1.1 */
	int keep_alive;	     /* the connection may serve another request */
	int expect_continue; /* "Expect: 100-continue" was sent */
	http_body body;
	size_t content_length; /* with HTTP_BODY_LENGTH, <= HTTP_BODY_MAX */
} http_request;

/*
 * Parses the request head at the start of buf[0..len). Returns the length
 * of the head (> 0, empty lines before the request line included) and fills
 * *req; 0 when more bytes are needed; or a negated status: -400 malformed,
 * -413 Content-Length over HTTP_BODY_MAX, -431 no complete head within
 * HTTP_HEAD_MAX bytes (reported as soon as len passes it), -501 a transfer
 * coding other than chunked, -505 a version other than 1.0 and 1.1.
 * *req is meaningful only after a positive return.
 */
int http_parse_request(const char *buf, size_t len, http_request *req);

/*
 * How far a head that is still arriving has been parsed, so that each call
 * of http_head_parse() reads only the bytes that are new: parsing from the
 * start on every read made a head sent a byte at a time cost time
 * quadratic in its size. Offsets count from the head's first byte, so the
 * caller may move the bytes between calls, as long as it keeps them.
 * 16 bytes, for a state every connection holds.
 */
typedef struct http_head {
	uint16_t next;	  /* start of the first line not parsed yet */
	uint16_t scanned; /* no LF in [next, scanned): not searched again */
	uint16_t line, line_len; /* the request line, once it was parsed */
	uint16_t cl, cl_len;	 /* first Content-Length value, zeros cut */
	unsigned in_fields : 1;	 /* past the request line */
	unsigned host : 1;	 /* a Host field was seen */
	unsigned conn_close : 1; /* Connection listed "close" */
	unsigned conn_keep : 1;	 /* Connection listed "keep-alive" */
	unsigned te_seen : 1;	 /* a Transfer-Encoding field was present */
	unsigned te_other : 1;	 /* it listed a coding other than chunked */
	unsigned te_chunked : 2; /* times it listed chunked, up to 2 */
	unsigned cl_seen : 1;	 /* a Content-Length field was present */
	unsigned expect : 1;	 /* "Expect: 100-continue" */
} http_head;

/* Sets up h for a new head (all zero does too). */
void http_head_init(http_head *h);

/*
 * http_parse_request() on a head that arrives in pieces: buf[0..len) is
 * what has arrived of it so far, and each call must be given the bytes of
 * the previous one (possibly moved), then more or none. Returns what
 * http_parse_request(buf, len, req) would. Each call reads only the bytes
 * that are new (the request line once more when the head ends), so a head
 * costs time linear in its size however it is split. After a non-zero
 * return, h must be set up again before the next head.
 */
int http_head_parse(http_head *h, const char *buf, size_t len,
		    http_request *req);

/* State of a chunked-body skipper; set up with http_chunked_init(). */
typedef struct http_chunked {
	int state;	/* where in the chunk grammar we are */
	int status;	/* the error once one was found, else 0 */
	size_t left;	/* size being read, then data left in this chunk */
	size_t data;	/* chunk data seen so far */
	size_t framing; /* every other byte seen so far */
} http_chunked;

void http_chunked_init(http_chunked *c);

/*
 * Feeds buf[0..len) to the skipper and sets *used to how many of those
 * bytes belong to the body. Returns 0 when the body needs more bytes (then
 * *used == len), 1 when the body ended (the rest of buf is the next
 * request), or a negated status: -400 malformed framing, -413 more than
 * HTTP_BODY_MAX bytes of chunk data, or of framing (sizes, extensions,
 * trailers). Lines must end in CRLF here: bare LF in chunk framing is a
 * request-smuggling vector. After 1 or an error, it keeps returning that.
 */
int http_chunked_feed(http_chunked *c, const char *buf, size_t len,
		      size_t *used);

#endif
