// Theory of operation: apply_changes() opens three roots by fd: the host folder (checked
// to be the very folder snapshotted), base/ and work/. Each change is applied on its own,
// and a refusal (or an error) only stops that change. For every change:
//   1. checks that need no writes: hidden path, special file, symlink target, the walk to
//      the host parent folder (O_NOFOLLOW per component), the host entry against the
//      identity recorded at the snapshot (conflict), deletion rights;
//   2. the host write: a file is streamed from work/ into a temp file in the host folder
//      and, at the same time, into a temp file in base/, hashed on the way; the hash must
//      equal what the diff saw (else the guest changed it after the review: refused); then
//      both are renamed into place. Symlinks: symlinkat to a temp name, rename.
//   3. base/ and the recorded identity follow, so the change is no longer listed.
// Deletions run first, deepest first; the rest parents first.
#include "sbx/share/apply.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "sbx/instance/state.hpp"
#include "sbx/share/display.hpp"
#include "sbx/share/hide.hpp"
#include "sbx/util/error.hpp"
#include "tree_io.hpp"

namespace sbx::share {

using detail::Fd;

namespace {

// A change was refused: message and the next step.
struct Refusal {
    std::string message;
    std::string hint;
};

// A temp file being written in a folder; unlinked unless committed.
class StagedFile {
public:
    StagedFile(int dir, const std::string& target)
        : m_dir(dir), m_target(target), m_name(detail::temp_name()) {
        int fd = ::openat(dir, m_name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
            throw_errno(fmt::format("cannot create a temp file next to {}", display_path(target)), errno);
        }
        m_fd = Fd(fd);
    }
    StagedFile(const StagedFile&) = delete;
    StagedFile& operator=(const StagedFile&) = delete;
    ~StagedFile() {
        if (!m_committed) {
            ::unlinkat(m_dir, m_name.c_str(), 0);
        }
    }

    int fd() const { return m_fd.get(); }

    // Mode (special bits stripped), fsync, stat.
    struct stat finish(mode_t mode) {
        if (::fchmod(m_fd.get(), mode & 0777) != 0) {
            throw_errno(fmt::format("cannot set the mode of {}", display_path(m_target)), errno);
        }
        if (::fsync(m_fd.get()) != 0) {
            throw_errno(fmt::format("cannot flush {}", display_path(m_target)), errno);
        }
        struct stat st {};
        if (::fstat(m_fd.get(), &st) != 0) {
            throw_errno(fmt::format("cannot stat {}", display_path(m_target)), errno);
        }
        return st;
    }

    void commit(const std::string& name) {
        if (::renameat(m_dir, m_name.c_str(), m_dir, name.c_str()) != 0) {
            throw_errno(fmt::format("cannot rename the temp file over {}", display_path(m_target)), errno);
        }
        m_committed = true;
        ::fsync(m_dir);
    }

private:
    int m_dir;
    std::string m_target;
    std::string m_name;
    Fd m_fd;
    bool m_committed = false;
};

std::string conflict_hint(const std::string& path) {
    std::string p = display_path(path);
    return fmt::format(
        "sbx diff NAME {} shows the guest's change; then sbx apply NAME {} --conflict=guest "
        "overwrites the host's version, or --conflict=host keeps it",
        p, p);
}

class Applier {
public:
    Applier(ShareMeta& meta, const HideList& hide, int host, int base, int work)
        : m_meta(meta), m_hide(hide), m_host(host), m_base(base), m_work(work) {}

    FileResult run(const PlannedChange& pc) {
        FileResult r{pc.change.path, pc.change.kind, Outcome::applied, "", ""};
        try {
            auto outcome = apply_one(pc.change, pc.options);
            r.outcome = outcome.first;
            r.message = outcome.second;
        } catch (const Refusal& refusal) {
            r.outcome = Outcome::refused;
            r.message = refusal.message;
            r.hint = refusal.hint;
        } catch (const Error& e) {
            r.outcome = Outcome::refused;
            r.message = e.what();
            r.hint = e.hints().empty() ? std::string() : e.hints().front();
        } catch (const std::exception& e) {
            r.outcome = Outcome::refused;
            r.message = e.what();
        }
        return r;
    }

    bool changed_meta() const { return m_meta_dirty; }

private:
    using Result = std::pair<Outcome, std::string>;

    Result apply_one(const Change& c, const ApplyOptions& o) {
        if (auto entry = m_hide.hidden_by(c.path)) {
            throw Refusal{fmt::format("hidden by \"{}\": never written to the host", *entry), ""};
        }
        const auto parts = detail::split_rel(c.path);
        const std::string& name = parts.back();
        const Entry& w = c.work;
        if (w.kind == EntryKind::special) {
            throw Refusal{fmt::format("special file ({}): not copied to the host",
                                      detail::kind_name(static_cast<mode_t>(w.mode))),
                          "remove it in the guest, or leave it out of the apply"};
        }
        if (w.kind == EntryKind::symlink && !o.allow_outside_symlinks &&
            (symlink_escapes(c.path, w.target) || c.has(FlagKind::symlink_outside))) {
            throw Refusal{fmt::format("symlink points outside the share (-> {})", display_text(w.target)),
                          "if that is really wanted: sbx apply NAME " + display_path(c.path) +
                              " --allow-outside-symlinks"};
        }
        if (c.kind == ChangeKind::deleted && !o.allow_delete) {
            throw Refusal{"deletion not applied without --allow-delete",
                          "sbx apply NAME " + display_path(c.path) + " --allow-delete"};
        }

        // The host folder that holds it, reached without following symlinks.
        detail::WalkFailure failure;
        auto host_parent = detail::open_parent(m_host, parts, std::nullopt, failure);
        if (!host_parent && failure.err != ENOENT) {
            throw Refusal{fmt::format("on the host, {} {}: sbx never writes through symlinks or outside "
                                      "the share",
                                      display_path(failure.at), failure.reason),
                          "look at " + display_path(failure.at) +
                              " on the host; once it is a plain folder, apply again"};
        }

        // Conflict: the host entry against what the snapshot recorded.
        auto it = m_meta.files.find(c.path);
        const Identity* recorded = it == m_meta.files.end() ? nullptr : &it->second;
        if (auto drift = detail::host_drift(m_host, c.path, recorded)) {
            switch (o.conflict) {
                case ConflictChoice::refuse:
                    throw Refusal{fmt::format("the host changed it since the snapshot ({})", *drift),
                                  conflict_hint(c.path)};
                case ConflictChoice::host:
                    if (!o.dry_run) {
                        sync_base(c);
                    }
                    return {Outcome::kept_host, fmt::format("{}kept the host's version ({})",
                                                            o.dry_run ? "would have " : "", *drift)};
                case ConflictChoice::guest:
                    break;
            }
        }

        // Missing folders on the way are created (they exist in work/ as folders).
        if (!host_parent && c.kind != ChangeKind::deleted && !o.dry_run) {
            std::vector<std::string> created;
            host_parent = detail::open_parent(m_host, parts, 0777, failure, &created);
            if (!host_parent) {
                throw Refusal{fmt::format("on the host, {} {}", display_path(failure.at), failure.reason),
                              ""};
            }
            for (const auto& dir : created) {
                record_dir(dir);
            }
        }

        detail::Stat current;
        if (host_parent) {
            current = detail::stat_at(host_parent->get(), name);
        }
        if (current.entry.kind == EntryKind::dir && w.kind != EntryKind::dir && !o.allow_delete) {
            throw Refusal{"replacing a folder on the host needs --allow-delete",
                          "sbx apply NAME " + display_path(c.path) + " --allow-delete"};
        }
        if (o.dry_run) {
            return {Outcome::applied,
                    c.kind == ChangeKind::deleted ? "would be deleted" : "would be written"};
        }
        const int hp = host_parent ? host_parent->get() : -1;

        if (c.kind == ChangeKind::deleted) {
            if (hp >= 0 && current.entry.kind != EntryKind::none) {
                remove_entry(hp, name, current.entry.kind, c.path, true);
            }
            remove_from_base(c.path);
            m_meta.files.erase(c.path);
            m_meta_dirty = true;
            return {Outcome::applied, "deleted"};
        }

        // Make room: a folder (empty by now) or, for a new folder, whatever is there.
        if (current.entry.kind == EntryKind::dir && w.kind != EntryKind::dir) {
            remove_entry(hp, name, EntryKind::dir, c.path, true);
        } else if (w.kind == EntryKind::dir && current.entry.kind != EntryKind::dir &&
                   current.entry.kind != EntryKind::none) {
            remove_entry(hp, name, current.entry.kind, c.path, true);
        }

        std::string what;
        switch (w.kind) {
            case EntryKind::file:
                what = write_file(c, hp, name);
                break;
            case EntryKind::symlink:
                what = write_symlink(c, hp, name);
                break;
            case EntryKind::dir:
                what = make_dir(c, hp, name);
                break;
            default:
                throw Refusal{"nothing to apply", ""};
        }
        m_meta_dirty = true;
        return {Outcome::applied, what};
    }

    // Removes a host (or base) entry; a folder must be empty.
    void remove_entry(int dir, const std::string& name, EntryKind kind, const std::string& rel, bool host) {
        int flags = kind == EntryKind::dir ? AT_REMOVEDIR : 0;
        if (::unlinkat(dir, name.c_str(), flags) != 0 && errno != ENOENT) {
            if (errno == ENOTEMPTY || errno == EEXIST) {
                throw Refusal{fmt::format("the {} folder is not empty (it holds paths hidden from the guest, "
                                          "created after the snapshot, or deletions not applied)",
                                          host ? "host" : "base"),
                              "look at " + display_path(rel) + " on the host"};
            }
            throw_errno(fmt::format("cannot remove {}", display_path(rel)), errno);
        }
        if (host) {
            ::fsync(dir);
        }
    }

    Fd work_parent(const Change& c, const std::vector<std::string>& parts) {
        detail::WalkFailure failure;
        auto p = detail::open_parent(m_work, parts, std::nullopt, failure);
        if (!p) {
            throw Refusal{fmt::format("changed in the guest since the diff ({} {})", display_path(failure.at),
                                      failure.reason),
                          "run sbx diff NAME again"};
        }
        (void)c;
        return std::move(*p);
    }

    Fd base_parent(const std::vector<std::string>& parts) {
        detail::WalkFailure failure;
        auto p = detail::open_parent(m_base, parts, 0700, failure);
        if (!p) {
            throw Error(fmt::format("the host has the new version, but base/ cannot follow: {} {}",
                                    display_path(failure.at), failure.reason));
        }
        return std::move(*p);
    }

    std::string write_file(const Change& c, int hp, const std::string& name) {
        auto parts = detail::split_rel(c.path);
        Fd wp = work_parent(c, parts);
        int err = 0;
        auto in = detail::open_regular(wp.get(), name, err);
        if (!in) {
            throw Refusal{"changed in the guest since the diff (no longer a regular file)",
                          "run sbx diff NAME again"};
        }
        Fd bp = base_parent(parts);
        auto bcur = detail::stat_at(bp.get(), name);
        if (bcur.entry.kind == EntryKind::dir) {
            remove_entry(bp.get(), name, EntryKind::dir, c.path, false);
        }
        StagedFile host_tmp(hp, c.path);
        StagedFile base_tmp(bp.get(), c.path);
        std::string sha = detail::copy_stream(in->get(), {host_tmp.fd(), base_tmp.fd()});
        if (c.work_sha256.empty() || sha != c.work_sha256) {
            throw Refusal{"changed in the guest after it was reviewed; not applied",
                          "run sbx diff NAME again"};
        }
        const auto mode = static_cast<mode_t>(c.work.mode);
        struct stat st = host_tmp.finish(mode);
        base_tmp.finish(mode);
        host_tmp.commit(name);
        base_tmp.commit(name);
        Identity id = detail::identity_of(st, EntryKind::file);
        id.sha256 = sha;
        m_meta.files[c.path] = std::move(id);
        bool stripped = (c.work.mode & (S_ISUID | S_ISGID | S_ISVTX)) != 0;
        return stripped ? "written (setuid/setgid/sticky bits stripped)" : "written";
    }

    std::string write_symlink(const Change& c, int hp, const std::string& name) {
        auto parts = detail::split_rel(c.path);
        Fd wp = work_parent(c, parts);
        auto now = detail::stat_at(wp.get(), name);
        if (now.entry.kind != EntryKind::symlink || now.entry.target != c.work.target) {
            throw Refusal{"changed in the guest after it was reviewed; not applied",
                          "run sbx diff NAME again"};
        }
        detail::write_symlink_at(hp, name, c.work.target);
        Fd bp = base_parent(parts);
        auto bcur = detail::stat_at(bp.get(), name);
        if (bcur.entry.kind == EntryKind::dir) {
            remove_entry(bp.get(), name, EntryKind::dir, c.path, false);
        }
        detail::write_symlink_at(bp.get(), name, c.work.target);
        auto st = detail::stat_at(hp, name);
        Identity id = detail::identity_of(st.st, EntryKind::symlink);
        id.target = st.entry.target;
        m_meta.files[c.path] = std::move(id);
        return "symlink created";
    }

    std::string make_dir(const Change& c, int hp, const std::string& name) {
        auto parts = detail::split_rel(c.path);
        if (::mkdirat(hp, name.c_str(), 0700) != 0 && errno != EEXIST) {
            throw_errno(fmt::format("cannot create folder {}", display_path(c.path)), errno);
        }
        int err = 0;
        auto d = detail::open_subdir(hp, name, err);
        if (!d) {
            throw Refusal{fmt::format("on the host, {} is not a plain folder", display_path(c.path)), ""};
        }
        ::fchmod(d->get(), (static_cast<mode_t>(c.work.mode) & 0777) | 0700);
        Fd bp = base_parent(parts);
        auto bcur = detail::stat_at(bp.get(), name);
        if (bcur.entry.kind != EntryKind::dir && bcur.entry.kind != EntryKind::none) {
            remove_entry(bp.get(), name, bcur.entry.kind, c.path, false);
        }
        if (::mkdirat(bp.get(), name.c_str(), 0700) != 0 && errno != EEXIST) {
            throw_errno(fmt::format("cannot create folder {} in base/", display_path(c.path)), errno);
        }
        record_dir(c.path);
        return "folder created";
    }

    void record_dir(const std::string& rel) {
        auto parts = detail::split_rel(rel);
        detail::WalkFailure failure;
        auto p = detail::open_parent(m_host, parts, std::nullopt, failure);
        if (!p) {
            return;
        }
        auto s = detail::stat_at(p->get(), parts.back());
        if (s.entry.kind == EntryKind::dir) {
            m_meta.files[rel] = detail::identity_of(s.st, EntryKind::dir);
            m_meta_dirty = true;
        }
        // A folder created implicitly on the host exists in base/ too (or the next diff
        // would still list its files as changes with a missing parent).
        Fd bp = base_parent(parts);
        ::mkdirat(bp.get(), parts.back().c_str(), 0700);
    }

    // base/ takes the work/ version of c (the host keeps its own; identity unchanged, so
    // a later change to this path is a conflict again).
    void sync_base(const Change& c) {
        auto parts = detail::split_rel(c.path);
        const std::string& name = parts.back();
        if (c.kind == ChangeKind::deleted) {
            remove_from_base(c.path);
            return;
        }
        Fd bp = base_parent(parts);
        auto bcur = detail::stat_at(bp.get(), name);
        if (bcur.entry.kind == EntryKind::dir && c.work.kind != EntryKind::dir) {
            remove_entry(bp.get(), name, EntryKind::dir, c.path, false);
        } else if (c.work.kind == EntryKind::dir && bcur.entry.kind != EntryKind::dir &&
                   bcur.entry.kind != EntryKind::none) {
            remove_entry(bp.get(), name, bcur.entry.kind, c.path, false);
        }
        switch (c.work.kind) {
            case EntryKind::file: {
                Fd wp = work_parent(c, parts);
                int err = 0;
                auto in = detail::open_regular(wp.get(), name, err);
                if (!in) {
                    throw Refusal{"changed in the guest since the diff", "run sbx diff NAME again"};
                }
                StagedFile tmp(bp.get(), c.path);
                std::string sha = detail::copy_stream(in->get(), {tmp.fd()});
                if (sha != c.work_sha256) {
                    throw Refusal{"changed in the guest after it was reviewed", "run sbx diff NAME again"};
                }
                tmp.finish(static_cast<mode_t>(c.work.mode));
                tmp.commit(name);
                break;
            }
            case EntryKind::symlink:
                detail::write_symlink_at(bp.get(), name, c.work.target);
                break;
            case EntryKind::dir:
                if (::mkdirat(bp.get(), name.c_str(), 0700) != 0 && errno != EEXIST) {
                    throw_errno(fmt::format("cannot create folder {} in base/", display_path(c.path)), errno);
                }
                break;
            default:
                break;
        }
    }

    void remove_from_base(const std::string& rel) {
        auto parts = detail::split_rel(rel);
        detail::WalkFailure failure;
        auto bp = detail::open_parent(m_base, parts, std::nullopt, failure);
        if (!bp) {
            return;
        }
        auto cur = detail::stat_at(bp->get(), parts.back());
        if (cur.entry.kind != EntryKind::none) {
            remove_entry(bp->get(), parts.back(), cur.entry.kind, rel, false);
        }
    }

    ShareMeta& m_meta;
    const HideList& m_hide;
    int m_host;
    int m_base;
    int m_work;
    bool m_meta_dirty = false;
};

}  // namespace

std::string to_string(Outcome o) {
    switch (o) {
        case Outcome::applied:
            return "applied";
        case Outcome::kept_host:
            return "kept host";
        case Outcome::refused:
            return "refused";
    }
    return "?";
}

std::size_t ApplyReport::count(Outcome o) const {
    return static_cast<std::size_t>(
        std::count_if(results.begin(), results.end(), [o](const FileResult& r) { return r.outcome == o; }));
}

ApplyReport apply_changes(const instance::ShareLayout& share, const std::filesystem::path& host_root,
                          std::vector<PlannedChange> planned, const DiffOptions& diff_options) {
    ShareMeta meta = read_meta(share);
    if (meta.host_root.lexically_normal() != host_root.lexically_normal()) {
        throw Error(fmt::format("the review copy in {} is of {}, not {}", share.dir.string(),
                                meta.host_root.string(), host_root.string()),
                    {"the profile's share changed since the instance started; apply from the old folder "
                     "by restoring the profile, or remove " +
                     share.dir.string() + " to start over"});
    }
    auto lock = instance::FileLock::try_acquire(share.lock());
    if (!lock) {
        throw Error(fmt::format("{} is in use by another sbx apply or review", share.dir.string()),
                    {"wait for it to finish, then retry"});
    }
    Fd host = detail::open_root(host_root);
    struct stat st {};
    if (::fstat(host.get(), &st) != 0) {
        throw_errno(fmt::format("cannot stat {}", host_root.string()), errno);
    }
    if (static_cast<std::uint64_t>(st.st_dev) != meta.host_root_dev ||
        static_cast<std::uint64_t>(st.st_ino) != meta.host_root_inode) {
        throw Error(fmt::format("{} is no longer the folder that was snapshotted (it was replaced or moved)",
                                host_root.string()),
                    {"nothing was applied; restore the folder, or remove " + share.dir.string() +
                     " to start over from the current one"});
    }
    HideList hide(meta.hide);
    hide.add(diff_options.extra_hide);
    Fd base = detail::open_root(share.base());
    Fd work = detail::open_root(share.work());

    // Deletions first, children before parents; then the rest, parents before children.
    std::stable_sort(planned.begin(), planned.end(), [](const PlannedChange& a, const PlannedChange& b) {
        bool da = a.change.kind == ChangeKind::deleted;
        bool db = b.change.kind == ChangeKind::deleted;
        if (da != db) {
            return da;
        }
        return da ? a.change.path > b.change.path : a.change.path < b.change.path;
    });
    ApplyReport report;
    report.dry_run =
        !planned.empty() &&
        std::all_of(planned.begin(), planned.end(), [](const PlannedChange& p) { return p.options.dry_run; });
    Applier applier(meta, hide, host.get(), base.get(), work.get());
    for (const auto& pc : planned) {
        report.results.push_back(applier.run(pc));
    }
    if (applier.changed_meta()) {
        write_meta(share, meta);
    }
    return report;
}

ApplyReport apply(const instance::ShareLayout& share, const std::filesystem::path& host_root,
                  const std::vector<std::string>& paths, const ApplyOptions& options,
                  const DiffOptions& diff_options) {
    auto changes = select_changes(diff(share, diff_options).changes, paths);
    std::vector<PlannedChange> planned;
    planned.reserve(changes.size());
    for (auto& c : changes) {
        planned.push_back({std::move(c), options});
    }
    auto report = apply_changes(share, host_root, std::move(planned), diff_options);
    report.dry_run = options.dry_run;
    return report;
}

}  // namespace sbx::share
