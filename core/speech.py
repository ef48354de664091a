"""Text made into sounds Asterisk plays: espeak-ng speaks it, sox makes it an 8 kHz mono
16-bit WAV (the format Asterisk's ``wav`` reads without transcoding surprises). Used for the
sandbox's default prompts and for campaigns' abandoned-call messages (``--message-text``).

The text is handed to espeak-ng in a file, never on its command line (a text starting with
``-`` is not an option), and no shell is involved.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from telephonist.core.settings import Settings


class SpeechError(RuntimeError):
    """espeak-ng or sox missing or failing; the message says which."""


def synthesize(text: str, dest: Path, *, voice: str = "en-us", speed: int = 150) -> Path:
    """Speak ``text`` into the WAV file ``dest`` (written whole, then renamed into place)."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise SpeechError(f"{tool} is not installed (make setup installs espeak-ng and sox)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        words, raw = Path(tmp) / "text.txt", Path(tmp) / "raw.wav"
        words.write_text(text, encoding="utf-8")
        part = dest.with_name(f".{dest.name}.part")
        for cmd in (
            ["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), "-f", str(words)],
            ["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", "-t", "wav", str(part)],
        ):
            done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60)
            if done.returncode != 0:
                raise SpeechError(f"{cmd[0]} failed: {done.stderr.strip()[:300]}")
        part.replace(dest)
    return dest


def custom_sounds(settings: Settings) -> Path | None:
    """Where telephonist's own sounds go, as the host sees it (Asterisk plays them as
    ``custom/<name>``): the sandbox's ``sounds/custom``; in external mode
    ``pbx.sounds_dir``/custom; None when unknown."""
    if settings.pbx.sounds_dir is not None:
        return settings.pbx.sounds_dir / "custom"
    if settings.pbx.mode == "sandbox":
        rootfs = settings.pbx.cache_dir / f"rootfs-{settings.pbx.debian_suite}"
        return rootfs / "usr/share/asterisk/sounds/custom"
    return None


__all__ = ["SpeechError", "custom_sounds", "synthesize"]
