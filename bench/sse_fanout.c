/* sse_fanout: N server-sent-event viewers of one board, timing when each move reaches each.
 *
 *   sse_fanout -p PORT -s SLUG -n VIEWERS -m MOVES [-h 127.0.0.1] [-c INFLIGHT] [-k ADDRS]
 *              [-t READY_S] [-w WAIT_S] [-W]
 *
 * One thread, one epoll, non-blocking sockets. Opens VIEWERS connections `GET /b/SLUG/events/`
 * (at most INFLIGHT at a time still waiting for their first event; source addresses spread over
 * 127.0.0.1..ADDRS), and scans each read for `event: position` ... `data-seq="N"` with memmem,
 * keeping a few bytes of tail per viewer for matches split across reads. It notes the
 * CLOCK_MONOTONIC time each viewer first saw each seq in base+1..base+MOVES (base: the seq of the
 * first event).
 *
 * -W: websocket viewers instead (an equally cheap websocket client): `GET /ws/b/SLUG/` with an
 * Upgrade and a fixed Sec-WebSocket-Key, expecting 101; then every `data-seq="N"` in the bytes
 * of the server's (unmasked) frames is a position, frame headers scanned over like SSE framing.
 * The client sends nothing after the handshake (no pongs: run the server with a long ping
 * interval) and does not check Sec-WebSocket-Accept.
 *
 * Control on stdin/stdout (one line each):
 *   -> READY <connected> <errors> <base_seq>   every viewer has its first event, or READY_S passed
 *   <- MARK <seq> <t_ns>      the move that produced seq was sent at t_ns (CLOCK_MONOTONIC)
 *   <- WAIT <seq>             -> REACHED <seq> <viewers at or past seq> <live viewers> <t_ns>
 *                             (or after WAIT_S); t_ns: CLOCK_MONOTONIC when the last of those
 *                             viewers got the seq it is at now (the final one, after a burst)
 *   <- DONE [final_seq]       wait (up to WAIT_S) until every live viewer is at the final seq,
 *                             print one JSON summary line and exit. EOF on stdin counts as DONE.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loadgen.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum { CONNECTING, HEADERS, BODY, CLOSED };
enum { E_NONE, E_CONNECT, E_STATUS, E_RESET, E_EOF, E_TIMEOUT, E_OTHER, E_KINDS };
static const char *const err_name[E_KINDS] = {"", "connect", "status", "reset",
                                              "eof", "timeout", "other"};
enum { F_BACKWARDS = 1, F_REPEAT = 2 };
#define TAIL 40
#define STDIN_TAG UINT64_MAX

struct viewer {
    int fd;
    uint8_t state, err, in_position, tail_len, flags;
    uint16_t status;
    int64_t last_seq, t_start, t_first, t_last; /* t_last: when last_seq arrived */
    char tail[TAIL];
};

static struct viewer *vs;
static int64_t *arrival; /* [viewer][move]: CLOCK_MONOTONIC ns when seq base+1+move was seen */
static int64_t *marks;   /* [move]: when the runner sent that move */
static int n_viewers, n_moves, epfd;
static int64_t base = -1;                   /* seq of the first event: the moves are base+1.. */
static int ready, live, inflight, errors[E_KINDS], status_count[600];
static int websocket; /* -W */
static int waiting, reached; /* while waiting: how many live viewers are at or past wait_seq */
static int64_t wait_seq, wait_deadline;

static void fail(struct viewer *v, int kind)
{
    if (v->state == CLOSED)
        return;
    if (v->t_first) {
        live--;
        if (waiting && v->last_seq >= wait_seq)
            reached--;
    } else {
        inflight--;
    }
    close(v->fd);
    v->state = CLOSED;
    v->err = (uint8_t)kind;
    errors[kind]++;
}

static void seen(struct viewer *v, int64_t seq, int64_t t)
{
    if (!v->t_first) { /* the first position event: the viewer is connected */
        v->t_first = v->t_last = t;
        v->last_seq = seq;
        ready++, live++, inflight--;
        if (base < 0)
            base = seq;
        if (waiting && seq >= wait_seq)
            reached++;
    } else if (seq < v->last_seq) {
        v->flags |= F_BACKWARDS;
    } else if (seq == v->last_seq) {
        v->flags |= F_REPEAT;
    } else {
        if (waiting && v->last_seq < wait_seq && seq >= wait_seq)
            reached++;
        v->last_seq = seq;
        v->t_last = t;
    }
    int64_t k = seq - base - 1;
    if (k >= 0 && k < n_moves && !arrival[(v - vs) * n_moves + k])
        arrival[(v - vs) * n_moves + k] = t;
}

/* Keep [from, end) as the tail to prepend to the next read (dropped when too long). */
static void keep(struct viewer *v, const char *from, const char *end)
{
    size_t n = (size_t)(end - from);
    v->tail_len = n <= TAIL ? (uint8_t)n : 0;
    memmove(v->tail, from, v->tail_len);
}

static const char EVENT[] = "event: position", SEQ[] = "data-seq=\"";
#define LEN(s) (sizeof(s) - 1)

static void scan(struct viewer *v, const char *p, const char *end, int64_t t)
{
    for (;;) {
        if (!v->in_position && !websocket) {
            const char *q = memmem(p, (size_t)(end - p), EVENT, LEN(EVENT));
            if (!q) {
                keep(v, end - p > (long)LEN(EVENT) ? end - (LEN(EVENT) - 1) : p, end);
                return;
            }
            p = q + LEN(EVENT);
            v->in_position = 1;
        }
        const char *q = memmem(p, (size_t)(end - p), SEQ, LEN(SEQ));
        if (!q) {
            keep(v, end - p > (long)LEN(SEQ) ? end - (LEN(SEQ) - 1) : p, end);
            return;
        }
        const char *d = q + LEN(SEQ);
        int64_t seq = 0;
        while (d < end && *d >= '0' && *d <= '9')
            seq = seq * 10 + (*d++ - '0');
        if (d == end) { /* the number may go on in the next read */
            keep(v, q, end);
            return;
        }
        v->in_position = 0;
        p = d;
        seen(v, seq, t);
    }
}

static char request[512];
static int request_len;

static void on_writable(struct viewer *v)
{
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(v->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err || write(v->fd, request, (size_t)request_len) != request_len) {
        fail(v, E_CONNECT);
        return;
    }
    v->state = HEADERS;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)(v - vs)};
    epoll_ctl(epfd, EPOLL_CTL_MOD, v->fd, &ev);
}

static void on_readable(struct viewer *v)
{
    static char buf[TAIL + 65536];
    memcpy(buf, v->tail, v->tail_len);
    ssize_t n = read(v->fd, buf + v->tail_len, sizeof buf - TAIL);
    int64_t t = now_ns();
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        fail(v, n == 0 ? E_EOF : errno == ECONNRESET ? E_RESET : E_OTHER);
        return;
    }
    const char *p = buf, *end = buf + v->tail_len + n;
    if (v->state == HEADERS) {
        if (!v->status) {
            if (end - p < 12) { /* "HTTP/1.1 200" not complete yet */
                keep(v, p, end);
                return;
            }
            v->status = (uint16_t)atoi(p + 9);
            if (v->status < 600)
                status_count[v->status]++;
            if (v->status != (websocket ? 101 : 200)) {
                fail(v, E_STATUS);
                return;
            }
        }
        const char *q = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (!q) {
            keep(v, end - p > 3 ? end - 3 : p, end);
            return;
        }
        v->state = BODY;
        p = q + 4;
    }
    scan(v, p, end, t);
}

static int next_viewer; /* the next one to connect */

static void connect_more(int k_addrs, struct sockaddr_in *server, int max_inflight)
{
    for (; next_viewer < n_viewers && inflight < max_inflight; next_viewer++) {
        struct viewer *v = &vs[next_viewer];
        inflight++;
        v->t_start = now_ns();
        v->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (v->fd < 0) {
            v->state = CLOSED, v->err = E_CONNECT, errors[E_CONNECT]++, inflight--;
            continue;
        }
        int one = 1;
        setsockopt(v->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(next_viewer % k_addrs));
        struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = (uint64_t)next_viewer};
        if (bind(v->fd, (struct sockaddr *)&src, sizeof src) < 0 ||
            (connect(v->fd, (struct sockaddr *)server, sizeof *server) < 0 &&
             errno != EINPROGRESS) ||
            epoll_ctl(epfd, EPOLL_CTL_ADD, v->fd, &ev) < 0)
            fail(v, E_CONNECT);
    }
}

/* Print the p-th percentile of sorted[0..n) in ms (nearest rank), null when n is 0. */
static void pct(const char *name, const int64_t *sorted, int n, double p, const char *after)
{
    int i = (int)(p / 100.0 * n + 0.999999) - 1;
    if (n == 0)
        printf("\"%s\": null%s", name, after);
    else
        printf("\"%s\": %.3f%s", name, sorted[i < 0 ? 0 : i >= n ? n - 1 : i] / 1e6, after);
}

static void summary(int64_t final_seq)
{
    int64_t *lat = malloc(sizeof *lat * (size_t)(n_viewers ? n_viewers : 1));
    int n = 0, final_state = 0, backwards = 0, repeats = 0;
    for (int i = 0; i < n_viewers; i++) {
        struct viewer *v = &vs[i];
        if (v->t_first)
            lat[n++] = v->t_first - v->t_start;
        final_state += v->state != CLOSED && v->t_first && v->last_seq == final_seq;
        backwards += !!(v->flags & F_BACKWARDS);
        repeats += !!(v->flags & F_REPEAT);
        /* A viewer that skipped a seq (coalesced) reached it with the next one it saw. */
        int64_t *a = &arrival[(int64_t)i * n_moves];
        for (int k = n_moves - 2; k >= 0; k--)
            if (a[k + 1] && (!a[k] || a[k + 1] < a[k]))
                a[k] = a[k + 1];
    }
    qsort(lat, (size_t)n, sizeof *lat, cmp_i64);
    printf("{\"viewers\": %d, \"connected\": %d, \"live\": %d, \"base_seq\": %lld, "
           "\"final_seq\": %lld, \"final_state\": %d, \"backwards\": %d, \"repeats\": %d, "
           "\"connect_ms\": {",
           n_viewers, ready, live, (long long)base, (long long)final_seq, final_state, backwards,
           repeats);
    pct("p50", lat, n, 50, ", ");
    pct("p99", lat, n, 99, ", ");
    pct("max", lat, n, 100, "}, \"errors\": {");
    for (int e = 1; e < E_KINDS; e++)
        printf("%s\"%s\": %d", e > 1 ? ", " : "", err_name[e], errors[e]);
    printf("}, \"status\": {");
    for (int s = 0, first = 1; s < 600; s++)
        if (status_count[s])
            printf("%s\"%d\": %d", first ? "" : ", ", s, status_count[s]), first = 0;
    printf("}, \"moves\": [");
    for (int k = 0, first = 1; k < n_moves; k++) {
        if (!marks[k])
            continue;
        n = 0;
        for (int i = 0; i < n_viewers; i++)
            if (arrival[(int64_t)i * n_moves + k])
                lat[n++] = arrival[(int64_t)i * n_moves + k] - marks[k];
        qsort(lat, (size_t)n, sizeof *lat, cmp_i64);
        printf("%s{\"seq\": %lld, \"reached\": %d, ", first ? "" : ", ", (long long)(base + 1 + k),
               n);
        pct("first_ms", lat, n, 0, ", ");
        pct("median_ms", lat, n, 50, ", ");
        pct("last_ms", lat, n, 100, "}");
        first = 0;
    }
    printf("]}\n");
    free(lat);
}

static void start_wait(int64_t seq, int64_t wait_ns)
{
    waiting = 1;
    wait_seq = seq;
    wait_deadline = now_ns() + wait_ns;
    reached = 0;
    for (int i = 0; i < n_viewers; i++)
        reached += vs[i].state != CLOSED && vs[i].t_first && vs[i].last_seq >= seq;
}

/* Read control lines; returns 1 once DONE (or EOF) was read, with *final set. */
static int on_stdin(int64_t wait_ns, int64_t *final)
{
    static char line[4096];
    static size_t used;
    ssize_t n = read(0, line + used, sizeof line - 1 - used);
    if (n <= 0 && !(n < 0 && errno == EINTR)) {
        *final = -1;
        return 1;
    }
    used += (size_t)(n > 0 ? n : 0);
    line[used] = 0;
    char *start = line, *nl;
    while ((nl = strchr(start, '\n'))) {
        *nl = 0;
        long long seq, t;
        if (sscanf(start, "MARK %lld %lld", &seq, &t) == 2) {
            if (base >= 0 && seq > base && seq <= base + n_moves)
                marks[seq - base - 1] = t;
        } else if (sscanf(start, "WAIT %lld", &seq) == 1) {
            start_wait(seq, wait_ns);
        } else if (strncmp(start, "DONE", 4) == 0) {
            *final = sscanf(start, "DONE %lld", &seq) == 1 ? seq : -1;
            return 1;
        } else {
            fprintf(stderr, "sse_fanout: ignored control line: %s\n", start);
        }
        start = nl + 1;
    }
    used = (size_t)(line + used - start);
    memmove(line, start, used);
    return 0;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *slug = NULL;
    int port = 0, max_inflight = 256, k_addrs = 0, opt;
    double ready_s = 60, wait_s = 10;
    while ((opt = getopt(argc, argv, "h:p:s:n:m:c:k:t:w:W")) != -1) {
        switch (opt) {
        case 'h': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 's': slug = optarg; break;
        case 'n': n_viewers = atoi(optarg); break;
        case 'm': n_moves = atoi(optarg); break;
        case 'c': max_inflight = atoi(optarg); break;
        case 'k': k_addrs = atoi(optarg); break;
        case 't': ready_s = atof(optarg); break;
        case 'w': wait_s = atof(optarg); break;
        case 'W': websocket = 1; break;
        default: return 2;
        }
    }
    struct sockaddr_in server = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (!slug || port <= 0 || n_viewers <= 0 || n_moves < 0 || max_inflight <= 0 ||
        inet_pton(AF_INET, host, &server.sin_addr) != 1) {
        fprintf(stderr, "usage: %s -p PORT -s SLUG -n VIEWERS -m MOVES [-h IPV4] [-c INFLIGHT] "
                        "[-k ADDRS] [-t READY_S] [-w WAIT_S] [-W]\n", argv[0]);
        return 2;
    }
    if (k_addrs <= 0)
        k_addrs = default_addrs(n_viewers);
    if (fds_for(n_viewers, "sse_fanout"))
        return 2;
    if (websocket)
        request_len = snprintf(request, sizeof request,
                               "GET /ws/b/%s/ HTTP/1.1\r\nHost: %s:%d\r\n"
                               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                               "Sec-WebSocket-Version: 13\r\n\r\n",
                               slug, host, port);
    else
        request_len = snprintf(request, sizeof request,
                               "GET /b/%s/events/ HTTP/1.1\r\nHost: %s:%d\r\n"
                               "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n",
                               slug, host, port);
    vs = calloc((size_t)n_viewers, sizeof *vs);
    arrival = calloc((size_t)n_viewers * (size_t)(n_moves ? n_moves : 1), sizeof *arrival);
    marks = calloc((size_t)(n_moves ? n_moves : 1), sizeof *marks);
    epfd = epoll_create1(0);
    if (!vs || !arrival || !marks || epfd < 0) {
        perror("sse_fanout");
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);

    int64_t wait_ns = (int64_t)(wait_s * 1e9), ready_deadline = now_ns() + (int64_t)(ready_s * 1e9);
    int phase = 0; /* 0: connecting, 1: moves, 2: final wait */
    int64_t final = -1, max_mark = -1;
    static struct epoll_event evs[1024];
    for (;;) {
        int64_t now = now_ns(), deadline = INT64_MAX;
        if (phase == 0) {
            connect_more(k_addrs, &server, max_inflight);
            if ((next_viewer == n_viewers && inflight == 0) || now >= ready_deadline) {
                for (int i = 0; i < n_viewers; i++)
                    if (vs[i].state != CLOSED && !vs[i].t_first)
                        fail(&vs[i], E_TIMEOUT);
                for (int i = next_viewer; i < n_viewers; i++)
                    vs[i].state = CLOSED, vs[i].err = E_TIMEOUT, errors[E_TIMEOUT]++;
                next_viewer = n_viewers;
                int n_err = 0;
                for (int e = 1; e < E_KINDS; e++)
                    n_err += errors[e];
                printf("READY %d %d %lld\n", ready, n_err, (long long)base);
                struct epoll_event ev = {.events = EPOLLIN, .data.u64 = STDIN_TAG};
                phase = 1;
                if (epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev) < 0) /* not a pipe: as if DONE */
                    phase = 2, start_wait(base, wait_ns), final = base;
            } else {
                deadline = ready_deadline;
            }
        }
        if (waiting) {
            if (reached >= live || now >= wait_deadline) {
                if (phase == 2)
                    break;
                int64_t t_all = 0;
                for (int i = 0; i < n_viewers; i++)
                    if (vs[i].state != CLOSED && vs[i].t_first && vs[i].last_seq >= wait_seq &&
                        vs[i].t_last > t_all)
                        t_all = vs[i].t_last;
                printf("REACHED %lld %d %d %lld\n", (long long)wait_seq, reached, live,
                       (long long)t_all);
                waiting = 0;
            } else {
                deadline = wait_deadline;
            }
        }
        int timeout = deadline == INT64_MAX ? -1 : (int)((deadline - now) / 1000000 + 1);
        int n = epoll_wait(epfd, evs, 1024, timeout);
        if (n < 0 && errno != EINTR) {
            perror("epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u64 == STDIN_TAG) {
                if (phase == 1 && on_stdin(wait_ns, &final)) {
                    for (int k = 0; k < n_moves; k++)
                        if (marks[k])
                            max_mark = base + 1 + k;
                    final = final >= 0 ? final : max_mark >= 0 ? max_mark : base;
                    epoll_ctl(epfd, EPOLL_CTL_DEL, 0, NULL);
                    start_wait(final, wait_ns);
                    phase = 2;
                }
                continue;
            }
            struct viewer *v = &vs[evs[i].data.u64];
            if (v->state == CONNECTING)
                on_writable(v);
            else if (v->state != CLOSED)
                on_readable(v);
        }
    }
    summary(final);
    return 0;
}
