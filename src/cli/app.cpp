#include "commands.hpp"

#include "sbx/util/console.hpp"
#include "sbx/util/error.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <unistd.h>

namespace sbx::cli {

namespace {

constexpr const char* k_footer = R"(Exit status:
  0    success (sbx ssh: the remote command's own status)
  1    the work failed (the message says why)
  2    bad command line
  3    invalid profile or recipe
  4    no such profile, instance or image
  5    the instance is not running
  6    a bounded wait ran out
  255  sbx ssh could not reach the guest

Profiles are looked up as ./profiles/NAME.toml, then $XDG_CONFIG_HOME/sbx/profiles/NAME.toml,
then the profiles installed with sbx. SBX_HOME moves all state and images (for tests).
Docs: README.md and docs/ in the source tree.)";

void print_error(const std::string& message, const std::vector<std::string>& hints) {
    fmt::print(stderr, "{} {}\n", console::red("sbx: error:", stderr), message);
    for (const auto& h : hints) {
        // Multi-line hints (log tails) keep their own lines, indented.
        std::string indented;
        for (char c : h) {
            indented += c;
            if (c == '\n') {
                indented += "      ";
            }
        }
        while (!indented.empty() && (indented.back() == ' ' || indented.back() == '\n')) {
            indented.pop_back();
        }
        fmt::print(stderr, "hint: {}\n", indented);
    }
}

}  // namespace

int run(int argc, char** argv) {
    // A closed stdin/stdout/stderr would be reused by the next open() (a socket could
    // become "stdout"): put /dev/null there first, as OpenSSH does.
    for (int fd = 0; fd < 3; ++fd) {
        if (::fcntl(fd, F_GETFD) < 0) {
            int n = ::open("/dev/null", O_RDWR);
            if (n >= 0 && n != fd) {
                ::dup2(n, fd);
                ::close(n);
            }
        }
    }
    int exit_code = 0;
    CLI::App app{"sbx: development and AI-agent sandboxes as QEMU virtual machines", "sbx"};
    app.footer(k_footer);
    app.set_version_flag("--version", std::string("sbx ") + SBX_VERSION);
    app.require_subcommand(1);
    app.fallthrough(false);
    add_up(app, exit_code);
    add_ssh(app, exit_code);
    add_run(app, exit_code);
    add_cp(app, exit_code);
    add_down(app, exit_code);
    add_ls(app, exit_code);
    add_status(app, exit_code);
    add_logs(app, exit_code);
    add_rm(app, exit_code);
    add_image(app, exit_code);
    add_plan(app, exit_code);
    add_check(app, exit_code);
    add_new(app, exit_code);
    add_edit(app, exit_code);
    add_diff(app, exit_code);
    add_review(app, exit_code);
    add_apply(app, exit_code);
    add_ssh_config(app, exit_code);
    add_completion(app, exit_code);
    add_internal(app, exit_code);
    add_net(app, exit_code);
    add_netd(app, exit_code);
    add_share_export(app, exit_code);
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        print_error(e.what(), {"sbx --help lists the commands; sbx COMMAND --help their options"});
        return static_cast<int>(ExitCode::usage);
    } catch (const Error& e) {
        print_error(e.what(), e.hints());
        return static_cast<int>(e.code());
    } catch (const std::exception& e) {
        print_error(e.what(), {});
        return static_cast<int>(ExitCode::failure);
    }
    return exit_code;
}

}  // namespace sbx::cli
