#pragma once
// Handler types by name: the only seam between the core and the handlers.

#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <portico/handler.hpp>

namespace portico {

// Not thread-safe; fill it before starting a server, then treat it as
// read-only while the server uses it.
class Registry {
 public:
  // Adds a type. Throws std::invalid_argument for an empty or duplicate
  // name, a missing factory, or a schema with duplicate option names.
  void add(HandlerType type);

  // The type called `name`, or nullptr.
  const HandlerType* find(std::string_view name) const;
  // Names in alphabetical order.
  std::vector<std::string> names() const;

  // What `porticod --list-handlers` prints: a "name: doc" line per type,
  // then one indented line per option (name, type, default, doc).
  std::string describe() const;

 private:
  std::map<std::string, HandlerType, std::less<>> types_;
};

// Registers greeting and the other handler types that ship with portico.
void register_builtin_handlers(Registry& registry);

}  // namespace portico
