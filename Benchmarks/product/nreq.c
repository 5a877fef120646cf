#define _GNU_SOURCE
/* A bounded keep-alive HTTP client for callgrind-per-request: nreq PORT N CONNECTIONS PATH [JSON_BODY]
 * sends N requests (GET, or POST with the body) over CONNECTIONS keep-alive connections, one in flight on each,
 * and exits non-zero on any status other than 200/201. Fixed work, unlike wrk's fixed time. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
static int readresp(int fd, char *buf, int cap) {
  int have = 0;
  for (;;) {
    int n = read(fd, buf + have, cap - have - 1);
    if (n <= 0) return -1;
    have += n; buf[have] = 0;
    char *end = strstr(buf, "\r\n\r\n");
    if (!end) continue;
    char *cl = strcasestr(buf, "content-length:");
    int len = cl ? atoi(cl + 15) : 0;
    int need = (end - buf) + 4 + len;
    while (have < need) { n = read(fd, buf + have, cap - have - 1); if (n <= 0) return -1; have += n; }
    if (strncmp(buf + 9, "200", 3) && strncmp(buf + 9, "201", 3)) { fprintf(stderr, "status: %.40s\n", buf); return -1; }
    return have;
  }
}
int main(int argc, char **argv) {
  int port = atoi(argv[1]), n = atoi(argv[2]), c = atoi(argv[3]);
  const char *path = argv[4]; const char *body = argc > 5 ? argv[5] : NULL;
  char req[4096];
  if (body) snprintf(req, sizeof req, "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s", path, port, strlen(body), body);
  else snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", path, port);
  int fds[64];
  for (int i = 0; i < c; i++) {
    fds[i] = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0}; a.sin_family = AF_INET; a.sin_port = htons(port); a.sin_addr.s_addr = htonl(0x7f000001);
    if (connect(fds[i], (void *)&a, sizeof a)) { perror("connect"); return 1; }
    int one = 1; setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  static char buf[1 << 20]; int rl = strlen(req);
  for (int k = 0; k < n; k += c) {
    for (int i = 0; i < c && k + i < n; i++) if (write(fds[i], req, rl) != rl) { perror("write"); return 1; }
    for (int i = 0; i < c && k + i < n; i++) if (readresp(fds[i], buf, sizeof buf) < 0) { fprintf(stderr, "read fail\n"); return 1; }
  }
  return 0;
}
