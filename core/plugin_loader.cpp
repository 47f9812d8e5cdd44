#include <portico/plugin.hpp>
#include <portico/version.hpp>

#include <cstring>
#include <memory>

#include <dlfcn.h>

#include <fmt/format.h>

namespace portico {

namespace {

using EntryPoint = const PluginInfo* (*)();

std::string dl_error() {
  const char* error = dlerror();
  return error != nullptr ? error : "unknown error";
}

// Closes a shared object that turned out not to be a usable plugin. Once a
// plugin's register_handlers has run, the handle is released and stays open.
struct CloseLibrary {
  void operator()(void* handle) const { dlclose(handle); }
};

}  // namespace

Result<void> load_plugin(Registry& registry, const std::string& path) {
  // RTLD_NOW: a plugin that needs a symbol this program lacks fails here,
  // with the symbol named, not at its first connection. RTLD_LOCAL: one
  // plugin's symbols do not satisfy another's.
  std::unique_ptr<void, CloseLibrary> library(dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL));
  if (!library) return fail("cannot load plugin: {}", dl_error());

  // A function pointer travels through dlsym's void*, as POSIX specifies.
  const auto entry = reinterpret_cast<EntryPoint>(dlsym(library.get(), plugin_entry_point));
  if (entry == nullptr) {
    return fail("\"{}\" is not a portico plugin (no {} symbol)", path, plugin_entry_point);
  }
  const PluginInfo* info = entry();
  if (info == nullptr) {
    return fail("\"{}\" is not a portico plugin ({} returned null)", path, plugin_entry_point);
  }
  if (info->abi != PORTICO_PLUGIN_ABI) {
    return fail("\"{}\" is a portico plugin of ABI {}; this is portico {}, which loads ABI {}: "
                                  "rebuild it against this version",
                                  path, info->abi, version(), PORTICO_PLUGIN_ABI);
  }
  const char* name = info->name != nullptr ? info->name : "(unnamed)";
  const char* built_against = info->portico_version != nullptr ? info->portico_version : "(unknown)";
  if (std::strcmp(built_against, version()) != 0) {
    return fail("plugin \"{}\" ({}) was built against portico {}; this is portico {}: "
                                  "rebuild it against this version",
                                  name, path, built_against, version());
  }
  if (info->register_handlers == nullptr) {
    return fail("plugin \"{}\" ({}) has no register_handlers function", name, path);
  }

  // From here on the registry may hold the plugin's code: never unload it.
  library.release();
  try {
    info->register_handlers(registry);
  } catch (const std::exception& e) {
    return fail("plugin \"{}\" ({}): {}", name, path, e.what());
  }
  return {};
}

}  // namespace portico
