/* The floor: a minimal single-threaded epoll server in plain C, to show what
 * user space must at least cost on this machine. No buffering layers, no
 * timers, no logging; the simplest correct design, not a clever one.
 *
 *   epoll_server PORT greeting   read once (up to 100 bytes), reply, close
 *   epoll_server PORT echo       write back whatever arrives
 *
 * Listens on 127.0.0.1 only. Prints "ready" on stdout once listening.
 * On SIGUSR1 it prints what it has served so far, and on SIGTERM the same
 * before it exits: "served: connections N, bytes N" (bytes echoed, or
 * greeting replies' bytes), which is how bench/compare sees the share of
 * each upstream behind a balancing proxy. Two additions per connection or
 * read; nothing a run could notice.
 * Built at run time by bench/compare with: gcc -O2 -o epoll_server epoll_server.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static const char kReply[] = "Hello from server!\n";

/* Echo keeps the unsent tail of what it read when the peer reads slowly; a
 * connection only gets one when that happens, so idle ones cost nothing. */
struct pending {
  size_t len, off;
  char data[];
};

static struct pending **pending; /* indexed by fd */
static int max_fds;
static int echo_mode;
static char buf[65536];
static unsigned long long served_connections, served_bytes;
static volatile sig_atomic_t report_asked, stop_asked;

static void on_signal(int sig) {
  if (sig == SIGTERM) stop_asked = 1;
  report_asked = 1;
}

static void drop(int fd) {
  free(pending[fd]);
  pending[fd] = NULL;
  close(fd); /* closing also removes it from epoll */
}

/* Returns 0 when everything pending went out, 1 to wait for EPOLLOUT, -1 to drop. */
static int flush(int fd) {
  struct pending *p = pending[fd];
  while (p && p->off < p->len) {
    ssize_t n = send(fd, p->data + p->off, p->len - p->off, MSG_NOSIGNAL);
    if (n < 0) return (errno == EAGAIN) ? 1 : -1;
    p->off += (size_t)n;
  }
  free(p);
  pending[fd] = NULL;
  return 0;
}

static void on_echo(int fd) {
  if (pending[fd]) {
    int rc = flush(fd);
    if (rc < 0) { drop(fd); return; }
    if (rc > 0) return; /* don't read more until the peer takes what it has */
  }
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) { drop(fd); return; }
    if (n < 0) { if (errno == EINTR) continue; return; }
    served_bytes += (unsigned long long)n;
    ssize_t w = send(fd, buf, (size_t)n, MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN) { drop(fd); return; }
    if (w < 0) w = 0;
    if (w < n) {
      struct pending *p = malloc(sizeof *p + (size_t)(n - w));
      if (!p) { drop(fd); return; }
      p->len = (size_t)(n - w);
      p->off = 0;
      memcpy(p->data, buf + w, p->len);
      pending[fd] = p;
      return; /* EPOLLOUT (edge-triggered) brings us back */
    }
  }
}

static void on_greeting(int fd) {
  ssize_t n = recv(fd, buf, 100, 0);
  if (n < 0 && errno == EAGAIN) return;
  if (n > 0 && send(fd, kReply, sizeof kReply - 1, MSG_NOSIGNAL) > 0) served_bytes += sizeof kReply - 1;
  close(fd);
}

int main(int argc, char **argv) {
  if (argc != 3 || (strcmp(argv[2], "greeting") && strcmp(argv[2], "echo"))) {
    fprintf(stderr, "usage: %s PORT greeting|echo\n", argv[0]);
    return 64;
  }
  echo_mode = strcmp(argv[2], "echo") == 0;
  signal(SIGPIPE, SIG_IGN);
  /* The two signals are let in only while epoll_pwait waits, which they
   * then end with EINTR: one that came at any other moment would otherwise
   * wait for the next connection's event to be seen. */
  struct sigaction sa = {.sa_handler = on_signal};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigset_t blocked, waiting;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGUSR1);
  sigaddset(&blocked, SIGTERM);
  sigprocmask(SIG_BLOCK, &blocked, &waiting);
  sigdelset(&waiting, SIGUSR1);
  sigdelset(&waiting, SIGTERM);

  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  max_fds = (int)rl.rlim_cur;
  pending = calloc((size_t)max_fds, sizeof *pending);

  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) || listen(lfd, 4096)) {
    perror("epoll_server: bind/listen");
    return 1;
  }
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  printf("ready\n");
  fflush(stdout);

  struct epoll_event events[256];
  for (;;) {
    int n = epoll_pwait(ep, events, 256, -1, &waiting);
    if (report_asked) {
      report_asked = 0;
      printf("served: connections %llu, bytes %llu\n", served_connections, served_bytes);
      fflush(stdout);
      if (stop_asked) return 0;
    }
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd != lfd) {
        if (echo_mode) on_echo(fd); else on_greeting(fd);
        continue;
      }
      for (;;) { /* accept everything queued */
        int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) break;
        if (c >= max_fds) { close(c); continue; }
        ++served_connections;
        struct epoll_event cev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.fd = c};
        if (echo_mode) cev.events |= EPOLLOUT;
        epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
      }
    }
  }
}
