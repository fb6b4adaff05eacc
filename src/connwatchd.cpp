// SPDX-License-Identifier: GPL-2.0-only
// connwatchd: see man/connwatchd.8 (or connwatchd --help).
#include "daemon/daemon.h"

int main(int argc, char** argv)
{
    return connwatch::run_connwatchd(argc, argv);
}
