// SSH carries one command string, which the guest's login shell parses. To keep argv's
// words as words, each one is quoted for a POSIX shell unless it cannot be misread.

#include "sbx/ssh/ssh.hpp"

#include <array>
#include <string_view>

namespace sbx::ssh {

namespace {

bool is_plain_char(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return true;
    }
    switch (c) {
    case '_':
    case '@':
    case '%':
    case '+':
    case '=':
    case ':':
    case ',':
    case '.':
    case '/':
    case '-':
        return true;
    default:
        return false;
    }
}

// In command position these would change what the shell does (a keyword, or an assignment
// like FOO=bar that is not run as a command), so there they are quoted.
bool needs_quotes_as_command(std::string_view word) {
    static constexpr std::array<std::string_view, 20> k_reserved = {
        "if",   "then",  "else", "elif", "fi",     "do",       "done",  "case",  "esac", "while",
        "until", "for",  "in",   "time", "select", "function", "coproc", "{",    "}",    "!"};
    for (auto r : k_reserved) {
        if (word == r) {
            return true;
        }
    }
    return word.find('=') != std::string_view::npos;
}

void append_quoted(std::string& out, std::string_view word, bool command_position) {
    bool plain = !word.empty() && !(command_position && needs_quotes_as_command(word));
    for (char c : word) {
        if (!is_plain_char(c)) {
            plain = false;
            break;
        }
    }
    if (plain) {
        out.append(word);
        return;
    }
    out.push_back('\'');
    for (char c : word) {
        if (c == '\'') {
            out.append("'\\''");
        } else {
            out.push_back(c);
        }
    }
    out.push_back('\'');
}

}  // namespace

std::string shell_join(const std::vector<std::string>& argv) {
    std::string out;
    for (std::size_t i = 0; i < argv.size(); ++i) {
        if (i > 0) {
            out.push_back(' ');
        }
        append_quoted(out, argv[i], i == 0);
    }
    return out;
}

}  // namespace sbx::ssh
