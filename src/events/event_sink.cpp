// SPDX-License-Identifier: GPL-2.0-only
#include "events/event_sink.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace connwatch {

bool stderr_is_journal()
{
    const char* js = std::getenv("JOURNAL_STREAM");
    if (!js)
        return false;
    unsigned long long dev = 0, ino = 0;
    struct stat st{};
    if (std::sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) != 0)
        return false;
    return st.st_dev == dev && st.st_ino == ino;
}

std::unique_ptr<EventSink> make_sink(LogTarget target)
{
    if (target == LogTarget::Journal || (target == LogTarget::Auto && stderr_is_journal()))
        return make_journal_sink();
    return make_stdout_sink();
}

} // namespace connwatch
