// The built-image store: <images_root>/<name>/{disk.qcow2,vmlinuz,initrd.img,image.json}.
// Builds happen in hidden sibling folders (".<name>.build-XXXXXX") and are renamed into
// place, so a folder with a readable image.json is always a complete image.

#include "sbx/image/image.hpp"

#include "sbx/util/error.hpp"
#include "sbx/util/fs.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

namespace sbx::image {

ImageFiles image_files(const std::filesystem::path& images_root, const std::string& name) {
    ImageFiles f;
    f.dir = images_root / name;
    f.disk = f.dir / "disk.qcow2";
    f.kernel = f.dir / "vmlinuz";
    f.initrd = f.dir / "initrd.img";
    f.info = f.dir / "image.json";
    return f;
}

std::optional<ImageInfo> read_image_info(const ImageFiles& files) {
    std::error_code ec;
    for (const auto* p : {&files.info, &files.disk, &files.kernel, &files.initrd}) {
        if (!std::filesystem::is_regular_file(*p, ec)) {
            return std::nullopt;
        }
    }
    try {
        auto j = nlohmann::json::parse(read_file(files.info));
        ImageInfo info;
        info.name = j.at("name").get<std::string>();
        info.fingerprint = j.at("fingerprint").get<std::string>();
        info.built_at = j.at("built_at").get<std::string>();
        info.kernel_package = j.value("kernel_package", "");
        auto size = std::filesystem::file_size(files.disk, ec);
        info.disk_bytes = ec ? j.value("disk_bytes", std::uint64_t{0}) : size;
        return info;
    } catch (const std::exception&) {
        return std::nullopt;  // unreadable or foreign image.json: not a complete image
    }
}

std::vector<ImageInfo> list_images(const std::filesystem::path& images_root) {
    std::vector<ImageInfo> out;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(images_root, ec)) {
        std::string name = entry.path().filename().string();
        if (name.empty() || name[0] == '.' || !entry.is_directory()) {
            continue;
        }
        if (auto info = read_image_info(image_files(images_root, name))) {
            out.push_back(std::move(*info));
        }
    }
    std::sort(out.begin(), out.end(),
              [](const ImageInfo& a, const ImageInfo& b) { return a.name < b.name; });
    return out;
}

void remove_image(const std::filesystem::path& images_root, const std::string& name) {
    std::error_code ec;
    if (name.empty() || name[0] == '.' || name.find('/') != std::string::npos) {
        throw Error(fmt::format("\"{}\" is not an image name", name), {"`sbx image ls` lists the images"},
                    ExitCode::usage);
    }
    auto files = image_files(images_root, name);
    if (!std::filesystem::is_directory(files.dir, ec)) {
        throw Error(fmt::format("no image named {}", name), {"`sbx image ls` lists the images"},
                    ExitCode::not_found);
    }
    // Rename first: the image disappears at once, even if deleting its files takes a while
    // or is interrupted.
    auto doomed = images_root / fmt::format(".{}.removed-{}", name, ::getpid());
    if (::rename(files.dir.c_str(), doomed.c_str()) != 0) {
        throw_errno(fmt::format("cannot remove image {} ({})", name, files.dir.string()), errno);
    }
    std::filesystem::remove_all(doomed, ec);
    if (ec) {
        throw Error(fmt::format("image {} is gone, but {} could not be deleted: {}", name, doomed.string(),
                                ec.message()));
    }
}

}  // namespace sbx::image
