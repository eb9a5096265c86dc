"""The instructor's class page, as a JupyterHub service: only a user the hub lets open this service
(the instructor) sees it. Each refresh asks the hub for the learners and reads each running
learner's progress notes through their own server (the service's token may read servers, no
more), then renders :mod:`labkit.hub.class_page`.

JupyterHub starts it (see deploy/jupyterhub_config.py) with its token and URLs in the environment.
"""

from __future__ import annotations

import json
import os
from urllib.parse import quote, urlparse

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from jupyterhub.utils import url_path_join
from tornado import httpclient, ioloop, web

from ..progress import NOTES, class_view, parse
from .class_page import render


def _request(url: str) -> httpclient.HTTPRequest:
    return httpclient.HTTPRequest(url, headers={"Authorization": f"token {os.environ['JUPYTERHUB_API_TOKEN']}"})


async def _notes(client: httpclient.AsyncHTTPClient, public: str, name: str) -> list[dict]:
    """A learner's notes, read through their server's contents API; none while it is not running."""
    url = url_path_join(public, "user", quote(name), "api/contents", str(NOTES)) + "?content=1&type=file&format=text"
    try:
        response = await client.fetch(_request(url))
    except (httpclient.HTTPClientError, OSError):
        return []
    return parse(json.loads(response.body).get("content") or "")


class ClassPage(HubOAuthenticated, web.RequestHandler):
    @web.authenticated
    async def get(self):
        client = httpclient.AsyncHTTPClient()
        users = json.loads(
            (await client.fetch(_request(url_path_join(os.environ["JUPYTERHUB_API_URL"], "users")))).body
        )
        instructor = os.environ.get("JAXLAB_HUB_INSTRUCTOR", "instructor")
        learners = [u["name"] for u in users if u["name"] != instructor]
        public = os.environ["JAXLAB_HUB_PUBLIC_URL"]
        running = [u["name"] for u in users if u["name"] != instructor and u.get("server")]
        notes = {name: await _notes(client, public, name) for name in running}
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.write(render(class_view(notes), learners))


def main() -> None:
    prefix = os.environ["JUPYTERHUB_SERVICE_PREFIX"]
    app = web.Application(
        [
            (prefix, ClassPage),
            (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
        ],
        cookie_secret=os.urandom(32),
    )
    url = urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
    app.listen(url.port or 80, url.hostname or "127.0.0.1")
    try:
        ioloop.IOLoop.current().start()
    except KeyboardInterrupt:  # the hub stops its services with a signal: a normal end
        pass


if __name__ == "__main__":
    main()
