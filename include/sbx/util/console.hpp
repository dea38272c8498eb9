#pragma once
// Output for people: plain lines when not on a terminal, colour only on a terminal and
// never with NO_COLOR.

#include <cstdio>
#include <string>
#include <string_view>

namespace sbx::console {

bool is_tty(std::FILE* f);
bool color(std::FILE* f);

std::string bold(std::string_view s, std::FILE* f = stdout);
std::string green(std::string_view s, std::FILE* f = stdout);
std::string red(std::string_view s, std::FILE* f = stdout);
std::string dim(std::string_view s, std::FILE* f = stdout);

// One progress line: "  <step padded>  <message>  <seconds>" (stdout, flushed).
void step(std::string_view name, std::string_view message, long long ms = -1);

}  // namespace sbx::console
