"""Running a consortium on Flower's deployment engine: PKI, configuration and process control.

``mamori pki`` makes the consortium CA, the coordinator's TLS certificate and members' node keys;
``mamori coordinator`` runs the Flower SuperLink and starts federated runs; ``mamori node`` runs a
member's Flower SuperNode with mamori's ClientApp (:mod:`mamori.deploy.flowerapp`).
"""

from mamori.deploy.config import (
    ConsortiumConfig,
    CoordinatorSection,
    FederationSection,
    NodeConfig,
    ScheduleSection,
    load_consortium_config,
    load_node_config,
)
from mamori.deploy.pki import (
    MemberKey,
    PKIPaths,
    init_ca,
    issue_node_key,
    issue_server_cert,
    key_fingerprint,
    list_members,
    load_members,
    register_node_key,
    revoke_node,
)
from mamori.deploy.runtime import (
    RunOutcome,
    audit_refusals,
    completed_rounds,
    flower_env,
    node_command,
    run_federated,
    start_node,
    start_superlink,
    stop_process,
    superlink_command,
    sync_members,
    wait_for_port,
    write_app_dir,
)

__all__ = [
    "ConsortiumConfig",
    "CoordinatorSection",
    "FederationSection",
    "MemberKey",
    "NodeConfig",
    "PKIPaths",
    "RunOutcome",
    "ScheduleSection",
    "audit_refusals",
    "completed_rounds",
    "flower_env",
    "init_ca",
    "issue_node_key",
    "issue_server_cert",
    "key_fingerprint",
    "list_members",
    "load_consortium_config",
    "load_members",
    "load_node_config",
    "node_command",
    "register_node_key",
    "revoke_node",
    "run_federated",
    "start_node",
    "start_superlink",
    "stop_process",
    "superlink_command",
    "sync_members",
    "wait_for_port",
    "write_app_dir",
]
