#include "sbx/share/render.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <optional>

#include "sbx/share/display.hpp"
#include "sbx/share/line_diff.hpp"
#include "sbx/util/error.hpp"
#include "tree_io.hpp"

namespace sbx::share {

namespace {

std::string paint(bool color, std::string_view code, std::string_view s) {
    return color && !s.empty() ? fmt::format("\x1b[{}m{}\x1b[0m", code, s) : std::string(s);
}

// "a/" + path, quoted as a whole when the path needs quoting (as git does).
std::string prefixed(std::string_view prefix, std::string_view path) {
    std::string d = display_path(path);
    if (!d.empty() && d.front() == '"') {
        return fmt::format("\"{}{}", prefix, d.substr(1));
    }
    return fmt::format("{}{}", prefix, d);
}

// The content of one side as text: file bytes (bounded), a symlink's target, or nothing.
struct Side {
    bool present = false;
    bool too_large = false;
    std::string text;
};

Side read_side(const std::filesystem::path& root, const std::string& rel, const Entry& e) {
    Side s;
    if (e.kind == EntryKind::symlink) {
        s.present = true;
        s.text = e.target;
        return s;
    }
    if (e.kind != EntryKind::file) {
        return s;
    }
    s.present = true;
    auto root_fd = detail::open_root(root);
    auto parts = detail::split_rel(rel);
    detail::WalkFailure failure;
    auto parent = detail::open_parent(root_fd.get(), parts, std::nullopt, failure);
    if (!parent) {
        throw Error(
            fmt::format("cannot read {}: {} {}", display_path(rel), display_path(failure.at), failure.reason),
            {"the guest may be changing it right now; retry"});
    }
    int err = 0;
    auto fd = detail::open_regular(parent->get(), parts.back(), err);
    if (!fd) {
        throw Error(fmt::format("cannot read {}: no longer a regular file", display_path(rel)),
                    {"the guest may be changing it right now; retry"});
    }
    auto data = detail::read_all(fd->get(), k_max_text_diff_bytes);
    if (!data) {
        s.too_large = true;
        return s;
    }
    s.text = std::move(*data);
    return s;
}

bool looks_binary(const std::string& text) {
    return text.substr(0, 8000).find('\0') != std::string::npos;
}

std::string plural(std::size_t n, std::string_view one, std::string_view many) {
    return fmt::format("{} {}", n, n == 1 ? one : many);
}

}  // namespace

std::string flag_lines(const Change& change, bool color) {
    std::string out;
    for (const auto& f : change.flags) {
        if (f.loud) {
            out += paint(color, "1;31", "!! " + f.text);
        } else {
            out += paint(color, "33", "! " + f.text);
        }
        out += '\n';
    }
    return out;
}

FileDiff file_diff(const instance::ShareLayout& share, const Change& c, const RenderOptions& options) {
    FileDiff d;
    const bool color = options.color;
    const Entry& b = c.base;
    const Entry& w = c.work;
    std::string header =
        paint(color, "1", fmt::format("diff --git {} {}", prefixed("a/", c.path), prefixed("b/", c.path)));
    header += '\n';
    auto line = [&](const std::string& s) { header += paint(color, "1", s) + "\n"; };
    if (w.kind == EntryKind::dir || b.kind == EntryKind::dir) {
        if (b.kind == EntryKind::dir && w.kind == EntryKind::none) {
            line("deleted folder");
            d.summary = "folder deleted";
        } else if (b.kind == EntryKind::none) {
            line("new folder");
            d.summary = "new folder";
        } else if (b.kind == EntryKind::dir) {
            line(fmt::format("folder replaced by a {} (mode {})", to_string(w.kind),
                             detail::mode_text(w.mode)));
        } else {
            line(fmt::format("{} replaced by a folder", to_string(b.kind)));
            d.summary = fmt::format("{} -> folder", to_string(b.kind));
        }
        if (w.kind == EntryKind::dir || (b.kind == EntryKind::dir && w.kind == EntryKind::none)) {
            d.text = header;
            return d;
        }
    }
    if (w.kind == EntryKind::special) {
        line(fmt::format("{} special file ({}): contents not shown",
                         b.kind == EntryKind::none ? "new" : "changed",
                         detail::kind_name(static_cast<mode_t>(w.mode))));
        d.text = header;
        d.summary = "special file";
        return d;
    }
    if (b.kind == EntryKind::none) {
        line(fmt::format("new file mode {}", detail::mode_text(w.mode)));
    } else if (w.kind == EntryKind::none) {
        line(fmt::format("deleted file mode {}", detail::mode_text(b.mode)));
    } else if ((b.mode & (S_IFMT | 07777)) != (w.mode & (S_IFMT | 07777)) && b.kind != EntryKind::dir) {
        line(fmt::format("old mode {}", detail::mode_text(b.mode)));
        line(fmt::format("new mode {}", detail::mode_text(w.mode)));
    }
    if (c.kind == ChangeKind::mode_changed) {
        d.text = header;
        d.summary = fmt::format("mode {} -> {}", detail::mode_text(b.mode), detail::mode_text(w.mode));
        return d;
    }
    Side a = b.kind == EntryKind::dir ? Side{} : read_side(share.base(), c.path, b);
    Side z = read_side(share.work(), c.path, w);
    const std::string from = a.present ? prefixed("a/", c.path) : "/dev/null";
    const std::string to = z.present ? prefixed("b/", c.path) : "/dev/null";
    if (a.too_large || z.too_large || looks_binary(a.text) || looks_binary(z.text)) {
        d.binary = true;
        d.summary = fmt::format("Bin {} -> {} bytes", b.kind == EntryKind::file ? b.size : a.text.size(),
                                w.kind == EntryKind::file ? w.size : z.text.size());
        header += fmt::format("Binary files {} and {} differ\n", from, to);
        d.text = header;
        return d;
    }
    UnifiedOptions uo;
    uo.context = options.context;
    uo.color = color;
    auto u = unified_diff(a.text, z.text, uo);
    d.added = u.added;
    d.removed = u.removed;
    if (!u.text.empty()) {
        line("--- " + from);
        line("+++ " + to);
    }
    d.text = header + u.text;
    return d;
}

std::string stat_line(const Change& c, const FileDiff& d, std::size_t width, bool color) {
    std::string path = display_path(c.path);
    if (c.work.kind == EntryKind::dir || (c.base.kind == EntryKind::dir && c.work.kind == EntryKind::none)) {
        path += '/';
    }
    std::string counts;
    if (!d.summary.empty() && (d.binary || (d.added == 0 && d.removed == 0))) {
        counts = d.summary;
    } else {
        constexpr std::size_t k_bar = 40;
        std::size_t total = d.added + d.removed;
        std::size_t plus = d.added;
        std::size_t minus = d.removed;
        if (total > k_bar) {
            plus = d.added == 0 ? 0 : std::max<std::size_t>(1, d.added * k_bar / total);
            minus = d.removed == 0 ? 0 : std::max<std::size_t>(1, k_bar - plus);
        }
        counts = fmt::format("{} {}{}", total, paint(color, "32", std::string(plus, '+')),
                             paint(color, "31", std::string(minus, '-')));
    }
    std::string out = fmt::format(" {:<{}} | {}", path, width, counts);
    for (const auto& f : c.flags) {
        out += "  ";
        out += f.loud ? paint(color, "1;31", "!! " + f.text) : paint(color, "33", "! " + f.text);
    }
    return out;
}

std::string render_diff(const instance::ShareLayout& share, const std::vector<Change>& changes,
                        const RenderOptions& options) {
    std::string out;
    for (const auto& c : changes) {
        out += flag_lines(c, options.color);
        out += file_diff(share, c, options).text;
    }
    return out;
}

std::string render_stat(const instance::ShareLayout& share, const std::vector<Change>& changes,
                        const RenderOptions& options) {
    if (changes.empty()) {
        return {};
    }
    std::size_t width = 0;
    for (const auto& c : changes) {
        width = std::max(width, display_path(c.path).size() + 1);
    }
    width = std::min<std::size_t>(width, 60);
    std::string out;
    std::size_t added = 0;
    std::size_t removed = 0;
    std::size_t flagged = 0;
    std::size_t conflicts = 0;
    for (const auto& c : changes) {
        auto d = file_diff(share, c, options);
        added += d.added;
        removed += d.removed;
        flagged += c.flags.empty() ? 0 : 1;
        conflicts += c.conflict() ? 1 : 0;
        out += stat_line(c, d, width, options.color) + "\n";
    }
    out += fmt::format(" {} changed, {}, {}", plural(changes.size(), "path", "paths"),
                       plural(added, "insertion(+)", "insertions(+)"),
                       plural(removed, "deletion(-)", "deletions(-)"));
    if (flagged > 0) {
        out += fmt::format(", {} flagged", flagged);
    }
    if (conflicts > 0) {
        out += fmt::format(", {}", plural(conflicts, "conflict", "conflicts"));
    }
    out += '\n';
    return out;
}

std::string hidden_note(const std::vector<std::string>& hidden) {
    if (hidden.empty()) {
        return {};
    }
    std::string list;
    for (std::size_t i = 0; i < hidden.size() && i < 5; ++i) {
        list += (i ? ", " : "") + display_path(hidden[i]);
    }
    if (hidden.size() > 5) {
        list += ", ...";
    }
    return fmt::format("note: {} the guest created {} hidden by the share's hide list (never applied): {}\n",
                       plural(hidden.size(), "path", "paths"), hidden.size() == 1 ? "is" : "are", list);
}

}  // namespace sbx::share
