"""Naming rules of the APIs a spec names things in: each check returns None, or what is wrong and what would be right."""

from __future__ import annotations

import ipaddress
import re

_PROJECT_ID = re.compile(r"[a-z][a-z0-9-]*[a-z0-9]")
_GKE_NAME = re.compile(r"[a-z]([a-z0-9-]*[a-z0-9])?")
_REGION = re.compile(r"[a-z]+-[a-z]+[0-9]+")
_ZONE = re.compile(r"(?P<region>[a-z]+-[a-z]+[0-9]+)-[a-z]")
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SERVICE_ACCOUNT_ID = re.compile(r"[a-z][-a-z0-9]*[a-z0-9]")
_ROLE = re.compile(r"roles/[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)+|(projects|organizations)/[a-z0-9-]+/roles/[A-Za-z0-9_.]+")
_BUCKET_CHARS = re.compile(r"[a-z0-9._-]+")
_GCS_LABEL_CHARS = re.compile(r"[\w-]*", re.UNICODE)
_SAX_NAME = re.compile(r"[a-z]+[a-z0-9_-]*")  # saxml/common/naming.go: ^[a-z]+[a-z0-9-_]*$
_PYTHON_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")
_MACHINE_TYPE = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)+")
# Google Cloud Storage multi-regions and predefined dual-regions; anything else must be a region name.
_GCS_MULTI_LOCATIONS = {"US", "EU", "ASIA", "NAM4", "EUR4", "EUR5", "EUR7", "EUR8", "ASIA1"}

# The distribution/reference grammar Docker and containerd use for image references.
_IMAGE_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_DOMAIN = r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])(?:\.(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]))*(?::[0-9]+)?"
_IMAGE = re.compile(
    rf"(?:(?P<domain>{_IMAGE_DOMAIN})/)?(?P<path>{_IMAGE_COMPONENT}(?:/{_IMAGE_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?"
)


def project_id(value: str) -> str | None:
    if not 6 <= len(value) <= 30:
        return f"project id '{value}' has {len(value)} characters; it must have 6 to 30"
    if not _PROJECT_ID.fullmatch(value):
        return (f"project id '{value}' is not valid: use lowercase letters, digits and hyphens, "
                "starting with a letter and not ending with a hyphen")
    return None


def region(value: str) -> str | None:
    if _ZONE.fullmatch(value):
        return f"'{value}' is a zone; project.region takes a region like {_ZONE.fullmatch(value)['region']}"
    if not _REGION.fullmatch(value):
        return f"'{value}' is not a region name like us-central1 or europe-west4"
    return None


def zone_region(value: str) -> str | None:
    """The region of a zone name (us-central1-a → us-central1), or None when value is not a zone."""
    match = _ZONE.fullmatch(value)
    return match["region"] if match else None


def is_region(value: str) -> bool:
    return _REGION.fullmatch(value) is not None


def gke_name(value: str, what: str) -> str | None:
    """GKE cluster and node pool names: at most 40 characters, [a-z]([-a-z0-9]*[a-z0-9])?."""
    if len(value) > 40:
        return f"{what} '{value}' has {len(value)} characters; GKE allows at most 40"
    if not _GKE_NAME.fullmatch(value):
        return (f"{what} '{value}' is not valid for GKE: use lowercase letters, digits and hyphens, "
                "starting with a letter and ending with a letter or digit")
    return None


def machine_type(value: str) -> str | None:
    if not _MACHINE_TYPE.fullmatch(value):
        return f"'{value}' is not a Compute Engine machine type like e2-standard-4"
    return None


def dns1123_label(value: str, what: str) -> str | None:
    if len(value) > 63:
        return f"{what} '{value}' has {len(value)} characters; at most 63 are allowed"
    if not _DNS1123_LABEL.fullmatch(value):
        return (f"{what} '{value}' is not a DNS-1123 label: use lowercase letters, digits and '-', "
                "starting and ending with a letter or digit")
    return None


def dns1123_subdomain(value: str, what: str) -> str | None:
    if len(value) > 253:
        return f"{what} '{value}' has {len(value)} characters; at most 253 are allowed"
    if not all(_DNS1123_LABEL.fullmatch(part) for part in value.split(".")):
        return (f"{what} '{value}' is not a DNS-1123 subdomain: use lowercase letters, digits, '-' and '.', "
                "each dot-separated part starting and ending with a letter or digit")
    return None


def service_account_id(value: str) -> str | None:
    if not 6 <= len(value) <= 30:
        return f"service account id '{value}' has {len(value)} characters; it must have 6 to 30"
    if not _SERVICE_ACCOUNT_ID.fullmatch(value):
        return (f"service account id '{value}' is not valid: use lowercase letters, digits and hyphens, "
                "starting with a letter and ending with a letter or digit")
    return None


def role(value: str) -> str | None:
    if not _ROLE.fullmatch(value):
        return (f"'{value}' is not an IAM role: write roles/SERVICE.ROLE (e.g. roles/storage.admin), "
                "projects/PROJECT/roles/ROLE or organizations/ORG/roles/ROLE")
    return None


def bucket_name(value: str) -> str | None:
    """Cloud Storage bucket naming rules (https://cloud.google.com/storage/docs/buckets#naming)."""
    if not _BUCKET_CHARS.fullmatch(value):
        return f"bucket name '{value}' may hold only lowercase letters, digits, '-', '_' and '.'"
    limit = 222 if "." in value else 63
    if not 3 <= len(value) <= limit:
        return f"bucket name '{value}' has {len(value)} characters; it must have 3 to {limit}"
    if "." in value:
        parts = value.split(".")
        if any(not part for part in parts):
            return f"bucket name '{value}' has an empty part between dots"
        too_long = [part for part in parts if len(part) > 63]
        if too_long:
            return f"bucket name '{value}' has a dot-separated part longer than 63 characters"
    if not (value[0].isalnum() and value[-1].isalnum()):
        return f"bucket name '{value}' must start and end with a letter or digit"
    if _is_ip_address(value):
        return f"bucket name '{value}' must not be an IP address"
    if value.startswith("goog"):
        return f"bucket name '{value}' must not start with 'goog'"
    if "google" in value or "g00gle" in value:
        return f"bucket name '{value}' must not contain 'google'"
    return None


def _is_ip_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def bucket_location(value: str) -> str | None:
    if value.upper() in _GCS_MULTI_LOCATIONS or _REGION.fullmatch(value.lower()):
        return None
    return (f"'{value}' is not a Cloud Storage location: use a multi-region (US, EU, ASIA), "
            "a dual-region (NAM4, EUR4...) or a region (us-central1)")


def gcs_label_key(value: str) -> str | None:
    if not 1 <= len(value) <= 63:
        return f"label key '{value}' has {len(value)} characters; it must have 1 to 63"
    if not (value[0].isalpha() and value[0].islower()) or not _gcs_label_chars(value):
        return (f"label key '{value}' is not valid: start with a lowercase letter, then use lowercase letters, "
                "digits, '_' and '-'")
    return None


def gcs_label_value(value: str, key: str) -> str | None:
    if len(value) > 63:
        return f"label '{key}' has a value of {len(value)} characters; at most 63 are allowed"
    if not _gcs_label_chars(value):
        return f"label '{key}' has the value '{value}'; use only lowercase letters, digits, '_' and '-'"
    return None


def _gcs_label_chars(value: str) -> bool:
    # GCS accepts international lowercase letters too, hence \w minus upper case.
    return _GCS_LABEL_CHARS.fullmatch(value) is not None and value == value.lower()


def sax_cell(value: str) -> str | None:
    parts = value.split("/")
    if len(parts) != 3 or parts[0] != "" or parts[1] != "sax":
        return f"'{value}' is not a Sax cell: write /sax/NAME, e.g. /sax/test"
    if not parts[2]:
        return f"'{value}' has no cell name: write /sax/NAME, e.g. /sax/test"
    if not _SAX_NAME.fullmatch(parts[2]):
        return f"cell name '{parts[2]}' is not valid for Sax: use [a-z][a-z0-9_-]*, e.g. /sax/test"
    return None


def sax_model_name(value: str) -> str | None:
    if not _SAX_NAME.fullmatch(value):
        return f"model name '{value}' is not valid for Sax: use [a-z][a-z0-9_-]* (lowercase, starting with a letter)"
    return None


def python_dotted_path(value: str) -> str | None:
    if not _PYTHON_DOTTED.fullmatch(value):
        return (f"'{value}' is not a Python class path like "
                "saxml.server.pax.lm.params.gptj.GPTJ4BF16BS32")
    return None


def image_reference(value: str) -> str | None:
    match = _IMAGE.fullmatch(value)
    if match is None:
        if value != value.strip():
            return f"image '{value}' has leading or trailing spaces"
        if _IMAGE.fullmatch(value.lower()):
            return f"image '{value}' is not a valid reference: the repository path must be lowercase"
        return (f"image '{value}' is not a valid reference: write REGISTRY/PATH:TAG, "
                "e.g. us-docker.pkg.dev/cloud-tpu-images/inference/sax-admin-server:v1.1.0")
    name = f"{match['domain']}/{match['path']}" if match["domain"] else match["path"]
    if len(name) > 255:
        return f"image '{value}' has a repository name of {len(name)} characters; at most 255 are allowed"
    return None


def gs_url(value: str) -> tuple[str, str] | None:
    """(bucket, object path) of a gs:// URL, or None when value is not one."""
    if not value.startswith("gs://"):
        return None
    bucket, _, object_path = value[len("gs://"):].partition("/")
    return bucket, object_path
