#pragma once
// Everything an embedding program needs.

#include <portico/address.hpp>
#include <portico/config.hpp>
#include <portico/connection.hpp>
#include <portico/diagnostics.hpp>
#include <portico/duration.hpp>
#include <portico/handler.hpp>
#include <portico/options.hpp>
#include <portico/registry.hpp>
#include <portico/server.hpp>
#include <portico/text.hpp>
#include <portico/version.hpp>
