/* test_addr.c: the -l address syntax, and binding a unix socket over a
 * stale file but never over a live one. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
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
	unix_sockets();
	return done_testing();
}
