// An AWS IoT Device SDK v2 MQTT 5 client over mutual TLS to the local gateway, built as the
// SDK's samples build one: only the endpoint, the port and the CA differ from AWS's.
'use strict';

const { mqtt5, iot } = require('aws-iot-device-sdk-v2');

// Resolves with the started client once it is connected; calls `fail` when it cannot
// connect. `onMessage(topic, payload)`, when given, receives every message.
function connectMtls({ port, ca, cert, key, clientId, fail, onMessage }) {
  const builder = iot.AwsIotMqtt5ClientConfigBuilder.newDirectMqttBuilderWithMtlsFromPath(
    'localhost', cert, key);
  builder.withPort(Number(port));
  builder.withCertificateAuthorityFromPath(undefined, ca);
  builder.withConnectProperties({ clientId, keepAliveIntervalSeconds: 60 });
  const client = new mqtt5.Mqtt5Client(builder.build());
  if (onMessage) {
    client.on('messageReceived', (e) => onMessage(e.message.topicName, e.message.payload));
  }
  return new Promise((resolve) => {
    client.on('connectionFailure', (e) => fail(`connect as ${clientId}: ${e.error}`));
    client.on('connectionSuccess', () => resolve(client));
    client.start();
  });
}

module.exports = { connectMtls };
