"""Real Kafka clients against the embedded broker, driven by tests/kafka_clients.rs.

    python3 clients.py BOOTSTRAP CLIENT STEP TOPIC GROUP [N]

CLIENT is `kafka-python` or `confluent-kafka`. STEP is one of
  group   create TOPIC (4 partitions), produce N keyed messages, then a group of two
          consumers splits the partitions and commits; one leaves, the other takes over;
          N more messages are produced and consumed. Checks that every message is read
          exactly once across the two consumers, in order per partition.
  resume  produce N messages, then one consumer of GROUP must read exactly those (the
          group resumes from the offsets it committed before the broker restarted).
  tail    read one message from TOPIC with a group, print it (the demo's metrics group).
  admin   the admin APIs: list and describe GROUP, its committed offsets, describe TOPIC.
Prints one JSON line with what happened; exits non-zero with a reason on failure.
"""
import json
import sys
import threading
import time

BOOTSTRAP, CLIENT, STEP, TOPIC, GROUP = sys.argv[1:6]
N = int(sys.argv[6]) if len(sys.argv) > 6 else 1000
DEADLINE = time.time() + 120


def fail(reason, **extra):
    print(json.dumps({"ok": False, "reason": reason, **extra}))
    sys.exit(1)


class KafkaPython:
    def __init__(self):
        import kafka
        self.kafka = kafka

    def create_topic(self, name, partitions):
        from kafka.admin import KafkaAdminClient, NewTopic
        admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
        admin.create_topics([NewTopic(name, partitions, 1)])
        admin.close()

    def produce(self, topic, messages):
        p = self.kafka.KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=5)
        for k, v in messages:
            p.send(topic, key=k, value=v)
        p.flush(60)
        p.close()

    def consumer(self, topic, group, name):
        return KPConsumer(self.kafka, topic, group, name)

    def admin(self, topic, group):
        from kafka.admin import KafkaAdminClient
        a = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
        groups = [g[0] for g in a.list_consumer_groups()]
        described = a.describe_consumer_groups([group])[0]
        offsets = a.list_consumer_group_offsets(group)
        partitions = a.describe_topics([topic])[0]["partitions"]
        a.close()
        return {"groups": groups, "state": described.state,
                "committed": sum(o.offset for o in offsets.values()),
                "partitions": len(partitions)}


class KPConsumer:
    def __init__(self, kafka, topic, group, name):
        self.c = kafka.KafkaConsumer(
            topic,
            bootstrap_servers=BOOTSTRAP,
            # One client id per consumer: kafka-python 3.0 mixes up the group state of
            # two consumers of one process that share a client id.
            client_id=f"{group}-{name}",
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=10000,
            heartbeat_interval_ms=500,
            max_poll_records=50,
        )

    def poll(self):
        out = []
        for _tp, records in self.c.poll(timeout_ms=200).items():
            for r in records:
                out.append((r.partition, r.offset, r.key, r.value))
        return out

    def commit(self):
        self.c.commit()

    def assignment(self):
        return sorted(tp.partition for tp in self.c.assignment())

    def close(self):
        self.c.close(autocommit=False)


class Confluent:
    def __init__(self):
        import confluent_kafka
        self.ck = confluent_kafka

    def create_topic(self, name, partitions):
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
        for _t, f in admin.create_topics([NewTopic(name, partitions, 1)]).items():
            f.result(30)

    def produce(self, topic, messages):
        p = self.ck.Producer({
            "bootstrap.servers": BOOTSTRAP,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
        })
        errors = []
        for k, v in messages:
            while True:
                try:
                    p.produce(topic, key=k, value=v,
                              on_delivery=lambda e, m: errors.append(str(e)) if e else None)
                    break
                except BufferError:
                    p.poll(0.1)
            p.poll(0)
        left = p.flush(60)
        if left or errors:
            fail("produce failed", left=left, errors=errors[:5])

    def consumer(self, topic, group, name):
        return CKConsumer(self.ck, topic, group, name)

    def admin(self, topic, group):
        from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
        from confluent_kafka.admin import AdminClient
        a = AdminClient({"bootstrap.servers": BOOTSTRAP})
        groups = [g.group_id for g in a.list_consumer_groups().result(30).valid]
        described = a.describe_consumer_groups([group])[group].result(30)
        md = a.list_topics(topic, timeout=30).topics[topic]
        request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in md.partitions])
        listed = a.list_consumer_group_offsets([request])[group].result(30)
        return {"groups": groups, "state": str(described.state).split(".")[-1].capitalize(),
                "committed": sum(tp.offset for tp in listed.topic_partitions if tp.offset >= 0),
                "partitions": len(md.partitions)}


class CKConsumer:
    def __init__(self, ck, topic, group, name):
        self.c = ck.Consumer({
            "bootstrap.servers": BOOTSTRAP,
            "client.id": f"{group}-{name}",
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 500,
            # kafka-python uses range (its first default): cover round-robin here.
            "partition.assignment.strategy": "roundrobin",
        })
        self.c.subscribe([topic])

    def poll(self):
        out = []
        for m in self.c.consume(num_messages=50, timeout=0.2):
            if m.error():
                if m.error().code() == -191:  # _PARTITION_EOF
                    continue
                fail("consume error", error=str(m.error()))
            out.append((m.partition(), m.offset(), m.key(), m.value()))
        return out

    def commit(self):
        try:
            self.c.commit(asynchronous=False)
        except Exception as e:  # nothing to commit yet
            if "NO_OFFSET" not in str(e):
                raise

    def assignment(self):
        return sorted(tp.partition for tp in self.c.assignment())

    def close(self):
        self.c.close()


def messages(prefix, n):
    return [(f"key-{i % 97}".encode(), f"{prefix}-{i}".encode()) for i in range(n)]


class Reader(threading.Thread):
    """Polls and commits after every batch until told to stop."""

    def __init__(self, client, name):
        super().__init__(daemon=True)
        self.c = client.consumer(TOPIC, GROUP, name)
        self.name_ = name
        self.seen = []
        self.stop = threading.Event()
        self.leave = threading.Event()
        self.assigned = []
        self.error = None

    def run(self):
        try:
            while not self.stop.is_set() and time.time() < DEADLINE:
                batch = self.c.poll()
                if batch:
                    self.seen.extend(batch)
                    self.c.commit()
                self.assigned = self.c.assignment()
            self.c.commit()
            self.c.close()
        except Exception as e:  # reported by the main thread
            self.error = repr(e)


def wait_for(cond, what, limit=60, extra=None):
    end = time.time() + limit
    while time.time() < end:
        if cond():
            return
        time.sleep(0.1)
    fail(f"timed out waiting for {what}", **(extra() if extra else {}))


def check_exactly_once(seen, expected_values):
    values = [v for (_p, _o, _k, v) in seen]
    dupes = len(values) - len(set(values))
    missing = set(expected_values) - set(values)
    if dupes or missing:
        fail("messages lost or read twice", duplicates=dupes, missing=len(missing))
    by_partition = {}
    for p, o, _k, _v in seen:
        by_partition.setdefault(p, []).append(o)
    for p, offsets in by_partition.items():
        if offsets != sorted(offsets):
            fail("offsets out of order", partition=p)


def main():
    client = KafkaPython() if CLIENT == "kafka-python" else Confluent()
    if STEP == "group":
        client.create_topic(TOPIC, 4)
        first = messages("a", N)
        client.produce(TOPIC, first)
        a, b = Reader(client, "a"), Reader(client, "b")
        a.start()
        b.start()
        wait_for(lambda: len(a.assigned) + len(b.assigned) == 4 and a.assigned and b.assigned,
                 "two consumers to split 4 partitions",
                 extra=lambda: {"a": a.assigned, "b": b.assigned, "errors": [a.error, b.error], "seen": [len(a.seen), len(b.seen)]})
        split = (a.assigned, b.assigned)
        wait_for(lambda: len(a.seen) + len(b.seen) >= N, "the first messages")
        a.stop.set()
        a.join(30)
        wait_for(lambda: b.assigned == [0, 1, 2, 3], "the remaining consumer to take over")
        second = messages("b", N)
        client.produce(TOPIC, second)
        wait_for(lambda: len(a.seen) + len(b.seen) >= 2 * N, "the second messages")
        b.stop.set()
        b.join(30)
        for r in (a, b):
            if r.error:
                fail("consumer failed", error=r.error)
        check_exactly_once(a.seen + b.seen, [v for _k, v in first + second])
        print(json.dumps({"ok": True, "split": split, "read_by_a": len(a.seen),
                          "read_by_b": len(b.seen)}))
    elif STEP == "resume":
        fresh = messages("c", N)
        client.produce(TOPIC, fresh)
        r = Reader(client, "r")
        r.start()
        wait_for(lambda: len(r.seen) >= N, "the messages produced after the restart")
        time.sleep(1)  # anything committed before would show up by now
        r.stop.set()
        r.join(30)
        if r.error:
            fail("consumer failed", error=r.error)
        check_exactly_once(r.seen, [v for _k, v in fresh])
        print(json.dumps({"ok": True, "read": len(r.seen)}))
    elif STEP == "tail":
        r = Reader(client, "t")
        r.start()
        wait_for(lambda: r.seen, "a message", limit=90)
        r.stop.set()
        r.join(30)
        _p, _o, key, value = r.seen[0]
        print(json.dumps({"ok": True, "key": key.decode(), "value": json.loads(value)}))
    elif STEP == "admin":
        print(json.dumps({"ok": True, **client.admin(TOPIC, GROUP)}))
    else:
        fail(f"unknown step {STEP}")


main()
