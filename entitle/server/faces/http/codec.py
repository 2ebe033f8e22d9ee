"""The JSON codec of the HTTP face: jsonwire's form (every field printed), strict on input."""

from __future__ import annotations

from connectrpc.code import Code
from connectrpc.compat import google_protobuf_binary_codec
from connectrpc.errors import ConnectError
from google.protobuf import json_format
from google.protobuf.message import Message

from entitle.server.service import jsonwire


class JsonwireCodec:
    """`application/json` for connectrpc: answers in jsonwire's complete form (an automation
    branches on `"covered": false`); requests with unknown or mistyped fields are refused
    naming the field, so a typo (`ticketID`) is not silently a missing value."""

    def name(self) -> str:
        return "json"

    def encode(self, message: Message) -> bytes:
        return jsonwire.to_json(message)

    def decode(self, data: bytes | bytearray, message_class: type[Message]) -> Message:
        message = message_class()
        if not data.strip():
            return message  # an empty body is the empty message, as in binary
        try:
            return jsonwire.from_json(bytes(data), message)
        except json_format.ParseError as exc:
            name = message_class.DESCRIPTOR.name
            raise ConnectError(
                Code.INVALID_ARGUMENT, f"the request is not valid JSON for {name}: {exc}"
            ) from None
        except (UnicodeDecodeError, RecursionError):
            raise ConnectError(Code.INVALID_ARGUMENT, "the request is not UTF-8 JSON") from None


def codecs() -> list:
    """The HTTP face's codecs: `application/proto` (google.protobuf) and jsonwire JSON."""
    return [google_protobuf_binary_codec(), JsonwireCodec()]
