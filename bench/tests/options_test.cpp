// The command line: the options for servers of several processes, TLS and
// reconnecting echo, and the mistakes a user gets told about.

#include <catch2/catch.hpp>

#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

#include "options.hpp"
#include "proc.hpp"

namespace {

struct Parsed {
  bench::ParseOutcome outcome;
  bench::Options options;
  std::string error;
};

Parsed parse(std::initializer_list<const char*> args) {
  std::vector<std::string> words{"portico-bench"};
  words.insert(words.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  Parsed p{};
  std::ostringstream out;
  p.outcome = bench::parse_options(static_cast<int>(argv.size()), argv.data(), p.options, p.error, out);
  return p;
}

}  // namespace

TEST_CASE("the defaults: plain TCP, no server sampled, echo never reconnects", "[options]") {
  const auto p = parse({"echo", "--port", "7000"});
  REQUIRE(p.outcome == bench::ParseOutcome::run);
  CHECK(p.options.server_pids.empty());
  CHECK_FALSE(p.options.tls);
  CHECK_FALSE(p.options.tls_resume);
  CHECK(p.options.tls_ca.empty());
  CHECK(p.options.round_trips == 0);
}

TEST_CASE("--server-pid takes several processes, repeated or as a list", "[options]") {
  CHECK(parse({"greeting", "-p", "1", "--server-pid", "42"}).options.server_pids == std::vector<int>{42});
  CHECK(parse({"greeting", "-p", "1", "--server-pid", "42,43"}).options.server_pids == std::vector<int>{42, 43});
  CHECK(parse({"greeting", "-p", "1", "--server-pid", "42", "--server-pid", "43,44"}).options.server_pids ==
        std::vector<int>{42, 43, 44});

  auto p = parse({"greeting", "-p", "1", "--server-pid", "42", "--server-pid", "42"});
  CHECK(p.outcome == bench::ParseOutcome::usage_error);
  CHECK(p.error == "--server-pid: process id 42 is given twice");
  p = parse({"greeting", "-p", "1", "--server-pid", "0"});
  CHECK(p.outcome == bench::ParseOutcome::usage_error);
  CHECK(p.error == "--server-pid: '0' is not a process id (a list is 1234,1240)");
}

TEST_CASE("--tls, --tls-resume and --tls-ca", "[options]") {
  auto p = parse({"greeting", "-p", "1", "--tls", "--tls-resume", "--tls-ca", "/tmp/ca.pem"});
  REQUIRE(p.outcome == bench::ParseOutcome::run);
  CHECK(p.options.tls);
  CHECK(p.options.tls_resume);
  CHECK(p.options.tls_ca == "/tmp/ca.pem");
  // Every mode runs over TLS.
  for (const char* mode : {"greeting", "echo", "idle", "stream"}) {
    INFO(mode);
    CHECK(parse({mode, "-p", "1", "--tls"}).options.tls);
  }

  p = parse({"greeting", "-p", "1", "--tls-resume"});
  CHECK(p.outcome == bench::ParseOutcome::usage_error);
  CHECK(p.error == "--tls-resume needs --tls");
  p = parse({"greeting", "-p", "1", "--tls-ca", "ca.pem"});
  CHECK(p.outcome == bench::ParseOutcome::usage_error);
  CHECK(p.error == "--tls-ca needs --tls");
  p = parse({"greeting", "-p", "1", "--tls", "--tls-ca", ""});
  CHECK(p.outcome == bench::ParseOutcome::usage_error);
  CHECK(p.error == "--tls-ca needs a file name");
}

TEST_CASE("--round-trips is echo's", "[options]") {
  auto p = parse({"echo", "-p", "1", "--round-trips", "100"});
  REQUIRE(p.outcome == bench::ParseOutcome::run);
  CHECK(p.options.round_trips == 100);

  p = parse({"greeting", "-p", "1", "--round-trips", "100"});
  CHECK(p.outcome == bench::ParseOutcome::usage_error);
  CHECK(p.error == "--round-trips is for echo only");
  p = parse({"echo", "-p", "1", "--round-trips", "-1"});
  CHECK(p.outcome == bench::ParseOutcome::usage_error);
  CHECK(p.error == "--round-trips must be 0 (never reconnect) or more");
}

TEST_CASE("a server of several processes costs their sum", "[proc]") {
  bench::ProcSample front{true, 1.5, 9000};
  bench::ProcSample floor{true, 0.25, 1200};
  const auto sum = bench::total({front, floor});
  CHECK(sum.ok);
  CHECK(sum.cpu_seconds == 1.75);
  CHECK(sum.rss_kb == 10200u);

  // One process gone: no figure rather than a wrong one.
  floor.ok = false;
  CHECK_FALSE(bench::total({front, floor}).ok);
  CHECK_FALSE(bench::total({}).ok);
}
