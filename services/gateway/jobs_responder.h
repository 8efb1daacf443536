// AWS IoT Jobs' device topics, answered for a platform without jobs: fleetcore creates no
// jobs, so a thing never has one pending. A device built on the AWS IoT Device SDK or the
// AWS IoT Device Client (whose jobs feature is on by default) asks on start; on AWS it
// would get "nothing pending", and here it gets the same instead of being disconnected for
// publishing to a reserved topic:
//   $aws/things/{thing}/jobs/get            -> /get/accepted, no in-progress or queued jobs
//   $aws/things/{thing}/jobs/start-next     -> /start-next/accepted without an execution
//   $aws/things/{thing}/jobs/$next/get      -> /get/accepted without an execution
//   $aws/things/{thing}/jobs/{jobId}/get    -> /get/rejected, ResourceNotFound
//   $aws/things/{thing}/jobs/{jobId}/update -> /update/rejected, ResourceNotFound
// A request that is not JSON gets InvalidJson. Answers carry the request's clientToken and
// a timestamp (Unix ms), and go out as any message does (iot:Receive decides who gets them).
//
// Thread safety: MaybeAnswer may be called from any thread.
#pragma once

#include "services/gateway/broker.h"
#include "services/gateway/gateway_metrics.h"

namespace fleetcore::gateway {

class JobsResponder {
 public:
  // Nothing is owned; `metrics` may be null.
  JobsResponder(Broker* broker, GatewayMetrics* metrics) : broker_(broker), metrics_(metrics) {}

  // Answers the message when its topic is a jobs request (ParseJobsTopic).
  void MaybeAnswer(const MessagePtr& message);

 private:
  Broker* const broker_;
  GatewayMetrics* const metrics_;
};

}  // namespace fleetcore::gateway
