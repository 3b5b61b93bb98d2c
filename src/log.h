/*
 * log.h: one log line per event, "TIME LEVEL PID ROLE: message", at most
 * 1023 bytes, written with a single write(2) so lines from the master and
 * the workers never interleave inside a line (O_APPEND makes that hold for
 * files too, PIPE_BUF for pipes). A line that cannot be written at once is
 * lost, never waited for: see log.c.
 */
#ifndef HERD_LOG_H
#define HERD_LOG_H

#include "herd.h"

void log_set_level(int level);
void log_set_role(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Opens path for appending and logs there from now on; NULL means stderr. */
int log_open(const char *path);
/* Opens the same path again (after logrotate moved it). */
int log_reopen(void);
/* Puts fd (a log file the master reopened, the caller's no more) in the
 * place of the log: for a worker that may not open the path itself. */
int log_adopt(int fd);
/* The fd log lines go to, so a child can keep it. */
int log_fd(void);
/* Lines this process could not write (a full pipe or disk, the file size
 * limit, a reader gone), since it started. */
unsigned long long log_lost_lines(void);
void log_close(void);

#define log_error(...) herd_log(HERD_LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  herd_log(HERD_LOG_WARN, __VA_ARGS__)
#define log_info(...)  herd_log(HERD_LOG_INFO, __VA_ARGS__)
#define log_debug(...) herd_log(HERD_LOG_DEBUG, __VA_ARGS__)

#endif
