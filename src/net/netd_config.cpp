#include "sbx/net/netd_config.hpp"

#include "sbx/util/error.hpp"
#include "sbx/util/fs.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <initializer_list>
#include <limits>

namespace sbx::net {

using nlohmann::json;

namespace {

[[noreturn]] void bad(const std::string& key, const std::string& what) {
    throw Error(fmt::format("netd config: {}: {}", key, what),
                {"netd.json is written by the sbx supervisor; rerun `sbx up` to rewrite it"},
                ExitCode::config);
}

std::string join_key(const std::string& parent, const std::string& child) {
    return parent.empty() ? child : parent + "." + child;
}

void check_keys(const json& obj, const std::string& where, std::initializer_list<const char*> known) {
    if (!obj.is_object()) {
        bad(where.empty() ? "(top)" : where, "expected an object");
    }
    for (const auto& [k, v] : obj.items()) {
        bool ok = std::any_of(known.begin(), known.end(), [&](const char* n) { return k == n; });
        if (!ok) {
            bad(join_key(where, k), "unknown key");
        }
    }
}

const json* find(const json& obj, const char* key) {
    auto it = obj.find(key);
    return it == obj.end() ? nullptr : &*it;
}

std::string get_string(const json& obj, const std::string& where, const char* key, std::string fallback) {
    const json* v = find(obj, key);
    if (!v) {
        return fallback;
    }
    if (!v->is_string()) {
        bad(join_key(where, key), "expected a string");
    }
    return v->get<std::string>();
}

bool get_bool(const json& obj, const std::string& where, const char* key, bool fallback) {
    const json* v = find(obj, key);
    if (!v) {
        return fallback;
    }
    if (!v->is_boolean()) {
        bad(join_key(where, key), "expected true or false");
    }
    return v->get<bool>();
}

std::uint64_t unsigned_value(const json& v, const std::string& key, std::uint64_t max) {
    if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<std::int64_t>() >= 0)) {
        bad(key, "expected a non-negative integer");
    }
    auto n = v.get<std::uint64_t>();
    if (n > max) {
        bad(key, fmt::format("{} is over the limit {}", n, max));
    }
    return n;
}

template <typename T>
T get_unsigned(const json& obj, const std::string& where, const char* key, T fallback,
               std::uint64_t max = std::numeric_limits<T>::max()) {
    const json* v = find(obj, key);
    if (!v) {
        return fallback;
    }
    return static_cast<T>(unsigned_value(*v, join_key(where, key), max));
}

std::uint16_t port_value(const json& v, const std::string& key) {
    auto n = unsigned_value(v, key, 65535);
    if (n == 0) {
        bad(key, "port 0 is not a port");
    }
    return static_cast<std::uint16_t>(n);
}

std::vector<std::uint16_t> get_ports(const json& obj, const std::string& where, const char* key) {
    std::vector<std::uint16_t> out;
    const json* v = find(obj, key);
    if (!v) {
        return out;
    }
    std::string k = join_key(where, key);
    if (!v->is_array()) {
        bad(k, "expected an array of ports");
    }
    for (std::size_t i = 0; i < v->size(); ++i) {
        out.push_back(port_value((*v)[i], fmt::format("{}[{}]", k, i)));
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

IpAddr get_addr(const json& obj, const std::string& where, const char* key, IpAddr fallback) {
    const json* v = find(obj, key);
    if (!v) {
        return fallback;
    }
    std::string k = join_key(where, key);
    if (!v->is_string()) {
        bad(k, "expected an IP address string");
    }
    auto a = IpAddr::parse(v->get<std::string>());
    if (!a) {
        bad(k, fmt::format("invalid IP address \"{}\"", v->get<std::string>()));
    }
    return *a;
}

Proto proto_from(const std::string& s, const std::string& key) {
    if (s == "tcp") {
        return Proto::tcp;
    }
    if (s == "udp") {
        return Proto::udp;
    }
    if (s == "icmp") {
        return Proto::icmp;
    }
    bad(key, fmt::format("unknown protocol \"{}\" (tcp, udp or icmp)", s));
}

json protos_to_json(std::uint8_t bits) {
    json arr = json::array();
    for (Proto p : {Proto::tcp, Proto::udp, Proto::icmp}) {
        if (bits & static_cast<std::uint8_t>(p)) {
            arr.push_back(std::string(to_string(p)));
        }
    }
    return arr;
}

std::string_view mode_name(Mode m) {
    switch (m) {
        case Mode::allowlist:
            return "allowlist";
        case Mode::none:
            return "none";
        case Mode::open:
            return "open";
    }
    return "allowlist";
}

json rule_to_json(const Rule& r) {
    json j;
    switch (r.kind) {
        case Rule::Kind::name:
            j["kind"] = "name";
            j["name"] = r.name;
            break;
        case Rule::Kind::suffix:
            j["kind"] = "suffix";
            j["name"] = r.name;
            break;
        case Rule::Kind::cidr:
            j["kind"] = "cidr";
            j["cidr"] = r.cidr.to_string();
            break;
    }
    j["ports"] = r.ports;
    j["protos"] = protos_to_json(r.protos);
    j["private"] = r.allow_private;
    j["source"] = r.source;
    return j;
}

Rule rule_from_json(const json& j, const std::string& where) {
    check_keys(j, where, {"kind", "name", "cidr", "ports", "protos", "private", "source"});
    Rule r;
    std::string kind = get_string(j, where, "kind", "");
    if (kind == "name" || kind == "suffix") {
        r.kind = kind == "name" ? Rule::Kind::name : Rule::Kind::suffix;
        r.name = get_string(j, where, "name", "");
        if (r.name.empty() || r.name.size() > 253) {
            bad(join_key(where, "name"), "expected a host name of 1 to 253 characters");
        }
        std::transform(r.name.begin(), r.name.end(), r.name.begin(),
                       [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; });
    } else if (kind == "cidr") {
        r.kind = Rule::Kind::cidr;
        std::string text = get_string(j, where, "cidr", "");
        auto c = Cidr::parse(text);
        if (!c) {
            bad(join_key(where, "cidr"), fmt::format("invalid CIDR \"{}\"", text));
        }
        r.cidr = *c;
    } else {
        bad(join_key(where, "kind"),
            fmt::format("expected \"name\", \"suffix\" or \"cidr\", not \"{}\"", kind));
    }
    r.ports = get_ports(j, where, "ports");
    if (const json* p = find(j, "protos")) {
        std::string k = join_key(where, "protos");
        if (!p->is_array() || p->empty()) {
            bad(k, "expected a non-empty array of \"tcp\", \"udp\", \"icmp\"");
        }
        r.protos = 0;
        for (std::size_t i = 0; i < p->size(); ++i) {
            const auto& e = (*p)[i];
            std::string ek = fmt::format("{}[{}]", k, i);
            if (!e.is_string()) {
                bad(ek, "expected a string");
            }
            r.protos = static_cast<std::uint8_t>(
                r.protos | static_cast<std::uint8_t>(proto_from(e.get<std::string>(), ek)));
        }
    }
    if (r.ports.empty() && (r.protos & static_cast<std::uint8_t>(Proto::icmp)) != r.protos) {
        bad(join_key(where, "ports"), "a tcp or udp rule needs at least one port");
    }
    r.allow_private = get_bool(j, where, "private", false);
    r.source = get_string(j, where, "source", "");
    return r;
}

}  // namespace

json to_json(const NetdConfig& c) {
    json j;
    j["socket"] = c.socket.string();
    j["decision_log"] = c.decision_log.string();
    j["stats"] = c.stats.string();
    j["denied"] = c.denied.string();
    j["resolv_conf"] = c.resolv_conf.string();

    json policy;
    policy["mode"] = std::string(mode_name(c.policy.mode));
    policy["learn"] = c.policy.learn;
    policy["host_ports"] = c.policy.host_ports;
    json rules = json::array();
    for (const auto& r : c.policy.rules) {
        rules.push_back(rule_to_json(r));
    }
    policy["rules"] = rules;
    j["policy"] = policy;

    const auto& g = c.guest;
    j["guest"] = {{"guest", g.guest.to_string()},
                  {"host", g.host.to_string()},
                  {"dns", g.dns.to_string()},
                  {"network", g.network.to_string()},
                  {"guest6_prefix", g.guest6_prefix.to_string()},
                  {"host6", g.host6.to_string()},
                  {"dns6", g.dns6.to_string()},
                  {"mtu", g.mtu}};

    json fwds = json::array();
    for (const auto& f : c.forwards) {
        fwds.push_back({{"host_port", f.host_port},
                        {"guest_port", f.guest_port},
                        {"proto", std::string(to_string(f.proto))}});
    }
    j["forwards"] = fwds;

    const auto& l = c.limits;
    j["limits"] = {{"flows", l.flows},
                   {"pins", l.pins},
                   {"pending_dns", l.pending_dns},
                   {"dns_per_second", l.dns_per_second},
                   {"min_ttl_s", l.min_ttl_s},
                   {"max_ttl_s", l.max_ttl_s},
                   {"decisions", l.decisions}};
    return j;
}

NetdConfig netd_config_from_json(const json& j) {
    check_keys(j, "",
               {"socket", "decision_log", "stats", "denied", "resolv_conf", "policy", "guest", "forwards", "limits"});
    NetdConfig c;
    c.socket = get_string(j, "", "socket", "");
    if (c.socket.empty()) {
        bad("socket", "missing: the path of the stream socket QEMU connects to");
    }
    if (c.socket.string().size() > 107) {
        bad("socket",
            fmt::format("{} is longer than the 107 bytes a unix socket path may have", c.socket.string()));
    }
    c.decision_log = get_string(j, "", "decision_log", "");
    c.stats = get_string(j, "", "stats", "");
    c.denied = get_string(j, "", "denied", "");
    c.resolv_conf = get_string(j, "", "resolv_conf", c.resolv_conf.string());

    if (const json* p = find(j, "policy")) {
        check_keys(*p, "policy", {"mode", "learn", "host_ports", "rules"});
        std::string mode = get_string(*p, "policy", "mode", "allowlist");
        if (mode == "allowlist") {
            c.policy.mode = Mode::allowlist;
        } else if (mode == "none") {
            c.policy.mode = Mode::none;
        } else if (mode == "open") {
            c.policy.mode = Mode::open;
        } else {
            bad("policy.mode", fmt::format("expected \"allowlist\", \"none\" or \"open\", not \"{}\"", mode));
        }
        c.policy.learn = get_bool(*p, "policy", "learn", false);
        c.policy.host_ports = get_ports(*p, "policy", "host_ports");
        if (const json* rules = find(*p, "rules")) {
            if (!rules->is_array()) {
                bad("policy.rules", "expected an array");
            }
            for (std::size_t i = 0; i < rules->size(); ++i) {
                c.policy.rules.push_back(rule_from_json((*rules)[i], fmt::format("policy.rules[{}]", i)));
            }
        }
    }

    if (const json* g = find(j, "guest")) {
        check_keys(*g, "guest", {"guest", "host", "dns", "network", "guest6_prefix", "host6", "dns6", "mtu"});
        auto& n = c.guest;
        n.guest = get_addr(*g, "guest", "guest", n.guest);
        n.host = get_addr(*g, "guest", "host", n.host);
        n.dns = get_addr(*g, "guest", "dns", n.dns);
        if (const json* net = find(*g, "network")) {
            auto cidr = net->is_string() ? Cidr::parse(net->get<std::string>()) : std::nullopt;
            if (!cidr) {
                bad("guest.network", "expected a CIDR like \"10.0.2.0/24\"");
            }
            n.network = *cidr;
        }
        n.guest6_prefix = get_addr(*g, "guest", "guest6_prefix", n.guest6_prefix);
        n.host6 = get_addr(*g, "guest", "host6", n.host6);
        n.dns6 = get_addr(*g, "guest", "dns6", n.dns6);
        n.mtu = get_unsigned<std::uint32_t>(*g, "guest", "mtu", n.mtu, 65521);
        if (n.mtu < 1280) {
            bad("guest.mtu", fmt::format("{} is below 1280, the IPv6 minimum", n.mtu));
        }
        if (!n.guest.is_v4() || !n.host.is_v4() || !n.dns.is_v4() || !n.network.base.is_v4()) {
            bad("guest", "guest, host, dns and network must be IPv4");
        }
        if (!n.network.contains(n.guest) || !n.network.contains(n.host) || !n.network.contains(n.dns)) {
            bad("guest.network", "guest, host and dns must lie inside the guest network");
        }
    }

    if (const json* f = find(j, "forwards")) {
        if (!f->is_array()) {
            bad("forwards", "expected an array");
        }
        for (std::size_t i = 0; i < f->size(); ++i) {
            std::string where = fmt::format("forwards[{}]", i);
            const auto& e = (*f)[i];
            check_keys(e, where, {"host_port", "guest_port", "proto"});
            HostForward fw;
            const json* hp = find(e, "host_port");
            const json* gp = find(e, "guest_port");
            if (!hp || !gp) {
                bad(where, "needs host_port and guest_port");
            }
            fw.host_port = port_value(*hp, where + ".host_port");
            fw.guest_port = port_value(*gp, where + ".guest_port");
            fw.proto = proto_from(get_string(e, where, "proto", "tcp"), where + ".proto");
            if (fw.proto == Proto::icmp) {
                bad(where + ".proto", "a forward is tcp or udp");
            }
            for (const auto& other : c.forwards) {
                if (other.host_port == fw.host_port && other.proto == fw.proto) {
                    bad(where + ".host_port", fmt::format("host port {} is forwarded twice", fw.host_port));
                }
            }
            c.forwards.push_back(fw);
        }
    }

    if (const json* l = find(j, "limits")) {
        check_keys(*l, "limits",
                   {"flows", "pins", "pending_dns", "dns_per_second", "min_ttl_s", "max_ttl_s", "decisions"});
        auto& m = c.limits;
        // Upper bounds keep a corrupt file from asking for gigabytes of tables.
        m.flows = get_unsigned<std::size_t>(*l, "limits", "flows", m.flows, 1u << 20);
        m.pins = get_unsigned<std::size_t>(*l, "limits", "pins", m.pins, 1u << 20);
        m.pending_dns = get_unsigned<std::size_t>(*l, "limits", "pending_dns", m.pending_dns, 4096);
        m.dns_per_second =
            get_unsigned<std::uint32_t>(*l, "limits", "dns_per_second", m.dns_per_second, 100000);
        m.min_ttl_s = get_unsigned<std::uint32_t>(*l, "limits", "min_ttl_s", m.min_ttl_s, 86400);
        m.max_ttl_s = get_unsigned<std::uint32_t>(*l, "limits", "max_ttl_s", m.max_ttl_s, 7 * 86400);
        m.decisions = get_unsigned<std::size_t>(*l, "limits", "decisions", m.decisions, 1u << 16);
        if (m.flows == 0 || m.pins == 0 || m.pending_dns == 0 || m.decisions == 0) {
            bad("limits", "table sizes must be at least 1");
        }
        if (m.min_ttl_s > m.max_ttl_s) {
            bad("limits.min_ttl_s", "is above limits.max_ttl_s");
        }
    }
    return c;
}

NetdConfig read_netd_config(const std::filesystem::path& path) {
    std::string text = read_file(path);
    json j;
    try {
        j = json::parse(text);
    } catch (const json::exception& e) {
        throw Error(fmt::format("{}: not valid JSON: {}", path.string(), e.what()), {}, ExitCode::config);
    }
    try {
        return netd_config_from_json(j);
    } catch (const Error& e) {
        throw Error(fmt::format("{}: {}", path.string(), e.what()), e.hints(), e.code());
    }
}

void write_netd_config(const std::filesystem::path& path, const NetdConfig& config) {
    write_file_atomic(path, to_json(config).dump(2) + "\n");
}

}  // namespace sbx::net
