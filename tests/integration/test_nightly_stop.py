"""A nightly stopped (Ctrl-C, SIGTERM) after its import finished but before its transcode
step ended exits 130, not 0: the night did not run to its end. In-process against real
PostgreSQL and SeaweedFS; the stop is set by the import's progress display when told that
phase 3 finished, the point where the signal handler would set it between the two steps.
"""

from __future__ import annotations

import threading

import pytest

from mpr_cli.dev.sample import SampleArchive
from mpr_cli.errors import ExitCode
from mpr_cli.ffmpeg.presets import load_presets
from mpr_cli.importer import ImportOptions, NoProgress
from mpr_cli.nightly import run_nightly
from mpr_cli.rules import load_rules
from mpr_cli.transcode.pool import NoEvents
from tests.integration.archive import keys_of, upload_tree
from tests.integration.transcoding import VIDEO_CODE, build_awaiting_archive

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> SampleArchive:
    return build_awaiting_archive(tmp_path_factory.mktemp("stop") / "bucket", 1)


class StopsAfterPhase3(NoProgress):
    """What a Ctrl-C right after phase 3 does: the run's stop event set."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop

    def finish(self, phase: str) -> None:
        if phase == "ingest":
            self.stop.set()


def test_a_nightly_stopped_after_its_import_exits_130_and_skips_transcoding(
        archive, settings, cat):
    upload_tree(cat.s3, cat.bucket_in, archive.root, keys_of(archive, [VIDEO_CODE]))
    stop = threading.Event()

    outcome = run_nightly(settings, load_rules(), load_presets(), ImportOptions(),
                          workers=1, progress=StopsAfterPhase3(stop), events=NoEvents(),
                          stop=stop)

    assert outcome.exit_code == ExitCode.INTERRUPTED
    assert outcome.report["transcode"]["message"] == "transcoding skipped: the run was interrupted"
    assert cat.files(VIDEO_CODE)  # the import itself completed: its asset is catalogued
    assert cat.jobs() == []
