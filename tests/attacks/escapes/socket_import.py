# expect: blocked
# Network: the socket module.
import socket


def mutate(records):
    socket.create_connection(("example.com", 80))
    return records
