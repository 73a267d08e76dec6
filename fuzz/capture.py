#!/usr/bin/env python3
"""A recording proxy: how the fuzz corpora's seeds were captured from real clients and
servers (net-snmp's tools and snmpd; kcat, kafka-python and confluent-kafka).

    capture.py udp LISTEN_PORT TARGET_PORT REQUESTS_DIR REPLIES_DIR
        Forwards SNMP datagrams from clients on 127.0.0.1:LISTEN_PORT to an agent on
        127.0.0.1:TARGET_PORT and back; writes every request into REQUESTS_DIR and every
        reply into REPLIES_DIR (snmp_agent and snmp_response seeds).

    capture.py tcp LISTEN_PORT TARGET_PORT CONNECTIONS_DIR
        Forwards Kafka connections to a broker on 127.0.0.1:TARGET_PORT; writes what each
        client sent on its connection (size-prefixed frames, whole frames only, at most
        64 KiB) into CONNECTIONS_DIR when it closes (kafka_request seeds).

Files are named by the SHA-1 of their content, as libFuzzer names corpus files. Runs
until interrupted.
"""

import hashlib
import os
import selectors
import socket
import sys
import threading

MAX_SEED = 64 * 1024


def save(directory, data):
    if not data:
        return
    os.makedirs(directory, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def udp(listen_port, target_port, requests_dir, replies_dir):
    front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    front.bind(("127.0.0.1", listen_port))
    back = {}  # client address -> socket towards the agent
    sel = selectors.DefaultSelector()
    sel.register(front, selectors.EVENT_READ, None)
    while True:
        for key, _ in sel.select():
            if key.data is None:
                data, client = front.recvfrom(65535)
                save(requests_dir, data)
                s = back.get(client)
                if s is None:
                    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    s.connect(("127.0.0.1", target_port))
                    back[client] = s
                    sel.register(s, selectors.EVENT_READ, client)
                s.send(data)
            else:
                data = key.fileobj.recv(65535)
                save(replies_dir, data)
                front.sendto(data, key.data)


def whole_frames(stream):
    """The longest prefix of `stream` made of whole frames and at most MAX_SEED bytes."""
    end = 0
    while end + 4 <= len(stream):
        size = int.from_bytes(stream[end:end + 4], "big", signed=True)
        if size < 0 or end + 4 + size > min(len(stream), MAX_SEED):
            break
        end += 4 + size
    return stream[:end]


def tcp(listen_port, target_port, out_dir):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", listen_port))
    server.listen()

    def pump(src, dst, record):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if record is not None:
                    record.extend(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def connection(client):
        broker = socket.create_connection(("127.0.0.1", target_port))
        sent = bytearray()
        back = threading.Thread(target=pump, args=(broker, client, None), daemon=True)
        back.start()
        pump(client, broker, sent)
        back.join()
        save(out_dir, bytes(whole_frames(sent)))

    while True:
        client, _ = server.accept()
        threading.Thread(target=connection, args=(client,), daemon=True).start()


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "udp":
        udp(int(args[0]), int(args[1]), args[2], args[3])
    elif mode == "tcp":
        tcp(int(args[0]), int(args[1]), args[2])
    else:
        sys.exit(__doc__)
