// Theory of operation: prepare() walks the host folder from its root fd, one openat() per
// component with O_NOFOLLOW (see tree_io.hpp), and copies each entry into base/ and work/
// in one pass: a regular file is read once, streamed into both copies and hashed, and its
// identity (from fstat of the same fd, before reading) goes into share.json. share.json is
// written last, so a share folder without it was never fully prepared and can be redone.
#include "sbx/share/snapshot.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>

#include "sbx/instance/state.hpp"
#include "sbx/share/changes.hpp"
#include "sbx/share/display.hpp"
#include "sbx/share/hide.hpp"
#include "sbx/util/error.hpp"
#include "sbx/util/fs.hpp"
#include "tree_io.hpp"

namespace sbx::share {

using detail::Fd;
using nlohmann::json;

namespace {

// Deeper folders are skipped with a note (bounds the open fds: two per level).
constexpr std::size_t k_max_depth = 128;

std::string hex_encode(std::string_view s) {
    std::string out;
    for (unsigned char c : s) {
        out += fmt::format("{:02x}", c);
    }
    return out;
}

std::string hex_decode(const std::string& s) {
    if (s.size() % 2 != 0) {
        throw std::runtime_error("odd hex length");
    }
    std::string out;
    for (std::size_t i = 0; i < s.size(); i += 2) {
        out += static_cast<char>(std::stoi(s.substr(i, 2), nullptr, 16));
    }
    return out;
}

// Names are bytes; JSON strings are UTF-8. Keep UTF-8 readable, hex-encode anything else.
void put_bytes(json& j, const std::string& key, const std::string& value) {
    if (is_valid_utf8(value)) {
        j[key] = value;
    } else {
        j[key + "_hex"] = hex_encode(value);
    }
}

std::string get_bytes(const json& j, const std::string& key) {
    if (j.contains(key + "_hex")) {
        return hex_decode(j.at(key + "_hex").get<std::string>());
    }
    return j.value(key, std::string());
}

EntryKind kind_from(const std::string& s) {
    if (s == "file") {
        return EntryKind::file;
    }
    if (s == "dir") {
        return EntryKind::dir;
    }
    if (s == "symlink") {
        return EntryKind::symlink;
    }
    if (s == "special") {
        return EntryKind::special;
    }
    return EntryKind::none;
}

std::string utc_now() {
    std::time_t t = std::time(nullptr);
    struct tm tm {};
    ::gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

class Snapshotter {
public:
    Snapshotter(const HideList& hide, ShareMeta& meta, PrepareReport& report)
        : m_hide(hide), m_meta(meta), m_report(report) {}

    void walk(int host, int base, int work, const std::string& prefix, std::size_t depth) {
        for (const auto& name : detail::list_dir(host)) {
            std::string rel = prefix.empty() ? name : prefix + "/" + name;
            if (m_hide.matches_exactly(rel)) {
                ++m_report.hidden;
                continue;
            }
            auto s = detail::stat_at(host, name);
            switch (s.entry.kind) {
                case EntryKind::none:
                    break;  // gone while we looked
                case EntryKind::dir:
                    copy_dir(host, base, work, name, rel, s, depth);
                    break;
                case EntryKind::file:
                    copy_file(host, base, work, name, rel);
                    break;
                case EntryKind::symlink:
                    copy_symlink(base, work, name, rel, s);
                    break;
                case EntryKind::special:
                    note(fmt::format("skipped {} {} (special files are not copied)",
                                     detail::kind_name(s.st.st_mode), display_path(rel)));
                    break;
            }
        }
    }

private:
    void note(std::string text) { m_report.notes.push_back(std::move(text)); }

    void copy_dir(int host, int base, int work, const std::string& name, const std::string& rel,
                  const detail::Stat& s, std::size_t depth) {
        if (depth + 1 > k_max_depth) {
            note(fmt::format("skipped folder {}: deeper than {} levels", display_path(rel), k_max_depth));
            return;
        }
        int err = 0;
        auto h = detail::open_subdir(host, name, err);
        if (!h) {
            note(fmt::format("skipped folder {}: {}", display_path(rel), std::strerror(err)));
            return;
        }
        if (::mkdirat(base, name.c_str(), 0700) != 0 || ::mkdirat(work, name.c_str(), 0700) != 0) {
            throw_errno(fmt::format("cannot create the copy of folder {}", display_path(rel)), errno);
        }
        auto b = detail::open_subdir(base, name, err);
        auto w = detail::open_subdir(work, name, err);
        if (!b || !w) {
            throw_errno(fmt::format("cannot open the copy of folder {}", display_path(rel)), err);
        }
        m_meta.files[rel] = detail::identity_of(s.st, EntryKind::dir);
        ++m_report.dirs;
        walk(h->get(), b->get(), w->get(), rel, depth + 1);
        // umask does not apply to fchmod: the guest sees the host's bits (plus owner rwx).
        ::fchmod(w->get(), (s.st.st_mode & 0777) | 0700);
    }

    void copy_file(int host, int base, int work, const std::string& name, const std::string& rel) {
        int err = 0;
        auto in = detail::open_regular(host, name, err);
        if (!in) {
            note(fmt::format("skipped {}: {}", display_path(rel),
                             err == EINVAL ? "no longer a regular file" : std::strerror(err)));
            return;
        }
        struct stat st {};
        if (::fstat(in->get(), &st) != 0) {
            throw_errno(fmt::format("cannot stat {}", display_path(rel)), errno);
        }
        auto create = [&](int dir) {
            int fd = ::openat(dir, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
            if (fd < 0) {
                throw_errno(fmt::format("cannot create the copy of {}", display_path(rel)), errno);
            }
            return Fd(fd);
        };
        Fd b = create(base);
        Fd w = create(work);
        Identity id = detail::identity_of(st, EntryKind::file);
        id.sha256 = detail::copy_stream(in->get(), {b.get(), w.get()});
        const mode_t mode = st.st_mode & 0777;
        std::array<struct timespec, 2> times{st.st_mtim, st.st_mtim};
        for (int fd : {b.get(), w.get()}) {
            if (::fchmod(fd, mode) != 0 || ::futimens(fd, times.data()) != 0) {
                throw_errno(fmt::format("cannot set the mode of the copy of {}", display_path(rel)), errno);
            }
        }
        if ((st.st_mode & (S_ISUID | S_ISGID | S_ISVTX)) != 0) {
            note(fmt::format("stripped the setuid/setgid/sticky bits of {} in the copy", display_path(rel)));
        }
        m_meta.files[rel] = std::move(id);
        ++m_report.files;
        m_report.bytes += static_cast<std::uint64_t>(st.st_size);
    }

    void copy_symlink(int base, int work, const std::string& name, const std::string& rel,
                      const detail::Stat& s) {
        for (int dir : {base, work}) {
            if (::symlinkat(s.entry.target.c_str(), dir, name.c_str()) != 0) {
                throw_errno(fmt::format("cannot copy symlink {}", display_path(rel)), errno);
            }
        }
        Identity id = detail::identity_of(s.st, EntryKind::symlink);
        id.target = s.entry.target;
        m_meta.files[rel] = std::move(id);
        ++m_report.symlinks;
    }

    const HideList& m_hide;
    ShareMeta& m_meta;
    PrepareReport& m_report;
};

}  // namespace

std::string to_string(EntryKind k) {
    switch (k) {
        case EntryKind::none:
            return "none";
        case EntryKind::file:
            return "file";
        case EntryKind::dir:
            return "dir";
        case EntryKind::symlink:
            return "symlink";
        case EntryKind::special:
            return "special";
    }
    return "none";
}

ShareMeta read_meta(const instance::ShareLayout& share) {
    std::string text;
    try {
        text = read_file(share.meta());
    } catch (const Error&) {
        throw Error(fmt::format("{} is missing: this share was never prepared", share.meta().string()),
                    {"the share is prepared when the instance starts: sbx up NAME"}, ExitCode::not_found);
    }
    try {
        json j = json::parse(text);
        if (j.value("version", 0) != ShareMeta::k_version) {
            throw std::runtime_error(fmt::format("unsupported version {}", j.value("version", 0)));
        }
        ShareMeta m;
        m.host_root = get_bytes(j, "host_root");
        m.host_root_dev = j.value("host_root_dev", std::uint64_t{0});
        m.host_root_inode = j.value("host_root_inode", std::uint64_t{0});
        m.guest = j.value("guest", std::string());
        m.hide = j.value("hide", std::vector<std::string>{});
        m.created = j.value("created", std::string());
        m.notes = j.value("notes", std::vector<std::string>{});
        for (const auto& f : j.at("files")) {
            Identity id;
            id.kind = kind_from(f.value("kind", std::string()));
            id.size = f.value("size", std::uint64_t{0});
            id.mtime_ns = f.value("mtime_ns", std::int64_t{0});
            id.inode = f.value("inode", std::uint64_t{0});
            id.mode = f.value("mode", std::uint32_t{0});
            id.sha256 = f.value("sha256", std::string());
            id.target = get_bytes(f, "target");
            m.files[get_bytes(f, "path")] = std::move(id);
        }
        return m;
    } catch (const std::exception& e) {
        throw Error(fmt::format("{} is not valid: {}", share.meta().string(), e.what()),
                    {"remove the share folder to take a fresh snapshot when the instance next starts "
                     "(changes in its work/ folder are then lost)"});
    }
}

void write_meta(const instance::ShareLayout& share, const ShareMeta& meta) {
    json j;
    j["version"] = ShareMeta::k_version;
    put_bytes(j, "host_root", meta.host_root.string());
    j["host_root_dev"] = meta.host_root_dev;
    j["host_root_inode"] = meta.host_root_inode;
    j["guest"] = meta.guest;
    j["hide"] = meta.hide;
    j["created"] = meta.created;
    j["notes"] = meta.notes;
    json files = json::array();
    for (const auto& [path, id] : meta.files) {
        json f;
        put_bytes(f, "path", path);
        f["kind"] = to_string(id.kind);
        f["mode"] = id.mode;
        f["inode"] = id.inode;
        f["mtime_ns"] = id.mtime_ns;
        if (id.kind == EntryKind::file) {
            f["size"] = id.size;
            f["sha256"] = id.sha256;
        }
        if (id.kind == EntryKind::symlink) {
            put_bytes(f, "target", id.target);
        }
        files.push_back(std::move(f));
    }
    j["files"] = std::move(files);
    write_file_atomic(share.meta(), j.dump(1) + "\n");
}

bool is_prepared(const instance::ShareLayout& share) {
    std::error_code ec;
    return std::filesystem::is_regular_file(share.meta(), ec);
}

bool has_pending_changes(const instance::ShareLayout& share) {
    if (!is_prepared(share)) {
        return false;
    }
    DiffOptions options;
    options.check_host = false;
    return !diff(share, options).changes.empty();
}

PrepareReport prepare(const std::filesystem::path& host_root, const std::vector<std::string>& hide,
                      const std::string& guest, const instance::ShareLayout& share,
                      const PrepareOptions& options) {
    HideList hide_list(hide);
    Fd root = detail::open_root(host_root);
    struct stat root_st {};
    if (::fstat(root.get(), &root_st) != 0) {
        throw_errno(fmt::format("cannot stat {}", host_root.string()), errno);
    }
    if (is_prepared(share) && !options.discard_pending && has_pending_changes(share)) {
        throw Error(
            fmt::format("the review copy in {} has changes that were not applied", share.dir.string()),
            {"sbx diff NAME shows them, sbx apply NAME copies them to the host",
             "to discard them, remove the folder " + share.dir.string()});
    }
    make_private_dirs(share.dir);
    auto lock = instance::FileLock::try_acquire(share.lock());
    if (!lock) {
        throw Error(fmt::format("{} is in use by another sbx apply or review", share.dir.string()),
                    {"wait for it to finish, then retry"});
    }
    // Unprepared first: a crash from here on leaves a folder that is redone next time.
    std::error_code ec;
    std::filesystem::remove(share.meta(), ec);
    std::filesystem::remove_all(share.base(), ec);
    if (ec) {
        throw Error(fmt::format("cannot remove {}: {}", share.base().string(), ec.message()));
    }
    std::filesystem::remove_all(share.work(), ec);
    if (ec) {
        throw Error(fmt::format("cannot remove {}: {}", share.work().string(), ec.message()));
    }
    for (const auto& dir : {share.base(), share.work()}) {
        if (::mkdir(dir.c_str(), 0700) != 0) {
            throw_errno(fmt::format("cannot create folder {}", dir.string()), errno);
        }
    }
    Fd base = detail::open_root(share.base());
    Fd work = detail::open_root(share.work());

    ShareMeta meta;
    meta.host_root = host_root;
    meta.host_root_dev = static_cast<std::uint64_t>(root_st.st_dev);
    meta.host_root_inode = static_cast<std::uint64_t>(root_st.st_ino);
    meta.guest = guest;
    meta.hide = hide;
    meta.created = utc_now();
    PrepareReport report;
    Snapshotter(hide_list, meta, report).walk(root.get(), base.get(), work.get(), "", 0);
    ::fchmod(work.get(), (root_st.st_mode & 0777) | 0700);
    meta.notes = report.notes;
    write_meta(share, meta);
    return report;
}

}  // namespace sbx::share
