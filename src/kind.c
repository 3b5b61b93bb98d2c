/*
 * kind.c: the two kinds of worker, side by side: what differs between an
 * in-process worker and a program, read in one place (kind.h says what
 * each member means).
 */
#include "kind.h"

const struct kind_ops kind_inproc = {
    .name = "in-process",
    .child = child_run,
    .reopen = reopen_inproc,
    .quit_unsent = quit_by_sigquit,
    .channel = 1,
    .inbox = 1,
    .herd_reads = 1,
    .sends_ready = 1,
    .config_exit = 1,
    .relays = 1,
};

const struct kind_ops kind_program = {
    .name = "program",
    .child = child_exec,
    .reopen = reopen_program,
    .quit_unsent = quit_by_stop_signal,
    .execs = 1,
    .output = 1,
    .blocking = 1,
    .master_counts = 1,
    .term_signal = 1,
    .exit0_planned = 1,
    .own_pace = 1,
    .drain_escalates = 1,
    .watchdog_abort = 1,
    .subreaper = 1,
};
