#include "sbx/share/display.hpp"

#include <fmt/format.h>

#include <cstdint>
#include <optional>

namespace sbx::share {

namespace {

struct Decoded {
    char32_t cp = 0;
    std::size_t len = 0;  // 0: not valid UTF-8 at this position
};

// Strict UTF-8 (no overlongs, no surrogates, at most U+10FFFF).
Decoded decode(std::string_view s, std::size_t i) {
    auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    unsigned char c = byte(i);
    if (c < 0x80) {
        return {c, 1};
    }
    std::size_t len = 0;
    char32_t cp = 0;
    char32_t min = 0;
    if ((c & 0xe0) == 0xc0) {
        len = 2;
        cp = c & 0x1f;
        min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3;
        cp = c & 0x0f;
        min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4;
        cp = c & 0x07;
        min = 0x10000;
    } else {
        return {};
    }
    if (i + len > s.size()) {
        return {};
    }
    for (std::size_t k = 1; k < len; ++k) {
        unsigned char cc = byte(i + k);
        if ((cc & 0xc0) != 0x80) {
            return {};
        }
        cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return {};
    }
    return {cp, len};
}

// Characters that change how text around them is displayed without being visible.
bool is_format_char(char32_t cp) {
    return (cp >= 0x80 && cp <= 0x9f) ||      // C1 controls (CSI, OSC...)
           (cp >= 0x200b && cp <= 0x200f) ||  // zero width, LRM, RLM
           (cp >= 0x2028 && cp <= 0x202e) ||  // separators, embeddings
           (cp >= 0x2060 && cp <= 0x2069) ||  // word joiner, isolates
           cp == 0xfeff || cp == 0x061c;      // BOM/ZWNBSP, ALM
}

}  // namespace

bool is_valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        auto d = decode(s, i);
        if (d.len == 0) {
            return false;
        }
        i += d.len;
    }
    return true;
}

std::string display_path(std::string_view path) {
    bool plain = true;
    for (std::size_t i = 0; i < path.size() && plain;) {
        auto d = decode(path, i);
        if (d.len == 0 || d.cp < 0x20 || d.cp == 0x7f || d.cp == '"' || d.cp == '\\' ||
            is_format_char(d.cp)) {
            plain = false;
            break;
        }
        i += d.len;
    }
    if (plain) {
        return std::string(path);
    }
    std::string out = "\"";
    for (std::size_t i = 0; i < path.size();) {
        auto d = decode(path, i);
        if (d.len > 1 && !is_format_char(d.cp)) {
            out.append(path.substr(i, d.len));
            i += d.len;
            continue;
        }
        unsigned char c = static_cast<unsigned char>(path[i]);
        switch (c) {
            case '\t':
                out += "\\t";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            default:
                if (c < 0x20 || c >= 0x7f) {
                    out += fmt::format("\\{:03o}", c);
                } else {
                    out += static_cast<char>(c);
                }
        }
        ++i;
    }
    out += '"';
    return out;
}

std::string display_text(std::string_view line) {
    std::string out;
    out.reserve(line.size());
    for (std::size_t i = 0; i < line.size();) {
        auto d = decode(line, i);
        if (d.len == 0) {
            out += fmt::format("\\x{:02x}", static_cast<unsigned char>(line[i]));
            ++i;
            continue;
        }
        if (d.cp == '\t' || (d.cp >= 0x20 && d.cp < 0x7f)) {
            out += static_cast<char>(d.cp);
        } else if (d.cp < 0x20) {
            out += '^';
            out += static_cast<char>(d.cp + 0x40);
        } else if (d.cp == 0x7f) {
            out += "^?";
        } else if (is_format_char(d.cp)) {
            out += fmt::format("<U+{:04X}>", static_cast<std::uint32_t>(d.cp));
        } else {
            out.append(line.substr(i, d.len));
        }
        i += d.len;
    }
    return out;
}

}  // namespace sbx::share
