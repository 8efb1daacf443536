// fleetctl provision-bulk: provisions many devices with one template (ProvisionDevice per
// device, several at once) and writes each device's credentials to its own folder, with a
// progress line on a terminal. Beyond the AWS CLI, which has StartThingRegistrationTask.
//
//   fleetctl provision-bulk --template-name sensors --count 100 --out-dir ./devices
//       --parameters '{"SerialNumber": "sn-{i}"}' [--start 1] [--concurrency 8]
//
// {i} in a parameter value is the device's number. Each device gets DIR/<thing name or
// certificate id>/ with certificate.pem.crt, private.pem.key (0600) and public.pem.key, and a
// line in DIR/manifest.jsonl. Exit status 0 when every device was provisioned, 1 otherwise.
#pragma once

#include <string>
#include <vector>

#include "common/grpc/client.h"

namespace fleetcore::fleetctl {

int ProvisionBulk(const grpc_util::ServiceChannel& channel, const std::vector<std::string>& args);

// The help text of provision-bulk.
const char* ProvisionBulkHelp();

}  // namespace fleetcore::fleetctl
