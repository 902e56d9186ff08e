"""What ``muster demo`` sets up: a simulated fleet registered as hosts, sample scripts.

The simulated hosts run commands as real local processes, so the sample
scripts only read, print, and write under ``/tmp/muster-demo``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from muster.app import (
    SEEDING,
    SshOptions,
    default_transports,
    open_services,
    server_local_transport,
)
from muster.config import Settings
from muster.domain.hosts import Host, TransportKind
from muster.domain.params import ParameterSpec, ParameterType
from muster.domain.scripts import ScriptVersion, Shell
from muster.testing.simfleet import SimFleet

if TYPE_CHECKING:
    from muster.store.protocols import SecurityStore

__all__ = ["DEMO_GROUPS", "demo_app", "demo_hosts", "sample_scripts"]

DEMO_GROUPS = ("web", "db", "cache")

_DISK = """\
# How full is the root file system?
df -h / | tail -n 1
used=$(df -P / | awk 'NR==2 {gsub("%", "", $5); print $5}')
echo "@@{\\"disk_used_pct\\": ${used}}"
"""

_PATCH = """\
# Apply a (pretend) patch to ${target_dir}; dry_run only says what would change.
host="${MUSTER_SIM_HOST:-$(hostname)}"
echo "patch level 1.2.${patch_level} for ${target_dir} on ${host}"
if [ "${dry_run}" = true ]; then
    echo "dry run: nothing changed"
    exit 0
fi
dir="/tmp/muster-demo/${host}"
mkdir -p "$dir"
for step in download verify apply; do
    echo "$step..."
    sleep 0.5
done
echo "1.2.${patch_level}" > "$dir/patch-level"
echo "patched: $dir/patch-level"
"""

_RESTART = """\
# Restart a (simulated) service and report its new pid.
echo "stopping ${service}"
sleep 1
echo "starting ${service}"
echo "@@{\\"service\\": \\"${service}\\", \\"pid\\": $$}"
"""


def sample_scripts() -> list[ScriptVersion]:
    return [
        ScriptVersion(
            name="disk-usage", shell=Shell.BASH, body=_DISK, timeout=30,
            description="Root file system usage, with a structured @@ event",
        ),
        ScriptVersion(
            name="patch",
            shell=Shell.BASH,
            body=_PATCH,
            timeout=120,
            description="A parameterised patch; dry_run defaults to true",
            parameters=(
                ParameterSpec("target_dir", required=True, description="What to patch"),
                ParameterSpec("patch_level", ParameterType.INTEGER, default=7),
                ParameterSpec("dry_run", ParameterType.BOOLEAN, default=True),
            ),
        ),
        ScriptVersion(
            name="restart-service",
            shell=Shell.BASH,
            body=_RESTART,
            timeout=60,
            description="Restart a service (simulated)",
            parameters=(
                ParameterSpec(
                    "service", ParameterType.CHOICE, required=True,
                    choices=("nginx", "postgresql", "redis"),
                ),
            ),
        ),
    ]  # fmt: skip


def demo_hosts(fleet: SimFleet) -> list[Host]:
    """web-01, db-01, cache-01, web-02, ...: groups dealt round-robin."""
    counters = dict.fromkeys(DEMO_GROUPS, 0)
    out = []
    for i, address in enumerate(fleet.addresses):
        group = DEMO_GROUPS[i % len(DEMO_GROUPS)]
        counters[group] += 1
        out.append(
            Host(
                name=f"{group}-{counters[group]:02d}",
                address=address,
                port=fleet.port,
                user="demo",
                groups=(group,),
                labels={"fleet": "demo", "role": group},
                key_file=str(fleet.client_key_path),
            )
        )
    return out


def _banner(settings: Settings, hosts: list[Host], login: _Login) -> str:
    url = f"http://{settings.host}:{settings.port}"
    first = ",".join(h.name for h in hosts[:3])
    if login.password is not None:
        who = (
            f"user {login.user}, one-time password {login.password}\n"
            "  (shown once, at the first start; change it after logging in)"
        )
    else:
        who = f"user {login.user} (its password was printed at the demo's first start)"
    return f"""
muster demo is up: {url}   (console: {url}/   API docs: {url}/docs)
  {len(hosts)} simulated SSH hosts in groups {", ".join(DEMO_GROUPS)}; scripts disk-usage, patch,
  restart-service; the data directory is {settings.data_dir}

Log in to the console as {who}

In another terminal, the API token for the CLI and curl (user {DEMO_CLI_USER}, role
operator, valid 7 days):

  export MUSTER_URL={url}
  export MUSTER_TOKEN={login.token}

Run a script on every web host and watch its output live:

  curl -s -X POST $MUSTER_URL/api/v1/automation/scripts/disk-usage/execute \\
       -H "Authorization: Bearer $MUSTER_TOKEN" \\
       -H 'content-type: application/json' -d '{{"host_ids": ["web"]}}'
  curl -N -H "Authorization: Bearer $MUSTER_TOKEN" \\
       $MUSTER_URL/api/v1/automation/executions/<id from above>/stream

or with the CLI:

  uv run muster exec start patch --hosts '*' -p target_dir=/srv/app -p dry_run=false --follow
  uv run muster exec start disk-usage --hosts {first} --follow

(`uv run muster login --url {url}` saves a token in ~/.config/muster/cli.json instead.)
Ctrl-C stops the demo.
"""


@dataclass(frozen=True, slots=True)
class _Login:
    user: str
    password: str | None
    token: str


#: The token-only user the demo's CLI token acts as: it runs scripts on the fleet and
#: reads their results, nothing more (an admin's token would be refused anyway until
#: the admin's one-time password is changed).
DEMO_CLI_USER = "demo-cli"


def _demo_login(sec: SecurityStore) -> _Login:
    """The first admin (one-time password on the first start) and a fresh CLI token."""
    from muster.errors import NotFoundError

    password = sec.bootstrap_admin()
    admins = [u for u in sec.list_users() if "admin" in u.roles and not u.disabled]
    user = next((u.name for u in admins if u.name == "admin"), admins[0].name if admins else None)
    if user is None:
        user = "demo-admin"
        sec.create_user(user, roles=["admin"])
    try:
        sec.get_user(DEMO_CLI_USER)
    except NotFoundError:
        sec.create_user(DEMO_CLI_USER, roles=["operator"])
    issued, _ = sec.create_token(DEMO_CLI_USER, "demo-cli", ttl=dt.timedelta(days=7))
    return _Login(
        user=user,
        password=password.reveal() if password is not None else None,
        token=issued.token.reveal(),
    )


def demo_app(settings: Settings, n_hosts: int) -> tuple[Any, SimFleet, str]:
    """The demo's app (not yet serving), its running fleet, and the banner to print."""
    from muster.server.app import create_app
    from muster.server.embedded import embedded_worker_factory

    settings.ensure_data_dir()
    fleet = SimFleet(n_hosts, state_dir=settings.data_dir / "simfleet").start_in_thread()
    hosts = demo_hosts(fleet)
    with open_services(settings, SEEDING) as services:
        store = services.store
        store.upsert_hosts(hosts, update_existing=True)
        for script in sample_scripts():
            store.save_script(script, description=script.description, tags=["demo"])
        login = _demo_login(store)
    transports = {
        **default_transports(
            SshOptions(
                known_hosts=str(fleet.known_hosts_path), client_keys=[str(fleet.client_key_path)]
            )
        ),
        # Only an admin adds the demo machine itself as a host; it then runs isolated.
        TransportKind.LOCAL: server_local_transport(settings),
    }
    app = create_app(settings, worker_factory=embedded_worker_factory(transports))
    return app, fleet, _banner(settings, hosts, login)
