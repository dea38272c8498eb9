// The profile schema: every key sbx accepts, defined once. Each section is a list of fields;
// a field carries its documentation (type, default, meaning: docs/profile.md is checked
// against it) and its reader, which validates the value and stores it. Readers never stop at
// the first problem: each adds a line to TomlProblems and the loader reports them all.

#include "schema.hpp"

#include "sbx/util/fs.hpp"
#include "sbx/util/public_suffix.hpp"
#include "sbx/util/strings.hpp"

#include <fmt/format.h>

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <set>

namespace sbx::profile {

std::string to_string(Accel a) {
    switch (a) {
    case Accel::automatic: return "auto";
    case Accel::kvm: return "kvm";
    case Accel::tcg: return "tcg";
    }
    return "auto";
}

std::string to_string(ShareMode m) {
    switch (m) {
    case ShareMode::rw: return "rw";
    case ShareMode::ro: return "ro";
    case ShareMode::review: return "review";
    }
    return "rw";
}

std::string to_string(ShareType t) { return t == ShareType::ninep ? "9p" : "virtiofs"; }

std::string to_string(NetPolicy p) {
    switch (p) {
    case NetPolicy::allowlist: return "allowlist";
    case NetPolicy::none: return "none";
    case NetPolicy::open: return "open";
    }
    return "allowlist";
}

namespace detail {
namespace {

using P = TomlProblems;

template <class T>
struct Field {
    const char* key;
    const char* type;
    const char* def;  // "" when required; "(...)" for a rule that is not a value
    const char* meaning;
    void (*read)(const toml::node& n, const std::string& path, T& out, P& p);
};

void wrong_type(const toml::node& n, const std::string& path, std::string_view want, P& p) {
    p.add(n.source(), path, fmt::format("expected {}, found {}", want, toml_type_name(n)));
}

std::optional<std::string> get_string(const toml::node& n, const std::string& path, P& p) {
    auto s = n.value_exact<std::string>();
    if (!s) {
        wrong_type(n, path, "a string", p);
    }
    return s;
}

std::optional<std::int64_t> get_int(const toml::node& n, const std::string& path, P& p,
                                    std::int64_t min, std::int64_t max) {
    auto v = n.value_exact<std::int64_t>();
    if (!v) {
        wrong_type(n, path, "an integer", p);
        return std::nullopt;
    }
    if (*v < min || *v > max) {
        p.add(n.source(), path, fmt::format("{} is out of range ({} to {})", *v, min, max));
        return std::nullopt;
    }
    return v;
}

std::optional<std::uint16_t> get_port(const toml::node& n, const std::string& path, P& p) {
    auto v = n.value_exact<std::int64_t>();
    if (!v) {
        wrong_type(n, path, "a port number", p);
        return std::nullopt;
    }
    if (*v < 1 || *v > 65535) {
        p.add(n.source(), path, fmt::format("port {} is out of range (1 to 65535)", *v));
        return std::nullopt;
    }
    return static_cast<std::uint16_t>(*v);
}

std::optional<bool> get_bool(const toml::node& n, const std::string& path, P& p) {
    auto v = n.value_exact<bool>();
    if (!v) {
        wrong_type(n, path, "true or false", p);
    }
    return v;
}

// One of `choices`, else a problem listing them.
std::optional<std::string> get_choice(const toml::node& n, const std::string& path, P& p,
                                      const std::vector<std::string>& choices) {
    auto s = get_string(n, path, p);
    if (!s) {
        return std::nullopt;
    }
    if (std::find(choices.begin(), choices.end(), *s) == choices.end()) {
        // The whole list is short and shown: no guessing needed.
        p.add(n.source(), path, fmt::format("\"{}\" is not one of {}", *s, fmt::join(choices, ", ")));
        return std::nullopt;
    }
    return s;
}

const toml::array* get_array(const toml::node& n, const std::string& path, P& p) {
    const auto* a = n.as_array();
    if (!a) {
        wrong_type(n, path, "an array", p);
    }
    return a;
}

std::vector<std::uint16_t> get_ports(const toml::node& n, const std::string& path, P& p) {
    std::vector<std::uint16_t> out;
    const auto* a = get_array(n, path, p);
    if (!a) {
        return out;
    }
    for (std::size_t i = 0; i < a->size(); ++i) {
        if (auto port = get_port(*a->get(i), fmt::format("{}[{}]", path, i), p)) {
            out.push_back(*port);
        }
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

// `~` and paths relative to the folder of the file the value was written in.
std::filesystem::path resolve_path(const toml::node& n, const std::string& text) {
    std::filesystem::path p = expand_home(text);
    if (p.is_relative()) {
        std::filesystem::path base;
        if (n.source().path) {
            base = std::filesystem::path(*n.source().path).parent_path();
        }
        p = base / p;
    }
    return p.lexically_normal();
}

// DNS names: labels of letters, digits, '-' and '_', 1..63 each, 253 in all. Lowercased.
bool valid_dns_name(std::string_view name) {
    if (name.empty() || name.size() > 253 || name.front() == '.' || name.back() == '.') {
        return false;
    }
    std::size_t label = 0;
    for (char c : name) {
        if (c == '.') {
            if (label == 0) {
                return false;
            }
            label = 0;
            continue;
        }
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
        if (!ok || ++label > 63) {
            return false;
        }
    }
    return label > 0;
}

std::string lowercase(std::string s) {
    for (auto& c : s) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return s;
}

bool is_ip_literal(const std::string& s) {
    std::array<unsigned char, 16> buf{};
    return ::inet_pton(AF_INET, s.c_str(), buf.data()) == 1 ||
           ::inet_pton(AF_INET6, s.c_str(), buf.data()) == 1;
}

// Why "*.DOMAIN" is refused and what to write instead (broad_wildcard says whether it is).
std::string broad_wildcard_problem(const std::string& pattern, const std::string& domain, const BroadWildcard& b) {
    std::string reason;
    switch (b.reach) {
        case WildcardReach::top_level:
            reason = fmt::format("it allows names owned by anyone under \"{}\"", domain);
            break;
        case WildcardReach::public_suffix:
            reason = fmt::format("\"{}\" is a public suffix, so it allows names owned by anyone under it", b.suffix);
            break;
        case WildcardReach::suffix_children:
            reason = fmt::format("every name directly under \"{}\" is a public suffix, so it allows names owned by anyone",
                                 b.suffix);
            break;
        case WildcardReach::suffix_beneath:
            reason = fmt::format("it takes in the public suffix \"{}\", so it allows names owned by anyone under that",
                                 b.suffix);
            break;
        case WildcardReach::wildcard_dns:
            return fmt::format("\"{}\" is too broad: \"{}\" is a wildcard-DNS service (every name under it resolves "
                               "to the address its labels spell), so the guest would choose the address; name the "
                               "host itself or its address",
                               pattern, b.suffix);
    }
    // The nearest wildcard that would pass ("*.example.github.io", "*.example.x.compute-1...").
    std::string example = domain;
    for (int depth = 0; depth < 3; ++depth) {
        example = "example." + example;
        if (!broad_wildcard(example)) {
            return fmt::format("\"{}\" is too broad: {}; name the domain, as in \"*.{}\"", pattern, reason, example);
        }
    }
    return fmt::format("\"{}\" is too broad: {}; name the hosts themselves", pattern, reason);
}

// A host pattern for an allow rule or a secret: "api.example.com" or "*.example.com".
// Returns the lowercased pattern, or the problem in `why`.
std::optional<std::string> check_host_pattern(std::string text, std::string& why) {
    text = lowercase(text);
    if (text.size() > 1 && text.back() == '.') {
        text.pop_back();
    }
    if (is_ip_literal(text)) {
        why = fmt::format("\"{}\" is an address, not a name; allow it with {{ cidr = \"{}/{}\", ports = [...] }}",
                          text, text, text.find(':') == std::string::npos ? 32 : 128);
        return std::nullopt;
    }
    std::string_view rest = text;
    bool wildcard = false;
    if (rest.rfind("*.", 0) == 0) {
        wildcard = true;
        rest.remove_prefix(2);
    }
    if (rest.find('*') != std::string_view::npos || text == "*") {
        why = fmt::format("\"{}\": a wildcard is only allowed as the first label, as in \"*.example.com\"", text);
        return std::nullopt;
    }
    if (!valid_dns_name(rest)) {
        why = fmt::format("\"{}\" is not a valid host name", text);
        return std::nullopt;
    }
    if (wildcard) {
        std::string domain(rest);
        if (auto broad = broad_wildcard(domain)) {
            why = broad_wildcard_problem(text, domain, *broad);
            return std::nullopt;
        }
    }
    return text;
}

// "10.0.0.0/8", "2001:db8::/32": a network with its host bits zero. Returns it normalised.
std::optional<std::string> check_cidr(const std::string& text, std::string& why) {
    auto slash = text.find('/');
    if (slash == std::string::npos) {
        why = fmt::format("invalid CIDR \"{}\" (write a network with its prefix length, like \"10.1.0.0/16\")", text);
        return std::nullopt;
    }
    std::string addr = text.substr(0, slash);
    std::string len_text = text.substr(slash + 1);
    std::array<unsigned char, 16> buf{};
    int family = addr.find(':') == std::string::npos ? AF_INET : AF_INET6;
    int bits = family == AF_INET ? 32 : 128;
    unsigned prefix = 0;
    auto [ptr, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), prefix);
    if (::inet_pton(family, addr.c_str(), buf.data()) != 1 || len_text.empty() || ec != std::errc() ||
        ptr != len_text.data() + len_text.size() || prefix > static_cast<unsigned>(bits)) {
        why = fmt::format("invalid CIDR \"{}\"", text);
        return std::nullopt;
    }
    if (prefix == 0) {
        why = fmt::format("\"{}\" is every address; use policy = \"open\" if that is what you mean", text);
        return std::nullopt;
    }
    for (int bit = static_cast<int>(prefix); bit < bits; ++bit) {
        if (buf[static_cast<std::size_t>(bit / 8)] & (0x80 >> (bit % 8))) {
            // Show the network the user probably meant.
            for (int b = static_cast<int>(prefix); b < bits; ++b) {
                buf[static_cast<std::size_t>(b / 8)] &= static_cast<unsigned char>(~(0x80 >> (b % 8)));
            }
            std::array<char, INET6_ADDRSTRLEN> out{};
            ::inet_ntop(family, buf.data(), out.data(), out.size());
            why = fmt::format("invalid CIDR \"{}\": host bits are set (did you mean \"{}/{}\"?)", text,
                              out.data(), prefix);
            return std::nullopt;
        }
    }
    std::array<char, INET6_ADDRSTRLEN> out{};
    ::inet_ntop(family, buf.data(), out.data(), out.size());
    return fmt::format("{}/{}", out.data(), prefix);
}

// Reads the keys of one table with `fields`; unknown keys get "did you mean". Returns the
// keys present (for required-key checks).
template <class T>
std::set<std::string> read_fields(const toml::table& t, const std::string& prefix,
                                  const std::vector<Field<T>>& fields, T& out, P& p) {
    std::set<std::string> seen;
    std::vector<std::string> known;
    for (const auto& f : fields) {
        known.emplace_back(f.key);
    }
    for (auto&& [k, v] : t) {
        std::string path = prefix.empty() ? std::string(k.str()) : fmt::format("{}.{}", prefix, k.str());
        auto it = std::find_if(fields.begin(), fields.end(), [&](const Field<T>& f) { return k.str() == f.key; });
        if (it == fields.end()) {
            std::string what = "unknown key";
            if (auto guess = did_you_mean(k.str(), known)) {
                what += fmt::format(" (did you mean \"{}\"?)", *guess);
            }
            p.add(k.source(), path, what);
            continue;
        }
        seen.insert(std::string(k.str()));
        it->read(v, path, out, p);
    }
    return seen;
}

template <class T>
void require(const toml::table& t, const std::string& prefix, const std::set<std::string>& seen,
             std::initializer_list<const char*> keys, P& p) {
    for (const char* key : keys) {
        if (!seen.count(key)) {
            p.add(t.source(), prefix, fmt::format("missing required key \"{}\"", key));
        }
    }
}

// ---- [vm] ----------------------------------------------------------------------------------

void read_size(const toml::node& n, const std::string& path, std::uint64_t& out, P& p,
               std::uint64_t min, std::uint64_t max) {
    auto s = n.value_exact<std::string>();
    if (!s) {
        wrong_type(n, path, "a size string like \"8G\" or \"512M\"", p);
        return;
    }
    auto bytes = parse_size(*s);
    if (!bytes) {
        p.add(n.source(), path, fmt::format("invalid size \"{}\" (use a number with K, M, G or T, like \"8G\")", *s));
        return;
    }
    if (*bytes < min || *bytes > max) {
        p.add(n.source(), path, fmt::format("{} is out of range ({} to {})", *s, format_size(min), format_size(max)));
        return;
    }
    out = *bytes;
}

const std::vector<Field<VmSection>>& vm_fields() {
    static const std::vector<Field<VmSection>> k = {
        {"image", "string", "\"debian-12\"", "the image recipe (`images/NAME.toml`); built on first use",
         [](const toml::node& n, const std::string& path, VmSection& vm, P& p) {
             if (auto s = get_string(n, path, p)) {
                 if (!valid_instance_name(*s)) {
                     p.add(n.source(), path,
                           fmt::format("\"{}\" is not an image recipe name (lowercase letters, digits, - and _)", *s));
                 } else {
                     vm.image = *s;
                 }
             }
         }},
        {"cpus", "integer 1..64", "2", "virtual CPUs",
         [](const toml::node& n, const std::string& path, VmSection& vm, P& p) {
             if (auto v = get_int(n, path, p, 1, 64)) {
                 vm.cpus = static_cast<int>(*v);
             }
         }},
        {"memory", "size 128M..1T", "\"2G\"", "guest memory",
         [](const toml::node& n, const std::string& path, VmSection& vm, P& p) {
             read_size(n, path, vm.memory, p, 128ULL << 20, 1ULL << 40);
         }},
        {"disk", "size 1G..16T", "\"8G\"",
         "virtual size of the VM's own disk (a qcow2 overlay on the shared image; space is used on demand)",
         [](const toml::node& n, const std::string& path, VmSection& vm, P& p) {
             read_size(n, path, vm.disk, p, 1ULL << 30, 16ULL << 40);
         }},
        {"accel", "\"auto\", \"kvm\" or \"tcg\"", "\"auto\"",
         "KVM when usable, else TCG; `SBX_ACCEL` overrides",
         [](const toml::node& n, const std::string& path, VmSection& vm, P& p) {
             if (auto s = get_choice(n, path, p, {"auto", "kvm", "tcg"})) {
                 vm.accel = *s == "kvm" ? Accel::kvm : *s == "tcg" ? Accel::tcg : Accel::automatic;
             }
         }},
    };
    return k;
}

// ---- [ssh] ---------------------------------------------------------------------------------

bool valid_user_name(const std::string& u) {
    if (u.empty() || u.size() > 32 || u == "root" || !((u[0] >= 'a' && u[0] <= 'z') || u[0] == '_')) {
        return false;
    }
    return std::all_of(u.begin(), u.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    });
}

const std::vector<Field<SshSection>>& ssh_fields() {
    static const std::vector<Field<SshSection>> k = {
        {"user", "string", "\"dev\"", "the guest user sbx creates and logs in as (passwordless sudo; not `root`)",
         [](const toml::node& n, const std::string& path, SshSection& ssh, P& p) {
             if (auto s = get_string(n, path, p)) {
                 if (!valid_user_name(*s)) {
                     p.add(n.source(), path,
                           fmt::format("\"{}\" is not a valid user name (lowercase, not root, at most 32 characters)", *s));
                 } else {
                     ssh.user = *s;
                 }
             }
         }},
    };
    return k;
}

// ---- [[share]] -----------------------------------------------------------------------------

// Guest folders a share must not cover: the guest's own system would disappear under it.
bool system_guest_path(const std::string& g) {
    static const std::set<std::string> k_system = {"/",    "/bin", "/boot", "/dev",  "/etc",  "/lib",
                                                   "/lib64", "/proc", "/root", "/run", "/sbin", "/sys",
                                                   "/usr", "/var", "/home", "/tmp"};
    return k_system.count(g) > 0;
}

const std::vector<Field<Share>>& share_fields() {
    static const std::vector<Field<Share>> k = {
        {"host", "path", "", "the host folder to share; `~` and paths relative to the profile's folder work; must exist",
         [](const toml::node& n, const std::string& path, Share& s, P& p) {
             auto text = get_string(n, path, p);
             if (!text) {
                 return;
             }
             if (text->empty()) {
                 p.add(n.source(), path, "is empty");
                 return;
             }
             auto resolved = resolve_path(n, *text);
             std::error_code ec;
             if (!std::filesystem::exists(resolved, ec)) {
                 p.add(n.source(), path, fmt::format("{} does not exist (create it, or fix the path)", resolved.string()));
             } else if (!std::filesystem::is_directory(resolved, ec)) {
                 p.add(n.source(), path, fmt::format("{} is not a folder (shares are folders)", resolved.string()));
             }
             s.host = resolved;
         }},
        {"guest", "absolute path", "", "where the folder appears in the guest; distinct across shares",
         [](const toml::node& n, const std::string& path, Share& s, P& p) {
             auto text = get_string(n, path, p);
             if (!text) {
                 return;
             }
             if (text->empty() || (*text)[0] != '/') {
                 p.add(n.source(), path, fmt::format("\"{}\" is not an absolute guest path (write it like \"/home/dev/src\")", *text));
                 return;
             }
             std::filesystem::path g(*text);
             for (const auto& part : g) {
                 if (part == "..") {
                     p.add(n.source(), path, fmt::format("\"{}\" contains \"..\"", *text));
                     return;
                 }
             }
             std::string norm = g.lexically_normal().string();
             while (norm.size() > 1 && norm.back() == '/') {
                 norm.pop_back();
             }
             if (system_guest_path(norm)) {
                 p.add(n.source(), path, fmt::format("\"{}\" would cover the guest's own system files; share to a folder below it", norm));
                 return;
             }
             s.guest = norm;
         }},
        {"mode", "\"rw\", \"ro\" or \"review\"", "\"rw\"",
         "`ro`: the guest cannot change anything; `review`: the guest works on a copy, `sbx apply` brings changes back",
         [](const toml::node& n, const std::string& path, Share& s, P& p) {
             if (auto m = get_choice(n, path, p, {"rw", "ro", "review"})) {
                 s.mode = *m == "ro" ? ShareMode::ro : *m == "review" ? ShareMode::review : ShareMode::rw;
             }
         }},
        {"type", "\"virtiofs\" or \"9p\"", "\"virtiofs\"", "the transport",
         [](const toml::node& n, const std::string& path, Share& s, P& p) {
             if (auto t = get_choice(n, path, p, {"virtiofs", "9p"})) {
                 s.type = *t == "9p" ? ShareType::ninep : ShareType::virtiofs;
             }
         }},
        {"hide", "array of relative paths", "[]",
         "paths under `host` the guest can never see, read or create (`.git`, `.env`)",
         [](const toml::node& n, const std::string& path, Share& s, P& p) {
             const auto* a = get_array(n, path, p);
             if (!a) {
                 return;
             }
             for (std::size_t i = 0; i < a->size(); ++i) {
                 std::string ipath = fmt::format("{}[{}]", path, i);
                 auto text = get_string(*a->get(i), ipath, p);
                 if (!text) {
                     continue;
                 }
                 std::filesystem::path h(*text);
                 bool dotdot = std::any_of(h.begin(), h.end(), [](const auto& part) { return part == ".."; });
                 if (text->empty() || h.is_absolute() || dotdot || *text == ".") {
                     p.add(a->get(i)->source(), ipath,
                           fmt::format("\"{}\" must be a path relative to the share's host folder, without \"..\"", *text));
                     continue;
                 }
                 s.hide.push_back(h.lexically_normal().string());
             }
         }},
    };
    return k;
}

// ---- [network] -----------------------------------------------------------------------------

std::optional<std::uint8_t> read_protos(const toml::node& n, const std::string& path, P& p) {
    auto one = [&](const toml::node& e, const std::string& epath) -> std::optional<std::uint8_t> {
        auto s = get_choice(e, epath, p, {"tcp", "udp", "icmp"});
        if (!s) {
            return std::nullopt;
        }
        return static_cast<std::uint8_t>(*s == "tcp" ? Proto::tcp : *s == "udp" ? Proto::udp : Proto::icmp);
    };
    if (n.is_array()) {
        const auto* a = n.as_array();
        std::uint8_t bits = 0;
        bool ok = !a->empty();
        if (!ok) {
            p.add(n.source(), path, "is empty (name tcp, udp or icmp)");
        }
        for (std::size_t i = 0; i < a->size(); ++i) {
            auto b = one(*a->get(i), fmt::format("{}[{}]", path, i));
            ok = ok && b.has_value();
            bits = static_cast<std::uint8_t>(bits | b.value_or(0));
        }
        return ok ? std::optional<std::uint8_t>(bits) : std::nullopt;
    }
    return one(n, path);
}

const std::vector<Field<AllowRule>>& allow_fields() {
    static const std::vector<Field<AllowRule>> k = {
        {"host", "host name", "(host or cidr)", "a name (`api.example.com`) or its subdomains (`*.example.com`, not the apex); or use `cidr`",
         [](const toml::node& n, const std::string& path, AllowRule& r, P& p) {
             if (auto s = get_string(n, path, p)) {
                 std::string why;
                 if (auto h = check_host_pattern(*s, why)) {
                     r.host = *h;
                 } else {
                     p.add(n.source(), path, why);
                 }
             }
         }},
        {"cidr", "CIDR", "(host or cidr)", "a network (`140.82.112.0/20`, `2001:db8::/32`) instead of a name",
         [](const toml::node& n, const std::string& path, AllowRule& r, P& p) {
             if (auto s = get_string(n, path, p)) {
                 std::string why;
                 if (auto c = check_cidr(*s, why)) {
                     r.cidr = *c;
                 } else {
                     p.add(n.source(), path, why);
                 }
             }
         }},
        {"ports", "array of ports", "(for tcp, udp)", "the ports allowed; required unless the rule is icmp only",
         [](const toml::node& n, const std::string& path, AllowRule& r, P& p) {
             r.ports = get_ports(n, path, p);
             if (r.ports.empty() && n.is_array()) {
                 p.add(n.source(), path, "is empty (name at least one port)");
             }
         }},
        {"proto", "\"tcp\", \"udp\", \"icmp\" or an array of them", "\"tcp\"", "the protocols allowed",
         [](const toml::node& n, const std::string& path, AllowRule& r, P& p) {
             if (auto b = read_protos(n, path, p)) {
                 r.protos = *b;
             }
         }},
        {"private", "boolean", "false",
         "the name may resolve to a private, loopback or link-local address (a LAN service); otherwise such answers are refused",
         [](const toml::node& n, const std::string& path, AllowRule& r, P& p) {
             if (auto b = get_bool(n, path, p)) {
                 r.allow_private = *b;
             }
         }},
    };
    return k;
}

// "github.com:22,443", "*.example.com:443".
void read_allow_string(const toml::node& n, const std::string& path, NetworkSection& net, P& p) {
    std::string text = *n.value_exact<std::string>();
    AllowRule r;
    r.source = text;
    auto colon = text.rfind(':');
    if (colon == std::string::npos || text.find(':') != colon) {
        std::string why;
        if (text.find(':') != colon || is_ip_literal(text)) {
            p.add(n.source(), path, fmt::format("\"{}\": an address goes in a table: {{ cidr = \"...\", ports = [...] }}", text));
        } else {
            p.add(n.source(), path,
                  fmt::format("\"{}\" has no port; write \"{}:443\" (ports separated by commas)", text, text));
        }
        return;
    }
    std::string why;
    auto host = check_host_pattern(text.substr(0, colon), why);
    if (!host) {
        p.add(n.source(), path, why);
        return;
    }
    r.host = *host;
    std::string_view ports = std::string_view(text).substr(colon + 1);
    if (ports.empty()) {
        p.add(n.source(), path, fmt::format("\"{}\" has no port after the colon", text));
        return;
    }
    while (!ports.empty()) {
        auto comma = ports.find(',');
        auto item = ports.substr(0, comma);
        unsigned value = 0;
        auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
        if (item.empty() || ec != std::errc() || ptr != item.data() + item.size() || value < 1 || value > 65535) {
            p.add(n.source(), path, fmt::format("\"{}\": \"{}\" is not a port (1 to 65535)", text, item));
            return;
        }
        r.ports.push_back(static_cast<std::uint16_t>(value));
        ports = comma == std::string_view::npos ? std::string_view() : ports.substr(comma + 1);
        if (comma != std::string_view::npos && ports.empty()) {
            p.add(n.source(), path, fmt::format("\"{}\" ends with a comma", text));
            return;
        }
    }
    std::sort(r.ports.begin(), r.ports.end());
    r.ports.erase(std::unique(r.ports.begin(), r.ports.end()), r.ports.end());
    net.allow.push_back(std::move(r));
}

void read_allow_table(const toml::table& t, const std::string& path, NetworkSection& net, P& p) {
    AllowRule r;
    auto seen = read_fields(t, path, allow_fields(), r, p);
    bool has_host = seen.count("host") > 0;
    bool has_cidr = seen.count("cidr") > 0;
    if (has_host == has_cidr) {
        p.add(t.source(), path, has_host ? "give either host or cidr, not both" : "missing \"host\" or \"cidr\"");
        return;
    }
    bool icmp_only = r.protos == static_cast<std::uint8_t>(Proto::icmp);
    bool has_ports = seen.count("ports") > 0;
    if (icmp_only && has_ports) {
        p.add(t.source(), path, "icmp has no ports; drop \"ports\" or add proto \"tcp\"/\"udp\"");
        return;
    }
    if (!icmp_only && !has_ports) {
        p.add(t.source(), path, "missing required key \"ports\" (tcp and udp rules name their ports)");
        return;
    }
    if (r.host.empty() && r.cidr.empty()) {
        return;  // the host or cidr itself was wrong; already reported
    }
    std::string protos;
    for (auto [bit, name] : {std::pair{Proto::tcp, "tcp"}, {Proto::udp, "udp"}, {Proto::icmp, "icmp"}}) {
        if (r.protos & static_cast<std::uint8_t>(bit)) {
            protos += protos.empty() ? name : std::string("+") + name;
        }
    }
    std::vector<std::string> port_text;
    for (auto port : r.ports) {
        port_text.push_back(std::to_string(port));
    }
    r.source = fmt::format("{}{}{} {}{}", r.host.empty() ? r.cidr : r.host, r.ports.empty() ? "" : ":",
                           fmt::join(port_text, ","), protos, r.allow_private ? " private" : "");
    net.allow.push_back(std::move(r));
}

bool valid_upstream(const std::string& u, std::string& why) {
    for (const char* scheme : {"socks5h://", "socks5://"}) {
        if (u.rfind(scheme, 0) == 0) {
            std::string rest = u.substr(std::string_view(scheme).size());
            auto colon = rest.rfind(':');
            unsigned port = 0;
            if (colon == std::string::npos || colon == 0) {
                why = fmt::format("\"{}\" needs a host and a port, like \"socks5h://127.0.0.1:9050\"", u);
                return false;
            }
            auto port_text = rest.substr(colon + 1);
            auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
            if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port < 1 || port > 65535) {
                why = fmt::format("\"{}\": \"{}\" is not a port", u, port_text);
                return false;
            }
            return true;
        }
    }
    why = fmt::format("\"{}\" is not a SOCKS5 proxy URL (socks5h://HOST:PORT, or socks5:// to resolve locally)", u);
    return false;
}

const std::vector<Field<NetworkSection>>& network_fields() {
    static const std::vector<Field<NetworkSection>> k = {
        {"policy", "\"allowlist\", \"none\" or \"open\"", "\"allowlist\"",
         "`allowlist`: only what `allow` names; `none`: no network at all; `open`: anywhere except the host "
         "and cloud metadata/link-local space (docs/network.md)",
         [](const toml::node& n, const std::string& path, NetworkSection& net, P& p) {
             if (auto s = get_choice(n, path, p, {"allowlist", "none", "open"})) {
                 net.policy = *s == "none" ? NetPolicy::none : *s == "open" ? NetPolicy::open : NetPolicy::allowlist;
             }
         }},
        {"learn", "boolean", "false", "allow everything and record it; `sbx net suggest NAME` turns the record into `allow` entries",
         [](const toml::node& n, const std::string& path, NetworkSection& net, P& p) {
             if (auto b = get_bool(n, path, p)) {
                 net.learn = *b;
             }
         }},
        {"allow", "array of strings and tables", "[]",
         "destinations the guest may reach: `\"host:port[,port]\"`, `\"*.example.com:443\"`, or tables (keys below)",
         [](const toml::node& n, const std::string& path, NetworkSection& net, P& p) {
             const auto* a = get_array(n, path, p);
             if (!a) {
                 return;
             }
             for (std::size_t i = 0; i < a->size(); ++i) {
                 const auto& e = *a->get(i);
                 std::string ipath = fmt::format("{}[{}]", path, i);
                 if (e.is_string()) {
                     read_allow_string(e, ipath, net, p);
                 } else if (const auto* t = e.as_table()) {
                     read_allow_table(*t, ipath, net, p);
                 } else {
                     wrong_type(e, ipath, "a string like \"example.com:443\" or a table", p);
                 }
             }
         }},
        {"host_ports", "array of ports", "[]",
         "TCP ports of services on the host's own loopback the guest may reach (as 10.0.2.2); none by default",
         [](const toml::node& n, const std::string& path, NetworkSection& net, P& p) {
             net.host_ports = get_ports(n, path, p);
         }},
        {"upstream", "string", "\"\"",
         "send every connection through this SOCKS5 proxy, e.g. `\"socks5h://127.0.0.1:9050\"` (Tor)",
         [](const toml::node& n, const std::string& path, NetworkSection& net, P& p) {
             if (auto s = get_string(n, path, p)) {
                 std::string why;
                 if (!s->empty() && !valid_upstream(*s, why)) {
                     p.add(n.source(), path, why);
                 } else {
                     net.upstream = *s;
                 }
             }
         }},
    };
    return k;
}

// ---- [[forward]] ---------------------------------------------------------------------------

const std::vector<Field<Forward>>& forward_fields() {
    static const std::vector<Field<Forward>> k = {
        {"host", "port", "", "the port on the host's 127.0.0.1",
         [](const toml::node& n, const std::string& path, Forward& f, P& p) {
             if (auto v = get_port(n, path, p)) {
                 f.host = *v;
             }
         }},
        {"guest", "port", "", "the guest port it reaches",
         [](const toml::node& n, const std::string& path, Forward& f, P& p) {
             if (auto v = get_port(n, path, p)) {
                 f.guest = *v;
             }
         }},
        {"proto", "\"tcp\" or \"udp\"", "\"tcp\"", "the protocol",
         [](const toml::node& n, const std::string& path, Forward& f, P& p) {
             if (auto s = get_choice(n, path, p, {"tcp", "udp"})) {
                 f.proto = *s == "udp" ? Proto::udp : Proto::tcp;
             }
         }},
    };
    return k;
}

// ---- [secrets.NAME] ------------------------------------------------------------------------

bool valid_env_name(std::string_view s) {
    if (s.empty() || s.size() > 128 || (s[0] >= '0' && s[0] <= '9')) {
        return false;
    }
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    });
}

const std::vector<Field<Secret>>& secret_fields() {
    static const std::vector<Field<Secret>> k = {
        {"from_env", "string", "(one of three)", "take the value from this host environment variable",
         [](const toml::node& n, const std::string& path, Secret& s, P& p) {
             if (auto v = get_string(n, path, p)) {
                 if (!valid_env_name(*v)) {
                     p.add(n.source(), path, fmt::format("\"{}\" is not an environment variable name", *v));
                 } else {
                     s.from_env = *v;
                 }
             }
         }},
        {"from_file", "path", "(one of three)", "take the value from this host file (first line); `~` and relative paths work",
         [](const toml::node& n, const std::string& path, Secret& s, P& p) {
             if (auto v = get_string(n, path, p)) {
                 if (v->empty()) {
                     p.add(n.source(), path, "is empty");
                 } else {
                     s.from_file = resolve_path(n, *v);
                 }
             }
         }},
        {"from_command", "string", "(one of three)", "take the value from this host command's output (`pass show anthropic`)",
         [](const toml::node& n, const std::string& path, Secret& s, P& p) {
             if (auto v = get_string(n, path, p)) {
                 if (v->empty()) {
                     p.add(n.source(), path, "is empty");
                 } else {
                     s.from_command = *v;
                 }
             }
         }},
        {"hosts", "array of host names", "", "the only hosts the real value is ever sent to (`*.example.com` works)",
         [](const toml::node& n, const std::string& path, Secret& s, P& p) {
             const auto* a = get_array(n, path, p);
             if (!a) {
                 return;
             }
             if (a->empty()) {
                 p.add(n.source(), path, "is empty (name the hosts this secret is for)");
             }
             for (std::size_t i = 0; i < a->size(); ++i) {
                 std::string ipath = fmt::format("{}[{}]", path, i);
                 if (auto h = get_string(*a->get(i), ipath, p)) {
                     std::string why;
                     if (auto ok = check_host_pattern(*h, why)) {
                         s.hosts.push_back(*ok);
                     } else {
                         p.add(a->get(i)->source(), ipath, why);
                     }
                 }
             }
         }},
    };
    return k;
}

// ---- [provision] ---------------------------------------------------------------------------

const std::vector<Field<Provision>>& provision_fields() {
    static const std::vector<Field<Provision>> k = {
        {"run", "array of strings", "[]", "shell command lines run in order, as root, after the first boot",
         [](const toml::node& n, const std::string& path, Provision& prov, P& p) {
             const auto* a = get_array(n, path, p);
             if (!a) {
                 return;
             }
             for (std::size_t i = 0; i < a->size(); ++i) {
                 std::string ipath = fmt::format("{}[{}]", path, i);
                 if (auto s = get_string(*a->get(i), ipath, p)) {
                     if (s->find_first_not_of(" \t\n") == std::string::npos) {
                         p.add(a->get(i)->source(), ipath, "is empty");
                     } else {
                         prov.run.push_back(*s);
                     }
                 }
             }
         }},
        {"script", "path", "\"\"", "a script file on the host, run as root after `run`; `~` and relative paths work",
         [](const toml::node& n, const std::string& path, Provision& prov, P& p) {
             auto s = get_string(n, path, p);
             if (!s || s->empty()) {
                 return;
             }
             auto resolved = resolve_path(n, *s);
             std::error_code ec;
             if (!std::filesystem::is_regular_file(resolved, ec)) {
                 p.add(n.source(), path, fmt::format("{} is not a file", resolved.string()));
                 return;
             }
             prov.script = resolved;
         }},
    };
    return k;
}

// ---- the tree ------------------------------------------------------------------------------

const toml::table* expect_table(const toml::node& n, const std::string& path, const char* shape, P& p) {
    const auto* t = n.as_table();
    if (!t) {
        p.add(n.source(), path, fmt::format("expected a table ({}), found {}", shape, toml_type_name(n)));
    }
    return t;
}

// [[NAME]]: an array of tables.
template <class T>
void read_table_array(const toml::node& n, const std::string& name, const std::vector<Field<T>>& fields,
                      std::initializer_list<const char*> required, std::vector<T>& out, P& p) {
    const auto* a = n.as_array();
    if (!a) {
        p.add(n.source(), name, fmt::format("expected [[{}]] tables, found {}", name, toml_type_name(n)));
        return;
    }
    for (std::size_t i = 0; i < a->size(); ++i) {
        std::string path = fmt::format("{}[{}]", name, i);
        const auto* t = expect_table(*a->get(i), path, ("[[" + name + "]]").c_str(), p);
        if (!t) {
            continue;
        }
        T item;
        auto seen = read_fields(*t, path, fields, item, p);
        require<T>(*t, path, seen, required, p);
        out.push_back(std::move(item));
    }
}

}  // namespace

const std::vector<std::string>& top_level_keys() {
    static const std::vector<std::string> k = {"extends", "vm",      "ssh",     "share",
                                               "network", "forward", "secrets", "provision"};
    return k;
}

void read_profile_tree(const toml::table& root, Profile& prof, TomlProblems& p) {
    for (auto&& [key, node] : root) {
        std::string k(key.str());
        if (k == "extends") {
            continue;  // applied by the loader
        }
        if (k == "vm") {
            if (const auto* t = expect_table(node, k, "[vm]", p)) {
                read_fields(*t, k, vm_fields(), prof.vm, p);
            }
        } else if (k == "ssh") {
            if (const auto* t = expect_table(node, k, "[ssh]", p)) {
                read_fields(*t, k, ssh_fields(), prof.ssh, p);
            }
        } else if (k == "network") {
            if (const auto* t = expect_table(node, k, "[network]", p)) {
                read_fields(*t, k, network_fields(), prof.network, p);
            }
        } else if (k == "provision") {
            if (const auto* t = expect_table(node, k, "[provision]", p)) {
                read_fields(*t, k, provision_fields(), prof.provision, p);
            }
        } else if (k == "share") {
            std::size_t first = prof.shares.size();
            read_table_array(node, k, share_fields(), {"host", "guest"}, prof.shares, p);
            // Guest paths must be distinct and not nested (one share would hide the other).
            const auto* a = node.as_array();
            for (std::size_t i = first; a && i < prof.shares.size(); ++i) {
                const auto& sh = prof.shares[i];
                if (sh.type == ShareType::ninep && !sh.hide.empty() && sh.mode != ShareMode::review) {
                    // QEMU serves 9p straight from the host folder: nothing on the host could
                    // keep the guest out of a hidden path.
                    const auto* ti = a->get(i - first)->as_table();
                    const auto* hnode = ti ? ti->get("hide") : nullptr;
                    p.add(hnode ? hnode->source() : a->get(i - first)->source(), fmt::format("share[{}].hide", i - first),
                          "a 9p share cannot hide paths unless mode = \"review\" (the guest then works on a "
                          "copy without them); use type = \"virtiofs\" or mode = \"review\"");
                }
                for (std::size_t j = first; j < i; ++j) {
                    const auto& gi = prof.shares[i].guest;
                    const auto& gj = prof.shares[j].guest;
                    if (gi.empty() || gj.empty()) {
                        continue;
                    }
                    auto nested = [](const std::string& outer, const std::string& inner) {
                        return inner.size() > outer.size() && inner.compare(0, outer.size(), outer) == 0 &&
                               inner[outer.size()] == '/';
                    };
                    const auto* ti = a->get(i - first)->as_table();
                    const auto* gnode = ti ? ti->get("guest") : nullptr;
                    auto where = gnode ? gnode->source() : a->get(i - first)->source();
                    std::string path = fmt::format("share[{}].guest", i - first);
                    if (gi == gj) {
                        p.add(where, path, fmt::format("\"{}\" is already the guest path of share[{}]", gi, j - first));
                    } else if (nested(gj, gi) || nested(gi, gj)) {
                        p.add(where, path, fmt::format("\"{}\" and share[{}]'s \"{}\" are nested; one would hide the other", gi,
                                                       j - first, gj));
                    }
                }
            }
        } else if (k == "forward") {
            std::size_t first = prof.forwards.size();
            read_table_array(node, k, forward_fields(), {"host", "guest"}, prof.forwards, p);
            const auto* a = node.as_array();
            for (std::size_t i = first; a && i < prof.forwards.size(); ++i) {
                for (std::size_t j = first; j < i; ++j) {
                    const auto& fi = prof.forwards[i];
                    const auto& fj = prof.forwards[j];
                    if (fi.host != 0 && fi.host == fj.host && fi.proto == fj.proto) {
                        const auto* ti = a->get(i - first)->as_table();
                        const auto* hnode = ti ? ti->get("host") : nullptr;
                        p.add(hnode ? hnode->source() : a->get(i - first)->source(),
                              fmt::format("forward[{}].host", i - first),
                              fmt::format("port {} is already forwarded by forward[{}]", fi.host, j - first));
                    }
                }
            }
        } else if (k == "secrets") {
            const auto* t = expect_table(node, k, "[secrets.NAME] tables", p);
            if (!t) {
                continue;
            }
            for (auto&& [sk, sv] : *t) {
                std::string name(sk.str());
                std::string path = fmt::format("secrets.{}", name);
                if (!valid_env_name(name)) {
                    p.add(sk.source(), path,
                          "a secret's name is the environment variable the guest sees: letters, digits and _");
                    continue;
                }
                const auto* st = sv.as_table();
                if (!st) {
                    p.add(sv.source(), path,
                          "secrets are never written in a profile; give a reference: from_env, from_file or from_command");
                    continue;
                }
                if (st->contains("value")) {
                    p.add(st->get("value")->source(), path + ".value",
                          "secrets are never written in a profile; give a reference: from_env, from_file or from_command");
                    continue;
                }
                Secret s;
                s.name = name;
                auto seen = read_fields(*st, path, secret_fields(), s, p);
                int sources = static_cast<int>(seen.count("from_env") + seen.count("from_file") + seen.count("from_command"));
                if (sources != 1) {
                    p.add(st->source(), path,
                          sources == 0 ? "missing the value's source: from_env, from_file or from_command"
                                       : "give exactly one of from_env, from_file and from_command");
                }
                require<Secret>(*st, path, seen, {"hosts"}, p);
                prof.secrets.push_back(std::move(s));
            }
            std::sort(prof.secrets.begin(), prof.secrets.end(),
                      [](const Secret& a, const Secret& b) { return a.name < b.name; });
        } else {
            std::string what = "unknown key";
            if (auto guess = did_you_mean(k, top_level_keys())) {
                what += fmt::format(" (did you mean \"{}\"?)", *guess);
            }
            p.add(key.source(), k, what);
        }
    }
}

}  // namespace detail

namespace {

template <class T>
void document(std::vector<KeyDoc>& out, const char* section, const std::vector<detail::Field<T>>& fields) {
    for (const auto& f : fields) {
        out.push_back({section, f.key, f.type, f.def, f.meaning});
    }
}

}  // namespace

std::vector<KeyDoc> schema_reference() {
    std::vector<KeyDoc> out;
    out.push_back({"", "extends", "profile name or path", "(none)",
                   "inherit another profile: tables merge key by key, arrays replace"});
    document(out, "vm", detail::vm_fields());
    document(out, "ssh", detail::ssh_fields());
    document(out, "share", detail::share_fields());
    document(out, "network", detail::network_fields());
    document(out, "network.allow", detail::allow_fields());
    document(out, "forward", detail::forward_fields());
    document(out, "secrets.NAME", detail::secret_fields());
    document(out, "provision", detail::provision_fields());
    return out;
}

std::vector<std::string> unsupported_features(const Profile& prof) {
    std::vector<std::string> out;
    const auto& net = prof.network;
    if (!net.upstream.empty()) {
        out.push_back("network.upstream: a SOCKS5 upstream");
    }
    if (!prof.secrets.empty()) {
        out.push_back("[secrets]: secret injection");
    }
    return out;
}

}  // namespace sbx::profile
