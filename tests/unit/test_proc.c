/* test_proc.c: the process table's lookups and counts. */
#include "proc.h"
#include "tap.h"

static struct proc *add(struct proctab *t, pid_t pid, unsigned gen, int slot,
			enum proc_state st)
{
	struct proc *p = proc_add(t);

	p->pid = pid;
	p->gen = gen;
	p->slot = slot;
	p->state = st;
	return p;
}

int main(void)
{
	struct proctab t = {0};
	struct proc *a, *b, *c;

	ok(proc_by_pid(&t, 1) == NULL, "empty table finds nothing");
	a = add(&t, 100, 1, 0, PS_READY);
	b = add(&t, 101, 1, 1, PS_DRAINING);
	c = add(&t, 200, 2, 1, PS_STARTING);
	ok(a->pidfd == -1 && a->inbox_w == -1, "new entries hold no fds");
	ok(proc_by_pid(&t, 101) == b, "found by pid");
	ok(proc_in_slot(&t, 1, 0) == a, "slot 0 of generation 1");
	ok(proc_in_slot(&t, 1, 1) == NULL, "a draining worker holds no slot");
	ok(proc_in_slot(&t, 2, 1) == c, "a starting worker holds its slot");
	for (int i = 0; i < 100; i++)
		add(&t, 1000 + i, 3, i, PS_READY);
	ok(proc_by_pid(&t, 200) == c, "pointers survive growth");
	proc_remove(&t, a);
	ok(proc_by_pid(&t, 100) == NULL && t.n == 102, "removed");
	ok(proc_by_pid(&t, 1099) != NULL, "others stay after a removal");
	proctab_free(&t);
	is_int(t.n, 0, "freed");
	return done_testing();
}
