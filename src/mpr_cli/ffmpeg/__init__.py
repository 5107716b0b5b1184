"""FFmpeg itself: probing (`probe`), presets, command building (`command`), running (`runner`).

Submodules are imported explicitly (`from mpr_cli.ffmpeg import probe`); this package
imports nothing so that importing one part never loads the others; it holds only the hint
every part gives when ffmpeg is missing.
"""

INSTALL_HINT = "apt-get install -y --no-install-recommends ffmpeg"  # for every "not found"
