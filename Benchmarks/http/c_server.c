/* The C baseline of Benchmarks/http/run.sh: a minimal libmicrohttpd server answering a fixed GET with the same
 * daemon settings as HTTPServer (epoll thread pool of THREADS workers, ITC, 30 s timeout, 1000 connections,
 * 16 KiB connection memory, HTTPServer's default) and the same response headers (Content-Type, a generated X-Request-Id).
 * Like the Swift server it answers on the last access-handler call (answering on the first kills keep-alive).
 * Usage: c_server PORT [THREADS] */
#include <microhttpd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char body[] = "Hello, World!\n";
static atomic_ulong sequence;

static enum MHD_Result handle(void *cls, struct MHD_Connection *connection, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    (void) cls; (void) version; (void) upload_data;
    static int marker;
    if (*con_cls == NULL) { *con_cls = &marker; return MHD_YES; }
    if (*upload_data_size != 0) { *upload_data_size = 0; return MHD_YES; }
    int found = strcmp(url, "/") == 0 && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0);
    struct MHD_Response *response = found
        ? MHD_create_response_from_buffer(sizeof body - 1, (void *) body, MHD_RESPMEM_PERSISTENT)
        : MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    char id[32];
    snprintf(id, sizeof id, "c0ffee00-%lx", atomic_fetch_add(&sequence, 1) + 1);
    MHD_add_response_header(response, "Content-Type", "text/plain; charset=utf-8");
    MHD_add_response_header(response, "X-Request-Id", id);
    enum MHD_Result result = MHD_queue_response(connection, found ? MHD_HTTP_OK : MHD_HTTP_NOT_FOUND, response);
    MHD_destroy_response(response);
    return result;
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 8082;
    unsigned int threads = argc > 2 ? (unsigned int) atoi(argv[2]) : (unsigned int) sysconf(_SC_NPROCESSORS_ONLN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    struct MHD_Daemon *daemon = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG, (uint16_t) port, NULL, NULL, handle, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &address,
        MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) 30,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int) 1000,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) 16 * 1024,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int) 1024,
        MHD_OPTION_END);
    if (daemon == NULL) { fprintf(stderr, "c_server: cannot start on port %d\n", port); return 1; }
    int signal;
    sigwait(&set, &signal);
    MHD_stop_daemon(daemon);
    return 0;
}
