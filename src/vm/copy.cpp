#include "sbx/vm/copy.hpp"

#include "sbx/ssh/sftp.hpp"
#include "sbx/util/console.hpp"
#include "sbx/util/error.hpp"
#include "sbx/util/strings.hpp"
#include "sbx/vm/control.hpp"

namespace sbx::vm {

CopyEndpoint parse_copy_endpoint(const std::string& arg) {
    auto colon = arg.find(':');
    if (colon == std::string::npos || colon == 0) {
        return {"", arg};
    }
    std::string name = arg.substr(0, colon);
    if (name.find('/') != std::string::npos || !valid_instance_name(name)) {
        return {"", arg};
    }
    return {name, arg.substr(colon + 1)};
}

CopyRequest parse_copy_args(const std::vector<std::string>& args) {
    const std::vector<std::string> usage_hints = {
        "usage: sbx cp [-r] SRC... DST, with NAME:PATH on exactly one side",
        "e.g. sbx cp notes.txt work:/tmp/  or  sbx cp -r work:project ./project-copy"};
    if (args.size() < 2) {
        throw Error("sbx cp needs at least one source and a destination", usage_hints, ExitCode::usage);
    }
    std::vector<CopyEndpoint> eps;
    for (const auto& a : args) {
        if (a.empty()) {
            throw Error("sbx cp: an empty path", usage_hints, ExitCode::usage);
        }
        eps.push_back(parse_copy_endpoint(a));
    }
    CopyRequest req;
    const CopyEndpoint& dst = eps.back();
    req.to_guest = !dst.instance.empty();
    req.destination = dst.path;
    req.instance = dst.instance;
    for (std::size_t i = 0; i + 1 < eps.size(); ++i) {
        const auto& e = eps[i];
        bool guest = !e.instance.empty();
        if (req.to_guest && guest) {
            throw Error(fmt::format("sbx cp copies between the host and a guest, not from {} to {}", args[i],
                                    args.back()),
                        {"copy through the host: first to a host folder, then on"}, ExitCode::usage);
        }
        if (!req.to_guest && !guest) {
            throw Error(fmt::format("neither {} nor {} is a guest path", args[i], args.back()),
                        {"write guest paths as NAME:PATH (work:/tmp/x); for host-only copies use cp"},
                        ExitCode::usage);
        }
        if (!req.to_guest) {
            if (!req.instance.empty() && req.instance != e.instance) {
                throw Error(fmt::format("sources come from two instances, {} and {}", req.instance, e.instance),
                            {"copy from one instance at a time"}, ExitCode::usage);
            }
            req.instance = e.instance;
        }
        req.sources.push_back(e.path);
    }
    return req;
}

void copy(const std::vector<std::string>& args, const CopyCommandOptions& options) {
    auto req = parse_copy_args(args);
    auto target = ssh_target(req.instance);
    ssh::CopyOptions copt;
    copt.recursive = options.recursive;
    copt.progress = console::is_tty(stderr);
    copt.guest_label = req.instance;
    if (req.to_guest) {
        std::vector<std::filesystem::path> sources(req.sources.begin(), req.sources.end());
        ssh::copy_to_guest(target, sources, req.destination, copt);
    } else {
        ssh::copy_from_guest(target, req.sources, req.destination, copt);
    }
}

}  // namespace sbx::vm
