// An HttpClient for the rules service's tests: answers each URL with a status from
// `statuses` (200 when not listed; a negative status is a transport failure) and records
// the requests; while `gate_closed`, sends wait for Open() (`at_gate` of them); with
// `refuse_all`, none connects.
#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "common/http/http_client.h"

namespace fleetcore::rules {

class FakeHttp final : public http::HttpClient {
 public:
  absl::StatusOr<http::Response> Send(const http::Request& r) override {
    std::unique_lock<std::mutex> l(mu);
    ++at_gate;
    cv.wait(l, [this] { return !gate_closed; });
    --at_gate;
    requests.push_back(r);
    if (refuse_all) return absl::UnavailableError("connection refused");
    auto it = statuses.find(r.url);
    if (it != statuses.end() && it->second < 0) return absl::UnavailableError("refused");
    return http::Response{.status = it == statuses.end() ? 200 : it->second};
  }
  std::vector<std::string> Urls() {
    std::lock_guard<std::mutex> l(mu);
    std::vector<std::string> out;
    for (const http::Request& r : requests) out.push_back(r.url);
    return out;
  }
  void Open() {
    {
      std::lock_guard<std::mutex> l(mu);
      gate_closed = false;
    }
    cv.notify_all();
  }
  std::mutex mu;
  std::condition_variable cv;
  bool gate_closed = false;
  int at_gate = 0;  // sends waiting for Open()
  bool refuse_all = false;
  std::map<std::string, int> statuses;
  std::vector<http::Request> requests;
};

}  // namespace fleetcore::rules
