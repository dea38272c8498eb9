#pragma once
// Text helpers shared by the CLI and the config loaders.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sbx {

// "8G", "512M", "1024K", "4096" (bytes), "1.5G"; binary units (G = GiB). Nothing on junk.
std::optional<std::uint64_t> parse_size(std::string_view text);

// 8589934592 -> "8G", 536870912 -> "512M", 1536 -> "1.5K" (for people).
std::string format_size(std::uint64_t bytes);

// The candidate closest to `word` by edit distance, if close enough to be a likely typo.
std::optional<std::string> did_you_mean(std::string_view word,
                                        const std::vector<std::string>& candidates);

// Profile and instance names: [a-z0-9][a-z0-9_-]{0,31}.
bool valid_instance_name(std::string_view name);

// "1h 2m", "3m 4s", "12s", "1.2s" for people.
std::string format_duration_ms(std::int64_t ms);

// POSIX-shell quoting of one word: unchanged when safe, else single-quoted.
std::string shell_quote(std::string_view word);

}  // namespace sbx
