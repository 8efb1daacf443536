#!/usr/bin/python3
"""MQTT scenarios against a running fleetcore gateway, with paho-mqtt (Debian's
python3-paho-mqtt) for what a device library does and mqttwire (raw packets) for what no
library would send. Each scenario checks what the broker did and exits 0, or prints what
went wrong and exits 1. tests/e2e/07_gateway_clients_e2etest.cc runs them one by one.

usage: paho_scenarios.py SCENARIO --port P [--tls-port P --cafile F] [--prefix TOPIC_PREFIX]
"""
import argparse
import json
import queue
import socket
import ssl
import sys
import threading
import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

import mqttwire as wire

TIMEOUT = 10
args = None


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)


def uid(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Client:
    """A paho client whose events land in queues the scenario reads with timeouts."""

    def __init__(self, client_id="", v5=False, clean=True, tls=False, will=None,
                 keepalive=60, connect_props=None, expect_connack=True, ws=False):
        self.v5 = v5
        self.messages = queue.Queue()
        self.connacks = queue.Queue()
        self.disconnects = queue.Queue()
        self.subacks = queue.Queue()
        self.acked = queue.Queue()
        transport = "websockets" if ws else "tcp"
        if v5:
            self.c = mqtt.Client(client_id=client_id, protocol=mqtt.MQTTv5,
                                 reconnect_on_failure=False, transport=transport)
        else:
            self.c = mqtt.Client(client_id=client_id, clean_session=clean,
                                 protocol=mqtt.MQTTv311, reconnect_on_failure=False,
                                 transport=transport)
        self.c.on_connect = lambda c, u, flags, rc, props=None: self.connacks.put(
            (flags.get("session present", 0), rc, props))
        self.c.on_message = lambda c, u, m: self.messages.put(m)
        self.c.on_disconnect = lambda c, u, rc, props=None: self.disconnects.put(rc)
        self.c.on_subscribe = lambda c, u, mid, granted, props=None: self.subacks.put(granted)
        self.c.on_publish = lambda c, u, mid: self.acked.put(mid)
        if will:
            topic, payload, qos, retain = will[:4]
            self.c.will_set(topic, payload, qos, retain,
                            properties=will[4] if len(will) > 4 else None)
        port = args.port
        if ws:
            self.c.ws_set_options(path="/mqtt")
            port = args.ws_port
        if tls:
            self.c.tls_set(ca_certs=args.cafile)
            port = args.tls_port
        if v5:
            self.c.connect("localhost" if tls else "127.0.0.1", port, keepalive,
                           clean_start=clean, properties=connect_props)
        else:
            self.c.connect("localhost" if tls else "127.0.0.1", port, keepalive)
        self.c.loop_start()
        if expect_connack:
            self.session_present, self.rc, self.connack_props = self.connacks.get(timeout=TIMEOUT)
            check(self.rc == 0, f"{client_id}: CONNACK refused: {self.rc}")

    def subscribe(self, topic, qos=0, **kw):
        if self.v5:
            props = None
            if "sub_id" in kw:
                props = Properties(PacketTypes.SUBSCRIBE)
                props.SubscriptionIdentifier = kw.pop("sub_id")
            self.c.subscribe(topic, options=SubscribeOptions(qos=qos, **kw), properties=props)
        else:
            self.c.subscribe(topic, qos)
        granted = self.subacks.get(timeout=TIMEOUT)
        return [g.value if hasattr(g, "value") else g for g in granted]

    def publish(self, topic, payload, qos=0, retain=False, props=None, wait=True):
        info = self.c.publish(topic, payload, qos, retain, properties=props)
        if wait and qos > 0:
            info.wait_for_publish(TIMEOUT)
            check(info.is_published(), f"no acknowledgement for a QoS {qos} publish to {topic}")
        return info

    def receive(self, timeout=TIMEOUT):
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise Fail(f"{self.c._client_id!r}: no message within {timeout}s")

    def receive_until(self, marker_topic, timeout=TIMEOUT):
        """Every message up to (not including) the first on marker_topic."""
        got = []
        deadline = time.time() + timeout
        while True:
            m = self.receive(max(0.1, deadline - time.time()))
            if m.topic == marker_topic:
                return got
            got.append(m)

    def nothing_within(self, seconds):
        try:
            m = self.messages.get(timeout=seconds)
            raise Fail(f"unexpected message on {m.topic}: {m.payload[:60]!r}")
        except queue.Empty:
            pass

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def topic(name):
    return f"{args.prefix}/{name}"


# --- scenarios ---------------------------------------------------------------------------

def wildcards(v5):
    sub = Client(uid("wild"), v5=v5)
    check(sub.subscribe(topic("w/+/temp"), 1) == [1], "QoS 1 not granted")
    sub.subscribe(topic("w/#"), 0)
    sub.subscribe("$aws/things/+/shadow/update", 0)
    sub.subscribe("#", 0)
    pub = Client(uid("pub"), v5=v5)
    for t in ["w/a/temp", "w/a/b/temp", "w", "other/x"]:
        pub.publish(topic(t), t.encode(), 1)
    pub.publish("$aws/things/w/shadow/update", b'{"state":{}}', 1)
    pub.publish(topic("end"), b"", 1)
    got = sub.receive_until(topic("end"))
    seen = [(m.topic, m.qos) for m in got]
    # One copy per message, at the highest QoS of the matching subscriptions; '#' matches
    # the parent level; '#' never matches a '$' topic, a filter starting with '$' does.
    want = [(topic("w/a/temp"), 1), (topic("w/a/b/temp"), 0), (topic("w"), 0),
            (topic("other/x"), 0), ("$aws/things/w/shadow/update", 0)]
    check(seen == want, f"received {seen}, wanted {want}")
    pub.close()
    sub.close()


def qos_levels(v5):
    sub = Client(uid("qsub"), v5=v5)
    sub.subscribe(topic("q/two"), 2)
    sub.subscribe(topic("q/one"), 1)
    pub = Client(uid("qpub"), v5=v5)
    # Within the broker's Receive Maximum (100), so paho sends every message at once.
    pub.c.max_inflight_messages_set(100)
    for i in range(30):
        for q in (0, 1, 2):
            pub.publish(topic("q/two"), f"{q}:{i}".encode(), q, wait=False)
            pub.publish(topic("q/one"), f"{q}:{i}".encode(), q, wait=False)
    # paho hands a QoS 2 message over at PUBREL, so a later QoS 1 marker could overtake it:
    # wait for the count instead.
    got = [sub.receive() for _ in range(180)]
    sub.nothing_within(0.3)
    two = [(m.payload.decode(), m.qos) for m in got if m.topic == topic("q/two")]
    one = [(m.payload.decode(), m.qos) for m in got if m.topic == topic("q/one")]
    want_two = [(f"{q}:{i}", q) for i in range(30) for q in (0, 1, 2)]
    want_one = [(f"{q}:{i}", min(q, 1)) for i in range(30) for q in (0, 1, 2)]
    # paho holds back QoS 1 and 2 messages beyond its in-flight window, so the order holds
    # within each QoS only.
    for q in (0, 1, 2):
        got_two = [x for x in two if x[0].startswith(f"{q}:")]
        got_one = [x for x in one if x[0].startswith(f"{q}:")]
        check(got_two == [x for x in want_two if x[0].startswith(f"{q}:")],
              f"QoS 2 subscription, QoS {q} messages: {got_two[:5]}... ({len(got_two)} of 30)")
        check(got_one == [x for x in want_one if x[0].startswith(f"{q}:")],
              f"QoS 1 subscription, QoS {q} messages: {got_one[:5]}... ({len(got_one)} of 30)")
    pub.close()
    sub.close()


def closed_and_seen(client, cid):
    """Disconnects `client` and returns once the gateway has processed it (its disconnected
    lifecycle event is out): messages published after that find the session offline."""
    watcher = Client(uid("watch"))
    watcher.subscribe(f"$aws/events/presence/disconnected/{cid}", 1)
    client.close()
    watcher.receive()
    watcher.close()


def offline_queue():
    cid = uid("persist")
    sub = Client(cid, clean=False)
    check(sub.session_present == 0, "a new session reported as present")
    sub.subscribe(topic("oq/#"), 1)
    # Published only once the gateway has seen the subscriber go, so that the QoS 0 message
    # below surely finds the session offline (and must not be queued for it).
    closed_and_seen(sub, cid)
    pub = Client(uid("pub"))
    for i in range(20):
        pub.publish(topic("oq/a"), f"m{i}".encode(), 1)
    pub.publish(topic("oq/a"), b"qos0-not-queued", 0)
    pub.close()
    sub = Client(cid, clean=False)
    check(sub.session_present == 1, "the persistent session was not present")
    got = [sub.receive().payload.decode() for _ in range(20)]
    check(got == [f"m{i}" for i in range(20)], f"queued messages: {got}")
    sub.nothing_within(0.5)
    sub.close()
    # Clean session ends it.
    sub = Client(cid, clean=True)
    check(sub.session_present == 0, "clean session kept the old session")
    sub.close()


def redelivery(v5):
    cid = uid("redeliver")
    r = wire.Raw(args.port, v5=v5)
    props = b"\x11\x00\x00\x0e\x10" if v5 else b""  # session expiry 3600 s
    ack = r.connect(cid, clean=v5, props=props)
    check(ack.type == wire.CONNACK, f"no CONNACK: {ack}")
    r.subscribe(1, [(topic("rd"), 1)])
    pub = Client(uid("pub"))
    pub.publish(topic("rd"), b"unacked", 1)
    p = r.read()
    t, pid, payload, qos, dup, _ = wire.parse_publish(p, v5)
    check((t, payload, qos, dup) == (topic("rd"), b"unacked", 1, False), f"first delivery {p}")
    r.close()  # never acknowledged
    r = wire.Raw(args.port, v5=v5)
    ack = r.connect(cid, clean=False, props=props)
    check(ack.body[0] & 1 == 1, "session not present on reconnect")
    p = r.read()
    t2, pid2, payload2, _, dup2, _ = wire.parse_publish(p, v5)
    check((t2, pid2, payload2, dup2) == (t, pid, payload, True),
          f"redelivery {t2} {pid2} {payload2} dup={dup2}, wanted the same packet id {pid} with DUP")
    r.ack(wire.PUBACK, pid2)
    r.pingreq()
    check(r.read().type == wire.PINGRESP, "no PINGRESP")
    r.close()
    r = wire.Raw(args.port, v5=v5)
    r.connect(cid, clean=False, props=props)
    r.pingreq()
    p = r.read()
    check(p.type == wire.PINGRESP, f"an acknowledged message came again: {p}")
    r.close()
    pub.close()


def qos2_exactly_once():
    # The client resends the PUBLISH with DUP before releasing it: one delivery.
    sub = Client(uid("q2sub"))
    sub.subscribe(topic("q2"), 2)
    r = wire.Raw(args.port)
    r.connect(uid("q2pub"))
    r.publish(topic("q2"), b"once", qos=2, packet_id=7)
    check(r.read().type == wire.PUBREC, "no PUBREC")
    r.publish(topic("q2"), b"once", qos=2, packet_id=7, dup=True)
    check(r.read().type == wire.PUBREC, "no PUBREC for the duplicate")
    r.ack(wire.PUBREL, 7)
    p = r.read()
    check(p.type == wire.PUBCOMP, f"no PUBCOMP: {p}")
    check(sub.receive().payload == b"once", "not delivered")
    sub.nothing_within(0.5)
    r.close()
    sub.close()


def retained(v5):
    pub = Client(uid("rpub"), v5=v5)
    pub.publish(topic("r/lamp"), b"on", 1, retain=True)
    sub = Client(uid("rsub"), v5=v5)
    sub.subscribe(topic("r/lamp"), 1)
    m = sub.receive()
    check((m.payload, m.retain, m.qos) == (b"on", True, 1), f"retained copy {m.payload} {m.retain}")
    pub.publish(topic("r/lamp"), b"off", 1, retain=True)
    m = sub.receive()
    check((m.payload, m.retain) == (b"off", False), "a live message must not carry RETAIN")
    # A wildcard subscription also gets it (MQTT); a new retained message replaced the old.
    sub2 = Client(uid("rsub2"), v5=v5)
    sub2.subscribe(topic("r/+"), 0)
    m = sub2.receive()
    check((m.payload, m.retain) == (b"off", True), f"wildcard retained copy {m.payload}")
    # An empty retained payload deletes it.
    pub.publish(topic("r/lamp"), b"", 1, retain=True)
    sub3 = Client(uid("rsub3"), v5=v5)
    sub3.subscribe(topic("r/lamp"), 0)
    sub3.nothing_within(0.5)
    for c in (pub, sub, sub2, sub3):
        c.close()


def retain_options():
    pub = Client(uid("ropub"), v5=True)
    pub.publish(topic("ro/x"), b"kept", 1, retain=True)
    never = Client(uid("ro2"), v5=True)
    never.subscribe(topic("ro/x"), 1, retainHandling=2)
    new_only = Client(uid("ro1"), v5=True)
    new_only.subscribe(topic("ro/x"), 1, retainHandling=1)
    check(new_only.receive().payload == b"kept", "retain handling 1: first subscribe")
    new_only.subscribe(topic("ro/x"), 1, retainHandling=1)
    as_published = Client(uid("rap"), v5=True)
    as_published.subscribe(topic("ro/x"), 1, retainAsPublished=True, retainHandling=2)
    pub.publish(topic("ro/x"), b"live", 1, retain=True)
    check(as_published.receive().retain, "retain as published lost the flag")
    check(never.receive().payload == b"live", "retain handling 2 lost the live message")
    m = new_only.receive()
    check(m.payload == b"live", f"retain handling 1: resubscribe sent the retained copy again")
    pub.publish(topic("ro/x"), b"", 1, retain=True)
    for c in (pub, never, new_only, as_published):
        c.close()


def will():
    watcher = Client(uid("watch"))
    watcher.subscribe(topic("will/#"), 1)
    # An abrupt end publishes the will.
    r = wire.Raw(args.port)
    r.connect(uid("dying"), will=(topic("will/a"), b"gone", 1, False))
    r.close()
    m = watcher.receive()
    check((m.topic, m.payload) == (topic("will/a"), b"gone"), f"will: {m.topic} {m.payload}")
    # A clean DISCONNECT discards it.
    r = wire.Raw(args.port)
    r.connect(uid("polite"), will=(topic("will/b"), b"never", 1, False))
    r.disconnect()
    r.close()
    watcher.nothing_within(0.7)
    # A retained will is kept for later subscribers.
    r = wire.Raw(args.port)
    r.connect(uid("retained-will"), will=(topic("will/c"), b"offline", 1, True))
    r.close()
    check(watcher.receive().payload == b"offline", "retained will not delivered")
    late = Client(uid("late"))
    late.subscribe(topic("will/c"), 1)
    m = late.receive()
    check((m.payload, m.retain) == (b"offline", True), "retained will not kept")
    watcher.publish(topic("will/c"), b"", 1, retain=True)
    late.close()
    watcher.close()


def will_delay():
    watcher = Client(uid("watch"), v5=True)
    watcher.subscribe(topic("wd/#"), 1)
    cid = uid("delayed")
    will_props = Properties(PacketTypes.WILLMESSAGE)
    will_props.WillDelayInterval = 2
    connect_props = Properties(PacketTypes.CONNECT)
    connect_props.SessionExpiryInterval = 60
    # Reconnecting within the delay cancels the will.
    c = Client(cid, v5=True, will=(topic("wd/a"), b"late", 1, False, will_props),
               connect_props=connect_props)
    c.c.socket().close()
    time.sleep(0.3)
    c2 = Client(cid, v5=True, clean=False, connect_props=connect_props)
    watcher.nothing_within(2.5)
    # Not reconnecting: it comes after the delay.
    c3 = Client(uid("delayed2"), v5=True, will=(topic("wd/b"), b"late", 1, False, will_props),
                connect_props=connect_props)
    start = time.time()
    c3.c.socket().close()
    m = watcher.receive(timeout=8)
    check(m.topic == topic("wd/b"), f"delayed will: {m.topic}")
    check(time.time() - start >= 1.5, "the will came before its delay")
    c2.close()
    watcher.close()


def takeover(v5):
    cid = uid("twin")
    first = Client(cid, v5=v5)
    second = Client(cid, v5=v5)
    rc = first.disconnects.get(timeout=TIMEOUT)
    if v5:
        check(rc == 142, f"the first connection ended with {rc}, wanted 0x8E session taken over")
    check(second.c.is_connected(), "the second connection was not kept")
    second.subscribe(topic("tk"), 1)
    second.publish(topic("tk"), b"alive", 1)
    check(second.receive().payload == b"alive", "the new connection does not work")
    second.close()


def keepalive():
    # The gateway under test runs with --keep-alive-min=1s, so the 1 s keep-alive holds.
    r = wire.Raw(args.port)
    r.connect(uid("pinger"), keepalive=1)
    for _ in range(6):
        time.sleep(0.4)
        r.pingreq()
        check(r.read().type == wire.PINGRESP, "no PINGRESP")
    closed, _ = r.closed_within(6)
    check(closed, "a silent client was not disconnected after 1.5 keep-alives")
    # MQTT 5: the server keep-alive is announced when it differs.
    r = wire.Raw(args.port, v5=True)
    ack = r.connect(uid("ka5"), keepalive=0)
    check(b"\x13" in ack.body[2:], f"no server keep-alive in CONNACK: {ack.body!r}")
    r.close()


def shared():
    a = Client(uid("sa"), v5=True)
    b = Client(uid("sb"), v5=False)
    plain = Client(uid("sp"), v5=True)
    a.subscribe(f"$share/g1/{topic('sh/#')}", 1)
    b.subscribe(f"$share/g1/{topic('sh/#')}", 1)
    plain.subscribe(topic("sh/#"), 1)
    pub = Client(uid("spub"))
    for i in range(40):
        pub.publish(topic("sh/x"), str(i).encode(), 1)
    pub.publish(topic("sh/end"), b"", 1)
    got_plain = plain.receive_until(topic("sh/end"))
    check(len(got_plain) == 40, f"the plain subscriber got {len(got_plain)} of 40")
    got = []
    for c in (a, b):
        while True:
            try:
                got.append((c, c.messages.get(timeout=1).payload.decode()))
            except queue.Empty:
                break
    payloads = sorted(int(p) for _, p in got if p)
    check(payloads == list(range(40)), f"the group got {payloads}, wanted each of 40 once")
    check(all(any(c is x for x, _ in got) for c in (a, b)), "one member got nothing")
    # A member with a persistent session that is away takes no turn while others are
    # connected: its share would wait for it instead of going to them.
    away_id = uid("saway")
    away = Client(away_id, clean=False)
    away.subscribe(f"$share/g1/{topic('sh/#')}", 1)
    closed_and_seen(away, away_id)  # else the first message may find it still connected
    for i in range(20):
        pub.publish(topic("sh/y"), str(i).encode(), 1)
    pub.publish(topic("sh/end"), b"", 1)
    plain.receive_until(topic("sh/end"))
    got = []
    for c in (a, b):
        while True:
            try:
                got.append(c.messages.get(timeout=1).payload.decode())
            except queue.Empty:
                break
    payloads = sorted(int(p) for p in got if p)
    check(payloads == list(range(20)), f"the connected members got {payloads}, wanted all 20")
    back = Client(away_id, clean=False)
    time.sleep(1)
    check(back.messages.empty(), "the away member's session held a share of the messages")
    back.close()
    Client(away_id).close()  # a clean start ends the session
    # With every member away, the group queues for whichever member comes first (AWS's
    # group queue), not for the member whose turn it was: a returning member takes it all
    # (here more than half its queue, --max-queued-messages 1000: in parts, as it takes
    # them), and so does a member that joins.
    g2 = f"$share/g2/{topic('sh2/#')}"
    ids = [uid("sq1"), uid("sq2")]
    for cid in ids:
        m = Client(cid, clean=False)
        m.subscribe(g2, 1)
        closed_and_seen(m, cid)
    n = 1100
    for i in range(n):
        sent = pub.publish(topic("sh2/x"), str(i).encode(), 1, wait=False)
    sent.wait_for_publish(TIMEOUT)
    check(sent.is_published(), "the last of the group's messages was not acknowledged")
    first = Client(ids[1], clean=False)
    got = sorted(int(first.receive().payload) for _ in range(n))
    check(got == list(range(n)), f"the member that came back first got {len(got)} "
          f"({len(set(got))} different), wanted all {n}")
    closed_and_seen(first, ids[1])
    for i in range(4):
        pub.publish(topic("sh2/x"), str(n + i).encode(), 1)
    joiner = Client(uid("sq3"), v5=True)
    joiner.subscribe(g2, 1)
    got = sorted(int(joiner.receive().payload) for _ in range(4))
    check(got == list(range(n, n + 4)), f"a member that joined got {got}, wanted the last 4")
    last = Client(ids[0], clean=False)
    time.sleep(1)
    check(last.messages.empty(), "the last member back found messages another had taken")
    joiner.close()
    # A member whose session ends (here a clean start) leaves its part of the group's queue
    # to the other members.
    closed_and_seen(last, ids[0])
    for i in range(4):
        pub.publish(topic("sh2/x"), f"e{i}".encode(), 1)
    Client(ids[0]).close()
    other = Client(ids[1], clean=False)
    got = sorted(other.receive().payload.decode() for _ in range(4))
    check(got == ["e0", "e1", "e2", "e3"], f"the other member got {got}, wanted all 4")
    other.close()
    Client(ids[1]).close()
    # AWS's share names are 128 characters at most.
    long_ok = a.subscribe(f"$share/{'n' * 128}/{topic('sh/#')}", 1)
    check(long_ok == [1], f"a share name of 128 characters was refused: {long_ok}")
    too_long = a.subscribe(f"$share/{'n' * 129}/{topic('sh/#')}", 1)
    check(too_long == [0x8F], f"a share name of 129 characters got {too_long}, not 0x8F")
    for c in (a, b, plain, pub):
        c.close()


def v5_properties():
    sub = Client(uid("psub"), v5=True)
    sub.subscribe(topic("p/#"), 1, sub_id=7)
    sub.subscribe(topic("p/nl"), 1, noLocal=True)
    pub = Client(uid("ppub"), v5=True)
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = [("k1", "v1"), ("k1", "v2"), ("unit", "C")]
    props.ContentType = "application/json"
    props.ResponseTopic = topic("p/reply")
    props.CorrelationData = b"\x00\x01corr"
    props.PayloadFormatIndicator = 1
    props.MessageExpiryInterval = 60
    pub.publish(topic("p/a"), b'{"t":21}', 1, props=props)
    m = sub.receive()
    p = m.properties
    check(p.UserProperty == [("k1", "v1"), ("k1", "v2"), ("unit", "C")],
          f"user properties {p.UserProperty}")
    check(p.ContentType == "application/json", "content type")
    check(p.ResponseTopic == topic("p/reply"), "response topic")
    check(p.CorrelationData == b"\x00\x01corr", "correlation data")
    check(p.PayloadFormatIndicator == 1, "payload format")
    check(0 < p.MessageExpiryInterval <= 60, f"message expiry {p.MessageExpiryInterval}")
    check(p.SubscriptionIdentifier == [7], f"subscription id {p.SubscriptionIdentifier}")
    # Topic aliases: the second publish names the topic by alias only.
    alias = Properties(PacketTypes.PUBLISH)
    alias.TopicAlias = 1
    pub.publish(topic("p/alias"), b"first", 1, props=alias)
    pub.publish("", b"second", 1, props=alias)
    for want in (b"first", b"second"):
        m = sub.receive()
        check((m.topic, m.payload) == (topic("p/alias"), want), f"alias: {m.topic} {m.payload}")
    # No Local: the subscriber's own message comes back only through p/# (id 7).
    sub.publish(topic("p/nl"), b"mine", 1)
    m = sub.receive()
    check(m.properties.SubscriptionIdentifier == [7], "No Local delivered the own message")
    sub.nothing_within(0.5)
    # CONNACK tells the client the limits.
    cp = sub.connack_props
    check(cp.TopicAliasMaximum >= 1 and cp.ReceiveMaximum >= 1, f"CONNACK properties {cp}")
    pub.close()
    sub.close()


def message_expiry():
    cid = uid("exp")
    cp = Properties(PacketTypes.CONNECT)
    cp.SessionExpiryInterval = 300
    sub = Client(cid, v5=True, connect_props=cp)
    sub.subscribe(topic("ex"), 1)
    sub.close()
    pub = Client(uid("expub"), v5=True)
    short = Properties(PacketTypes.PUBLISH)
    short.MessageExpiryInterval = 1
    pub.publish(topic("ex"), b"stale", 1, props=short)
    long = Properties(PacketTypes.PUBLISH)
    long.MessageExpiryInterval = 100
    pub.publish(topic("ex"), b"fresh", 1, props=long)
    time.sleep(2.2)
    sub = Client(cid, v5=True, clean=False, connect_props=cp)
    m = sub.receive()
    check(m.payload == b"fresh", f"an expired message was delivered: {m.payload}")
    check(m.properties.MessageExpiryInterval <= 98, "the expiry interval was not counted down")
    sub.nothing_within(0.5)
    sub.close()
    pub.close()


def retained_limit():
    # The gateway under test holds 2 retained messages (--max-retained-messages 2).
    watcher = Client(uid("rl-watch"), v5=True)
    watcher.subscribe(topic("rl/#"), 1)
    pub = Client(uid("rl-pub"), v5=True)
    pub.publish(topic("rl/a"), b"a", 1, retain=True)
    pub.publish(topic("rl/b"), b"b", 1, retain=True)
    # MQTT 5 QoS 1: a third topic's retained message is refused, 0x97 quota exceeded, and
    # not delivered.
    r = wire.Raw(args.port, v5=True)
    r.connect(uid("rl-raw5"))
    r.publish(topic("rl/c"), b"c", qos=1, packet_id=1, retain=True)
    p = r.read()
    check(p.type == wire.PUBACK and len(p.body) >= 3 and p.body[2] == 0x97, f"PUBACK {p}")
    r.close()
    # MQTT 3.1.1 cannot be told: delivered, not retained.
    r = wire.Raw(args.port)
    r.connect(uid("rl-raw3"))
    r.publish(topic("rl/d"), b"d", qos=1, packet_id=1, retain=True)
    p = r.read()
    check(p.type == wire.PUBACK, f"3.1.1 PUBACK {p}")
    r.close()
    live = [watcher.receive() for _ in range(3)]
    check([m.payload for m in live] == [b"a", b"b", b"d"], f"live {[m.payload for m in live]}")
    late = Client(uid("rl-late"), v5=True)
    late.subscribe(topic("rl/#"), 1)
    kept = sorted(late.receive().payload for _ in range(2))
    check(kept == [b"a", b"b"], f"retained kept {kept}")
    time.sleep(0.3)
    check(late.messages.empty(), "more than 2 retained messages kept")
    # Replacing works at the limit; deleting one makes room for another topic.
    pub.publish(topic("rl/a"), b"a2", 1, retain=True)
    pub.publish(topic("rl/b"), b"", 1, retain=True)
    pub.publish(topic("rl/c"), b"c", 1, retain=True)
    later = Client(uid("rl-later"), v5=True)
    later.subscribe(topic("rl/#"), 1)
    kept = sorted(later.receive().payload for _ in range(2))
    check(kept == [b"a2", b"c"], f"retained after replace and delete {kept}")
    for c in (watcher, pub, late, later):
        c.close()


def limits():
    # The gateway under test runs with small limits (see the C++ test).
    c = Client(uid("lim"), v5=True)
    p = c.connack_props
    check(p.MaximumQoS == 1, f"Maximum QoS {getattr(p, 'MaximumQoS', None)}")
    check(p.ReceiveMaximum == 5, f"Receive Maximum {p.ReceiveMaximum}")
    check(p.TopicAliasMaximum == 2, f"Topic Alias Maximum {p.TopicAliasMaximum}")
    check(p.MaximumPacketSize >= 1024, "Maximum Packet Size")
    check(c.subscribe(topic("l/a"), 2) == [1], "QoS 2 subscription not downgraded to 1")
    # 3 filters in one SUBSCRIBE with a limit of 2: the third is refused alone.
    r = wire.Raw(args.port, v5=True)
    r.connect(uid("lim-sub"))
    codes = wire.suback_codes(r.subscribe(1, [(topic("l/1"), 1), (topic("l/2"), 1),
                                              (topic("l/3"), 1)]), True)
    check(codes == [1, 1, 0x97], f"SUBACK {codes}")
    # Subscriptions per connection (3): the fourth is refused.
    codes = wire.suback_codes(r.subscribe(2, [(topic("l/4"), 1), (topic("l/5"), 1)]), True)
    check(codes == [1, 0x97], f"SUBACK over the subscription limit {codes}")
    # Topic too long (32) or too deep (7 slashes).
    codes = wire.suback_codes(r.subscribe(3, [("x" * 40, 0)]), True)
    check(codes == [0x8F], f"long filter {codes}")
    r.publish("a/b/c/d/e/f/g/h/i", b"deep", qos=1, packet_id=4)
    ack = r.read()
    check(ack.type == wire.PUBACK and ack.body[2] == 0x90, f"deep topic: {ack}")
    # Payload over --max-payload-size ends the connection with 0x95.
    r.publish(topic("l/a"), b"x" * 1025, qos=1, packet_id=5)
    closed, seen = r.closed_within(5)
    check(closed and seen and seen[-1].type == wire.DISCONNECT and wire.reason_of(seen[-1]) == 0x95,
          f"oversized payload: {seen}")
    # MQTT 3.1.1: the connection is closed.
    r = wire.Raw(args.port)
    r.connect(uid("lim3"))
    r.publish(topic("l/a"), b"x" * 1025, qos=0)
    closed, _ = r.closed_within(5)
    check(closed, "3.1.1: an oversized payload did not close the connection")
    # QoS 2 publish with --max-qos 1: DISCONNECT 0x9B.
    r = wire.Raw(args.port, v5=True)
    r.connect(uid("lim-q2"))
    r.publish(topic("l/a"), b"q2", qos=2, packet_id=1)
    closed, seen = r.closed_within(5)
    check(closed and seen and wire.reason_of(seen[-1]) == 0x9B, f"QoS 2: {seen}")
    # A client id longer than 16: CONNACK 0x85 (5) / 0x02 (3.1.1).
    r = wire.Raw(args.port, v5=True)
    ack = r.connect("c" * 17)
    check(ack.type == wire.CONNACK and ack.body[1] == 0x85, f"long client id (5): {ack}")
    r = wire.Raw(args.port)
    ack = r.connect("c" * 17)
    check(ack.type == wire.CONNACK and ack.body[1] == 0x02, f"long client id (3.1.1): {ack}")
    # Topic alias above the maximum (2): DISCONNECT 0x94.
    r = wire.Raw(args.port, v5=True)
    r.connect(uid("la"))
    r.publish(topic("l/a"), b"x", props=b"\x23\x00\x03")
    closed, seen = r.closed_within(5)
    check(closed and seen and wire.reason_of(seen[-1]) == 0x94, f"topic alias: {seen}")
    c.close()


def inflight_and_queue():
    # --max-inflight 5, --max-queued-messages 10: a client that acknowledges nothing gets 5;
    # each acknowledgement lets the next one out; an offline session keeps at most 15.
    cid = uid("slow")
    r = wire.Raw(args.port, v5=True)
    r.connect(cid, props=b"\x11\x00\x00\x0e\x10")
    r.subscribe(1, [(topic("if"), 1)])
    pub = Client(uid("ifpub"))
    for i in range(8):
        pub.publish(topic("if"), str(i).encode(), 1)
    ids = []
    for _ in range(5):
        t, pid, payload, _, _, _ = wire.parse_publish(r.read(), True)
        ids.append(pid)
    r.pingreq()
    check(r.read().type == wire.PINGRESP, "more than 5 messages in flight")
    r.ack(wire.PUBACK, ids[0])
    _, _, payload, _, _, _ = wire.parse_publish(r.read(), True)
    check(payload == b"5", f"after one PUBACK the next message is 5, got {payload}")
    r.close()
    for i in range(8, 40):
        pub.publish(topic("if"), str(i).encode(), 1)
    r = wire.Raw(args.port, v5=True)
    r.connect(cid, clean=False, props=b"\x11\x00\x00\x0e\x10")
    got = []
    while True:
        try:
            p = r.read(timeout=1.5)
        except TimeoutError:
            break
        if p is None or p.type != wire.PUBLISH:
            break
        _, pid, payload, _, _, _ = wire.parse_publish(p, True)
        got.append(payload)
        r.ack(wire.PUBACK, pid)
        if len(got) > 40:
            break
    # In flight when it left: 1-5; queued: the first 10 of the rest; later ones dropped.
    want = [str(i).encode() for i in range(1, 16)]
    check(got == want, f"the offline session kept {got}, wanted 1..15")
    pub.close()


def throttled(transport):
    # --max-publishes-per-second 50, --max-inbound-kb-per-second 64: a client sending faster
    # is read more slowly and loses nothing; one second's worth goes through at once. Over
    # TCP and TLS with raw packets, over WebSocket with paho.
    sub = Client(uid("thrsub"))
    sub.subscribe(topic("thr/#"), 1)
    if transport == "ws":
        pub = Client(uid("thrws"), ws=True)
        started = time.time()
        for i in range(200):
            pub.publish(topic("thr/n"), str(i).encode(), 0)
        got = [sub.receive().payload for _ in range(200)]
        elapsed = time.time() - started
        check(got == [str(i).encode() for i in range(200)], "every publish, in order")
        check(elapsed >= 2.5, f"200 publishes at 50 a second took {elapsed:.2f}s")
        pub.close()
        sub.close()
        return
    pub = wire.Raw(args.tls_port, tls_ca=args.cafile) if transport == "tls" else wire.Raw(args.port)
    pub.connect(uid("thrpub"))
    started = time.time()
    # 200 QoS 0 publishes in one write: 150 beyond the burst, 3 s at 50 a second.
    pub.send(b"".join(wire.packet(0x30, wire.mqtt_str(topic("thr/n")) + str(i).encode())
                      for i in range(200)))
    got = [sub.receive().payload for _ in range(200)]
    elapsed = time.time() - started
    check(got == [str(i).encode() for i in range(200)], "every publish, in order")
    check(elapsed >= 2.5, f"200 publishes at 50 a second took {elapsed:.2f}s")
    # The client is still served while it waits: a PINGREQ behind the backlog is answered.
    pub.send(b"".join(wire.packet(0x30, wire.mqtt_str(topic("thr/m")) + str(i).encode())
                      for i in range(100)))
    pub.pingreq()
    deadline = time.time() + 10
    while True:
        p = pub.read(timeout=max(0.1, deadline - time.time()))
        if p.type == wire.PINGRESP:
            break
    for _ in range(100):
        sub.receive()
    # Bytes: 24 publishes of 8 KiB (192 KiB), 128 KiB beyond the burst: 2 s at 64 KiB/s.
    started = time.time()
    blob = b"x" * 8192
    pub.send(b"".join(wire.packet(0x30, wire.mqtt_str(topic("thr/b")) + blob)
                      for _ in range(24)))
    for _ in range(24):
        check(sub.receive().payload == blob, "the 8 KiB payload")
    elapsed = time.time() - started
    check(elapsed >= 1.5, f"192 KiB at 64 KiB a second took {elapsed:.2f}s")
    pub.close()
    sub.close()


def malformed():
    cases = [
        ("reserved packet type 0", b"\x00\x00"),
        ("PUBLISH before CONNECT", wire.packet(0x30, wire.mqtt_str("a") + b"x")),
        ("wrong protocol name", wire.packet(0x10, wire.mqtt_str("MQIsdpX") + b"\x04\x02\x00\x3c" +
                                            wire.mqtt_str("x"))),
        ("remaining length over 4 bytes", b"\x10\xff\xff\xff\xff\x7f"),
        ("CONNECT with reserved flag", wire.packet(0x10, wire.mqtt_str("MQTT") + b"\x04\x03\x00\x3c"
                                                   + wire.mqtt_str("x"))),
        # Not MQTT at all: closed at the first byte, not after the 10 s CONNECT timeout.
        ("an HTTP request", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("a TLS ClientHello on the plain port", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
    ]
    for name, data in cases:
        r = wire.Raw(args.port)
        r.send(data)
        closed, seen = r.closed_within(5)
        check(closed, f"{name}: the connection stayed open")
        check(all(p.type == wire.CONNACK for p in seen), f"{name}: answered {seen}")
    after_connect = [
        ("second CONNECT", wire.packet(0x10, wire.mqtt_str("MQTT") + b"\x04\x02\x00\x3c" +
                                       wire.mqtt_str("y"))),
        ("SUBSCRIBE with flags 0", wire.packet(0x80, b"\x00\x01" + wire.mqtt_str("a") + b"\x00")),
        ("invalid UTF-8 topic", wire.packet(0x30, wire.mqtt_str(b"\xff\xfe") + b"x")),
        ("wildcard in a topic name", wire.packet(0x30, wire.mqtt_str("a/+") + b"x")),
        ("QoS 3", wire.packet(0x36, wire.mqtt_str("a") + b"\x00\x01x")),
        ("a service's answer topic", wire.packet(0x30, wire.mqtt_str(
            "$aws/things/t/shadow/update/accepted") + b"{}")),
        ("a lifecycle event topic", wire.packet(0x30, wire.mqtt_str(
            "$aws/events/presence/connected/t") + b"{}")),
    ]
    for v5 in (False, True):
        for name, data in after_connect:
            r = wire.Raw(args.port, v5=v5)
            r.connect(uid("bad"))
            r.send(data)
            closed, seen = r.closed_within(5)
            check(closed, f"{name} (v5={v5}): the connection stayed open")
            if v5:
                check(seen and seen[-1].type == wire.DISCONNECT and
                      wire.reason_of(seen[-1]) in (0x81, 0x82, 0x90),
                      f"{name}: MQTT 5 DISCONNECT with a reason, got {seen}")
    # Still serving.
    c = Client(uid("after"))
    c.subscribe(topic("m"), 1)
    c.publish(topic("m"), b"ok", 1)
    check(c.receive().payload == b"ok", "the gateway stopped serving after bad packets")
    c.close()


def tls():
    sub = Client(uid("tls-sub"), tls=True)
    sub.subscribe(topic("tls"), 1)
    pub = Client(uid("tls-pub"), v5=True, tls=True)
    pub.publish(topic("tls"), b"secret", 1)
    check(sub.receive().payload == b"secret", "not delivered over TLS")
    pub.close()
    sub.close()


def https_body_after_refusal():
    # An HTTPS publish far over the payload limit, the body still coming after the gateway
    # answered 413: the client must be able to send on and then read the answer (a gateway
    # that closes with the body unread resets the connection under the client).
    ctx = ssl.create_default_context(cafile=args.cafile)
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", args.https_port),
                                                 timeout=TIMEOUT),
                        server_hostname="localhost")
    s.sendall(b"POST /topics/%s HTTP/1.1\r\nHost: localhost\r\n"
              b"Content-Length: 4194304\r\n\r\n" % topic("big").encode())
    try:
        s.sendall(b"x" * (256 * 1024))
        time.sleep(0.3)  # the gateway has refused it by now
        s.sendall(b"x" * (64 * 1024))
        time.sleep(0.3)
        answer = s.recv(65536)
    except OSError as e:
        raise Fail(f"the connection broke under the client: {e}")
    check(answer.startswith(b"HTTP/1.1 413"), f"not a 413: {answer[:80]!r}")
    s.close()


def persist_subscribe():
    # Phase 1 of the restart test: a persistent session with a subscription, then gone.
    sub = Client("restart-sub", clean=False)
    sub.subscribe(topic("rs/#"), 1)
    sub.close()
    pub = Client(uid("rspub"))
    for i in range(10):
        pub.publish(topic("rs/a"), f"m{i}".encode(), 1)
    pub.publish(topic("rs/state"), b"kept", 1, retain=True)
    pub.close()


def persist_receive():
    # Phase 2, after the gateway restarted: session, queue and retained message are back.
    sub = Client("restart-sub", clean=False)
    check(sub.session_present == 1, "the session did not survive the restart")
    got = [sub.receive().payload.decode() for _ in range(11)]
    check(sorted(got) == sorted([f"m{i}" for i in range(10)] + ["kept"]) or
          got[:10] == [f"m{i}" for i in range(10)], f"after restart: {got}")
    sub.close()
    late = Client(uid("late"))
    late.subscribe(topic("rs/state"), 1)
    m = late.receive()
    check((m.payload, m.retain) == (b"kept", True), "the retained message did not survive")
    late.close()


def lifecycle():
    cid = uid("lc")
    watcher = Client(uid("lcw"))
    watcher.subscribe(f"$aws/events/presence/+/{cid}", 1)
    watcher.subscribe(f"$aws/events/subscriptions/+/{cid}", 1)
    dev = Client(cid, v5=True)
    dev.subscribe(topic("lc/a"), 1)
    dev.c.unsubscribe(topic("lc/a"))
    time.sleep(0.3)
    dev.close()
    events = []
    for _ in range(4):
        m = watcher.receive()
        events.append((m.topic, json.loads(m.payload)))
    kinds = [e["eventType"] for _, e in events]
    check(kinds == ["connected", "subscribed", "unsubscribed", "disconnected"], f"events {kinds}")
    connected = events[0][1]
    check(events[0][0] == f"$aws/events/presence/connected/{cid}", events[0][0])
    for field in ("clientId", "timestamp", "sessionIdentifier", "principalIdentifier",
                  "ipAddress", "versionNumber"):
        check(field in connected, f"connected event lacks {field}: {connected}")
    check(connected["ipAddress"] == "127.0.0.1", f"ipAddress {connected['ipAddress']}")
    check(events[1][1]["topics"] == [topic("lc/a")], f"subscribed {events[1][1]}")
    gone = events[3][1]
    check(gone["disconnectReason"] == "CLIENT_INITIATED_DISCONNECT" and
          gone["clientInitiatedDisconnect"] is True and
          gone["sessionIdentifier"] == connected["sessionIdentifier"] and
          gone["versionNumber"] == connected["versionNumber"], f"disconnected {gone}")
    # A lost connection says so.
    r = wire.Raw(args.port)
    r.connect(cid)
    r.close()
    m = watcher.receive()
    again = json.loads(m.payload)
    # A later connection of the client id has a higher version, which subscribers order
    # events by (they may arrive out of order).
    check(again["eventType"] == "connected" and
          again["versionNumber"] > connected["versionNumber"], f"again {again}")
    m = watcher.receive()
    lost = json.loads(m.payload)
    check(lost["disconnectReason"] == "CONNECTION_LOST" and not lost["clientInitiatedDisconnect"]
          and lost["versionNumber"] == again["versionNumber"], f"lost {lost}")
    watcher.close()


def defender():
    # A Device Defender agent, as the AWS IoT Device SDK's client does it: subscribe to the
    # answers, publish a metrics report, match the answer's reportId; a malformed report is
    # rejected saying why, and the connection stays up throughout.
    thing = uid("dd")
    base = f"$aws/things/{thing}/defender/metrics/json"
    dev = Client(uid("ddc"), v5=False)
    dev.subscribe(base + "/accepted", 1)
    dev.subscribe(base + "/rejected", 1)
    dev.subscribe(topic("dd/after"), 1)

    def answer():
        while True:
            m = dev.receive()
            if m.topic.startswith(base + "/"):
                return m.topic[len(base) + 1:], json.loads(m.payload)

    report_id = int(time.time())
    report = {"header": {"report_id": report_id, "version": "1.0"},
              "metrics": {"listening_tcp_ports": {"ports": [{"interface": "eth0", "port": 22}],
                                                  "total": 1},
                          "network_stats": {"bytes_in": 100, "bytes_out": 200, "packets_in": 3,
                                            "packets_out": 4}},
              "custom_metrics": {"cpu_usage": [{"number": 7}]}}
    dev.publish(base, json.dumps(report), 1)
    kind, doc = answer()
    check(kind == "accepted" and doc["reportId"] == report_id and doc["status"] == "ACCEPTED" and
          doc["thingName"] == thing, f"report: {kind} {doc}")
    # FreeRTOS's defender library writes the short keys.
    dev.publish(base, json.dumps({"hed": {"rid": report_id + 1, "v": "1.0"},
                                  "met": {"tp": {"pts": [{"pt": 443}], "t": 1}}}), 1)
    kind, doc = answer()
    check(kind == "accepted" and doc["reportId"] == report_id + 1, f"short keys: {kind} {doc}")
    report["header"]["report_id"] = report_id + 2
    report["metrics"]["listening_tcp_ports"]["ports"][0]["port"] = 70000
    dev.publish(base, json.dumps(report), 1)
    kind, doc = answer()
    check(kind == "rejected" and doc["reportId"] == report_id + 2 and
          doc["statusDetails"]["ErrorCode"] == "InvalidReport" and
          "ports[0].port" in doc["statusDetails"]["ErrorMessage"], f"bad port: {kind} {doc}")
    dev.publish(base, b"not json", 1)
    kind, doc = answer()
    check(kind == "rejected" and doc["statusDetails"]["ErrorCode"] == "InvalidJson",
          f"not json: {kind} {doc}")
    dev.publish(topic("dd/after"), b"still here", 1)
    m = dev.receive()
    check(m.topic == topic("dd/after") and m.payload == b"still here",
          f"after the reports: {m.topic} {m.payload!r}")
    dev.close()


def drain_watch():
    # Connects with MQTT 5 and waits for the gateway's shutdown: DISCONNECT 0x8B.
    r = wire.Raw(args.port, v5=True)
    r.connect(uid("drain"))
    print("connected", flush=True)
    closed, seen = r.closed_within(30)
    check(closed and seen and seen[-1].type == wire.DISCONNECT and wire.reason_of(seen[-1]) == 0x8B,
          f"at shutdown: {seen}")


def wait_message():
    # Prints the first message on TOPIC (for the gRPC publish test): subscribe, say so, wait.
    c = Client(args.client_id or uid("wait"), v5=True)
    c.subscribe(args.topic, 1)
    print("subscribed", flush=True)
    m = c.receive(timeout=20)
    props = getattr(m.properties, "UserProperty", [])
    print(f"message {m.topic} {m.payload.decode()} qos={m.qos} props={props}", flush=True)
    c.close()


def direct_no_ack():
    # A client that subscribes to nothing and never acknowledges: prints each PUBLISH it gets
    # (direct messages need no subscription), so that a sender waiting for a PUBACK times out.
    r = wire.Raw(args.port, v5=True)
    ack = r.connect(args.client_id)
    check(ack.type == wire.CONNACK and ack.body[1] == 0, f"CONNACK {ack}")
    print("connected", flush=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        p = r.read(timeout=deadline - time.time())
        if p is None:
            return
        if p.type == wire.PUBLISH:
            t, _, payload, qos, _, retain = wire.parse_publish(p, True)
            print(f"message {t} {payload.decode()} qos={qos} retain={retain}", flush=True)


def shadow_device():
    # The device side of AWS's shadow tutorial: it waits for the delta an app causes (the C++
    # test updates desired over gRPC once this prints "subscribed"), reports, and uses get,
    # a named shadow, a rejected update and delete over MQTT.
    thing = args.topic
    p = f"$aws/things/{thing}/shadow"
    dev = Client(uid("dev"), v5=False)
    for t in ("update/delta", "update/accepted", "update/rejected", "update/documents",
              "get/accepted", "get/rejected", "delete/accepted", "name/cfg/update/accepted"):
        dev.subscribe(f"{p}/{t}", 1)
    print("subscribed", flush=True)

    def next_on(topic, timeout=TIMEOUT):
        deadline = time.time() + timeout
        while True:
            m = dev.receive(max(0.1, deadline - time.time()))
            if m.topic == topic:
                return json.loads(m.payload)

    delta = next_on(f"{p}/update/delta", 20)
    check(delta["state"] == {"color": "red"}, f"delta {delta}")
    dev.publish(f"{p}/update", json.dumps(
        {"state": {"reported": {"color": "red"}}, "clientToken": "rep-1"}), 1)
    acc = next_on(f"{p}/update/accepted")
    check(acc["clientToken"] == "rep-1" and acc["state"] == {"reported": {"color": "red"}},
          f"accepted {acc}")
    docs = next_on(f"{p}/update/documents")
    check(docs["current"]["state"]["reported"] == {"color": "red"}, f"documents {docs}")
    dev.publish(f"{p}/get", json.dumps({"clientToken": "get-1"}), 1)
    got = next_on(f"{p}/get/accepted")
    check(got["clientToken"] == "get-1" and "delta" not in got["state"] and
          got["version"] == acc["version"], f"get {got}")
    dev.publish(f"{p}/update", json.dumps({"state": 5, "clientToken": "bad-1"}), 1)
    rej = next_on(f"{p}/update/rejected")
    check(rej["code"] == 400 and rej["message"] == "State node must be an object" and
          rej["clientToken"] == "bad-1", f"rejected {rej}")
    dev.publish(f"{p}/update", json.dumps({"state": {"reported": {"x": 1}}, "version": 1}), 1)
    rej = next_on(f"{p}/update/rejected")
    check(rej["code"] == 409 and rej["message"] == "Version conflict", f"conflict {rej}")
    dev.publish(f"{p}/name/cfg/update", json.dumps({"state": {"reported": {"fw": "1.2"}}}), 1)
    named = next_on(f"{p}/name/cfg/update/accepted")
    check(named["version"] == 1, f"named {named}")
    dev.publish(f"{p}/delete", b"", 1)
    deleted = next_on(f"{p}/delete/accepted")
    check(deleted["version"] == acc["version"], f"delete {deleted}, wanted version {acc['version']}")
    dev.publish(f"{p}/get", b"", 1)
    gone = next_on(f"{p}/get/rejected")
    check(gone["code"] == 404 and gone["message"] == f"No shadow exists with name: '{thing}'",
          f"get after delete {gone}")
    dev.close()


def shadow_flood():
    # 100 get requests in one burst on one connection: AWS answers 429 beyond 10 in flight.
    # They ask for 10 named shadows (none exists: each is answered 404), 10 each, within
    # each shadow's quota of requests a second.
    thing = args.topic
    p = f"$aws/things/{thing}/shadow/name"
    watcher = Client(uid("flood-watch"))
    watcher.subscribe(f"{p}/+/get/+", 1)
    r = wire.Raw(args.port)
    r.connect(uid("flood"))
    r.send(b"".join(wire.packet(0x30, wire.mqtt_str(f"{p}/s{i % 10}/get")) for i in range(100)))
    answers = []
    for _ in range(100):
        doc = json.loads(watcher.receive().payload)
        answers.append((doc["code"], doc["message"]))
    too_many = (429, "Too many requests in flight on this connection")
    in_flight = [a for a in answers if a == too_many]
    check(len(in_flight) > 0, f"no 429 among {answers}")
    check(len(answers) - len(in_flight) >= 10, f"fewer than 10 answered: {answers}")
    check(all(a[0] == 404 for a in answers if a not in in_flight), f"unexpected {answers}")
    r.close()
    watcher.close()


def shadow_rate():
    # 50 get requests on one shadow at once, 10 from each of 5 connections (within each
    # connection's 10 in flight): AWS's quota is 20 a second per shadow. Prints
    # "answers ACCEPTED RATE_EXCEEDED", then "late accepted|rejected" for one more a second
    # after the last answer.
    thing = args.topic
    p = f"$aws/things/{thing}/shadow"
    watcher = Client(uid("rate-watch"))
    watcher.subscribe(f"{p}/get/+", 1)
    conns = []
    for i in range(5):
        r = wire.Raw(args.port)
        r.connect(uid(f"rate-{i}"))
        conns.append(r)
    burst = b"".join(wire.packet(0x30, wire.mqtt_str(f"{p}/get")) for _ in range(10))
    for r in conns:
        r.send(burst)
    accepted = exceeded = 0
    for _ in range(50):
        m = watcher.receive()
        if m.topic.endswith("/accepted"):
            accepted += 1
            continue
        doc = json.loads(m.payload)
        check(doc["code"] == 429 and doc["message"] == "Rate exceeded", f"rejected: {doc}")
        exceeded += 1
    print(f"answers {accepted} {exceeded}", flush=True)
    time.sleep(1)
    conns[0].send(wire.packet(0x30, wire.mqtt_str(f"{p}/get")))
    m = watcher.receive()
    print(f"late {m.topic.rsplit('/', 1)[1]}", flush=True)
    for r in conns:
        r.close()
    watcher.close()


def secure_device():
    # A device with its certificate (from create-keys-and-certificate) and the policy of the
    # C++ test: connect only as its thing, publish under things/<thing>/ but not .../secret,
    # subscribe there, receive only .../cmd.
    thing = args.topic

    def raw(client_id, cert=True, v5=True):
        r = wire.Raw(args.tls_port, v5=v5, tls_ca=args.cafile,
                     cert=args.cert if cert else None, key=args.key if cert else None)
        return r, r.connect(client_id)

    r, ack = raw(thing)
    check(ack.type == wire.CONNACK and ack.body[1] == 0, f"own client id refused: {ack}")
    codes = wire.suback_codes(r.subscribe(1, [(f"things/{thing}/#", 1),
                                              ("things/other-thing/cmd", 1)]), True)
    check(codes == [1, 0x87], f"SUBACK {codes}, wanted [1, 0x87]")
    # Allowed publish, not received (no iot:Receive on telemetry); then one on cmd, received.
    r.publish(f"things/{thing}/telemetry", b"t", qos=1, packet_id=2)
    p = r.read()
    check(p.type == wire.PUBACK and (len(p.body) < 3 or p.body[2] == 0), f"telemetry {p}")
    r.publish(f"things/{thing}/secret", b"s", qos=1, packet_id=3)
    p = r.read()
    check(p.type == wire.PUBACK and p.body[2] == 0x87, f"explicit deny: {p}")
    r.publish(f"things/{thing}/cmd", b"go", qos=1, packet_id=4)
    got = []
    while True:
        p = r.read()
        if p.type == wire.PUBLISH:
            t, pid, payload, _, _, _ = wire.parse_publish(p, True)
            got.append(t)
            r.ack(wire.PUBACK, pid)
            if t.endswith("/cmd"):
                break
        elif p.type == wire.PUBACK:
            check(len(p.body) < 3 or p.body[2] == 0, f"cmd publish {p}")
    check(got == [f"things/{thing}/cmd"], f"received {got}: telemetry must not be delivered")
    r.disconnect()
    r.close()
    # Another client id: iot:Connect refuses it (MQTT 5: 0x87; 3.1.1: 5).
    _, ack = raw("someone-else")
    check(ack.body[1] == 0x87, f"other client id: {ack}")
    _, ack = raw("someone-else", v5=False)
    check(ack.body[1] == 5, f"other client id (3.1.1): {ack}")
    # No certificate: refused.
    _, ack = raw(thing, cert=False)
    check(ack is not None and ack.body[1] == 0x87, f"no certificate: {ack}")
    # 3.1.1: a forbidden publish ends the connection.
    r, ack = raw(thing, v5=False)
    r.publish(f"things/{thing}/secret", b"s", qos=1, packet_id=1)
    closed, _ = r.closed_within(5)
    check(closed, "3.1.1: a forbidden publish did not end the connection")


def secure_wait_revoked():
    # Connected with its certificate; the C++ test revokes it: DISCONNECT 0x87 follows.
    r = wire.Raw(args.tls_port, v5=True, tls_ca=args.cafile, cert=args.cert, key=args.key)
    ack = r.connect(args.topic)
    check(ack.body[1] == 0, f"CONNACK {ack}")
    print("connected", flush=True)
    closed, seen = r.closed_within(20)
    check(closed and seen and seen[-1].type == wire.DISCONNECT and wire.reason_of(seen[-1]) == 0x87,
          f"after revocation: closed={closed} {seen}")


def secure_resume():
    # A reconnecting device resumes its TLS session (its certificate is not sent again): the
    # gateway still knows whose it is; once the C++ test has revoked the certificate
    # (--out-dir/revoked appears), a resumed session is refused like a full handshake.
    import os
    import ssl
    ctx = ssl.create_default_context(cafile=args.cafile)
    ctx.load_cert_chain(args.cert, args.key)

    def connect(session):
        r = wire.Raw(args.tls_port, v5=True, tls_context=ctx, tls_session=session)
        ack = r.connect(args.topic)
        return r, ack

    r, ack = connect(None)
    check(ack is not None and ack.body[1] == 0, f"first CONNACK {ack}")
    check(not r.sock.session_reused, "the first connection resumed a session")
    session = r.sock.session  # the ticket came before the CONNACK
    r.disconnect()
    r.close()
    r, ack = connect(session)
    check(ack is not None and ack.body[1] == 0, f"resumed CONNACK {ack}")
    check(r.sock.session_reused, "the second connection did not resume the session")
    session = r.sock.session
    r.disconnect()
    r.close()
    print("resumed", flush=True)
    deadline = time.time() + 30
    while not os.path.exists(os.path.join(args.out_dir, "revoked")):
        check(time.time() < deadline, "never told of the revocation")
        time.sleep(0.05)
    # The revocation reaches the gateway as a notification: a moment may pass.
    while True:
        r, ack = connect(session)
        if ack is not None and ack.body[1] == 0x87:
            break
        check(time.time() < deadline, f"a revoked certificate's resumed session: {ack}")
        r.close()
        time.sleep(0.1)
    check(r.sock.session_reused, "the refused connection did not resume the session")


def service_answer(r, prefix):
    # The next message on a topic starting with `prefix` on raw MQTT 5 connection `r` (a
    # service's accepted or rejected answer), acknowledging what arrives: (topic, payload).
    while True:
        p = r.read()
        check(p is not None, "connection closed while waiting for an answer")
        if p.type != wire.PUBLISH:
            continue
        t, pid, payload, _, _, _ = wire.parse_publish(p, True)
        if pid:
            r.ack(wire.PUBACK, pid)
        if t.startswith(prefix):
            return t, payload


def fleet_provision():
    # Provisioning by claim, as the Device SDK's fleet provisioning sample does it: connect
    # with the claim certificate, get keys and a certificate, register the thing with the
    # template, then reconnect with the new certificate as the new thing.
    template = args.topic
    r = wire.Raw(args.tls_port, v5=True, tls_ca=args.cafile, cert=args.cert, key=args.key)
    ack = r.connect(uid("claim"))
    check(ack.body[1] == 0, f"claim CONNACK {ack}")
    create = "$aws/certificates/create/json"
    provision = f"$aws/provisioning-templates/{template}/provision/json"
    codes = wire.suback_codes(r.subscribe(1, [(create + "/accepted", 1), (create + "/rejected", 1),
                                              (provision + "/accepted", 1),
                                              (provision + "/rejected", 1)]), True)
    check(codes == [1, 1, 1, 1], f"SUBACK {codes}")

    def answer(prefix):
        t, payload = service_answer(r, prefix)
        return t, json.loads(payload)

    r.publish(create, b"", qos=1, packet_id=2)
    t, keys = answer(create)
    check(t == create + "/accepted", f"create: {t} {keys}")
    for field in ("certificateId", "certificatePem", "privateKey", "certificateOwnershipToken"):
        check(field in keys, f"create answer lacks {field}")
    r.publish(provision, json.dumps({"certificateOwnershipToken": "forged",
                                     "parameters": {"SerialNumber": "77"}}).encode(), qos=1,
              packet_id=3)
    t, rej = answer(provision)
    check(t == provision + "/rejected" and rej["statusCode"] >= 400, f"forged token: {t} {rej}")
    r.publish(provision, json.dumps({"certificateOwnershipToken": keys["certificateOwnershipToken"],
                                     "parameters": {"SerialNumber": "77"}}).encode(), qos=1,
              packet_id=4)
    t, done = answer(provision)
    check(t == provision + "/accepted", f"provision: {t} {done}")
    thing = done["thingName"]
    check(thing == "sensor-77", f"thingName {thing}")
    r.disconnect()
    r.close()
    with open(f"{args.out_dir}/new.pem", "w") as f:
        f.write(keys["certificatePem"])
    with open(f"{args.out_dir}/new.key", "w") as f:
        f.write(keys["privateKey"])
    n = wire.Raw(args.tls_port, v5=True, tls_ca=args.cafile, cert=f"{args.out_dir}/new.pem",
                 key=f"{args.out_dir}/new.key")
    ack = n.connect(thing)
    check(ack.body[1] == 0, f"new certificate CONNACK {ack}")
    n.publish(f"things/{thing}/telemetry", b"hello", qos=1, packet_id=1)
    p = n.read()
    check(p.type == wire.PUBACK and (len(p.body) < 3 or p.body[2] == 0), f"publish as {thing}: {p}")
    n.close()


def requester(name):
    # A raw MQTT 5 connection with --cert/--key, subscribed to the answers of --topic (a
    # service's request topic).
    r = wire.Raw(args.tls_port, v5=True, tls_ca=args.cafile, cert=args.cert, key=args.key)
    ack = r.connect(uid(name))
    check(ack.body[1] == 0, f"CONNACK {ack}")
    codes = wire.suback_codes(r.subscribe(1, [(args.topic + "/accepted", 1),
                                              (args.topic + "/rejected", 1)]), True)
    check(codes == [1, 1], f"SUBACK {codes}")
    return r


def request():
    # One request on --topic with the bytes of --payload-file; prints "answer
    # accepted|rejected HEX" for the caller to decode (the payload may be CBOR).
    r = requester("request")
    payload = b""
    if args.payload_file:
        with open(args.payload_file, "rb") as f:
            payload = f.read()
    r.publish(args.topic, payload, qos=1, packet_id=2)
    t, answer = service_answer(r, args.topic + "/")
    print(f"answer {t[len(args.topic) + 1:]} {answer.hex()}", flush=True)
    r.close()


def request_burst():
    # --topic's request (empty payload) 30 times in one write, then once more a second after
    # the last answer: prints "answer accepted|rejected JSON" for each, the last one's line
    # starting "late".
    r = requester("burst")
    request = wire.packet(0x30, wire.mqtt_str(args.topic) + wire.varint(0))  # QoS 0, no props
    r.send(request * 30)
    for _ in range(30):
        t, answer = service_answer(r, args.topic + "/")
        print(f"answer {t[len(args.topic) + 1:]} {answer.decode()}", flush=True)
    time.sleep(1)
    r.send(request)
    t, answer = service_answer(r, args.topic + "/")
    print(f"late {t[len(args.topic) + 1:]} {answer.decode()}", flush=True)
    r.close()


def custom_auth_device():
    # No certificate: the user name names the custom authorizer and the password carries the
    # token (AWS's tutorial, over the TLS listener). The function's policy allows the client
    # id's own things/<clientId>/ topics.
    def connect(client_id, password):
        r = wire.Raw(args.tls_port, v5=True, tls_ca=args.cafile)
        flags_username = f"device?x-amz-customauthorizer-name={args.topic}"
        body = (wire.mqtt_str("MQTT") + bytes([5, 0x02 | 0x80 | 0x40]) + b"\x00\x3c" +
                wire.varint(0) + wire.mqtt_str(client_id) + wire.mqtt_str(flags_username) +
                wire.mqtt_str(password))
        r.send(wire.packet(0x10, body))
        return r, r.read()

    r, ack = connect("dev-7", args.password)
    check(ack.type == wire.CONNACK and ack.body[1] == 0, f"good token: {ack}")
    r.publish("things/dev-7/temp", b"21", qos=1, packet_id=1)
    p = r.read()
    check(p.type == wire.PUBACK and (len(p.body) < 3 or p.body[2] == 0), f"own topic: {p}")
    r.publish("things/dev-8/temp", b"21", qos=1, packet_id=2)
    p = r.read()
    check(p.type == wire.PUBACK and p.body[2] == 0x87, f"other device's topic: {p}")
    r.close()
    _, ack = connect("dev-7", "wrong-token")
    check(ack.type == wire.CONNACK and ack.body[1] == 0x87, f"bad token: {ack}")


def secure_policy_change():
    # Connected and allowed to publish; the C++ test then detaches the policy and creates
    # OUT_DIR/go: the next publish on the same connection is refused.
    import os
    r = wire.Raw(args.tls_port, v5=True, tls_ca=args.cafile, cert=args.cert, key=args.key)
    ack = r.connect(args.topic)
    check(ack.body[1] == 0, f"CONNACK {ack}")
    r.publish(f"things/{args.topic}/temp", b"1", qos=1, packet_id=1)
    p = r.read()
    check(p.type == wire.PUBACK and (len(p.body) < 3 or p.body[2] == 0), f"before: {p}")
    print("ready", flush=True)
    deadline = time.time() + 20
    while not os.path.exists(f"{args.out_dir}/go") and time.time() < deadline:
        time.sleep(0.05)
    for attempt in range(50):
        r.publish(f"things/{args.topic}/temp", b"2", qos=1, packet_id=2 + attempt)
        p = r.read()
        if p.type == wire.PUBACK and len(p.body) >= 3 and p.body[2] == 0x87:
            return
        time.sleep(0.1)
    fail = "the publish was still allowed 5 s after the policy was detached"
    check(False, fail)


def unknown_certificate():
    # A certificate no registered CA signed: the CA service refuses it, so does the gateway.
    r = wire.Raw(args.tls_port, v5=True, tls_ca=args.cafile, cert=args.cert, key=args.key)
    ack = r.connect(uid("stranger"))
    check(ack is not None and ack.type == wire.CONNACK and ack.body[1] == 0x87,
          f"unknown certificate: {ack}")


SCENARIOS = {
    "wildcards_v311": lambda: wildcards(False),
    "wildcards_v5": lambda: wildcards(True),
    "qos_v311": lambda: qos_levels(False),
    "qos_v5": lambda: qos_levels(True),
    "qos2_exactly_once": qos2_exactly_once,
    "offline_queue": offline_queue,
    "redelivery_v311": lambda: redelivery(False),
    "redelivery_v5": lambda: redelivery(True),
    "retained_v311": lambda: retained(False),
    "retained_v5": lambda: retained(True),
    "retained_limit": retained_limit,
    "retain_options": retain_options,
    "will": will,
    "will_delay": will_delay,
    "takeover_v311": lambda: takeover(False),
    "takeover_v5": lambda: takeover(True),
    "keepalive": keepalive,
    "throttled_tcp": lambda: throttled("tcp"),
    "throttled_tls": lambda: throttled("tls"),
    "throttled_ws": lambda: throttled("ws"),
    "shared": shared,
    "v5_properties": v5_properties,
    "message_expiry": message_expiry,
    "limits": limits,
    "inflight_and_queue": inflight_and_queue,
    "malformed": malformed,
    "tls": tls,
    "https_body_after_refusal": https_body_after_refusal,
    "persist_subscribe": persist_subscribe,
    "persist_receive": persist_receive,
    "drain_watch": drain_watch,
    "lifecycle": lifecycle,
    "defender": defender,
    "wait_message": wait_message,
    "direct_no_ack": direct_no_ack,
    "shadow_device": shadow_device,
    "shadow_flood": shadow_flood,
    "shadow_rate": shadow_rate,
    "secure_device": secure_device,
    "unknown_certificate": unknown_certificate,
    "secure_resume": secure_resume,
    "secure_wait_revoked": secure_wait_revoked,
    "fleet_provision": fleet_provision,
    "request": request,
    "request_burst": request_burst,
    "custom_auth_device": custom_auth_device,
    "secure_policy_change": secure_policy_change,
}


def main():
    global args
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls-port", type=int)
    parser.add_argument("--https-port", type=int)
    parser.add_argument("--ws-port", type=int)
    parser.add_argument("--cafile")
    parser.add_argument("--prefix", default=f"e2e/{uuid.uuid4().hex[:6]}")
    parser.add_argument("--topic")
    parser.add_argument("--client-id")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--out-dir")
    parser.add_argument("--password")
    parser.add_argument("--payload-file")
    args = parser.parse_args()
    try:
        SCENARIOS[args.scenario]()
    except (Fail, queue.Empty) as e:
        print(f"FAIL {args.scenario}: {e}", flush=True)
        return 1
    print(f"ok {args.scenario}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
