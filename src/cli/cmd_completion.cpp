#include "commands.hpp"

#include "sbx/vm/completion.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace sbx::cli {

namespace {

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

bool hidden(const CLI::App& a) { return a.get_group().empty() || a.get_name().rfind('_', 0) == 0; }

// What an option's value or a positional holds, from how the verb declared it: a list of
// allowed values (CLI::IsMember shows as "{a,b}" in the type name), else its name and
// description ("profile name ...", "instance name", NAME:PATH).
vm::CompletionArg arg_of(const CLI::Option& o) {
    vm::CompletionArg a;
    a.repeats = o.get_positional() && o.get_items_expected_max() > 1;
    std::string type = o.get_type_name();
    auto open = type.find('{');
    auto close = type.find('}', open == std::string::npos ? 0 : open);
    if (open != std::string::npos && close != std::string::npos) {
        std::string list = type.substr(open + 1, close - open - 1);
        std::size_t start = 0;
        while (start <= list.size()) {
            auto comma = list.find(',', start);
            std::string item = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
            if (!item.empty()) {
                a.choices.push_back(item);
            }
            if (comma == std::string::npos) {
                break;
            }
            start = comma + 1;
        }
        if (!a.choices.empty()) {
            a.kind = vm::ArgKind::choice;
            return a;
        }
    }
    std::string name = o.get_name(true);
    std::string desc = lower(o.get_description());
    if (name == "CMD") {
        a.kind = vm::ArgKind::command;
    } else if (desc.find("name:path") != std::string::npos) {
        a.kind = vm::ArgKind::copy_path;
    } else if (desc.find("instance") != std::string::npos) {
        a.kind = vm::ArgKind::instance;
    } else if (desc.find("profile") != std::string::npos || name == "PROFILE") {
        a.kind = vm::ArgKind::profile;
    } else if (desc.find("image name") != std::string::npos) {
        a.kind = vm::ArgKind::none;
    } else {
        a.kind = vm::ArgKind::file;
    }
    return a;
}

vm::CompletionCommand model_of(CLI::App& app, const std::string& name) {
    vm::CompletionCommand c;
    c.name = name;
    c.help = app.get_description();
    for (const CLI::Option* o : app.get_options()) {
        if (o->get_group().empty()) {
            continue;  // hidden
        }
        if (o->nonpositional()) {
            vm::CompletionOption opt;
            for (const auto& s : o->get_snames()) {
                opt.names.push_back("-" + s);
            }
            for (const auto& l : o->get_lnames()) {
                opt.names.push_back("--" + l);
            }
            opt.help = o->get_description();
            opt.takes_value = o->get_expected_max() > 0;  // flags expect no value
            if (opt.takes_value) {
                opt.value = arg_of(*o);
                opt.value.repeats = false;
            }
            c.options.push_back(std::move(opt));
        } else if (o->get_positional()) {
            c.positionals.push_back(arg_of(*o));
        }
    }
    for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
        if (!hidden(*sub)) {
            c.subcommands.push_back(model_of(*sub, sub->get_name()));
        }
    }
    return c;
}

}  // namespace

vm::CompletionCommand completion_model(CLI::App& app) { return model_of(app, ""); }

void add_completion(CLI::App& app, int& exit_code) {
    auto* cmd = app.add_subcommand("completion", "Print a shell completion script for bash, zsh or fish");
    auto shell = std::make_shared<std::string>();
    cmd->add_option("SHELL", *shell, "the shell")->required()->check(CLI::IsMember({"bash", "zsh", "fish"}));
    cmd->footer("bash: sbx completion bash > ~/.local/share/bash-completion/completions/sbx\n"
                "zsh:  sbx completion zsh > \"${fpath[1]}/_sbx\"\n"
                "fish: sbx completion fish > ~/.config/fish/completions/sbx.fish\n"
                "Profile and instance names are looked up each time TAB is pressed.");
    cmd->callback([&app, shell, &exit_code] {
        fmt::print("{}", vm::completion_script(completion_model(app), vm::parse_shell(*shell)));
        exit_code = 0;
    });

    // Hidden: the names the scripts complete, one per line.
    auto* words = app.add_subcommand("_complete", "");
    words->group("");
    auto what = std::make_shared<std::string>();
    words->add_option("WHAT", *what)->required();
    words->callback([what, &exit_code] {
        for (const auto& w : vm::completion_words(*what)) {
            fmt::print("{}\n", w);
        }
        exit_code = 0;
    });
}

}  // namespace sbx::cli
