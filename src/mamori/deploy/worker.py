"""A warm ClientApp worker for a member's SuperNode (Flower's ``--isolation process`` mode).

By default (``--isolation subprocess``) Flower's SuperNode starts ``flower-superexec``, which starts a fresh
``flwr-clientapp`` process for every message; each one imports Python, Flower, torch and mamori before it
does any work (about 2-4 s on an idle core, 25 s on a loaded machine), and SecAgg+ sends four messages per
round. With ``isolation = "process"`` in node.toml, ``mamori node`` runs this module instead: it

1. starts ``flower-supernode --isolation process`` as its child (same process group),
2. imports Flower and mamori's apps once,
3. polls the SuperNode's Runtime API for tasks (Flower's ``AcquireTask``, what ``flower-superexec`` does) and
   runs each one in a ``fork()`` of itself with Flower's own ``run_clientapp`` - so every message still gets
   a fresh process (a crash or leak stays in it), without the start-up cost.

It exits with the SuperNode's exit code when the SuperNode exits, and stops the SuperNode on SIGTERM.

Usage (what :func:`mamori.deploy.start_node` runs)::

    python -m mamori.deploy.worker --runtime-api-address 127.0.0.1:9094 -- flower-supernode ... --isolation process
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

__all__ = ["main"]

logger = logging.getLogger(__name__)

_POLL_S = 0.2
#: Longest a single Runtime API call keeps retrying before the loop checks that the SuperNode still runs.
_RETRY_MAX_S = 5.0


def _run_task(address: str, token: str) -> None:
    """In the forked child: run one ClientApp task with Flower's own runner, then leave without cleanup."""
    code = 1
    try:
        from flwr.supernode.runtime.run_clientapp import run_clientapp

        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        run_clientapp(runtime_api_address=address, token=token, insecure=True, certificates=None,
                      parent_pid=None, runtime_dependency_install=False)
        code = 0
    except SystemExit as exc:  # flwr_exit ends every task this way
        code = exc.code if isinstance(exc.code, int) else 0
    except BaseException:  # noqa: BLE001 - the child must never return into the parent's loop
        logger.exception("ClientApp task failed")
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the SuperNode and serve its ClientApp tasks until the SuperNode exits.

    Parameters
    ----------
    argv : sequence of str or None, default=None
        ``--runtime-api-address HOST:PORT -- <flower-supernode command>``.

    Returns
    -------
    int
        The SuperNode's exit code.
    """
    parser = argparse.ArgumentParser(prog="python -m mamori.deploy.worker", description=__doc__)
    parser.add_argument("--runtime-api-address", required=True)
    parser.add_argument("supernode", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    cmd = [a for a in args.supernode if a != "--"]
    if not cmd:
        parser.error("give the flower-supernode command after --")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s mamori-worker: %(message)s")

    supernode = subprocess.Popen(cmd)  # same process group: stopping this worker's group stops both
    stopping = {"flag": False}

    def _stop(signum: int, _frame: object) -> None:
        stopping["flag"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    # the expensive imports, once: the ClientApp module pulls in torch, polars, Flower and mamori
    from flwr.proto.runtime_pb2 import AcquireTaskRequest  # pylint: disable=E0611
    from flwr.supercore.constant import TaskType
    from flwr.supercore.interceptors import RuntimeVersionHttpInterceptor
    from flwr.supercore.retry import make_simple_http_retry_invoker
    from flwr.supercore.runtime import RuntimeHttpClient
    from flwr.supernode.runtime import run_clientapp  # noqa: F401  (imported before forking)

    import mamori.deploy.flowerapp  # noqa: F401

    client = None
    children: set[int] = set()
    try:
        while not stopping["flag"] and supernode.poll() is None:
            for pid in list(children):
                try:
                    if os.waitpid(pid, os.WNOHANG)[0]:
                        children.discard(pid)
                except ChildProcessError:
                    children.discard(pid)
            try:
                if client is None:
                    # Flower's invoker retries an unreachable Runtime API forever (max_time None); capped, a call
                    # gives up after a few seconds and this loop sees a SuperNode that has exited (e.g. refused by
                    # the SuperLink, exit code 305) instead of waiting on it for ever.
                    invoker = make_simple_http_retry_invoker()
                    invoker.max_time = _RETRY_MAX_S
                    client = RuntimeHttpClient.from_server_address(
                        server_address=args.runtime_api_address, insecure=True, root_certificates=None,
                        interceptors=[RuntimeVersionHttpInterceptor(component_name="SuperExec")],
                        retry_invoker=invoker,
                    )
                res = client.AcquireTask(AcquireTaskRequest(supported_task_types=[TaskType.CLIENT_APP],
                                                            agentapp_fab_hashes=[]))
            except Exception as exc:  # noqa: BLE001 - the SuperNode's Runtime API is not up yet / restarting
                logger.debug("Runtime API not reachable yet: %s", exc)
                client = None
                time.sleep(1.0)
                continue
            if res.HasField("task") and res.token:
                pid = os.fork()
                if pid == 0:
                    _run_task(args.runtime_api_address, res.token)
                children.add(pid)
                logger.info("task %d (run %d) in process %d", res.task.task_id, res.task.run_id, pid)
                continue
            time.sleep(_POLL_S)
    finally:
        if supernode.poll() is None:
            supernode.terminate()
            try:
                supernode.wait(timeout=10)
            except subprocess.TimeoutExpired:
                supernode.kill()
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    return int(supernode.returncode or 0)


if __name__ == "__main__":
    sys.exit(main())
