#!/usr/bin/python3
"""The AWS SDK for Python's iot-data client (boto3 and botocore from Debian) against the
gateway's HTTPS endpoint, with an access key or temporary credentials, changed only in its
endpoint and CA: botocore signs with SigV4 its own way (the path encoded a second time, the
body's hash), and raises its modeled exceptions from the answers' x-amzn-ErrorType.

Publishes to things/THING/boto 1 (a topic whose second level has a space, encoded in the
path), publishes a retained message and reads it back (GetRetainedMessage,
ListRetainedMessages), updates and reads the thing's shadow, makes, lists and deletes a named
shadow, and checks the errors app code catches: ResourceNotFoundException for a missing
shadow or retained message, ConflictException for a stale version, InvalidRequestException
for a bad document, UnauthorizedException for a wrong secret.

usage: boto3_iot_data.py HTTPS_PORT CA_FILE REGION KEY_ID SECRET THING [SESSION_TOKEN]
"""
import json
import sys

import boto3
import botocore

port, ca, region, key_id, secret, thing = sys.argv[1:7]
token = sys.argv[7] if len(sys.argv) > 7 else None


def client(secret_key):
    return boto3.client("iot-data", endpoint_url=f"https://localhost:{port}",
                        region_name=region, aws_access_key_id=key_id,
                        aws_secret_access_key=secret_key, aws_session_token=token, verify=ca)


def expect(exception, call, **kwargs):
    try:
        call(**kwargs)
    except exception as e:
        return e.response["Error"]["Message"]
    sys.exit(f"FAIL {call.__name__} {kwargs}: no {exception.__name__}")


iot = client(secret)
r = iot.publish(topic=f"things/{thing}/boto 1", qos=1, payload=b'{"from": "boto3"}')
assert r["ResponseMetadata"]["HTTPStatusCode"] == 200, r
print("publish: 200")

# A retained message, read back through the data plane's retained-message API.
retained_topic = f"things/{thing}/state"
iot.publish(topic=retained_topic, qos=1, retain=True, payload=b'{"power": "on"}',
            userProperties=[{"source": "boto3"}])
kept = iot.get_retained_message(topic=retained_topic)
assert kept["payload"] == b'{"power": "on"}' and kept["qos"] == 1, kept
listed = [t["topic"] for t in iot.list_retained_messages()["retainedTopics"]]
assert retained_topic in listed, listed
print(f"retained: {kept['payload'].decode()} on {kept['topic']}, listed")

doc = json.loads(iot.update_thing_shadow(
    thingName=thing, payload=json.dumps({"state": {"desired": {"power": "on"}}}))["payload"].read())
version = doc["version"]
got = json.loads(iot.get_thing_shadow(thingName=thing)["payload"].read())
assert got["state"]["delta"]["power"] == "on", got
print(f"shadow: updated to version {version}, delta power {got['state']['delta']['power']}")

iot.update_thing_shadow(thingName=thing, shadowName="lamp",
                        payload=json.dumps({"state": {"reported": {"on": True}}}))
names = iot.list_named_shadows_for_thing(thingName=thing)["results"]
assert names == ["lamp"], names
iot.delete_thing_shadow(thingName=thing, shadowName="lamp")
assert iot.list_named_shadows_for_thing(thingName=thing)["results"] == []
print("named shadow: made, listed, deleted")

print("missing shadow:", expect(iot.exceptions.ResourceNotFoundException, iot.get_thing_shadow,
                                thingName=thing, shadowName="nothing-here"))
print("no retained message:", expect(iot.exceptions.ResourceNotFoundException,
                                     iot.get_retained_message, topic=f"things/{thing}/none"))
print("stale version:", expect(iot.exceptions.ConflictException, iot.update_thing_shadow,
                               thingName=thing,
                               payload=json.dumps({"state": {"reported": {"power": "on"}},
                                                   "version": version - 1})))
print("bad document:", expect(iot.exceptions.InvalidRequestException, iot.update_thing_shadow,
                              thingName=thing, payload=b'{"state": 5}'))
wrong = client(secret[:-1] + ("x" if secret[-1] != "x" else "y"))
print("wrong secret:", expect(wrong.exceptions.UnauthorizedException, wrong.publish,
                              topic=f"things/{thing}/boto 1", qos=1, payload=b"x"))
print("ok boto3_iot_data")
