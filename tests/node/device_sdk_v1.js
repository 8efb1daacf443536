#!/usr/bin/env node
// The AWS IoT Device SDK for JavaScript v1 (aws-iot-device-sdk) over mutual TLS with its
// thingShadow client, unchanged but for the endpoint and the CA: it registers the thing's
// shadow, reads it, sets desired color yellow while reporting blue and gets the delta, then
// reports yellow; each update carries the version the SDK tracks from the answers (its
// optimistic locking), so a version fleetcore got wrong would be rejected.
//
//   node device_sdk_v1.js MQTTS_PORT CA_FILE CERT_FILE KEY_FILE THING
'use strict';

const awsIot = require('aws-iot-device-sdk');

const [, , port, caPath, certPath, keyPath, thing] = process.argv;

function fail(what) {
  console.log(`FAIL ${what}`);
  process.exit(1);
}

setTimeout(() => fail('timed out'), 30000).unref();
const shadows = awsIot.thingShadow({
  protocol: 'mqtts', host: 'localhost', port: Number(port), caPath, certPath, keyPath,
  clientId: thing, autoResubscribe: false,
});
shadows.on('error', (e) => fail(`error: ${e.message || e}`));

// The next 'status' answer to `token`.
const waiting = new Map();
shadows.on('status', (name, stat, token, state) => {
  const w = waiting.get(token);
  if (w) {
    waiting.delete(token);
    w({ stat, state });
  }
});
function answer(token) {
  if (token === null) fail('the SDK refused to send (an operation still in progress)');
  return new Promise((resolve) => waiting.set(token, resolve));
}
const delta = new Promise((resolve) => shadows.on('delta', (name, state) => resolve(state)));

shadows.on('connect', () => {
  shadows.register(thing, { ignoreDeltas: false }, async (err) => {
    if (err) fail(`register: ${err}`);
    const got = await answer(shadows.get(thing));
    if (got.stat !== 'accepted') fail(`get: ${got.stat} ${JSON.stringify(got.state)}`);
    const set = await answer(shadows.update(thing, {
      state: { desired: { color: 'yellow' }, reported: { color: 'blue' } },
    }));
    if (set.stat !== 'accepted') fail(`update desired: ${set.stat} ${JSON.stringify(set.state)}`);
    const d = await delta;
    if (d.state.color !== 'yellow') fail(`delta: ${JSON.stringify(d)}`);
    console.log(`v1 shadow: desired yellow, delta ${JSON.stringify(d.state)}`);
    const reported = await answer(shadows.update(thing, {
      state: { reported: { color: 'yellow' } },
    }));
    if (reported.stat !== 'accepted') {
      fail(`update reported: ${reported.stat} ${JSON.stringify(reported.state)}`);
    }
    console.log(`v1 shadow: reported yellow at version ${reported.state.version}`);
    console.log('ok device_sdk_v1');
    shadows.end(false, () => process.exit(0));
  });
});
