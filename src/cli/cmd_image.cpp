#include "commands.hpp"

#include "sbx/image/image.hpp"
#include "sbx/instance/layout.hpp"
#include "sbx/instance/state.hpp"
#include "sbx/util/console.hpp"
#include "sbx/util/error.hpp"
#include "sbx/util/paths.hpp"
#include "sbx/util/strings.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>

namespace sbx::cli {

namespace {

void build(const std::string& name_or_file) {
    std::filesystem::path file;
    if (name_or_file.find('/') != std::string::npos || name_or_file.ends_with(".toml")) {
        file = name_or_file;
    } else if (auto found = image::find_recipe(name_or_file)) {
        file = *found;
    } else {
        throw Error(fmt::format("no image recipe named {}", name_or_file),
                    {fmt::format("looked for {}.toml in: {}", name_or_file, paths::search_dirs_text("images"))},
                    ExitCode::not_found);
    }
    auto recipe = image::load_recipe(file);
    auto t0 = std::chrono::steady_clock::now();
    auto elapsed = [&] {
        return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    };
    fmt::print("Building image {} from {}\n", console::bold(recipe.name), file.string());
    std::string last;
    bool tty = console::is_tty(stdout);
    image::build_image(recipe, paths::images_root(), [&](std::string_view step, std::string_view detail) {
        if (step != last) {
            if (tty && !last.empty()) {
                fmt::print("\r\x1b[K");
            }
            last = std::string(step);
            console::step(step, detail, elapsed());
        } else if (tty) {
            std::string d(detail.substr(0, 70));
            fmt::print("\r\x1b[K    {}", d);
            std::fflush(stdout);
        }
    });
    if (tty) {
        fmt::print("\r\x1b[K");
    }
    auto info = image::read_image_info(image::image_files(paths::images_root(), recipe.name));
    fmt::print("{} image {} built in {} ({})\n", console::green("✓"), recipe.name, format_duration_ms(elapsed()),
               info ? format_size(info->disk_bytes) : std::string("?"));
}

}  // namespace

void add_image(CLI::App& app, int& exit_code) {
    auto* cmd = app.add_subcommand("image", "Build, list and remove guest images");
    cmd->require_subcommand(1);

    auto* b = cmd->add_subcommand("build", "Build an image from a recipe (images/NAME.toml)");
    auto recipe = std::make_shared<std::string>();
    b->add_option("RECIPE", *recipe, "recipe name or .toml file")->required();
    b->callback([recipe, &exit_code] {
        build(*recipe);
        exit_code = 0;
    });

    auto* ls = cmd->add_subcommand("ls", "List built images");
    auto json = std::make_shared<bool>(false);
    ls->add_flag("--json", *json, "machine-readable output");
    ls->callback([json, &exit_code] {
        auto images = image::list_images(paths::images_root());
        if (*json) {
            nlohmann::json arr = nlohmann::json::array();
            for (const auto& i : images) {
                arr.push_back({{"name", i.name}, {"fingerprint", i.fingerprint}, {"built_at", i.built_at},
                               {"disk_bytes", i.disk_bytes}});
            }
            fmt::print("{}\n", arr.dump(2));
        } else if (images.empty()) {
            fmt::print("no images built yet; `sbx image build debian-12` builds the default one\n");
        } else {
            fmt::print("{:<20} {:<22} {:>8}\n", "NAME", "BUILT", "SIZE");
            for (const auto& i : images) {
                fmt::print("{:<20} {:<22} {:>8}\n", i.name, i.built_at, format_size(i.disk_bytes));
            }
        }
        exit_code = 0;
    });

    auto* rm = cmd->add_subcommand("rm", "Remove a built image (VMs created from it need it: remove them first)");
    auto name = std::make_shared<std::string>();
    auto force = std::make_shared<bool>(false);
    rm->add_option("NAME", *name, "image name")->required();
    rm->add_flag("--force,-f", *force, "remove it even though instances' disks are built on it");
    rm->callback([name, force, &exit_code] {
        // Each VM's disk is an overlay on the image: removing the image breaks those disks.
        std::vector<std::string> users;
        for (const auto& vm_name : instance::list_instance_names(paths::vms_root())) {
            instance::InstanceLayout layout(paths::vms_root(), vm_name);
            std::error_code ec;
            try {
                if (instance::read_state(layout).image == *name && std::filesystem::exists(layout.disk(), ec)) {
                    users.push_back(vm_name);
                }
            } catch (const Error&) {
            }
        }
        if (!users.empty() && !*force) {
            throw Error(fmt::format("image {} is the base of the disks of: {}", *name, fmt::join(users, ", ")),
                        {fmt::format("remove those instances first (sbx rm NAME), or use sbx image rm --force {}",
                                     *name)});
        }
        image::remove_image(paths::images_root(), *name);
        fmt::print("removed image {}\n", *name);
        exit_code = 0;
    });
}

}  // namespace sbx::cli
