#pragma once
// time (RFC 868): send the time as a 32-bit count of seconds since 1900,
// close.

#include <portico/handler.hpp>

namespace portico::handlers {

HandlerType time_type();

}  // namespace portico::handlers
