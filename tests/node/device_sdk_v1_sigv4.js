#!/usr/bin/env node
// The AWS IoT Device SDK for JavaScript v1 (aws-iot-device-sdk, the one browser and older
// Node apps use) over a secure WebSocket signed with SigV4 by its own signer, with an
// access key from fleetcore's CreateAccessKey: it subscribes to things/CLIENT_ID/cmd,
// publishes there and receives it back. The endpoint's CA comes from NODE_EXTRA_CA_CERTS.
//
//   NODE_EXTRA_CA_CERTS=ca.pem node device_sdk_v1_sigv4.js WSS_PORT REGION KEY_ID SECRET CLIENT_ID
'use strict';

const awsIot = require('aws-iot-device-sdk');

const [, , wssPort, region, accessKeyId, secretKey, clientId] = process.argv;

function fail(what) {
  console.log(`FAIL ${what}`);
  process.exit(1);
}

setTimeout(() => fail('timed out'), 30000).unref();
const device = awsIot.device({
  protocol: 'wss', host: 'localhost', port: Number(wssPort), region, accessKeyId, secretKey,
  clientId, autoResubscribe: false, maximumReconnectTimeMs: 2000,
});
const topic = `things/${clientId}/cmd`;
device.on('error', (e) => fail(`error: ${e.message || e}`));
device.on('close', () => console.log('closed'));
device.on('connect', () => {
  device.subscribe(topic, { qos: 1 }, (err, granted) => {
    if (err || !granted || granted[0].qos > 1) fail(`subscribe: ${err || JSON.stringify(granted)}`);
    device.publish(topic, 'sigv4 v1', { qos: 1 });
  });
});
device.on('message', (t, payload) => {
  if (t !== topic || payload.toString() !== 'sigv4 v1') fail(`received ${t} ${payload}`);
  console.log('v1 sdk over wss with sigv4: published and received');
  device.end(false, () => process.exit(0));
});
