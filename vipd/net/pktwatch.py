"""An AF_PACKET socket that receives one EtherType on one interface through a classic-BPF filter:
what the claim watches (vipd/net/arpwatch.py, vipd/net/ndwatch.py) read.

The filter runs in the kernel, so frames it drops never wake the daemon; frames this host sent
(PACKET_OUTGOING) are skipped before anyone parses them.
"""
from __future__ import annotations

import ctypes
import socket
import struct
from collections.abc import Iterator

SO_ATTACH_FILTER = 26
PACKET_OUTGOING = 4
MAX_FILTERED = 200    # more VIPs than this on one interface: no filter (8-bit jump offsets)
_INSN = struct.Struct("HBBI")


def bpf(prog: list[tuple[int, int, int, int]]) -> bytes:
    """(code, jt, jf, k) instructions as struct sock_filter array bytes."""
    return b"".join(_INSN.pack(*insn) for insn in prog)


class FilteredSocket:
    """Frames of ``ethertype`` arriving on ``ifname`` that ``prog`` (bpf() bytes; None: all)
    accepts. Non-blocking; bound by name at creation."""

    def __init__(self, ifname: str, ethertype: int, prog: bytes | None) -> None:
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                   socket.htons(ethertype))
        try:
            if prog is not None:
                self._prog = ctypes.create_string_buffer(prog)     # kept alive with the socket
                fprog = struct.pack("HL", len(prog) // _INSN.size, ctypes.addressof(self._prog))
                self._sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
            self._sock.setblocking(False)
            self._sock.bind((ifname, ethertype))
        except BaseException:
            self._sock.close()
            raise

    def fileno(self) -> int:
        return self._sock.fileno()

    def incoming(self, size: int) -> Iterator[bytes]:
        """The frames waiting (each cut to size bytes), until none is left."""
        while True:
            try:
                frame, addr = self._sock.recvfrom(size)
            except (BlockingIOError, InterruptedError):
                return
            if addr[2] != PACKET_OUTGOING:
                yield frame

    def close(self) -> None:
        self._sock.close()
