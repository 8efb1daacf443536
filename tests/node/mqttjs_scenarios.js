#!/usr/bin/env node
// MQTT.js (the Node.js MQTT client, from tests/node/package-lock.json) against a running
// fleetcore gateway over TCP, TLS, WebSocket and secure WebSocket, MQTT 3.1.1 and 5.
// Exits 0 when the scenario held, 1 with the reason otherwise.
//
//   node mqttjs_scenarios.js roundtrip --url ws://127.0.0.1:PORT/mqtt --version 5 [--ca FILE]
//   node mqttjs_scenarios.js aliases --url mqtt://127.0.0.1:PORT
'use strict';

const fs = require('fs');
const mqtt = require('mqtt');

function parseArgs(argv) {
  const out = { scenario: argv[0], version: 5 };
  for (let i = 1; i < argv.length; i += 2) out[argv[i].replace(/^--/, '')] = argv[i + 1];
  out.version = Number(out.version);
  return out;
}

const args = parseArgs(process.argv.slice(2));
const prefix = `e2e/js/${Math.random().toString(16).slice(2, 8)}`;

// `query` (optional) is appended to the URL's path, for credentials in the query string.
function connect(clientId, extra = {}, query = '') {
  const options = {
    clientId,
    protocolVersion: args.version,
    reconnectPeriod: 0,
    connectTimeout: 10000,
    ...extra,
  };
  if (args.ca) {
    options.ca = fs.readFileSync(args.ca);
    options.servername = 'localhost';
    options.rejectUnauthorized = true;
  }
  const url = (args.ca ? args.url.replace('127.0.0.1', 'localhost') : args.url) + query;
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, options);
    client.once('connect', (connack) => resolve({ client, connack }));
    client.once('error', reject);
  });
}

function nextMessage(client, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no message within 10s')), timeoutMs);
    client.once('message', (topic, payload, packet) => {
      clearTimeout(timer);
      resolve({ topic, payload: payload.toString(), packet });
    });
  });
}

function check(cond, what) {
  if (!cond) throw new Error(what);
}

async function roundtrip() {
  const { client: sub } = await connect(`js-sub-${Date.now()}`);
  const granted = await sub.subscribeAsync(`${prefix}/rt/#`, { qos: 2 });
  check(granted[0].qos === 2, `granted ${JSON.stringify(granted)}`);
  const { client: pub } = await connect(`js-pub-${Date.now()}`);
  for (const qos of [0, 1, 2]) {
    const properties = args.version === 5
      ? { userProperties: { device: 'lamp-1', qos: String(qos) }, contentType: 'text/plain' }
      : undefined;
    const waiting = nextMessage(sub);
    await pub.publishAsync(`${prefix}/rt/q${qos}`, `hello ${qos}`, { qos, properties });
    const m = await waiting;
    check(m.topic === `${prefix}/rt/q${qos}` && m.payload === `hello ${qos}`,
      `got ${m.topic} ${m.payload}`);
    check(m.packet.qos === qos, `delivered at QoS ${m.packet.qos}, sent ${qos}`);
    if (args.version === 5) {
      const p = m.packet.properties || {};
      check(p.contentType === 'text/plain', `content type ${p.contentType}`);
      check(p.userProperties && p.userProperties.device === 'lamp-1',
        `user properties ${JSON.stringify(p.userProperties)}`);
    }
  }
  // A retained message reaches a later subscriber with RETAIN set.
  await pub.publishAsync(`${prefix}/rt/state`, 'on', { qos: 1, retain: true });
  const { client: late } = await connect(`js-late-${Date.now()}`);
  const waiting = nextMessage(late);
  await late.subscribeAsync(`${prefix}/rt/state`, { qos: 1 });
  const m = await waiting;
  check(m.payload === 'on' && m.packet.retain, `retained: ${m.payload} retain=${m.packet.retain}`);
  await pub.publishAsync(`${prefix}/rt/state`, '', { qos: 1, retain: true });
  await Promise.all([sub.endAsync(), pub.endAsync(), late.endAsync()]);
}

async function aliases() {
  // MQTT.js assigns topic aliases itself (autoAssignTopicAlias) within the broker's maximum.
  const { client: sub } = await connect(`js-asub-${Date.now()}`);
  await sub.subscribeAsync(`${prefix}/alias/#`, { qos: 1 });
  const { client: pub, connack } = await connect(`js-apub-${Date.now()}`,
    { autoAssignTopicAlias: true });
  check(connack.properties && connack.properties.topicAliasMaximum > 0,
    `no Topic Alias Maximum in CONNACK: ${JSON.stringify(connack.properties)}`);
  const received = [];
  sub.on('message', (topic, payload) => received.push(`${topic} ${payload}`));
  for (let i = 0; i < 5; i++) {
    await pub.publishAsync(`${prefix}/alias/a`, `a${i}`, { qos: 1 });
    await pub.publishAsync(`${prefix}/alias/b`, `b${i}`, { qos: 1 });
  }
  const deadline = Date.now() + 10000;
  while (received.length < 10 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const want = [];
  for (let i = 0; i < 5; i++) want.push(`${prefix}/alias/a a${i}`, `${prefix}/alias/b b${i}`);
  check(JSON.stringify(received) === JSON.stringify(want), `received ${JSON.stringify(received)}`);
  await Promise.all([sub.endAsync(), pub.endAsync()]);
}

async function customAuthWs() {
  // A custom authorizer named in the WebSocket upgrade's headers, its token in the header
  // named by the authorizer's tokenKeyName (x-token), as AWS's WSS custom auth works; then
  // both in the query string.
  const headers = { 'x-amz-customauthorizer-name': args.authorizer, 'x-token': args.token };
  const { client } = await connect('dev-ws', { wsOptions: { headers } });
  const granted = await client.subscribeAsync('things/dev-ws/cmd', { qos: 1 });
  check(granted[0].qos === 1, `own topic subscription ${JSON.stringify(granted)}`);
  // MQTT.js rejects a subscription the broker refused (SUBACK 0x87).
  let refused = '';
  try {
    await client.subscribeAsync('things/other/cmd', { qos: 1 });
  } catch (e) {
    refused = String(e && e.message);
  }
  check(/not authorized/i.test(refused), `other topic subscription: "${refused}"`);
  await client.endAsync();
  let rejected = false;
  try {
    await connect('dev-ws', { wsOptions: { headers: { ...headers, 'x-token': 'wrong' } } });
  } catch (e) {
    rejected = true;
  }
  check(rejected, 'a wrong token was admitted');
  // The same credentials in the upgrade request's query string instead, as a browser (which
  // cannot set WebSocket headers) sends them.
  const query = `?x-amz-customauthorizer-name=${encodeURIComponent(args.authorizer)}` +
                `&x-token=${encodeURIComponent(args.token)}`;
  const { client: byQuery } = await connect('dev-ws', {}, query);
  const own = await byQuery.subscribeAsync('things/dev-ws/cmd', { qos: 1 });
  check(own[0].qos === 1, `own topic subscription with a query token ${JSON.stringify(own)}`);
  await byQuery.endAsync();
}

const scenarios = { roundtrip, aliases, 'custom-auth-ws': customAuthWs };

(async () => {
  const run = scenarios[args.scenario];
  if (!run) {
    console.log(`unknown scenario ${args.scenario}`);
    process.exit(2);
  }
  try {
    await run();
    console.log(`ok ${args.scenario}`);
    process.exit(0);
  } catch (e) {
    console.log(`FAIL ${args.scenario}: ${e && e.message ? e.message : e}`);
    process.exit(1);
  }
})();
