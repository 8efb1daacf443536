#!/usr/bin/env node
// Fleet provisioning by claim with the AWS IoT Device SDK v2 for JavaScript, as its
// fleet_provisioning sample does it, against fleetcore: connect with the claim certificate,
// CreateKeysAndCertificate (MODE keys) or CreateCertificateFromCsr with a key the device
// made itself (MODE csr), and RegisterThing, through the SDK's identity client (which parses
// fleetcore's answers with the SDK's own models), then connect again with the new
// certificate as the new thing and publish. MODE v2 does the first with the SDK's
// request-response identity client (IotIdentityClientv2), as its current sample does, and
// has it read a rejection (a token that is not one) into AWS's error model.
//
//   node device_sdk_provision.js PORT CA_FILE CLAIM_CERT CLAIM_KEY TEMPLATE SERIAL OUT_DIR [MODE]
'use strict';

const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { mqtt, mqtt5, iotidentity } = require('aws-iot-device-sdk-v2');
const { connectMtls } = require('./sdk_mtls');

const [, , port, ca, claimCert, claimKey, template, serial, outDir, mode = 'keys'] =
  process.argv;

function fail(what) {
  console.log(`FAIL ${what}`);
  process.exit(1);
}
const timer = setTimeout(() => fail('timeout'), 45000);

// The fields a certificate answer carries (CreateKeysAndCertificate's with its private key).
const CERTIFICATE_FIELDS = ['certificateId', 'certificatePem', 'certificateOwnershipToken'];
const KEYS_FIELDS = [...CERTIFICATE_FIELDS, 'privateKey'];

function requireFields(what, response, fields) {
  for (const field of fields) if (!response[field]) fail(`${what} answer lacks ${field}`);
}

// Starts an MQTT 5 client over mutual TLS and resolves once it is connected.
function connect(certPath, keyPath, clientId) {
  return connectMtls({ port, ca, cert: certPath, key: keyPath, clientId, fail });
}

// Subscribes to an accepted/rejected pair and resolves with the first answer of either.
async function answerOf(subscribeAccepted, subscribeRejected) {
  let settle;
  const answer = new Promise((resolve) => { settle = resolve; });
  await subscribeAccepted((error, response) => settle({ accepted: true, error, response }));
  await subscribeRejected((error, response) => settle({ accepted: false, error, response }));
  return answer;
}

async function main() {
  const claim = await connect(claimCert, claimKey, `claim-${serial}`);
  const identity = iotidentity.IotIdentityClient.newFromMqtt5Client(claim);
  const qos = mqtt.QoS.AtLeastOnce;

  let k;
  let privateKey;
  let registerThing;  // resolves with RegisterThing's answer, as { accepted, error, response }
  if (mode === 'v2') {
    const v2 = iotidentity.IotIdentityClientv2.newFromMqtt5(claim, {
      maxRequestResponseSubscriptions: 2, maxStreamingSubscriptions: 0,
      operationTimeoutInSeconds: 10,
    });
    k = { accepted: true, response: await v2.createKeysAndCertificate({}) };
    requireFields('v2 CreateKeysAndCertificate', k.response, KEYS_FIELDS);
    privateKey = k.response.privateKey;
    try {
      await v2.registerThing({ templateName: template, certificateOwnershipToken: 'not-a-token',
        parameters: { SerialNumber: serial } });
      fail('v2 RegisterThing accepted a token that is not one');
    } catch (e) {
      const m = e.modeledError;
      if (!m || m.statusCode !== 400 || m.errorCode !== 'InvalidCertificateOwnershipToken') {
        fail(`v2 RegisterThing rejection: ${e} ${JSON.stringify(m)}`);
      }
    }
    registerThing = async (request) => {
      const response = await v2.registerThing(request);
      return { accepted: true, response };
    };
  } else if (mode === 'csr') {
    // The device's own key, which never leaves it; only the CSR is sent.
    const keyFile = path.join(outDir, `device-${serial}.key`);
    const csr = execFileSync('openssl', [
      'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-subj', `/CN=device-${serial}`, '-keyout', keyFile], { stdio: ['ignore', 'pipe', 'ignore'] })
      .toString();
    privateKey = fs.readFileSync(keyFile, 'utf8');
    const created = answerOf(
      (h) => identity.subscribeToCreateCertificateFromCsrAccepted({}, qos, h),
      (h) => identity.subscribeToCreateCertificateFromCsrRejected({}, qos, h));
    await identity.publishCreateCertificateFromCsr({ certificateSigningRequest: csr }, qos);
    k = await created;
    if (!k.accepted || k.error) fail(`CreateCertificateFromCsr: ${JSON.stringify(k)}`);
    if (k.response.privateKey) fail('CreateCertificateFromCsr answered with a private key');
    requireFields('CreateCertificateFromCsr', k.response, CERTIFICATE_FIELDS);
  } else {
    const keys = answerOf(
      (h) => identity.subscribeToCreateKeysAndCertificateAccepted({}, qos, h),
      (h) => identity.subscribeToCreateKeysAndCertificateRejected({}, qos, h));
    await identity.publishCreateKeysAndCertificate({}, qos);
    k = await keys;
    if (!k.accepted || k.error) fail(`CreateKeysAndCertificate: ${JSON.stringify(k)}`);
    requireFields('CreateKeysAndCertificate', k.response, KEYS_FIELDS);
    privateKey = k.response.privateKey;
  }
  console.log('new certificate', k.response.certificateId);

  if (registerThing === undefined) {
    registerThing = async (request) => {
      const registered = answerOf(
        (h) => identity.subscribeToRegisterThingAccepted({ templateName: template }, qos, h),
        (h) => identity.subscribeToRegisterThingRejected({ templateName: template }, qos, h));
      await identity.publishRegisterThing(request, qos);
      return registered;
    };
  }
  const r = await registerThing({
    templateName: template,
    certificateOwnershipToken: k.response.certificateOwnershipToken,
    parameters: { SerialNumber: serial },
  });
  if (!r.accepted || r.error || !r.response.thingName) fail(`RegisterThing: ${JSON.stringify(r)}`);
  const thing = r.response.thingName;
  console.log('registered thing', thing);
  await claim.stop();

  const certPath = path.join(outDir, `${thing}.pem`);
  const keyPath = path.join(outDir, `${thing}.key`);
  fs.writeFileSync(certPath, k.response.certificatePem);
  fs.writeFileSync(keyPath, privateKey, { mode: 0o600 });
  const device = await connect(certPath, keyPath, thing);
  const ack = await device.publish({
    topicName: `things/${thing}/telemetry`, qos: mqtt5.QoS.AtLeastOnce, payload: 'hello',
  });
  if (!ack || ack.reasonCode !== 0) {  // PUBACK success
    fail(`publish as ${thing}: ${JSON.stringify(ack)}`);
  }
  clearTimeout(timer);
  console.log(`ok device_sdk_provision ${thing}`);
  device.stop();
  setTimeout(() => process.exit(0), 200);
}

main().catch((e) => fail(`exception ${e}`));
