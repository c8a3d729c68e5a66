"""The Resource Manager emulator: cloudresourcemanager v3 projects and their IAM policies, with etags."""
