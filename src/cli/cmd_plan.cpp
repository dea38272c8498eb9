#include "commands.hpp"

#include "sbx/host/accel.hpp"
#include "sbx/image/image.hpp"
#include "sbx/instance/state.hpp"
#include "sbx/plan/launch_plan.hpp"
#include "sbx/profile/profile.hpp"
#include "sbx/util/paths.hpp"

#include <fmt/format.h>

namespace sbx::cli {

void add_plan(CLI::App& app, int& exit_code) {
    auto* cmd = app.add_subcommand("plan", "Print the exact commands sbx would run for a profile, without running them");
    auto name = std::make_shared<std::string>();
    cmd->add_option("NAME", *name, "profile name (or path to a .toml profile)")->required();
    cmd->callback([name, &exit_code] {
        auto prof = profile::load_profile(*name);
        const char* env_accel = std::getenv("SBX_ACCEL");
        auto facts = host::probe_host_facts();
        auto accel = host::choose_accel(facts, prof.vm.accel,
                                        env_accel ? std::optional<std::string>(env_accel) : std::nullopt);
        instance::InstanceLayout layout(paths::vms_root(), prof.name);
        int port = 0;
        auto st = instance::read_state(layout);
        if (instance::effective_status(layout, st) == "running") {
            port = st.ssh_port;
        }
        auto p = plan::make_launch_plan(
            {prof, accel, layout, image::image_files(paths::images_root(), prof.vm.image), port, facts.tsc_khz});
        fmt::print("# profile: {}\n# {}\n", prof.file.string(), accel.reason);
        if (port == 0) {
            fmt::print("# the ssh port (0 below) is picked when the VM starts\n");
        }
        fmt::print("{}", plan::render(p));
        exit_code = 0;
    });
}

}  // namespace sbx::cli
