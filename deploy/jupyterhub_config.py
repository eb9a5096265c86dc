# JupyterHub for a class: one jaxlab container per learner, on one machine.
#
# `invoke hub` starts JupyterHub with this file and sets the JAXLAB_HUB_* variables below; read it
# to see what a class gets, change it to change that. Each setting says why it is there.
import os
import sys
from pathlib import Path

from dockerspawner import DockerSpawner

from labkit.hub import hub_settings, leases, room

c = get_config()  # noqa: F821  (JupyterHub passes the config object in)
settings = hub_settings.from_environment()
state = Path(settings.state)

# -- where the hub listens ------------------------------------------------------------------------
# Learners reach the hub here; 127.0.0.1 unless the organiser exposes it with --bind.
c.JupyterHub.bind_url = f"http://{settings.bind}:{settings.port}"
# The learners' containers reach the hub's API on the engine's bridge, never on every interface.
c.JupyterHub.hub_ip = settings.hub_ip
c.JupyterHub.hub_connect_ip = settings.hub_ip
c.JupyterHub.hub_port = settings.hub_port
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{settings.proxy_api_port}"
c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state / "cookie_secret")
c.ConfigurableHTTPProxy.command = [settings.proxy]
c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")
c.JupyterHub.cleanup_servers = True  # stopping the hub stops the learners' containers

# -- who logs in ----------------------------------------------------------------------------------
# One shared password for a one-day class (anyone with it may log in under any learner's name;
# the instructor's own password is separate and long). Learner names are free unless listed.
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = Path(settings.password_file).read_text().strip()
c.SharedPasswordAuthenticator.admin_password = Path(settings.admin_password_file).read_text().strip()
c.Authenticator.admin_users = {settings.instructor}
if settings.learners_list:
    c.Authenticator.allowed_users = set(settings.learners_list)
else:
    c.Authenticator.allow_all = True

# -- each learner's server: the lab image, the lab's workspace, a lease ----------------------------
plan = leases.plan(room.this_machine(settings.backend), settings.learners, settings.learner_memory, settings.share)


class LabSpawner(DockerSpawner):
    """DockerSpawner with the learner's lease: their device, cores and memory (labkit.hub.leases)."""

    def start(self):
        lease = plan.lease(hub_settings.seat(state, self.user.name))
        self.environment.update(lease.env)
        self.cpu_limit = lease.cpus
        self.mem_limit = lease.memory
        if lease.gpu_ids:  # one GPU, a MIG instance, or a shared GPU, and nothing else
            self.extra_host_config = {
                "device_requests": [{"Driver": "nvidia", "DeviceIDs": list(lease.gpu_ids), "Capabilities": [["gpu"]]}]
            }
        if lease.tpu_chips:  # the chip's device files, and the host's network that libtpu expects
            self.extra_host_config = {"devices": hub_settings.tpu_devices(lease.tpu_chips), "network_mode": "host"}
        return super().start()


c.JupyterHub.spawner_class = LabSpawner
c.DockerSpawner.image = settings.image
c.DockerSpawner.remove = True  # a stopped server's container goes; its work volume stays
c.DockerSpawner.host_ip = "127.0.0.1"  # each server's port is published on the loopback only
# The image's start seeds the workspace with the handouts, then becomes the hub's single-user server.
c.DockerSpawner.cmd = ["python3", "-m", "labkit.workspace", "jupyterhub-singleuser"]
c.DockerSpawner.notebook_dir = "/home/lab/work"
# The class page reads each learner's notes (.jaxlab/progress.jsonl) through their server.
c.Spawner.args = ["--ContentsManager.allow_hidden=True"]
c.DockerSpawner.default_url = "/lab"
# A volume per learner: their work survives a restart of their server, and of the hub.
c.DockerSpawner.volumes = {"jaxlab-work-{username}": "/home/lab/work"}
c.DockerSpawner.extra_create_kwargs = {"user": "1000:1000"}  # never root, as in every lab container
c.DockerSpawner.environment = {"INVOKE_JAXLAB_BACKEND": settings.backend}
if settings.network:
    c.DockerSpawner.network_name = settings.network
c.Spawner.start_timeout = 180  # a cold image start on two cores
c.Spawner.http_timeout = 120

# -- idle servers and the end of the day ------------------------------------------------------------
c.JupyterHub.load_roles = [
    {
        "name": "idle-culler",
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        "services": ["idle-culler"],
    },
    {
        # The class page reads each learner's progress notes through their server.
        "name": "class-page",
        "scopes": ["list:users", "read:users", "read:servers", "access:servers"],
        "services": ["class"],
    },
    {
        # Only the instructor may open the class page (the admin role does not grant it to learners).
        "name": "instructor",
        "scopes": ["admin:users", "admin:servers", "access:servers", "access:services!service=class"],
        "users": [settings.instructor],
    },
]
c.JupyterHub.services = [
    {
        "name": "idle-culler",
        "command": [
            sys.executable,
            "-m",
            "jupyterhub_idle_culler",
            f"--timeout={settings.idle_timeout}",
            f"--max-age={settings.max_age}",
            f"--cull-every={settings.cull_every}",
        ],
    },
    {
        "name": "class",
        "url": f"http://127.0.0.1:{settings.class_port}",
        "command": [sys.executable, "-m", "labkit.hub.class_service"],
        "oauth_no_confirm": True,
        "environment": {
            "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
            "JAXLAB_HUB_PUBLIC_URL": f"http://127.0.0.1:{settings.port}",
            "JAXLAB_HUB_INSTRUCTOR": settings.instructor,
        },
    },
    {
        # invoke hub's own token: it asks the hub whether it answers, and the tests drive it with it.
        "name": "jaxlab",
        "api_token": Path(settings.api_token_file).read_text().strip(),
    },
]
c.JupyterHub.load_roles.append(
    {"name": "jaxlab", "scopes": ["admin:users", "admin:servers", "tokens", "access:servers"], "services": ["jaxlab"]}
)
