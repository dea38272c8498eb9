// Theory of operation
//
// The three scripts share one shape. The command tree becomes a few data functions keyed
// by the "command path" ("" for sbx itself, "image build" for a nested verb): its
// subcommands, its flags, its options that take a value, and the kind of each positional
// argument ("profile", "instance", "choice:a,b", "copy_path", a trailing "+" when the last
// one repeats). A small walker in each shell's own language reads the words typed so far,
// descends into subcommands, skips option values, counts positionals and stops at "--";
// then it offers subcommands, options, or what the next positional's kind asks for.
// Profile and instance names come from `sbx _complete profiles|instances` at TAB time,
// run with the same sbx the user is typing (the first word of the command line).

#include "sbx/vm/completion.hpp"

#include "sbx/instance/layout.hpp"
#include "sbx/profile/profile.hpp"
#include "sbx/util/error.hpp"
#include "sbx/util/paths.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <functional>

namespace sbx::vm {

namespace {

struct Node {
    std::string path;  // "" for the root, else subcommand names joined by spaces
    const CompletionCommand* cmd;
};

void collect(const CompletionCommand& cmd, const std::string& path, std::vector<Node>& out) {
    out.push_back({path, &cmd});
    for (const auto& sub : cmd.subcommands) {
        collect(sub, path.empty() ? sub.name : path + " " + sub.name, out);
    }
}

std::vector<Node> nodes_of(const CompletionCommand& root) {
    std::vector<Node> out;
    collect(root, "", out);
    return out;
}

std::string kind_token(const CompletionArg& a) {
    std::string t;
    switch (a.kind) {
    case ArgKind::none:
        t = "none";
        break;
    case ArgKind::file:
        t = "file";
        break;
    case ArgKind::profile:
        t = "profile";
        break;
    case ArgKind::instance:
        t = "instance";
        break;
    case ArgKind::copy_path:
        t = "copy_path";
        break;
    case ArgKind::command:
        t = "command";
        break;
    case ArgKind::choice:
        t = "choice:" + fmt::format("{}", fmt::join(a.choices, ","));
        break;
    }
    if (a.repeats) {
        t += "+";
    }
    return t;
}

std::vector<std::string> subcommand_names(const CompletionCommand& c) {
    std::vector<std::string> out;
    for (const auto& s : c.subcommands) {
        out.push_back(s.name);
    }
    return out;
}

std::vector<std::string> option_names(const CompletionCommand& c, bool valued) {
    std::vector<std::string> out;
    for (const auto& o : c.options) {
        if (o.takes_value == valued) {
            out.insert(out.end(), o.names.begin(), o.names.end());
        }
    }
    return out;
}

std::vector<std::string> positional_tokens(const CompletionCommand& c) {
    std::vector<std::string> out;
    for (const auto& p : c.positionals) {
        out.push_back(kind_token(p));
    }
    return out;
}

// Single-quoted for POSIX shells (bash, zsh).
std::string sh_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'') {
            out += "'\\''";
        } else {
            out += c;
        }
    }
    return out + "'";
}

// Single-quoted for fish: only \ and ' are special inside.
std::string fish_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\\' || c == '\'') {
            out += '\\';
        }
        out += c;
    }
    return out + "'";
}

// Words are names from the CLI: no quoting needed, but keep the script valid regardless.
std::string words(const std::vector<std::string>& w) { return fmt::format("{}", fmt::join(w, " ")); }

// A POSIX `case "$1" in ... esac` function (valid in bash and zsh) from path -> text.
std::string case_function(const std::string& fn, const std::vector<Node>& nodes,
                          const std::function<std::string(const CompletionCommand&)>& value) {
    std::string out = fmt::format("{}() {{\n    case \"$1\" in\n", fn);
    for (const auto& n : nodes) {
        std::string v = value(*n.cmd);
        if (!v.empty()) {
            out += fmt::format("    {}) echo {} ;;\n", sh_quote(n.path), sh_quote(v));
        }
    }
    out += "    esac\n}\n";
    return out;
}

std::string value_kind_function(const std::string& fn, const std::vector<Node>& nodes) {
    std::string out = fmt::format("{}() {{\n    case \"$1|$2\" in\n", fn);
    for (const auto& n : nodes) {
        for (const auto& o : n.cmd->options) {
            if (!o.takes_value) {
                continue;
            }
            for (const auto& name : o.names) {
                out += fmt::format("    {}) echo {} ;;\n", sh_quote(n.path + "|" + name), sh_quote(kind_token(o.value)));
            }
        }
    }
    out += "    esac\n}\n";
    return out;
}

std::string posix_data_functions(const std::vector<Node>& nodes) {
    std::string out;
    out += "# The command tree: subcommands, flags, options taking a value, positional kinds.\n";
    out += case_function("_sbx_subcommands", nodes, [](const CompletionCommand& c) { return words(subcommand_names(c)); });
    out += case_function("_sbx_flags", nodes, [](const CompletionCommand& c) { return words(option_names(c, false)); });
    out += case_function("_sbx_valued", nodes, [](const CompletionCommand& c) { return words(option_names(c, true)); });
    out += case_function("_sbx_positionals", nodes,
                         [](const CompletionCommand& c) { return words(positional_tokens(c)); });
    out += value_kind_function("_sbx_value_kind", nodes);
    return out;
}

constexpr const char* k_bash_body = R"BASH(
_sbx_names() {
    "$_sbx_bin" _complete "$1" 2>/dev/null
}

# Fills COMPREPLY for a word of kind $1; $2 is the word so far, $3 the word before it.
_sbx_complete_kind() {
    local kind=$1 cur=$2 prev=$3 n
    COMPREPLY=()
    case $kind in
    profile) COMPREPLY=($(compgen -W "$(_sbx_names profiles)" -- "$cur")) ;;
    instance) COMPREPLY=($(compgen -W "$(_sbx_names instances)" -- "$cur")) ;;
    choice:*)
        kind=${kind#choice:}
        COMPREPLY=($(compgen -W "${kind//,/ }" -- "$cur"))
        ;;
    copy_path)
        # bash splits NAME:PATH at the colon; a word after one is a guest path.
        if [[ $cur == : || $prev == : ]]; then
            return
        fi
        for n in $(_sbx_names instances); do
            [[ $n: == "$cur"* ]] && COMPREPLY+=("$n:")
        done
        COMPREPLY+=($(compgen -f -- "$cur"))
        compopt -o nospace -o filenames 2>/dev/null
        ;;
    file) compopt -o default 2>/dev/null ;;
    esac
}

_sbx() {
    local _sbx_bin=${COMP_WORDS[0]}
    local cur=${COMP_WORDS[COMP_CWORD]} prev=""
    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
    local path="" word i npos=0 dashdash=0 want_value=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        if [[ -n $want_value ]]; then
            want_value=""
            continue
        fi
        if ((dashdash)); then
            continue
        fi
        case $word in
        --)
            dashdash=1
            continue
            ;;
        -?*=*) continue ;;
        -?*)
            if [[ " $(_sbx_valued "$path") " == *" $word "* ]]; then
                want_value=$word
            fi
            continue
            ;;
        esac
        if ((npos == 0)) && [[ " $(_sbx_subcommands "$path") " == *" $word "* ]]; then
            path=${path:+$path }$word
            continue
        fi
        npos=$((npos + 1))
    done
    COMPREPLY=()
    if [[ -n $want_value ]]; then
        _sbx_complete_kind "$(_sbx_value_kind "$path" "$want_value")" "$cur" "$prev"
        return
    fi
    # After --, the words are a command for the guest: nothing from the host fits.
    ((dashdash)) && return
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(_sbx_flags "$path") $(_sbx_valued "$path")" -- "$cur"))
        return
    fi
    local subs
    subs=$(_sbx_subcommands "$path")
    if [[ -n $subs ]] && ((npos == 0)); then
        COMPREPLY=($(compgen -W "$subs" -- "$cur"))
        return
    fi
    local kinds=($(_sbx_positionals "$path")) kind=none
    local last=$((${#kinds[@]} - 1))
    if ((npos <= last)); then
        kind=${kinds[npos]}
    elif ((last >= 0)) && [[ ${kinds[last]} == *+ ]]; then
        kind=${kinds[last]}
    fi
    _sbx_complete_kind "${kind%+}" "$cur" "$prev"
}
)BASH";

std::string bash_script(const CompletionCommand& root, const std::string& program) {
    auto nodes = nodes_of(root);
    std::string out = fmt::format(
        "# bash completion for {0}. Generated by `{0} completion bash` from {0}'s own command\n"
        "# definitions; profile and instance names come from `{0} _complete` at TAB time.\n"
        "# Install: {0} completion bash > ~/.local/share/bash-completion/completions/{0}\n"
        "# or put this in ~/.bashrc: source <({0} completion bash)\n\n",
        program);
    out += posix_data_functions(nodes);
    out += k_bash_body;
    out += fmt::format("\ncomplete -F _sbx {}\n", program);
    return out;
}

constexpr const char* k_zsh_body = R"ZSH(
_sbx_names() {
    "$_sbx_bin" _complete "$1" 2>/dev/null
}

_sbx_complete_kind() {
    local kind=$1
    local -a names
    case $kind in
    profile)
        names=(${(f)"$(_sbx_names profiles)"})
        compadd -a names
        ;;
    instance)
        names=(${(f)"$(_sbx_names instances)"})
        compadd -a names
        ;;
    choice:*)
        kind=${kind#choice:}
        names=(${(s:,:)kind})
        compadd -a names
        ;;
    copy_path)
        # A word with a colon is a guest path: nothing to offer from the host.
        [[ $PREFIX == *:* ]] && return 1
        names=(${(f)"$(_sbx_names instances)"})
        (( ${#names} )) && compadd -S '' -- ${^names}:
        _files
        ;;
    file) _files ;;
    *) return 1 ;;
    esac
}

_sbx() {
    local _sbx_bin=${words[1]}
    local path="" word i npos=0 dashdash=0 want_value=""
    for ((i = 2; i < CURRENT; i++)); do
        word=${words[i]}
        if [[ -n $want_value ]]; then
            want_value=""
            continue
        fi
        (( dashdash )) && continue
        case $word in
        --)
            dashdash=1
            continue
            ;;
        -?*=*) continue ;;
        -?*)
            if [[ " $(_sbx_valued "$path") " == *" $word "* ]]; then
                want_value=$word
            fi
            continue
            ;;
        esac
        if (( npos == 0 )) && [[ " $(_sbx_subcommands "$path") " == *" $word "* ]]; then
            path=${path:+$path }$word
            continue
        fi
        npos=$((npos + 1))
    done
    if [[ -n $want_value ]]; then
        _sbx_complete_kind "$(_sbx_value_kind "$path" "$want_value")"
        return
    fi
    (( dashdash )) && return 1
    if [[ $PREFIX == -* ]]; then
        local -a opts
        opts=(${=$(_sbx_flags "$path")} ${=$(_sbx_valued "$path")})
        compadd -a opts
        return
    fi
    local -a subs
    subs=(${(f)"$(_sbx_subcommand_help "$path")"})
    if (( ${#subs} )) && (( npos == 0 )); then
        _describe -t commands 'sbx command' subs
        return
    fi
    local -a kinds
    kinds=(${=$(_sbx_positionals "$path")})
    local kind=none
    if (( npos < ${#kinds} )); then
        kind=${kinds[npos + 1]}
    elif (( ${#kinds} )) && [[ ${kinds[-1]} == *+ ]]; then
        kind=${kinds[-1]}
    fi
    _sbx_complete_kind "${kind%+}"
}
)ZSH";

// One line per subcommand, "name:help", for zsh's _describe.
std::string zsh_subcommand_help(const std::vector<Node>& nodes) {
    std::string out = "_sbx_subcommand_help() {\n    case \"$1\" in\n";
    for (const auto& n : nodes) {
        if (n.cmd->subcommands.empty()) {
            continue;
        }
        std::string lines;
        for (const auto& s : n.cmd->subcommands) {
            lines += fmt::format("{}:{}\n", s.name, s.help);
        }
        lines.pop_back();
        out += fmt::format("    {}) print -r -- {} ;;\n", sh_quote(n.path), sh_quote(lines));
    }
    out += "    esac\n}\n";
    return out;
}

std::string zsh_script(const CompletionCommand& root, const std::string& program) {
    auto nodes = nodes_of(root);
    std::string out = fmt::format(
        "#compdef {0}\n"
        "# zsh completion for {0}. Generated by `{0} completion zsh` from {0}'s own command\n"
        "# definitions; profile and instance names come from `{0} _complete` at TAB time.\n"
        "# Install: {0} completion zsh > \"${{fpath[1]}}/_{0}\" (then start a new zsh),\n"
        "# or put this in ~/.zshrc after compinit: source <({0} completion zsh)\n\n",
        program);
    out += posix_data_functions(nodes);
    out += zsh_subcommand_help(nodes);
    out += k_zsh_body;
    out += fmt::format(
        "\nif [[ \"${{funcstack[1]}}\" == _sbx ]]; then\n    _sbx \"$@\"\nelse\n    compdef _sbx {}\nfi\n", program);
    return out;
}

constexpr const char* k_fish_body = R"FISH(
function __sbx_names
    set -l bin (commandline -opc)[1]
    command $bin _complete $argv[1] 2>/dev/null
end

# Where the command line stands: "p:<command path>", positionals so far, 1 after --,
# and the option whose value is being typed (if any).
function __sbx_state
    set -l words (commandline -opc)
    set -e words[1]
    set -l path ''
    set -l npos 0
    set -l dashdash 0
    set -l want ''
    for w in $words
        if test -n "$want"
            set want ''
            continue
        end
        if test $dashdash = 1
            continue
        end
        switch $w
            case '--'
                set dashdash 1
                continue
            case '-?*=*'
                continue
            case '-?*'
                if contains -- $w (string split ' ' -- (__sbx_valued "$path"))
                    set want $w
                end
                continue
        end
        if test $npos = 0; and contains -- $w (string split ' ' -- (__sbx_subcommands "$path"))
            set path (string trim -- "$path $w")
            continue
        end
        set npos (math $npos + 1)
    end
    printf '%s\n' "p:$path" $npos $dashdash "o:$want"
end

# True when the word being typed belongs to command PATH (options, subcommands).
function __sbx_at
    set -l s (__sbx_state)
    test "$s[1]" = "p:$argv[1]"; and test "$s[3]" = 0; and test "$s[4]" = "o:"
end

# True when the word being typed is a KIND for command PATH ("sub" for a subcommand).
function __sbx_wants
    set -l s (__sbx_state)
    test "$s[1]" = "p:$argv[1]"; and test "$s[3]" = 0; and test "$s[4]" = "o:"; or return 1
    set -l npos $s[2]
    if test "$argv[2]" = sub
        test $npos = 0
        return
    end
    set -l subs (__sbx_subcommands "$argv[1]")
    if test -n "$subs"; and test $npos = 0
        return 1
    end
    set -l kinds (string split ' ' -- (__sbx_positionals "$argv[1]"))
    set -l kind none
    set -l i (math $npos + 1)
    if test $i -le (count $kinds)
        set kind $kinds[$i]
    else if test (count $kinds) -gt 0; and string match -q '*+' -- $kinds[-1]
        set kind $kinds[-1]
    end
    test (string trim -r -c + -- $kind) = "$argv[2]"
end

# True when the word being typed is the value of option OPT of command PATH.
function __sbx_value_for
    set -l s (__sbx_state)
    test "$s[1]" = "p:$argv[1]"; and test "$s[4]" = "o:$argv[2]"
end
)FISH";

std::string fish_switch_function(const std::string& fn, const std::vector<Node>& nodes,
                                 const std::function<std::string(const CompletionCommand&)>& value) {
    std::string out = fmt::format("function {}\n    switch $argv[1]\n", fn);
    for (const auto& n : nodes) {
        std::string v = value(*n.cmd);
        if (!v.empty()) {
            out += fmt::format("        case {}\n            echo {}\n", fish_quote(n.path), fish_quote(v));
        }
    }
    out += "    end\nend\n";
    return out;
}

// "-s f -l force" for fish's complete.
std::string fish_option_spec(const CompletionOption& o) {
    std::string out;
    for (const auto& n : o.names) {
        if (n.rfind("--", 0) == 0) {
            out += " -l " + fish_quote(n.substr(2));
        } else if (n.size() == 2 && n[0] == '-') {
            out += " -s " + fish_quote(n.substr(1));
        } else if (n.size() > 2 && n[0] == '-') {
            out += " -o " + fish_quote(n.substr(1));
        }
    }
    return out;
}

// The candidates part of a `complete` line for a kind; empty when there are none.
std::string fish_kind_args(const CompletionArg& a) {
    switch (a.kind) {
    case ArgKind::profile:
        return " -a '(__sbx_names profiles)'";
    case ArgKind::instance:
        return " -a '(__sbx_names instances)'";
    case ArgKind::choice:
        return " -a " + fish_quote(words(a.choices));
    case ArgKind::copy_path:
        return " -F -a '(__sbx_names instances | string replace -r \"\\$\" \":\")'";
    case ArgKind::file:
        return " -F";
    case ArgKind::none:
    case ArgKind::command:
        return "";
    }
    return "";
}

std::string fish_script(const CompletionCommand& root, const std::string& program) {
    auto nodes = nodes_of(root);
    std::string out = fmt::format(
        "# fish completion for {0}. Generated by `{0} completion fish` from {0}'s own command\n"
        "# definitions; profile and instance names come from `{0} _complete` at TAB time.\n"
        "# Install: {0} completion fish > ~/.config/fish/completions/{0}.fish\n\n",
        program);
    out += fish_switch_function("__sbx_subcommands", nodes,
                                [](const CompletionCommand& c) { return words(subcommand_names(c)); });
    out += fish_switch_function("__sbx_valued", nodes,
                                [](const CompletionCommand& c) { return words(option_names(c, true)); });
    out += fish_switch_function("__sbx_positionals", nodes,
                                [](const CompletionCommand& c) { return words(positional_tokens(c)); });
    out += k_fish_body;
    out += fmt::format("\ncomplete -c {} -f\n", program);
    for (const auto& n : nodes) {
        // The conditions are fish commands: their arguments use fish's quoting too.
        std::string path = fish_quote(n.path);
        for (const auto& s : n.cmd->subcommands) {
            out += fmt::format("complete -c {} -n {} -a {} -d {}\n", program,
                               fish_quote("__sbx_wants " + path + " sub"), fish_quote(s.name), fish_quote(s.help));
        }
        for (const auto& o : n.cmd->options) {
            out += fmt::format("complete -c {} -n {}{} -d {}\n", program, fish_quote("__sbx_at " + path),
                               fish_option_spec(o), fish_quote(o.help));
            std::string args = o.takes_value ? fish_kind_args(o.value) : "";
            for (const auto& name : o.names) {
                if (!args.empty()) {
                    out += fmt::format("complete -c {} -n {}{}\n", program,
                                       fish_quote("__sbx_value_for " + path + " " + fish_quote(name)), args);
                }
            }
        }
        std::vector<std::string> done;
        for (const auto& a : n.cmd->positionals) {
            std::string token = kind_token(CompletionArg{a.kind, a.choices, false});
            std::string args = fish_kind_args(a);
            if (args.empty() || std::find(done.begin(), done.end(), token) != done.end()) {
                continue;
            }
            done.push_back(token);
            out += fmt::format("complete -c {} -n {}{}\n", program,
                               fish_quote("__sbx_wants " + path + " " + fish_quote(token)), args);
        }
    }
    return out;
}

}  // namespace

Shell parse_shell(const std::string& name) {
    if (name == "bash") {
        return Shell::bash;
    }
    if (name == "zsh") {
        return Shell::zsh;
    }
    if (name == "fish") {
        return Shell::fish;
    }
    throw Error(fmt::format("no completion for shell \"{}\"", name), {"sbx completion bash|zsh|fish"},
                ExitCode::usage);
}

std::string completion_script(const CompletionCommand& root, Shell shell, const std::string& program) {
    switch (shell) {
    case Shell::bash:
        return bash_script(root, program);
    case Shell::zsh:
        return zsh_script(root, program);
    case Shell::fish:
        return fish_script(root, program);
    }
    return {};
}

std::vector<std::string> completion_words(const std::string& what) {
    try {
        if (what == "profiles") {
            return profile::list_profile_names();
        }
        if (what == "instances") {
            return instance::list_instance_names(paths::vms_root());
        }
    } catch (const std::exception&) {
        // TAB must never print an error into the user's command line.
    }
    return {};
}

}  // namespace sbx::vm
