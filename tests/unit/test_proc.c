/* test_proc.c: the process table's lookups and counts, and the
 * lifecycle's state x event table, cell by cell. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proc.h"
#include "tap.h"

#define DOC "docs/design.md"
#define DOC_BEGIN                                                              \
	"<!-- lifecycle table: tests/unit/test_proc.c renders it -->\n"
#define DOC_END "<!-- end of lifecycle table -->\n"

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

/* The whole state x event table, cell by cell: what each state takes and
 * where it leads; everything else is refused and changes nothing. */
static void table(void)
{
	static const struct {
		enum proc_state from;
		enum proc_event ev;
		enum proc_state to;
	} cells[] = {
	    {PS_STARTING, PE_READY, PS_READY},
	    {PS_STARTING, PE_QUIT, PS_DRAINING},
	    {PS_STARTING, PE_TERMINATE, PS_STOPPING},
	    {PS_STARTING, PE_KILL, PS_KILLED},
	    {PS_READY, PE_LIMIT, PS_REPLACING},
	    {PS_READY, PE_QUIT, PS_DRAINING},
	    {PS_READY, PE_TERMINATE, PS_STOPPING},
	    {PS_READY, PE_WATCHDOG, PS_STOPPING},
	    {PS_READY, PE_KILL, PS_KILLED},
	    {PS_REPLACING, PE_QUIT, PS_DRAINING},
	    {PS_REPLACING, PE_TERMINATE, PS_STOPPING},
	    {PS_REPLACING, PE_WATCHDOG, PS_STOPPING},
	    {PS_REPLACING, PE_KILL, PS_KILLED},
	    {PS_DRAINING, PE_ESCALATE, PS_SIGNALLED},
	    {PS_DRAINING, PE_TERMINATE, PS_STOPPING},
	    {PS_DRAINING, PE_KILL, PS_KILLED},
	    {PS_SIGNALLED, PE_TERMINATE, PS_STOPPING},
	    {PS_SIGNALLED, PE_KILL, PS_KILLED},
	    {PS_STOPPING, PE_KILL, PS_KILLED},
	};
	size_t ncells = sizeof(cells) / sizeof(cells[0]);

	for (int st = 0; st < PS_NSTATES; st++) {
		for (int ev = 0; ev < PE_NEVENTS; ev++) {
			struct proc p = {.state = (enum proc_state)st};
			int want = -1;

			for (size_t i = 0; i < ncells; i++)
				if (cells[i].from == (enum proc_state)st &&
				    cells[i].ev == (enum proc_event)ev)
					want = (int)cells[i].to;
			if (want >= 0)
				ok(proc_fire(&p, (enum proc_event)ev) == 0 &&
				       (int)p.state == want,
				   "%s + %s -> %s", proc_state_name(st),
				   proc_event_name(ev), proc_state_name(want));
			else
				ok(proc_fire(&p, (enum proc_event)ev) == -1 &&
				       (int)p.state == st,
				   "%s + %s: refused, unchanged",
				   proc_state_name(st), proc_event_name(ev));
		}
	}
}

/* What the rest of the master asks of a state. */
static void properties(void)
{
	ok(proc_info(PS_READY)->serving && proc_info(PS_REPLACING)->serving &&
	       !proc_info(PS_STARTING)->serving &&
	       !proc_info(PS_DRAINING)->serving,
	   "serving: ready, and replacing until its successor is ready");
	ok(proc_info(PS_STARTING)->holds_slot &&
	       proc_info(PS_READY)->holds_slot &&
	       !proc_info(PS_REPLACING)->holds_slot,
	   "a replacing worker gives its slot to its successor");
	ok(proc_info(PS_REPLACING)->live && !proc_info(PS_DRAINING)->live &&
	       !proc_info(PS_KILLED)->live,
	   "live (an exit is a crash): starting, ready, replacing");
	ok(proc_info(PS_DRAINING)->draining &&
	       proc_info(PS_SIGNALLED)->draining &&
	       !proc_info(PS_STOPPING)->draining,
	   "draining: told to finish, signalled or not");
	ok(!proc_info(PS_STOPPING)->in_mesh && !proc_info(PS_KILLED)->in_mesh &&
	       proc_info(PS_DRAINING)->in_mesh,
	   "peers hear of workers until they stop");
}

/* An upgrade hands over four states and a killed flag; every state goes
 * and comes back as what it means. */
static void wire(void)
{
	static const enum proc_state back[PS_NSTATES] = {
	    PS_STARTING, PS_READY,    PS_READY, PS_DRAINING,
	    PS_DRAINING, PS_STOPPING, PS_KILLED};

	for (int st = 0; st < PS_NSTATES; st++) {
		struct proc p = {.state = (enum proc_state)st}, q = {0};
		int killed;
		enum proc_wire w = proc_wire_state(&p, &killed);

		ok(proc_adopt(&q, (int32_t)w, killed) == 0 &&
		       q.state == back[st],
		   "%s is handed over as %s%s, taken back as %s",
		   proc_state_name(st), proc_wire_name(w),
		   killed ? " (killed)" : "", proc_state_name(back[st]));
	}
	{
		struct proc q = {0};

		ok(proc_adopt(&q, 4, 0) == -1 && proc_adopt(&q, -1, 0) == -1,
		   "a state no image sends is refused");
	}
}

/* The table as docs/design.md prints it: a row per state, where each
 * event leads (blank: refused), and what the state means. */
static void render(char *buf, size_t len)
{
	static const char *const yes[] = {"", "yes"};
	size_t n = 0;

	n += snprintf(buf + n, len - n, "| state |");
	for (int e = 0; e < PE_NEVENTS; e++)
		n += snprintf(buf + n, len - n, " %s |", proc_event_name(e));
	n += snprintf(buf + n, len - n,
		      " serving | holds slot | live | "
		      "draining | in mesh |\n| --- |");
	for (int e = 0; e < PE_NEVENTS + 5; e++)
		n += snprintf(buf + n, len - n, " --- |");
	for (int s = 0; s < PS_NSTATES && n < len; s++) {
		const struct proc_info *i = proc_info(s);
		struct proc p = {.state = s};

		n += snprintf(buf + n, len - n, "\n| %s |", i->name);
		for (int e = 0; e < PE_NEVENTS && n < len; e++) {
			p.state = s;
			n += snprintf(buf + n, len - n, " %s |",
				      proc_fire(&p, e) == 0
					  ? proc_state_name(p.state)
					  : "");
		}
		n += snprintf(buf + n, len - n, " %s | %s | %s | %s | %s |",
			      yes[i->serving], yes[i->holds_slot], yes[i->live],
			      yes[i->draining], yes[i->in_mesh]);
	}
	snprintf(buf + n, len - n, "\n");
}

/* docs/design.md prints the table the code has, between its markers. */
static void documented(void)
{
	static char doc[1 << 18], want[8192];
	FILE *f = fopen(DOC, "r");
	size_t n = f ? fread(doc, 1, sizeof(doc) - 1, f) : 0;
	char *at, *end;

	if (f != NULL)
		fclose(f);
	doc[n] = '\0';
	render(want, sizeof(want));
	at = strstr(doc, DOC_BEGIN);
	end = at ? strstr(at, DOC_END) : NULL;
	if (!ok(at && end &&
		    (size_t)(end - at) == strlen(DOC_BEGIN) + strlen(want) &&
		    memcmp(at + strlen(DOC_BEGIN), want, strlen(want)) == 0,
		"%s prints the lifecycle table as the code has it", DOC))
		printf("# run from the repository's root; between the "
		       "markers it should read:\n%s",
		       want);
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
	documented();
	is_int(t.n, 0, "freed");
	table();
	properties();
	wire();
	return done_testing();
}
