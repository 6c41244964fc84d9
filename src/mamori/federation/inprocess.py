"""An in-process Flower runtime: a ``Grid`` that delivers Messages to ClientApps in this process.

Flower's simulation engine runs ClientApps in Ray actors; Ray opens listening sockets on all
interfaces and talks over the machine's non-loopback address, takes ~5 s to start and ~0.7 GB for
10 clients. This runtime keeps the Flower programming model - a ``ServerApp`` drives a strategy
through a ``Grid``, ClientApps answer Messages - but opens no socket at all: every
Message is serialized into Flower's wire objects (``InflatableObject.deflate``, exactly what the
deployment engine pushes to the SuperLink's object store), counted, and inflated into a fresh copy
for the receiver, so the server and the members never share a Python object and the byte counts
are those of the real protocol (without gRPC framing).
"""

from __future__ import annotations

import concurrent.futures
import logging
import random
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import cast
from uuid import uuid4

import numpy as np
from flwr.app import Context, Error, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.common.constant import SUPERLINK_NODE_ID, ErrorCode
from flwr.serverapp import Grid
from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects, no_object_id_recompute
from flwr.supercore.inflatable.inflatable_utils import inflate_object_from_contents
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity

from mamori.errors import FederationError

__all__ = ["Delivery", "InProcessGrid", "new_run_id", "server_process_state", "transfer_message"]

logger = logging.getLogger(__name__)


def new_run_id() -> int:
    """Return a fresh random run id whose serialized size never varies: a 63-bit number with its top bit set.

    Every message carries the run id as a protobuf varint, and a varint's length depends on the value (one byte
    less below 2**56, one draw in 128 of ``uuid4().int >> 65``). The bytes a federation reports, and so a bench's
    results, must not depend on that draw; every value in ``[2**62, 2**63)`` takes 9 bytes.

    Returns
    -------
    int
        In ``[2**62, 2**63)``.
    """
    return (1 << 62) | (uuid4().int >> 66)


def transfer_message(message: Message) -> tuple[Message, int]:
    """Serialize ``message`` into Flower's wire objects and rebuild it, as the transport does.

    Parameters
    ----------
    message : flwr.app.Message
        The message to send.

    Returns
    -------
    copy : flwr.app.Message
        An independent copy inflated from the serialized objects (same message id).
    num_bytes : int
        Total size of the serialized objects (message, record dict, records, array chunks): what a
        node pulls from the SuperLink for this message.
    """
    with no_object_id_recompute():
        objects = get_all_nested_objects(message)
        contents = {object_id: obj.deflate() for object_id, obj in objects.items()}
        num_bytes = sum(len(c) for c in contents.values())
        copy = cast(Message, inflate_object_from_contents(message.object_id, contents))
    copy.metadata.__dict__["_message_id"] = message.metadata.message_id
    return copy, num_bytes


@dataclass
class Delivery:
    """What happened to one message sent to one node.

    Attributes
    ----------
    node_id : int
        Destination node.
    message_type : str
        ``"train"``, ``"evaluate"``, ``"query"``, ... (Flower's message type).
    bytes_down : int
        Serialized size of the message the node received.
    bytes_up : int
        Serialized size of the node's reply (0 after a timeout).
    seconds : float
        Wall-clock time from push to reply.
    status : str
        ``"ok"``, ``"error"`` (the ClientApp raised) or ``"timeout"``.
    error : str or None
        The error's reason, for ``"error"`` and ``"timeout"``.
    reply : flwr.app.Message or None
        The reply as the server received it.
    """

    node_id: int
    message_type: str
    bytes_down: int
    bytes_up: int = 0
    seconds: float = 0.0
    status: str = "ok"
    error: str | None = None
    reply: Message | None = field(default=None, repr=False)


@dataclass
class _Pending:
    future: concurrent.futures.Future[tuple[Message, int]]
    delivery: Delivery
    started: float


class InProcessGrid(Grid):
    """A Flower ``Grid`` whose nodes are ClientApps running in this process (no network).

    Parameters
    ----------
    client_app : flwr.clientapp.ClientApp
        The ClientApp every node runs (it finds its member from ``context.node_id``).
    node_ids : sequence of int
        The nodes of the federation.
    run_id : int
        The run these messages belong to.
    max_workers : int, default=1
        ClientApps executing at the same time (threads).
    default_timeout : float or None, default=None
        Seconds ``send_and_receive`` waits when its caller passes no timeout (Flower's older
        workflows, e.g. ``DefaultWorkflow``, pass none); None waits for every reply.

    Notes
    -----
    Each push deflates the message, inflates a copy for the node and runs the ClientApp on a worker
    thread; the reply travels back the same way. An exception in the ClientApp becomes an error
    reply (``ErrorCode.CLIENT_APP_RAISED_EXCEPTION``), as in Flower's simulation engine. After
    ``send_and_receive``'s timeout the missing replies are abandoned: a Python thread cannot be
    killed, so a hung ClientApp keeps its worker until it returns, but its late reply is dropped.
    """

    def __init__(
        self,
        client_app: ClientApp,
        node_ids: Sequence[int],
        *,
        run_id: int,
        max_workers: int = 1,
        default_timeout: float | None = None,
    ) -> None:
        self._app = client_app
        self._default_timeout = default_timeout
        self._node_ids = list(node_ids)
        self._run = Run.create_empty(run_id)
        self._contexts = {
            node_id: Context(
                run_id=run_id,
                node_id=node_id,
                node_config={"partition-id": i, "num-partitions": len(self._node_ids)},
                state=RecordDict(),
                run_config={},
            )
            for i, node_id in enumerate(self._node_ids)
        }
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="mamori-node"
        )
        self._node_locks = {node_id: threading.Lock() for node_id in self._node_ids}
        self._pending: dict[str, _Pending] = {}
        self._deliveries: list[Delivery] = []
        self._lock = threading.Lock()

    # --- Grid API -------------------------------------------------------------------------------

    def set_run(self, run: Run) -> None:
        """Set the run this grid operates in."""
        self._run = run

    @property
    def run(self) -> Run:
        """Run information."""
        return self._run

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        """Create a new message (kept for workflows of Flower's older API)."""
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        """Return the ids of all nodes."""
        return list(self._node_ids)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        """Deliver messages to their nodes; return their message ids."""
        ids: list[str] = []
        for message in messages:
            node_id = message.metadata.dst_node_id
            if node_id not in self._contexts:
                raise FederationError(
                    f"InProcessGrid.push_messages: message for node {node_id}, which is not in this federation "
                    f"({len(self._node_ids)} nodes)."
                )
            message.metadata.__dict__["_message_id"] = uuid4().hex
            started = time.perf_counter()
            node_copy, bytes_down = transfer_message(message)
            delivery = Delivery(node_id=node_id, message_type=message.metadata.message_type, bytes_down=bytes_down)
            future = self._executor.submit(self._handle, node_copy)
            with self._lock:
                self._pending[message.metadata.message_id] = _Pending(future, delivery, started)
            ids.append(message.metadata.message_id)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        """Return the replies that have arrived for ``message_ids`` (ordered by node id)."""
        replies: list[Message] = []
        for message_id in message_ids:
            with self._lock:
                pending = self._pending.get(message_id)
                if pending is None or not pending.future.done():
                    continue
                del self._pending[message_id]
            reply, bytes_up = pending.future.result()
            delivery = pending.delivery
            delivery.bytes_up = bytes_up
            delivery.seconds = time.perf_counter() - pending.started
            delivery.reply = reply
            if reply.has_error():
                delivery.status = "error"
                delivery.error = reply.error.reason
            self._deliveries.append(delivery)
            replies.append(reply)
        replies.sort(key=lambda m: m.metadata.src_node_id)
        return replies

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        """Push messages, wait for the replies (at most ``timeout`` seconds) and return them."""
        if timeout is None:
            timeout = self._default_timeout
        ids = list(self.push_messages(messages))
        with self._lock:
            futures = [self._pending[i].future for i in ids]
        concurrent.futures.wait(futures, timeout=timeout)
        replies = list(self.pull_messages(ids))
        with self._lock:
            late = [(i, self._pending.pop(i)) for i in ids if i in self._pending]
        for _, pending in late:
            pending.future.cancel()
            delivery = pending.delivery
            delivery.status = "timeout"
            delivery.seconds = time.perf_counter() - pending.started
            delivery.error = f"no reply within the round timeout of {timeout} s"
            self._deliveries.append(delivery)
            logger.warning("node %d sent no %s reply within %s s", delivery.node_id, delivery.message_type, timeout)
        replies.sort(key=lambda m: m.metadata.src_node_id)
        return replies

    # --- mamori additions -----------------------------------------------------------------------

    def drain_deliveries(self) -> list[Delivery]:
        """Return the deliveries completed since the last call, and forget them."""
        out, self._deliveries = self._deliveries, []
        return out

    def peek_deliveries(self) -> list[Delivery]:
        """Return the deliveries completed since the last drain, without forgetting them."""
        return list(self._deliveries)

    def close(self) -> None:
        """Stop the worker threads (a ClientApp still running finishes in the background)."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _handle(self, message: Message) -> tuple[Message, int]:
        node_id = message.metadata.dst_node_id
        try:
            with self._node_locks[node_id]:  # a node handles one message at a time, like a SuperNode
                reply = self._app(message=message, context=self._contexts[node_id])
        except Exception as exc:  # noqa: BLE001 - reported to the server as an error reply, like Flower's engine
            logger.warning(
                "node %d: ClientApp raised %s while handling a %s message",
                message.metadata.dst_node_id,
                type(exc).__name__,
                message.metadata.message_type,
            )
            reason = f"{type(exc).__name__}: {exc}"
            reply = Message(Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=reason), reply_to=message)
        reply.metadata.__dict__["_message_id"] = uuid4().hex
        return transfer_message(reply)


@contextmanager
def server_process_state(run_id: int, seed: int, *, private_noise: bool = False) -> Iterator[None]:
    """Set Flower's process-wide task identity and seed ``random`` and NumPy for one in-process server run.

    Flower's ServerApp reads its identity from class attributes of ``TaskIdentity`` and samples members (and
    SecAgg+ neighbours) with the global ``random`` module, so one run at a time per process, and the caller's
    state is put back afterwards. Flower also draws SecAgg+'s stochastic rounding and its DP wrappers' Gaussian
    noise from NumPy's global generator: seeded from ``seed``, a run repeats on one machine. With
    ``private_noise`` (member-level DP) NumPy's generator is instead reseeded from the operating system's entropy
    for the run, whatever the caller seeded: noise derived from a configured seed could be recomputed and
    subtracted by anyone who knows it.
    """
    saved_identity = {k: vars(TaskIdentity).get(k) for k in ("_task_id", "_run_id", "_node_id")}
    saved_random = random.getstate()
    saved_numpy = np.random.get_state()
    try:
        TaskIdentity.task_id = 1
        TaskIdentity.run_id = run_id
        TaskIdentity.node_id = SUPERLINK_NODE_ID
        random.seed(seed)
        if private_noise:
            np.random.seed(None)
        else:
            np.random.seed(np.random.SeedSequence([seed, 0x5ECA66]).generate_state(1)[0])
        yield
    finally:
        random.setstate(saved_random)
        np.random.set_state(saved_numpy)
        for key, value in saved_identity.items():
            setattr(TaskIdentity, key, value)
