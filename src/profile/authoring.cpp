#include "sbx/profile/authoring.hpp"

#include "sbx/util/console.hpp"
#include "sbx/util/error.hpp"
#include "sbx/util/fs.hpp"
#include "sbx/util/paths.hpp"
#include "sbx/util/strings.hpp"

#include <fmt/format.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

namespace sbx::profile {

namespace {

std::string summary(const Profile& p) {
    std::vector<std::string> parts;
    parts.push_back(fmt::format("vm {}, {} cpu{}, {} memory, {} disk", p.vm.image, p.vm.cpus, p.vm.cpus == 1 ? "" : "s",
                                format_size(p.vm.memory), format_size(p.vm.disk)));
    std::string net = "network " + to_string(p.network.policy);
    if (p.network.policy == NetPolicy::allowlist) {
        net += fmt::format(" ({} rule{})", p.network.allow.size(), p.network.allow.size() == 1 ? "" : "s");
    }
    if (p.network.learn) {
        net += ", learning";
    }
    parts.push_back(net);
    auto count = [](std::size_t n, const char* what) {
        return fmt::format("{} {}{}", n, what, n == 1 ? "" : "s");
    };
    if (!p.shares.empty()) {
        parts.push_back(count(p.shares.size(), "share"));
    }
    if (!p.forwards.empty()) {
        parts.push_back(count(p.forwards.size(), "forward"));
    }
    if (!p.secrets.empty()) {
        parts.push_back(count(p.secrets.size(), "secret"));
    }
    if (!p.provision.empty()) {
        parts.push_back(count(p.provision.run.size() + (p.provision.script.empty() ? 0 : 1), "provision step"));
    }
    return fmt::format("{}", fmt::join(parts, "; "));
}

void print_valid(const Profile& p) {
    fmt::print("{} {}: {}\n", console::green("✓"), console::bold(p.name), p.file.string());
    for (const auto& parent : p.parents) {
        fmt::print("    extends {}\n", parent.string());
    }
    fmt::print("    {}\n", summary(p));
    auto missing = unsupported_features(p);
    if (!missing.empty()) {
        fmt::print("    note: `sbx up` refuses it with this build: {}\n", fmt::join(missing, "; "));
    }
}

void print_problems(const std::string& name, const Error& e) {
    fmt::print(stderr, "{} {}:\n{}\n", console::red("✗", stderr), name, e.what());
}

bool writable_dir(const std::filesystem::path& dir) { return ::access(dir.c_str(), W_OK) == 0; }

}  // namespace

int check_profiles(const std::optional<std::string>& name_or_path) {
    std::vector<std::filesystem::path> files;
    if (name_or_path) {
        files.push_back(find_profile(*name_or_path));
    } else {
        for (const auto& n : list_profile_names()) {
            files.push_back(find_profile(n));
        }
        if (files.empty()) {
            throw Error("no profiles found", {fmt::format("looked in: {}", paths::search_dirs_text("profiles")),
                                              "sbx new NAME creates one"},
                        ExitCode::not_found);
        }
    }
    int bad = 0;
    for (const auto& f : files) {
        try {
            print_valid(load_profile_file(f));
        } catch (const Error& e) {
            if (e.code() != ExitCode::config) {
                throw;
            }
            print_problems(f.stem().string(), e);
            ++bad;
        }
    }
    if (files.size() > 1) {
        fmt::print("{} profile{} checked, {} invalid\n", files.size(), files.size() == 1 ? "" : "s", bad);
    }
    return bad ? static_cast<int>(ExitCode::config) : 0;
}

std::filesystem::path new_profile(const std::string& name, const std::string& from,
                                  const std::optional<std::filesystem::path>& dir) {
    if (!valid_instance_name(name)) {
        throw Error(fmt::format("\"{}\" is not a valid profile name", name),
                    {"profile names use lowercase letters, digits, - and _ (at most 32), e.g. work"}, ExitCode::usage);
    }
    auto target_dir = dir ? std::filesystem::absolute(*dir) : paths::user_config_dir() / "profiles";
    auto target = target_dir / (name + ".toml");
    std::error_code ec;
    if (std::filesystem::exists(target, ec)) {
        throw Error(fmt::format("{} already exists", target.string()),
                    {fmt::format("sbx edit {} changes it; pick another name for a new one", name)}, ExitCode::failure);
    }
    auto template_file = find_profile(from);
    // The template must itself be valid: a new profile starts out loadable.
    load_profile_file(template_file);
    std::optional<std::filesystem::path> shadowed;
    try {
        shadowed = find_profile(name);
    } catch (const Error&) {
    }
    std::string text = read_file(template_file);
    if (text.find("extends") != std::string::npos && template_file.parent_path() != target_dir) {
        // A relative `extends` or path in the template would now point elsewhere.
        text = fmt::format("# Made by `sbx new {}` from {}; relative paths below were relative to that folder.\n{}",
                           name, template_file.string(), text);
    }
    make_private_dirs(target_dir);
    write_file_atomic(target, text);
    try {
        load_profile_file(target);
    } catch (const Error&) {
        std::filesystem::remove(target, ec);
        throw Error(fmt::format("{} would not be valid in {} (it uses paths relative to its own folder)",
                                template_file.string(), target_dir.string()),
                    {"copy it by hand and fix the paths, or use --from work"}, ExitCode::config);
    }
    fmt::print("{} created {} (from {})\n", console::green("✓"), target.string(), template_file.string());
    if (shadowed && *shadowed != target) {
        auto found = find_profile(name);
        if (found != target) {
            fmt::print("  note: `sbx up {}` uses {}, which comes first in the search order\n", name, found.string());
        } else {
            fmt::print("  note: it takes the place of {} for `sbx up {}`\n", shadowed->string(), name);
        }
    }
    fmt::print("  sbx edit {}   change it\n  sbx up {}     start it\n", name, name);
    return target;
}

EditHooks default_edit_hooks() {
    EditHooks hooks;
    hooks.run_editor = [](const std::filesystem::path& file) {
        std::string editor;
        for (const char* var : {"VISUAL", "EDITOR"}) {
            const char* v = std::getenv(var);
            if (v && *v) {
                editor = v;
                break;
            }
        }
        if (editor.empty()) {
            editor = ::access("/usr/bin/editor", X_OK) == 0 ? "editor" : "vi";
        }
        // Like git: the editor owns the terminal; Ctrl-C belongs to it, not to us.
        struct sigaction ignore{}, old_int{}, old_quit{};
        ignore.sa_handler = SIG_IGN;
        ::sigaction(SIGINT, &ignore, &old_int);
        ::sigaction(SIGQUIT, &ignore, &old_quit);
        std::fflush(stdout);
        pid_t pid = ::fork();
        if (pid == 0) {
            ::sigaction(SIGINT, &old_int, nullptr);
            ::sigaction(SIGQUIT, &old_quit, nullptr);
            std::string cmd = editor + " \"$1\"";  // $EDITOR may carry arguments ("code --wait")
            ::execl("/bin/sh", "sh", "-c", cmd.c_str(), "sh", file.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
        int status = 0;
        int code = 127;
        if (pid > 0) {
            while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
            code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        ::sigaction(SIGINT, &old_int, nullptr);
        ::sigaction(SIGQUIT, &old_quit, nullptr);
        if (pid < 0) {
            throw_errno("fork", errno);
        }
        if (code == 127) {
            throw Error(fmt::format("could not run the editor \"{}\"", editor),
                        {"set VISUAL or EDITOR to your editor, e.g. export EDITOR=nano"});
        }
        return code;
    };
    hooks.ask = [](const std::string& question) -> std::optional<bool> {
        if (::isatty(STDIN_FILENO) != 1) {
            return std::nullopt;
        }
        fmt::print("{} [Y/n] ", question);
        std::fflush(stdout);
        std::string line;
        if (!std::getline(std::cin, line)) {
            return false;
        }
        return line.empty() || line[0] == 'y' || line[0] == 'Y';
    };
    return hooks;
}

int edit_profile(const std::string& name_or_path, const EditHooks& hooks) {
    auto file = find_profile(name_or_path);
    std::string name = file.stem().string();
    if (!writable_dir(file.parent_path()) || ::access(file.c_str(), W_OK) != 0) {
        // A shipped profile: edit the user's own copy, which comes first in the search order.
        auto copy = paths::user_config_dir() / "profiles" / (name + ".toml");
        std::error_code ec;
        if (!std::filesystem::exists(copy, ec)) {
            make_private_dirs(copy.parent_path());
            write_file_atomic(copy, read_file(file));
            fmt::print("note: {} is not writable; editing your own copy {}\n", file.string(), copy.string());
        }
        file = copy;
    }
    auto draft = file.parent_path() / (name + ".draft.toml");
    std::string original = read_file(file);
    std::error_code ec;
    if (std::filesystem::exists(draft, ec)) {
        fmt::print("continuing the draft an earlier edit left: {} (delete it to start over)\n", draft.string());
    } else {
        write_file_atomic(draft, original);
    }
    for (;;) {
        int code = hooks.run_editor(draft);
        if (code != 0) {
            throw Error(fmt::format("the editor exited with status {}; {} is unchanged", code, file.string()),
                        {fmt::format("your edit is kept in {}; sbx edit {} continues it", draft.string(), name)});
        }
        std::string edited = read_file(draft);
        if (edited == original) {
            std::filesystem::remove(draft, ec);
            fmt::print("no changes to {}\n", file.string());
            return 0;
        }
        try {
            auto prof = load_profile_as(draft, name);
            prof.file = file;
            // Keep the file's own permissions; the rename makes the save atomic.
            std::filesystem::permissions(draft, std::filesystem::status(file).permissions(), ec);
            std::filesystem::rename(draft, file);
            fmt::print("{} saved {}\n", console::green("✓"), file.string());
            fmt::print("    {}\n", summary(prof));
            auto missing = unsupported_features(prof);
            if (!missing.empty()) {
                fmt::print("    note: `sbx up` refuses it with this build: {}\n", fmt::join(missing, "; "));
            }
            return 0;
        } catch (const Error& e) {
            if (e.code() != ExitCode::config) {
                throw;
            }
            print_problems(name, e);
            auto again = hooks.ask("re-open the editor to fix it?");
            if (!again || !*again) {
                fmt::print(stderr, "{} is unchanged; your edit is kept in {} (sbx edit {} continues it)\n",
                           file.string(), draft.string(), name);
                return static_cast<int>(ExitCode::config);
            }
        }
    }
}

}  // namespace sbx::profile
