// Where each service's gRPC API listens by default, and so where its peers, fleetctl and
// fleetcore-bench look for it: loopback, ports 6051-6056 (below Linux's ephemeral range,
// so outgoing connections never hold them). The local stack, compose and the chart use the
// same ports.
#pragma once

namespace fleetcore::service {

inline constexpr char kRegistryEndpoint[] = "127.0.0.1:6051";
inline constexpr char kPolicyEndpoint[] = "127.0.0.1:6052";
inline constexpr char kCaEndpoint[] = "127.0.0.1:6053";
inline constexpr char kGatewayEndpoint[] = "127.0.0.1:6054";
inline constexpr char kShadowEndpoint[] = "127.0.0.1:6055";
inline constexpr char kRulesEndpoint[] = "127.0.0.1:6056";

}  // namespace fleetcore::service
