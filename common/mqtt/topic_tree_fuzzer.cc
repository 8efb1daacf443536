// libFuzzer target: the subscription trie against a plain reference matcher. The input is
// lines of commands:
//   S<n> filter      subscriber n subscribes to filter ($share/group/filter for a group)
//   U<n> filter      subscriber n unsubscribes
//   T topic          a message on topic: the trie must deliver it to exactly the plain
//                    subscriptions the reference matches, and to one member of each
//                    matching shared group (group member n of the k-th group and filter
//                    seen is subscriber 100 + 16k + n); matching without the groups gives
//                    the plain ones alone, and each group with members picks one of them
// Invalid filters and topics are skipped, as the broker refuses them before the trie.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/mqtt/codec.h"
#include "common/mqtt/topic_tree.h"

namespace {

// MQTT's matching, level by level: '+' one level, '#' the rest (and the parent level),
// neither matching a first level that begins with '$'.
bool Matches(absl::string_view filter, absl::string_view topic) {
  std::vector<absl::string_view> f = absl::StrSplit(filter, '/');
  std::vector<absl::string_view> t = absl::StrSplit(topic, '/');
  if (absl::StartsWith(t[0], "$") && (f[0] == "+" || f[0] == "#")) return false;
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] == "#") return true;
    if (i >= t.size()) return false;
    if (f[i] != "+" && f[i] != t[i]) return false;
  }
  return f.size() == t.size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fleetcore::mqtt;
  TopicTree tree;
  // (group, filter, subscriber) of the subscriptions made, as the reference sees them. A
  // shared subscription's subscriber id is 100 + 16 * (its group and filter's number) + n,
  // so that every delivery names the group it was for.
  std::set<std::tuple<std::string, std::string, uint64_t>> subs;
  std::map<std::pair<std::string, std::string>, uint64_t> group_numbers;
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  for (absl::string_view line : absl::StrSplit(input, '\n')) {
    if (line.size() < 2) continue;
    const char op = line[0];
    if (op == 'T') {
      const absl::string_view topic = line.substr(2);
      if (!ValidTopicName(topic)) continue;
      std::multiset<uint64_t> delivered;
      tree.Match(topic, [&](uint64_t s, const SubscriptionOptions&) { delivered.insert(s); });
      // Every plain match once, and each matching group once, to one of its members.
      std::map<uint64_t, int> groups_matched;  // group number -> members that match
      for (const auto& [group, filter, s] : subs) {
        if (!Matches(filter, topic)) continue;
        if (group.empty()) {
          auto it = delivered.find(s);
          if (it == delivered.end()) std::abort();  // a subscriber that should have it did not
          delivered.erase(it);
        } else {
          ++groups_matched[(s - 100) / 16];
        }
      }
      for (const auto& [number, members] : groups_matched) {
        const auto first = delivered.lower_bound(100 + 16 * number);
        const auto last = delivered.lower_bound(100 + 16 * (number + 1));
        if (std::distance(first, last) != 1) std::abort();  // not exactly one member
        delivered.erase(first);
      }
      if (!delivered.empty()) std::abort();  // deliveries nobody subscribed for
      // Gateway replicas match without the shared groups (the plain subscriptions alone)
      // and pick a group's member by its filter.
      std::multiset<uint64_t> plain, expected_plain;
      tree.Match(
          topic, [&](uint64_t s, const SubscriptionOptions&) { plain.insert(s); },
          /*shared=*/false);
      for (const auto& [group, filter, s] : subs) {
        if (group.empty() && Matches(filter, topic)) expected_plain.insert(s);
      }
      if (plain != expected_plain) std::abort();
      for (const auto& entry : group_numbers) {
        const std::pair<std::string, std::string>& key = entry.first;
        const uint64_t number = entry.second;
        const bool members = std::any_of(subs.begin(), subs.end(), [&](const auto& sub) {
          return std::get<0>(sub) == key.first && std::get<1>(sub) == key.second;
        });
        uint64_t who = 0;
        SubscriptionOptions options;
        if (tree.PickShared(key.second, key.first, &who, &options) != members) std::abort();
        if (members && (who < 100 + 16 * number || who >= 100 + 16 * (number + 1))) {
          std::abort();  // someone outside the group
        }
      }
      continue;
    }
    if (op != 'S' && op != 'U') continue;
    const size_t space = line.find(' ');
    if (space == absl::string_view::npos) continue;
    uint32_t n = 0;
    if (!absl::SimpleAtoi(line.substr(1, space - 1), &n) || n > 15) continue;
    ParsedFilter parsed;
    if (!ParseSharedFilter(line.substr(space + 1), &parsed)) continue;
    if (!ValidTopicFilter(parsed.filter)) continue;
    uint64_t subscriber = n;
    if (!parsed.share_group.empty()) {
      auto [it, added] = group_numbers.emplace(std::pair(parsed.share_group, parsed.filter),
                                               group_numbers.size());
      subscriber = 100 + 16 * it->second + n;
    }
    const auto key = std::make_tuple(parsed.share_group, parsed.filter, subscriber);
    if (op == 'S') {
      const bool added = tree.Subscribe(parsed.filter, parsed.share_group, subscriber, {});
      if (added != subs.insert(key).second) std::abort();
    } else {
      const bool removed = tree.Unsubscribe(parsed.filter, parsed.share_group, subscriber);
      if (removed != (subs.erase(key) == 1)) std::abort();
    }
    if (tree.size() != subs.size()) std::abort();
  }
  return 0;
}
