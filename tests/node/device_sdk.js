#!/usr/bin/env node
// The AWS IoT Device SDK v2 for JavaScript (aws-iot-device-sdk-v2, pinned in
// package-lock.json) against fleetcore, unchanged but for the endpoint and the CA: an MQTT 5
// client over mutual TLS publishes and receives on its thing's topics, then its shadow
// client updates the shadow and sees the accepted document and the delta.
//
//   node device_sdk.js PORT CA_FILE CERT_FILE KEY_FILE THING
'use strict';

const { mqtt5, iot, iotshadow } = require('aws-iot-device-sdk-v2');

const [, , port, ca, cert, key, thing] = process.argv;

function fail(what) {
  console.log(`FAIL ${what}`);
  process.exit(1);
}

const builder = iot.AwsIotMqtt5ClientConfigBuilder.newDirectMqttBuilderWithMtlsFromPath(
  'localhost', cert, key);
builder.withPort(Number(port));
builder.withCertificateAuthorityFromPath(undefined, ca);
builder.withConnectProperties({ clientId: thing, keepAliveIntervalSeconds: 60 });
const client = new mqtt5.Mqtt5Client(builder.build());
const timer = setTimeout(() => fail('timeout'), 30000);
client.on('connectionFailure', (e) => fail(`connect: ${e.error}`));

function waitFor(events, predicate) {
  return new Promise((resolve) => {
    const listener = (e) => {
      if (predicate(e)) {
        client.off(events, listener);
        resolve(e);
      }
    };
    client.on(events, listener);
  });
}

client.on('connectionSuccess', async () => {
  try {
    const topic = `things/${thing}/cmd`;
    const sub = await client.subscribe({
      subscriptions: [{ topicFilter: topic, qos: mqtt5.QoS.AtLeastOnce }],
    });
    if (sub.reasonCodes[0] !== 1) fail(`suback ${JSON.stringify(sub.reasonCodes)}`);
    const received = waitFor('messageReceived', (e) => e.message.topicName === topic);
    await client.publish({ topicName: topic, qos: mqtt5.QoS.AtLeastOnce, payload: 'hello' });
    const m = await received;
    if (Buffer.from(m.message.payload).toString() !== 'hello') fail('payload');
    console.log('published and received on', topic);

    // The SDK's shadow client, as its shadow sample uses it.
    const shadow = iotshadow.IotShadowClient.newFromMqtt5Client(client);
    const accepted = new Promise((resolve) => {
      shadow.subscribeToUpdateShadowAccepted({ thingName: thing }, mqtt5.QoS.AtLeastOnce,
        (error, response) => resolve({ error, response }));
    });
    const delta = new Promise((resolve) => {
      shadow.subscribeToShadowDeltaUpdatedEvents({ thingName: thing }, mqtt5.QoS.AtLeastOnce,
        (error, response) => resolve({ error, response }));
    });
    await new Promise((r) => setTimeout(r, 300));
    console.log('subscribed to the shadow topics');
    await shadow.publishUpdateShadow({
      thingName: thing,
      state: { desired: { color: 'green' }, reported: { color: 'red' } },
      clientToken: 'sdk-1',
    }, mqtt5.QoS.AtLeastOnce);
    console.log('shadow update published');
    const a = await accepted;
    if (a.error || !a.response || a.response.clientToken !== 'sdk-1') {
      fail(`update accepted ${JSON.stringify(a)}`);
    }
    const d = await delta;
    if (d.error || !d.response || d.response.state.color !== 'green') {
      fail(`delta ${JSON.stringify(d)}`);
    }
    clearTimeout(timer);
    console.log('ok device_sdk');
    client.stop();
    setTimeout(() => process.exit(0), 200);
  } catch (e) {
    fail(`exception ${e}`);
  }
});
client.start();
