/* fuzz_addr.c: libFuzzer target for addr_parse(), which reads every -l
 * and --metrics argument. Never a crash; a refusal always has a message;
 * an accepted address has a printable text. Numeric forms only reach DNS
 * when they are not numeric: host names here would make the target slow,
 * so inputs with letters other than "unix:" are skipped. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "listen.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[512], err[256];
	struct listen_addr a;

	if (size >= sizeof(s))
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (strncmp(s, "unix:", 5) != 0)
		for (size_t i = 0; i < size; i++)
			if (isalpha((unsigned char)s[i]) &&
			    !isxdigit((unsigned char)s[i]))
				return 0; /* a host name: DNS, not parsing */
	memset(&a, 0, sizeof(a));
	err[0] = '\0';
	if (addr_parse(s, &a, err, sizeof(err)) == -1) {
		if (err[0] == '\0')
			abort();
	} else if (memchr(a.text, '\0', sizeof(a.text)) == NULL) {
		abort();
	}
	return 0;
}
