// The AWS SDK for JavaScript v3's IoT data-plane client (@aws-sdk/client-iot-data-plane)
// against the gateway's HTTPS endpoint with an access key, changed only in its endpoint and
// CA: its own SigV4 signer, paths, query strings and modeled exceptions. It reads a live
// client's connection (GetConnection, ListSubscriptions), sends it a direct message on a
// topic it does not subscribe to and waits for its PUBACK (SendDirectMessage), and checks
// the errors app code catches: ForbiddenException outside the user's policy,
// ResourceNotFoundException for a client that is not connected.
//
// usage: node iot_data_plane.js HTTPS_PORT CA_FILE REGION KEY_ID SECRET CLIENT_ID
'use strict';
const fs = require('fs');
const https = require('https');
const {
  IoTDataPlaneClient, GetConnectionCommand, ListSubscriptionsCommand, SendDirectMessageCommand,
} = require('@aws-sdk/client-iot-data-plane');
const { NodeHttpHandler } = require('@smithy/node-http-handler');

const [port, caFile, region, accessKeyId, secretAccessKey, clientId] = process.argv.slice(2);

function fail(what) {
  console.log(`FAIL ${what}`);
  process.exit(1);
}

const client = new IoTDataPlaneClient({
  endpoint: `https://localhost:${port}`,
  region,
  credentials: { accessKeyId, secretAccessKey },
  requestHandler: new NodeHttpHandler({
    httpsAgent: new https.Agent({ ca: fs.readFileSync(caFile) }),
  }),
  maxAttempts: 1,
});

// The modeled exception's name a command fails with; "none" when it succeeds.
async function errorOf(command) {
  try {
    await client.send(command);
    return 'none';
  } catch (e) {
    return e.name;
  }
}

async function main() {
  setTimeout(() => fail('timed out'), 60000).unref();
  const c = await client.send(new GetConnectionCommand({ clientId, includeSocketInformation: true }));
  if (c.connected !== true || c.clientId !== clientId) fail(`GetConnection: ${JSON.stringify(c)}`);
  if (c.sourceIp !== '127.0.0.1' || !(c.sourcePort > 0) || c.targetIp !== '127.0.0.1'
      || !(c.targetPort > 0)) {
    fail(`no socket: ${JSON.stringify(c)}`);
  }
  console.log(`connection: connected, keep-alive ${c.keepAliveDuration}`);

  const s = await client.send(new ListSubscriptionsCommand({ clientId }));
  console.log(`subscriptions: ${s.subscriptions.map((x) => `${x.topicFilter}@${x.qos}`)}`);

  const sent = await client.send(new SendDirectMessageCommand({
    clientId,
    topic: `direct/${clientId}/reboot`,
    payload: Buffer.from('reboot now'),
    confirmation: true,
    timeout: 10,
  }));
  if (sent.message !== 'OK') fail(`SendDirectMessage: ${JSON.stringify(sent)}`);
  console.log('direct message: acknowledged');

  const outside = await errorOf(new SendDirectMessageCommand({
    clientId, topic: 'elsewhere/reboot', payload: Buffer.from('x'),
  }));
  if (outside !== 'ForbiddenException') fail(`a topic outside the policy: ${outside}`);
  const gone = `${clientId}-gone`;
  const notConnected = await errorOf(new SendDirectMessageCommand({
    clientId: gone, topic: `direct/${gone}/reboot`, payload: Buffer.from('x'),
  }));
  if (notConnected !== 'ResourceNotFoundException') fail(`not connected: ${notConnected}`);
  const noSession = await errorOf(new GetConnectionCommand({ clientId: gone }));
  if (noSession !== 'ResourceNotFoundException') fail(`GetConnection of none: ${noSession}`);
  console.log('errors: ForbiddenException, ResourceNotFoundException');
  console.log('ok iot_data_plane');
}

main().catch((e) => fail(e.stack || e));
