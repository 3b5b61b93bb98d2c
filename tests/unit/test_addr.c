/* test_addr.c: the -l address syntax, binding a unix socket over a stale
 * file but never over a live one, and what unix_probe() sees at a path. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "listen.h"
#include "tap.h"

static int port_of(const struct listen_addr *a)
{
	if (a->sa.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&a->sa)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)&a->sa)->sin6_port);
}

static void good(const char *s, int family, int port, int wildcard)
{
	struct listen_addr a;
	char err[256] = "";
	int rc = addr_parse(s, &a, err, sizeof(err));

	ok(rc == 0 && a.sa.ss_family == family &&
	       (family == AF_UNIX || port_of(&a) == port) &&
	       a.wildcard == wildcard,
	   "'%s' parses (family %d, port %d) %s", s, family, port, err);
}

static void bad(const char *s, const char *why)
{
	struct listen_addr a;
	char err[256] = "";

	ok(addr_parse(s, &a, err, sizeof(err)) == -1 && err[0] != '\0',
	   "'%s' refused: %s [%s]", s, why, err);
}

static void formats(const char *s, const char *want)
{
	struct listen_addr a;
	char err[256], buf[ADDR_TEXT_MAX] = "";

	if (addr_parse(s, &a, err, sizeof(err)) == 0)
		addr_format((struct sockaddr *)&a.sa, a.len, buf, sizeof(buf));
	ok(strcmp(buf, want) == 0, "'%s' formats as %s (got %s)", s, want, buf);
}

/* s parses, with the name want ("" for none) and the address text addr;
 * fdname is what LISTEN_FDNAMES would say. */
static void named(const char *s, const char *want, const char *addr,
		  const char *fdname)
{
	struct listen_addr a;
	char err[256] = "", buf[FDNAME_MAX + 1] = "";
	int rc = addr_parse(s, &a, err, sizeof(err));

	if (rc == 0)
		addr_fdname(&a, buf, sizeof(buf));
	ok(rc == 0 && strcmp(a.name, want) == 0 && strcmp(a.text, addr) == 0 &&
	       strcmp(buf, fdname) == 0,
	   "'%s': name '%s', address '%s', LISTEN_FDNAMES '%s' (got '%s') %s",
	   s, want, addr, fdname, buf, err);
}

static void names(void)
{
	char longest[FDNAME_MAX + 32], *w = longest;

	named("web=127.0.0.1:8080", "web", "127.0.0.1:8080", "web");
	named("127.0.0.1:8080", "", "127.0.0.1:8080", "127.0.0.1_8080");
	named("x.y-z_0 ~!=8080", "x.y-z_0 ~!", "8080", "x.y-z_0 ~!");
	named("api=[::1]:80", "api", "[::1]:80", "api");
	named("sock=unix:/tmp/a=b", "sock", "unix:/tmp/a=b", "sock");
	named("unix:/tmp/a=b", "", "unix:/tmp/a=b", "unix_/tmp/a=b");
	good("unix:/tmp/a=b", AF_UNIX, 0, 0);
	memset(w, 'n', FDNAME_MAX);
	w += FDNAME_MAX;
	strcpy(w, "=127.0.0.1:80");
	ok(addr_parse(longest, &(struct listen_addr){0}, (char[64]){0}, 64) ==
	       0,
	   "a name of %d characters is taken", FDNAME_MAX);
	strcpy(w, "n=127.0.0.1:80");
	bad(longest, "a name of 256 characters");
	bad("=127.0.0.1:80", "an empty name");
	bad("we\tb=127.0.0.1:80", "a control character in a name");
	bad("caf\xc3\xa9=127.0.0.1:80", "a name not ASCII");
	bad("web=", "a name without an address");
	bad("web=web=127.0.0.1:80", "a second name");
	bad("a/b=127.0.0.1:80", "'/' ends a name: an address");
	ok(fdname_valid("web", 3) && !fdname_valid("w:b", 3) &&
	       !fdname_valid("", 0) && !fdname_valid("a\x7f", 2),
	   "fdname_valid: systemd's rules, less the empty name");
}

static void unix_sockets(void)
{
	char path[64], err[256];
	struct listen_addr a, b;

	snprintf(path, sizeof(path), "unix:/tmp/herd-test-%d.sock",
		 (int)getpid());
	ok(addr_parse(path, &a, err, sizeof(err)) == 0 &&
	       addr_bind(&a, err, sizeof(err)) == 0,
	   "unix socket binds");
	b = a;
	b.fd = -1;
	ok(addr_bind(&b, err, sizeof(err)) == -1 && strstr(err, "running"),
	   "a live unix socket is refused: %s", err);
	close(a.fd); /* leaves the file behind, as a crash would */
	a.fd = -1;
	ok(access(path + 5, F_OK) == 0, "stale socket file left behind");
	ok(addr_bind(&b, err, sizeof(err)) == 0, "a stale file is replaced");
	addr_close(&b);
	ok(access(path + 5, F_OK) == -1, "addr_close removes the file");
}

/* A unix listener whose backlog is full: connections made until the
 * kernel says EAGAIN, none accepted. Returns the listener; the
 * connections are closed with *fds. */
static int full_listener(const char *path, int *fds, int max, int *n)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (l == -1 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    listen(l, 0) == -1)
		return -1;
	for (*n = 0; *n < max; ++*n) {
		fds[*n] = socket(AF_UNIX,
				 SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (connect(fds[*n], (struct sockaddr *)&sa, sizeof(sa)) ==
		    -1) {
			close(fds[*n]);
			break;
		}
	}
	return l;
}

static void unix_states(void)
{
	char path[64];
	int fds[16], n = 0, l;
	FILE *f;

	snprintf(path, sizeof(path), "/tmp/herd-probe-%d.sock", (int)getpid());
	is_int(unix_probe(path), UNIX_ABSENT, "probe: nothing there");
	if ((f = fopen(path, "w")) != NULL)
		fclose(f);
	is_int(unix_probe(path), UNIX_NOT_SOCKET, "probe: a plain file");
	unlink(path);
	l = full_listener(path, fds, 16, &n);
	ok(l >= 0 && n < 16, "a listener with a full backlog (%d waiting)", n);
	is_int(unix_probe(path), UNIX_FULL, "probe: its backlog is full");
	for (int i = 0; i < n; i++) {
		close(fds[i]);
		close(accept(l, NULL, NULL)); /* a place in the backlog */
	}
	is_int(unix_probe(path), UNIX_LIVE, "probe: room again: live");
	close(l);
	is_int(unix_probe(path), UNIX_STALE, "probe: closed, its file stale");
	is_int(unix_clear(path), UNIX_ABSENT, "clear: a stale file is removed");
	ok(access(path, F_OK) == -1, "gone");
	is_int(unix_clear(path), UNIX_ABSENT, "clear: nothing there is free");
}

int main(void)
{
	good("127.0.0.1:8080", AF_INET, 8080, 0);
	good("[::1]:80", AF_INET6, 80, 0);
	good("8080", AF_INET6, 8080, 1);
	good(":8080", AF_INET6, 8080, 1);
	good("127.0.0.2:1", AF_INET, 1, 0);
	good("unix:/tmp/x.sock", AF_UNIX, 0, 0);
	good("0.0.0.0:65535", AF_INET, 65535, 0);
	bad("127.0.0.1", "no port");
	bad("127.0.0.1:", "empty port");
	bad("127.0.0.1:0", "port 0");
	bad("127.0.0.1:65536", "port too large");
	bad("127.0.0.1:80x", "junk after port");
	bad("127.0.0.1:-1", "negative port");
	bad("127.0.0.1:+80", "signed port");
	bad("::1:80", "IPv6 without brackets");
	bad("[::1]", "IPv6 without port");
	bad("[::1:80", "unclosed bracket");
	bad("[127.0.0.1]:80", "IPv4 in brackets");
	bad("300.1.1.1:80", "bad IPv4");
	bad("unix:", "empty unix path");
	bad("", "empty");
	bad("abc", "no port, not a number");
	bad("no-such-host.invalid:80", "unresolvable host");
	formats("127.0.0.1:8080", "127.0.0.1:8080");
	formats("[::1]:443", "[::1]:443");
	formats("unix:/tmp/a.sock", "unix:/tmp/a.sock");
	names();
	unix_sockets();
	unix_states();
	return done_testing();
}
