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
#include "nlohmann/json.hpp"

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
                                        const std::vector<std::string>& args, bool* no_paginate);

// The fields of a request as help text.
std::string VerbHelp(const Verb& verb);

// The AWS CLI's --generate-cli-skeleton: every field of `message` with a placeholder ("" for
// text and bytes, 0 for numbers, true for booleans, the first name of an enum, one element
// for a list, {"KeyName": ...} for a map), for --cli-input-json to take back. A message
// that contains itself is cut at its second appearance.
nlohmann::json Skeleton(const google::protobuf::Descriptor& message);

// Like the AWS CLI's create-keys-and-certificate: where to write the certificate and keys of
// a response (--certificate-pem-outfile, --public-key-outfile, --private-key-outfile).
struct OutFiles {
  std::string certificate_pem;
  std::string public_key;
  std::string private_key;
  bool empty() const {
    return certificate_pem.empty() && public_key.empty() && private_key.empty();
  }
};

// Removes the three options (--opt PATH or --opt=PATH) from `args`. Refuses a private-key
// file that exists already, before anything is asked of the service.
absl::StatusOr<OutFiles> TakeOutFiles(std::vector<std::string>* args);

// Writes certificatePem, keyPair.publicKey and keyPair.privateKey (or privateKey) of the
// response `out` to the files asked for: the private key with mode 0600, created anew (an
// existing file is not overwritten). A written private key is replaced in `out` by a note,
// so it is not also printed.
absl::Status WriteOutFiles(const OutFiles& files, nlohmann::json* out);

}  // namespace fleetcore::fleetctl
