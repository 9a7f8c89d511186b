"""What ``deploycc verify`` (and ``predict``) runs: the artifact itself, a fleet device, or, with
``--proxy``, the stand-in its build verified on this machine.

A TensorRT bundle or an NNAPI model runs only on its device; its build already checked the
stand-in (the Q/DQ model on ONNX Runtime's INT8 kernels, the FP16 simulation) against the model's
exact semantics. ``--proxy`` runs that same stand-in over labelled data, so that what INT8 or
FP16 costs in mIoU is known before the device is reached. What it cannot show (the engine's own
kernels and latency) stays unchecked: a passing proxy run still exits 3 and names the device step.
"""

from __future__ import annotations

from pathlib import Path

from deploycc.core.errors import Unavailable, Unverified, UserError


def open_for_verify(
    artifact: Path, threads: int, remote: str | None = None, key: str | None = None, proxy: bool = False
):
    """(manifest, Session, proxy subject or None); an artifact still waiting for its device step
    says so in one line unless ``proxy``. With ``remote``/``key`` the Session runs on a fleet
    device (``deploycc.fleet``)."""
    from deploycc.fleet import open_remote, remote_options
    from deploycc.pipeline.artifact import read_manifest
    from deploycc.pipeline.runtime import open_artifact
    from deploycc.targets.backend import unfinished_steps

    manifest = read_manifest(artifact)
    if proxy and remote:
        raise UserError("--proxy runs the artifact's stand-in on this machine; it cannot be combined with --remote")
    unfinished = unfinished_steps(manifest)
    if unfinished and proxy:
        return manifest, *open_proxy(artifact, manifest)
    if unfinished:
        step = unfinished[0]
        raise Unverified(
            f"{artifact}: the artifact is not finished ({step.get('what', 'device step')}); "
            f"finish it on the device ({step.get('command', '')}) and verify it there, "
            f"or verify its stand-in here with --proxy"
        )
    fleet = remote_options(remote, key)
    if fleet:
        return (*open_remote(artifact, *fleet, threads), None)
    try:
        opened = open_artifact(artifact, threads or None)
    except Unavailable as exc:
        if proxy:
            return manifest, *open_proxy(artifact, manifest)
        steps = manifest.get("remaining") or [{}]
        on_device = f" (on the device: {steps[0]['command']})" if steps[0] else ""
        raise Unverified(f"{exc}{on_device}; or verify its stand-in here with --proxy") from None
    if proxy:
        raise UserError(f"--proxy: {artifact} runs on this machine as it is; verify it without --proxy")
    return (*opened, None)


def open_proxy(artifact: Path, manifest: dict):
    """(Session, subject) of the stand-in the artifact's backend offers for it."""
    from deploycc.targets.backend import get_backend

    proxy = get_backend(manifest["backend"]).proxy_session(artifact, manifest)
    if proxy is None:
        raise Unverified(f"{artifact}: backend {manifest['backend']} has no stand-in on this machine (--proxy)")
    return proxy.session, proxy.subject


def device_step_left(artifact: Path, manifest: dict, subject: str) -> Unverified:
    """The exit 3 of a proxy run whose gates passed: what ran, and what is still unchecked."""
    step = (manifest.get("remaining") or [{}])[0]
    return Unverified(
        f"{artifact}: gates passed through the stand-in ({subject}); the device's own run is unchecked: "
        f"{step.get('what', 'device step')} ({step.get('command', '')})"
    )
