/* The program the exec workload spawns, once per connection, under porticod's
 * exec handler, xinetd and tcpserver alike: the inetd "nowait" contract,
 * the connection as stdin and stdout.
 *
 * Reads once (up to 100 bytes, the request line), writes exactly
 * "Hello from server!\n" and exits 0. Reading first matters: a socket closed
 * with unread data in its receive queue makes the kernel send RST, and the
 * client would see a reset instead of the reply.
 *
 * Built at run time by bench/compare with: gcc -O2 -o hello hello.c
 */
#include <errno.h>
#include <unistd.h>

static const char kReply[] = "Hello from server!\n";

int main(void) {
  char buf[100];
  ssize_t n;
  do {
    n = read(0, buf, sizeof buf);
  } while (n < 0 && errno == EINTR);
  const char *p = kReply;
  size_t left = sizeof kReply - 1;
  while (left > 0) {
    ssize_t w = write(1, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return 1;
    p += w;
    left -= (size_t)w;
  }
  return 0;
}
