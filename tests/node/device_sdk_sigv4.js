#!/usr/bin/env node
// The AWS IoT Device SDK v2 for JavaScript over a secure WebSocket signed with SigV4 and
// static credentials (an access key from fleetcore's CreateAccessKey), as its websocket
// samples connect: the MQTT 5 client (newWebsocketMqttBuilderWithSigv4Auth), then the
// MQTT 3.1.1 connection (AwsIotMqttConnectionConfigBuilder.new_with_websockets). Each
// publishes to things/CLIENT_ID/cmd and receives it back. A wrong secret is refused at
// CONNECT (reason 135). Last the MQTT 5 client connects again, subscribes to
// things/CLIENT_ID/# and stays, printing "holding", then "received TOPIC PAYLOAD" for what
// arrives (an HTTPS publish), and "cut" when the server ends the connection (its key
// deactivated).
//
// With SESSION_TOKEN (temporary credentials from GetSessionToken), only the MQTT 5 round
// trip, signed with the three of them, as a browser would.
//
//   node device_sdk_sigv4.js WSS_PORT CA_FILE REGION ACCESS_KEY_ID SECRET CLIENT_ID \
//       [SESSION_TOKEN]
'use strict';

const { auth, mqtt, mqtt5, iot } = require('aws-iot-device-sdk-v2');

const [, , wssPort, ca, region, accessKeyId, secret, clientId, sessionToken] = process.argv;

function fail(what) {
  console.log(`FAIL ${what}`);
  process.exit(1);
}

// An MQTT 5 client signed with `secretKey`; resolves with { client } or { error, connack }.
function connect5(secretKey) {
  const builder = iot.AwsIotMqtt5ClientConfigBuilder.newWebsocketMqttBuilderWithSigv4Auth(
    'localhost', {
      region,
      credentialsProvider: auth.AwsCredentialsProvider.newStatic(accessKeyId, secretKey,
                                                                 sessionToken),
    });
  builder.withPort(Number(wssPort));
  builder.withCertificateAuthorityFromPath(undefined, ca);
  builder.withConnectProperties({ clientId, keepAliveIntervalSeconds: 60 });
  const client = new mqtt5.Mqtt5Client(builder.build());
  return new Promise((resolve) => {
    client.on('connectionSuccess', () => resolve({ client }));
    client.on('connectionFailure', (e) => {
      client.stop();
      resolve({ error: e.error, connack: e.connack });
    });
    client.start();
  });
}

async function roundTrip5() {
  const { client, error } = await connect5(secret);
  if (error) fail(`mqtt5: connect: ${error}`);
  const topic = `things/${clientId}/cmd`;
  const received = new Promise((resolve) => {
    client.on('messageReceived', (e) => resolve(Buffer.from(e.message.payload).toString()));
  });
  const suback = await client.subscribe({
    subscriptions: [{ topicFilter: topic, qos: mqtt5.QoS.AtLeastOnce }],
  });
  if (suback.reasonCodes[0] > 2) fail(`mqtt5: subscribe refused: ${suback.reasonCodes}`);
  const puback = await client.publish({ topicName: topic, qos: mqtt5.QoS.AtLeastOnce,
                                        payload: 'sigv4 mqtt5' });
  if (puback.reasonCode !== 0) fail(`mqtt5: publish refused: ${puback.reasonCode}`);
  if ((await received) !== 'sigv4 mqtt5') fail('mqtt5: received another message');
  // Not allowed by the user's policy: refused (PUBACK 135).
  const denied = await client.publish({ topicName: 'elsewhere', qos: mqtt5.QoS.AtLeastOnce,
                                        payload: 'x' });
  if (denied.reasonCode !== 135) {
    fail(`mqtt5: a publish outside the policy got ${denied.reasonCode}`);
  }
  console.log(`mqtt5 over wss with sigv4${sessionToken ? ' and a session token' : ''}: `
              + 'published and received; outside the policy refused');
  await new Promise((resolve) => {
    client.on('stopped', resolve);
    client.stop();
  });
}

async function roundTrip311() {
  const builder = iot.AwsIotMqttConnectionConfigBuilder.new_with_websockets({
    region,
    credentials_provider: auth.AwsCredentialsProvider.newStatic(accessKeyId, secret),
  });
  builder.with_endpoint('localhost');
  builder.with_port(Number(wssPort));
  builder.with_certificate_authority_from_path(undefined, ca);
  builder.with_client_id(clientId);
  builder.with_clean_session(true);
  const connection = new mqtt.MqttClient().new_connection(builder.build());
  try {
    await connection.connect();
  } catch (e) {
    fail(`mqtt 3.1.1: connect: ${e}`);
  }
  const topic = `things/${clientId}/cmd`;
  const received = new Promise((resolve) => {
    connection.on('message', (t, payload) => resolve(Buffer.from(payload).toString()));
  });
  await connection.subscribe(topic, mqtt.QoS.AtLeastOnce);
  await connection.publish(topic, 'sigv4 mqtt311', mqtt.QoS.AtLeastOnce);
  if ((await received) !== 'sigv4 mqtt311') fail('mqtt 3.1.1: received another message');
  console.log('mqtt 3.1.1 over wss with sigv4: published and received');
  await connection.disconnect();
}

async function main() {
  setTimeout(() => fail('timed out'), 90000).unref();
  await roundTrip5();
  if (sessionToken) process.exit(0);
  await roundTrip311();
  // Another secret: the last character changed.
  const other = secret.slice(0, -1) + (secret.endsWith('x') ? 'y' : 'x');
  const refused = await connect5(other);
  if (!refused.error) fail('a signature by another secret was admitted');
  const code = refused.connack ? refused.connack.reasonCode : 'none';
  if (code !== 135) fail(`wrong secret: refused with CONNACK ${code}, not 135`);
  console.log('wrong secret: refused, not authorized');

  const { client, error } = await connect5(secret);
  if (error) fail(`hold: connect: ${error}`);
  client.on('messageReceived', (e) => {
    const payload = Buffer.from(e.message.payload).toString();
    console.log(`received ${e.message.topicName} ${payload}`);
  });
  const suback = await client.subscribe({
    subscriptions: [{ topicFilter: `things/${clientId}/#`, qos: mqtt5.QoS.AtLeastOnce }],
  });
  if (suback.reasonCodes[0] > 2) fail(`hold: subscribe refused: ${suback.reasonCodes}`);
  client.on('disconnection', (e) => {
    const code = e.disconnect ? e.disconnect.reasonCode : 'none';
    console.log(`cut: DISCONNECT ${code}`);
    client.stop();
    process.exit(0);
  });
  console.log('holding');
}

main().catch((e) => fail(e.stack || e));
