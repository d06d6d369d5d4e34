"""TLS settings of the HTTPS/WSS listeners: TLS 1.2 at least, and for
TLS 1.2 only ECDHE key exchange with AEAD ciphers (Mozilla's "intermediate"
profile without the DHE suites): no CBC, no SHA-1 MACs, no static RSA.
TLS 1.3's suites are all AEAD and are not affected by the cipher string."""

from __future__ import annotations

from typing import Any

from twisted.internet.ssl import AcceptableCiphers, CertificateOptions, TLSVersion

TLS12_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    )
)


def server_tls_options(private_key: Any, certificate: Any, chain: list) -> CertificateOptions:
    """Context options for a listener (pyOpenSSL key and certificates)."""
    return CertificateOptions(
        privateKey=private_key,
        certificate=certificate,
        extraCertChain=chain,
        raiseMinimumTo=TLSVersion.TLSv1_2,
        acceptableCiphers=AcceptableCiphers.fromOpenSSLCipherString(TLS12_CIPHERS),
    )
