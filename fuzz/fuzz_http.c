/* fuzz_http.c: libFuzzer target for the built-in HTTP worker's parser:
 * http_parse_request() on the input, and the chunked-body skipper on what
 * follows a head that declares one, fed in two pieces. Checked: no crash,
 * a head length within the input, and the skipper's bytes used within what
 * it was given. */
#include <stdint.h>
#include <stdlib.h>

#include "http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	http_request req;
	http_chunked c;
	size_t used = 0, half;
	int n = http_parse_request(buf, size, &req);

	if (n > (int)size)
		abort();
	if (n <= 0 || req.body != HTTP_BODY_CHUNKED)
		return 0;
	http_chunked_init(&c);
	half = (size - (size_t)n) / 2;
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
	return 0;
}
