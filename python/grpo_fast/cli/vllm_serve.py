"""`grpo-fast vllm-serve`: a vLLM engine for trainers on other GPUs or hosts (`--vllm-mode server`)."""

from __future__ import annotations

import os
import signal
import sys

import click


@click.command(name="vllm-serve", context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--model", required=True, help="The policy's starting weights: a local path or Hub id.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. The API replaces the model's weights: bind beyond localhost only "
                   "on a trusted network, and with a token.")
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--token-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="File holding the bearer token clients must send (or $GRPO_VLLM_TOKEN).")
@click.option("--dtype", default="auto", show_default=True, help="Engine dtype: auto, bfloat16, float16, float32.")
@click.option("--gpu-memory-utilization", type=float, default=0.9, show_default=True,
              help="Share of the GPU the engine may take (the server has its GPUs to itself).")
@click.option("--max-model-len", type=int, default=None, help="Longest prompt + completion (default: the model's).")
@click.option("--tensor-parallel-size", type=int, default=1, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--enforce-eager", is_flag=True, help="No CUDA graphs / compilation (faster start, slower decode).")
@click.option("--max-upload-gb", type=float, default=64.0, show_default=True,
              help="Largest weight upload accepted (the safetensors file of one sync).")
def vllm_serve(model: str, host: str, port: int, token_file: str | None, dtype: str, gpu_memory_utilization: float,
               max_model_len: int | None, tensor_parallel_size: int, seed: int, enforce_eager: bool,
               max_upload_gb: float) -> None:
    """Serve one vLLM engine over HTTP for `grpo-fast train --sampler vllm --vllm-mode server`.

    The trainer sends token ids and gets back completions with their sampling log-probs; after every
    optimiser step it uploads the policy's weights, which the engine loads through vLLM's RL
    weight-update API.

    \b
    Examples:
      # GPU 1 serves, GPU 0 trains
      CUDA_VISIBLE_DEVICES=1 grpo-fast vllm-serve --model Qwen/Qwen2.5-0.5B-Instruct --port 8000
      CUDA_VISIBLE_DEVICES=0 grpo-fast train --model Qwen/Qwen2.5-0.5B-Instruct --data prompts.jsonl \\
          --sampler vllm --vllm-mode server --vllm-server-url http://127.0.0.1:8000
      # another host, with a token (the trainer reads $GRPO_VLLM_TOKEN)
      grpo-fast vllm-serve --model ./ckpt --host 0.0.0.0 --token-file token
    """
    from rich.console import Console

    from grpo_fast.errors import GrpoError
    from grpo_fast.sampler.vllm_engine import VLLMEngine
    from grpo_fast.sampler.vllm_server import VLLMServer

    console = Console(stderr=True)
    token = open(token_file).read().strip() if token_file else os.environ.get("GRPO_VLLM_TOKEN") or None
    if host not in ("127.0.0.1", "localhost", "::1") and not token:
        console.print(f"[yellow]warning:[/] listening on {host} without a token: anyone who can reach it can "
                      "replace the model's weights")
    try:
        engine = VLLMEngine(model, dtype=dtype, seed=seed, gpu_memory_utilization=gpu_memory_utilization,
                            max_model_len=max_model_len, enforce_eager=enforce_eager,
                            tensor_parallel_size=tensor_parallel_size)
        vocab = engine.llm.llm_engine.model_config.get_vocab_size()
        server = VLLMServer(engine, host=host, port=port, token=token, model_name=model, vocab_size=vocab,
                            max_upload_bytes=int(max_upload_gb * (1 << 30)))
    except GrpoError as exc:
        console.print(f"[red]error:[/] {exc.message}")
        sys.exit(2)
    except OSError as exc:
        console.print(f"[red]error:[/] cannot listen on {host}:{port}: {exc.strerror or exc}")
        sys.exit(2)
    h, p = server.address
    # One plain line a supervisor (or a test) can wait for.
    print(f"grpo-fast vllm-serve: ready on http://{h}:{p} (model {model}, dtype {server.health()['dtype']})",
          flush=True)
    # SIGTERM (systemd, Kubernetes, SLURM, a test) must take the same way out as Ctrl-C: with
    # Python's default handler the process dies at once and vLLM's engine-core process, left
    # without its parent, keeps running and holding the GPU's memory.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        engine.close()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
