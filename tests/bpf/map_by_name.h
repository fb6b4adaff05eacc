// SPDX-License-Identifier: GPL-2.0-only
// A map of a loaded program, found by name among the maps it uses: what the
// BPF tests and the differential fuzzer use to reach a map XdpProgram does not
// expose. Returns a new fd (the caller closes it), or -1.
#pragma once

#include <bpf/bpf.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace connwatch::test {

inline int map_fd_by_name(int prog_fd, const char* name)
{
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0)
        return -1;
    std::vector<uint32_t> ids(info.nr_map_ids);
    bpf_prog_info again{};
    again.nr_map_ids = info.nr_map_ids;
    again.map_ids = reinterpret_cast<uint64_t>(ids.data());
    len = sizeof(again);
    if (bpf_obj_get_info_by_fd(prog_fd, &again, &len) != 0)
        return -1;
    for (uint32_t id : ids) {
        int fd = bpf_map_get_fd_by_id(id);
        if (fd < 0)
            continue;
        bpf_map_info mi{};
        uint32_t mlen = sizeof(mi);
        if (bpf_obj_get_info_by_fd(fd, &mi, &mlen) == 0 && std::strcmp(mi.name, name) == 0)
            return fd;
        close(fd);
    }
    return -1;
}

} // namespace connwatch::test
