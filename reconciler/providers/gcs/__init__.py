"""Cloud Storage: the admin and data buckets, and the lock object in the admin bucket."""
