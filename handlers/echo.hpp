#pragma once
// echo (RFC 862): send back every byte the client sends, until it closes.
// Reads no more while an answer is still being sent, so a client that sends
// without reading is slowed down instead of growing the daemon's memory.

#include <portico/handler.hpp>

namespace portico::handlers {

HandlerType echo_type();

}  // namespace portico::handlers
