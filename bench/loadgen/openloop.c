/*
 * openloop: a constant-rate (open-loop) HTTP/1.1 load generator.
 *
 * Request i is scheduled at start + i / rate whatever the server does, and its latency is
 * measured from that *scheduled* instant, not from when it was written to a socket. When
 * the server is slow, requests queue for a free connection and the queueing time counts:
 * this is the correction for "coordinated omission" that closed-loop tools (wrk, ab) lack,
 * where a stalled server also stalls the load that would have exposed the stall.
 *
 * usage:  openloop -p PORT [-a 127.0.0.1] [-r RATE] [-d SECONDS] [-c CONNS] [-u PATH] [-t GRACE]
 * output: one JSON object on stdout; latencies in microseconds.
 *
 * Each connection carries one request at a time (no pipelining) and is kept alive. Responses
 * must carry Content-Length or be chunked, and fit in RBUF bytes.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define RBUF 65536
#define MAX_CONNS 1024
#define MAX_CONNECT_ERRORS 1000

typedef struct {
    int fd;
    int connected;  /* the non-blocking connect() has completed */
    int busy;       /* a request is in flight */
    int wantw;      /* EPOLLOUT is in the interest set */
    double sched;   /* the scheduled instant of the request in flight */
    size_t sent;    /* bytes of the request written so far */
    size_t rlen;    /* bytes buffered in rbuf */
    char rbuf[RBUF + 1];
} conn_t;

static const char *addr_s = "127.0.0.1", *path = "/";
static int port = 0, nconns = 16;
static double rate = 1000, duration = 10, grace = 5;

static struct sockaddr_in addr;
static int epfd;
static conn_t *conns;
static char req[2048];
static size_t reqlen;
static double *lat; /* successful latencies, seconds */
static long nlat, errors, connect_errors;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

static void conn_open(conn_t *c) {
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) die("socket");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) die("connect");
    c->connected = c->busy = 0;
    c->wantw = 1;
    c->sent = c->rlen = 0;
    /* EPOLLOUT reports the end of the connect; it is dropped once connected (level-triggered). */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
}

/* Close and reopen; a request in flight on the connection is an error. */
static void conn_reset(conn_t *c) {
    if (c->busy) errors++;
    close(c->fd); /* also removes it from the epoll set */
    conn_open(c);
}

static void want_write(conn_t *c, int on) {
    if (c->wantw == on) return;
    c->wantw = on;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void conn_write(conn_t *c) {
    ssize_t n = send(c->fd, req + c->sent, reqlen - c->sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) n = 0;
    if (n < 0) return conn_reset(c);
    c->sent += (size_t)n;
    want_write(c, c->sent < reqlen); /* a partial write finishes on EPOLLOUT */
}

/* Copies a header's value (up to CR) into out when line starts with name; returns 1 if so. */
static int header(const char *line, const char *name, char *out, size_t outlen) {
    size_t n = strlen(name);
    if (strncasecmp(line, name, n) != 0 || line[n] != ':') return 0;
    const char *v = line + n + 1;
    while (*v == ' ' || *v == '\t') v++;
    size_t i = 0;
    while (v[i] && v[i] != '\r' && v[i] != '\n' && i + 1 < outlen) out[i] = v[i], i++;
    out[i] = 0;
    return 1;
}

/* Length of a complete chunked body at p, 0 if more bytes are needed, -1 if malformed. */
static long chunked_len(const char *p, size_t len) {
    size_t off = 0;
    for (;;) {
        const char *eol = memmem(p + off, len - off, "\r\n", 2);
        if (!eol) return 0;
        char *end;
        unsigned long size = strtoul(p + off, &end, 16);
        if (end == p + off) return -1;
        off = (size_t)(eol - p) + 2;
        if (size == 0) { /* the last chunk; optional trailers end with an empty line */
            const char *t = memmem(p + off - 2, len - off + 2, "\r\n\r\n", 4);
            return t ? (t - p) + 4 : 0;
        }
        if (len < off + size + 2) return 0;
        off += size + 2;
    }
}

/* Length of the complete response at the start of buf (NUL-terminated), 0 if incomplete, -1 if
 * malformed. Sets *status, and *close when the server will close the connection after it. */
static long parse_response(const char *buf, size_t len, int *status, int *close_after) {
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (!end) return 0;
    if (len < 12 || strncmp(buf, "HTTP/1.", 7) != 0) return -1;
    size_t hlen = (size_t)(end - buf) + 4;
    long clen = -1;
    int chunked = 0;
    char v[128];
    *status = atoi(buf + 9);
    *close_after = buf[7] == '0'; /* HTTP/1.0 closes unless told otherwise */
    for (const char *line = strchr(buf, '\n') + 1; line < end; line = strchr(line, '\n') + 1) {
        if (header(line, "content-length", v, sizeof v)) clen = strtol(v, NULL, 10);
        else if (header(line, "transfer-encoding", v, sizeof v)) chunked = strcasestr(v, "chunked") != NULL;
        else if (header(line, "connection", v, sizeof v)) *close_after = strcasestr(v, "close") != NULL;
    }
    if (*status / 100 == 1 || *status == 204 || *status == 304) return (long)hlen;
    if (chunked) {
        long body = chunked_len(buf + hlen, len - hlen);
        return body <= 0 ? body : (long)hlen + body;
    }
    if (clen < 0) return -1; /* a body delimited by close cannot be kept alive: unsupported */
    return len >= hlen + (size_t)clen ? (long)(hlen + (size_t)clen) : 0;
}

static void conn_read(conn_t *c) {
    ssize_t n = recv(c->fd, c->rbuf + c->rlen, RBUF - c->rlen, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0 || !c->busy) return conn_reset(c); /* closed, failed, or bytes nobody asked for */
    c->rlen += (size_t)n;
    c->rbuf[c->rlen] = 0;
    int status = 0, close_after = 0;
    long done = parse_response(c->rbuf, c->rlen, &status, &close_after);
    if (done == 0 && c->rlen < RBUF) return;
    if (done <= 0 || (size_t)done != c->rlen) return conn_reset(c); /* malformed, too big, or extra */
    if (status >= 200 && status < 400) lat[nlat++] = now() - c->sched;
    else errors++;
    c->busy = 0;
    c->rlen = 0;
    if (close_after) conn_reset(c);
}

static void on_event(conn_t *c, unsigned events) {
    if (!c->connected) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err || (events & (EPOLLERR | EPOLLHUP))) {
            if (++connect_errors > MAX_CONNECT_ERRORS) {
                fprintf(stderr, "openloop: cannot connect to %s:%d: %s\n", addr_s, port, strerror(err));
                exit(2);
            }
            return conn_reset(c);
        }
        if (!(events & EPOLLOUT)) return;
        c->connected = 1;
        want_write(c, 0);
        return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) conn_read(c);
    else if ((events & EPOLLOUT) && c->busy) conn_write(c);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of the sorted latencies, in microseconds. */
static double pct(double p) {
    if (nlat == 0) return 0;
    long i = (long)ceil(p / 100.0 * nlat) - 1;
    return lat[i < 0 ? 0 : i] * 1e6;
}

int main(int argc, char **argv) {
    int o;
    while ((o = getopt(argc, argv, "a:p:r:d:c:u:t:")) != -1) {
        switch (o) {
        case 'a': addr_s = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'r': rate = atof(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 'c': nconns = atoi(optarg); break;
        case 'u': path = optarg; break;
        case 't': grace = atof(optarg); break;
        default: fprintf(stderr, "usage: openloop -p PORT [-a ADDR] [-r RATE] [-d S] [-c CONNS] [-u PATH] [-t S]\n"); return 2;
        }
    }
    if (port <= 0 || rate <= 0 || duration <= 0 || nconns < 1 || nconns > MAX_CONNS) {
        fprintf(stderr, "openloop: need -p PORT, a positive rate and duration, 1..%d connections\n", MAX_CONNS);
        return 2;
    }
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, addr_s, &addr.sin_addr) != 1) die("inet_pton");
    reqlen = (size_t)snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: openloop\r\n\r\n",
                              path, addr_s, port);
    /* The default 50 us timer slack would make every wake-up (and so every send) late. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

    long total = lround(rate * duration);
    lat = malloc(sizeof *lat * (size_t)total);
    conns = calloc((size_t)nconns, sizeof *conns);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (!lat || !conns || epfd < 0 || tfd < 0) die("setup");
    struct epoll_event tev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &tev);
    for (int i = 0; i < nconns; i++) conn_open(&conns[i]);

    double start = now() + 0.1; /* leave the connects time to finish */
    long next = 0;              /* the next request to send */
    long max_backlog = 0;
    struct epoll_event evs[64];
    for (;;) {
        double t = now();
        /* Requests whose instant has passed are sent in order, as connections free up. */
        long due = t < start ? 0 : (long)((t - start) * rate) + 1;
        if (due > total) due = total;
        for (int i = 0; i < nconns && next < due; i++) {
            conn_t *c = &conns[i];
            if (!c->connected || c->busy) continue;
            c->busy = 1;
            c->sched = start + (double)next / rate;
            c->sent = 0;
            next++;
            conn_write(c);
        }
        if (due - next > max_backlog) max_backlog = due - next;
        int inflight = 0;
        for (int i = 0; i < nconns; i++) inflight += conns[i].busy;
        if (next == total && inflight == 0) break;
        if (t > start + duration + grace) break; /* whatever is still out has timed out */

        /* Wake at the next scheduled instant (absolute, so no drift), or on socket events. */
        if (next < total) {
            double at = start + (double)(next < due ? due : next) / rate;
            struct itimerspec its = {.it_value = {(time_t)at, (long)((at - (time_t)at) * 1e9)}};
            timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
        }
        int n = epoll_wait(epfd, evs, 64, 100);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) {
                uint64_t expirations;
                if (read(tfd, &expirations, sizeof expirations) < 0) { /* nothing: spurious */ }
            } else {
                on_event(evs[i].data.ptr, evs[i].events);
            }
        }
    }
    double elapsed = now() - start;
    long timeouts = total - nlat - errors; /* never sent, or sent and never answered */

    qsort(lat, (size_t)nlat, sizeof *lat, cmp_double);
    double sum = 0;
    for (long i = 0; i < nlat; i++) sum += lat[i];
    printf("{\"rate\": %.1f, \"duration_s\": %.3f, \"connections\": %d, \"scheduled\": %ld, "
           "\"count\": %ld, \"errors\": %ld, \"timeouts\": %ld, \"connect_errors\": %ld, "
           "\"max_backlog\": %ld, \"mean_us\": %.1f, \"p50_us\": %.1f, \"p90_us\": %.1f, "
           "\"p99_us\": %.1f, \"p999_us\": %.1f, \"max_us\": %.1f}\n",
           rate, elapsed, nconns, total, nlat, errors, timeouts, connect_errors, max_backlog,
           nlat ? sum / nlat * 1e6 : 0.0, pct(50), pct(90), pct(99), pct(99.9), pct(100));
    return 0;
}
