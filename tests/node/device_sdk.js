#!/usr/bin/env node
// The AWS IoT Device SDK v2 for JavaScript (aws-iot-device-sdk-v2, pinned in
// package-lock.json) against fleetcore, unchanged but for the endpoint and the CA: a client
// over mutual TLS publishes and receives on its thing's topics, then the SDK's shadow client
// updates the shadow (desired color green over MQTT 5, blue over
// 3.1.1) and sees the accepted document and the delta, and the SDK's jobs client asks for
// its pending jobs and the next one (fleetcore has none). Then the SDK's request-response
// service clients, which its current samples use (IotShadowClientv2, IotJobsClientv2): they
// subscribe to `.../get/+`-style filters, match answers to requests by clientToken, and read
// AWS's error documents into `modeledError`. PROTOCOL is 5 (the SDK's Mqtt5Client, the
// default) or 3.1.1 (its MqttClientConnection, which older samples use).
//
//   node device_sdk.js PORT CA_FILE CERT_FILE KEY_FILE THING [PROTOCOL]
'use strict';

const { once } = require('events');

const { mqtt, mqtt5, iot, iotjobs, iotshadow, mqtt_request_response: rr } =
  require('aws-iot-device-sdk-v2');
// The SDK's own runtime (pinned with it in package-lock.json), for its subscription events.
const { SubscriptionStatusEventType } = require('aws-crt').mqtt_request_response;
const { connectMtls } = require('./sdk_mtls');

const [, , port, ca, cert, key, thing, protocol = '5'] = process.argv;

function fail(what) {
  console.log(`FAIL ${what}`);
  process.exit(1);
}

// The request-response clients' options, as the SDK's samples set them.
const rrOptions = {
  maxRequestResponseSubscriptions: 4,
  maxStreamingSubscriptions: 2,
  operationTimeoutInSeconds: 10,
};

// The same three operations over either client: subscribe (resolving on the SUBACK with
// whether it was granted), publish at QoS 1, and the SDK's shadow client.
async function connectMqtt5(onMessage) {
  const client = await connectMtls({ port, ca, cert, key, clientId: thing, fail, onMessage });
  return {
    subscribe: async (filter) => {
      const sub = await client.subscribe({
        subscriptions: [{ topicFilter: filter, qos: mqtt5.QoS.AtLeastOnce }],
      });
      return sub.reasonCodes[0] === 1;
    },
    publish: (topic, payload) => client.publish({
      topicName: topic, qos: mqtt5.QoS.AtLeastOnce, payload,
    }),
    shadow: () => iotshadow.IotShadowClient.newFromMqtt5Client(client),
    jobs: () => iotjobs.IotJobsClient.newFromMqtt5Client(client),
    shadowV2: () => iotshadow.IotShadowClientv2.newFromMqtt5(client, rrOptions),
    jobsV2: () => iotjobs.IotJobsClientv2.newFromMqtt5(client, rrOptions),
    stop: () => client.stop(),
  };
}

async function connectMqtt311(onMessage) {
  const builder = iot.AwsIotMqttConnectionConfigBuilder.new_mtls_builder_from_path(cert, key);
  builder.with_endpoint('localhost');
  builder.with_port(Number(port));
  builder.with_certificate_authority_from_path(undefined, ca);
  builder.with_client_id(thing);
  builder.with_clean_session(true);
  const connection = new mqtt.MqttClient().new_connection(builder.build());
  connection.on('message', (topic, payload) => onMessage(topic, payload));
  try {
    await connection.connect();
  } catch (e) {
    fail(`connect: ${e}`);
  }
  return {
    subscribe: async (filter) => {
      const sub = await connection.subscribe(filter, mqtt.QoS.AtLeastOnce);
      return sub.qos === mqtt.QoS.AtLeastOnce;
    },
    publish: (topic, payload) => connection.publish(topic, payload, mqtt.QoS.AtLeastOnce),
    shadow: () => new iotshadow.IotShadowClient(connection),
    jobs: () => new iotjobs.IotJobsClient(connection),
    shadowV2: () => iotshadow.IotShadowClientv2.newFromMqtt311(connection, rrOptions),
    jobsV2: () => iotjobs.IotJobsClientv2.newFromMqtt311(connection, rrOptions),
    stop: () => connection.disconnect(),
  };
}

async function main() {
  const topic = `things/${thing}/cmd`;
  let received;
  const hello = new Promise((resolve) => { received = resolve; });
  const onMessage = (t, payload) => {
    if (t === topic) received(Buffer.from(payload).toString());
  };
  const client = protocol === '3.1.1' ? await connectMqtt311(onMessage)
    : await connectMqtt5(onMessage);
  if (!await client.subscribe(topic)) fail(`subscription to ${topic} refused`);
  await client.publish(topic, 'hello');
  if (await hello !== 'hello') fail('payload');
  console.log(`MQTT ${protocol}: published and received on ${topic}`);

  // The SDK's shadow client, as its shadow sample uses it.
  const shadow = client.shadow();
  const qos = mqtt.QoS.AtLeastOnce;
  const accepted = new Promise((resolve) => {
    shadow.subscribeToUpdateShadowAccepted({ thingName: thing }, qos,
      (error, response) => resolve({ error, response }));
  });
  const delta = new Promise((resolve) => {
    shadow.subscribeToShadowDeltaUpdatedEvents({ thingName: thing }, qos,
      (error, response) => resolve({ error, response }));
  });
  await new Promise((r) => setTimeout(r, 300));
  console.log('subscribed to the shadow topics');
  const token = `sdk-${protocol}`;
  const color = protocol === '3.1.1' ? 'blue' : 'green';
  await shadow.publishUpdateShadow({
    thingName: thing,
    state: { desired: { color }, reported: { color: 'red' } },
    clientToken: token,
  }, qos);
  console.log('shadow update published');
  const a = await accepted;
  if (a.error || !a.response || a.response.clientToken !== token) {
    fail(`update accepted ${JSON.stringify(a)}`);
  }
  const d = await delta;
  if (d.error || !d.response || d.response.state.color !== color) {
    fail(`delta ${JSON.stringify(d)}`);
  }

  // The SDK's jobs client, as its jobs sample starts: the pending jobs, then the next one.
  const jobs = client.jobs();
  const pending = new Promise((resolve) => {
    jobs.subscribeToGetPendingJobExecutionsAccepted({ thingName: thing }, qos,
      (error, response) => resolve({ error, response }));
  });
  const next = new Promise((resolve) => {
    jobs.subscribeToStartNextPendingJobExecutionAccepted({ thingName: thing }, qos,
      (error, response) => resolve({ error, response }));
  });
  await new Promise((r) => setTimeout(r, 300));
  await jobs.publishGetPendingJobExecutions({ thingName: thing, clientToken: token }, qos);
  const p = await pending;
  if (p.error || !p.response || p.response.clientToken !== token ||
      p.response.inProgressJobs.length !== 0 || p.response.queuedJobs.length !== 0) {
    fail(`pending jobs ${JSON.stringify(p)}`);
  }
  await jobs.publishStartNextPendingJobExecution({ thingName: thing, clientToken: token }, qos);
  const n = await next;
  if (n.error || !n.response || n.response.execution !== undefined) {
    fail(`start-next ${JSON.stringify(n)}`);
  }
  console.log('jobs: none pending');
  await serviceClientsV2(client);
  console.log('ok device_sdk');
  await client.stop();
  setTimeout(() => process.exit(0), 200);
}

// `promise`, a request of a v2 service client, is rejected with AWS's error document.
async function expectRejected(what, promise, code, message) {
  try {
    await promise;
  } catch (e) {
    const m = e.modeledError;
    if (!m || m.code !== code || m.message !== message) fail(`${what}: ${e} ${JSON.stringify(m)}`);
    return;
  }
  fail(`${what}: accepted`);
}

// Opens a v2 client's event stream and waits until its subscription is established.
async function openStream(what, stream) {
  const established = once(stream, rr.StreamingOperation.SUBSCRIPTION_STATUS);
  stream.open();
  const [status] = await established;
  if (status.type !== SubscriptionStatusEventType.SubscriptionEstablished) {
    fail(`${what} stream ${JSON.stringify(status)}`);
  }
  return stream;
}

async function serviceClientsV2(client) {
  const shadow = client.shadowV2();
  const name = `v2-mqtt${protocol.replaceAll('.', '')}`;  // no dots in shadow names
  const request = { thingName: thing, shadowName: name };
  await expectRejected('get before any update', shadow.getNamedShadow(request), 404,
    `No shadow exists with name: '${name}'`);
  // The delta and documents streams, open before the update that makes a delta.
  const deltas = await openStream('delta', shadow.createNamedShadowDeltaUpdatedStream(request));
  const documents =
    await openStream('documents', shadow.createNamedShadowUpdatedStream(request));
  const delta = once(deltas, rr.StreamingOperation.INCOMING_PUBLISH);
  const documented = once(documents, rr.StreamingOperation.INCOMING_PUBLISH);
  const first = await shadow.updateNamedShadow({
    ...request,
    state: { desired: { color: 'green', on: true }, reported: { color: 'red', on: true } },
  });
  if (first.state.desired.color !== 'green' || first.version !== 1) {
    fail(`v2 update ${JSON.stringify(first)}`);
  }
  const [event] = await delta;
  if (JSON.stringify(event.message.state) !== '{"color":"green"}') {
    fail(`v2 delta ${JSON.stringify(event.message)}`);
  }
  const [doc] = await documented;
  const current = doc.message.current;
  if (!current || current.version !== 1 || current.state.desired.color !== 'green' ||
      current.state.reported.color !== 'red') {
    fail(`v2 documents ${JSON.stringify(doc.message)}`);
  }
  await shadow.updateNamedShadow({ ...request, state: { reported: { color: 'green' } } });
  const got = await shadow.getNamedShadow(request);
  if (got.state.reported.color !== 'green' || got.state.delta !== undefined || got.version !== 2) {
    fail(`v2 get ${JSON.stringify(got)}`);
  }
  // A writer behind the shadow's version is told so.
  await expectRejected('stale version',
    shadow.updateNamedShadow({ ...request, version: 1, state: { desired: { on: false } } }), 409,
    'Version conflict');
  const deleted = await shadow.deleteNamedShadow(request);
  if (deleted.version !== 2) fail(`v2 delete ${JSON.stringify(deleted)}`);
  await expectRejected('get after delete', shadow.getNamedShadow(request), 404,
    `No shadow exists with name: '${name}'`);
  deltas.close();
  documents.close();
  shadow.close();
  console.log(`shadow v2 client: ${name} created, delta, documents, reported, conflict, deleted`);

  const jobs = client.jobsV2();
  // As the SDK's jobs sample starts: the next-job stream, then the pending jobs.
  const next = await openStream('next job',
    jobs.createNextJobExecutionChangedStream({ thingName: thing }));
  const pending = await jobs.getPendingJobExecutions({ thingName: thing });
  if (pending.inProgressJobs.length !== 0 || pending.queuedJobs.length !== 0) {
    fail(`v2 pending jobs ${JSON.stringify(pending)}`);
  }
  next.close();
  jobs.close();
  console.log('jobs v2 client: none pending');
}

setTimeout(() => fail('timeout'), 30000).unref();
main().catch((e) => fail(`exception ${e}`));
