#include "sbx/util/strings.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>

namespace sbx {

std::optional<std::uint64_t> parse_size(std::string_view text) {
    if (text.empty() || text.size() > 32) {
        return std::nullopt;
    }
    std::uint64_t mult = 1;
    char last = text.back();
    if (last == 'B' || last == 'b') {
        text.remove_suffix(1);
        if (text.empty()) {
            return std::nullopt;
        }
        last = text.back();
    }
    switch (last) {
    case 'K': case 'k': mult = 1ULL << 10; break;
    case 'M': case 'm': mult = 1ULL << 20; break;
    case 'G': case 'g': mult = 1ULL << 30; break;
    case 'T': case 't': mult = 1ULL << 40; break;
    default: break;
    }
    if (mult != 1) {
        text.remove_suffix(1);
    }
    if (text.empty() || !std::all_of(text.begin(), text.end(),
                                     [](char c) { return (c >= '0' && c <= '9') || c == '.'; })) {
        return std::nullopt;
    }
    double value = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || ptr != text.data() + text.size() || value < 0) {
        return std::nullopt;
    }
    double bytes = value * static_cast<double>(mult);
    if (bytes > 1.0e18 || bytes != std::floor(bytes)) {
        return std::nullopt;
    }
    return static_cast<std::uint64_t>(bytes);
}

std::string format_size(std::uint64_t bytes) {
    static const char* const k_units[] = {"", "K", "M", "G", "T"};
    double v = static_cast<double>(bytes);
    int unit = 0;
    while (v >= 1024.0 && unit < 4) {
        v /= 1024.0;
        ++unit;
    }
    if (v == std::floor(v)) {
        return fmt::format("{}{}", static_cast<std::uint64_t>(v), k_units[unit]);
    }
    return fmt::format("{:.1f}{}", v, k_units[unit]);
}

namespace {

std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) {
        prev[j] = j;
    }
    for (std::size_t i = 1; i <= a.size(); ++i) {
        cur[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
        }
        std::swap(prev, cur);
    }
    return prev[b.size()];
}

}  // namespace

std::optional<std::string> did_you_mean(std::string_view word,
                                        const std::vector<std::string>& candidates) {
    std::optional<std::string> best;
    std::size_t best_d = ~std::size_t{0};
    for (const auto& c : candidates) {
        std::size_t d = edit_distance(word, c);
        if (d < best_d) {
            best_d = d;
            best = c;
        }
    }
    std::size_t limit = std::max<std::size_t>(2, word.size() / 3);
    if (best && best_d <= limit) {
        return best;
    }
    return std::nullopt;
}

bool valid_instance_name(std::string_view name) {
    if (name.empty() || name.size() > 32) {
        return false;
    }
    auto lower_or_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    if (!lower_or_digit(name[0])) {
        return false;
    }
    return std::all_of(name.begin(), name.end(),
                       [&](char c) { return lower_or_digit(c) || c == '-' || c == '_'; });
}

std::string format_duration_ms(std::int64_t ms) {
    if (ms < 0) {
        ms = 0;
    }
    if (ms < 10'000) {
        return fmt::format("{:.1f}s", static_cast<double>(ms) / 1000.0);
    }
    std::int64_t s = ms / 1000;
    if (s < 3600) {
        return s < 60 ? fmt::format("{}s", s) : fmt::format("{}m {}s", s / 60, s % 60);
    }
    if (s < 86400) {
        return fmt::format("{}h {}m", s / 3600, (s % 3600) / 60);
    }
    return fmt::format("{}d {}h", s / 86400, (s % 86400) / 3600);
}

std::string shell_quote(std::string_view word) {
    auto safe = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '_' || c == '.' || c == '/' || c == ',' || c == ':' || c == '=' ||
               c == '@' || c == '+' || c == '%';
    };
    if (!word.empty() && std::all_of(word.begin(), word.end(), safe)) {
        return std::string(word);
    }
    std::string out = "'";
    for (char c : word) {
        if (c == '\'') {
            out += "'\\''";
        } else {
            out += c;
        }
    }
    return out + "'";
}

}  // namespace sbx
