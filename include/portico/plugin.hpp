#pragma once
// Plugins: shared objects that add handler types to a Registry at run time.
//
// A plugin is compiled against portico's headers but does not link the
// library: its references to portico (Registry::add, Connection, Options)
// resolve at load time to the copy inside the program that loads it, which
// must therefore export its symbols (porticod does). It exports one C
// function, defined by PORTICO_PLUGIN, and is only accepted by a program of
// exactly the portico version its headers carry: the types it shares with
// the program (Registry, HandlerType, Connection) have no stable layout.
// It must also be built by the same compiler and standard library.
//
//   void register_handlers(portico::Registry& registry) {
//     registry.add(portico::HandlerType{.name = "hello", ...});
//   }
//   PORTICO_PLUGIN("hello", register_handlers)

#include <cstdint>
#include <stdexcept>
#include <string>

#include <portico/registry.hpp>
#include <portico/result.hpp>
#include <portico/version.hpp>

// The version of PluginInfo's layout, raised whenever it changes; a plugin of
// another ABI is refused before any field but `abi` is read.
#define PORTICO_PLUGIN_ABI 3

// Only the test suite sets this, to build a plugin that claims another
// version and must be refused.
#ifdef PORTICO_PLUGIN_VERSION_OVERRIDE
#define PORTICO_PLUGIN_BUILT_AGAINST PORTICO_PLUGIN_VERSION_OVERRIDE
#else
#define PORTICO_PLUGIN_BUILT_AGAINST PORTICO_VERSION_STRING
#endif

namespace portico {

// What a plugin's entry point returns: static data, valid for as long as the
// plugin stays loaded (which is until the process exits).
struct PluginInfo {
  std::uint32_t abi;                              // PORTICO_PLUGIN_ABI; always first
  const char* portico_version;                    // the version of the headers it was built with
  const char* name;                               // for messages
  void (*register_handlers)(Registry& registry);  // adds its handler types; may throw
};

// The name of the entry point that PORTICO_PLUGIN defines.
inline constexpr const char* plugin_entry_point = "portico_plugin_info";

// Loads the shared object at `path` (a name without a slash is searched for
// as dlopen(3) does), checks that it is a plugin of this ABI and of exactly
// this portico version, and lets it register its handler types. Fails, the
// message naming the plugin and why, when the file cannot be loaded (with
// dlerror()'s text, e.g. a missing file or an undefined symbol), is not a
// portico plugin, was built against another version, or fails to register
// (e.g. a handler type name already taken; types it registered before
// failing stay registered).
//
// A loaded plugin is never unloaded: the handler types and handlers it
// creates have their code in it. Loading the same file twice into one
// registry fails as a duplicate handler type. Not thread-safe, like Registry.
Result<void> load_plugin(Registry& registry, const std::string& path);

}  // namespace portico

extern "C" __attribute__((visibility("default"))) const ::portico::PluginInfo* portico_plugin_info();

// Defines the plugin's entry point: `name` is a string naming the plugin in
// messages, `register_function` a function `void(portico::Registry&)`.
// Use it once, at namespace scope, in one source file of the plugin.
#define PORTICO_PLUGIN(name, register_function)                                                       \
  extern "C" __attribute__((visibility("default"))) const ::portico::PluginInfo* portico_plugin_info() { \
    static constexpr ::portico::PluginInfo info{PORTICO_PLUGIN_ABI, PORTICO_PLUGIN_BUILT_AGAINST, (name),  \
                                                &(register_function)};                                  \
    return &info;                                                                                       \
  }
