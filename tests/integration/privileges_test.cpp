// Who porticod serves as, and the files it keeps: pid file, log file.

#include <grp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <catch2/catch.hpp>

#include "support/daemon.hpp"

using namespace portico::test;
using Catch::Matchers::Contains;

namespace {

std::string status_line(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(key)) return line;
  }
  return {};
}

uid_t nobody_when_root() { return geteuid() == 0 ? 65534 : geteuid(); }

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A directory in `dir` that only the user porticod serves as in these
// tests may write (nobody when the tests run as root), as a pid file needs.
std::filesystem::path private_dir(const TempDir& dir, const std::string& name, uid_t owner = nobody_when_root()) {
  const auto path = dir.path() / name;
  std::filesystem::create_directory(path);
  REQUIRE(chmod(path.c_str(), 0755) == 0);
  REQUIRE(chown(path.c_str(), owner, owner) == 0);
  return path;
}

// The pid the next process will likely get, as the kernel hands them out
// in turn: a child that exits at once tells the current one.
pid_t next_pid() {
  const pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);
  return child + 1;
}

}  // namespace

TEST_CASE("as root porticod refuses to serve without a user unless allow_root", "[privileges]") {
  if (geteuid() != 0) {
    WARN("not running as root: privilege tests need root");
    return;
  }
  TempDir dir;
  const auto path = dir.write("root.toml", "[[listener]]\naddress = \"127.0.0.1:0\"\n");
  const auto r = run_porticod({"-c", path}, 10s, true);
  CHECK(r.exit_code == 78);
  CHECK_THAT(r.err, Contains("refusing to serve as root: set [daemon] user"));

  auto allowed = Daemon::start("[daemon]\nallow_root = true\n[[listener]]\naddress = \"127.0.0.1:0\"\n",
                               {.as_root = true});
  CHECK_THAT(allowed.log(), Contains("serving as root (allow_root = true)"));
  CHECK_THAT(status_line(allowed.pid(), "Uid:"), Contains("\t0\t"));
}

TEST_CASE("as root, --check refuses what the start would: no user and no allow_root, at FILE:LINE:COL", "[privileges]") {
  if (geteuid() != 0) {
    WARN("not running as root: privilege tests need root");
    return;
  }
  TempDir dir;
  // No [daemon]: the top of the file; a [daemon] table: its header; an
  // allow_root = false: its value.
  const std::pair<std::string, std::string> cases[] = {
      {"[[listener]]\naddress = \"127.0.0.1:0\"\n", ":1:1: "},
      {"[[listener]]\naddress = \"127.0.0.1:0\"\n[daemon]\nlog_level = \"info\"\n", ":3:1: "},
      {"[daemon]\nlog_level = \"info\"\nallow_root = false\n[[listener]]\naddress = \"127.0.0.1:0\"\n", ":3:14: "}};
  for (const auto& [text, where] : cases) {
    const auto path = dir.write("root.toml", text);
    const std::string expected =
        path + where + "refusing to serve as root: set [daemon] user (e.g. user = \"portico\"), or allow_root = true\n";
    const auto check = run_porticod({"--check", "-c", path}, 10s, true);
    CHECK(check.exit_code == 78);
    CHECK(check.out == "");
    CHECK(check.err == expected + "porticod: 1 error(s) in " + path + "\n");
    const auto start = run_porticod({"-c", path}, 10s, true);
    CHECK(start.exit_code == 78);
    CHECK_THAT(start.err, Contains(expected));
  }
}

TEST_CASE("user = \"root\" is a config error at --check, not a failed start", "[privileges]") {
  TempDir dir;
  const auto path = dir.write("r.toml", "[daemon]\nuser = \"root\"\n[[listener]]\naddress = \"127.0.0.1:0\"\n");
  for (const bool as_root : {false, true}) {
    const auto r = run_porticod({"--check", "-c", path}, 10s, as_root);
    CHECK(r.exit_code == 78);
    CHECK_THAT(r.err, Contains(path + ":2:8: [daemon] user \"root\" is root (uid 0): name an unprivileged user, or "
                                      "remove \"user\" and set allow_root = true to serve as root\n"));
  }
}

TEST_CASE("a pid_file or log_file in a missing directory is a config error at --check", "[privileges][files]") {
  TempDir dir;
  const auto path = dir.write("f.toml", "[daemon]\npid_file = \"/nonexistent/dir/p.pid\"\n"
                                        "log_file = \"/nonexistent/dir/p.log\"\n"
                                        "[[listener]]\naddress = \"127.0.0.1:0\"\n");
  const auto r = run_porticod({"--check", "-c", path});
  CHECK(r.exit_code == 78);
  CHECK(r.out == "");
  CHECK(r.err == path + ":2:12: [daemon] pid_file cannot be written: directory /nonexistent/dir: No such file or "
                        "directory\n" +
                    path + ":3:12: [daemon] log_file cannot be opened: directory /nonexistent/dir: No such file or "
                           "directory\n" +
                    "porticod: 2 error(s) in " + path + "\n");
  // A log_file that is a directory.
  const auto dir_log = dir.write("d.toml", "[daemon]\nlog_file = \"" + dir.path().string() +
                                               "\"\n[[listener]]\naddress = \"127.0.0.1:0\"\n");
  const auto d = run_porticod({"--check", "-c", dir_log});
  CHECK(d.exit_code == 78);
  CHECK_THAT(d.err, Contains(dir_log + ":2:12: [daemon] log_file cannot be opened: " + dir.path().string() +
                             " is a directory\n"));
}

TEST_CASE("as root porticod binds a low port, then serves as the configured user with no extra groups",
          "[privileges]") {
  if (geteuid() != 0) {
    WARN("not running as root: privilege tests need root");
    return;
  }
  // Find a free port below 1024.
  std::uint16_t low = 0;
  for (std::uint16_t p = 700; p < 1000 && low == 0; ++p) {
    const int fd = try_connect(p, "127.0.0.1", 100ms);
    if (fd < 0 && errno == ECONNREFUSED) low = p;
    if (fd >= 0) close(fd);
  }
  REQUIRE(low != 0);
  auto d = Daemon::start("[daemon]\nuser = \"nobody\"\n[[listener]]\naddress = \"127.0.0.1:" + std::to_string(low) +
                             "\"\n",
                         {.as_root = true});
  CHECK(d.wait_log("serving as user nobody (uid 65534"));
  CHECK_THAT(status_line(d.pid(), "Uid:"), Contains("65534\t65534\t65534\t65534"));
  // The kernel prints "Groups:\t" then each group followed by a space.
  const std::string groups = status_line(d.pid(), "Groups:");
  REQUIRE(groups.starts_with("Groups:"));
  CHECK(groups.find_first_not_of(" \t", 7) == std::string::npos);
  Client c(low);
  c.send("hi\n");
  CHECK(c.read_all(3s) == "Hello from server!\n");
}

TEST_CASE("an unknown user is a config error at --check", "[privileges]") {
  TempDir dir;
  const auto path = dir.write("u.toml", "[daemon]\nuser = \"no-such-user-here\"\n[[listener]]\naddress = \"127.0.0.1:0\"\n");
  const auto r = run_porticod({"--check", "-c", path});
  CHECK(r.exit_code == 78);
  CHECK_THAT(r.err, Contains(path + ":2:8: [daemon] user \"no-such-user-here\" does not exist"));
}

TEST_CASE("pid_file is written once listening and removed on exit", "[privileges][files]") {
  TempDir dir;
  const std::string pid_path = (private_dir(dir, "run") / "porticod.pid").string();
  auto d = Daemon::start("[daemon]\npid_file = \"" + pid_path + "\"\n[[listener]]\naddress = \"127.0.0.1:0\"\n");
  CHECK(slurp(pid_path) == std::to_string(d.pid()) + "\n");
  d.signal(SIGTERM);
  CHECK(d.wait_exit() == 0);
  CHECK_FALSE(std::filesystem::exists(pid_path));
}

TEST_CASE("log_file receives the log, and SIGUSR1 reopens it after rotation", "[privileges][files]") {
  TempDir dir;
  const std::string log_path = (dir.path() / "portico.log").string();
  auto d = Daemon::start("[daemon]\nlog_file = \"" + log_path + "\"\n[[listener]]\nname = \"x\"\naddress = \"127.0.0.1:0\"\n",
                         {.listeners = 0});
  // The serving line goes to the file, not stderr.
  const auto deadline = Clock::now() + 5s;
  while (slurp(log_path).find("serving x on") == std::string::npos && Clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  CHECK_THAT(slurp(log_path), Contains("serving x on 127.0.0.1:"));
  std::filesystem::rename(log_path, log_path + ".1");
  d.signal(SIGUSR1);
  const auto deadline2 = Clock::now() + 5s;
  while (slurp(log_path).find("log file reopened") == std::string::npos && Clock::now() < deadline2) {
    std::this_thread::sleep_for(10ms);
  }
  CHECK_THAT(slurp(log_path), Contains("SIGUSR1: log file reopened"));
  CHECK_THAT(slurp(log_path + ".1"), Contains("serving x on"));
}

TEST_CASE("a pid file directory that others may write is refused at --check and at start", "[privileges][files]") {
  TempDir dir;  // mode 0777
  const std::string pid_path = (dir.path() / "porticod.pid").string();
  const auto path = dir.write("p.toml", "[daemon]\npid_file = \"" + pid_path + "\"\n[[listener]]\naddress = \"127.0.0.1:0\"\n");
  const std::string expected = path + ":2:12: [daemon] pid_file cannot be written: directory " + dir.path().string() +
                               " is writable by every user, who could replace the pid file: use a directory only its "
                               "owner may write (mode 0755, as /run)\n";
  const auto check = run_porticod({"--check", "-c", path});
  CHECK(check.exit_code == 78);
  CHECK(check.err == expected + "porticod: 1 error(s) in " + path + "\n");
  const auto start = run_porticod({"-c", path});
  CHECK(start.exit_code == 78);
  CHECK_THAT(start.err, Contains(expected));
  CHECK_FALSE(std::filesystem::exists(pid_path));
}

TEST_CASE("as root, links planted at the pid file's names are replaced, never followed", "[privileges][files]") {
  if (geteuid() != 0) {
    WARN("not running as root: privilege tests need root");
    return;
  }
  TempDir dir;
  const auto run = private_dir(dir, "run", 0);
  const auto victim = private_dir(dir, "victim", 0) / "shadow";
  std::ofstream(victim) << "precious\n";
  const std::string pid_path = (run / "porticod.pid").string();
  // The names a pid file writer might use for its temporary file: the
  // next 300 pids, as "<pid_file>.tmp.<pid>" did; and the pid file itself.
  const pid_t from = next_pid();
  for (pid_t p = from; p < from + 300; ++p) {
    std::filesystem::create_symlink(victim, pid_path + ".tmp." + std::to_string(p));
  }
  std::filesystem::create_symlink(victim, pid_path);

  auto d = Daemon::start("[daemon]\nuser = \"nobody\"\npid_file = \"" + pid_path +
                             "\"\n[[listener]]\naddress = \"127.0.0.1:0\"\n",
                         {.as_root = true});
  CHECK(d.pid() < from + 300);  // else the planted names missed, and the test proves less
  CHECK(slurp(victim) == "precious\n");
  CHECK_FALSE(std::filesystem::is_symlink(pid_path));
  CHECK(slurp(pid_path) == std::to_string(d.pid()) + "\n");
}

TEST_CASE("as root then as nobody: files in nobody's directory are removed on exit, those in root's are named in "
          "the log",
          "[privileges][files]") {
  if (geteuid() != 0) {
    WARN("not running as root: privilege tests need root");
    return;
  }
  TempDir dir;
  const auto roots = private_dir(dir, "roots", 0);
  const auto nobodys = private_dir(dir, "nobodys", 65534);
  for (const auto& where : {nobodys, roots}) {
    const std::string pid_path = (where / "porticod.pid").string();
    const std::string socket_path = (where / "s.sock").string();
    auto d = Daemon::start("[daemon]\nuser = \"nobody\"\npid_file = \"" + pid_path +
                               "\"\n[[listener]]\nname = \"s\"\naddress = \"unix:" + socket_path + "\"\n",
                           {.as_root = true});
    REQUIRE(slurp(pid_path) == std::to_string(d.pid()) + "\n");
    REQUIRE(std::filesystem::exists(socket_path));
    d.signal(SIGTERM);
    REQUIRE(d.wait_exit() == 0);
    if (where == nobodys) {
      CHECK_FALSE(std::filesystem::exists(pid_path));
      CHECK_FALSE(std::filesystem::exists(socket_path));
      CHECK_THAT(d.log(), !Contains("left behind"));
    } else {
      CHECK(std::filesystem::exists(pid_path));
      CHECK_THAT(d.log(), Contains(" warning pid file " + pid_path + " left behind: cannot remove it: Permission denied; "
                                   "porticod serves as uid 65534, who may not write " + roots.string() +
                                   " (root could, before porticod dropped root): use a directory that user owns, or "
                                   "remove it by hand\n"));
      CHECK(std::filesystem::exists(socket_path));
      CHECK_THAT(d.log(), Contains(" warning socket file " + socket_path + " left behind: cannot remove it: Permission "
                                   "denied; porticod serves as uid 65534, who may not write " + roots.string() +
                                   " (root could, before porticod dropped root): use a directory that user owns, or "
                                   "remove it by hand; the next start replaces it\n"));
    }
  }
}

TEST_CASE("as root, a Unix socket file is given to the [daemon] user and group, or to socket_user/socket_group",
          "[privileges][files]") {
  if (geteuid() != 0) {
    WARN("not running as root: privilege tests need root");
    return;
  }
  TempDir dir;
  const auto run = private_dir(dir, "run", 0);
  const std::string a = (run / "a.sock").string();
  const std::string b = (run / "b.sock").string();
  auto d = Daemon::start("[daemon]\nuser = \"nobody\"\n"
                         "[[listener]]\nname = \"a\"\naddress = \"unix:" + a + "\"\nsocket_mode = \"0660\"\n"
                         "[[listener]]\nname = \"b\"\naddress = \"unix:" + b + "\"\nsocket_user = \"root\"\n"
                         "socket_group = \"daemon\"\n",
                         {.listeners = 2, .as_root = true});
  struct stat st {};
  REQUIRE(lstat(a.c_str(), &st) == 0);
  CHECK(st.st_uid == 65534);
  CHECK(st.st_gid == 65534);  // nobody's primary group, nogroup
  CHECK((st.st_mode & 0777) == 0660);
  REQUIRE(lstat(b.c_str(), &st) == 0);
  CHECK(st.st_uid == 0);
  CHECK(st.st_gid == 1);  // daemon
  // A process of the service's own user and group connects (root:root 0660
  // let only root in before).
  const pid_t child = fork();
  if (child == 0) {
    if (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0) _exit(2);
    try {
      auto c = Client::unix_socket(a);
      c.send("hi\n");
      _exit(c.read_all(3s) == "Hello from server!\n" ? 0 : 3);
    } catch (...) {
      _exit(4);
    }
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
