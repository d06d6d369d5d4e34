"""This node's id: the owner of its write-ahead head rows in a database that
several dashd nodes share (Redis scale-out).

A random id made once and kept in the state directory: stable across
restarts (a node killed with -9 reads its own head rows back at the next
start), distinct per node even when two nodes collect for the same host
name, and never another node's (its state directory is its own).
"""

from __future__ import annotations

import os
import secrets

NODE_ID_BYTES = 12  # 24 hex characters; the column holds 64


def load_or_create_node_id(path: str) -> str:
    """The id stored at `path`, made (and written atomically) the first time."""
    try:
        with open(path, encoding="ascii") as f:
            node_id = f.read().strip()
        if node_id:
            return node_id
    except FileNotFoundError:
        pass
    node_id = secrets.token_hex(NODE_ID_BYTES)
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="ascii") as f:
        f.write(node_id + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
    return node_id
