"""The dashboard for people (Flask): live attendance, students and enrollment, sessions and reports.

It reads and writes through the REST API (never MySQL directly) and gets live events from
RabbitMQ, pushed to browsers with Server-Sent Events.
"""
