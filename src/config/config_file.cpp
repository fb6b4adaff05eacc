// SPDX-License-Identifier: GPL-2.0-only
#include "config/config_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <sstream>

#include "base/unique_fd.h"
#include "config/defaults.h"

namespace connwatch {

namespace {

std::string cannot_read(const std::string& path, const std::string& why)
{
    return "cannot read the configuration file " + path + ": " + why;
}

std::string not_readable_safely(const std::string& path, const std::string& what_it_is)
{
    return cannot_read(path, "it is " + what_it_is + "; connwatchd reads only a regular file of " +
                                 "at most " + std::to_string(kMaxConfigFileBytes >> 20) + " MiB");
}

const char* kind_of(mode_t mode)
{
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    if (S_ISSOCK(mode))
        return "a socket";
    return "not a regular file";
}

// interface, allow: the options that collect a list; any other key set twice
// in the file is a mistake.
bool repeatable(const CLI::Option* o)
{
    return o->get_items_expected_max() > 1;
}

} // namespace

void ConfigFile::check_file(const std::string& path, bool named)
{
    path_ = path;
    // O_NONBLOCK: opening a FIFO without a writer would otherwise wait forever.
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
    struct stat st {};
    if (!fd || fstat(fd.get(), &st) != 0) {
        if (errno == ENOENT && !named)
            return; // the default file may be absent: defaults apply
        throw ConfigFileError(cannot_read(path, std::strerror(errno)), false);
    }
    // /dev/null is the usual way to say "no file, defaults and flags only": it
    // reads as empty, so it is safe. Any other device, FIFO or directory is not.
    bool dev_null = S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3);
    if (!S_ISREG(st.st_mode) && !dev_null)
        throw ConfigFileError(not_readable_safely(path, kind_of(st.st_mode)), false);
    if (static_cast<std::size_t>(st.st_size) > kMaxConfigFileBytes)
        throw ConfigFileError(
            not_readable_safely(path, std::to_string(st.st_size) + " bytes"), false);
    // Closed again: CLI11 opens the file itself, by name (Config::from_file
    // is not virtual). A file swapped in between is still read only up to
    // kMaxConfigFileBytes (from_config).
}

void ConfigFile::watch(CLI::App& app)
{
    // transform() puts the validator before those already there, so it runs
    // even when one of them then refuses the value.
    for (CLI::Option* o : app.get_options())
        o->transform(CLI::Validator(
            [this, o](std::string& value) {
                current_line_ = line_of(o, &value);
                return std::string();
            },
            ""));
}

std::vector<CLI::ConfigItem> ConfigFile::from_config(std::istream& in) const
{
    origins_.clear();
    current_line_ = 0;

    std::string text;
    char buf[4096];
    while (in.read(buf, sizeof buf), in.gcount() > 0) {
        text.append(buf, static_cast<std::size_t>(in.gcount()));
        if (text.size() > kMaxConfigFileBytes)
            throw ConfigFileError(
                not_readable_safely(path_, "more than " + std::to_string(kMaxConfigFileBytes) +
                                               " bytes"),
                false);
    }

    // One item per option, in the order of first appearance: CLI11 would
    // apply only the first of two separate `allow` items (it skips an option
    // that already has a value), so the lines of a list key are merged here.
    std::vector<CLI::ConfigItem> items;
    struct Seen {
        std::size_t item;
        int line;
    };
    std::map<const CLI::Option*, Seen> seen;

    std::istringstream lines(text);
    std::string line;
    for (int n = 1, next = 1; std::getline(lines, line); n = ++next) {
        CLI::detail::trim(line);
        if (line.empty() || line[0] == '#' || line[0] == ';')
            continue;
        if (line[0] == '[') {
            // CLI11 reads [default] as the top level and any other section as
            // a subcommand, which connwatchd has none of.
            if (CLI::detail::to_lower(line) == "[default]")
                continue;
            refuse(n, "sections are not used in this file: put every key at the top level", true);
        }
        // CLI11 lets a [list, ...] run over several lines; hand it whole.
        std::string chunk = line;
        if (auto eq = line.find('='); eq != std::string::npos) {
            std::string value = CLI::detail::trim_copy(line.substr(eq + 1));
            value = CLI::detail::trim_copy(value.substr(0, value.find(commentChar)));
            for (std::string more; value.size() > 1 && value.front() == arrayStart &&
                                   value.back() != arrayEnd && std::getline(lines, more);
                 next++) {
                CLI::detail::trim(more);
                chunk += "\n" + more;
                value += more;
            }
        }
        std::istringstream one(chunk);
        for (CLI::ConfigItem& item : ConfigBase::from_config(one)) {
            std::string key = item.fullname();
            const CLI::Option* o = item.parents.empty() ? option_named(item.name) : nullptr;
            if (o == nullptr)
                refuse(n, "unknown key '" + key + "'", true);
            if (!o->get_configurable())
                refuse(n, CLI::ConfigError::NotConfigurable(key).what(), true);
            // The command line wins: CLI11 skips the file's value, which then
            // cannot be to blame for an error.
            if (o->count() == 0)
                for (const std::string& v : item.inputs)
                    origins_.push_back({o, v, n});
            auto [it, fresh] = seen.try_emplace(o, Seen{items.size(), n});
            if (fresh) {
                items.push_back(std::move(item));
                continue;
            }
            if (!repeatable(o)) {
                std::vector<std::string> lists;
                for (const CLI::Option* l : app_.get_options(repeatable))
                    lists.push_back(l->get_single_name());
                refuse(n, "'" + key + "' is set again (first on line " +
                              std::to_string(it->second.line) + "); only " +
                              CLI::detail::join(lists, " and ") + " may repeat",
                       false);
            }
            auto& inputs = items[it->second.item].inputs;
            inputs.insert(inputs.end(), item.inputs.begin(), item.inputs.end());
        }
    }
    return items;
}

std::string ConfigFile::to_flag(const CLI::ConfigItem& item) const
{
    // A flag's value is checked here, before any validator sees it.
    const CLI::Option* o = option_named(item.name);
    current_line_ = line_of(o, item.inputs.empty() ? nullptr : &item.inputs.front());
    return ConfigBase::to_flag(item);
}

std::string ConfigFile::blame(const CLI::ParseError& e) const
{
    // Only an error about a value: CLI11's others (an unexpected argument)
    // come after the file's values were checked and are not about the last
    // of them.
    bool about_a_value = dynamic_cast<const CLI::ValidationError*>(&e) ||
                         dynamic_cast<const CLI::ConversionError*>(&e) ||
                         dynamic_cast<const CLI::ArgumentMismatch*>(&e);
    if (!about_a_value || current_line_ == 0)
        return "";
    return path_ + ":" + std::to_string(current_line_) + ": ";
}

std::string ConfigFile::where(const std::string& key) const
{
    const CLI::Option* o = option_named(key);
    int line = o ? line_of(o, nullptr) : 0;
    return line ? path_ + ":" + std::to_string(line) + ": " : "";
}

// The option CLI11 would give the key to (App::_parse_single_config).
const CLI::Option* ConfigFile::option_named(const std::string& key) const
{
    const CLI::Option* o = app_.get_option_no_throw("--" + key);
    if (o == nullptr && key.size() == 1)
        o = app_.get_option_no_throw("-" + key);
    if (o == nullptr)
        o = app_.get_option_no_throw(key);
    return o;
}

int ConfigFile::line_of(const CLI::Option* option, const std::string* value) const
{
    for (const Origin& o : origins_)
        if (o.option == option && (value == nullptr || o.value == *value))
            return o.line;
    return 0;
}

void ConfigFile::refuse(int line, const std::string& what, bool hint) const
{
    throw ConfigFileError(path_ + ":" + std::to_string(line) + ": " + what, hint);
}

} // namespace connwatch
