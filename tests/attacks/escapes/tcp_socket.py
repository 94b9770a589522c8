# expect: blocked | import of 'socket'
# os-only: denied | Operation not permitted
# A TCP connection to the host (loopback) or beyond.
import socket


def mutate(records):
    socket.create_connection(("127.0.0.1", 22), timeout=1)
    return records
