"""Load everything the centre defines: the centre file, and its menus (whose entries become
dialplan lines). Used by the CLI and ``serve``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from telephonist.core.centre import Centre, load_centre
from telephonist.core.settings import Settings
from telephonist.ivr.loader import entry_lines
from telephonist.ivr.registry import MenuRegistry


@dataclass(frozen=True)
class Definitions:
    centre: Centre
    """With the IVR entries already added to ``lines``."""
    registry: MenuRegistry | None


def available_prompts(settings: Settings, language: str = "en") -> set[str] | None:
    """The sound names Asterisk can play (``beep``, ``digits/1``...), or None if unknown.

    In sandbox mode they are read from the root filesystem (following its own symlinks, which
    point inside the chroot). In external mode set ``pbx.sounds_dir`` to check them.
    """
    if settings.pbx.sounds_dir is not None:
        root = settings.pbx.sounds_dir
    elif settings.pbx.mode == "sandbox":
        rootfs = settings.pbx.cache_dir / f"rootfs-{settings.pbx.debian_suite}"
        root = _resolve_inside(rootfs, Path(f"/usr/share/asterisk/sounds/{language}"))
    else:
        return None
    if not root.is_dir():
        return None
    names = set()
    for path in root.rglob("*"):
        if path.suffix in (".gsm", ".wav", ".ulaw", ".alaw", ".sln", ".g722"):
            names.add(str(path.relative_to(root).with_suffix("")))
    return names or None


def _resolve_inside(rootfs: Path, inside: Path, depth: int = 0) -> Path:
    """Resolve symlinks of a path inside a chroot (absolute targets are chroot-relative)."""
    host = rootfs / str(inside).lstrip("/")
    if depth > 10 or not host.is_symlink():
        return host
    target = Path(host.readlink())
    nxt = target if target.is_absolute() else inside.parent / target
    return _resolve_inside(rootfs, nxt, depth + 1)


def load_definitions(settings: Settings, *, check_prompts: bool = True) -> Definitions:
    centre = load_centre(settings.centre_file)
    if centre.ivr is None:
        return Definitions(centre, None)
    prompts = available_prompts(settings) if check_prompts else None
    registry = MenuRegistry(centre.ivr, centre, prompts)
    full = centre.with_lines(entry_lines(registry.current))
    registry.centre = full
    return Definitions(full, registry)
