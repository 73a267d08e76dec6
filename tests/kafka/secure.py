"""Real Kafka clients against a secured (or attacked) embedded broker, driven by
tests/kafka_security.rs.

    python3 secure.py BOOTSTRAP CLIENT STEP CONFIG_JSON [ARGS...]

CLIENT is `kafka-python` or `confluent-kafka`. CONFIG_JSON holds the connection's
security: {"protocol": "SASL_SSL", "mechanism": "SCRAM-SHA-256", "username": ...,
"password": ..., "cafile": ...} (every key optional; `{}` is plaintext). STEP is one of
  metadata            list the topics.
  produce TOPIC KEY VALUE
                      produce one message and wait for its acknowledgement.
  commit GROUP TOPIC  commit offset 0 of partition 0 for GROUP (kafka-python).
  join GROUP TOPIC    subscribe with GROUP and poll once (kafka-python).
  create TOPIC N      CreateTopics with N partitions (kafka-python's admin client).
Prints one JSON line: {"ok": true, ...} or {"ok": false, "error_type", "error", "log"},
where "log" is what the client logged (kafka-python) or reported to its error callback
(confluent-kafka): the messages a user sees. A step that does not finish within its time
is reported as not ok, with what was logged until then.
"""
import io
import json
import logging
import os
import sys
import threading

BOOTSTRAP, CLIENT, STEP, CONFIG = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
ARGS = sys.argv[5:]
# Seconds a step may take ("limit" in CONFIG): a client refused at authentication may
# retry until then (kafka-python does), and its log says why.
LIMIT = CONFIG.get("limit", 25)

log = io.StringIO()
logging.basicConfig(stream=log, level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
errors = []


def report(**fields):
    print(json.dumps({"log": log.getvalue() + "\n".join(errors), **fields}), flush=True)
    os._exit(0)


def kafka_python_config():
    c = {"bootstrap_servers": BOOTSTRAP, "request_timeout_ms": 30000,
         "api_version_auto_timeout_ms": 5000}
    if "protocol" in CONFIG:
        c["security_protocol"] = CONFIG["protocol"]
    if "mechanism" in CONFIG:
        c["sasl_mechanism"] = CONFIG["mechanism"]
        c["sasl_plain_username"] = CONFIG["username"]
        c["sasl_plain_password"] = CONFIG["password"]
    if "cafile" in CONFIG:
        c["ssl_cafile"] = CONFIG["cafile"]
    return c


def confluent_config():
    c = {"bootstrap.servers": BOOTSTRAP, "error_cb": lambda e: errors.append(str(e))}
    if "protocol" in CONFIG:
        c["security.protocol"] = CONFIG["protocol"]
    if "mechanism" in CONFIG:
        c["sasl.mechanisms"] = CONFIG["mechanism"]
        c["sasl.username"] = CONFIG["username"]
        c["sasl.password"] = CONFIG["password"]
    if "cafile" in CONFIG:
        c["ssl.ca.location"] = CONFIG["cafile"]
    return c


def kafka_python():
    import kafka
    from kafka.structs import OffsetAndMetadata, TopicPartition
    if STEP == "metadata":
        c = kafka.KafkaConsumer(**kafka_python_config())
        return {"topics": sorted(c.topics())}
    if STEP == "produce":
        topic, key, value = ARGS
        p = kafka.KafkaProducer(acks=1, retries=0, **kafka_python_config())
        md = p.send(topic, key=key.encode(), value=value.encode()).get(timeout=20)
        return {"offset": md.offset}
    if STEP == "commit":
        group, topic = ARGS
        c = kafka.KafkaConsumer(group_id=group, enable_auto_commit=False, **kafka_python_config())
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        c.commit({tp: OffsetAndMetadata(0, "", -1)})
        return {"committed": 0}
    if STEP == "join":
        group, topic = ARGS
        c = kafka.KafkaConsumer(topic, group_id=group, enable_auto_commit=False,
                                **kafka_python_config())
        c.poll(timeout_ms=5000)
        return {"assigned": sorted(tp.partition for tp in c.assignment())}
    if STEP == "create":
        from kafka.admin import KafkaAdminClient, NewTopic
        topic, n = ARGS
        a = KafkaAdminClient(**kafka_python_config())
        response = a.create_topics([NewTopic(topic, int(n), 1)])
        return {"topic_errors": [list(e[:3]) for e in response.topic_errors]}
    raise ValueError(f"unknown step {STEP}")


def confluent():
    import confluent_kafka
    if STEP == "metadata":
        from confluent_kafka.admin import AdminClient
        a = AdminClient(confluent_config())
        try:
            md = a.list_topics(timeout=max(1, min(15, LIMIT - 3)))
        except Exception:
            a.poll(1)  # serves the error callback: what the client reported
            raise
        return {"topics": sorted(md.topics)}
    if STEP == "produce":
        topic, key, value = ARGS
        results = []
        p = confluent_kafka.Producer({**confluent_config(), "acks": "1"})
        p.produce(topic, key=key.encode(), value=value.encode(),
                  on_delivery=lambda e, m: results.append((e, m)))
        p.flush(20)
        if not results:
            raise TimeoutError("no delivery report")
        e, m = results[0]
        if e is not None:
            raise confluent_kafka.KafkaException(e)
        return {"offset": m.offset()}
    raise ValueError(f"unknown step {STEP}")


def main():
    result = {}

    def run():
        try:
            result["value"] = kafka_python() if CLIENT == "kafka-python" else confluent()
        except Exception as e:  # reported below
            result["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(LIMIT)
    if "value" in result:
        report(ok=True, **result["value"])
    if "error" in result:
        e = result["error"]
        report(ok=False, error_type=type(e).__name__, error=str(e))
    report(ok=False, error_type="Timeout", error=f"{STEP} did not finish within {LIMIT} s")


main()
