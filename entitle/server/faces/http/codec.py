"""The JSON codec of the HTTP face: jsonwire's form (every field printed), strict on input."""

from __future__ import annotations

from connectrpc.compat import google_protobuf_binary_codec
from google.protobuf.message import Message

from entitle.server.faces.http.status import connect_error
from entitle.server.service import jsonwire
from entitle.server.service.failures import Failure


class JsonwireCodec:
    """`application/json` for connectrpc: answers in jsonwire's complete form (an automation
    branches on `"covered": false`); requests are read by `jsonwire.request_from_json`, so a
    field that cannot be read (a typo such as `ticketID`, a lone surrogate, a number out of
    range) is `invalid_argument` naming it, as a bad binary request is on either face."""

    def name(self) -> str:
        return "json"

    def encode(self, message: Message) -> bytes:
        return jsonwire.to_json(message)

    def decode(self, data: bytes | bytearray, message_class: type[Message]) -> Message:
        if not data.strip():
            return message_class()  # an empty body is the empty message, as in binary
        try:
            return jsonwire.request_from_json(bytes(data), message_class())
        except Failure as failure:
            raise connect_error(failure) from None


def codecs() -> list:
    """The HTTP face's codecs: `application/proto` (google.protobuf) and jsonwire JSON."""
    return [google_protobuf_binary_codec(), JsonwireCodec()]
