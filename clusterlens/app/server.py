"""The inspection web app: a Flask application over a :class:`~clusterlens.loop.SearchProject`.

:func:`create_app` builds the app; :func:`serve` runs it on a threaded local server. Pages:
``/`` (a grader enters their name), ``/grade?grader=NAME`` (the grading and grid views, all
in ``static/app.js``). JSON API:

=======================  ======  ====================================================
``/api/queue``           GET     the iteration's queue, the grader's decisions, position
``/api/others``          GET     other graders' decisions on one object (only after the
                                 grader's own)
``/api/decide``          POST    record a decision (one transaction), move the position
``/api/undo``            POST    undo the grader's decision on one object (the one it
                                 replaced, if any, is restored and returned)
``/api/position``        POST    remember which object the grader is looking at
``/img/<it>/<rank>/<view>.png``  a view of the candidate of that rank (see ``images``)
=======================  ======  ====================================================

Every input is checked (names, ids, grades, marked points); a malformed request gets a 4xx
answer and changes nothing. Images are addressed by rank, never by a path built from user
input, and the static files are served by Flask's ``send_from_directory``, so nothing
outside the package's static folder and the project's cache can be read. When a token is
set every request must carry it (header ``X-Clusterlens-Token`` or the cookie set by
opening ``/?token=...``), compared in constant time. State-changing requests must be JSON
(which a cross-site form cannot send) and, when the browser names an ``Origin``, come from
the app's own origin. Without a token only loopback ``Host`` names (``localhost``,
``127.0.0.0/8``, ``[::1]``) or the configured ``allowed_hosts`` are served, so a page on
another site that rebinds its DNS name to 127.0.0.1 cannot read or write decisions. Every
state-changing request names the iteration it was made in; the decision is filed there, or
refused visibly, never filed under whatever iteration the server serves now.
"""

from __future__ import annotations

import hmac
import math
import re
import secrets
import unicodedata
from pathlib import Path

from clusterlens.app.images import VIEWS, ImageCache
from clusterlens.errors import ClusterlensError, ParameterError
from clusterlens.loop import SearchProject
from clusterlens.loop.decisions import DECISION_FLAGS, MAX_COMMENT_LENGTH
from clusterlens.loop.grading import einstein_radius_from_points
from clusterlens.survey.cutouts import PIXEL_SCALE

__all__ = [
    "create_app",
    "serve",
    "new_token",
    "check_grader_name",
    "MAX_POINTS",
    "MAX_CONNECTIONS",
    "IDLE_TIMEOUT",
    "TOKEN_COOKIE",
]

#: Most arc points one decision may carry.
MAX_POINTS = 200
#: Name of the cookie that carries the team token in the browser.
TOKEN_COOKIE = "clusterlens_token"
_TOKEN_HEADER = "X-Clusterlens-Token"
_NAME = re.compile(r"^\w(?:[\w .'-]{0,38}\w)?$")
_PREFETCH_AHEAD = 8


def check_grader_name(name) -> str:
    """A grader's name: 1-40 letters, digits, spaces, ``.``, ``'``, ``-``, ``_``, starting
    and ending with a letter or digit, NFKC-normalised (fullwidth 'Ａｎｎ' is 'Ann'). Raises
    :class:`ParameterError` otherwise."""
    if isinstance(name, str):
        name = unicodedata.normalize("NFKC", name)
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ParameterError(
            "The 'grader' name must be 1-40 letters, digits, spaces, '.', \"'\", '-' or '_', "
            f"starting and ending with a letter or digit. Got {name!r}."
        )
    return name


class _BadRequest(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def _pick_iteration(project: SearchProject, iteration: int | None) -> int:
    numbers = [it["number"] for it in project.iterations()]
    if iteration is None:
        iteration = project.open_iteration() or (max(numbers) if numbers else None)
        if iteration is None:
            raise ClusterlensError(
                f"The project {str(project.path)!r} has no iteration to inspect yet; select "
                "objects first (clusterlens loop select)."
            )
    if iteration not in numbers:
        raise ClusterlensError(
            f"The project {str(project.path)!r} has no iteration {iteration}; it has {numbers}."
        )
    return int(iteration)


def create_app(
    project,
    source,
    *,
    iteration: int | None = None,
    size: int | None = None,
    crop: int | None = None,
    pixel_scale: float | None = None,
    token: str | None = None,
    cache_dir=None,
    allowed_hosts=(),
):
    """Build the inspection app (a :class:`flask.Flask` application).

    Parameters
    ----------
    project : SearchProject or path-like
        The search project whose selected objects are inspected.
    source : clusterlens.survey.CutoutSource
        Where cutouts come from, e.g. ``FitsDirectoryCutouts(folder)``.
    iteration : int, optional
        Iteration to inspect; the open one by default, else the latest.
    size : int, optional
        Side of the full field shown [pixels]: the project's recorded cutout size
        (:meth:`~clusterlens.loop.SearchProject.set_image_geometry`), else 371 (what
        ``clusterlens fetch`` writes).
    crop : int, optional
        Side of the network's input crop, outlined on the field [pixels]: the project's
        recorded crop, else 223 (the paper's).
    pixel_scale : float, optional
        Arcsec per pixel; the source's ``pixel_scale`` (0.262) by default.
    token : str, optional
        Shared secret every request must carry (required when serving a team).
    cache_dir : path-like, optional
        Where rendered PNGs are kept; ``<project>.inspect/`` beside the project by default.
    allowed_hosts : sequence of str, optional
        Host names (without port) served besides the loopback ones when there is no token,
        e.g. the machine's name for a server reached through an SSH tunnel.
    """
    from flask import Flask

    project = project if isinstance(project, SearchProject) else SearchProject(project)
    iteration = _pick_iteration(project, iteration)
    known = project.image_geometry or (371, 223)
    size = int(known[0] if size is None else size)
    crop = int(known[1] if crop is None else crop)
    if not 16 <= size <= 4096 or not 1 <= crop:
        raise ParameterError(f"'size' must be in [16, 4096] and 'crop' >= 1. Got {size}, {crop}.")
    scale = float(pixel_scale or getattr(source, "pixel_scale", PIXEL_SCALE))
    if token is not None and (not isinstance(token, str) or len(token) < 8):
        raise ParameterError("The 'token' must be a string of at least 8 characters.")
    cache = ImageCache(
        source,
        cache_dir or project.path.with_name(project.path.name + ".inspect"),
        size=size,
    )
    here = Path(__file__).resolve().parent
    app = Flask(
        __name__,
        template_folder=str(here / "templates"),
        static_folder=str(here / "static"),
        static_url_path="/static",
    )
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    app.config["JSON_SORT_KEYS"] = False
    state = _AppState(project, iteration, cache, size=size, crop=crop, scale=scale)
    app.extensions["clusterlens"] = state
    hosts = tuple(allowed_hosts or ())
    if not all(isinstance(h, str) and h for h in hosts):
        raise ParameterError(f"'allowed_hosts' must be host names. Got {allowed_hosts!r}.")
    _routes(app, state, token, {h.lower() for h in hosts})
    return app


class _AppState:
    """What the request handlers share: the project, the queue (fixed per iteration)."""

    def __init__(self, project, iteration, cache, *, size, crop, scale):
        self.project = project
        self.iteration = iteration
        self.cache = cache
        self.size = size
        self.crop = min(crop, size)
        self.scale = scale
        self.queue = project.inspection_queue(iteration)
        self.by_id = {item["id"]: item for item in self.queue}
        self._other_queues: dict[int, set] = {}

    def config(self, grader: str) -> dict:
        return {
            "grader": grader,
            "iteration": self.iteration,
            "project": self.project.path.name,
            "size": self.size,
            "crop": self.crop,
            "pixel_scale": self.scale,
            "views": list(VIEWS),
            "n": len(self.queue),
            "flags": list(DECISION_FLAGS),
            "max_comment": MAX_COMMENT_LENGTH,
            "guide_examples": self.guide_examples(),
        }

    def guide_examples(self, per_grade: int = 3) -> dict[str, list[int]]:
        """Ranks of up to ``per_grade`` candidates of the served queue for each grade, for the
        grading guide: those whose graders' most frequent grade it is (ties are no example),
        best score first. Empty lists while nothing is graded."""
        votes: dict[str, dict[str, int]] = {}
        for r in self.project.decision_records(self.iteration):
            if r["grade"] is not None:
                count = votes.setdefault(r["object_id"], {})
                count[r["grade"]] = count.get(r["grade"], 0) + 1
        out: dict[str, list[int]] = {"A": [], "B": [], "C": []}
        for item in self.queue:  # in rank order, so best score first
            count = votes.get(item["id"])
            if not count:
                continue
            top = max(count.values())
            winners = [g for g, n in count.items() if n == top]
            if len(winners) == 1 and len(out[winners[0]]) < per_grade:
                out[winners[0]].append(item["rank"])
        return out

    # -- validation of request fields -----------------------------------------------------

    def object_id(self, value) -> str:
        if not isinstance(value, str) or not value or len(value) > 200:
            raise _BadRequest(f"'object_id' must be a non-empty string. Got {value!r}.")
        if value not in self.by_id:
            raise _BadRequest(
                f"Object {value!r} is not in the queue of iteration {self.iteration}.", 404
            )
        return value

    def decision_iteration(self, value) -> int:
        """The iteration a request says it was made in (the served one when it names none,
        as older pages did)."""
        if value is None:
            return self.iteration
        if isinstance(value, bool) or not isinstance(value, int):
            raise _BadRequest(f"'iteration' must be an integer. Got {value!r}.")
        if value != self.iteration and value not in self._other_queues:
            numbers = [it["number"] for it in self.project.iterations()]
            if value not in numbers:
                raise _BadRequest(
                    f"The project has no iteration {value}; this server serves iteration "
                    f"{self.iteration}.",
                    409,
                )
            self._other_queues[value] = {i["id"] for i in self.project.inspection_queue(value)}
        return value

    def object_in(self, value, iteration: int) -> str:
        """``object_id`` checked against the queue of ``iteration``."""
        if iteration == self.iteration:
            return self.object_id(value)
        if not isinstance(value, str) or not value or len(value) > 200:
            raise _BadRequest(f"'object_id' must be a non-empty string. Got {value!r}.")
        if value not in self._other_queues[iteration]:
            raise _BadRequest(
                f"Object {value!r} is not in the queue of iteration {iteration}.", 409
            )
        return value

    def points(self, value) -> list[list[float]] | None:
        if value is None:
            return None
        if not isinstance(value, list) or len(value) > MAX_POINTS:
            raise _BadRequest(f"'points' must be a list of at most {MAX_POINTS} [x, y] pairs.")
        half = (self.size / 2) * self.scale * 1.001
        out = []
        for p in value:
            if (
                not isinstance(p, list)
                or len(p) != 2
                or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in p)
                or not all(math.isfinite(v) and abs(v) <= half for v in p)
            ):
                raise _BadRequest(
                    f"Each point must be [x, y] in arcsec within the field (|x|, |y| <= "
                    f"{half:.1f}). Got {p!r}."
                )
            out.append([float(p[0]), float(p[1])])
        return out or None

    @staticmethod
    def comment(value) -> str:
        if value is None:
            return ""
        if not isinstance(value, str) or len(value) > MAX_COMMENT_LENGTH:
            raise _BadRequest(f"'comment' must be text of at most {MAX_COMMENT_LENGTH} characters.")
        return value

    @staticmethod
    def flags(value) -> list[str]:
        if value is None:
            return []
        if (
            not isinstance(value, list)
            or len(value) > len(DECISION_FLAGS)
            or not all(isinstance(f, str) and f in DECISION_FLAGS for f in value)
        ):
            raise _BadRequest(f"'flags' must be a list of names among {list(DECISION_FLAGS)}.")
        return value


def _as_page(r) -> dict:
    """One decision record as the page keeps it."""
    return {
        "is_lens": r["is_lens"],
        "grade": r["grade"],
        "points": r["arc_points"],
        "t": r["decided_at"],
        "comment": r["comment"],
        "flags": r["flags"],
    }


def _mine(records) -> dict:
    return {r["object_id"]: _as_page(r) for r in records}


def _host_name(host: str) -> str:
    """The name of a ``Host`` header, lower case, without its port (``[::1]:80`` -> ``::1``)."""
    name = host.strip().lower()
    if name.startswith("["):
        return name[1 : name.find("]")] if "]" in name else name
    return name.rsplit(":", 1)[0] if name.count(":") == 1 else name


def _loopback(host: str) -> bool:
    """Whether a Host header names this machine's loopback interface."""
    name = _host_name(host)
    if name in ("localhost", "::1") or name.endswith(".localhost"):
        return True
    parts = name.split(".")
    return len(parts) == 4 and parts[0] == "127" and all(p.isdigit() for p in parts)


#: Deepest JSON nesting a request body may have (a decision is two levels deep).
_MAX_JSON_DEPTH = 8


def _json_depth_ok(raw: bytes, limit: int = _MAX_JSON_DEPTH) -> bool:
    """Whether ``raw`` nests brackets at most ``limit`` deep (outside strings), checked
    before parsing: a 30,000-deep body would exhaust the parser's recursion."""
    depth, in_string, escaped = 0, False, False
    for ch in raw.decode("utf-8", "replace"):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def _routes(app, state: _AppState, token: str | None, allowed_hosts: set) -> None:
    from flask import abort, jsonify, make_response, redirect, render_template, request

    project = state.project
    secret = token.encode() if token else None

    def has_token() -> bool:
        if secret is None:
            return True
        given = request.headers.get(_TOKEN_HEADER) or request.cookies.get(TOKEN_COOKIE) or ""
        return hmac.compare_digest(given.encode(), secret)

    @app.before_request
    def _guard():
        host = request.headers.get("Host", "")
        if secret is None and not (_loopback(host) or _host_name(host) in allowed_hosts):
            return _error(
                f"This server answers only to localhost (Host {host!r} refused); serve a team "
                "with a token, or name the host with allowed_hosts.",
                421,
            )
        if request.path == "/" and request.method == "GET" and "token" in request.args:
            given = request.args.get("token", "")
            if secret is not None and hmac.compare_digest(given.encode(), secret):
                resp = redirect("/", code=303)
                resp.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict")
                return resp
            return _error("Wrong token.", 401)
        if not has_token():
            if request.path.startswith("/api/") or request.path.startswith("/img/"):
                return _error("This server needs its token.", 401)
            return make_response(render_template("token.html"), 401)
        if request.method == "POST":
            if not request.is_json:
                return _error("POST bodies must be JSON (Content-Type: application/json).", 415)
            origin = request.headers.get("Origin")
            if origin and origin.rstrip("/") != request.host_url.rstrip("/"):
                return _error("Cross-origin requests are refused.", 403)
        return None

    @app.after_request
    def _headers(resp):
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
        )
        if request.path.startswith("/api/"):
            resp.headers["Cache-Control"] = "no-store"
        return resp

    def _error(message: str, status: int):
        return make_response(jsonify({"error": message}), status)

    @app.errorhandler(_BadRequest)
    def _bad(exc):
        return _error(str(exc), exc.status)

    @app.errorhandler(ParameterError)
    def _param(exc):
        return _error(str(exc), 400)

    @app.errorhandler(ClusterlensError)
    def _failure(exc):
        return _error(str(exc), 502)

    def grader_arg(value) -> str:
        try:
            return check_grader_name(value)
        except ParameterError as exc:
            raise _BadRequest(str(exc)) from None

    def body(*required: str, optional: tuple[str, ...] = ()) -> dict:
        if not _json_depth_ok(request.get_data(cache=True)):
            raise _BadRequest(f"The request body nests deeper than {_MAX_JSON_DEPTH} levels.")
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise _BadRequest("The request body must be a JSON object.")
        unknown = set(data) - set(required) - set(optional)
        missing = [k for k in required if k not in data]
        if unknown or missing:
            raise _BadRequest(
                f"Unexpected fields {sorted(unknown)} or missing fields {missing} in the request."
            )
        return data

    # -- pages --------------------------------------------------------------------------

    @app.get("/")
    def index():
        return render_template("index.html", project=project.path.name, n=len(state.queue))

    @app.get("/grade")
    def grade_page():
        try:
            grader = check_grader_name(request.args.get("grader", ""))
        except ParameterError as exc:
            return make_response(
                render_template(
                    "index.html", project=project.path.name, n=len(state.queue), error=str(exc)
                ),
                400,
            )
        return render_template("grade.html", config=state.config(grader))

    # -- API ----------------------------------------------------------------------------

    @app.get("/api/queue")
    def api_queue():
        grader = grader_arg(request.args.get("grader"))
        mine = _mine(project.decision_records(state.iteration, grader=grader))
        return jsonify(
            {
                "iteration": state.iteration,
                "items": state.queue,
                "mine": mine,
                "position": project.grader_position(grader, state.iteration),
            }
        )

    @app.get("/api/others")
    def api_others():
        grader = grader_arg(request.args.get("grader"))
        oid = state.object_id(request.args.get("object_id"))
        records = project.decision_records(state.iteration, object_id=oid)
        if not any(r["grader"] == grader for r in records):
            raise _BadRequest("Give your own decision on this object first.", 409)
        others = [
            {
                "grader": r["grader"],
                "is_lens": r["is_lens"],
                "grade": r["grade"],
                "r_ein": einstein_radius_from_points(r["arc_points"]) if r["arc_points"] else None,
            }
            for r in records
            if r["grader"] != grader
        ]
        return jsonify({"object_id": oid, "others": others})

    @app.post("/api/decide")
    def api_decide():
        data = body(
            "grader",
            "object_id",
            "is_lens",
            optional=("grade", "points", "position", "iteration", "comment", "flags"),
        )
        grader = grader_arg(data["grader"])
        iteration = state.decision_iteration(data.get("iteration"))
        oid = state.object_in(data["object_id"], iteration)
        is_lens = data["is_lens"]
        if not isinstance(is_lens, bool):
            raise _BadRequest(f"'is_lens' must be true or false. Got {is_lens!r}.")
        grade = data.get("grade")
        if grade is not None and grade not in ("A", "B", "C"):
            raise _BadRequest(f"'grade' must be 'A', 'B', 'C' or null. Got {grade!r}.")
        if grade is not None and not is_lens:
            raise _BadRequest("A grade was given for a non-lens.")
        points = state.points(data.get("points"))
        if points is not None and not is_lens:
            raise _BadRequest("Arc points were given for a non-lens.")
        comment = state.comment(data.get("comment"))
        flags = state.flags(data.get("flags"))
        position = data.get("position")
        if position is not None:
            position = state.object_in(position, iteration)
        project.record_decision(
            oid,
            iteration,
            grader,
            is_lens=is_lens,
            grade=grade,
            arc_points=points,
            comment=comment,
            flags=flags,
        )
        if position is not None:
            project.set_grader_position(grader, iteration, position)
        r_ein = einstein_radius_from_points(points) if points else None
        return jsonify({"ok": True, "object_id": oid, "iteration": iteration, "r_ein": r_ein})

    @app.post("/api/undo")
    def api_undo():
        data = body("grader", "object_id", optional=("iteration",))
        grader = grader_arg(data["grader"])
        iteration = state.decision_iteration(data.get("iteration"))
        oid = state.object_in(data["object_id"], iteration)
        had = bool(project.decision_records(iteration, grader=grader, object_id=oid))
        restored = project.undo_decision(oid, iteration, grader)
        project.set_grader_position(grader, iteration, oid)
        return jsonify(
            {
                "ok": True,
                "removed": had,
                "object_id": oid,
                "restored": None if restored is None else _as_page(restored),
            }
        )

    @app.post("/api/position")
    def api_position():
        data = body("grader", "object_id", optional=("iteration",))
        grader = grader_arg(data["grader"])
        iteration = state.decision_iteration(data.get("iteration"))
        oid = state.object_in(data["object_id"], iteration)
        project.set_grader_position(grader, iteration, oid)
        return jsonify({"ok": True})

    @app.get("/img/<int:iteration>/<int:rank>/<view>.png")
    def image(iteration: int, rank: int, view: str):
        if iteration != state.iteration or not 0 <= rank < len(state.queue) or view not in VIEWS:
            abort(404)
        item = state.queue[rank]
        try:
            raw = state.cache.get(item["id"], view, item["ra"], item["dec"])
        except ClusterlensError as exc:  # the page shows the reason; the log keeps it too
            app.logger.warning("no image for %s: %s", item["id"], exc)
            raise
        ahead = state.queue[rank + 1 : rank + 1 + _PREFETCH_AHEAD]
        state.cache.prefetch((i["id"], i["ra"], i["dec"]) for i in ahead)
        resp = make_response(raw)
        resp.headers["Content-Type"] = "image/png"
        resp.headers["Cache-Control"] = "private, max-age=86400, immutable"
        return resp


#: Most connections served at once; further ones wait in the listen queue.
MAX_CONNECTIONS = 32
#: Seconds a connection may stay silent before its thread is freed.
IDLE_TIMEOUT = 30.0


def _bounded_server(host, port, app, max_connections: int, idle_timeout: float):
    """A threaded WSGI server whose idle connections time out and whose threads are
    bounded, so a client holding many silent connections cannot exhaust the machine."""
    import threading

    from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

    class Handler(WSGIRequestHandler):
        timeout = idle_timeout  # socketserver applies it to the connection's socket

    class Server(ThreadedWSGIServer):
        slots = threading.BoundedSemaphore(max_connections)

        def process_request(self, request, client_address):
            self.slots.acquire()
            try:
                super().process_request(request, client_address)
            except BaseException:
                self.slots.release()
                raise

        def process_request_thread(self, request, client_address):
            try:
                super().process_request_thread(request, client_address)
            finally:
                self.slots.release()

    return Server(host, port, app, handler=Handler)


def serve(
    app,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    quiet: bool = False,
    max_connections: int = MAX_CONNECTIONS,
    idle_timeout: float = IDLE_TIMEOUT,
):
    """Run ``app`` on a threaded WSGI server until interrupted; returns nothing.

    ``port=0`` picks a free port. The bound URL is printed unless ``quiet``. At most
    ``max_connections`` connections are served at once and a connection silent for
    ``idle_timeout`` seconds is closed.
    """
    import logging

    # one log line per image request would bury the messages that matter
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = _bounded_server(host, port, app, int(max_connections), float(idle_timeout))
    if not quiet:
        shown = f"[{host}]" if ":" in host else host
        print(f"clusterlens inspect: serving on http://{shown}:{server.server_port}/", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


def new_token() -> str:
    """A random shared token for a team server."""
    return secrets.token_urlsafe(18)
