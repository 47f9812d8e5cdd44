#pragma once
// Who porticod serves as: started as root, it binds first and then drops to
// [daemon] user/group; it refuses to serve as root unless allow_root = true.

#include <sys/types.h>

#include <string>

#include <spdlog/logger.h>

#include <portico/config.hpp>
#include <portico/result.hpp>

namespace portico {

// Reports, at the position of allow_root or of [daemon], a configuration
// that may not be served as the current user: root without user and
// without allow_root.
void check_serving_identity(const Config& config, Diagnostics& errors);

// The user porticod serves as: [daemon] user when started as root and one
// is given, else the current one.
uid_t serving_uid(const DaemonConfig& daemon);

// The group porticod serves as: [daemon] group, else the user's primary
// group, when started as root with a user; else the current one.
gid_t serving_gid(const DaemonConfig& daemon);

// Switches to daemon.user / daemon.group when running as root, clearing
// supplementary groups, or says why it cannot. Logs what happened.
Result<void> drop_privileges(const DaemonConfig& daemon, spdlog::logger& log);

}  // namespace portico
