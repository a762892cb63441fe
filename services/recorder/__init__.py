"""The recorder: turns identity events into attendance, in MySQL and in the CSV file."""
