// The per-instance seed: a ustar archive the host attaches as a raw virtio disk with
// serial "sbx-seed"; images/guest/sbx-seed extracts it at boot with `tar -xf /dev/vdX`.
//
// Theory of operation: the archive is written here byte by byte (POSIX.1-1988 ustar, 512-byte
// header per file, data padded to 512, two zero blocks at the end), then padded with zeros to a
// multiple of 64 KiB so that the file is a sane disk. Everything is deterministic (mtime 0,
// owner root) so the same seed always gives the same bytes. The guest script trusts this
// layout, so every field is checked here before it can reach a shell in the guest.

#include "sbx/image/image.hpp"

#include "sbx/util/error.hpp"
#include "sbx/util/fs.hpp"
#include "sbx/util/hash.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>

namespace sbx::image {

namespace {

constexpr std::size_t k_block = 512;
constexpr std::size_t k_disk_granule = 64 * 1024;

bool is_lower(char c) { return c >= 'a' && c <= 'z'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return is_lower(c) || (c >= 'A' && c <= 'Z'); }

bool valid_id(std::string_view s) {
    return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
        return is_alpha(c) || is_digit(c) || c == '.' || c == '_' || c == '-';
    });
}

// Host name as systemd accepts it: dot-separated labels of letters, digits, '-' and '_'
// (instance names may contain '_'), 1 to 63 characters each.
bool valid_hostname(std::string_view s) {
    if (s.empty() || s.size() > 253) {
        return false;
    }
    std::size_t start = 0;
    while (start <= s.size()) {
        std::size_t dot = s.find('.', start);
        std::string_view label = s.substr(start, dot == std::string_view::npos ? s.npos : dot - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-' ||
            !std::all_of(label.begin(), label.end(),
                         [](char c) { return is_alpha(c) || is_digit(c) || c == '-' || c == '_'; })) {
            return false;
        }
        if (dot == std::string_view::npos) {
            break;
        }
        start = dot + 1;
    }
    return true;
}

// What Debian's useradd accepts by default, minus root.
bool valid_user(std::string_view s) {
    return !s.empty() && s.size() <= 32 && s != "root" && (is_lower(s.front()) || s.front() == '_') &&
           std::all_of(s.begin(), s.end(),
                       [](char c) { return is_lower(c) || is_digit(c) || c == '_' || c == '-'; });
}

// One line, newline-terminated.
std::string one_line(std::string_view field, std::string_view value) {
    while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) {
        value.remove_suffix(1);
    }
    if (value.empty() || value.find_first_of("\r\n") != std::string_view::npos ||
        value.find('\0') != std::string_view::npos) {
        throw Error(fmt::format("seed: {} must be exactly one non-empty line", field));
    }
    return std::string(value) + "\n";
}

// Writes `value` as zero-padded octal into a field of `width` bytes, NUL-terminated.
void put_octal(char* field, std::size_t width, std::uint64_t value) {
    std::string digits = fmt::format("{:0{}o}", value, width - 1);
    if (digits.size() > width - 1) {
        throw Error(fmt::format("seed: value {} does not fit a tar header field", value));
    }
    std::memcpy(field, digits.data(), digits.size());
    field[width - 1] = '\0';
}

void put_string(char* field, std::size_t width, std::string_view value) {
    std::memcpy(field, value.data(), std::min(width, value.size()));
}

// Appends one regular file (header + data padded to the block size).
void append_file(std::string& out, std::string_view name, std::string_view data, unsigned mode) {
    std::array<char, k_block> h{};
    // Offsets from POSIX.1-1988 ustar.
    put_string(&h[0], 100, name);            // name
    put_octal(&h[100], 8, mode);             // mode
    put_octal(&h[108], 8, 0);                // uid
    put_octal(&h[116], 8, 0);                // gid
    put_octal(&h[124], 12, data.size());     // size
    put_octal(&h[136], 12, 0);               // mtime
    std::memset(&h[148], ' ', 8);            // chksum, spaces while summing
    h[156] = '0';                            // typeflag: regular file
    put_string(&h[257], 6, "ustar");         // magic "ustar\0"
    put_string(&h[263], 2, "00");            // version
    put_string(&h[265], 32, "root");         // uname
    put_string(&h[297], 32, "root");         // gname
    unsigned sum = 0;
    for (char c : h) {
        sum += static_cast<unsigned char>(c);
    }
    std::string chk = fmt::format("{:06o}", sum);
    std::memcpy(&h[148], chk.data(), 6);
    h[154] = '\0';
    h[155] = ' ';
    out.append(h.data(), h.size());
    out.append(data);
    out.append((k_block - data.size() % k_block) % k_block, '\0');
}

}  // namespace

std::string seed_id(const Seed& seed) {
    Fnv1a64 h;
    for (const auto* field : {&seed.hostname, &seed.user, &seed.authorized_key, &seed.host_key, &seed.host_key_pub}) {
        h.add_field(*field);
    }
    h.add_field(std::to_string(seed.uid));
    for (const auto& m : seed.mounts) {
        h.add_field(fmt::format("{} {} {} {}", m.type, m.tag, m.read_only ? "ro" : "rw", m.guest_path));
    }
    return fmt::format("{:016x}", h.value());
}

std::string encode_seed(const Seed& seed) {
    if (!valid_id(seed.id)) {
        throw Error(fmt::format("seed: invalid id \"{}\" (letters, digits, '.', '_' and '-')", seed.id));
    }
    if (!valid_hostname(seed.hostname)) {
        throw Error(fmt::format("seed: \"{}\" is not a valid host name", seed.hostname),
                    {"host names use letters, digits, '-' and '_' (at most 63 per dot-separated part)"});
    }
    if (!valid_user(seed.user)) {
        throw Error(fmt::format("seed: \"{}\" is not a valid user name", seed.user),
                    {"user names use lowercase letters, digits, '_' and '-', at most 32, and not root"});
    }
    if (seed.uid != 0 && (seed.uid < 1000 || seed.uid > 59999)) {
        throw Error(fmt::format("seed: uid {} is outside the range for people (1000 to 59999)", seed.uid));
    }
    std::string mounts;
    for (const auto& m : seed.mounts) {
        bool tag_ok = !m.tag.empty() && m.tag.size() <= 36 &&
                      std::all_of(m.tag.begin(), m.tag.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)); });
        bool path_ok = m.guest_path.size() > 1 && m.guest_path[0] == '/' &&
                       std::none_of(m.guest_path.begin(), m.guest_path.end(),
                                    [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
        if ((m.type != "virtiofs" && m.type != "9p") || !tag_ok || !path_ok) {
            throw Error(fmt::format("seed: mount {} {} {} cannot be applied safely", m.type, m.tag, m.guest_path));
        }
        mounts += fmt::format("{} {} {} {}\n", m.type, m.tag, m.read_only ? "ro" : "rw", m.guest_path);
    }
    std::string authorized = one_line("authorized_key", seed.authorized_key);
    std::string host_pub = one_line("host_key_pub", seed.host_key_pub);
    if (host_pub.rfind("ssh-ed25519 ", 0) != 0) {
        throw Error("seed: host_key_pub must be an ssh-ed25519 public key line");
    }
    std::string host_key = seed.host_key;
    if (host_key.find("-----BEGIN OPENSSH PRIVATE KEY-----") == std::string::npos) {
        throw Error("seed: host_key must be an OpenSSH private key");
    }
    if (host_key.back() != '\n') {
        host_key += '\n';
    }

    std::string out;
    // "id" comes first: the guest reads it alone to decide whether anything changed.
    append_file(out, "id", seed.id + "\n", 0644);
    append_file(out, "hostname", seed.hostname + "\n", 0644);
    append_file(out, "user", seed.user + "\n", 0644);
    if (seed.uid != 0) {
        append_file(out, "uid", fmt::format("{}\n", seed.uid), 0644);
    }
    append_file(out, "authorized_keys", authorized, 0644);
    if (!mounts.empty()) {
        append_file(out, "mounts", mounts, 0644);
    }
    append_file(out, "ssh_host_ed25519_key", host_key, 0600);
    append_file(out, "ssh_host_ed25519_key.pub", host_pub, 0644);
    out.append(2 * k_block, '\0');
    out.append((k_disk_granule - out.size() % k_disk_granule) % k_disk_granule, '\0');
    return out;
}

void write_seed(const std::filesystem::path& path, const Seed& seed) {
    write_file_atomic(path, encode_seed(seed),
                      std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

}  // namespace sbx::image
