// fleetctl's command line, derived from the gRPC services' descriptors as the AWS CLI is
// derived from its API models: method CreateThing is verb create-thing, request field
// thing_name is flag --thing-name, and the response prints as the proto JSON mapping
// (lowerCamelCase keys, like `aws iot`).
//
// Values: strings and numbers as given; booleans as --flag, --no-flag or --flag=false;
// enums by name; messages, maps and lists as JSON, inline or file://PATH.
// --cli-input-json takes the whole request as JSON (fields given as flags override it).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/descriptor.h"

namespace fleetcore::fleetctl {

// A service fleetctl can call, and where to find it by default.
struct ServiceEntry {
  const google::protobuf::ServiceDescriptor* service;
  std::string short_name;        // "registry": FLEETCORE_REGISTRY_ENDPOINT
  std::string default_endpoint;  // the local stack's address
};

struct Verb {
  std::string name;  // "create-thing"
  const ServiceEntry* service;
  const google::protobuf::MethodDescriptor* method;
};

// "CreateThing" -> "create-thing"; "thing_name" -> "thing-name".
std::string KebabFromCamel(absl::string_view camel);
std::string KebabFromSnake(absl::string_view snake);

std::vector<Verb> AllVerbs(const std::vector<ServiceEntry>& services);

// Builds the request's JSON from the verb's arguments (everything after the verb).
// INVALID_ARGUMENT names the flag and what it expected.
absl::StatusOr<std::string> RequestJson(const google::protobuf::Descriptor& request,
                                        const std::vector<std::string>& args,
                                        bool* no_paginate);

// The fields of a request as help text.
std::string VerbHelp(const Verb& verb);

}  // namespace fleetcore::fleetctl
