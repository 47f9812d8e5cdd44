#include <portico/registry.hpp>

#include "handlers/chargen.hpp"
#include "handlers/daytime.hpp"
#include "handlers/discard.hpp"
#include "handlers/echo.hpp"
#include "handlers/exec.hpp"
#include "handlers/greeting.hpp"
#include "handlers/proxy.hpp"
#include "handlers/time.hpp"

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
}

}  // namespace portico
