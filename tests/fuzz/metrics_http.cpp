// Fuzz target: the metrics handler's HTTP. The input is what one client
// sends on a metrics listener's connection; it goes through the handler's
// own functions (handlers/metrics_http.hpp) as serve() calls them, with the
// socket's reads replaced by copies from the input: up to read_size bytes
// and what fits the buffer, as the handler asks for.
//
// 1. The buffer never holds more than max_buffer bytes, and no request is
//    taken whose header is over max_header: what a client can make the
//    handler hold is bounded.
// 2. Every complete request gets one answer, which a client's HTTP parser
//    reads back whole: 200 for GET and HEAD of /metrics (a query allowed),
//    404 for other paths, 405 for other methods, judged from the request
//    line's bytes, not from what Beast made of them. A malformed request
//    gets 400 and a header over 8 KiB 431, then the connection ends.
// 3. The answers do not depend on how the bytes arrive, but for where a
//    refusal comes: fed 7 bytes at a time, the same input gets the same
//    answers up to a refusal (400 or 431) that ends one of the two. Beast
//    reads the request line and the fields as soon as the first bytes it is
//    given hold the request line, else only once the whole header came; so
//    a bad field in a header that never ends gets 400, or only the close (at
//    the timeout), or 431 once it is over 8 KiB.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <portico/text.hpp>

#include "check.hpp"
#include "handlers/metrics_http.hpp"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace mh = portico::handlers::metrics_http;

const std::string metrics_text = "# TYPE portico_up gauge\nportico_up 1\n";

struct Answer {
  unsigned status;
  bool closes;
  friend bool operator==(const Answer&, const Answer&) = default;
};

std::string shown(std::string_view bytes) { return portico::quote_text(bytes.substr(0, 300)); }

// The status the request whose bytes are `raw` must get, from its request
// line: METHOD SP TARGET SP VERSION.
unsigned expected_status(std::string_view raw) {
  while (raw.starts_with("\r\n")) raw.remove_prefix(2);
  const std::size_t space = raw.find(' ');
  const std::string_view method = raw.substr(0, space);
  const std::size_t target_end = raw.find(' ', space + 1);
  const std::string_view target = raw.substr(space + 1, target_end - space - 1);
  if (method != "GET" && method != "HEAD") return 405;
  return target.substr(0, target.find('?')) == "/metrics" ? 200 : 404;
}

// Reads `bytes` as a client would; returns its status and whether it says
// the connection ends.
Answer read_response(const std::string& bytes, bool head, bool keep) {
  http::response_parser<http::string_body> parser;
  parser.eager(true);
  parser.skip(head);
  beast::error_code ec;
  const std::size_t used = parser.put(boost::asio::buffer(bytes), ec);
  FUZZ_CHECK(!ec && parser.is_done() && used == bytes.size(), ec.message() + ": " + shown(bytes));
  const auto& response = parser.get();
  FUZZ_CHECK(response.keep_alive() == keep, shown(bytes));
  const unsigned status = response.result_int();
  if (head) {
    FUZZ_CHECK(response.body().empty(), shown(bytes));
  } else if (status == 200) {
    FUZZ_CHECK(response.body() == metrics_text, shown(bytes));
  }
  return {status, !keep};
}

// The handler's serve() loop over `input`, reads at most `chunk` bytes.
std::vector<Answer> serve(std::string_view input, std::size_t chunk) {
  std::vector<Answer> answers;
  beast::flat_buffer buffer(mh::max_buffer);
  std::size_t received = 0;  // bytes of the input in the buffer or taken from it
  const auto read = [&] {
    const std::size_t n = std::min({chunk, mh::read_size, mh::max_buffer - buffer.size(), input.size() - received});
    std::memcpy(buffer.prepare(n).data(), input.data() + received, n);
    buffer.commit(n);
    received += n;
  };
  for (;;) {
    mh::RequestReader reader;
    const std::size_t begin = received - buffer.size();
    for (;;) {
      beast::error_code ec;
      const auto parsed = mh::parse(buffer, reader, ec);
      FUZZ_CHECK(buffer.size() <= mh::max_buffer);
      if (parsed == mh::Parsed::complete) break;
      if (parsed == mh::Parsed::need_more) {
        FUZZ_CHECK(!ec, ec.message());
        FUZZ_CHECK(buffer.size() < mh::max_buffer);
        if (received == input.size()) return answers;  // EOF: closed without an answer
        read();
        continue;
      }
      FUZZ_CHECK(parsed == mh::Parsed::too_large || ec, "bad without a reason");
      const auto response = parsed == mh::Parsed::bad ? mh::bad_request_response() : mh::too_large_response();
      const Answer answer = read_response(mh::serialize(response), false, false);
      FUZZ_CHECK(answer.status == (parsed == mh::Parsed::bad ? 400u : 431u));
      answers.push_back(answer);
      return answers;
    }
    const std::size_t end = received - buffer.size();
    const std::string_view raw = input.substr(begin, end - begin);
    FUZZ_CHECK(raw.size() <= mh::max_header, std::to_string(raw.size()) + " bytes: " + shown(raw));
    const auto& request = reader.parser.get();
    const bool keep = request.keep_alive();
    bool asked = false;
    const auto response = mh::answer(request, keep, [&] {
      asked = true;
      return metrics_text;
    });
    const bool head = request.method() == http::verb::head;
    const Answer answer = read_response(mh::serialize(response), head, keep);
    FUZZ_CHECK(answer.status == expected_status(raw), std::to_string(answer.status) + " for " + shown(raw));
    FUZZ_CHECK(asked == (answer.status == 200), shown(raw));
    answers.push_back(answer);
    if (!keep) return answers;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto whole = serve(input, mh::read_size);
  const auto pieces = serve(input, 7);
  const auto refusal = [](const Answer& a) { return a.status == 400 || a.status == 431; };
  std::size_t same = 0;
  while (same < whole.size() && same < pieces.size() && whole[same] == pieces[same]) ++same;
  if (same == whole.size() && same == pieces.size()) return 0;
  const bool whole_refused = same + 1 == whole.size() && refusal(whole[same]);
  const bool pieces_refused = same + 1 == pieces.size() && refusal(pieces[same]);
  FUZZ_CHECK(whole_refused || pieces_refused,
             "answer " + std::to_string(same + 1) + ": " +
                 (same < whole.size() ? std::to_string(whole[same].status) : std::string("none")) +
                 " read whole, " +
                 (same < pieces.size() ? std::to_string(pieces[same].status) : std::string("none")) +
                 " read in pieces");
  return 0;
}
