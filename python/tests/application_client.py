"""A minimal application-layer client in the style of the original Python
package's API (ska_ser_devices.client_server): a TCP transport that hands
received bytes up as an iterator of bytestrings, a sentinel marshaller that
pulls from that iterator until it has a whole payload, and an application
client whose sessions send and send_receive payloads.

Unlike the original, the unmarshaller finds a sentinel split across chunks
and keeps the bytes after a payload for the next one (pipelined replies).
"""

from __future__ import annotations

import socket
from typing import Callable, Generic, Iterator, Optional, TypeVar

RequestPayloadT = TypeVar("RequestPayloadT")
ResponsePayloadT = TypeVar("ResponsePayloadT")


class TcpClientSession:
    """One TCP connection at the bytestring level."""

    def __init__(self, address, timeout: Optional[float], buffer_size: int):
        self._sock = socket.create_connection(address, timeout=timeout)
        self._buffer_size = buffer_size
        self._pending = b""  # received after the last payload

    def send(self, data: bytes) -> None:
        self._sock.sendall(data)

    def request(self, data: Optional[bytes] = None) -> Iterator[bytes]:
        """Send data (if any), then yield what arrives, chunk by chunk."""
        if data:
            self.send(data)
        return self._chunks()

    def _chunks(self) -> Iterator[bytes]:
        if self._pending:
            chunk, self._pending = self._pending, b""
            yield chunk
        while True:
            chunk = self._sock.recv(self._buffer_size)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            yield chunk

    def unread(self, data: bytes) -> None:
        """Give back bytes that belong to the next payload."""
        self._pending = data + self._pending

    def close(self) -> None:
        self._sock.close()


class TcpClient:
    """Makes TCP sessions to one address."""

    def __init__(self, address, timeout: Optional[float] = None, buffer_size: int = 1024):
        self._address = address
        self._timeout = timeout
        self._buffer_size = buffer_size

    def connect(self) -> TcpClientSession:
        return TcpClientSession(self._address, self._timeout, self._buffer_size)


class SentinelBytesMarshaller:
    """Payloads end with a sentinel byte sequence."""

    def __init__(self, sentinel: bytes):
        self._sentinel = sentinel

    def marshall(self, payload: bytes) -> bytes:
        return payload + self._sentinel

    def unmarshall(self, bytes_iterator: Iterator[bytes], session: TcpClientSession) -> bytes:
        data = b""
        for chunk in bytes_iterator:
            start = max(0, len(data) - len(self._sentinel) + 1)
            data += chunk
            at = data.find(self._sentinel, start)
            if at >= 0:
                session.unread(data[at + len(self._sentinel):])
                return data[:at]
        raise ConnectionError("the server closed inside a payload")


class ApplicationClientSession(Generic[RequestPayloadT, ResponsePayloadT]):
    def __init__(
        self,
        request_marshaller: Callable[[RequestPayloadT], bytes],
        response_unmarshaller: Callable[[Iterator[bytes], TcpClientSession], ResponsePayloadT],
        transport_session: TcpClientSession,
    ):
        self._marshall = request_marshaller
        self._unmarshall = response_unmarshaller
        self._transport = transport_session

    def send(self, request: RequestPayloadT) -> None:
        self._transport.send(self._marshall(request))

    def send_receive(self, request: RequestPayloadT) -> ResponsePayloadT:
        chunks = self._transport.request(self._marshall(request))
        return self._unmarshall(chunks, self._transport)

    def close(self) -> None:
        self._transport.close()


class ApplicationClient(Generic[RequestPayloadT, ResponsePayloadT]):
    def __init__(self, bytes_client: TcpClient, request_marshaller, response_unmarshaller):
        self._bytes_client = bytes_client
        self._marshall = request_marshaller
        self._unmarshall = response_unmarshaller
        self._session: Optional[ApplicationClientSession] = None

    def connect(self) -> ApplicationClientSession:
        return ApplicationClientSession(self._marshall, self._unmarshall, self._bytes_client.connect())

    def __enter__(self) -> ApplicationClientSession:
        self._session = self.connect()
        return self._session

    def __exit__(self, exc_type, exception, trace) -> bool:
        if self._session:
            self._session.close()
            self._session = None
        return False
