// The metrics listener against the real porticod: HTTP as a scraper sees
// it, the exposition checked by promtool, counters that move by exactly
// what a test did, reloads, hostile clients, and one scrape by the real
// Prometheus server. promtool and prometheus come from Debian's
// `prometheus` package, installed through tools/deps.

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>

#include "support/daemon.hpp"

using namespace portico::test;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

// Installs Debian's prometheus package (promtool and the server) when it
// is missing; one test at a time, since apt takes a lock.
void ensure_prometheus() {
  static bool done = false;
  if (done) return;
  const std::string command = std::string("flock /tmp/portico-tools-deps.lock ") + PORTICO_SOURCE_DIR +
                              "/tools/deps prometheus >/tmp/portico-tools-deps.log 2>&1";
  REQUIRE(std::system(command.c_str()) == 0);
  done = true;
}

struct Response {
  std::string head;  // status line and headers
  std::string body;
};

// Splits what a server sent into responses, by Content-Length.
std::vector<Response> responses(std::string bytes) {
  std::vector<Response> out;
  for (;;) {
    const auto end = bytes.find("\r\n\r\n");
    if (end == std::string::npos) break;
    Response r{bytes.substr(0, end + 2), {}};
    std::smatch m;
    std::size_t length = 0;
    if (std::regex_search(r.head, m, std::regex("Content-Length: (\\d+)\r\n"))) length = std::stoul(m[1]);
    const bool head_only = r.head.find("X-Head: 1") != std::string::npos;
    if (!head_only) r.body = bytes.substr(end + 4, length);
    bytes.erase(0, end + 4 + (head_only ? 0 : length));
    out.push_back(std::move(r));
  }
  return out;
}

Response get(std::uint16_t port, const std::string& path = "/metrics") {
  Client c(port);
  c.send("GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  auto all = responses(c.read_all());
  REQUIRE(all.size() == 1);
  return all[0];
}

// "name{labels}" -> value, for every sample of an exposition.
std::map<std::string, double> samples(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.rfind(' ');
    out[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return out;
}

std::map<std::string, double> scrape(std::uint16_t port) {
  const auto r = get(port);
  REQUIRE_THAT(r.head, StartsWith("HTTP/1.1 200 OK\r\n"));
  return samples(r.body);
}

double value(const std::map<std::string, double>& s, const std::string& key) {
  const auto it = s.find(key);
  if (it == s.end()) FAIL("no sample " << key);
  return it->second;
}

// Runs `command` with `input` on its stdin; its exit status and output.
std::pair<int, std::string> run_with_input(const std::string& command, const std::string& input) {
  TempDir dir;
  const std::string in = dir.write("in", input);
  const std::string out = (dir.path() / "out").string();
  const int status = std::system((command + " <" + in + " >" + out + " 2>&1").c_str());
  std::ifstream file(out);
  std::stringstream text;
  text << file.rdbuf();
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text.str()};
}

void greet(std::uint16_t port) {
  Client c(port);
  c.send("GET request\n");  // 12 bytes in, 19 out
  CHECK(c.read_all() == "Hello from server!\n");
}

const std::string metrics_listener =
    "[[listener]]\nname = \"metrics\"\naddress = \"127.0.0.1:0\"\nhandler = \"metrics\"\nallow = [\"127.0.0.0/8\"]\n";

}  // namespace

TEST_CASE("GET /metrics answers in the text format; other paths 404, other methods 405, HEAD has no body",
          "[metrics]") {
  auto d = Daemon::start(metrics_listener);
  const auto ok = get(d.port());
  CHECK_THAT(ok.head, StartsWith("HTTP/1.1 200 OK\r\n"));
  CHECK_THAT(ok.head, Contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
  CHECK_THAT(ok.body, Contains("# TYPE portico_connections_accepted_total counter\n"
                               "portico_connections_accepted_total{listener=\"metrics\",handler=\"metrics\"} 1\n"));
  CHECK(get(d.port(), "/metrics?x=1").head.starts_with("HTTP/1.1 200 OK\r\n"));
  const auto missing = get(d.port(), "/");
  CHECK_THAT(missing.head, StartsWith("HTTP/1.1 404 Not Found\r\n"));
  CHECK(missing.body == "not found: the metrics are at /metrics\n");

  Client post(d.port());
  post.send("POST /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const auto refused = responses(post.read_all());
  REQUIRE(refused.size() == 1);
  CHECK_THAT(refused[0].head, StartsWith("HTTP/1.1 405 Method Not Allowed\r\n"));
  CHECK_THAT(refused[0].head, Contains("Allow: GET, HEAD\r\n"));

  Client head(d.port());
  head.send("HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  bool closed = false;
  const std::string bytes = head.read_all(3s, &closed);
  CHECK(closed);
  CHECK_THAT(bytes, StartsWith("HTTP/1.1 200 OK\r\n"));
  CHECK(bytes.ends_with("\r\n\r\n"));  // the header only
  CHECK_THAT(bytes, Contains("Content-Length: "));
}

TEST_CASE("keep-alive: requests one after another and pipelined on one connection", "[metrics]") {
  auto d = Daemon::start(metrics_listener);
  Client c(d.port());
  const std::string request = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  c.send(request);
  std::string first;
  while (responses(first).empty()) first += c.read_exactly(1, 3s);
  // The rest of the first answer, then two pipelined requests.
  const auto size = std::stoul(std::regex_replace(first, std::regex("(?:.|\r|\n)*Content-Length: (\\d+)(?:.|\r|\n)*"), "$1"));
  first += c.read_exactly(size);
  c.send(request + "GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  bool closed = false;
  const auto rest = responses(c.read_all(3s, &closed));
  CHECK(closed);
  REQUIRE(rest.size() == 2);
  CHECK_THAT(rest[0].head, StartsWith("HTTP/1.1 200 OK\r\n"));
  CHECK_THAT(rest[1].head, StartsWith("HTTP/1.1 404 Not Found\r\n"));
  // One connection served all three.
  CHECK_THAT(rest[0].body, Contains("portico_connections_accepted_total{listener=\"metrics\",handler=\"metrics\"} 1\n"));
}

TEST_CASE("promtool check metrics passes on the exposition of every kind of listener", "[metrics][promtool]") {
  ensure_prometheus();
  TempDir dir;
  auto d = Daemon::start("[daemon]\naccess_log = \"" + (dir.path() / "access.log").string() + "\"\n" +
                             metrics_listener +
                             "[[listener]]\nname = \"hello\"\naddress = \"127.0.0.1:0\"\n"
                             "[[listener]]\nname = \"run\"\naddress = \"127.0.0.1:0\"\nhandler = \"exec\"\n"
                             "command = [\"/bin/sh\", \"-c\", \"exit 3\"]\n"
                             "[[listener]]\nname = 'odd\"name\"\\here'\naddress = \"127.0.0.1:0\"\n",
                         Daemon::Options{.listeners = 4});
  greet(d.port("hello"));
  Client(d.port("run")).wait_closed();
  const auto r = get(d.port("metrics"));
  const auto [status, out] = run_with_input("promtool check metrics", r.body);
  INFO(r.body);
  INFO(out);
  CHECK(status == 0);
  CHECK(out.empty());
  // Every standard series is there.
  for (const char* name : {"process_cpu_seconds_total ", "process_resident_memory_bytes ", "process_open_fds ",
                           "process_max_fds ", "process_start_time_seconds ", "process_virtual_memory_bytes ",
                           "portico_build_info{version=\"", "portico_config_last_reload_success_timestamp_seconds ",
                           "portico_access_log_dropped_total 0\n"}) {
    CHECK_THAT(r.body, Contains(std::string("\n") + name));
  }
  CHECK_THAT(r.body, Contains("portico_connections_accepted_total{listener=\"odd\\\"name\\\"\\\\here\","));
}

TEST_CASE("counters move by exactly what clients did", "[metrics]") {
  auto d = Daemon::start(metrics_listener +
                             "[[listener]]\nname = \"hello\"\naddress = \"127.0.0.1:0\"\n"
                             "[[listener]]\nname = \"limited\"\naddress = \"127.0.0.1:0\"\nrate = 1\nburst = 1\n"
                             "defer_accept = \"0s\"\n"
                             "[[listener]]\nname = \"run\"\naddress = \"127.0.0.1:0\"\nhandler = \"exec\"\n"
                             "command = [\"/bin/sh\", \"-c\", \"read x; exit $x\"]\n"
                             "[[listener]]\nname = \"idle\"\naddress = \"127.0.0.1:0\"\nhandler = \"echo\"\n"
                             "idle_timeout = \"1s\"\ndefer_accept = \"0s\"\n",
                         Daemon::Options{.listeners = 5});
  const auto before = scrape(d.port("metrics"));
  const std::string hello = "{listener=\"hello\",handler=\"greeting\"}";
  constexpr int n = 7;
  for (int i = 0; i < n; ++i) greet(d.port("hello"));
  // The first takes the bucket's one token; the next three are refused.
  Client first(d.port("limited"));
  for (int i = 0; i < 3; ++i) CHECK(Client(d.port("limited")).wait_closed());
  for (const char* code : {"0\n", "3\n", "3\n"}) {
    Client c(d.port("run"));
    c.send(code);
    CHECK(c.wait_closed());
  }
  CHECK(Client(d.port("idle")).wait_closed());
  Client open(d.port("idle"));
  open.send("abcd");
  CHECK(open.read_exactly(4) == "abcd");
  // The exec children have been reaped, the refusals counted.
  std::this_thread::sleep_for(200ms);
  const auto after = scrape(d.port("metrics"));
  const auto delta = [&](const std::string& key) { return value(after, key) - value(before, key); };

  CHECK(delta("portico_connections_accepted_total" + hello) == n);
  CHECK(delta("portico_received_bytes_total" + hello) == 12 * n);
  CHECK(delta("portico_sent_bytes_total" + hello) == 19 * n);
  CHECK(delta("portico_connection_duration_seconds_count" + hello) == n);
  CHECK(delta("portico_connection_duration_seconds_bucket{listener=\"hello\",handler=\"greeting\",le=\"+Inf\"}") ==
        n);
  CHECK(value(after, "portico_connections_active" + hello) == 0);
  CHECK(delta("portico_connections_refused_total{listener=\"limited\",handler=\"greeting\",reason=\"rate\"}") == 3);
  CHECK(delta("portico_connections_refused_total{listener=\"limited\",handler=\"greeting\",reason=\"access\"}") == 0);
  CHECK(delta("portico_connections_accepted_total{listener=\"limited\",handler=\"greeting\"}") == 1);
  CHECK(value(after, "portico_connections_active{listener=\"limited\",handler=\"greeting\"}") == 1);
  CHECK(value(after, "portico_exec_spawned_total{listener=\"run\"}") == 3);
  CHECK(value(after, "portico_exec_exits_total{listener=\"run\",status=\"0\"}") == 1);
  CHECK(value(after, "portico_exec_exits_total{listener=\"run\",status=\"3\"}") == 2);
  CHECK(value(after, "portico_exec_running{listener=\"run\"}") == 0);
  CHECK(value(after, "portico_timeouts_total{listener=\"idle\",handler=\"echo\",kind=\"idle\"}") == 1);
  CHECK(value(after, "portico_timeouts_total{listener=\"idle\",handler=\"echo\",kind=\"session\"}") == 0);
  // An open connection's bytes count already.
  CHECK(value(after, "portico_received_bytes_total{listener=\"idle\",handler=\"echo\"}") == 4);
  CHECK(value(after, "portico_connections_active{listener=\"idle\",handler=\"echo\"}") == 1);
}

TEST_CASE("a reload keeps a kept listener's counters, drops a removed one's series, starts a new one at zero",
          "[metrics][reload]") {
  // A listener is kept when its address is: "gone" and "new" differ in it.
  const std::string kept = metrics_listener + "[[listener]]\nname = \"hello\"\naddress = \"127.0.0.1:0\"\n";
  auto d = Daemon::start(kept + "[[listener]]\nname = \"gone\"\naddress = \"127.0.0.2:0\"\n",
                         Daemon::Options{.listeners = 3});
  const auto metrics_port = d.port("metrics");
  greet(d.port("hello"));
  greet(d.port("hello"));
  auto s = scrape(metrics_port);
  const std::string key = "portico_connections_accepted_total{listener=\"hello\",handler=\"greeting\"}";
  CHECK(value(s, key) == 2);
  CHECK(value(s, "portico_reloads_total{result=\"ok\"}") == 0);
  const double loaded_at = value(s, "portico_config_last_reload_success_timestamp_seconds");

  d.rewrite_config(kept + "[[listener]]\nname = \"new\"\naddress = \"127.0.0.3:0\"\n");
  std::size_t at = d.log().size();
  d.signal(SIGHUP);
  REQUIRE(d.wait_log("reload complete", 5s, at));
  s = scrape(metrics_port);
  CHECK(value(s, key) == 2);
  CHECK(value(s, "portico_connections_accepted_total{listener=\"new\",handler=\"greeting\"}") == 0);
  CHECK(s.count("portico_connections_accepted_total{listener=\"gone\",handler=\"greeting\"}") == 0);
  CHECK(value(s, "portico_reloads_total{result=\"ok\"}") == 1);
  CHECK(value(s, "portico_config_last_reload_success_timestamp_seconds") > loaded_at);

  d.rewrite_config("[[listener]]\naddress = 1\n");
  at = d.log().size();
  d.signal(SIGHUP);
  REQUIRE(d.wait_log("reload failed", 5s, at));
  s = scrape(metrics_port);
  CHECK(value(s, "portico_reloads_total{result=\"failed\"}") == 1);
  CHECK(value(s, "portico_reloads_total{result=\"ok\"}") == 1);
}

TEST_CASE("hostile clients of the metrics listener are closed at a bounded cost; scrapes go on", "[metrics][hostile]") {
  auto d = Daemon::start("[[listener]]\nname = \"metrics\"\naddress = \"127.0.0.1:0\"\nhandler = \"metrics\"\n"
                         "request_timeout = \"1s\"\n");
  const auto port = d.port();
  const auto cpu_before = cpu_time(d.pid());
  SECTION("garbage gets 400 and the end") {
    Client c(port);
    c.send(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 garbage\r\n\r\n", 22));
    bool closed = false;
    CHECK_THAT(c.read_all(3s, &closed), StartsWith("HTTP/1.1 400 Bad Request\r\n"));
    CHECK(closed);
  }
  SECTION("a 1 MB header is cut off after 8 KiB") {
    Client c(port);
    c.send("GET /metrics HTTP/1.1\r\nX-Big: ");
    // The server stops reading at 8 KiB: the rest fills the buffers and
    // the sending stops, or the reset ends it.
    const std::string chunk(64 * 1024, 'a');
    int sent = 0;
    for (; sent < 16 && c.send(chunk); ++sent) {
    }
    bool closed = false;
    const std::string reply = c.read_all(3s, &closed);
    CHECK(closed);
    if (!reply.empty()) CHECK_THAT(reply, StartsWith("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
  }
  SECTION("a header sent a byte at a time ends at request_timeout") {
    Client c(port);
    const auto start = Clock::now();
    const std::string request = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    bool cut = false;
    for (std::size_t i = 0; i < 100 && !cut; ++i) {
      cut = !c.send(std::string(1, i < request.size() ? request[i] : 'a'));
      std::this_thread::sleep_for(50ms);
      if (Clock::now() - start > 1500ms) break;
    }
    CHECK(c.wait_closed(2s));
    CHECK(Clock::now() - start < 3s);
  }
  SECTION("a silent client and an idle kept-alive one are closed too") {
    Client silent(port);
    CHECK(silent.wait_closed(3s));
  }
  // Bounded: well under a second of CPU for any of it.
  CHECK(cpu_time(d.pid()) - cpu_before < 500ms);
  const auto r = get(port);
  CHECK_THAT(r.head, StartsWith("HTTP/1.1 200 OK\r\n"));
}

TEST_CASE("the real Prometheus server scrapes porticod and finds what the clients did", "[metrics][prometheus]") {
  ensure_prometheus();
  auto d = Daemon::start(metrics_listener + "[[listener]]\nname = \"hello\"\naddress = \"127.0.0.1:0\"\n",
                         Daemon::Options{.listeners = 2});
  for (int i = 0; i < 5; ++i) greet(d.port("hello"));

  TempDir dir;
  // A free port for Prometheus' own HTTP API.
  int probe = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof address;
  REQUIRE(::bind(probe, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  ::getsockname(probe, reinterpret_cast<sockaddr*>(&address), &size);
  const std::uint16_t api_port = ntohs(address.sin_port);
  ::close(probe);
  const std::string config = dir.write("prometheus.yml",
                                       "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                                       "scrape_configs:\n  - job_name: portico\n    static_configs:\n"
                                       "      - targets: ['127.0.0.1:" +
                                           std::to_string(d.port("metrics")) + "']\n");
  const std::string log = (dir.path() / "prometheus.log").string();
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    const std::string listen = "--web.listen-address=127.0.0.1:" + std::to_string(api_port);
    const std::string storage = "--storage.tsdb.path=" + (dir.path() / "data").string();
    const std::string config_flag = "--config.file=" + config;
    ::execlp("prometheus", "prometheus", config_flag.c_str(), storage.c_str(), listen.c_str(), nullptr);
    _exit(127);
  }
  struct Stop {
    pid_t pid;
    ~Stop() {
      ::kill(pid, SIGTERM);
      for (int i = 0; i < 100; ++i) {
        if (::waitpid(pid, nullptr, WNOHANG) == pid) return;
        std::this_thread::sleep_for(50ms);
      }
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  } stop{pid};

  // Prometheus starts, scrapes every second; within 30 s its API must
  // answer the query with the 5 greetings.
  const std::string query = "/api/v1/query?query=portico_connections_accepted_total%7Blistener%3D%22hello%22%7D";
  std::string answer;
  const auto deadline = Clock::now() + 30s;
  bool found = false;
  while (!found && Clock::now() < deadline) {
    std::this_thread::sleep_for(500ms);
    const int fd = try_connect(api_port);
    if (fd < 0) continue;
    Client c = Client::adopt(fd);
    c.send("GET " + query + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    answer = c.read_all(5s);
    found = answer.find("\"value\":[") != std::string::npos;
  }
  std::ifstream log_file(log);
  std::stringstream log_text;
  log_text << log_file.rdbuf();
  INFO(log_text.str());
  INFO(answer);
  REQUIRE(found);
  CHECK_THAT(answer, Contains("\"status\":\"success\""));
  CHECK_THAT(answer, Contains("\"metric\":{\"__name__\":\"portico_connections_accepted_total\",\"handler\":"
                              "\"greeting\",\"instance\":\"127.0.0.1:" +
                              std::to_string(d.port("metrics")) + "\",\"job\":\"portico\",\"listener\":\"hello\"}"));
  CHECK(std::regex_search(answer, std::regex(R"("value":\[[0-9.]+,"5"\])")));
}
