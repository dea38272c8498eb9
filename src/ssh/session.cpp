// Theory of operation
//
// Every connection is made the same way: libssh with no user configuration (no
// ~/.ssh/config, no known_hosts, no agent), the guest's host key compared with the one
// .pub file sbx generated for it *before* authenticating, then public-key authentication
// with the one identity sbx generated. Nothing the guest says is trusted beyond that.
//
// A running command is pumped by one poll() over the SSH socket, our stdin (only while
// the channel's remote window has room, so a write never waits on the guest) and a
// self-pipe for signals. libssh's channel callbacks deliver the guest's output straight
// to fd 1 and 2 as packets are decoded; nothing is queued on our side, so a guest that
// floods output (or ignores our window) costs only the time to write it out, and memory
// stays bounded: one 32 KiB stdin buffer plus libssh's per-read packet buffer.
// The session ends when the guest closes the channel (OpenSSH's rule), which lets a
// command that closed its stdout keep reading our stdin.
//
// Strings that come from the guest (libssh's errors quote its disconnect messages) are
// reduced to printable ASCII and 200 characters before they reach the user's terminal.

#include "sbx/ssh/ssh.hpp"

#include "libssh_support.hpp"

#include "sbx/util/error.hpp"

#include <libssh/callbacks.h>
#include <libssh/libssh.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string_view>

namespace sbx::ssh {

namespace {

using Clock = std::chrono::steady_clock;

// Bytes of our stdin read per poll round (and never more than the guest's window).
constexpr std::size_t k_stdin_chunk = 32 * 1024;
// Longest guest-influenced text we put in a message.
constexpr std::size_t k_max_reason = 200;
// Longest TERM value we pass on; terminfo names are short.
constexpr std::size_t k_max_term = 64;

using detail::ensure_libssh;
using detail::KeyPtr;

struct SessionFree {
    void operator()(ssh_session s) const {
        if (ssh_is_connected(s) != 0) {
            ssh_disconnect(s);
        }
        ssh_free(s);
    }
};
using SessionPtr = std::unique_ptr<std::remove_pointer_t<ssh_session>, SessionFree>;

struct ChannelFree {
    void operator()(ssh_channel c) const { ssh_channel_free(c); }
};
using ChannelPtr = std::unique_ptr<std::remove_pointer_t<ssh_channel>, ChannelFree>;


// Guest-controlled text, made safe for a terminal and short.
std::string sanitize(std::string_view s) {
    std::string out;
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (out.size() >= k_max_reason) {
            out += "...";
            break;
        }
        out.push_back((c >= 0x20 && c <= 0x7e) ? static_cast<char>(c) : '?');
    }
    return out;
}

std::string fingerprint(ssh_key key) {
    auto fp = detail::sha256_fingerprint(key);
    const char* type = ssh_key_type_to_char(ssh_key_type(key));
    return fp ? fmt::format("{} {}", type ? type : "?", *fp) : "(unknown)";
}

std::string libssh_error(ssh_session s) {
    const char* e = ssh_get_error(s);
    return sanitize(e ? e : "unknown error");
}

bool contains(std::string_view hay, std::string_view needle) {
    return hay.find(needle) != std::string_view::npos;
}

// libssh's connect errors, in the few words the readiness loop shows.
std::string connect_reason(ssh_session s) {
    std::string e = libssh_error(s);
    if (contains(e, "Connection refused")) {
        return "connection refused";
    }
    if (contains(e, "Timeout connecting")) {
        return "timed out (no SSH banner or key exchange in time)";
    }
    if (contains(e, "No route to host") || contains(e, "Network is unreachable")) {
        return "no route to host";
    }
    if (contains(e, "Connection reset") || contains(e, "Socket error: disconnected") ||
        contains(e, "Connection closed")) {
        return "connection closed by the guest during the handshake";
    }
    return "connect: " + e;
}

enum class Failure { none, local, connect, host_key, auth, channel };

struct Connection {
    SessionPtr session;
    Failure failure = Failure::none;
    std::string reason;
};

// Every blocking libssh call made after this waits at most until `deadline`.
bool set_deadline(ssh_session s, Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
        return false;
    }
    long sec = static_cast<long>(left / 1000);
    long usec = static_cast<long>((left % 1000) * 1000);
    ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &sec);
    ssh_options_set(s, SSH_OPTIONS_TIMEOUT_USEC, &usec);
    return true;
}

Connection fail(Connection c, Failure f, std::string reason) {
    c.failure = f;
    c.reason = std::move(reason);
    return c;
}

// Connect, check the host key, authenticate. Expected failures come back as a reason.
Connection open_connection(const Target& t, Clock::time_point deadline) {
    ensure_libssh();
    Connection c;

    ssh_key raw = nullptr;
    if (ssh_pki_import_pubkey_file(t.host_key_pub.c_str(), &raw) != SSH_OK || raw == nullptr) {
        return fail(std::move(c), Failure::local,
                    fmt::format("cannot read the guest's host key {}", t.host_key_pub.string()));
    }
    KeyPtr expected(raw);
    raw = nullptr;
    if (ssh_pki_import_privkey_file(t.identity.c_str(), nullptr, nullptr, nullptr, &raw) != SSH_OK ||
        raw == nullptr) {
        return fail(std::move(c), Failure::local,
                    fmt::format("cannot read the SSH identity {}", t.identity.string()));
    }
    KeyPtr identity(raw);

    c.session.reset(ssh_new());
    if (!c.session) {
        return fail(std::move(c), Failure::local, "cannot create a libssh session");
    }
    ssh_session s = c.session.get();

    int verbosity = SSH_LOG_NOLOG;
    bool process_config = false;
    int port = t.port;
    int nodelay = 1;
    std::string host_algos;
    if (ssh_key_type(expected.get()) == SSH_KEYTYPE_ED25519) {
        host_algos = "ssh-ed25519";
    }
    bool ok = ssh_options_set(s, SSH_OPTIONS_LOG_VERBOSITY, &verbosity) == SSH_OK &&
              // Never ~/.ssh/config: what the user configured for other hosts must not
              // change how sbx talks to its guest.
              ssh_options_set(s, SSH_OPTIONS_PROCESS_CONFIG, &process_config) == SSH_OK &&
              ssh_options_set(s, SSH_OPTIONS_HOST, t.host.c_str()) == SSH_OK &&
              ssh_options_set(s, SSH_OPTIONS_PORT, &port) == SSH_OK &&
              // libssh may consult known_hosts to order host key algorithms; give it none.
              ssh_options_set(s, SSH_OPTIONS_KNOWNHOSTS, "/dev/null") == SSH_OK &&
              ssh_options_set(s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null") == SSH_OK &&
              ssh_options_set(s, SSH_OPTIONS_NODELAY, &nodelay) == SSH_OK;
    if (ok && !t.user.empty()) {
        ok = ssh_options_set(s, SSH_OPTIONS_USER, t.user.c_str()) == SSH_OK;
    }
    if (ok && !host_algos.empty()) {
        ok = ssh_options_set(s, SSH_OPTIONS_HOSTKEYS, host_algos.c_str()) == SSH_OK;
    }
    if (!ok) {
        return fail(std::move(c), Failure::local, "libssh rejected an option: " + libssh_error(s));
    }

    if (!set_deadline(s, deadline)) {
        return fail(std::move(c), Failure::connect, "timed out before connecting");
    }
    if (ssh_connect(s) != SSH_OK) {
        return fail(std::move(c), Failure::connect, connect_reason(s));
    }

    // The host key check comes before anything else is sent: an impostor learns nothing.
    raw = nullptr;
    if (ssh_get_server_publickey(s, &raw) != SSH_OK || raw == nullptr) {
        return fail(std::move(c), Failure::host_key, "the guest offered no host key");
    }
    KeyPtr offered(raw);
    if (ssh_key_cmp(offered.get(), expected.get(), SSH_KEY_CMP_PUBLIC) != 0) {
        return fail(std::move(c), Failure::host_key,
                    fmt::format("host key mismatch: expected {} ({}), the guest offered {}",
                                fingerprint(expected.get()), t.host_key_pub.string(),
                                fingerprint(offered.get())));
    }

    if (!set_deadline(s, deadline)) {
        return fail(std::move(c), Failure::auth, "timed out before authentication");
    }
    int rc = ssh_userauth_publickey(s, nullptr, identity.get());
    if (rc == SSH_AUTH_SUCCESS) {
        return c;
    }
    if (rc == SSH_AUTH_DENIED || rc == SSH_AUTH_PARTIAL) {
        return fail(std::move(c), Failure::auth, "authentication failed");
    }
    return fail(std::move(c), Failure::auth, "authentication failed: " + libssh_error(s));
}

[[noreturn]] void throw_connection_error(const Target& t, const Connection& c) {
    std::string where = fmt::format("{}@{}:{}", t.user, t.host, t.port);
    std::vector<std::string> hints;
    switch (c.failure) {
    case Failure::local:
        hints.push_back("the instance's key files may be damaged; recreate the instance");
        break;
    case Failure::connect:
        hints.push_back("is the instance running? `sbx status` shows it");
        hints.push_back("a guest that is still booting does not answer yet; try again in a moment");
        break;
    case Failure::host_key:
        hints.push_back("the guest is not presenting the host key sbx generated for it, so sbx "
                        "will not talk to it (no trust on first use)");
        hints.push_back(fmt::format("check what listens on {}:{}; if the guest's /etc/ssh keys were "
                                    "replaced, recreate the instance",
                                    t.host, t.port));
        break;
    case Failure::auth:
        hints.push_back(fmt::format("the guest did not accept {} for user \"{}\"", t.identity.string(),
                                    t.user));
        hints.push_back("check the guest's ~/.ssh/authorized_keys, or recreate the instance");
        break;
    case Failure::channel:
    case Failure::none:
        hints.push_back("the guest's sshd refused the request; see its log in the guest");
        break;
    }
    throw Error(fmt::format("ssh to {}: {}", where, c.reason), std::move(hints), ExitCode::ssh_failed);
}

Connection open_or_throw(const Target& t) {
    Connection c = open_connection(t, Clock::now() + t.connect_timeout);
    if (c.failure != Failure::none) {
        throw_connection_error(t, c);
    }
    return c;
}

// --- what the guest tells us about the channel ------------------------------------------

// Filled by libssh's channel callbacks. They run inside libssh's C frames, so they must
// not throw: a failure is recorded here and acted on by the pump loop.
struct ChannelWatch {
    bool closed = false;
    int exit_status = -1;
    std::string exit_signal;
    bool discard_output = false;
    int output_errno = 0;  // first error writing the guest's output to our fds
};

// Blocking write of all of `data`, also to an O_NONBLOCK fd we inherited. Returns 0 or errno.
int write_all(int fd, const char* data, std::size_t len) {
    while (len > 0) {
        ssize_t n = ::write(fd, data, len);
        if (n > 0) {
            data += n;
            len -= static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            pollfd p{fd, POLLOUT, 0};
            ::poll(&p, 1, -1);
            continue;
        }
        return n < 0 ? errno : EIO;
    }
    return 0;
}

int on_channel_data(ssh_session, ssh_channel, void* data, uint32_t len, int is_stderr,
                               void* user) {
    auto* w = static_cast<ChannelWatch*>(user);
    if (!w->discard_output && w->output_errno == 0) {
        w->output_errno = write_all(is_stderr ? STDERR_FILENO : STDOUT_FILENO,
                                    static_cast<const char*>(data), len);
    }
    // Always consume: nothing from the guest is kept in memory.
    return static_cast<int>(len);
}

void on_channel_close(ssh_session, ssh_channel, void* user) {
    static_cast<ChannelWatch*>(user)->closed = true;
}

void on_channel_exit_status(ssh_session, ssh_channel, int status, void* user) {
    static_cast<ChannelWatch*>(user)->exit_status = status;
}

void on_channel_exit_signal(ssh_session, ssh_channel, const char* signal, int,
                                       const char*, const char*, void* user) {
    static_cast<ChannelWatch*>(user)->exit_signal = sanitize(signal ? signal : "?");
}

// Opens a session channel with the watch attached; the watch must outlive the channel's use.
class WatchedChannel {
public:
    WatchedChannel(ssh_session s, ChannelWatch& watch) : m_watch(watch) {
        m_callbacks = {};
        ssh_callbacks_init(&m_callbacks);
        m_callbacks.userdata = &m_watch;
        m_callbacks.channel_data_function = on_channel_data;
        m_callbacks.channel_close_function = on_channel_close;
        m_callbacks.channel_exit_status_function = on_channel_exit_status;
        m_callbacks.channel_exit_signal_function = on_channel_exit_signal;
        m_channel.reset(ssh_channel_new(s));
        if (!m_channel) {
            m_error = "cannot create a channel: " + libssh_error(s);
            return;
        }
        // Before the open: output may arrive while a later request waits for its reply.
        ssh_set_channel_callbacks(m_channel.get(), &m_callbacks);
        if (ssh_channel_open_session(m_channel.get()) != SSH_OK) {
            m_error = "cannot open a session channel: " + libssh_error(s);
        }
    }
    ~WatchedChannel() {
        if (m_channel) {
            // libssh may still process packets while closing; the watch is going away.
            ssh_remove_channel_callbacks(m_channel.get(), &m_callbacks);
        }
    }
    WatchedChannel(const WatchedChannel&) = delete;
    WatchedChannel& operator=(const WatchedChannel&) = delete;

    ssh_channel get() const { return m_channel.get(); }
    const std::string& error() const { return m_error; }

private:
    ChannelWatch& m_watch;
    ssh_channel_callbacks_struct m_callbacks;
    ChannelPtr m_channel;
    std::string m_error;
};

// The session's socket moved into an event, so packets can be processed without blocking
// (libssh's channel poll stops doing that once the guest has sent EOF).
class SessionEvent {
public:
    explicit SessionEvent(ssh_session s) : m_session(s), m_event(ssh_event_new()) {
        if (m_event == nullptr || ssh_event_add_session(m_event, s) != SSH_OK) {
            if (m_event != nullptr) {
                ssh_event_free(m_event);
            }
            throw Error("internal: cannot set up libssh event polling", {}, ExitCode::ssh_failed);
        }
    }
    ~SessionEvent() {
        ssh_event_remove_session(m_event, m_session);
        ssh_event_free(m_event);
    }
    SessionEvent(const SessionEvent&) = delete;
    SessionEvent& operator=(const SessionEvent&) = delete;

    void process() { ssh_event_dopoll(m_event, 0); }

private:
    ssh_session m_session;
    ssh_event m_event;
};

// --- signals and the terminal ------------------------------------------------------------

std::atomic<int> g_signal_pipe_write{-1};
static_assert(std::atomic<int>::is_always_lock_free, "used from a signal handler");

void on_signal(int sig) {
    int saved = errno;
    int fd = g_signal_pipe_write.load(std::memory_order_relaxed);
    if (fd >= 0) {
        auto b = static_cast<unsigned char>(sig);
        (void)!::write(fd, &b, 1);
    }
    errno = saved;
}

// Signals turned into bytes on a pipe the pump loop polls; old handlers restored on exit.
class SignalPipe {
public:
    explicit SignalPipe(std::initializer_list<int> signals) {
        if (::pipe2(m_fds, O_NONBLOCK | O_CLOEXEC) != 0) {
            throw_errno("pipe", errno);
        }
        g_signal_pipe_write.store(m_fds[1]);
        for (int sig : signals) {
            struct sigaction sa {};
            sa.sa_handler = on_signal;
            sigemptyset(&sa.sa_mask);
            sa.sa_flags = SA_RESTART;
            struct sigaction old {};
            if (::sigaction(sig, &sa, &old) == 0) {
                m_saved.push_back({sig, old});
            }
        }
    }
    ~SignalPipe() {
        for (auto& [sig, old] : m_saved) {
            ::sigaction(sig, &old, nullptr);
        }
        g_signal_pipe_write.store(-1);
        ::close(m_fds[0]);
        ::close(m_fds[1]);
    }
    SignalPipe(const SignalPipe&) = delete;
    SignalPipe& operator=(const SignalPipe&) = delete;

    int fd() const { return m_fds[0]; }

    // The signals that arrived since the last call (duplicates folded).
    std::vector<int> take() {
        std::vector<int> out;
        unsigned char buf[64];
        ssize_t n;
        while ((n = ::read(m_fds[0], buf, sizeof buf)) > 0) {
            for (ssize_t i = 0; i < n; ++i) {
                int sig = buf[i];
                if (std::find(out.begin(), out.end(), sig) == out.end()) {
                    out.push_back(sig);
                }
            }
        }
        return out;
    }

private:
    int m_fds[2] = {-1, -1};
    std::vector<std::pair<int, struct sigaction>> m_saved;
};

// The local terminal in raw mode (as OpenSSH sets it) for the life of the object.
class RawTerminal {
public:
    explicit RawTerminal(int fd) : m_fd(fd) {
        if (::tcgetattr(fd, &m_saved) != 0) {
            throw_errno("tcgetattr stdin", errno);
        }
        termios raw = m_saved;
        raw.c_iflag |= IGNPAR;
        raw.c_iflag &= ~static_cast<tcflag_t>(ISTRIP | INLCR | IGNCR | ICRNL | IXON | IXANY | IXOFF);
        raw.c_lflag &= ~static_cast<tcflag_t>(ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHONL | IEXTEN);
        raw.c_oflag &= ~static_cast<tcflag_t>(OPOST);
        raw.c_cc[VMIN] = 1;
        raw.c_cc[VTIME] = 0;
        if (::tcsetattr(fd, TCSADRAIN, &raw) != 0) {
            throw_errno("tcsetattr stdin", errno);
        }
    }
    ~RawTerminal() { ::tcsetattr(m_fd, TCSADRAIN, &m_saved); }
    RawTerminal(const RawTerminal&) = delete;
    RawTerminal& operator=(const RawTerminal&) = delete;

private:
    int m_fd;
    termios m_saved{};
};

struct WindowSize {
    int cols = 80;
    int rows = 24;
};

WindowSize window_size(int fd) {
    WindowSize ws;
    winsize w{};
    if (::ioctl(fd, TIOCGWINSZ, &w) == 0 && w.ws_col > 0 && w.ws_row > 0) {
        ws.cols = w.ws_col;
        ws.rows = w.ws_row;
    }
    return ws;
}

std::string local_term() {
    const char* t = std::getenv("TERM");
    std::string_view term = t ? t : "";
    if (term.empty() || term.size() > k_max_term) {
        return "vt100";
    }
    for (char c : term) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.' || c == '+';
        if (!ok) {
            return "vt100";
        }
    }
    return std::string(term);
}

bool fd_is_open(int fd) {
    return ::fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

// A closed stdin/stdout/stderr would be reused by the next open(): the SSH socket could
// become "stdin" and be read by the pump. Park /dev/null on any that are closed (as
// OpenSSH's sanitise_stdfd does).
void ensure_std_fds_open() {
    for (int fd = 0; fd <= 2; ++fd) {
        if (fd_is_open(fd)) {
            continue;
        }
        int nfd = ::open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
        if (nfd < 0) {
            throw_errno("open /dev/null", errno);
        }
        if (nfd != fd) {
            // Not expected (lower fds are open by now, so open() returns this one).
            ::dup2(nfd, fd);
            ::close(nfd);
        }
    }
}

// --- the pump ----------------------------------------------------------------------------

struct PumpConfig {
    SignalPipe* signals = nullptr;  // SIGWINCH resizes the pty; SIGTERM/SIGHUP end the session
    bool pty = false;
    int in_fd = STDIN_FILENO;       // what feeds the remote stdin
};

// Moves bytes until the guest closes the channel; returns its exit status.
int pump(const Target& t, ssh_session s, ssh_channel ch, ChannelWatch& watch, const PumpConfig& cfg) {
    SessionEvent event(s);
    std::array<char, k_stdin_chunk> buf{};
    bool stdin_open = fd_is_open(cfg.in_fd);
    if (!stdin_open) {
        ssh_channel_send_eof(ch);
    }
    int ended_by_signal = 0;

    while (!watch.closed && watch.output_errno == 0 && ended_by_signal == 0) {
        if ((ssh_get_status(s) & (SSH_CLOSED | SSH_CLOSED_ERROR)) != 0) {
            break;
        }
        // Push out what libssh still holds; if it could not, wait for the socket to drain.
        int flush = ssh_blocking_flush(s, 0);
        if (flush == SSH_ERROR) {
            break;
        }
        std::array<pollfd, 3> fds{};
        nfds_t n = 0;
        fds[n++] = {ssh_get_fd(s), static_cast<short>(POLLIN | (flush == SSH_AGAIN ? POLLOUT : 0)), 0};
        uint32_t window = ssh_channel_window_size(ch);
        int stdin_slot = -1;
        if (stdin_open && window > 0) {
            stdin_slot = static_cast<int>(n);
            fds[n++] = {cfg.in_fd, POLLIN, 0};
        }
        int signal_slot = -1;
        if (cfg.signals != nullptr) {
            signal_slot = static_cast<int>(n);
            fds[n++] = {cfg.signals->fd(), POLLIN, 0};
        }
        if (::poll(fds.data(), n, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw_errno("poll", errno);
        }
        if (fds[0].revents != 0) {
            event.process();
        }
        if (signal_slot >= 0 && fds[static_cast<std::size_t>(signal_slot)].revents != 0) {
            for (int sig : cfg.signals->take()) {
                if (sig == SIGWINCH && cfg.pty) {
                    WindowSize ws = window_size(STDIN_FILENO);
                    ssh_channel_change_pty_size(ch, ws.cols, ws.rows);
                } else if (sig == SIGTERM || sig == SIGHUP) {
                    ended_by_signal = sig;
                }
            }
        }
        if (stdin_slot >= 0) {
            short re = fds[static_cast<std::size_t>(stdin_slot)].revents;
            if ((re & POLLNVAL) != 0) {
                stdin_open = false;
                ssh_channel_send_eof(ch);
            } else if ((re & (POLLIN | POLLHUP | POLLERR)) != 0) {
                std::size_t want = std::min<std::size_t>(window, buf.size());
                ssize_t got = ::read(cfg.in_fd, buf.data(), want);
                if (got > 0) {
                    // got <= the remote window, so this does not wait for the guest.
                    if (ssh_channel_write(ch, buf.data(), static_cast<uint32_t>(got)) == SSH_ERROR) {
                        // The guest closed its end; keep reading its output until it is done.
                        stdin_open = false;
                    }
                } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
                    // End of input (or a terminal that went away, EIO): tell the guest.
                    stdin_open = false;
                    ssh_channel_send_eof(ch);
                }
            }
        }
    }

    if (watch.output_errno != 0) {
        throw Error(fmt::format("cannot write the output of the guest's command: {}",
                                std::strerror(watch.output_errno)),
                    {}, ExitCode::failure);
    }
    if (ended_by_signal != 0) {
        throw Error(fmt::format("ssh session ended by {}", ::strsignal(ended_by_signal)), {},
                    ExitCode::ssh_failed);
    }
    if (watch.exit_status >= 0) {
        // A status outside 0..255 (from a confused or hostile guest) must not read as success.
        return watch.exit_status <= 255 ? watch.exit_status : 255;
    }
    if (watch.closed) {
        // No exit-status: killed by a signal (exit-signal) or a guest that said nothing.
        return 255;
    }
    throw Error(fmt::format("the connection to {}:{} was lost: {}", t.host, t.port, libssh_error(s)),
                {"the guest may have shut down or crashed; `sbx status` shows it"},
                ExitCode::ssh_failed);
}

void set_session_timeout(ssh_session s, std::chrono::milliseconds timeout) {
    set_deadline(s, Clock::now() + std::max(timeout, std::chrono::milliseconds(1)));
}

}  // namespace

ssh_session detail::connect_authenticated(const Target& target) {
    Connection c = open_or_throw(target);
    set_session_timeout(c.session.get(), target.connect_timeout);
    return c.session.release();
}

std::string probe(const Target& target) {
    try {
        auto deadline = Clock::now() + target.connect_timeout;
        Connection c = open_connection(target, deadline);
        if (c.failure != Failure::none) {
            return c.reason;
        }
        ssh_session s = c.session.get();
        ChannelWatch watch;
        watch.discard_output = true;
        if (!set_deadline(s, deadline)) {
            return "timed out after authentication";
        }
        WatchedChannel ch(s, watch);
        if (!ch.error().empty()) {
            return ch.error();
        }
        if (!set_deadline(s, deadline)) {
            return "timed out after authentication";
        }
        if (ssh_channel_request_exec(ch.get(), "true") != SSH_OK) {
            return "cannot run a command: " + libssh_error(s);
        }
        // Waits for exit-status or close, at most until the deadline.
        if (!set_deadline(s, deadline)) {
            return "timed out waiting for `true`";
        }
        ssh_channel_get_exit_status(ch.get());
        if (watch.exit_status == 0) {
            return "";
        }
        if (watch.exit_status > 0) {
            return fmt::format("`true` exited with status {}", watch.exit_status);
        }
        if (!watch.exit_signal.empty()) {
            return fmt::format("`true` was killed by SIG{}", watch.exit_signal);
        }
        return watch.closed ? "the guest closed the session without an exit status"
                            : "timed out waiting for `true`";
    } catch (const std::exception& e) {
        return sanitize(e.what());
    }
}

int run_command(const Target& target, const std::vector<std::string>& argv, int stdin_fd) {
    if (argv.empty()) {
        throw Error("internal: ssh::run_command with an empty argv");
    }
    for (const auto& a : argv) {
        if (a.find('\0') != std::string::npos) {
            throw Error("a command argument contains a NUL byte, which SSH cannot carry", {},
                        ExitCode::usage);
        }
    }
    // One word is a shell command line, as with OpenSSH (`sbx ssh work -- 'make && make test'`);
    // several words are quoted so each arrives as given (`sh -c 'exit 3'`).
    std::string command = argv.size() == 1 ? argv[0] : shell_join(argv);
    ensure_std_fds_open();
    Connection c = open_or_throw(target);
    ssh_session s = c.session.get();
    set_session_timeout(s, target.connect_timeout);

    ChannelWatch watch;
    WatchedChannel ch(s, watch);
    if (!ch.error().empty()) {
        throw_connection_error(target, {nullptr, Failure::channel, ch.error()});
    }
    if (ssh_channel_request_exec(ch.get(), command.c_str()) != SSH_OK) {
        throw_connection_error(target, {nullptr, Failure::channel,
                                        "the guest refused to run the command: " + libssh_error(s)});
    }
    PumpConfig cfg;
    cfg.in_fd = stdin_fd;
    return pump(target, s, ch.get(), watch, cfg);
}

int interactive_shell(const Target& target) {
    ensure_std_fds_open();
    bool tty = ::isatty(STDIN_FILENO) == 1;
    Connection c = open_or_throw(target);
    ssh_session s = c.session.get();
    set_session_timeout(s, target.connect_timeout);

    ChannelWatch watch;
    WatchedChannel ch(s, watch);
    if (!ch.error().empty()) {
        throw_connection_error(target, {nullptr, Failure::channel, ch.error()});
    }

    // Installed before the size is read, so a resize in between is not lost.
    std::optional<SignalPipe> signals;
    if (tty) {
        signals.emplace(std::initializer_list<int>{SIGWINCH, SIGTERM, SIGHUP});
        WindowSize ws = window_size(STDIN_FILENO);
        std::string term = local_term();
        if (ssh_channel_request_pty_size(ch.get(), term.c_str(), ws.cols, ws.rows) != SSH_OK) {
            throw_connection_error(target, {nullptr, Failure::channel,
                                            "the guest refused a terminal: " + libssh_error(s)});
        }
    }
    // Like OpenSSH: no pty when stdin is not a terminal (`sbx ssh NAME < script`).
    if (ssh_channel_request_shell(ch.get()) != SSH_OK) {
        throw_connection_error(target, {nullptr, Failure::channel,
                                        "the guest refused a shell: " + libssh_error(s)});
    }
    std::optional<RawTerminal> raw;
    if (tty) {
        raw.emplace(STDIN_FILENO);
    }
    PumpConfig cfg;
    cfg.signals = signals ? &*signals : nullptr;
    cfg.pty = tty;
    return pump(target, s, ch.get(), watch, cfg);
}

}  // namespace sbx::ssh
