#pragma once
// `sbx diff`, `sbx review` and `sbx apply` as library functions (the CLI files only parse
// options). They find the instance's review-mode shares (profile share n with mode review
// lives in InstanceLayout::share_dir(n)), and print to `out`; review reads answers from
// `in` one line at a time (a pipe works; end of input quits without applying anything).

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "sbx/instance/layout.hpp"
#include "sbx/profile/profile.hpp"
#include "sbx/share/apply.hpp"

namespace sbx::share {

struct ReviewShare {
    std::size_t index = 0;  // in the profile's [[share]] list
    profile::Share share;
    instance::ShareLayout layout;
};

// The review-mode shares of the profile's instance. Throws sbx::Error: not_found when the
// instance folder does not exist; failure (naming the profile) when it has no review share.
std::vector<ReviewShare> review_shares(const profile::Profile& prof, const std::filesystem::path& vms_root);

struct DiffCommand {
    bool stat = false;
    std::vector<std::string> paths;  // relative to a share root, or absolute host/guest paths
    bool color = false;
};

// Prints the diff (or --stat) of every prepared review share. Throws when no share was
// ever prepared, or a PATH matches no change.
void run_diff(const profile::Profile& prof, const std::filesystem::path& vms_root, const DiffCommand& cmd,
              std::FILE* out);

struct ApplyCommand {
    std::vector<std::string> paths;
    ApplyOptions options;
    bool color = false;
};

// Applies the changes, printing one line per change and a summary. Throws sbx::Error
// (naming the refused paths, with hints) when any change was refused.
void run_apply(const profile::Profile& prof, const std::filesystem::path& vms_root, const ApplyCommand& cmd,
               std::FILE* out);

struct ReviewCommand {
    bool color = false;
};

// Walks the changes one by one ([a]ccept [s]kip [d]iff [q]uit), asks about deletions,
// conflicts and outside symlinks of accepted changes, then applies the accepted ones
// ("q" stops asking and applies what was accepted; end of input applies nothing).
// Throws like run_apply when an accepted change is refused.
void run_review(const profile::Profile& prof, const std::filesystem::path& vms_root, const ReviewCommand& cmd,
                std::FILE* in, std::FILE* out);

}  // namespace sbx::share
