"""The sandbox's emulator of the IAM admin API (google.iam.admin.v1.IAM), served over gRPC as the client speaks it."""
