#pragma once
// Who porticod serves as: started as root, it binds first and then drops to
// [daemon] user/group; it refuses to serve as root unless allow_root = true.

#include <string>

#include <spdlog/logger.h>

#include <portico/config.hpp>

namespace portico {

// Returns an error message when the configuration may not be served as the
// current user (root without user and without allow_root), else empty.
std::string check_serving_identity(const DaemonConfig& daemon);

// Switches to daemon.user / daemon.group when running as root, clearing
// supplementary groups. Throws std::runtime_error on failure. Logs what
// happened.
void drop_privileges(const DaemonConfig& daemon, spdlog::logger& log);

}  // namespace portico
