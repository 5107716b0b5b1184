-- Buckets of any size (issue 16): an import walks the catalogue's files of a bucket in the order
-- S3 lists keys (UTF-8 byte order, which is COLLATE "C"), beside the listing, with a server-side
-- cursor; this index serves that walk (and the quick fixity pass's) without a sort of the whole
-- bucket's rows.
CREATE INDEX asset_files_bucket_key_bytes ON asset_files (bucket, key COLLATE "C");
