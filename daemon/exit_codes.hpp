#pragma once
// porticod's exit codes, from sysexits(3), so that scripts and systemd can
// tell a usage mistake from a bad config from a failure at run time;
// porticoctl answers with the same ones (ctl/protocol.hpp adds its own).

namespace portico {

inline constexpr int exit_ok = 0;
inline constexpr int exit_runtime = 1;
inline constexpr int exit_usage = 64;      // EX_USAGE
inline constexpr int exit_config = 78;     // EX_CONFIG

}  // namespace portico
