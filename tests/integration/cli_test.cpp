// porticod's command line: exit codes and what it prints.

#include <signal.h>
#include <sys/stat.h>

#include <algorithm>

#include <catch2/catch.hpp>

#include "support/daemon.hpp"

using namespace portico::test;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

TEST_CASE("an unknown flag is a usage error (64)", "[cli]") {
  const auto r = run_porticod({"--no-such-flag"});
  CHECK(r.exit_code == 64);
  CHECK_THAT(r.err, Contains("unrecognised option '--no-such-flag'"));
}

TEST_CASE("an invalid --log-level is a usage error (64)", "[cli]") {
  const auto r = run_porticod({"-l", "loud", "--check"});
  CHECK(r.exit_code == 64);
  CHECK_THAT(r.err, Contains("invalid log level 'loud'"));
}

TEST_CASE("porticod --help and --version exit 0", "[cli]") {
  const auto help = run_porticod({"--help"});
  CHECK(help.exit_code == 0);
  CHECK_THAT(help.out, StartsWith("Usage: porticod"));
  CHECK_THAT(help.out, Contains("--check"));
  const auto version = run_porticod({"-V"});
  CHECK(version.exit_code == 0);
  CHECK_THAT(version.out, StartsWith("porticod 0."));
}

TEST_CASE("porticod --list-handlers prints every type with its options", "[cli]") {
  const auto r = run_porticod({"--list-handlers"});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Contains("greeting: read what the client sends"));
  CHECK_THAT(r.out, Contains("    message "));
  CHECK_THAT(r.out, Contains("\"Hello from server!\\n\""));
  CHECK_THAT(r.out, Contains("    read_limit "));
  CHECK_THAT(r.out, Contains("    read_timeout "));
  CHECK_THAT(r.out, Contains("(one of: after-read, on-connect)"));
}

TEST_CASE("porticod --check accepts a good file with exit 0", "[cli]") {
  TempDir dir;
  const auto path = dir.write("good.toml", "[[listener]]\naddress = \"127.0.0.1:0\"\n");
  const auto r = run_porticod({"--check", "-c", path});
  CHECK(r.exit_code == 0);
  CHECK(r.out == path + ": configuration OK (1 listener(s))\n");
}

TEST_CASE("porticod --check reports every mistake of a bad file with its position, exit 78", "[cli]") {
  TempDir dir;
  const auto path = dir.write("bad.toml",
                              "[daemon]\n"
                              "log_levle = \"info\"\n"
                              "[[listener]]\n"
                              "address = \"127.0.0.1:99999\"\n"
                              "read_limit = \"many\"\n");
  const auto r = run_porticod({"-t", "-c", path});
  CHECK(r.exit_code == 78);
  CHECK_THAT(r.err, Contains(path + ":2:1: unknown key \"log_levle\" in [daemon] (did you mean \"log_level\"?)"));
  CHECK_THAT(r.err, Contains(path + ":4:11: \"address\" in listener #1: invalid address \"127.0.0.1:99999\": port "
                                    "\"99999\" is not a number from 0 to 65535"));
  CHECK_THAT(r.err, Contains(path + ":5:14: \"read_limit\" in listener #1 must be an integer, not a string"));
  CHECK_THAT(r.err, Contains("porticod: 3 error(s) in " + path));
}

TEST_CASE("porticod --check on 3000 copies of one listener prints 100 errors and a count of the rest", "[cli]") {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 3000; ++i) text += "[[listener]]\nname = \"x\"\naddress = \"127.0.0.1:1\"\n";
  const auto path = dir.write("many.toml", text);
  // Each duplicate once: 2 x 2999 errors, not one per pair (4.5 million
  // lines and 1.7 GB before). 10 s is a generous bound for a few ms of work.
  const auto r = run_porticod({"--check", "-c", path}, 10s);
  CHECK(r.exit_code == 78);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 102);
  CHECK_THAT(r.err, Contains(path + ":4:1: duplicate listener name \"x\" (first used at 1:1)\n"));
  CHECK_THAT(r.err, Contains(path + ": ... and 5898 more errors (only the first 100 are shown)\n"));
  CHECK_THAT(r.err, Contains("porticod: 5998 error(s) in " + path));
}

TEST_CASE("an explicitly named missing config file is a config error", "[cli]") {
  const auto r = run_porticod({"-c", "/nonexistent/portico.toml"});
  CHECK(r.exit_code == 78);
  CHECK_THAT(r.err, Contains("/nonexistent/portico.toml: cannot read the file: No such file or directory"));
}

TEST_CASE("porticod --print-config writes the effective config with defaults, and it reads back", "[cli]") {
  TempDir dir;
  const auto path = dir.write("in.toml", "[[listener]]\naddress = \"[::1]:0\"\nmessage = \"hi\\n\"\n");
  const auto r = run_porticod({"--print-config", "-c", path});
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Contains("shutdown_timeout = \"10s\""));
  CHECK_THAT(r.out, Contains("name = \"[::1]:0\"\naddress = \"[::1]:0\"\nhandler = \"greeting\"\n"));
  CHECK_THAT(r.out, Contains("v6only = true\nmax_connections = 0\non_limit = \"pause\"\n"));
  CHECK_THAT(r.out, Contains("idle_timeout = \"0s\"\nsession_timeout = \"0s\"\n"));
  CHECK_THAT(r.out, Contains("message = \"hi\\n\"\nread_limit = 100\nread_timeout = \"10s\"\nmode = \"after-read\"\n"));
  const auto again = dir.write("again.toml", r.out);
  CHECK(run_porticod({"--check", "-c", again}).exit_code == 0);
}

TEST_CASE("a listener that cannot bind fails the start with exit 1, naming listener, address and error", "[cli]") {
  auto first = Daemon::start("[[listener]]\nname = \"one\"\naddress = \"127.0.0.1:0\"\n");
  TempDir dir;
  const std::string address = "127.0.0.1:" + std::to_string(first.port());
  const auto path = dir.write("clash.toml", "[[listener]]\nname = \"two\"\naddress = \"" + address + "\"\n");
  const auto r = run_porticod({"-c", path});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Contains("listener \"two\": cannot bind to " + address + ": Address already in use"));
}

TEST_CASE("the startup log names each listener with its real port", "[cli]") {
  auto d = Daemon::start(
      "[[listener]]\nname = \"a\"\naddress = \"127.0.0.1:0\"\n"
      "[[listener]]\naddress = \"127.0.0.1:0\"\nmode = \"on-connect\"\n",
      {.listeners = 2});
  CHECK(d.port("a") != 0);
  CHECK(d.port("127.0.0.1:0") != 0);
  CHECK_THAT(d.log(), Contains("serving a on 127.0.0.1:" + std::to_string(d.port("a")) + " (greeting)"));
}

TEST_CASE("a value with an escape sequence and a newline is printed by --check on one line, escaped", "[cli]") {
  TempDir dir;
  const auto path = dir.write("esc.toml", "[[listener]]\naddress = \"127.0.0.1:0\"\n"
                                          "handler = \"x\\u001b[31m\\nfake.toml:1:1: injected\"\n");
  const auto r = run_porticod({"--check", "-c", path});
  CHECK(r.exit_code == 78);
  CHECK(r.err == path + ":3:11: unknown handler type \"x\\x1b[31m\\nfake.toml:1:1: injected\"; known types: "
                        "chargen, daytime, discard, echo, exec, greeting, metrics, proxy, time\n"
                        "porticod: 1 error(s) in " + path + "\n");
}

TEST_CASE("a config file name with control characters is printed escaped, on success and on error", "[cli]") {
  TempDir dir;
  const std::string shown = dir.path().string() + "/a\\x1b[2J\\nb.toml";
  const auto good = dir.write("a\x1b[2J\nb.toml", "[[listener]]\naddress = \"127.0.0.1:0\"\n");
  const auto ok = run_porticod({"--check", "-c", good});
  CHECK(ok.exit_code == 0);
  CHECK(ok.out == shown + ": configuration OK (1 listener(s))\n");
  dir.write("a\x1b[2J\nb.toml", "[[listener]]\n");
  const auto bad = run_porticod({"--check", "-c", good});
  CHECK(bad.exit_code == 78);
  CHECK(bad.err == shown + ":1:1: listener #1 is missing the required key \"address\"\nporticod: 1 error(s) in " +
                       shown + "\n");
}

TEST_CASE("log lines show a path with control characters escaped, at start and on reload", "[cli]") {
  TempDir dir;
  const std::string base = dir.path().string();
  // TOML escapes: ESC [1m, a newline, a tab.
  auto d = Daemon::start("[[listener]]\nname = \"s\"\naddress = \"unix:" + base + "/a\\u001b[1mb\\nc.sock\"\n",
                         {.listeners = 0});
  CHECK(d.wait_log("serving s on unix:" + base + "/a\\x1b[1mb\\nc.sock (greeting)\n"));
  const auto from = d.log().size();
  d.rewrite_config("[[listener]]\nname = \"s\"\naddress = \"unix:" + base + "/a\\u001b[1mb\\nc.sock\"\n"
                   "[[listener]]\nname = \"t\"\naddress = \"unix:" + base + "/d\\te.sock\"\n");
  d.signal(SIGHUP);
  CHECK(d.wait_log("serving t on unix:" + base + "/d\\te.sock (greeting)\n", 5s, from));
  CHECK(d.wait_log("reload complete", 5s, from));
  const std::string log = d.log();
  CHECK(log.find('\x1b') == std::string::npos);
  CHECK(log.find('\t') == std::string::npos);
}

TEST_CASE("a config that is not a regular file, or larger than 4 MiB, is refused at once with exit 78", "[cli]") {
  TempDir dir;
  const std::string fifo = (dir.path() / "fifo").string();
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  REQUIRE(chmod(fifo.c_str(), 0666) == 0);  // porticod runs as nobody under root
  const std::pair<std::string, std::string> cases[] = {
      {"/dev/zero", "it is a character device; a configuration is a regular file"},  // read 2 GB in 5 s before
      {dir.path().string(), "it is a directory; a configuration is a regular file"},   // "no [[listener]]" before
      {fifo, "it is a FIFO; a configuration is a regular file"},                       // waited for a writer before
  };
  for (const auto& [path, why] : cases) {
    const auto r = run_porticod({"--check", "-c", path}, 5s);
    CHECK(r.exit_code == 78);
    CHECK(r.err == path + ": cannot read the file: " + why + "\nporticod: 1 error(s) in " + path + "\n");
  }
  // 4 MiB of comment is read; one byte more is not.
  std::string text = "[[listener]]\naddress = \"127.0.0.1:0\"\n#";
  text += std::string((4 << 20) - text.size() - 1, 'x') + "\n";
  const auto at_limit = dir.write("limit.toml", text);
  CHECK(run_porticod({"--check", "-c", at_limit}).exit_code == 0);
  const auto over = dir.write("over.toml", text + "\n");
  const auto r = run_porticod({"--check", "-c", over});
  CHECK(r.exit_code == 78);
  CHECK_THAT(r.err, Contains(over + ": cannot read the file: it is larger than 4 MiB, the most a configuration may "
                                    "be\n"));
}
