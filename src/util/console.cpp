#include "sbx/util/console.hpp"

#include "sbx/util/strings.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>

namespace sbx::console {

bool is_tty(std::FILE* f) { return ::isatty(::fileno(f)) == 1; }

bool color(std::FILE* f) {
    const char* no = std::getenv("NO_COLOR");
    if (no && *no) {
        return false;
    }
    const char* term = std::getenv("TERM");
    if (term && std::string_view(term) == "dumb") {
        return false;
    }
    return is_tty(f);
}

namespace {
std::string wrap(std::string_view s, const char* code, std::FILE* f) {
    if (!color(f)) {
        return std::string(s);
    }
    return fmt::format("\x1b[{}m{}\x1b[0m", code, s);
}
}  // namespace

std::string bold(std::string_view s, std::FILE* f) { return wrap(s, "1", f); }
std::string green(std::string_view s, std::FILE* f) { return wrap(s, "32", f); }
std::string red(std::string_view s, std::FILE* f) { return wrap(s, "31", f); }
std::string dim(std::string_view s, std::FILE* f) { return wrap(s, "2", f); }

void step(std::string_view name, std::string_view message, long long ms) {
    std::string time = ms >= 0 ? dim(format_duration_ms(ms)) : std::string();
    fmt::print("  {:<8} {}  {}\n", name, message, time);
    std::fflush(stdout);
}

}  // namespace sbx::console
