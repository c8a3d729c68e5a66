"""What a cluster object says about its control plane: `endpoint` and `masterAuth.clusterCaCertificate`."""

from __future__ import annotations

import base64
import datetime
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from reconciler.sandbox.base.ids import hex_id


@dataclass(frozen=True, slots=True)
class KubeAccess:
    """The sandbox apiserver's address and CA, or None: then each cluster gets its own made-up address."""

    endpoint: str | None  # host[:port], as GKE's `endpoint` (clients connect to https://ENDPOINT)
    ca_certificate: str  # base64 of the PEM, as GKE's masterAuth.clusterCaCertificate

    def endpoint_of(self, cluster_name: str) -> str:
        if self.endpoint is not None:
            return self.endpoint
        digest = hex_id(cluster_name, length=6)
        return f"34.{int(digest[:2], 16)}.{int(digest[2:4], 16)}.{int(digest[4:], 16)}"


def kube_access(endpoint_url: str | None, ca_file: Path | None, generated_ca: Path) -> KubeAccess:
    """From --kube-endpoint / --kube-ca-file; without a CA file, a CA generated once and kept at `generated_ca`."""
    endpoint = None
    if endpoint_url:
        parts = urlsplit(endpoint_url if "://" in endpoint_url else f"https://{endpoint_url}")
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"--kube-endpoint must be an https:// URL, got {endpoint_url!r}")
        endpoint = parts.netloc
    if ca_file is not None:
        pem = ca_file.read_bytes()
        if b"-----BEGIN CERTIFICATE-----" not in pem:
            raise ValueError(f"--kube-ca-file {ca_file} holds no PEM certificate")
    else:
        pem = generated_ca.read_bytes() if generated_ca.is_file() else _new_ca(generated_ca)
    return KubeAccess(endpoint, base64.b64encode(pem).decode())


def _new_ca(path: Path) -> bytes:
    """A self-signed CA certificate (its key is thrown away: nothing is signed with it, it only has to parse)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "saxctl sandbox GKE CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now)
                   .not_valid_after(now + datetime.timedelta(days=3650))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pem)
    return pem
