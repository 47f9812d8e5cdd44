#pragma once
// daytime (RFC 867): send the date and time as one human-readable line,
// close.

#include <portico/handler.hpp>

namespace portico::handlers {

HandlerType daytime_type();

}  // namespace portico::handlers
