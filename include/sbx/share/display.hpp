#pragma once
// Guest-made names and file contents shown to people. Every byte came from the guest, so
// nothing reaches the terminal that could move the cursor, recolour or reorder text:
// control characters, C1 controls, Unicode bidirectional overrides and invalid UTF-8 are
// shown as visible escapes.

#include <string>
#include <string_view>

namespace sbx::share {

// A path as shown in headers: unchanged when it is plain printable UTF-8, otherwise in
// double quotes with C-style escapes (\t, \n, \", \\, \ooo for other bytes), as git does.
std::string display_path(std::string_view path);

// Is this valid UTF-8 (no overlongs, no surrogates)?
bool is_valid_utf8(std::string_view s);

// One line of file content (without its '\n'): tabs kept, other C0 controls and DEL as
// ^X, C1 controls and bidi/invisible formatting characters as <U+XXXX>, bytes that are not
// UTF-8 as \xNN.
std::string display_text(std::string_view line);

}  // namespace sbx::share
