// SPDX-License-Identifier: GPL-2.0-only
// connwatchd.conf as CLI11 reads it: one CLI11 Config that reads the file once,
// refuses what is not `key = value` for a known key, and remembers the line of
// every value so that an error about one can name FILE:LINE.
#pragma once

#include <CLI/CLI.hpp>

#include <istream>
#include <stdexcept>
#include <string>
#include <vector>

namespace connwatch {

// A refusal of the file itself (unreadable, not a regular file, too large) or
// of its shape (a section, an unknown key, a key set twice). Not a
// CLI::ParseError, so that CLI11 lets it through untouched from wherever it
// is thrown. what() is the whole message; hint() says whether "see --help"
// helps.
class ConfigFileError : public std::runtime_error {
public:
    ConfigFileError(const std::string& what, bool hint) : std::runtime_error(what), hint_(hint) {}
    bool hint() const { return hint_; }

private:
    bool hint_;
};

// CLI11's TOML-flavoured reader (App's default, whose value syntax connwatchd
// has always had: `#` comments, quotes, `a, b` and `a b` lists), line by line.
//
// CLI11 turns the file into ConfigItems, which carry no line, and then applies
// them one by one, validating each value as it goes. To name the line of a bad
// value, this keeps a side table (option, value) -> line, and, through
// watch(), a validator placed first on every option notes the line of the
// value being checked just before the real validators run; blame() reads it
// after CLI11 has thrown. The table is keyed by the CLI::Option, not the name
// written in the file, because CLI11 resolves `i` and `interface` to the same
// option; and by value as well, so that a bad `allow` among several is found
// on its own line.
//
// Usage: install with app.config_formatter(), then watch(app) once every
// option exists, and check_file() as the --config option's validator.
class ConfigFile : public CLI::ConfigBase {
public:
    explicit ConfigFile(const CLI::App& app) : app_(app) {}

    // Refuses a file that cannot be read safely, before CLI11 opens it (a
    // FIFO would block the open, /dev/zero never ends). A missing file is
    // fine unless it was named (`named`: given with --config). Throws
    // ConfigFileError.
    void check_file(const std::string& path, bool named);

    // Puts the line-noting validator first on every option of `app`.
    void watch(CLI::App& app);

    std::vector<CLI::ConfigItem> from_config(std::istream& in) const override;
    std::string to_flag(const CLI::ConfigItem& item) const override;

    // "FILE:LINE: " when `e` is about a value that came from the file, else "".
    std::string blame(const CLI::ParseError& e) const;

    const std::string& path() const { return path_; }
    // "FILE:LINE: " of the value the option `key` (its long name) got from the
    // file, "" when it did not come from the file (a default, the command line).
    std::string where(const std::string& key) const;

private:
    struct Origin {
        const CLI::Option* option;
        std::string value;
        int line;
    };

    const CLI::Option* option_named(const std::string& key) const;
    int line_of(const CLI::Option* option, const std::string* value) const;
    [[noreturn]] void refuse(int line, const std::string& what, bool hint) const;

    const CLI::App& app_;
    std::string path_;
    // from_config() is const in CLI::Config, yet reading the file is where
    // the lines are learnt; both are filled by it and read afterwards.
    mutable std::vector<Origin> origins_;
    mutable int current_line_ = 0; // of the value CLI11 is checking; 0: not from the file
};

} // namespace connwatch
