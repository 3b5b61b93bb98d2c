/* fuzz_control.c: libFuzzer target for control_split(), the first step of
 * every herd ctl command line. Checked: no crash; the command and the
 * arguments lie inside the line, start with no blank and end with none. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char line[CONTROL_LINE_MAX + 1], *cmd, *args;
	size_t n;

	if (size > CONTROL_LINE_MAX)
		return 0;
	memcpy(line, data, size);
	line[size] = '\0';
	control_split(line, &cmd, &args);
	n = strlen(args);
	if (cmd < line || cmd > line + size || args < line ||
	    args > line + size || *cmd == ' ' || *cmd == '\t' || *args == ' ' ||
	    *args == '\t' ||
	    (n > 0 && (args[n - 1] == ' ' || args[n - 1] == '\t')) ||
	    strpbrk(cmd, " \t\r\n") != NULL)
		abort();
	return 0;
}
