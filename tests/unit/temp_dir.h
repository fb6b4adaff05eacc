// SPDX-License-Identifier: GPL-2.0-only
// A fresh scratch directory for one test, removed with everything in it.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>

namespace connwatch::test {

struct TempDir {
    std::string path; // empty if mkdtemp failed: check before use
    TempDir()
    {
        char tmpl[] = "/tmp/connwatch-test.XXXXXX";
        const char* d = mkdtemp(tmpl);
        path = d ? d : "";
    }
    ~TempDir()
    {
        if (!path.empty())
            std::filesystem::remove_all(path);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::string operator/(const std::string& name) const { return path + "/" + name; }
};

} // namespace connwatch::test
