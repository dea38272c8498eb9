#include "sbx/share/verbs.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <set>

#include "sbx/share/display.hpp"
#include "sbx/share/render.hpp"
#include "sbx/share/snapshot.hpp"
#include "sbx/util/error.hpp"

namespace sbx::share {

namespace {

void emit(std::FILE* out, std::string_view text) {
    std::fwrite(text.data(), 1, text.size(), out);
    std::fflush(out);
}

std::string share_title(const ReviewShare& rs) {
    return fmt::format("share {}: {} (guest {})", rs.index, rs.share.host.string(), rs.share.guest);
}

// One prepared share with its changes.
struct ShareChanges {
    ReviewShare rs;
    DiffResult diff;
};

DiffOptions diff_options_for(const ReviewShare& rs) {
    DiffOptions o;
    o.extra_hide = rs.share.hide;
    return o;
}

// The prepared shares (a note on stderr-like `out` for the others); throws if none is.
std::vector<ReviewShare> prepared_shares(const profile::Profile& prof, const std::filesystem::path& vms_root,
                                         std::FILE* out) {
    auto all = review_shares(prof, vms_root);
    std::vector<ReviewShare> ready;
    for (auto& rs : all) {
        if (is_prepared(rs.layout)) {
            ready.push_back(std::move(rs));
        } else if (all.size() > 1) {
            emit(out, fmt::format("note: {} has no review copy yet (the instance has not started since the "
                                  "share was added)\n",
                                  share_title(rs)));
        }
    }
    if (ready.empty()) {
        throw Error(
            fmt::format("the review share{} of {} {} never prepared: the instance has not been started "
                        "with {}",
                        all.size() == 1 ? "" : "s", prof.name, all.size() == 1 ? "was" : "were",
                        all.size() == 1 ? "it" : "them"),
            {fmt::format("sbx up {} makes the review copy; the guest then works on it", prof.name)},
            ExitCode::not_found);
    }
    return ready;
}

// PATH arguments for one share: relative ones as given; absolute ones only when under the
// share's host or guest path (made relative).
std::vector<std::string> paths_for(const ReviewShare& rs, const std::vector<std::string>& paths,
                                   bool& any_abs) {
    std::vector<std::string> out;
    any_abs = false;
    for (const auto& p : paths) {
        if (p.empty() || p.front() != '/') {
            out.push_back(normalise_path_arg(p));
            continue;
        }
        any_abs = true;
        for (const auto& root : std::vector<std::string>{rs.share.host.string(), rs.share.guest}) {
            std::string r = root;
            while (r.size() > 1 && r.back() == '/') {
                r.pop_back();
            }
            if (p == r) {
                out.push_back("");
            } else if (p.size() > r.size() && p.compare(0, r.size(), r) == 0 && p[r.size()] == '/') {
                out.push_back(normalise_path_arg(std::string_view(p).substr(r.size() + 1)));
            }
        }
    }
    return out;
}

// Changes of every prepared share, filtered by PATHs; throws for PATHs matching nothing.
std::vector<ShareChanges> collect(const profile::Profile& prof, const std::filesystem::path& vms_root,
                                  const std::vector<std::string>& paths, std::FILE* out) {
    std::vector<ShareChanges> result;
    std::set<std::string> matched;
    for (auto& rs : prepared_shares(prof, vms_root, out)) {
        ShareChanges sc{rs, diff(rs.layout, diff_options_for(rs))};
        if (!paths.empty()) {
            bool any_abs = false;
            auto wanted = paths_for(rs, paths, any_abs);
            std::vector<Change> kept;
            for (auto& c : sc.diff.changes) {
                bool take = false;
                for (std::size_t i = 0; i < wanted.size(); ++i) {
                    if (path_selects(wanted[i], c.path)) {
                        take = true;
                    }
                }
                if (take) {
                    kept.push_back(std::move(c));
                }
            }
            // Which PATH arguments found something (relative ones by their normal form).
            for (const auto& p : paths) {
                bool dummy = false;
                auto one = paths_for(rs, {p}, dummy);
                for (const auto& w : one) {
                    for (const auto& c : kept) {
                        if (path_selects(w, c.path)) {
                            matched.insert(p);
                        }
                    }
                }
            }
            sc.diff.changes = std::move(kept);
        }
        result.push_back(std::move(sc));
    }
    std::vector<std::string> missing;
    for (const auto& p : paths) {
        if (!matched.count(p)) {
            missing.push_back(display_path(p));
        }
    }
    if (!missing.empty()) {
        std::string list;
        for (const auto& m : missing) {
            list += (list.empty() ? "" : ", ") + m;
        }
        throw Error(fmt::format("no change at {} in the review copy of {}", list, prof.name),
                    {fmt::format("sbx diff {} --stat lists the changed paths", prof.name)},
                    ExitCode::not_found);
    }
    return result;
}

std::string outcome_word(const FileResult& r, bool dry_run) {
    switch (r.outcome) {
        case Outcome::applied:
            return dry_run ? "would" : "applied";
        case Outcome::kept_host:
            return "kept";
        case Outcome::refused:
            return "refused";
    }
    return "?";
}

// Prints results and returns the refused ones as "share-title: path".
void print_report(const ReviewShare& rs, const ApplyReport& report, bool multi, bool color, std::FILE* out,
                  std::vector<std::string>& refused, std::vector<std::string>& hints) {
    if (multi) {
        emit(out, fmt::format("# {}\n", share_title(rs)));
    }
    for (const auto& r : report.results) {
        std::string word = fmt::format("{:<8}", outcome_word(r, report.dry_run));
        if (color) {
            word = fmt::format("\x1b[{}m{}\x1b[0m", r.outcome == Outcome::refused ? "1;31" : "32", word);
        }
        emit(out, fmt::format("  {} {}: {}\n", word, display_path(r.path), r.message));
        if (r.outcome == Outcome::refused) {
            refused.push_back(display_path(r.path));
            if (!r.hint.empty() && std::find(hints.begin(), hints.end(), r.hint) == hints.end()) {
                hints.push_back(r.hint);
            }
        }
    }
}

void finish(const profile::Profile& prof, std::size_t applied, std::size_t kept,
            const std::vector<std::string>& refused, std::vector<std::string> hints, bool dry_run,
            std::FILE* out) {
    if (dry_run) {
        emit(out, fmt::format(
                      "dry run: {} would be applied, {} kept as the host has them, {} refused; nothing was "
                      "written\n",
                      applied, kept, refused.size()));
    } else {
        emit(out, fmt::format("{} applied, {} kept as the host has them, {} refused\n", applied, kept,
                              refused.size()));
    }
    if (refused.empty()) {
        return;
    }
    std::string list;
    for (std::size_t i = 0; i < refused.size() && i < 10; ++i) {
        list += (i ? ", " : "") + refused[i];
    }
    if (refused.size() > 10) {
        list += ", ...";
    }
    for (auto& h : hints) {
        // Hints name the instance as NAME; put the real one in.
        for (auto pos = h.find("NAME"); pos != std::string::npos; pos = h.find("NAME", pos)) {
            h.replace(pos, 4, prof.name);
        }
    }
    if (hints.size() > 4) {
        hints.resize(4);
    }
    throw Error(fmt::format("{} {} refused: {}", refused.size(),
                            refused.size() == 1 ? "change was" : "changes were", list),
                hints);
}

// Reads one answer line; nothing at end of input.
std::optional<std::string> ask(std::FILE* in, std::FILE* out, const std::string& prompt) {
    emit(out, prompt);
    std::string line;
    int ch = 0;
    bool any = false;
    while ((ch = std::fgetc(in)) != EOF) {
        any = true;
        if (ch == '\n') {
            break;
        }
        if (line.size() < 256) {
            line += static_cast<char>(ch);
        }
    }
    if (!any) {
        emit(out, "\n");
        return std::nullopt;
    }
    // Trim spaces and a trailing \r.
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r' || line.back() == '\t')) {
        line.pop_back();
    }
    std::size_t first = line.find_first_not_of(" \t");
    return first == std::string::npos ? std::string() : line.substr(first);
}

char answer_char(const std::string& a) {
    return a.empty() ? '\0' : static_cast<char>(std::tolower(static_cast<unsigned char>(a.front())));
}

}  // namespace

std::vector<ReviewShare> review_shares(const profile::Profile& prof, const std::filesystem::path& vms_root) {
    instance::InstanceLayout layout(vms_root, prof.name);
    std::error_code ec;
    if (!std::filesystem::is_directory(layout.dir(), ec)) {
        throw Error(fmt::format("there is no instance named {}", prof.name),
                    {fmt::format("sbx up {} creates it", prof.name)}, ExitCode::not_found);
    }
    std::vector<ReviewShare> out;
    for (std::size_t i = 0; i < prof.shares.size(); ++i) {
        if (prof.shares[i].mode == profile::ShareMode::review) {
            out.push_back({i, prof.shares[i], instance::ShareLayout{layout.share_dir(i)}});
        }
    }
    if (out.empty()) {
        throw Error(
            fmt::format("profile {} ({}) has no share with mode = \"review\"", prof.name, prof.file.string()),
            {"diff, review and apply work on review-mode shares: add mode = \"review\" to a [[share]] of "
             "the profile (docs/shares.md)"});
    }
    return out;
}

void run_diff(const profile::Profile& prof, const std::filesystem::path& vms_root, const DiffCommand& cmd,
              std::FILE* out) {
    auto all = collect(prof, vms_root, cmd.paths, out);
    const bool multi = all.size() > 1;
    RenderOptions ro;
    ro.color = cmd.color;
    for (const auto& sc : all) {
        if (multi) {
            emit(out, fmt::format("# {}\n", share_title(sc.rs)));
        }
        if (sc.diff.changes.empty() && cmd.paths.empty()) {
            emit(out, "no changes\n");
        }
        emit(out, cmd.stat ? render_stat(sc.rs.layout, sc.diff.changes, ro)
                           : render_diff(sc.rs.layout, sc.diff.changes, ro));
        if (cmd.paths.empty()) {
            emit(out, hidden_note(sc.diff.hidden));
        }
    }
}

void run_apply(const profile::Profile& prof, const std::filesystem::path& vms_root, const ApplyCommand& cmd,
               std::FILE* out) {
    auto all = collect(prof, vms_root, cmd.paths, out);
    const bool multi = all.size() > 1;
    std::size_t applied = 0;
    std::size_t kept = 0;
    std::vector<std::string> refused;
    std::vector<std::string> hints;
    bool any = false;
    for (auto& sc : all) {
        std::vector<PlannedChange> planned;
        for (auto& c : sc.diff.changes) {
            planned.push_back({std::move(c), cmd.options});
        }
        if (planned.empty()) {
            continue;
        }
        any = true;
        auto report =
            apply_changes(sc.rs.layout, sc.rs.share.host, std::move(planned), diff_options_for(sc.rs));
        report.dry_run = cmd.options.dry_run;
        applied += report.count(Outcome::applied);
        kept += report.count(Outcome::kept_host);
        print_report(sc.rs, report, multi, cmd.color, out, refused, hints);
    }
    if (!any) {
        emit(out, "no changes to apply\n");
        return;
    }
    finish(prof, applied, kept, refused, hints, cmd.options.dry_run, out);
}

void run_review(const profile::Profile& prof, const std::filesystem::path& vms_root, const ReviewCommand& cmd,
                std::FILE* in, std::FILE* out) {
    auto all = collect(prof, vms_root, {}, out);
    const bool multi = all.size() > 1;
    RenderOptions ro;
    ro.color = cmd.color;
    std::size_t total = 0;
    for (const auto& sc : all) {
        total += sc.diff.changes.size();
    }
    if (total == 0) {
        emit(out, "no changes to review\n");
        for (const auto& sc : all) {
            emit(out, hidden_note(sc.diff.hidden));
        }
        return;
    }
    std::vector<std::vector<PlannedChange>> accepted(all.size());
    std::size_t n = 0;
    bool quit = false;
    for (std::size_t s = 0; s < all.size() && !quit; ++s) {
        auto& sc = all[s];
        emit(out, hidden_note(sc.diff.hidden));
        for (const auto& c : sc.diff.changes) {
            ++n;
            auto fd = file_diff(sc.rs.layout, c, ro);
            std::string head =
                fmt::format("\n[{}/{}] {}{} ({})\n", n, total, multi ? share_title(sc.rs) + ": " : "",
                            display_path(c.path), to_string(c.kind));
            emit(out, head + flag_lines(c, cmd.color) +
                          stat_line(c, fd, display_path(c.path).size(), cmd.color) + "\n");
            bool decided = false;
            while (!decided) {
                auto a = ask(in, out, "[a]ccept [s]kip [d]iff [q]uit? ");
                if (!a) {
                    emit(out, "end of input: quitting without applying anything\n");
                    return;
                }
                switch (answer_char(*a)) {
                    case 'a': {
                        ApplyOptions o;
                        bool take = true;
                        if (c.kind == ChangeKind::deleted || c.has(FlagKind::deletion)) {
                            auto y = ask(in, out,
                                         fmt::format("delete {} on the host? [y/N] ", display_path(c.path)));
                            if (!y) {
                                emit(out, "end of input: quitting without applying anything\n");
                                return;
                            }
                            o.allow_delete = answer_char(*y) == 'y';
                            take = o.allow_delete;
                        }
                        if (take && c.has(FlagKind::symlink_outside)) {
                            auto y = ask(in, out, "create a symlink that points outside the share? [y/N] ");
                            if (!y) {
                                emit(out, "end of input: quitting without applying anything\n");
                                return;
                            }
                            o.allow_outside_symlinks = answer_char(*y) == 'y';
                            take = o.allow_outside_symlinks;
                        }
                        if (take && c.conflict()) {
                            while (true) {
                                auto y = ask(in, out,
                                             "the host changed it since the snapshot: keep [g]uest's or "
                                             "[h]ost's version, or [s]kip? ");
                                if (!y) {
                                    emit(out, "end of input: quitting without applying anything\n");
                                    return;
                                }
                                char ch = answer_char(*y);
                                if (ch == 'g' || ch == 'h' || ch == 's') {
                                    o.conflict = ch == 'g' ? ConflictChoice::guest : ConflictChoice::host;
                                    take = ch != 's';
                                    break;
                                }
                            }
                        }
                        if (take) {
                            accepted[s].push_back({c, o});
                            emit(out, "accepted\n");
                        } else {
                            emit(out, "skipped\n");
                        }
                        decided = true;
                        break;
                    }
                    case 's':
                        emit(out, "skipped\n");
                        decided = true;
                        break;
                    case 'd':
                        emit(out, fd.text);
                        break;
                    case 'q':
                        quit = true;
                        decided = true;
                        break;
                    default:
                        emit(
                            out,
                            "a: accept this change, s: skip it, d: show its diff, q: stop and apply what was "
                            "accepted\n");
                        break;
                }
            }
            if (quit) {
                break;
            }
        }
    }
    std::size_t count = 0;
    for (const auto& a : accepted) {
        count += a.size();
    }
    if (count == 0) {
        emit(out, "nothing accepted; nothing applied\n");
        return;
    }
    emit(out, fmt::format("\napplying {} accepted {}\n", count, count == 1 ? "change" : "changes"));
    std::size_t applied = 0;
    std::size_t kept = 0;
    std::vector<std::string> refused;
    std::vector<std::string> hints;
    for (std::size_t s = 0; s < all.size(); ++s) {
        if (accepted[s].empty()) {
            continue;
        }
        auto report = apply_changes(all[s].rs.layout, all[s].rs.share.host, std::move(accepted[s]),
                                    diff_options_for(all[s].rs));
        applied += report.count(Outcome::applied);
        kept += report.count(Outcome::kept_host);
        print_report(all[s].rs, report, multi, cmd.color, out, refused, hints);
    }
    finish(prof, applied, kept, refused, hints, false, out);
}

}  // namespace sbx::share
