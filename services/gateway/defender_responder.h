// AWS IoT Device Defender's device-side metrics, as its agents send them (the AWS IoT
// Device SDKs' Device Defender clients, the AWS IoT Device Client's device-defender
// feature, FreeRTOS's defender library):
//   $aws/things/{thing}/defender/metrics/json   a metrics report in JSON
//   $aws/things/{thing}/defender/metrics/cbor   the same in CBOR
// Each report is checked against AWS's specification of the document (CheckDefenderReport,
// defender_report.h) and answered on {topic}/accepted or {topic}/rejected, in the report's
// own format:
//   {"thingName": T, "reportId": N, "status": "ACCEPTED", "timestamp": ms}
//   {"thingName": T, "reportId": N, "status": "REJECTED", "timestamp": ms,
//    "statusDetails": {"ErrorCode": "InvalidJson" | "InvalidReport", "ErrorMessage": why}}
// (reportId only when the header has one). On AWS a device that publishes here gets the same
// answers; here it used to be disconnected for publishing to a reserved topic.
// fleetcore has no Detect (security profiles): a report goes on as any message does, to
// the rules engine (a rule on the topic keeps or forwards it) and to the subscribers
// iot:Receive allows. Answers go out as any message does too (iot:Receive decides who
// gets them).
//
// Thread safety: MaybeAnswer may be called from any thread.
#pragma once

#include "services/gateway/broker.h"
#include "services/gateway/gateway_metrics.h"

namespace fleetcore::gateway {

class DefenderResponder {
 public:
  // Nothing is owned; `metrics` may be null.
  DefenderResponder(Broker* broker, GatewayMetrics* metrics) : broker_(broker), metrics_(metrics) {}

  // Answers the message when its topic is a metrics report (ParseDefenderTopic).
  void MaybeAnswer(const MessagePtr& message);

 private:
  Broker* const broker_;
  GatewayMetrics* const metrics_;
};

}  // namespace fleetcore::gateway
