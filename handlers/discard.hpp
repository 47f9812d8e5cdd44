#pragma once
// discard (RFC 863): read and drop whatever the client sends, until it closes.

#include <portico/handler.hpp>

namespace portico::handlers {

HandlerType discard_type();

}  // namespace portico::handlers
