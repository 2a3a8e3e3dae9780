/* What the bench's C load clients (sse_fanout.c, storm_client.c, post_burst.c) share: the
   clock, the sort order of their latencies, the fd limit, how many source addresses to spread
   viewers over. Included by each; bench/viewers.py's build() rebuilds a client when this changes. */
#ifndef SNAKE_BENCH_LOADGEN_H
#define SNAKE_BENCH_LOADGEN_H

#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>

static inline int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Raise the fd limit to its hard maximum; 0 if n_viewers (and 16 spare) fit under it, else
   say so on stderr as `prog` and return 2 (the exit status for bad arguments). */
static inline int fds_for(int n_viewers, const char *prog)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if ((rlim_t)n_viewers + 16 > rl.rlim_cur) {
        fprintf(stderr, "%s: %d viewers need more than the %llu fds allowed\n", prog, n_viewers,
                (unsigned long long)rl.rlim_cur);
        return 2;
    }
    return 0;
}

/* Source addresses 127.0.0.1, .2, ... for n viewers: fewer than 20,000 ephemeral ports each,
   and 3 spare. */
static inline int default_addrs(int n_viewers) { return (n_viewers + 19999) / 20000 + 3; }

#endif
