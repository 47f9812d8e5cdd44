#include <portico/registry.hpp>

#include "chargen.hpp"
#include "daytime.hpp"
#include "discard.hpp"
#include "echo.hpp"
#include "exec.hpp"
#include "greeting.hpp"
#include "metrics.hpp"
#include "proxy.hpp"
#include "time.hpp"

namespace portico {

void register_builtin_handlers(Registry& registry) {
  registry.add(handlers::greeting_type());
  registry.add(handlers::echo_type());
  registry.add(handlers::discard_type());
  registry.add(handlers::daytime_type());
  registry.add(handlers::time_type());
  registry.add(handlers::chargen_type());
  registry.add(handlers::proxy_type());
  registry.add(handlers::exec_type());
  registry.add(handlers::metrics_type());
}

}  // namespace portico
