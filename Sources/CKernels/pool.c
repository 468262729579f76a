// The engine's worker threads. A kernel split across cores is a few microseconds to a few
// milliseconds of work, many times a training step; Dispatch parks its workers between such calls,
// and on a virtual machine an idle vCPU halts, so each call waited tens of microseconds for the
// second core to wake (measured here: two 34 us pieces took 77-95 us through concurrentPerform,
// 34 us on two threads that were already running). These workers keep polling for the next job
// for a while after each one (`BB_SPIN_NS`) before they sleep, as OpenMP runtimes do, so a step's
// back-to-back kernels find them awake, and an idle process does not keep a core busy.
//
// One job at a time: the caller posts the job to each worker's own mailbox, takes chunks itself
// from a shared counter, and returns when every posted worker has said it is done, so no worker
// touches a job after its caller returned. A call made from inside a job, or while another
// thread's job runs, is refused (the caller then runs it another way).
#include "ckernels.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__)
#define PAUSE() __builtin_ia32_pause()
#else
#define PAUSE() ((void)0)
#endif

enum { MAX_WORKERS = 63 };
static const long BB_SPIN_NS = 200000;  // 0.2 ms: longer than the gaps inside a step, short next to a step

typedef struct {
    _Alignas(64) atomic_long posted;   // the job number posted to this worker
    atomic_long done;                  // the last job number it finished
    atomic_int sleeping;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
} worker;

static struct {
    pthread_mutex_t busy;              // held by the thread whose job runs
    pthread_mutex_t grow;              // held while workers are started
    worker workers[MAX_WORKERS];
    atomic_int started;
    // The job: written by its caller before it is posted, read-only until every worker is done.
    bb_task_fn fn;
    void *ctx;
    long chunks;
    _Alignas(64) atomic_long next;     // the next chunk to take
    long number;                       // job number, 1, 2, ...
} pool = {.busy = PTHREAD_MUTEX_INITIALIZER, .grow = PTHREAD_MUTEX_INITIALIZER};

static _Thread_local int inside_job;

static void take_chunks(void) {
    for (long i; (i = atomic_fetch_add_explicit(&pool.next, 1, memory_order_relaxed)) < pool.chunks;) pool.fn(pool.ctx, i);
}

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

static void *work_loop(void *arg) {
    worker *w = arg;
    inside_job = 1;
    long seen = 0;
    for (;;) {
        long job = atomic_load_explicit(&w->posted, memory_order_acquire);
        if (job == seen) {
            const long until = now_ns() + BB_SPIN_NS;
            for (int spins = 0; (job = atomic_load_explicit(&w->posted, memory_order_acquire)) == seen; spins++) {
                PAUSE();
                if ((spins & 255) == 255 && now_ns() > until) {
                    // Sleep. `sleeping` and `posted` are both sequentially consistent, so either the
                    // poster sees sleeping and signals under the lock, or this sees the new job.
                    pthread_mutex_lock(&w->lock);
                    atomic_store(&w->sleeping, 1);
                    while ((job = atomic_load(&w->posted)) == seen) pthread_cond_wait(&w->wake, &w->lock);
                    atomic_store(&w->sleeping, 0);
                    pthread_mutex_unlock(&w->lock);
                    break;
                }
            }
        }
        seen = job;
        take_chunks();
        atomic_store_explicit(&w->done, job, memory_order_release);
    }
    return NULL;
}

// Starts workers until there are `count`; returns how many there are.
static int start_workers(int count) {
    if (count > MAX_WORKERS) count = MAX_WORKERS;
    int have = atomic_load_explicit(&pool.started, memory_order_acquire);
    if (have >= count) return have;
    pthread_mutex_lock(&pool.grow);
    have = atomic_load(&pool.started);
    for (; have < count; have++) {
        worker *w = &pool.workers[have];
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->wake, NULL);
        atomic_store(&w->posted, 0);
        atomic_store(&w->done, 0);
        atomic_store(&w->sleeping, 0);
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        const int failed = pthread_create(&w->thread, &attr, work_loop, w);
        pthread_attr_destroy(&attr);
        if (failed) break;
    }
    atomic_store_explicit(&pool.started, have, memory_order_release);
    pthread_mutex_unlock(&pool.grow);
    return have;
}

int bb_parallel_run(long chunks, int threads, bb_task_fn fn, void *ctx) {
    if (inside_job || threads < 2 || chunks < 2) return 0;
    if (pthread_mutex_trylock(&pool.busy) != 0) return -1;
    int helpers = start_workers(threads - 1);
    if (helpers > threads - 1) helpers = threads - 1;
    const int posted = helpers < chunks - 1 ? helpers : (int)(chunks - 1);
    if (posted < 1) {  // no thread could be started
        pthread_mutex_unlock(&pool.busy);
        return -1;
    }
    pool.fn = fn;
    pool.ctx = ctx;
    pool.chunks = chunks;
    atomic_store_explicit(&pool.next, 0, memory_order_relaxed);
    const long job = ++pool.number;
    for (int k = 0; k < posted; k++) {
        worker *w = &pool.workers[k];
        atomic_store(&w->posted, job);
        if (atomic_load(&w->sleeping)) {
            pthread_mutex_lock(&w->lock);
            pthread_cond_signal(&w->wake);
            pthread_mutex_unlock(&w->lock);
        }
    }
    inside_job = 1;
    take_chunks();
    inside_job = 0;
    for (int k = 0; k < posted; k++)
        while (atomic_load_explicit(&pool.workers[k].done, memory_order_acquire) != job) PAUSE();
    pthread_mutex_unlock(&pool.busy);
    return 1;
}
