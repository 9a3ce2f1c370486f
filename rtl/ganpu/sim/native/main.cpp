// ganpu sim: the Verilator model of NativeTop (the processor behind its link framer),
// free-running, its link byte streams (rx/tx) bridged to one TCP client at a time
// (docs/sim.md).
//
// The cycle loop is C++ only: the socket is polled every --poll cycles (non-blocking),
// bytes from the client wait in a ring and enter rx one per link clock cycle (--ratio
// link cycles per core cycle: a link edge evaluates only the framer) while it is ready; tx is always ready while the outgoing ring has room. While nothing
// moves on the link and no program checks or runs for --idle cycles, simulated time
// stops until the client sends a byte (an idle processor has nothing to do; a
// simulator that spun on would take a CPU from everything else). It stops sooner,
// --settle cycles after the last answer, when every request frame the client sent has
// been answered and no program checks or runs: the host then thinks (or waits for
// nothing), and a processor that waits for the host has nothing to compute meanwhile.
// Cycles are core clock cycles. Output lines (stdout) are the interface:
//   ganpu sim: listening on HOST:PORT
//   ganpu sim: client N closed: C cycles, T s running, R cycles/s, U s CPU
//   ganpu sim: client N so far: (the same, on SIGUSR1)
//   ganpu sim: stopped: C cycles, T s running, R cycles/s, U s CPU
#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include <verilated.h>
#include "Vganpu.h"

// Verilator escapes the "__" of Amaranth's port names (rx__valid -> rx___05Fvalid)
#define RX_VALID rx___05Fvalid
#define RX_READY rx___05Fready
#define RX_PAYLOAD rx___05Fpayload
#define TX_VALID tx___05Fvalid
#define TX_READY tx___05Fready
#define TX_PAYLOAD tx___05Fpayload

namespace {

volatile std::sig_atomic_t stop_requested = 0, report_requested = 0;

void on_signal(int) { stop_requested = 1; }
void on_report(int) { report_requested = 1; }

// processor State values (ganpu.processor.program.State) during which time must run
constexpr unsigned STATE_CHECKING = 1, STATE_RUNNING = 2;

struct Ring {
    std::vector<unsigned char> buf;
    size_t head = 0, size = 0;
    explicit Ring(size_t n) : buf(n) {}
    bool full() const { return size == buf.size(); }
    size_t room() const { return buf.size() - size; }
    unsigned char front() const { return buf[head]; }
    void pop() { head = (head + 1) % buf.size(); --size; }
    void push(unsigned char b) { buf[(head + size) % buf.size()] = b; ++size; }
    void clear() { head = size = 0; }
};

struct Options {
    std::string host = "127.0.0.1";
    int port = 0;
    long poll = 64;
    long idle = 4096;
    int ratio = 2;
    long linger = 32;
    long settle = 8;
};

void usage(const char* prog) {
    std::fprintf(stderr, "usage: %s [--host H] [--port P] [--poll CYCLES] [--idle CYCLES] [--ratio N]\n"
                         "          [--linger CYCLES] [--settle CYCLES]\n"
                         "  --idle 0 never stops simulated time; --ratio: link clock cycles per\n"
                         "  core clock cycle, 1..16, while the link moves bytes and --linger core\n"
                         "  cycles after (then one; --linger 0: always --ratio); --settle: time\n"
                         "  stops that many cycles after every request is answered while no\n"
                         "  program checks or runs (0: only after --idle quiet cycles)\n", prog);
}

bool parse(int argc, char** argv, Options& o) {
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (i + 1 >= argc) { usage(argv[0]); return false; }
        char* end = nullptr;
        const char* v = argv[++i];
        if (a == "--host") { o.host = v; continue; }
        long n = std::strtol(v, &end, 10);
        if (*v == '\0' || *end != '\0' || n < 0) {
            std::fprintf(stderr, "ganpu sim: %s needs a non-negative integer, not '%s'\n", a.c_str(), v);
            return false;
        }
        if (a == "--port" && n <= 65535) o.port = int(n);
        else if (a == "--poll" && n >= 1) o.poll = n;
        else if (a == "--idle") o.idle = n;
        else if (a == "--ratio" && n >= 1 && n <= 16) o.ratio = int(n);
        else if (a == "--linger") o.linger = n;
        else if (a == "--settle") o.settle = n;
        else { usage(argv[0]); return false; }
    }
    return true;
}

void set_nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

double cpu_seconds() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

// cycles, wall seconds in the cycle loop, and CPU seconds of the whole process (on a
// shared machine the CPU figure is the one that does not depend on the load)
struct Stats {
    unsigned long long cycles = 0;
    double seconds = 0;
    double cpu0 = cpu_seconds();
    // core cycles by the processor's state (IDLE CHECKING RUNNING PAUSED DONE ERROR),
    // core cycles in which a link byte moved, and how often simulated time stopped
    unsigned long long state[8] = {};
    unsigned long long link = 0, stops = 0;
    void add(const Stats& o) {
        cycles += o.cycles; seconds += o.seconds; link += o.link; stops += o.stops;
        for (int i = 0; i < 8; ++i) state[i] += o.state[i];
    }
    void print(const char* what) const {
        std::printf("ganpu sim: %s: %llu cycles, %.3f s running, %.0f cycles/s, %.3f s CPU; "
                    "idle %llu, checking %llu, running %llu, paused %llu, done %llu, error %llu, "
                    "link %llu, stops %llu\n",
                    what, cycles, seconds, seconds > 0 ? cycles / seconds : 0.0,
                    cpu_seconds() - cpu0, state[0], state[1], state[2], state[3], state[4],
                    state[5], link, stops);
        std::fflush(stdout);
    }
};

}  // namespace

int main(int argc, char** argv) {
    Options opt;
    if (!parse(argc, argv, opt)) return 2;

    // handlers first: a signal that comes as soon as the port is printed must find them
    struct sigaction sa{};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    struct sigaction sr{};
    sr.sa_handler = on_report;
    sigemptyset(&sr.sa_mask);
    sigaction(SIGUSR1, &sr, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(uint16_t(opt.port));
    if (lfd < 0 || inet_pton(AF_INET, opt.host.c_str(), &addr.sin_addr) != 1) {
        std::fprintf(stderr, "ganpu sim: cannot listen on %s:%d: bad IPv4 address\n",
                     opt.host.c_str(), opt.port);
        return 2;
    }
    if (bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(lfd, 1) != 0) {
        int e = errno;
        std::fprintf(stderr, "ganpu sim: cannot listen on %s:%d: %s%s\n", opt.host.c_str(),
                     opt.port, std::strerror(e),
                     e == EADDRINUSE ? " (another program has this port; pick another with "
                                       "--port, or --port 0 for a free one)" : "");
        return 3;
    }
    socklen_t alen = sizeof addr;
    getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &alen);
    std::printf("ganpu sim: listening on %s:%d\n", opt.host.c_str(), ntohs(addr.sin_port));
    std::fflush(stdout);

    VerilatedContext ctx;
    Vganpu top{&ctx};
    const int ratio = opt.ratio;
    auto tick = [&top, ratio]() {
        for (int r = 0; r < ratio; ++r) {
            top.link_clk = 0;
            if (r == 0) top.clk = 0;
            top.eval();
            top.link_clk = 1;
            if (r == ratio - 1) top.clk = 1;
            top.eval();
        }
    };
    top.rst = 1;
    top.link_rst = 1;
    top.RX_VALID = 0;
    top.TX_READY = 0;
    for (int i = 0; i < 4; ++i) tick();
    top.rst = 0;
    top.link_rst = 0;

    Ring rx(1 << 16), tx(1 << 16);
    Stats total, session;
    int cfd = -1, clients = 0;
    unsigned char chunk[4096];
    long quiet = 0, since = 0;
    bool stopped = false;
    // request frames taken by the framer and answer frames it sent (non-empty frames:
    // a delimiter after other bytes), and whether a frame is open in either direction.
    // Equal counts with no frame open: the client waits for nothing from the device
    // (a frame the framer drops unanswered, a runt, keeps them apart until --idle)
    unsigned long long requests = 0, answers = 0;
    bool rx_open = false, tx_open = false;
    long settled = 0;

    while (!stop_requested) {
        if (report_requested) {
            report_requested = 0;
            if (cfd >= 0) {
                std::string what = "client " + std::to_string(clients) + " so far";
                session.print(what.c_str());
            }
        }
        if (cfd < 0) {
            pollfd p{lfd, POLLIN, 0};
            if (poll(&p, 1, 100) <= 0) continue;
            cfd = accept(lfd, nullptr, nullptr);
            if (cfd < 0) continue;
            set_nonblocking(cfd);
            int one = 1;
            setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            rx.clear();
            tx.clear();
            session = Stats{};
            quiet = 0;
            requests = answers = 0;
            rx_open = tx_open = false;
            settled = 0;
            ++clients;
            continue;
        }
        // the link: take what the client sent, send what the processor said
        bool closed = false, moved = false;
        while (!rx.full()) {
            ssize_t n = recv(cfd, chunk, std::min(sizeof chunk, rx.room()), 0);
            if (n > 0) { for (ssize_t i = 0; i < n; ++i) rx.push(chunk[i]); moved = true; }
            else { if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) closed = true; break; }
        }
        while (tx.size && !closed) {
            size_t n = 0;
            while (n < sizeof chunk && n < tx.size) { chunk[n] = tx.buf[(tx.head + n) % tx.buf.size()]; ++n; }
            ssize_t s = send(cfd, chunk, n, 0);
            if (s > 0) { for (ssize_t i = 0; i < s; ++i) tx.pop(); moved = true; }
            else { if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) closed = true; break; }
        }
        if (closed) {
            close(cfd);
            cfd = -1;
            std::string what = "client " + std::to_string(clients) + " closed";
            session.print(what.c_str());
            total.add(session);
            session = Stats{};
            continue;
        }
        if (moved || rx.size || tx.size) quiet = 0;
        const bool answered = opt.settle && settled >= opt.settle && !rx.size && !tx.size;
        if ((opt.idle && quiet >= opt.idle) || answered) {
            // nothing to do until the client speaks: stop time, wait for it
            pollfd p{cfd, POLLIN, 0};
            poll(&p, 1, 100);
            if (!stopped) ++session.stops;
            stopped = true;
            quiet = 0;
            // nothing is pending now: a frame the framer dropped no longer holds the
            // counts apart
            if (!answered) { answers = requests; rx_open = tx_open = false; }
            if (!(p.revents & (POLLIN | POLLHUP | POLLERR))) quiet = opt.idle;
            else settled = 0;
            continue;
        }
        stopped = false;
        auto t0 = std::chrono::steady_clock::now();
        long busy = 0, c = 0;
        for (; c < opt.poll; ++c) {
            bool moving = false, answer_done = false;
            // ratio link clock cycles per core clock cycle; the core's edges fall on the
            // first falling and the last rising link edge. A quiet link (no byte for
            // --linger core cycles, none waiting) ticks once per core cycle: its extra
            // edges would only evaluate an idle framer
            const int n = (opt.linger && since >= opt.linger && !rx.size) ? 1 : ratio;
            for (int r = 0; r < n; ++r) {
                top.RX_VALID = rx.size ? 1 : 0;
                top.RX_PAYLOAD = rx.size ? rx.front() : 0;
                top.TX_READY = tx.full() ? 0 : 1;
                top.link_clk = 0;
                if (r == 0) top.clk = 0;
                top.eval();
                bool rx_fire = top.RX_VALID && top.RX_READY;
                bool tx_fire = top.TX_VALID && top.TX_READY;
                unsigned char out = top.TX_PAYLOAD;
                top.link_clk = 1;
                if (r == n - 1) top.clk = 1;
                top.eval();
                if (rx_fire) {
                    if (rx.front() == 0) { requests += rx_open; rx_open = false; }
                    else rx_open = true;
                    rx.pop();
                }
                if (tx_fire) {
                    tx.push(out);
                    if (out == 0) { answers += tx_open; answer_done = tx_open; tx_open = false; }
                    else tx_open = true;
                }
                moving = moving || rx_fire || tx_fire;
            }
            const unsigned st = top.state;
            ++session.state[st & 7];
            if (moving) ++session.link;
            since = moving ? 0 : since + 1;
            if (moving || st == STATE_CHECKING || st == STATE_RUNNING) busy = c + 1;
            // the host waits for nothing and the processor for the host: after --settle
            // cycles, leave the loop to send the last answer and stop time
            const bool waiting = requests == answers && !rx_open && !tx_open && !rx.size &&
                                 st != STATE_CHECKING && st != STATE_RUNNING;
            settled = waiting ? settled + 1 : 0;
            // a whole answer goes to the client at once, not at the next poll: the
            // client's next frame (window 2) then arrives while the framer still works
            // on the one before it
            if ((opt.settle && settled >= opt.settle) || answer_done) { ++c; break; }
        }
        double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        session.cycles += c;
        session.seconds += dt;
        quiet = busy ? c - busy : quiet + c;
    }
    if (cfd >= 0) {
        // a client still connected at the stop: its line too, so its figures are not lost
        close(cfd);
        std::string what = "client " + std::to_string(clients) + " closed";
        session.print(what.c_str());
        total.add(session);
    }
    close(lfd);
    top.final();
    total.print("stopped");
    return 0;
}
