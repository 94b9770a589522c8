# expect: blocked | import of 'socket'
# os-only: denied | Operation not permitted
# A Unix-domain socket (docker, systemd, an agent) on the host.
import socket


def mutate(records):
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect("/run/docker.sock")
    return records
