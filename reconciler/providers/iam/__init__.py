"""IAM: the Google service account, its project role bindings and its Workload Identity binding."""
