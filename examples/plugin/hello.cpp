// hello: an example portico plugin. It adds one handler type, "hello", which
// answers every connection with "Hello, <who>!\n" and closes it.
//
// Build it as a shared object against portico's headers (see
// CMakeLists.txt here) and list it in porticod's configuration:
//
//   [daemon]
//   plugins = ["/usr/local/lib/portico/libhello.so"]
//
//   [[listener]]
//   address = "127.0.0.1:7000"
//   handler = "hello"
//   who = "world"

#include <memory>
#include <string>

#include <boost/asio/buffer.hpp>
#include <fmt/format.h>

#include <portico/connection.hpp>
#include <portico/plugin.hpp>

// The test suite builds this file a second time as another plugin; the
// handler type then needs another name.
#ifndef HELLO_NAME
#define HELLO_NAME "hello"
#endif

namespace {

class Hello final : public portico::Handler {
 public:
  // The reply is formatted once per listener, not once per connection.
  explicit Hello(const portico::Options& options) : reply_(fmt::format("Hello, {}!\n", options.string("who"))) {}

  boost::asio::awaitable<void> serve(portico::Connection& conn) override {
    const portico::IoResult written = co_await conn.write(boost::asio::buffer(reply_));
    if (!written.ok()) {
      conn.log(spdlog::level::debug, "write failed: {}", written.timed_out() ? "timed out" : written.ec.message());
    }
    // Returning closes the connection.
  }

 private:
  std::string reply_;
};

void register_handlers(portico::Registry& registry) {
  registry.add(portico::HandlerType{
      .name = HELLO_NAME,
      .doc = "answer \"Hello, <who>!\" and close (an example plugin)",
      // Not "name": a listener key of that name exists already, and listener
      // keys take precedence over handler options.
      .options = {{.name = "who",
                   .type = portico::OptionType::string,
                   .default_value = std::string("world"),
                   .doc = "whom to greet"}},
      .create = [](const portico::Options& options) { return std::make_unique<Hello>(options); },
  });
}

}  // namespace

PORTICO_PLUGIN(HELLO_NAME, register_handlers)
