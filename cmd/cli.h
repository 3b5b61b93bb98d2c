/*
 * cli.h: what the command-line tool's files share (cmd/).
 */
#ifndef HERD_CLI_H
#define HERD_CLI_H

#define EXIT_USAGE 2

/* "herd: OPT: message", a hint at --help; returns EXIT_USAGE. */
__attribute__((format(printf, 2, 3))) int usage_error(const char *opt,
						      const char *fmt, ...);
/* herd ctl ARGS (argv[0] is "ctl"). */
int ctl_main(int argc, char **argv);

#endif
