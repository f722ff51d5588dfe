"""`grpo-fast vllm-serve`: one vLLM engine behind a small HTTP/JSON API, for trainers that sample
on other GPUs or another host (the server mode of `VLLMServerSampler`).

Endpoints (JSON unless noted; with a token, every endpoint but /health needs `Authorization: Bearer`):
  GET  /health                      model, dtype, weight_version
  POST /generate                    {"prompt_ids": [[int]], "n": int, "stop_ids": [int], "params": {...},
                                     "stop_strings": [str] (optional)}
  POST /score                       {"prompt_ids": [[int]], "completion_ids": [[int]]} -> log-probs
  POST /update_weights?version=N    body: a safetensors file (application/octet-stream), streamed to disk
  POST /sleep, POST /wake_up

It listens on 127.0.0.1 unless told otherwise: the API can replace the model's weights, so expose it
only on a trusted network and with a token."""

from __future__ import annotations

import hmac
import json
import os
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

MAX_JSON_BYTES = 64 << 20
MAX_PROMPTS = 65_536


class RequestError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _int_lists(value: Any, name: str, vocab: int) -> list[list[int]]:
    if not isinstance(value, list) or len(value) > MAX_PROMPTS:
        raise RequestError(400, f"{name}: a list of at most {MAX_PROMPTS} token-id lists is required")
    out = []
    for i, row in enumerate(value):
        if not isinstance(row, list) or not all(type(t) is int and 0 <= t < vocab for t in row):
            raise RequestError(400, f"{name}[{i}]: token ids must be integers in [0, {vocab})")
        out.append(row)
    return out


def _sampling(params: Any) -> dict[str, Any]:
    from grpo_fast.sampler.vllm_engine import SAMPLING_KEYS

    if not isinstance(params, dict) or set(params) - set(SAMPLING_KEYS):
        raise RequestError(400, f"params: only {', '.join(SAMPLING_KEYS)} may be set")
    p = dict(params)
    try:
        p["temperature"] = float(p.get("temperature", 1.0))
        p["top_p"] = float(p.get("top_p", 1.0))
        p["top_k"] = int(p.get("top_k", 0))
        p["max_new_tokens"] = int(p.get("max_new_tokens", 256))
        if p.get("seed") is not None:
            p["seed"] = int(p["seed"])
    except (TypeError, ValueError) as exc:
        raise RequestError(400, f"params: {exc}") from None
    if p["temperature"] < 0 or not 0 < p["top_p"] <= 1 or p["max_new_tokens"] < 1:
        raise RequestError(400, "params: temperature >= 0, 0 < top_p <= 1 and max_new_tokens >= 1 are required")
    return p


class VLLMServer:
    """The HTTP front of a `VLLMEngine`. `engine` is anything with the engine's methods (the tests
    and the CLI pass a real one)."""

    def __init__(self, engine: Any, *, host: str = "127.0.0.1", port: int = 8000, token: str | None = None,
                 max_upload_bytes: int = 64 << 30, model_name: str = "", vocab_size: int = 1 << 31,
                 upload_dir: str | None = None):
        from grpo_fast.sampler.vllm_transfer import shared_tmp_dir

        self.engine = engine
        self.token = token
        self.max_upload_bytes = max_upload_bytes
        self.model_name = model_name
        self.vocab_size = vocab_size
        self.upload_dir = upload_dir or shared_tmp_dir()
        self.httpd = ThreadingHTTPServer((host, port), self._handler())
        self.httpd.daemon_threads = True

    @property
    def address(self) -> tuple[str, int]:
        return self.httpd.server_address[:2]  # type: ignore[return-value]

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def start_in_thread(self) -> threading.Thread:
        t = threading.Thread(target=self.serve_forever, name="vllm-serve", daemon=True)
        t.start()
        return t

    def shutdown(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # ------------------------------------------------------------------------------ handlers
    def health(self) -> dict[str, Any]:
        dtype = str(getattr(self.engine, "dtype", "")).removeprefix("torch.")
        return {"status": "ok", "model": self.model_name, "dtype": dtype,
                "weight_version": int(getattr(self.engine, "weight_version", 0))}

    def generate(self, body: dict[str, Any]) -> dict[str, Any]:
        prompts = _int_lists(body.get("prompt_ids"), "prompt_ids", self.vocab_size)
        n = body.get("n", 1)
        if type(n) is not int or not 1 <= n <= 1024:
            raise RequestError(400, "n: an integer in [1, 1024] is required")
        stops = _int_lists([body.get("stop_ids", [])], "stop_ids", self.vocab_size)[0]
        strings = body.get("stop_strings", [])
        if not isinstance(strings, list) or len(strings) > 16 or not all(
                isinstance(x, str) and 0 < len(x) <= 256 for x in strings):
            raise RequestError(400, "stop_strings: a list of at most 16 non-empty strings of at most 256 characters")
        outs = self.engine.generate(prompts, n, _sampling(body.get("params", {})), stops, strings)
        return {"outputs": [[vars(c) for c in group] for group in outs],
                "weight_version": self.engine.weight_version}

    def score(self, body: dict[str, Any]) -> dict[str, Any]:
        p = _int_lists(body.get("prompt_ids"), "prompt_ids", self.vocab_size)
        c = _int_lists(body.get("completion_ids"), "completion_ids", self.vocab_size)
        if len(p) != len(c) or any(not x for x in p):
            raise RequestError(400, "prompt_ids and completion_ids: one non-empty prompt per completion")
        return {"logprobs": self.engine.score(p, c)}

    def update_weights(self, reader: Any, length: int, version: int | None) -> dict[str, Any]:
        if length <= 0 or length > self.max_upload_bytes:
            raise RequestError(413 if length > 0 else 400,
                               f"a safetensors body of 1 to {self.max_upload_bytes} bytes is required")
        fd, path = tempfile.mkstemp(prefix="grpo-fast-upload-", suffix=".safetensors", dir=self.upload_dir)
        try:
            with os.fdopen(fd, "wb") as f:
                left = length
                while left:
                    chunk = reader.read(min(left, 1 << 20))
                    if not chunk:
                        raise RequestError(400, "the upload ended early")
                    f.write(chunk)
                    left -= len(chunk)
            _check_safetensors(path)
            got = self.engine.load_weights_file(path, version)
        finally:
            os.unlink(path)
        return {"weight_version": got}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt: str, *args: Any) -> None:  # one plain line per request, stderr
                return None

            def _send(self, status: int, obj: dict[str, Any]) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorised(self) -> bool:
                if not server.token:
                    return True
                got = self.headers.get("Authorization", "")
                return hmac.compare_digest(got.encode(), f"Bearer {server.token}".encode())

            def _length(self) -> int:
                try:
                    return int(self.headers.get("Content-Length", "0"))
                except ValueError:
                    raise RequestError(400, "bad Content-Length") from None

            def _json(self) -> dict[str, Any]:
                n = self._length()
                if n > MAX_JSON_BYTES:
                    raise RequestError(413, f"JSON bodies are limited to {MAX_JSON_BYTES} bytes")
                try:
                    body = json.loads(self.rfile.read(n) or b"{}")
                except ValueError:
                    raise RequestError(400, "the body is not JSON") from None
                if not isinstance(body, dict):
                    raise RequestError(400, "the body must be a JSON object")
                return body

            def _route(self, method: str) -> None:
                url = urlparse(self.path)
                try:
                    if method == "GET" and url.path == "/health":
                        return self._send(200, server.health())
                    if not self._authorised():
                        self.close_connection = True
                        return self._send(401, {"error": "missing or wrong bearer token"})
                    if method != "POST":
                        raise RequestError(404, f"no endpoint {method} {url.path}")
                    if url.path == "/generate":
                        return self._send(200, server.generate(self._json()))
                    if url.path == "/score":
                        return self._send(200, server.score(self._json()))
                    if url.path == "/update_weights":
                        q = parse_qs(url.query).get("version", [None])[0]
                        version = int(q) if q is not None and q.isdigit() else None
                        return self._send(200, server.update_weights(self.rfile, self._length(), version))
                    if url.path in ("/sleep", "/wake_up"):
                        self._json()
                        getattr(server.engine, url.path[1:])()
                        return self._send(200, {"status": "ok"})
                    raise RequestError(404, f"no endpoint POST {url.path}")
                except RequestError as exc:
                    self.close_connection = True
                    self._send(exc.status, {"error": str(exc)})
                except Exception as exc:  # an engine error: report it, keep serving
                    self.close_connection = True
                    self._send(500, {"error": f"{type(exc).__name__}: {exc}"})

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

        return Handler


def _check_safetensors(path: str) -> None:
    """Reject an upload that is not a readable safetensors file before the engine sees it."""
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt") as f:
            if not list(f.keys()):
                raise RequestError(400, "the safetensors upload holds no tensors")
    except RequestError:
        raise
    except Exception as exc:
        raise RequestError(400, f"the upload is not a safetensors file ({exc})") from None
