"""Script calls that the compiled core packed in the Redis protocol, read back into their
parts: for benchmarks that replay the calls or run them on an in-process Redis."""

from __future__ import annotations


def unpacked(command: bytes) -> list[bytes]:
    """The elements of one command in the Redis protocol (an array of bulk strings)."""
    header, _, rest = command.partition(b"\r\n")
    if not header.startswith(b"*"):
        raise ValueError("not a Redis protocol array")
    parts: list[bytes] = []
    for _ in range(int(header[1:])):
        size, _, rest = rest.partition(b"\r\n")
        length = int(size[1:])
        parts.append(rest[:length])
        rest = rest[length + 2 :]
    if rest:
        raise ValueError("bytes left after the command")
    return parts


def script_call(command: bytes) -> tuple[str, list[bytes], list[bytes]]:
    """An ``EVALSHA`` call read back: the script's SHA-1, its keys, its arguments."""
    parts = unpacked(command)
    if parts[0].upper() != b"EVALSHA":
        raise ValueError(f"not a script call: {parts[0]!r}")
    numkeys = int(parts[2])
    return parts[1].decode(), parts[3 : 3 + numkeys], parts[3 + numkeys :]
