/* post_burst: C keep-alive HTTP/1.1 connections POSTing moves to one board as fast as they can.
 *
 *   post_burst -p PORT -s SLUG -k CSRFTOKEN [-h 127.0.0.1] [-c CONNS] [-t SECONDS]
 *
 * One thread, one epoll, non-blocking sockets. Each of CONNS connections (default 8) sends
 * `POST /b/SLUG/move` with `direction=d`, a, s, w, d, ... (each four cancel out, connection k
 * starting at the k-th), with the csrftoken cookie and X-CSRFToken header, waits for the whole
 * answer (headers, then Content-Length bytes of JSON), and sends the next, until SECONDS have
 * passed since the first connect. A connection the server closes (or answers with
 * `Connection: close`) is reopened; a transport error (or no answer 30 s after SECONDS) counts
 * as status 0.
 *
 * Prints one JSON line at the end: {"posts", "accepted" (2xx), "status": {code: count} for
 * the non-2xx answers, "post_ms": {"p50", "p99"} over every request, "start_ns", "end_ns",
 * "last_accepted_ns" (CLOCK_MONOTONIC ns when the last 2xx answer was complete), "max_seq" (the
 * highest "seq" in the answers, -1 if none)}.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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

enum { CONNECTING, READING, CLOSED };
#define BUF 16384

struct conn {
    int fd;
    uint8_t state;
    unsigned next; /* index of the next direction */
    int64_t sent;  /* CLOCK_MONOTONIC ns the current request was written */
    size_t used;   /* bytes of the answer so far in buf */
    char buf[BUF];
};

static struct conn *cs;
static int n_conns, epfd;
static struct sockaddr_in server;
static const char *slug, *token, *host;
static int port;
static int64_t *lat; /* ns per request */
static size_t n_lat, cap_lat;
static long long accepted, status_count[600], max_seq = -1;
static int64_t last_accepted;

static void record(int status, int64_t t, int64_t sent)
{
    if (n_lat == cap_lat) {
        cap_lat = cap_lat ? cap_lat * 2 : 65536;
        lat = realloc(lat, cap_lat * sizeof *lat);
        if (!lat) {
            perror("post_burst");
            exit(1);
        }
    }
    lat[n_lat++] = t - sent;
    if (status >= 200 && status < 300) {
        accepted++;
        last_accepted = t;
    } else {
        status_count[status >= 0 && status < 600 ? status : 0]++;
    }
}

static void open_conn(struct conn *c)
{
    c->used = 0;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) {
        perror("post_burst: socket");
        exit(1);
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = (uint64_t)(c - cs)};
    c->state = CONNECTING;
    if ((connect(c->fd, (struct sockaddr *)&server, sizeof server) < 0 && errno != EINPROGRESS) ||
        epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        perror("post_burst: connect");
        exit(1);
    }
}

static void close_conn(struct conn *c)
{
    close(c->fd);
    c->state = CLOSED;
}

/* Write the next move; 0 on a transport error. */
static int send_move(struct conn *c)
{
    static const char dirs[] = "dasw";
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "POST /b/%s/move HTTP/1.1\r\nHost: %s:%d\r\n"
                     "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 11\r\n"
                     "Accept: application/json\r\nCookie: csrftoken=%s\r\nX-CSRFToken: %s\r\n\r\n"
                     "direction=%c",
                     slug, host, port, token, token, dirs[c->next++ % 4]);
    c->sent = now_ns();
    c->used = 0;
    return n > 0 && n < (int)sizeof req && write(c->fd, req, (size_t)n) == n;
}

/* A transport error on c: count it, reopen if there is time left. */
static void broken(struct conn *c, int64_t end)
{
    int64_t t = now_ns();
    record(0, t, c->sent);
    close_conn(c);
    if (t < end)
        open_conn(c);
}

static void on_writable(struct conn *c, int64_t end)
{
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    c->sent = now_ns();
    if (err || !send_move(c)) {
        broken(c, end);
        return;
    }
    c->state = READING;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)(c - cs)};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void on_readable(struct conn *c, int64_t end)
{
    ssize_t n = read(c->fd, c->buf + c->used, BUF - 1 - c->used);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        broken(c, end);
        return;
    }
    c->used += (size_t)n;
    c->buf[c->used] = 0;
    char *head_end = memmem(c->buf, c->used, "\r\n\r\n", 4);
    if (!head_end) {
        if (c->used >= BUF - 1)
            broken(c, end);
        return;
    }
    *head_end = 0; /* headers are a C string now; the body starts at head_end + 4 */
    long length = 0;
    int closing = 0;
    for (char *line = strstr(c->buf, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "content-length:", 15) == 0)
            length = strtol(line + 17, NULL, 10);
        else if (strncasecmp(line + 2, "connection:", 11) == 0 && strcasestr(line + 13, "close"))
            closing = 1;
    }
    char *body = head_end + 4;
    size_t have = c->used - (size_t)(body - c->buf);
    if ((long)have < length) {
        *head_end = '\r';
        if (c->used >= BUF - 1)
            broken(c, end);
        return;
    }
    int64_t t = now_ns();
    int status = strncmp(c->buf, "HTTP/1.", 7) == 0 ? atoi(c->buf + 9) : 0;
    body[length] = 0;
    char *seq = strstr(body, "\"seq\":");
    if (seq) {
        long long s = strtoll(seq + 6, NULL, 10);
        if (s > max_seq)
            max_seq = s;
    }
    record(status, t, c->sent);
    if (closing) {
        close_conn(c);
        if (t < end)
            open_conn(c);
    } else if (t < end) {
        if (!send_move(c))
            broken(c, end);
    } else {
        close_conn(c);
    }
}

/* p-th percentile of sorted lat (nearest rank) in ms, or null. */
static void pct(const char *name, double p, const char *after)
{
    long i = (long)(p / 100.0 * (double)n_lat + 0.999999) - 1;
    if (n_lat == 0)
        printf("\"%s\": null%s", name, after);
    else
        printf("\"%s\": %.3f%s", name, lat[i < 0 ? 0 : i >= (long)n_lat ? (long)n_lat - 1 : i] / 1e6,
               after);
}

int main(int argc, char **argv)
{
    double seconds = 5;
    int opt;
    host = "127.0.0.1";
    n_conns = 8;
    while ((opt = getopt(argc, argv, "h:p:s:k:c:t:")) != -1) {
        switch (opt) {
        case 'h': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 's': slug = optarg; break;
        case 'k': token = optarg; break;
        case 'c': n_conns = atoi(optarg); break;
        case 't': seconds = atof(optarg); break;
        default: return 2;
        }
    }
    server.sin_family = AF_INET;
    server.sin_port = htons((uint16_t)port);
    if (!slug || !token || port <= 0 || n_conns <= 0 || seconds <= 0 || strlen(slug) > 200 ||
        strlen(token) > 200 || inet_pton(AF_INET, host, &server.sin_addr) != 1) {
        fprintf(stderr, "usage: %s -p PORT -s SLUG -k CSRFTOKEN [-h IPV4] [-c CONNS] "
                        "[-t SECONDS]\n", argv[0]);
        return 2;
    }
    cs = calloc((size_t)n_conns, sizeof *cs);
    epfd = epoll_create1(0);
    if (!cs || epfd < 0) {
        perror("post_burst");
        return 1;
    }
    int64_t start = now_ns(), end = start + (int64_t)(seconds * 1e9);
    for (int i = 0; i < n_conns; i++) {
        cs[i].next = (unsigned)i;
        open_conn(&cs[i]);
    }
    static struct epoll_event evs[256];
    for (;;) {
        int open = 0;
        for (int i = 0; i < n_conns; i++)
            open += cs[i].state != CLOSED;
        if (!open)
            break;
        if (now_ns() > end + 30000000000LL) { /* an answer that never came: a transport error */
            for (int i = 0; i < n_conns; i++)
                if (cs[i].state != CLOSED)
                    record(0, now_ns(), cs[i].sent), close_conn(&cs[i]);
            break;
        }
        int n = epoll_wait(epfd, evs, 256, 1000);
        if (n < 0 && errno != EINTR) {
            perror("epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = &cs[evs[i].data.u64];
            if (c->state == CONNECTING)
                on_writable(c, end);
            else if (c->state == READING)
                on_readable(c, end);
        }
    }
    int64_t finished = now_ns();
    qsort(lat, n_lat, sizeof *lat, cmp_i64);
    printf("{\"posts\": %zu, \"accepted\": %lld, \"status\": {", n_lat, accepted);
    for (int s = 0, first = 1; s < 600; s++)
        if (status_count[s])
            printf("%s\"%d\": %lld", first ? "" : ", ", s, status_count[s]), first = 0;
    printf("}, \"post_ms\": {");
    pct("p50", 50, ", ");
    pct("p99", 99, "}, ");
    printf("\"start_ns\": %lld, \"end_ns\": %lld, \"last_accepted_ns\": %lld, \"max_seq\": %lld}\n",
           (long long)start, (long long)finished, (long long)last_accepted, max_seq);
    return 0;
}
