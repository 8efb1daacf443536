"""A raw MQTT client for the end-to-end tests: it writes packets byte by byte, so a test can
send what a well-behaved client library never would (no acknowledgement, a silent
keep-alive, a malformed packet) and read exactly what the broker answers.
"""
import socket
import ssl
import struct

TIMEOUT = 10

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 10, 11, 12, 13, 14


def varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def mqtt_str(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def packet(first_byte, body):
    return bytes([first_byte]) + varint(len(body)) + body


class Packet:
    def __init__(self, first_byte, body):
        self.type = first_byte >> 4
        self.flags = first_byte & 0x0F
        self.body = body

    def __repr__(self):
        return f"Packet(type={self.type}, flags={self.flags:#x}, body={self.body[:40]!r})"


class Raw:
    def __init__(self, port, host="127.0.0.1", v5=False, tls_ca=None, cert=None, key=None,
                 tls_context=None, tls_session=None):
        """TLS with `tls_ca` (and a client certificate), or with `tls_context` (one context
        for several connections, so that `tls_session`, a previous connection's
        sock.session, can be resumed)."""
        sock = socket.create_connection((host, port), timeout=TIMEOUT)
        if tls_ca and tls_context is None:
            tls_context = ssl.create_default_context(cafile=tls_ca)
            if cert:
                tls_context.load_cert_chain(cert, key)
        if tls_context is not None:
            sock = tls_context.wrap_socket(sock, server_hostname="localhost", session=tls_session)
        self.sock = sock
        self.v5 = v5
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def close(self):
        self.sock.close()

    def _fill(self, n, timeout):
        self.sock.settimeout(timeout)
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                return False
            self.buf += chunk
        return True

    def read(self, timeout=TIMEOUT):
        """The next packet; None when the broker closed the connection."""
        try:
            if not self._fill(2, timeout):
                return None
            length, shift, i = 0, 0, 1
            while True:
                if not self._fill(i + 1, timeout):
                    return None
                b = self.buf[i]
                length |= (b & 0x7F) << shift
                shift += 7
                i += 1
                if not b & 0x80:
                    break
            if not self._fill(i + length, timeout):
                return None
        except ConnectionResetError:
            return None
        p = Packet(self.buf[0], self.buf[i:i + length])
        self.buf = self.buf[i + length:]
        return p

    def closed_within(self, seconds):
        """True when the broker closes the connection within `seconds` (packets before the
        close, such as an MQTT 5 DISCONNECT, are returned in the list)."""
        seen = []
        try:
            while True:
                p = self.read(timeout=seconds)
                if p is None:
                    return True, seen
                seen.append(p)
        except socket.timeout:
            return False, seen

    # Packets a client sends.
    def connect(self, client_id, clean=True, keepalive=60, will=None, props=b"",
                username=None, read_ack=True):
        flags = 0x02 if clean else 0
        payload = mqtt_str(client_id)
        if will:
            topic, message, qos, retain = will
            flags |= 0x04 | (qos << 3) | (0x20 if retain else 0)
            if self.v5:
                payload += varint(0)
            payload += mqtt_str(topic) + mqtt_str(message)
        if username is not None:
            flags |= 0x80
            payload += mqtt_str(username)
        vh = mqtt_str("MQTT") + bytes([5 if self.v5 else 4, flags]) + struct.pack("!H", keepalive)
        if self.v5:
            vh += varint(len(props)) + props
        self.send(packet(0x10, vh + payload))
        return self.read() if read_ack else None

    def subscribe(self, packet_id, filters):
        """filters: [(filter, options byte)]"""
        body = struct.pack("!H", packet_id) + (varint(0) if self.v5 else b"")
        for f, opts in filters:
            body += mqtt_str(f) + bytes([opts])
        self.send(packet(0x82, body))
        return self.read()

    def publish(self, topic, payload, qos=0, packet_id=1, retain=False, dup=False, props=b""):
        first = 0x30 | (qos << 1) | (0x01 if retain else 0) | (0x08 if dup else 0)
        body = mqtt_str(topic) + (struct.pack("!H", packet_id) if qos else b"")
        if self.v5:
            body += varint(len(props)) + props
        self.send(packet(first, body + payload))

    def ack(self, kind, packet_id):
        first = {PUBACK: 0x40, PUBREC: 0x50, PUBREL: 0x62, PUBCOMP: 0x70}[kind]
        self.send(packet(first, struct.pack("!H", packet_id)))

    def pingreq(self):
        self.send(b"\xc0\x00")

    def disconnect(self):
        self.send(b"\xe0\x00")


def skip_properties(body, i):
    """The index after the MQTT 5 properties (length prefix and content) at body[i]."""
    length, shift = 0, 0
    while True:
        b = body[i]
        i += 1
        length |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return i + length


def suback_codes(p, v5):
    """The reason codes of a SUBACK: after the packet id and (MQTT 5) the properties."""
    return list(p.body[skip_properties(p.body, 2) if v5 else 2:])


def parse_publish(p, v5):
    """(topic, packet_id or None, payload, qos, dup, retain)"""
    qos = (p.flags >> 1) & 3
    n = struct.unpack("!H", p.body[:2])[0]
    topic = p.body[2:2 + n].decode()
    i = 2 + n
    packet_id = None
    if qos:
        packet_id = struct.unpack("!H", p.body[i:i + 2])[0]
        i += 2
    if v5:
        i = skip_properties(p.body, i)
    return topic, packet_id, p.body[i:], qos, bool(p.flags & 8), bool(p.flags & 1)


def reason_of(p):
    """The reason code of an MQTT 5 DISCONNECT (0 when it has none)."""
    return p.body[0] if p.body else 0
