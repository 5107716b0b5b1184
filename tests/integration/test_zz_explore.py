import json, time
from tests.integration.archive import *

def test_explore(sample_archive, upload, mpr_report, database_url):
    upload(sample_archive.root)
    out = mpr_report("import")
    for k, r in catalogue(database_url).items():
        print(k, r["role"], r["in_bucket"], r["md5"], r["mime_type"], r["has_tech"], r["size"], r["etag"])
    print(runs(database_url))
    t = time.time()
    out = mpr_report("import")
    print("took", time.time() - t, out.returncode, out.counts, out.report["problems"])
    print(runs(database_url)[-1])
    assert 0
