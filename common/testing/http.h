// A minimal HTTP/1.1 GET on 127.0.0.1 for tests of /metrics and similar endpoints.
#pragma once

#include <string>

namespace fleetcore::testing {

// The response body of GET http://127.0.0.1:<port><path>, or "" when the request failed.
std::string HttpGet(int port, const std::string& path);

}  // namespace fleetcore::testing
