#pragma once
// The portico version these headers belong to. A plugin records it at
// compile time (see plugin.hpp) so that porticod can refuse a plugin built
// against other headers, whose types may not match its own. This file is
// the one place the version is written: CMakeLists.txt reads it.

#define PORTICO_VERSION_MAJOR 0
#define PORTICO_VERSION_MINOR 2
#define PORTICO_VERSION_PATCH 0
#define PORTICO_VERSION_STRING "0.2.0"

namespace portico {

// The library's version, "MAJOR.MINOR.PATCH": PORTICO_VERSION_STRING of the
// headers the library was built with.
const char* version();

}  // namespace portico
