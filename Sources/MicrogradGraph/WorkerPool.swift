#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Threads

/// A fixed set of helper threads that share one large request's work (reading a batch's columns, writing its
/// answer) with the thread that handles the request. Started once, on first use, one thread fewer than the
/// online CPUs (the caller is the last one); never grown, never stopped (the threads only wait when idle).
///
/// ``run(_:_:)`` is fork-join: the caller queues the tasks, takes tasks itself until none is left, then waits
/// for those helpers took. So it never waits for a helper to become free: under concurrent requests, or with no
/// helper at all, the caller simply does more (or all) of the tasks. Which thread runs a task must not matter
/// to its result: callers make tasks write disjoint memory and combine them in task order.
final class WorkerPool: @unchecked Sendable {  // all mutable state is guarded by `lock`
    /// The process's pool: `onlineCPUs - 1` helpers (none on one CPU).
    static let shared = WorkerPool(helpers: max(0, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) - 1))

    /// Threads that can run a job's tasks at once (helpers and the caller).
    let width: Int

    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    /// Signalled when a job is queued (helpers wait on it) and when a helper finishes a task (callers wait on it).
    private let queued = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let finished = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// Jobs with tasks not yet taken, oldest first.
    private var jobs: [Job] = []

    final class Job {
        let task: (Int) -> Void
        let count: Int
        var next = 0
        /// Tasks taken by helpers and not yet finished.
        var running = 0
        init(_ task: @escaping (Int) -> Void, count: Int) {
            self.task = task
            self.count = count
        }
    }

    init(helpers: Int) {
        width = helpers + 1
        pthread_mutex_init(lock, nil)
        pthread_cond_init(queued, nil)
        pthread_cond_init(finished, nil)
        for _ in 0..<helpers {
            // The pool outlives its threads (`shared` is never released). Fewer threads: the callers do more.
            _ = startDetachedThread { [self] in serve() }
        }
    }

    /// Runs `task(0)`, ..., `task(count - 1)`, each once, on this thread and the helpers; returns when all are
    /// done. Tasks may run in any order and at the same time.
    func run(_ count: Int, _ task: (Int) -> Void) {
        if count <= 1 || width == 1 {
            for i in 0..<count { task(i) }
            return
        }
        withoutActuallyEscaping(task) { task in
            let job = Job(task, count: count)
            pthread_mutex_lock(lock)
            jobs.append(job)
            pthread_cond_broadcast(queued)
            while job.next < count {
                let i = take(job)
                pthread_mutex_unlock(lock)
                task(i)
                pthread_mutex_lock(lock)
            }
            // Every task is taken; wait for those helpers are still running (the closure must outlive them).
            while job.running > 0 { pthread_cond_wait(finished, lock) }
            pthread_mutex_unlock(lock)
        }
    }

    /// The job's next task index, dequeuing the job when it was its last. Called with `lock` held.
    private func take(_ job: Job) -> Int {
        let i = job.next
        job.next += 1
        if job.next == job.count, let k = jobs.firstIndex(where: { $0 === job }) { jobs.remove(at: k) }
        return i
    }

    private func serve() {  // never returns
        pthread_mutex_lock(lock)
        while true {
            guard let job = jobs.first else {
                pthread_cond_wait(queued, lock)
                continue
            }
            let i = take(job)
            job.running += 1
            pthread_mutex_unlock(lock)
            job.task(i)
            pthread_mutex_lock(lock)
            job.running -= 1
            if job.running == 0 { pthread_cond_broadcast(finished) }
        }
    }
}
