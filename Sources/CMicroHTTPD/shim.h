#ifndef CMICROHTTPD_SHIM_H
#define CMICROHTTPD_SHIM_H
// The only C the Swift side sees. libmicrohttpd's variadic entry points are not importable into Swift,
// so each one used is wrapped here with a fixed arity.
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <microhttpd.h>

/// Daemon settings passed by value; the C side turns them into MHD's variadic option list.
typedef struct {
    int listen_socket;                  // already bound and listening (the Swift side reports bind errors itself)
    unsigned int thread_pool_size;      // workers of the internal epoll thread pool
    unsigned int connection_timeout;    // seconds a connection may stay idle
    unsigned int connection_limit;
    unsigned int per_ip_connection_limit; // 0 = unlimited
    size_t connection_memory_limit;     // per-connection header/read-buffer memory
} mhd_shim_settings;

static inline struct MHD_Daemon *
mhd_shim_start_daemon(unsigned int flags,
                      mhd_shim_settings settings,
                      MHD_AccessHandlerCallback handler, void *handler_cls,
                      MHD_RequestCompletedCallback completed, void *completed_cls,
                      MHD_LogCallback log, void *log_cls)
{
    return MHD_start_daemon(flags, 0, NULL, NULL, handler, handler_cls,
                            MHD_OPTION_LISTEN_SOCKET, (MHD_socket) settings.listen_socket,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned int) settings.thread_pool_size,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) settings.connection_timeout,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned int) settings.connection_limit,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int) settings.per_ip_connection_limit,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) settings.connection_memory_limit,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, completed_cls,
                            MHD_OPTION_EXTERNAL_LOGGER, log, log_cls,
                            MHD_OPTION_END);
}

/// Number of open connections across the whole thread pool (0 when the daemon cannot tell).
static inline unsigned int
mhd_shim_current_connections(struct MHD_Daemon *daemon)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return info == NULL ? 0 : info->num_connections;
}

#endif
