// SPDX-License-Identifier: GPL-2.0-only
#include "common/ssh_session.h"

#include <sstream>

namespace connwatch {

std::optional<Address> ssh_client_address(const char* ssh_connection)
{
    if (!ssh_connection)
        return std::nullopt;
    std::istringstream in(ssh_connection);
    std::string client, client_port, server, server_port;
    if (!(in >> client >> client_port >> server >> server_port))
        return std::nullopt;
    if (auto scope = client.find('%'); scope != std::string::npos)
        client.erase(scope);
    return Address::parse(client);
}

std::string ssh_session_conflict(const Cidr& prefix, const char* ssh_connection)
{
    auto client = ssh_client_address(ssh_connection);
    if (!client || !prefix.contains(*client) || prefix.address().is_v4() != client->is_v4())
        return "";
    return "not blocking " + prefix.str() + ": it covers " + client->str() +
           ", where this ssh session comes from (SSH_CONNECTION), and would cut it off; "
           "repeat with --force if you really mean it";
}

} // namespace connwatch
