"""Publishing and reading test messages on a real broker."""

import json
from typing import Any

import pika

from services.common import topology
from services.common.amqp import message_properties
from services.common.messages import Message


class TestBroker:
    __test__ = False  # not a test class, whatever its name

    def __init__(self, amqp_url: str) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        topology.declare(self.channel)

    def publish(self, exchange: str, routing_key: str, message: Message) -> None:
        self.channel.basic_publish(
            exchange,
            routing_key,
            message.model_dump_json().encode(),
            message_properties(message, persistent=True),
        )

    def publish_raw(self, exchange: str, routing_key: str, body: bytes, **properties: Any) -> None:
        self.channel.basic_publish(exchange, routing_key, body, pika.BasicProperties(**properties))

    def tap(self, exchange: str, routing_key: str = "#") -> str:
        """A private queue receiving copies of what is published to `exchange`."""
        queue = self.channel.queue_declare("", exclusive=True).method.queue
        self.channel.queue_bind(queue, exchange, routing_key=routing_key)
        return str(queue)

    def drain(self, queue: str) -> list[dict[str, Any]]:
        return [json.loads(body) for body in self.drain_raw(queue)]

    def drain_raw(self, queue: str) -> list[bytes]:
        bodies = []
        while True:
            method, _properties, body = self.channel.basic_get(queue, auto_ack=True)
            if method is None:
                return bodies
            bodies.append(body)

    def depth(self, queue: str) -> int:
        return int(self.channel.queue_declare(queue, passive=True).method.message_count)

    def close(self) -> None:
        if self.connection.is_open:
            self.connection.close()
