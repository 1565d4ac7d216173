//! TLS material made in each test: a CA and a server certificate it signed
//! for `localhost` and 127.0.0.1. Nothing is committed, nothing expires
//! between runs.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A CA and a server certificate it signed.
#[derive(Clone, Debug)]
pub struct TestPki {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// The CA certificate, DER (for rustls root stores).
    pub ca_der: Vec<u8>,
    /// Server certificate for `localhost` and 127.0.0.1, PEM.
    pub cert_pem: String,
    /// The server certificate's private key, PEM.
    pub key_pem: String,
}

/// Where [`TestPki::write_to`] put the PEM files.
#[derive(Clone, Debug)]
pub struct PkiFiles {
    /// `ca.pem`
    pub ca: PathBuf,
    /// `server.pem`, for `--tls-cert`.
    pub cert: PathBuf,
    /// `server.key`, for `--tls-key`.
    pub key: PathBuf,
}

impl TestPki {
    /// A new CA and server certificate.
    pub fn generate() -> Self {
        let ca_key = KeyPair::generate().expect("the CA key is generated");
        let mut ca_params = CertificateParams::new(Vec::new()).expect("CA parameters are valid");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "workspace tests CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params
            .self_signed(&ca_key)
            .expect("the CA certificate is self-signed");
        let issuer = Issuer::new(ca_params, ca_key);

        let key = KeyPair::generate().expect("the server key is generated");
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .expect("server certificate parameters are valid");
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .signed_by(&key, &issuer)
            .expect("the server certificate is signed by the CA");

        Self {
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().to_vec(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// Writes `ca.pem`, `server.pem` and `server.key` into `dir`.
    pub fn write_to(&self, dir: &Path) -> PkiFiles {
        let files = PkiFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        };
        for (path, pem) in [
            (&files.ca, &self.ca_pem),
            (&files.cert, &self.cert_pem),
            (&files.key, &self.key_pem),
        ] {
            std::fs::write(path, pem)
                .unwrap_or_else(|e| panic!("{} is written: {e}", path.display()));
        }
        files
    }
}
