// escape_text and friends: what reaches a terminal or a log of text that
// came from outside.

#include <catch2/catch.hpp>

#include <portico/text.hpp>

using portico::escape_controls;
using portico::escape_text;
using portico::quote_text;

TEST_CASE("escape_text leaves printable text, UTF-8 included, as it is", "[text]") {
  CHECK(escape_text("") == "");
  CHECK(escape_text("hello world: 1/2 ~") == "hello world: 1/2 ~");
  CHECK(escape_text("caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80") == "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80");
}

TEST_CASE("escape_text writes control characters as escapes", "[text]") {
  CHECK(escape_text("a\nb") == "a\\nb");
  CHECK(escape_text("a\r\tb") == "a\\r\\tb");
  CHECK(escape_text("\x1b[31mred\x1b[0m") == "\\x1b[31mred\\x1b[0m");
  CHECK(escape_text(std::string_view("\0\x01\x7f", 3)) == "\\x00\\x01\\x7f");
  // C1 controls (U+0080..U+009F, e.g. U+009B, which some terminals take
  // for ESC [) in their UTF-8 form.
  CHECK(escape_text("\xc2\x9b" "2J") == "\\u009b2J");
  CHECK(escape_text("\xc2\x80\xc2\x9f\xc2\xa0") == "\\u0080\\u009f\xc2\xa0");
}

TEST_CASE("escape_text writes each byte that is not UTF-8 as \\xHH", "[text]") {
  CHECK(escape_text("\xff") == "\\xff");
  CHECK(escape_text("a\xc3") == "a\\xc3");                   // cut short
  CHECK(escape_text("\xc0\xaf") == "\\xc0\\xaf");            // overlong "/"
  CHECK(escape_text("\xed\xa0\x80") == "\\xed\\xa0\\x80");   // a surrogate
  CHECK(escape_text("\xf4\x90\x80\x80") == "\\xf4\\x90\\x80\\x80");  // past U+10FFFF
}

TEST_CASE("escape_text escapes backslash and double quote, so that nothing can be forged", "[text]") {
  CHECK(escape_text("a\\nb") == "a\\\\nb");
  CHECK(escape_text("say \"hi\"") == "say \\\"hi\\\"");
  CHECK(quote_text("x\" (first used at 1:1)\nfake.toml:1:1: injected") ==
        "\"x\\\" (first used at 1:1)\\nfake.toml:1:1: injected\"");
}

TEST_CASE("escape_controls escapes control characters and leaves escapes already made", "[text]") {
  CHECK(escape_controls("value \"a\\nb\"") == "value \"a\\nb\"");
  CHECK(escape_controls("one\ntwo\x1b[2J") == "one\\ntwo\\x1b[2J");
  CHECK(escape_controls("\xff\xc2\x85") == "\\xff\\u0085");
}
