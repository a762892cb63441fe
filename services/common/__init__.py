"""Code every service shares: settings, message models, broker topology, AMQP and MySQL helpers."""
