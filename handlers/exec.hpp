#pragma once
// exec: run a program for each connection, inetd "nowait" style: the
// connection is its stdin and stdout, its stderr goes to the daemon's log,
// and its environment says who the client is (UCSPI: PROTO, TCPREMOTEIP,
// TCPREMOTEPORT, TCPLOCALIP, TCPLOCALPORT).

#include <portico/handler.hpp>

namespace portico::handlers {

HandlerType exec_type();

}  // namespace portico::handlers
