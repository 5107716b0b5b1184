import pytest
from mpr_cli.sample import build_sample_archive
from tests.integration.archive import upload_tree, query, keys_of
import time

pytestmark = pytest.mark.integration


def test_explore(tmp_path, s3_admin, buckets, run_mpr, database_url):
    t = time.monotonic()
    arch = build_sample_archive(tmp_path / "b", assets_video=0, assets_audio=0, bad=False,
                                tape_master=False, awaiting=6)
    print("build", time.monotonic() - t, arch.files)
    upload_tree(s3_admin, buckets[0], arch.root)
    t = time.monotonic()
    r = run_mpr("import")
    print("import", time.monotonic() - t, r.returncode, r.stdout, r.stderr)
    t = time.monotonic()
    r = run_mpr("transcode", "FILE/VO-NEW-00001.mov")
    print("tc", time.monotonic() - t, r.returncode, r.stdout, r.stderr)
    r = run_mpr("transcode", "FILE/VO-NEW-00001.mov")
    print("tc", time.monotonic() - t, r.returncode, r.stdout, r.stderr)
    t = time.monotonic()
    r = run_mpr("transcode", "--pending", "--workers", "2")
    print("tcp", time.monotonic() - t, r.returncode, r.stdout, r.stderr)
    r = run_mpr("jobs", "list", "--json")
    print(r.stdout[:1500])
    for row in query(database_url, "select id, bucket, key, role, md5, mime_type, preset from asset_files order by id"):
        print(row)
    print(s3_admin.list_objects_v2(Bucket=buckets[1]).get("Contents"))
