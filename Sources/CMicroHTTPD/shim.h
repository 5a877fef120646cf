#ifndef CMICROHTTPD_SHIM_H
#define CMICROHTTPD_SHIM_H
// The only C the Swift side sees. libmicrohttpd's variadic entry points are not importable into Swift,
// so each one used is wrapped here with a fixed arity.
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <string.h>
#include <unistd.h>
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

static inline int
mhd_shim_hex(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/// Percent-decodes a URL path or query component in place like MHD's default, except that `%00` is left as it
/// is: decoded, the NUL would end the C string and `/healthz%00.json` would be served as `/healthz`.
static inline size_t
mhd_shim_unescape_keeping_nul(void *cls, struct MHD_Connection *connection, char *s)
{
    (void) cls; (void) connection;
    // Most paths have no escape: find the first '%' with libc's vectorised scan (a byte loop was ~11 instructions
    // a byte) and decode only from there.
    size_t plain = strcspn(s, "%");
    if (s[plain] == '\0') return plain;
    char *read = s + plain, *write = s + plain;
    while (*read != '\0') {
        int high, low;
        if (read[0] == '%' && read[1] != '\0' && read[2] != '\0'
            && (high = mhd_shim_hex(read[1])) >= 0 && (low = mhd_shim_hex(read[2])) >= 0 && (high | low) != 0) {
            *write++ = (char) (high * 16 + low);
            read += 3;
        } else {
            *write++ = *read++;
        }
    }
    *write = '\0';
    return (size_t) (write - s);
}

/// Connection admission. At its connection limit MHD stops polling the listening socket, so further clients wait in
/// the kernel backlog until they give up instead of being refused. So MHD gets headroom above the limit, and the
/// limit is enforced here, in MHD's accept policy callback, where a refusal closes the new socket at once.
/// `open` is counted by MHD_OPTION_NOTIFY_CONNECTION; Swift sets both fields before the daemon starts.
typedef struct {
    unsigned int limit;
    unsigned int open;
} mhd_shim_admission;

static inline enum MHD_Result
mhd_shim_admit(void *cls, const struct sockaddr *address, socklen_t length)
{
    (void) address; (void) length;
    const mhd_shim_admission *admission = cls;
    return __atomic_load_n(&admission->open, __ATOMIC_RELAXED) >= admission->limit ? MHD_NO : MHD_YES;
}

static inline void
mhd_shim_count_connection(void *cls, struct MHD_Connection *connection, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    (void) connection; (void) socket_context;
    mhd_shim_admission *admission = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) __atomic_fetch_add(&admission->open, 1, __ATOMIC_RELAXED);
    else if (code == MHD_CONNECTION_NOTIFY_CLOSED) __atomic_fetch_sub(&admission->open, 1, __ATOMIC_RELAXED);
}

static inline struct MHD_Daemon *
mhd_shim_start_daemon(unsigned int flags,
                      mhd_shim_settings settings,
                      MHD_AccessHandlerCallback handler, void *handler_cls,
                      MHD_RequestCompletedCallback completed, void *completed_cls,
                      MHD_LogCallback log, void *log_cls,
                      mhd_shim_admission *admission)
{
    // Headroom: admissions racing on different worker threads may pass the check together, and MHD splits its
    // limit between workers; with room above the limit no worker reaches MHD's own limit first.
    unsigned int mhd_limit = settings.connection_limit + 2 * settings.thread_pool_size + 16;
    // The logger comes first so MHD reports problems with the options after it through it (it warns otherwise).
    return MHD_start_daemon(flags, 0, mhd_shim_admit, admission, handler, handler_cls,
                            MHD_OPTION_EXTERNAL_LOGGER, log, log_cls,
                            MHD_OPTION_LISTEN_SOCKET, (MHD_socket) settings.listen_socket,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned int) settings.thread_pool_size,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) settings.connection_timeout,
                            MHD_OPTION_CONNECTION_LIMIT, mhd_limit,
                            MHD_OPTION_NOTIFY_CONNECTION, mhd_shim_count_connection, admission,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int) settings.per_ip_connection_limit,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) settings.connection_memory_limit,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, completed_cls,
                            MHD_OPTION_UNESCAPE_CALLBACK, mhd_shim_unescape_keeping_nul, NULL,
                            MHD_OPTION_END);
}

/// Closes the listening socket under a running daemon, so new connections are refused by the kernel at once.
/// The descriptor number is re-pointed (dup2) at the read end of a pipe that never becomes readable: closing the
/// socket's last reference drops it from every worker's epoll set, and whatever MHD still does with the number
/// (re-register it, shut it down, close it at MHD_stop_daemon) is harmless. Used instead of MHD_quiesce_daemon,
/// which in 0.9.75 PANICs when a worker thread unregisters the listening socket first (an ENOENT its workers
/// tolerate and it does not). Returns the pipe's write end, to close after MHD_stop_daemon; -1 if nothing changed.
static inline int
mhd_shim_stop_listening(int listen_fd)
{
    int fds[2];
    if (pipe(fds) != 0) return -1;
    if (dup2(fds[0], listen_fd) < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    close(fds[0]);
    return fds[1];
}

/// The socket of a connection (-1 when MHD cannot tell); MHD_get_connection_info is variadic.
static inline int
mhd_shim_connection_fd(struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    return info == NULL ? -1 : info->connect_fd;
}

/// Number of open connections across the whole thread pool (0 when the daemon cannot tell).
static inline unsigned int
mhd_shim_current_connections(struct MHD_Daemon *daemon)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return info == NULL ? 0 : info->num_connections;
}

#endif
