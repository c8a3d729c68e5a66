"""Certificates and keys of the sandbox's control plane: a CA, a serving certificate for 127.0.0.1, the apiserver's
kubelet client certificate, the service-account key pair. Made once per state dir and kept, so a cluster's CA stays
the same across restarts."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from reconciler.sandbox.kube import files

_VALID_FOR = datetime.timedelta(days=3650)  # a sandbox's PKI lives as long as its state dir


@dataclass(frozen=True, slots=True)
class Pki:
    ca_cert: Path
    ca_key: Path
    serving_cert: Path  # served by kube-apiserver, by controller-manager and scheduler on their health ports, and by
    serving_key: Path  # kwok as every node's kubelet (all listen on 127.0.0.1, the address the certificate names)
    kubelet_client_cert: Path  # what kube-apiserver presents to a kubelet (kwok) for logs and port-forward
    kubelet_client_key: Path
    service_account_key: Path  # signs service-account tokens (apiserver, controller-manager)
    service_account_public_key: Path  # verifies them (apiserver)

    @classmethod
    def at(cls, directory: Path) -> Pki:
        return cls(ca_cert=directory / "ca.crt", ca_key=directory / "ca.key", serving_cert=directory / "serving.crt",
                   serving_key=directory / "serving.key",
                   kubelet_client_cert=directory / "kubelet-client.crt",
                   kubelet_client_key=directory / "kubelet-client.key",
                   service_account_key=directory / "service-account.key",
                   service_account_public_key=directory / "service-account.pub")

    def files(self) -> tuple[Path, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)


def ensure(directory: Path) -> Pki:
    """The PKI in `directory`, made first if any file of it is missing (then all of it is made anew)."""
    pki = Pki.at(directory)
    if not all(path.is_file() for path in pki.files()):
        _make(pki)
    return pki


def _make(pki: Pki) -> None:
    # Imported here: only `sandbox up` needs it, and it costs every other command its import time.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    # ECDSA P-256 throughout: made in a millisecond (RSA 2048 takes ~100 ms each), and every process here accepts
    # it, the service-account signer included (tokens signed ES256).
    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)  # tolerate clock skew
    ca_key, serving_key, client_key, sa_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(4))
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "saxctl sandbox CA")])
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now).not_valid_after(now + _VALID_FOR)
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                            content_commitment=False, key_encipherment=False, data_encipherment=False,
                                            key_agreement=False, encipher_only=False, decipher_only=False),
                              critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
               .sign(ca_key, hashes.SHA256()))

    def leaf(common_name: str, key, usage, *extensions):
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
                   .issuer_name(ca_name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now).not_valid_after(now + _VALID_FOR)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                                  critical=False))
        for extension in extensions:
            builder = builder.add_extension(extension, critical=False)
        return builder.sign(ca_key, hashes.SHA256())

    serving_cert = leaf("kube-apiserver", serving_key, ExtendedKeyUsageOID.SERVER_AUTH,
                        x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                     x509.DNSName("localhost")]))
    # kubeadm's name for it: a kubelet authorizes the apiserver's requests by it (kwok checks none).
    client_cert = leaf("kube-apiserver-kubelet-client", client_key, ExtendedKeyUsageOID.CLIENT_AUTH)

    def private(key) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    files.private_directory(pki.ca_cert.parent)
    files.write(pki.ca_key, private(ca_key), secret=True)
    files.write(pki.serving_key, private(serving_key), secret=True)
    files.write(pki.kubelet_client_key, private(client_key), secret=True)
    files.write(pki.service_account_key, private(sa_key), secret=True)
    files.write(pki.service_account_public_key, sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo), secret=False)
    files.write(pki.serving_cert, serving_cert.public_bytes(serialization.Encoding.PEM), secret=False)
    files.write(pki.kubelet_client_cert, client_cert.public_bytes(serialization.Encoding.PEM), secret=False)
    files.write(pki.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM), secret=False)

