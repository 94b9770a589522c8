# expect: blocked | import of 'socket'
# os-only: denied | Operation not permitted
# Network: the socket module.
import socket


def mutate(records):
    socket.create_connection(("93.184.216.34", 80))
    return records
