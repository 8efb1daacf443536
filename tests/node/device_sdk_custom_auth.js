#!/usr/bin/env node
// The AWS IoT Device SDK v2 for JavaScript with a custom authorizer and a signed token, as
// its custom_authorizer_connect sample connects: first straight over TLS with ALPN "mqtt"
// (newDirectMqttBuilderWithCustomAuth, which URL-encodes the signature into the user name),
// then over a secure WebSocket (newWebsocketMqttBuilderWithCustomAuth, which sends it
// unencoded). Each time the client publishes to things/CLIENT_ID/cmd and receives it back.
// Last, a token the signature does not sign is refused at CONNECT (reason 135).
//
//   node device_sdk_custom_auth.js MQTTS_PORT WSS_PORT CA_FILE AUTHORIZER TOKEN_KEY_NAME \
//       TOKEN SIGNATURE CLIENT_ID
'use strict';

const { mqtt5, iot } = require('aws-iot-device-sdk-v2');

const [, , mqttsPort, wssPort, ca, authorizerName, tokenKeyName, token, signature, clientId] =
  process.argv;

function fail(what) {
  console.log(`FAIL ${what}`);
  process.exit(1);
}

// Starts a client from `builderName` and resolves with { client, connack } on success or
// { error, connack } on a refusal.
function connect(builderName, port, tokenValue) {
  const builder = iot.AwsIotMqtt5ClientConfigBuilder[builderName]('localhost', {
    authorizerName, username: 'device', tokenKeyName, tokenValue, tokenSignature: signature,
  });
  builder.withPort(Number(port));
  builder.withCertificateAuthorityFromPath(undefined, ca);
  builder.withConnectProperties({ clientId, keepAliveIntervalSeconds: 60 });
  const client = new mqtt5.Mqtt5Client(builder.build());
  return new Promise((resolve) => {
    client.on('connectionSuccess', (e) => resolve({ client, connack: e.connack }));
    client.on('connectionFailure', (e) => {
      client.stop();
      resolve({ error: e.error, connack: e.connack });
    });
    client.start();
  });
}

async function roundTrip(builderName, port) {
  const { client, error } = await connect(builderName, port, token);
  if (error) fail(`${builderName}: connect: ${error}`);
  const topic = `things/${clientId}/cmd`;
  const received = new Promise((resolve) => {
    client.on('messageReceived', (e) => resolve(Buffer.from(e.message.payload).toString()));
  });
  const suback = await client.subscribe({
    subscriptions: [{ topicFilter: topic, qos: mqtt5.QoS.AtLeastOnce }],
  });
  if (suback.reasonCodes[0] > 2) fail(`${builderName}: subscribe refused: ${suback.reasonCodes}`);
  const puback = await client.publish({ topicName: topic, qos: mqtt5.QoS.AtLeastOnce,
                                        payload: builderName });
  if (puback.reasonCode !== 0) fail(`${builderName}: publish refused: ${puback.reasonCode}`);
  const payload = await received;
  if (payload !== builderName) fail(`${builderName}: received ${payload}`);
  console.log(`${builderName}: published and received`);
  await new Promise((resolve) => {
    client.on('stopped', resolve);
    client.stop();
  });
}

async function main() {
  setTimeout(() => fail('timed out'), 30000).unref();
  await roundTrip('newDirectMqttBuilderWithCustomAuth', mqttsPort);
  await roundTrip('newWebsocketMqttBuilderWithCustomAuth', wssPort);
  const refused = await connect('newDirectMqttBuilderWithCustomAuth', mqttsPort,
                                `not-${token}`);
  if (!refused.error) fail('a token the signature does not sign was admitted');
  const code = refused.connack ? refused.connack.reasonCode : 'none';
  if (code !== 135) fail(`refused with CONNACK ${code}, not 135 (not authorized)`);
  console.log('wrong token: refused, not authorized');
  console.log('ok device_sdk_custom_auth');
  process.exit(0);
}

main().catch((e) => fail(e.stack || e));
