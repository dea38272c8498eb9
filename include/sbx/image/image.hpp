#pragma once
// Guest images: recipes (images/*.toml), the built image store, and the build itself.
//
// A built image lives in <images_root>/<name>/:
//   disk.qcow2   root filesystem (ext4, label sbxroot), the read-only base of every overlay
//   vmlinuz      kernel, for direct kernel boot
//   initrd.img   initrd
//   image.json   name, recipe fingerprint, build time, sizes

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sbx::image {

struct Recipe {
    std::string name;                  // file stem: images/debian-12.toml -> "debian-12"
    std::filesystem::path file;
    std::string suite;                 // "bookworm"
    std::vector<std::string> packages; // extra packages on top of what every sbx image has
    std::string kernel;                // kernel flavour: "cloud" -> linux-image-cloud-amd64
    std::uint64_t size_bytes = 0;      // root filesystem size
    std::string setup;                 // shell run inside the image at build time (may be empty)

    // Changes whenever anything that affects the built image changes (recipe content
    // and the guest-side files sbx bakes in).
    std::string fingerprint() const;
};

// Parses and validates a recipe. Errors name file:line:col and the key.
Recipe load_recipe(const std::filesystem::path& file);

// Finds images/NAME.toml along paths::search_dirs("images"); nothing if absent.
std::optional<std::filesystem::path> find_recipe(const std::string& name);

// The guest-side files baked into every image: the guest/ folder beside the recipe file.
std::filesystem::path guest_dir(const Recipe& recipe);

struct ImageFiles {
    std::filesystem::path dir;
    std::filesystem::path disk;
    std::filesystem::path kernel;
    std::filesystem::path initrd;
    std::filesystem::path info;
};

ImageFiles image_files(const std::filesystem::path& images_root, const std::string& name);

struct ImageInfo {
    std::string name;
    std::string fingerprint;
    std::string built_at;            // ISO 8601 UTC
    std::uint64_t disk_bytes = 0;    // qcow2 file size on disk
    std::string kernel_package;      // "linux-image-cloud-amd64"; empty for images built before it was kept
};

// The info of a completely built image, or nothing when absent or incomplete.
std::optional<ImageInfo> read_image_info(const ImageFiles& files);

// Progress callback: a step name ("bootstrap", "filesystem", "convert", ...) and a detail line.
using Progress = std::function<void(std::string_view step, std::string_view detail)>;

// Builds the image with mmdebstrap (as root, or --mode=unshare without root), mke2fs -d,
// qemu-img convert. Writes into a temporary folder and renames it into place, so a failed
// or interrupted build never leaves a half image behind. Throws sbx::Error with the tail
// of the failing tool's output.
void build_image(const Recipe& recipe, const std::filesystem::path& images_root,
                 const Progress& progress);

std::vector<ImageInfo> list_images(const std::filesystem::path& images_root);

// Removes a built image; throws when it does not exist.
void remove_image(const std::filesystem::path& images_root, const std::string& name);

// The per-instance seed the guest applies at boot (see images/guest/).
// A shared folder the guest mounts at every boot (docs/shares.md).
struct SeedMount {
    std::string type;        // "virtiofs" or "9p"
    std::string tag;         // the device's tag, "sbx0"
    std::string guest_path;  // absolute
    bool read_only = false;
};

struct Seed {
    std::string id;               // changes when the seed's content changes
    std::string hostname;
    std::string user;
    std::string authorized_key;   // one OpenSSH public key line
    std::string host_key;         // OpenSSH private key (ed25519) the guest's sshd uses
    std::string host_key_pub;     // its public key line
    std::uint32_t uid = 0;        // the user's uid (and group's gid); 0: the guest picks one
    std::vector<SeedMount> mounts;
};

// An id for the seed's content (every field but `id`): the guest re-applies a seed only
// when its id changes.
std::string seed_id(const Seed& seed);

// The seed as a ustar archive, padded to a whole number of 64 KiB (a sane disk size).
// Throws sbx::Error when a field could not be applied safely by the guest (bad user name,
// hostname, a key with a line break, ...).
std::string encode_seed(const Seed& seed);

// Writes encode_seed(seed) atomically with mode 0600 (it holds the guest's private host key).
void write_seed(const std::filesystem::path& path, const Seed& seed);

}  // namespace sbx::image
