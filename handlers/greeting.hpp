#pragma once
// greeting: read what the client sends (once, up to read_limit bytes), answer
// with a fixed message, close. With mode = "on-connect" the message is a
// banner sent at once, without reading.

#include <portico/handler.hpp>

namespace portico::handlers {

HandlerType greeting_type();

}  // namespace portico::handlers
