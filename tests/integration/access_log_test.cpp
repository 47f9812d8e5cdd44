// The access log against the real porticod: the exact line for each way a
// connection ends and each refusal, in logfmt and in JSON; what handlers
// add (exec's pid and exit status); PROXY clients beside the real peer;
// hostile values escaped; SIGUSR1 reopening the file; nothing lost on stop.

#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <map>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>

#include "support/daemon.hpp"

using namespace portico::test;
using Catch::Matchers::Contains;

namespace {

// The port the client's side of a connection has: the peer porticod logs.
std::uint16_t local_port(int fd) {
  sockaddr_in address{};
  socklen_t size = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
  return ntohs(address.sin_port);
}

std::string peer_of(const Client& c) { return "127.0.0.1:" + std::to_string(local_port(c.fd())); }

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Waits until the file has at least `n` lines (the writer flushes every
// 250 ms); returns them.
std::vector<std::string> wait_lines(const std::string& path, std::size_t n, Millis timeout = 5s) {
  const auto deadline = Clock::now() + timeout;
  auto lines = lines_of(path);
  while (lines.size() < n && Clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
    lines = lines_of(path);
  }
  return lines;
}

// One field of an expected line. `pattern` values are regular expressions
// (the time, the duration, a pid); the others are matched exactly.
struct Field {
  std::string key;
  std::string value;
  enum Kind { text, number, pattern_text, pattern_number } kind = text;
};

const std::string any_time = R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)";
const std::string any_duration = R"(\d+\.\d{6})";

std::string regex_escape(const std::string& s) {
  static const std::regex special(R"([.^$|()\[\]{}*+?\\])");
  return std::regex_replace(s, special, R"(\$&)");
}

// The line's pattern: logfmt quotes a value with a space or a quote; JSON
// quotes every string.
std::string expected(const std::vector<Field>& fields, const std::string& format) {
  const bool json = format == "json";
  std::string out = json ? "\\{" : "";
  bool first = true;
  for (const auto& f : fields) {
    if (!first) out += json ? "," : " ";
    first = false;
    out += json ? "\"" + f.key + "\":" : f.key + "=";
    const bool pattern = f.kind == Field::pattern_text || f.kind == Field::pattern_number;
    const bool quoted = json ? (f.kind == Field::text || f.kind == Field::pattern_text)
                             : (f.kind == Field::text && f.value.find_first_of(" \"=") != std::string::npos);
    std::string value = f.value;
    if (!pattern && quoted) {
      std::string escaped;
      for (char c : value) escaped += c == '"' ? std::string("\\\"") : std::string(1, c);
      value = escaped;
    }
    value = pattern ? value : regex_escape(value);
    out += quoted ? "\"" + value + "\"" : value;
  }
  return out + (json ? "\\}" : "");
}

bool line_matches(const std::string& line, const std::vector<Field>& fields, const std::string& format) {
  return std::regex_match(line, std::regex(expected(fields, format)));
}

std::vector<Field> connection(const std::string& listener, const std::string& handler, const std::string& peer,
                              std::uint16_t port, std::uint64_t in, std::uint64_t out, const std::string& end) {
  return {{"time", any_time, Field::pattern_text},
          {"listener", listener},
          {"handler", handler},
          {"peer", peer},
          {"local", "127.0.0.1:" + std::to_string(port)},
          {"duration", any_duration, Field::pattern_number},
          {"bytes_in", std::to_string(in), Field::number},
          {"bytes_out", std::to_string(out), Field::number},
          {"end", end}};
}

std::vector<Field> refusal(const std::string& listener, const std::string& handler, const std::string& peer,
                           const std::string& reason, const std::string& detail) {
  return {{"time", any_time, Field::pattern_text},
          {"listener", listener},
          {"handler", handler},
          {"peer", peer},
          {"refused", reason},
          {"detail", detail}};
}

std::string daemon_section(const std::string& path, const std::string& format) {
  return "[daemon]\nshutdown_timeout = \"300ms\"\naccess_log = \"" + path + "\"\naccess_log_format = \"" + format +
         "\"\n";
}

// Finds the first line not taken yet for this client address on this
// listener (the order of lines of different connections follows their
// ends). The address alone is not enough: the kernel may give two clients
// of one test the same port when they connect to different listeners, or
// to the same one after the first connection is gone.
std::string line_for(const std::vector<std::string>& lines, std::vector<bool>& taken, const std::string& peer,
                     const std::string& listener) {
  taken.resize(lines.size());
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    const bool json = line.starts_with("{");
    if (taken[i] || line.find(peer + (json ? "\"" : " ")) == std::string::npos) continue;
    if (line.find(json ? "\"listener\":\"" + listener + "\"" : "listener=" + listener + " ") == std::string::npos) continue;
    taken[i] = true;
    return line;
  }
  return "(no line for " + peer + " on " + listener + ")";
}

// Closes with a reset rather than a FIN.
void reset(Client& c) {
  linger l{1, 0};
  setsockopt(c.fd(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

}  // namespace

TEST_CASE("the access log has the exact line for each way a connection ends", "[access_log]") {
  const std::string format = GENERATE("logfmt", "json");
  TempDir dir;
  const std::string path = (dir.path() / "access.log").string();
  auto d = Daemon::start(daemon_section(path, format) +
                             "[[listener]]\nname = \"hello\"\naddress = \"127.0.0.1:0\"\n"
                             "[[listener]]\nname = \"echo\"\naddress = \"127.0.0.1:0\"\nhandler = \"echo\"\n"
                             "[[listener]]\nname = \"idle\"\naddress = \"127.0.0.1:0\"\nhandler = \"echo\"\n"
                             "idle_timeout = \"200ms\"\ndefer_accept = \"0s\"\n"
                             "[[listener]]\nname = \"session\"\naddress = \"127.0.0.1:0\"\nhandler = \"echo\"\n"
                             "session_timeout = \"300ms\"\ndefer_accept = \"0s\"\n",
                         Daemon::Options{.listeners = 4});
  std::vector<std::pair<std::string, std::vector<Field>>> want;

  // The greeting answers and closes: the handler was done first.
  {
    Client c(d.port("hello"));
    c.send("GET request\n");
    CHECK(c.read_all() == "Hello from server!\n");
    want.emplace_back(peer_of(c), connection("hello", "greeting", peer_of(c), d.port("hello"), 12, 19, "handler_done"));
  }
  // The client ends its side; echo finishes after it.
  {
    Client c(d.port("echo"));
    c.send("abcde");
    CHECK(c.read_exactly(5) == "abcde");
    c.shutdown_write();
    CHECK(c.wait_closed());
    want.emplace_back(peer_of(c), connection("echo", "echo", peer_of(c), d.port("echo"), 5, 5, "client_closed"));
  }
  // Silent clients: the idle, then the session timeout closes them.
  {
    Client idle(d.port("idle"));
    Client session(d.port("session"));
    CHECK(idle.wait_closed(3s));
    CHECK(session.wait_closed(3s));
    want.emplace_back(peer_of(idle), connection("idle", "echo", peer_of(idle), d.port("idle"), 0, 0, "idle_timeout"));
    want.emplace_back(peer_of(session),
                      connection("session", "echo", peer_of(session), d.port("session"), 0, 0, "session_timeout"));
  }
  // A reset while echo waits to read: an error, with what the OS said.
  {
    Client c(d.port("echo"));
    c.send("xy");
    CHECK(c.read_exactly(2) == "xy");
    const std::string peer = peer_of(c);
    reset(c);
    { Client gone = std::move(c); }
    auto fields = connection("echo", "echo", peer, d.port("echo"), 2, 2, "error");
    fields.push_back({"error", "Connection reset by peer"});
    want.emplace_back(peer, fields);
  }
  // Open when porticod stops: closed by the server after shutdown_timeout.
  Client open(d.port("echo"));
  open.send("z");
  CHECK(open.read_exactly(1) == "z");
  want.emplace_back(peer_of(open), connection("echo", "echo", peer_of(open), d.port("echo"), 1, 1, "shutdown"));
  CHECK(wait_lines(path, want.size() - 1).size() == want.size() - 1);
  d.signal(SIGTERM);
  CHECK(d.wait_exit() == 0);

  // The last line was buffered at the stop: written before the exit.
  const auto lines = lines_of(path);
  CHECK(lines.size() == want.size());
  std::vector<bool> taken;
  for (const auto& [peer, fields] : want) {
    const std::string line = line_for(lines, taken, peer, fields[1].value);
    INFO(line);
    INFO(expected(fields, format));
    CHECK(line_matches(line, fields, format));
  }
}

TEST_CASE("the access log has the exact line for each refusal, throttled like the warnings", "[access_log]") {
  const std::string format = GENERATE("logfmt", "json");
  TempDir dir;
  const std::string path = (dir.path() / "access.log").string();
  const std::string listener = "[[listener]]\naddress = \"127.0.0.1:0\"\nhandler = \"echo\"\ndefer_accept = \"0s\"\n";
  auto d = Daemon::start(daemon_section(path, format) + listener + "name = \"access\"\ndeny = [\"127.0.0.0/8\"]\n" +
                             listener + "name = \"max\"\nmax_connections = 1\non_limit = \"reject\"\n" + listener +
                             "name = \"source\"\nmax_per_source = 1\n" + listener +
                             "name = \"rate\"\nrate = 1\nburst = 1\n" + listener +
                             "name = \"header\"\nproxy_protocol = true\n",
                         Daemon::Options{.listeners = 5});
  std::vector<std::pair<std::string, std::vector<Field>>> want;
  const auto refused = [&](std::uint16_t port, const std::string& bytes = "") {
    Client c(port);
    if (!bytes.empty()) c.send(bytes);
    CHECK(c.wait_closed());
    return peer_of(c);
  };

  const auto first_refusal = Clock::now();
  std::string peer = refused(d.port("access"));
  want.emplace_back(peer, refusal("access", "echo", peer, "access", "denied by 127.0.0.0/8"));
  Client holder(d.port("max"));
  holder.send("a");
  CHECK(holder.read_exactly(1) == "a");
  peer = refused(d.port("max"));
  want.emplace_back(peer, refusal("max", "echo", peer, "max_connections", "max_connections reached"));
  Client source_holder(d.port("source"));
  source_holder.send("a");
  CHECK(source_holder.read_exactly(1) == "a");
  peer = refused(d.port("source"));
  want.emplace_back(peer, refusal("source", "echo", peer, "max_per_source",
                                  "max_per_source (1) reached for its address"));
  Client first(d.port("rate"));
  peer = refused(d.port("rate"));
  want.emplace_back(peer, refusal("rate", "echo", peer, "rate", "rate (1/s) exceeded"));
  peer = refused(d.port("header"), "HELLO\r\n");
  want.emplace_back(peer, refusal("header", "echo", peer, "proxy_header", "bad PROXY protocol header: not a PROXY protocol header"));

  const auto lines = wait_lines(path, want.size());
  CHECK(lines.size() == want.size());
  std::vector<bool> taken;
  for (const auto& [p, fields] : want) {
    const std::string line = line_for(lines, taken, p, fields[1].value);
    INFO(line);
    INFO(expected(fields, format));
    CHECK(line_matches(line, fields, format));
  }

  // Within 5 s of a refusal a listener's next ones are counted, and the
  // next line that goes out says how many were held back. The warning's
  // summary of them, when the 5 s are over, starts another 5 s.
  // It takes 10 s: once, in JSON.
  if (format != "json") return;
  for (int i = 0; i < 3; ++i) refused(d.port("access"));
  std::this_thread::sleep_for(500ms);
  CHECK(lines_of(path).size() == want.size());
  CHECK(d.wait_log("listener \"access\": ... and 3 more refused since the last report", 6s));
  std::this_thread::sleep_until(first_refusal + 10200ms);
  peer = refused(d.port("access"));
  auto fields = refusal("access", "echo", peer, "access", "denied by 127.0.0.0/8");
  fields.push_back({"suppressed", "3", Field::number});
  const auto later = wait_lines(path, want.size() + 1);
  REQUIRE(later.size() == want.size() + 1);
  INFO(later.back());
  CHECK(line_matches(later.back(), fields, format));
}

TEST_CASE("exec adds the child's pid and exit status; a PROXY client stands beside the real peer",
          "[access_log]") {
  TempDir dir;
  const std::string path = (dir.path() / "access.log").string();
  auto d = Daemon::start(daemon_section(path, "logfmt") +
                             "[[listener]]\nname = \"run\"\naddress = \"127.0.0.1:0\"\nhandler = \"exec\"\n"
                             "command = [\"/bin/sh\", \"-c\", \"read x; echo \\\"got $x\\\"; exit 3\"]\n"
                             "[[listener]]\nname = \"lb\"\naddress = \"127.0.0.1:0\"\nproxy_protocol = true\n",
                         Daemon::Options{.listeners = 2});
  Client c(d.port("run"));
  c.send("it\n");
  CHECK(c.read_all() == "got it\n");
  Client p(d.port("lb"));
  p.send("PROXY TCP4 198.51.100.7 192.0.2.1 40000 443\r\nhi\n");
  CHECK(p.read_all() == "Hello from server!\n");

  const auto lines = wait_lines(path, 2);
  REQUIRE(lines.size() == 2);
  // The program has the socket: porticod moves no byte of it.
  auto exec = connection("run", "exec", peer_of(c), d.port("run"), 0, 0, "handler_done");
  exec.push_back({"pid", R"(\d+)", Field::pattern_number});
  exec.push_back({"exit", "3"});
  std::vector<bool> taken;
  const std::string exec_line = line_for(lines, taken, peer_of(c), "run");
  INFO(exec_line);
  CHECK(line_matches(exec_line, exec, "logfmt"));
  const std::string proxied = line_for(lines, taken, "198.51.100.7:40000", "lb");
  INFO(proxied);
  CHECK(line_matches(proxied,
                     {{"time", any_time, Field::pattern_text},
                      {"listener", "lb"},
                      {"handler", "greeting"},
                      {"peer", "198.51.100.7:40000"},
                      {"socket_peer", peer_of(p)},
                      {"local", "192.0.2.1:443"},
                      {"duration", any_duration, Field::pattern_number},
                      {"bytes_in", "3", Field::number},
                      {"bytes_out", "19", Field::number},
                      {"end", "handler_done"}},
                     "logfmt"));
}

TEST_CASE("values a config or a client chooses are quoted and escaped; listeners may opt out", "[access_log]") {
  TempDir dir;
  const std::string logfmt_path = (dir.path() / "access.log").string();
  // A name with quotes, a backslash, '=' and a non-ASCII letter.
  const std::string listeners =
      "[[listener]]\nname = 'we\"say\"a\\b=cé'\naddress = \"127.0.0.1:0\"\n"
      "[[listener]]\nname = \"quiet\"\naddress = \"127.0.0.1:0\"\naccess_log = false\n";
  for (const std::string format : {"logfmt", "json"}) {
    const std::string path = (dir.path() / (format + ".log")).string();
    auto d = Daemon::start(daemon_section(path, format) + listeners, Daemon::Options{.listeners = 2});
    Client quiet(d.port("quiet"));
    quiet.send("x\n");
    CHECK(quiet.read_all() == "Hello from server!\n");
    Client c(d.port());
    c.send("x\n");
    CHECK(c.read_all() == "Hello from server!\n");
    const auto lines = wait_lines(path, 1);
    std::this_thread::sleep_for(300ms);
    REQUIRE(lines_of(path).size() == 1);  // none for "quiet"
    const std::string& line = lines[0];
    if (format == "logfmt") {
      CHECK_THAT(line, Contains(" listener=\"we\\\"say\\\"a\\\\b=cé\" handler=greeting peer=" + peer_of(c) + " "));
    } else {
      CHECK_THAT(line, Contains(",\"listener\":\"we\\\"say\\\"a\\\\b=cé\",\"handler\":\"greeting\",\"peer\":\"" +
                                peer_of(c) + "\","));
    }
  }
}

TEST_CASE("SIGUSR1 reopens the access log: lines before go to the moved file, later ones to the new", "[access_log]") {
  TempDir dir;
  const std::string path = (dir.path() / "access.log").string();
  auto d = Daemon::start(daemon_section(path, "logfmt") + "[[listener]]\nname = \"hello\"\naddress = \"127.0.0.1:0\"\n");
  const auto greet = [&] {
    Client c(d.port());
    c.send("x\n");
    CHECK(c.read_all() == "Hello from server!\n");
    return peer_of(c);
  };
  const std::string before = greet();
  REQUIRE(wait_lines(path, 1).size() == 1);
  std::filesystem::rename(path, path + ".1");
  const std::string between = greet();  // the writer still has the old file
  d.signal(SIGUSR1);
  CHECK(d.wait_log("SIGUSR1: access log " + path + " reopened"));
  CHECK(d.wait_log("SIGUSR1: log file reopened"));
  const std::string after = greet();
  CHECK(wait_lines(path, 1).size() == 1);
  const auto moved = lines_of(path + ".1");
  REQUIRE(moved.size() == 2);
  CHECK_THAT(moved[0], Contains(" peer=" + before + " "));
  CHECK_THAT(moved[1], Contains(" peer=" + between + " "));
  CHECK_THAT(lines_of(path)[0], Contains(" peer=" + after + " "));
}

TEST_CASE("access_log = \"stderr\" writes the lines beside porticod's own", "[access_log]") {
  auto d = Daemon::start("[daemon]\naccess_log = \"stderr\"\n[[listener]]\nname = \"hello\"\naddress = \"127.0.0.1:0\"\n");
  Client c(d.port());
  c.send("x\n");
  CHECK(c.read_all() == "Hello from server!\n");
  CHECK(d.wait_log(" listener=hello handler=greeting peer=" + peer_of(c) + " local=127.0.0.1:" +
                   std::to_string(d.port()) + " duration="));
}

namespace {

// journald's native protocol socket, as porticod sees it: no journald runs
// here (and PID 1 need not be systemd), so porticod runs in a mount
// namespace of its own where a tmpfs covers /run, and the test's datagram
// socket is bound at /run/systemd/journal/socket there. The socket is
// created before the fork: the test reads what porticod sends to it.
int journal_socket = -1;

void private_journal() {
  const char* path = "/run/systemd/journal/socket";
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strcpy(address.sun_path, path);
  if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
      mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") != 0 || mkdir("/run/systemd", 0755) != 0 ||
      mkdir("/run/systemd/journal", 0755) != 0 ||
      bind(journal_socket, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || chmod(path, 0666) != 0) {
    _exit(121);
  }
}

// One journal entry in the native protocol: "KEY=value\n", or for a value
// with a newline "KEY\n", its size as 64-bit little endian, the value, "\n".
std::map<std::string, std::string> journal_fields(const std::string& datagram) {
  std::map<std::string, std::string> fields;
  std::size_t at = 0;
  while (at < datagram.size()) {
    const auto nl = datagram.find('\n', at);
    if (nl == std::string::npos) break;
    const std::string line = datagram.substr(at, nl - at);
    const auto eq = line.find('=');
    if (eq != std::string::npos) {
      fields[line.substr(0, eq)] = line.substr(eq + 1);
      at = nl + 1;
      continue;
    }
    std::uint64_t size = 0;
    for (int i = 7; i >= 0; --i) size = size << 8 | static_cast<unsigned char>(datagram[nl + 1 + i]);
    fields[line] = datagram.substr(nl + 9, size);
    at = nl + 9 + size + 1;
  }
  return fields;
}

std::optional<std::map<std::string, std::string>> next_entry(Millis timeout = 5s) {
  pollfd p{journal_socket, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
  std::string buffer(65536, '\0');
  const ssize_t n = recv(journal_socket, buffer.data(), buffer.size(), 0);
  if (n <= 0) return std::nullopt;
  buffer.resize(static_cast<std::size_t>(n));
  return journal_fields(buffer);
}

}  // namespace

TEST_CASE("access_log = \"journal\": each value is a journal field, the line is the MESSAGE", "[access_log][journal]") {
  if (getuid() != 0) {
    WARN("needs root for a private mount namespace; not run");
    return;
  }
  journal_socket = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(journal_socket >= 0);
  struct Close {
    ~Close() { close(std::exchange(journal_socket, -1)); }
  } closer;
  auto d = Daemon::start("[daemon]\naccess_log = \"journal\"\n"
                         "[[listener]]\nname = \"hello\"\naddress = \"127.0.0.1:0\"\n"
                         "[[listener]]\nname = \"shut\"\naddress = \"127.0.0.1:0\"\ndeny = [\"0.0.0.0/0\"]\n",
                         Daemon::Options{.listeners = 2, .before_exec = private_journal});
  Client c(d.port("hello"));
  c.send("GET request\n");
  CHECK(c.read_all() == "Hello from server!\n");
  auto entry = next_entry();
  REQUIRE(entry);
  auto& f = *entry;
  CHECK(f["PRIORITY"] == "6");
  CHECK(f["SYSLOG_IDENTIFIER"] == "porticod");
  CHECK(f["PORTICO_LISTENER"] == "hello");
  CHECK(f["PORTICO_HANDLER"] == "greeting");
  CHECK(f["PORTICO_PEER"] == peer_of(c));
  CHECK(f["PORTICO_LOCAL"] == "127.0.0.1:" + std::to_string(d.port("hello")));
  CHECK(f["PORTICO_BYTES_IN"] == "12");
  CHECK(f["PORTICO_BYTES_OUT"] == "19");
  CHECK(f["PORTICO_END"] == "handler_done");
  CHECK(std::regex_match(f["PORTICO_DURATION"], std::regex(any_duration)));
  CHECK(std::regex_match(f["MESSAGE"], std::regex(expected(connection("hello", "greeting", peer_of(c),
                                                                      d.port("hello"), 12, 19, "handler_done"),
                                                           "logfmt"))));
  CHECK(f.count("PORTICO_TIME") == 0);  // the journal has its own

  Client refused(d.port("shut"));
  CHECK(refused.wait_closed());
  entry = next_entry();
  REQUIRE(entry);
  CHECK((*entry)["PORTICO_LISTENER"] == "shut");
  CHECK((*entry)["PORTICO_PEER"] == peer_of(refused));
  CHECK((*entry)["PORTICO_REFUSED"] == "access");
  CHECK((*entry)["PORTICO_DETAIL"] == "denied by 0.0.0.0/0");
}

TEST_CASE("started as root, porticod gives the access log file it opened to the user it serves as", "[access_log]") {
  if (getuid() != 0) {
    WARN("needs root; not run");
    return;
  }
  TempDir dir;
  const std::string path = (dir.path() / "access.log").string();
  auto d = Daemon::start("[daemon]\nuser = \"nobody\"\naccess_log = \"" + path +
                             "\"\n[[listener]]\nname = \"hello\"\naddress = \"127.0.0.1:0\"\n",
                         Daemon::Options{.as_root = true});
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK(st.st_uid == 65534);
  CHECK((st.st_mode & 0777) == 0640);
  // Reopening the same file, as nobody, works.
  d.signal(SIGUSR1);
  CHECK(d.wait_log("SIGUSR1: access log " + path + " reopened"));
  Client c(d.port());
  c.send("x\n");
  CHECK(c.read_all() == "Hello from server!\n");
  CHECK(wait_lines(path, 1).size() == 1);
}

TEST_CASE("TLS listeners: the handshake's parameters on the line, a failed handshake as a refusal", "[access_log][tls]") {
  TempDir dir;
  const std::string cert = (dir.path() / "cert.pem").string();
  const std::string key = (dir.path() / "key.pem").string();
  const std::string make = "openssl req -x509 -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -days 2 "
                           "-subj /CN=localhost -keyout " + key + " -out " + cert + " >/dev/null 2>&1 && chmod 0644 " +
                           key;
  REQUIRE(std::system(make.c_str()) == 0);
  const std::string path = (dir.path() / "access.log").string();
  auto d = Daemon::start(daemon_section(path, "logfmt") + "[[listener]]\nname = \"secure\"\naddress = \"127.0.0.1:0\"\n"
                         "tls_certificate = \"" + cert + "\"\ntls_key = \"" + key + "\"\n");
  const std::string out = (dir.path() / "out").string();
  const std::string client = "printf 'x\\n' | timeout 10 openssl s_client -quiet -tls1_3 -servername sni.test "
                             "-connect 127.0.0.1:" + std::to_string(d.port()) + " >" + out + " 2>/dev/null";
  CHECK(std::system(client.c_str()) == 0);
  std::ifstream answer(out);
  std::string reply;
  std::getline(answer, reply);
  CHECK(reply == "Hello from server!");

  Client plain(d.port());
  plain.send("GET / HTTP/1.0\r\n\r\n");
  CHECK(plain.wait_closed());
  const auto lines = wait_lines(path, 2);
  REQUIRE(lines.size() == 2);
  auto fields = connection("secure", "greeting", R"(127\.0\.0\.1:\d+)", d.port(), 2, 19, "handler_done");
  fields[3].kind = Field::pattern_text;
  fields.push_back({"tls_protocol", "TLSv1.3"});
  fields.push_back({"tls_cipher", "TLS_AES_256_GCM_SHA384"});
  fields.push_back({"tls_sni", "sni.test"});
  fields.push_back({"tls_resumed", "false", Field::number});
  const std::string served = lines[0].find(" refused=") == std::string::npos ? lines[0] : lines[1];
  INFO(served);
  CHECK(line_matches(served, fields, "logfmt"));
  const std::string line = served == lines[0] ? lines[1] : lines[0];
  INFO(line);
  CHECK(line_matches(line, refusal("secure", "greeting", peer_of(plain), "tls_handshake",
                                       "TLS handshake failed: http request (SSL routines)"),
                     "logfmt"));
}
