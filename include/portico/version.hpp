#pragma once

namespace portico {

// The library's version, "MAJOR.MINOR.PATCH".
const char* version();

}  // namespace portico
