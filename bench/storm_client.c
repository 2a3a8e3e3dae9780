/* storm_client: N SSE viewers of one board opening at once, then reconnecting as EventSource does.
 *
 *   storm_client -p PORT -s SLUG -n VIEWERS [-h 127.0.0.1] [-k ADDRS] [-t OPEN_S] [-w BACK_S]
 *                [-r RETRY_MS]
 *
 * One thread, one epoll, non-blocking sockets, no in-flight cap: every viewer's connect is
 * started in one go (a connect storm). Each viewer parses its stream as EventSource does:
 * chunked transfer decoding, lines ending in \n, \r\n or \r, `event:`, `data:`, `id:` and
 * `retry:` fields, an event dispatched on a blank line; a `position` event's seq is the number
 * after `data-seq="` in its data. The opening event is a viewer's first position event.
 *
 * A viewer whose stream ends or fails after its opening event reconnects as Chromium's
 * EventSource does (blink's event_source.cc): after the reconnection time (the stream's last
 * `retry:`, else RETRY_MS, 3000 by default like Chromium's kDefaultReconnectDelay) it sends the
 * request again, with `Last-Event-ID` when the stream has sent an `id:`; a refused or failed
 * attempt waits the same time again. A non-200 answer ends the viewer for good, as it ends an
 * EventSource (counted under status). Before OPEN every failure counts as row 4's error, and
 * one before a viewer's opening is final.
 *
 * Control on stdin/stdout (one line each):
 *   -> OPEN <opened> <errors> <base_seq> <open_ms>  every viewer has its opening event or failed
 *                             (or OPEN_S passed); open_ms: first connect -> last opening event
 *   <- KILL <t_ns>            the server is killed at t_ns (CLOCK_MONOTONIC): from then on a
 *                             viewer counts as back once a connection it opened later has sent it
 *                             a seq at or past the one waited for
 *   <- WAIT <seq>             -> BACK <seq> <viewers back> <viewers> <t_ns> once every viewer is
 *                             back at seq, or BACK_S after the WAIT; t_ns: when the last came back
 *   <- DONE                   print one JSON summary line and exit (EOF on stdin counts as DONE)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loadgen.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum { CONNECTING, HEADERS, BODY, WAITING, DEAD };
enum { E_NONE, E_CONNECT, E_STATUS, E_RESET, E_EOF, E_TIMEOUT, E_OTHER, E_KINDS };
static const char *const err_name[E_KINDS] = {"", "connect", "status", "reset",
                                              "eof", "timeout", "other"};
enum { C_SIZE, C_SIZE_EOL, C_DATA, C_DATA_EOL }; /* chunked decoding */
#define LINE 1024
#define ID_MAX 64
#define STDIN_TAG UINT64_MAX

struct viewer {
    int fd, len, retry_ms;
    uint8_t state, err, chunked, chunk_state, skip, after_cr, is_position, fresh;
    uint8_t opened, got_back, streaming; /* streaming: this connection sent an event */
    uint16_t status;
    int64_t chunk_left, event_seq, last_seq, t_start, t_open, t_last, t_back, due;
    char id[ID_MAX + 1];
    char line[LINE];
};

static struct viewer *vs;
static int n_viewers, epfd, k_addrs, default_retry_ms = 3000;
static struct sockaddr_in server;
static const char *host = "127.0.0.1", *slug;
static int port;
static int64_t base = -1, t_first_connect, t_last_open, t_kill = -1, wait_seq = -1;
static int opened, given_up, open_phase = 1, back, open_errors[E_KINDS], retry_fails[E_KINDS];
static int attempts, with_last_id, retry_seen = -1, streams_lost;

/* A min-heap of the waiting viewers by due time. */
static int *heap, heap_n;
static int64_t due_of(int i) { return vs[heap[i]].due; }
static void heap_push(int v)
{
    int i = heap_n++;
    heap[i] = v;
    while (i && due_of((i - 1) / 2) > due_of(i)) {
        int p = (i - 1) / 2, t = heap[p];
        heap[p] = heap[i], heap[i] = t, i = p;
    }
}
static int heap_pop(void)
{
    int top = heap[0], i = 0;
    heap[0] = heap[--heap_n];
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < heap_n && due_of(l) < due_of(m))
            m = l;
        if (r < heap_n && due_of(r) < due_of(m))
            m = r;
        if (m == i)
            return top;
        int t = heap[m];
        heap[m] = heap[i], heap[i] = t, i = m;
    }
}

/* Whether the viewer has, on a connection opened after the kill, a seq at or past wait_seq. */
static int is_back(const struct viewer *v)
{
    return wait_seq >= 0 && v->fresh && v->last_seq >= wait_seq;
}

static void fail(struct viewer *v, int kind)
{
    if (v->state == DEAD || v->state == WAITING)
        return;
    if (v->fd >= 0)
        close(v->fd);
    v->fd = -1;
    if (open_phase) { /* row 4 counts it, even for a viewer that had opened: it lost its stream */
        open_errors[kind]++;
        given_up += !v->opened;
    } else if (v->streaming) {
        streams_lost++; /* the kill (or a later cut), not a failed attempt */
    } else {
        retry_fails[kind]++;
    }
    /* EventSource gives up on a non-200 answer; one that never opened is row 4's error only;
     * one cut after its opening reconnects, even while the others are still opening. */
    if ((open_phase && !v->opened) || kind == E_STATUS) {
        v->state = DEAD, v->err = (uint8_t)kind;
        return;
    }
    v->state = WAITING;
    v->due = now_ns() + (int64_t)v->retry_ms * 1000000;
    heap_push((int)(v - vs));
}

static void seen(struct viewer *v, int64_t seq, int64_t t)
{
    if (!v->opened) {
        v->opened = 1, v->t_open = t;
        opened++;
        if (t > t_last_open)
            t_last_open = t;
        if (base < 0)
            base = seq;
    }
    v->last_seq = seq, v->t_last = t, v->streaming = 1;
    if (!v->got_back && is_back(v))
        v->got_back = 1, back++, v->t_back = t;
}

static void field(struct viewer *v, int64_t t)
{
    char *s = v->line, *colon = memchr(s, ':', (size_t)v->len);
    (void)t;
    if (colon == s)
        return; /* a comment */
    size_t name_len = colon ? (size_t)(colon - s) : (size_t)v->len;
    char *value = colon ? colon + 1 : s + v->len;
    if (value < s + v->len && *value == ' ')
        value++;
    size_t value_len = (size_t)(s + v->len - value);
    if (name_len == 5 && !memcmp(s, "event", 5)) {
        v->is_position = value_len == 8 && !memcmp(value, "position", 8);
    } else if (name_len == 4 && !memcmp(s, "data", 4)) {
        static const char SEQ[] = "data-seq=\"";
        char *q = memmem(value, value_len, SEQ, sizeof SEQ - 1);
        if (q) {
            int64_t seq = 0;
            for (q += sizeof SEQ - 1; q < s + v->len && *q >= '0' && *q <= '9'; q++)
                seq = seq * 10 + (*q - '0');
            v->event_seq = seq;
        }
    } else if (name_len == 2 && !memcmp(s, "id", 2)) {
        if (!memchr(value, 0, value_len)) {
            size_t n = value_len < ID_MAX ? value_len : ID_MAX;
            memcpy(v->id, value, n);
            v->id[n] = 0;
        }
    } else if (name_len == 5 && !memcmp(s, "retry", 5) && value_len) {
        int ms = 0, digits = 1;
        for (size_t i = 0; i < value_len; i++)
            digits &= value[i] >= '0' && value[i] <= '9', ms = ms * 10 + (value[i] - '0');
        if (digits)
            v->retry_ms = retry_seen = ms;
    }
}

static void end_of_line(struct viewer *v, int64_t t)
{
    if (v->skip) {
        v->skip = 0;
    } else if (v->len == 0) { /* dispatch */
        if (v->is_position && v->event_seq >= 0)
            seen(v, v->event_seq, t);
        v->is_position = 0, v->event_seq = -1;
    } else {
        field(v, t);
    }
    v->len = 0;
}

/* Stream bytes (after chunked decoding) into lines. */
static void sse_bytes(struct viewer *v, const char *p, size_t n, int64_t t)
{
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (v->after_cr) {
            v->after_cr = 0;
            if (c == '\n')
                continue;
        }
        if (c == '\n' || c == '\r') {
            v->after_cr = c == '\r';
            end_of_line(v, t);
        } else if (v->skip) {
            continue;
        } else if (v->len < LINE) {
            v->line[v->len++] = c;
        } else {
            v->skip = 1; /* too long for anything we read: a padding comment */
        }
    }
}

static int hex(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : (c | 32) >= 'a' && (c | 32) <= 'f' ? (c | 32) - 'a' + 10 : -1;
}

/* Body bytes: decode chunked transfer coding, if the answer used it. Returns 0 at its end. */
static int body_bytes(struct viewer *v, const char *p, const char *end, int64_t t)
{
    if (!v->chunked) {
        sse_bytes(v, p, (size_t)(end - p), t);
        return 1;
    }
    while (p < end) {
        switch (v->chunk_state) {
        case C_SIZE:
            if (hex(*p) >= 0)
                v->chunk_left = v->chunk_left * 16 + hex(*p);
            else
                v->chunk_state = C_SIZE_EOL;
            if (*p++ == '\n')
                goto size_done;
            break;
        case C_SIZE_EOL:
            if (*p++ == '\n')
                goto size_done;
            break;
        case C_DATA: {
            size_t n = (size_t)(end - p) < (size_t)v->chunk_left ? (size_t)(end - p)
                                                                  : (size_t)v->chunk_left;
            sse_bytes(v, p, n, t);
            p += n, v->chunk_left -= (int64_t)n;
            if (!v->chunk_left)
                v->chunk_state = C_DATA_EOL;
            break;
        }
        case C_DATA_EOL:
            if (*p++ == '\n')
                v->chunk_state = C_SIZE;
            break;
        }
        continue;
    size_done:
        if (!v->chunk_left)
            return 0; /* the last chunk: the stream ended */
        v->chunk_state = C_DATA;
    }
    return 1;
}

static void start_connect(struct viewer *v)
{
    int i = (int)(v - vs);
    v->t_start = now_ns();
    v->state = CONNECTING, v->status = 0, v->len = 0, v->skip = 0, v->after_cr = 0;
    v->chunked = 0, v->chunk_state = C_SIZE, v->chunk_left = 0, v->is_position = 0;
    v->event_seq = -1, v->streaming = 0;
    if (!open_phase)
        attempts++;
    v->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (v->fd < 0) {
        fail(v, E_CONNECT);
        return;
    }
    int one = 1;
    setsockopt(v->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    struct sockaddr_in src = {.sin_family = AF_INET};
    src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(i % k_addrs));
    struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = (uint64_t)i};
    if (bind(v->fd, (struct sockaddr *)&src, sizeof src) < 0 ||
        (connect(v->fd, (struct sockaddr *)&server, sizeof server) < 0 && errno != EINPROGRESS) ||
        epoll_ctl(epfd, EPOLL_CTL_ADD, v->fd, &ev) < 0)
        fail(v, E_CONNECT);
}

static void on_writable(struct viewer *v)
{
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(v->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    char request[512];
    int n = snprintf(request, sizeof request,
                     "GET /b/%s/events/ HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\n"
                     "Cache-Control: no-cache\r\n%s%s%s\r\n",
                     slug, host, port, v->id[0] ? "Last-Event-ID: " : "", v->id,
                     v->id[0] ? "\r\n" : "");
    if (err || write(v->fd, request, (size_t)n) != n) {
        fail(v, E_CONNECT);
        return;
    }
    if (v->id[0])
        with_last_id++;
    v->state = HEADERS;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)(v - vs)};
    epoll_ctl(epfd, EPOLL_CTL_MOD, v->fd, &ev);
}

static void on_readable(struct viewer *v)
{
    static char buf[65536];
    ssize_t n = read(v->fd, buf, sizeof buf);
    int64_t t = now_ns();
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        fail(v, n == 0 ? E_EOF : errno == ECONNRESET ? E_RESET : E_OTHER);
        return;
    }
    const char *p = buf, *end = buf + n;
    if (v->state == HEADERS) { /* gather the head in the line buffer */
        while (p < end && v->state == HEADERS) {
            if (v->len >= LINE - 1) {
                fail(v, E_OTHER);
                return;
            }
            v->line[v->len++] = *p++;
            if (v->len >= 4 && !memcmp(v->line + v->len - 4, "\r\n\r\n", 4)) {
                v->line[v->len] = 0;
                v->status = (uint16_t)(v->len > 12 ? atoi(v->line + 9) : 0);
                if (v->status != 200) {
                    fail(v, E_STATUS);
                    return;
                }
                v->chunked = strcasestr(v->line, "\ntransfer-encoding: chunked") != NULL;
                v->state = BODY, v->len = 0;
                if (t_kill >= 0 && v->t_start >= t_kill) /* only this stream's seqs count now */
                    v->fresh = 1, v->last_seq = -1;
            }
        }
    }
    if (v->state == BODY && !body_bytes(v, p, end, t))
        fail(v, E_EOF);
}

static double pct_ms(const int64_t *sorted, int n, double p)
{
    int i = (int)(p / 100.0 * n + 0.999999) - 1;
    return n ? sorted[i < 0 ? 0 : i >= n ? n - 1 : i] / 1e6 : -1;
}

static void errors_json(const char *name, const int *counts, const char *after)
{
    printf("\"%s\": {", name);
    for (int e = 1; e < E_KINDS; e++)
        printf("%s\"%s\": %d", e > 1 ? ", " : "", err_name[e], counts[e]);
    printf("}%s", after);
}

static void summary(void)
{
    int64_t *lat = malloc(sizeof *lat * (size_t)n_viewers);
    int n = 0, alive = 0;
    for (int i = 0; i < n_viewers; i++) {
        if (vs[i].got_back)
            lat[n++] = vs[i].t_back - t_kill;
        alive += vs[i].state == BODY;
    }
    qsort(lat, (size_t)n, sizeof *lat, cmp_i64);
    printf("{\"viewers\": %d, \"opened\": %d, \"base_seq\": %lld, \"open_ms\": %.3f, ",
           n_viewers, opened, (long long)base,
           opened ? (t_last_open - t_first_connect) / 1e6 : -1.0);
    errors_json("open_errors", open_errors, ", ");
    printf("\"killed\": %s, \"wait_seq\": %lld, \"back\": %d, \"streaming_at_end\": %d, ",
           t_kill >= 0 ? "true" : "false", (long long)wait_seq, back, alive);
    printf("\"back_ms\": {\"p50\": %.3f, \"p99\": %.3f, \"max\": %.3f}, ", pct_ms(lat, n, 50),
           pct_ms(lat, n, 99), pct_ms(lat, n, 100));
    printf("\"streams_lost\": %d, \"attempts\": %d, \"with_last_event_id\": %d, \"retry_ms_sent\": %d, "
           "\"default_retry_ms\": %d, ",
           streams_lost, attempts, with_last_id, retry_seen, default_retry_ms);
    errors_json("failed_attempts", retry_fails, "}\n");
    free(lat);
}

/* Read control lines: 1 once DONE (or EOF) was read, else 2 when a WAIT was, else 0. */
static int on_stdin(void)
{
    int got = 0;
    static char line[4096];
    static size_t used;
    ssize_t n = read(0, line + used, sizeof line - 1 - used);
    if (n <= 0 && !(n < 0 && errno == EINTR))
        return 1;
    used += (size_t)(n > 0 ? n : 0);
    line[used] = 0;
    char *start = line, *nl;
    while ((nl = strchr(start, '\n'))) {
        *nl = 0;
        long long v;
        if (sscanf(start, "KILL %lld", &v) == 1)
            t_kill = v;
        else if (sscanf(start, "WAIT %lld", &v) == 1) {
            wait_seq = v, back = 0;
            for (int i = 0; i < n_viewers; i++) { /* some may be back before the WAIT came */
                vs[i].got_back = (uint8_t)is_back(&vs[i]);
                vs[i].t_back = vs[i].t_last;
                back += vs[i].got_back;
            }
            got = 2;
        } else if (strncmp(start, "DONE", 4) == 0)
            return 1;
        else
            fprintf(stderr, "storm_client: ignored control line: %s\n", start);
        start = nl + 1;
    }
    used = (size_t)(line + used - start);
    memmove(line, start, used);
    return got;
}

int main(int argc, char **argv)
{
    int opt;
    double open_s = 60, back_s = 60;
    while ((opt = getopt(argc, argv, "h:p:s:n:k:t:w:r:")) != -1) {
        switch (opt) {
        case 'h': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 's': slug = optarg; break;
        case 'n': n_viewers = atoi(optarg); break;
        case 'k': k_addrs = atoi(optarg); break;
        case 't': open_s = atof(optarg); break;
        case 'w': back_s = atof(optarg); break;
        case 'r': default_retry_ms = atoi(optarg); break;
        default: return 2;
        }
    }
    server.sin_family = AF_INET, server.sin_port = htons((uint16_t)port);
    if (!slug || port <= 0 || n_viewers <= 0 || default_retry_ms < 0 ||
        inet_pton(AF_INET, host, &server.sin_addr) != 1) {
        fprintf(stderr, "usage: %s -p PORT -s SLUG -n VIEWERS [-h IPV4] [-k ADDRS] [-t OPEN_S] "
                        "[-w BACK_S] [-r RETRY_MS]\n", argv[0]);
        return 2;
    }
    if (k_addrs <= 0)
        k_addrs = default_addrs(n_viewers);
    if (fds_for(n_viewers, "storm_client"))
        return 2;
    vs = calloc((size_t)n_viewers, sizeof *vs);
    heap = calloc((size_t)n_viewers, sizeof *heap);
    epfd = epoll_create1(0);
    if (!vs || !heap || epfd < 0) {
        perror("storm_client");
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    t_first_connect = now_ns();
    for (int i = 0; i < n_viewers; i++) {
        vs[i].fd = -1, vs[i].retry_ms = default_retry_ms, vs[i].last_seq = -1;
        start_connect(&vs[i]);
    }
    int64_t open_deadline = t_first_connect + (int64_t)(open_s * 1e9), wait_deadline = 0;
    int waiting = 0;
    static struct epoll_event evs[1024];
    for (;;) {
        int64_t now = now_ns(), deadline = INT64_MAX;
        if (open_phase) {
            if (opened + given_up >= n_viewers || now >= open_deadline) {
                for (int i = 0; i < n_viewers; i++)
                    if (!vs[i].opened && vs[i].state != DEAD)
                        fail(&vs[i], E_TIMEOUT);
                int n_err = 0;
                for (int e = 1; e < E_KINDS; e++)
                    n_err += open_errors[e];
                printf("OPEN %d %d %lld %.3f\n", opened, n_err, (long long)base,
                       opened ? (t_last_open - t_first_connect) / 1e6 : -1.0);
                open_phase = 0;
                struct epoll_event ev = {.events = EPOLLIN, .data.u64 = STDIN_TAG};
                if (epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev) < 0) /* not a pipe: as if DONE */
                    break;
            } else {
                deadline = open_deadline;
            }
        }
        /* Those due now; one that fails at once is due again a retry later (never now: a
         * `retry: 0` would loop), hence the bound. */
        for (int budget = heap_n; budget-- && heap_n && vs[heap[0]].due <= now;)
            start_connect(&vs[heap_pop()]);
        if (heap_n && vs[heap[0]].due < deadline)
            deadline = vs[heap[0]].due;
        if (waiting) {
            if (back >= n_viewers || now >= wait_deadline) {
                int64_t t_all = 0;
                for (int i = 0; i < n_viewers; i++)
                    if (vs[i].got_back && vs[i].t_back > t_all)
                        t_all = vs[i].t_back;
                printf("BACK %lld %d %d %lld\n", (long long)wait_seq, back, n_viewers,
                       (long long)t_all);
                waiting = 0;
            } else if (wait_deadline < deadline) {
                deadline = wait_deadline;
            }
        }
        int timeout = deadline == INT64_MAX ? -1 : (int)((deadline - now) / 1000000 + 1);
        int n = epoll_wait(epfd, evs, 1024, timeout);
        if (n < 0 && errno != EINTR) {
            perror("epoll_wait");
            return 1;
        }
        int done = 0;
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u64 == STDIN_TAG) {
                int got = on_stdin();
                if (got == 2)
                    waiting = 1, wait_deadline = now_ns() + (int64_t)(back_s * 1e9);
                done |= got == 1;
                continue;
            }
            struct viewer *v = &vs[evs[i].data.u64];
            if (v->state == CONNECTING)
                on_writable(v);
            else if (v->state == HEADERS || v->state == BODY)
                on_readable(v);
        }
        if (done)
            break;
    }
    summary();
    return 0;
}
