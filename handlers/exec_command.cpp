#include "exec_command.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>

#include <fmt/format.h>

namespace portico::handlers {

namespace {

// getpwnam_r and getgrnam_r want a buffer; entries larger than this are
// retried with a bigger one.
constexpr std::size_t lookup_buffer = 16384;

std::optional<passwd> find_user(const std::string& name, std::vector<char>& buffer) {
  buffer.resize(lookup_buffer);
  passwd entry{};
  passwd* found = nullptr;
  int rc = 0;
  while ((rc = getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found)) == ERANGE) {
    buffer.resize(buffer.size() * 2);
  }
  if (rc != 0 || found == nullptr) return std::nullopt;
  return entry;
}

std::optional<gid_t> find_group(const std::string& name) {
  std::vector<char> buffer(lookup_buffer);
  group entry{};
  group* found = nullptr;
  int rc = 0;
  while ((rc = getgrnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found)) == ERANGE) {
    buffer.resize(buffer.size() * 2);
  }
  if (rc != 0 || found == nullptr) return std::nullopt;
  return entry.gr_gid;
}

std::vector<gid_t> supplementary_groups(const char* user, gid_t gid) {
  int count = 32;
  std::vector<gid_t> groups(static_cast<std::size_t>(count));
  while (getgrouplist(user, gid, groups.data(), &count) < 0) groups.resize(static_cast<std::size_t>(count));
  groups.resize(static_cast<std::size_t>(count));
  return groups;
}

std::optional<Credentials> resolve_credentials(const std::string& user, const std::string& group,
                                               std::vector<CommandProblem>& problems) {
  if (user.empty() && group.empty()) return std::nullopt;
  if (geteuid() != 0) {
    const std::string option = user.empty() ? "group" : "user";
    problems.push_back({option, fmt::format("\"{}\" needs porticod to run as root (it runs as uid {})", option,
                                            geteuid())});
    return std::nullopt;
  }
  Credentials c;
  std::vector<char> buffer;
  std::optional<passwd> account;
  if (!user.empty()) {
    account = find_user(user, buffer);
    if (!account) {
      problems.push_back({"user", fmt::format("unknown user \"{}\"", user)});
      return std::nullopt;
    }
    c.uid = account->pw_uid;
    c.gid = account->pw_gid;
    c.change_user = true;
  }
  if (!group.empty()) {
    const auto gid = find_group(group);
    if (!gid) {
      problems.push_back({"group", fmt::format("unknown group \"{}\"", group)});
      return std::nullopt;
    }
    c.gid = *gid;
  }
  // The user's own groups, as login would give them; with only a group,
  // that group alone (root's supplementary groups must not stay).
  c.groups = account ? supplementary_groups(account->pw_name, c.gid) : std::vector<gid_t>{c.gid};
  return c;
}

}  // namespace

Command resolve_command(const Options& options, std::vector<CommandProblem>& problems) {
  Command command;
  command.argv = options.string_list("command");
  if (command.argv.empty()) {
    problems.push_back({"command", "\"command\" needs at least the program to run"});
  } else {
    const char* path = std::getenv("PATH");
    auto program = find_executable(command.argv[0], path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin");
    if (program) {
      command.path = std::move(*program);
    } else {
      problems.push_back({"command", program.error().message()});
    }
  }
  command.credentials = resolve_credentials(options.string("user"), options.string("group"), problems);
  return command;
}

}  // namespace portico::handlers
