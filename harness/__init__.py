"""Running real infrastructure for tests and benchmarks: fresh databases and vhosts on the real
MySQL and RabbitMQ, services as real processes, and where the shared faces are.

It lives outside tests/ because product tooling (bench/) needs the same things, and tooling must
not import the test tree. Nothing here mocks a client; test-only helpers stay in tests/support.
"""
