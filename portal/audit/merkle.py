"""The Merkle tree hash of RFC 9162 (Certificate Transparency 2.0, section 2.1.1).

    MTH({})      = SHA-256()
    MTH({d0})    = SHA-256(0x00 || d0)
    MTH(D[n])    = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))

with k the largest power of two smaller than n. :class:`TreeHasher` adds
leaves one at a time and gives the root of the first n leaves at any n, in
O(log n) memory, so a verifier streams the log once and checks every
checkpoint (a consistency check of each checkpoint against the log) on the way.
"""

from __future__ import annotations

import hashlib


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


EMPTY_ROOT = hashlib.sha256(b"").digest()


def root(leaves: list[bytes]) -> bytes:
    """MTH of the leaves' data, by the RFC's recursive definition (tests, small trees)."""
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hash(leaves[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(root(leaves[:k]), root(leaves[k:]))


class TreeHasher:
    """The compact range of a growing log: the roots of its perfect subtrees, largest first.

    For n leaves these are the subtrees of the binary decomposition of n,
    left to right; the RFC's split rule makes the tree head their fold from
    the right.
    """

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []  # (subtree size, hash)

    def add(self, data: bytes) -> None:
        self.add_hash(leaf_hash(data))

    def add_hash(self, h: bytes) -> None:
        size = 1
        while self._stack and self._stack[-1][0] == size:
            _, left = self._stack.pop()
            h = node_hash(left, h)
            size *= 2
        self._stack.append((size, h))
        self.size += 1

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        acc = self._stack[-1][1]
        for _, h in reversed(self._stack[:-1]):
            acc = node_hash(h, acc)
        return acc
