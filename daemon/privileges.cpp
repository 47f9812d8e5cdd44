#include "daemon/privileges.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include <portico/text.hpp>

namespace portico {

void check_serving_identity(const Config& config, Diagnostics& errors) {
  const auto& daemon = config.daemon;
  if (geteuid() != 0 || !daemon.user.empty() || daemon.allow_root) return;
  errors.error(daemon.position("allow_root"),
               "refusing to serve as root: set [daemon] user (e.g. user = \"portico\"), or allow_root = true");
}

uid_t serving_uid(const DaemonConfig& daemon) {
  if (geteuid() != 0 || daemon.user.empty()) return geteuid();
  const passwd* user = getpwnam(daemon.user.c_str());
  return user != nullptr ? user->pw_uid : geteuid();
}

gid_t serving_gid(const DaemonConfig& daemon) {
  if (geteuid() != 0 || daemon.user.empty()) return getegid();
  if (!daemon.group.empty()) {
    const group* g = getgrnam(daemon.group.c_str());
    if (g != nullptr) return g->gr_gid;
  }
  const passwd* user = getpwnam(daemon.user.c_str());
  return user != nullptr ? user->pw_gid : getegid();
}

Result<void> drop_privileges(const DaemonConfig& daemon, spdlog::logger& log) {
  if (geteuid() != 0) {
    if (!daemon.user.empty()) {
      log.debug("not started as root: [daemon] user {} does not apply; serving as uid {}", quote_text(daemon.user),
                geteuid());
    }
    return {};
  }
  if (daemon.user.empty()) {
    log.warn("serving as root (allow_root = true)");
    return {};
  }
  const passwd* user = getpwnam(daemon.user.c_str());
  if (user == nullptr) {
    return fail("[daemon] user {} does not exist", quote_text(daemon.user));
  }
  const uid_t uid = user->pw_uid;
  gid_t gid = user->pw_gid;
  if (!daemon.group.empty()) {
    const group* g = getgrnam(daemon.group.c_str());
    if (g == nullptr) {
      return fail("[daemon] group {} does not exist", quote_text(daemon.group));
    }
    gid = g->gr_gid;
  }
  // Group first: after setuid there is no right left to change it.
  if (setgroups(0, nullptr) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
    return fail("cannot switch to user {}: {}", quote_text(daemon.user), std::strerror(errno));
  }
  if (setuid(0) == 0) return fail("privileges could be regained after dropping them");
  log.info("serving as user {} (uid {}, gid {})", escape_text(daemon.user), uid, gid);
  return {};
}

}  // namespace portico
