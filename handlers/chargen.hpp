#pragma once
// chargen (RFC 864): stream lines of printable characters, each starting one
// character further along, as fast as the client reads them, until it closes
// (or until a configured number of lines).

#include <portico/handler.hpp>

namespace portico::handlers {

HandlerType chargen_type();

}  // namespace portico::handlers
