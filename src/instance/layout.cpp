#include "sbx/instance/layout.hpp"

#include "sbx/util/error.hpp"
#include "sbx/util/strings.hpp"

#include <algorithm>

namespace sbx::instance {

InstanceLayout::InstanceLayout(std::filesystem::path vms_root, std::string name)
    : m_name(std::move(name)), m_dir(std::move(vms_root) / m_name) {
    if (!valid_instance_name(m_name)) {
        throw Error(fmt::format("\"{}\" is not a valid instance name", m_name),
                    {"names use lowercase letters, digits, - and _ (at most 32)"}, ExitCode::usage);
    }
}

void InstanceLayout::check_socket_paths() const {
    for (const auto& path : {qmp_socket(), net_socket()}) {
        auto sock = path.string();
        if (sock.size() > k_max_socket_path) {
            throw Error(fmt::format("socket path {} is {} bytes, over the {}-byte limit of unix sockets",
                                    sock, sock.size(), k_max_socket_path),
                        {"set SBX_HOME (or XDG_STATE_HOME) to a shorter folder"});
        }
    }
}

std::vector<std::string> list_instance_names(const std::filesystem::path& vms_root) {
    std::vector<std::string> names;
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator(vms_root, ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
        auto n = it->path().filename().string();
        if (it->is_directory(ec) && valid_instance_name(n)) {
            names.push_back(n);
        }
    }
    std::sort(names.begin(), names.end());
    return names;
}

}  // namespace sbx::instance
