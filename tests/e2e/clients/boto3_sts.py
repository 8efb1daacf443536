#!/usr/bin/python3
"""The AWS SDK for Python's STS client against the gateway's HTTPS endpoint, as a back end
uses it to hand a browser temporary credentials with nothing but its own access key:
GetCallerIdentity, GetSessionToken, then the temporary credentials publishing with the
iot-data client; and what STS refuses (GetSessionToken with session credentials, another
secret, an action fleetcore does not answer, a duration out of bounds).

usage: boto3_sts.py HTTPS_PORT CA_FILE REGION KEY_ID SECRET TOPIC
"""
import sys

import boto3
import botocore

port, ca, region, key_id, secret, topic = sys.argv[1:7]


def client(service, key, secret_key, token=None):
    return boto3.client(service, endpoint_url=f"https://localhost:{port}", region_name=region,
                        aws_access_key_id=key, aws_secret_access_key=secret_key,
                        aws_session_token=token, verify=ca)


def refused(call, **kwargs):
    try:
        call(**kwargs)
    except botocore.exceptions.ClientError as e:
        return f"{e.response['Error']['Code']}: {e.response['Error']['Message']}"
    sys.exit(f"FAIL {call.__name__} {kwargs} was not refused")


sts = client("sts", key_id, secret)
me = sts.get_caller_identity()
print(f"caller: {me['Arn']} in {me['Account']}")
c = sts.get_session_token(DurationSeconds=900)["Credentials"]
assert c["AccessKeyId"].startswith("ASIA"), c
print(f"session credentials: {c['AccessKeyId'][:4]}..., expiring {c['Expiration'].isoformat()}")

temporary = client("sts", c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
print(f"temporary caller: {temporary.get_caller_identity()['Arn']}")
iot = client("iot-data", c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
status = iot.publish(topic=topic, qos=1, payload=b"from sts")["ResponseMetadata"]["HTTPStatusCode"]
print(f"publish with them: {status}")

print("again with them:", refused(temporary.get_session_token))
other = secret[:-1] + ("x" if secret[-1] != "x" else "y")
print("another secret:", refused(client("sts", key_id, other).get_session_token))
print("assume role:", refused(sts.assume_role, RoleArn="arn:aws:iam::000000000000:role/r",
                              RoleSessionName="session"))
print("too long:", refused(sts.get_session_token, DurationSeconds=100000))
print("ok boto3_sts")
