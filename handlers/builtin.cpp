#include <portico/registry.hpp>

#include "handlers/greeting.hpp"

namespace portico {

void register_builtin_handlers(Registry& registry) {
  registry.add(handlers::greeting_type());
}

}  // namespace portico
