//! A PostgreSQL server with TLS on, for the TLS tests: a process-wide
//! [`TempCluster`] with `ssl = on` and a certificate for `localhost`
//! signed by a test CA made here (rcgen), beside a second CA that signed
//! nothing (the wrong one) and a client certificate for `postgres`.
//!
//! The server's files (`server.crt`, `server.key` 0600, `root.crt` for
//! client certificates) go into its data directory, owned by its OS user;
//! `ALTER SYSTEM` and a reload turn TLS on. Database [`CLIENT_CERT_DB`]
//! takes only TLS connections that show a client certificate the CA
//! signed (`hostssl … clientcert=verify-ca`).
//!
//! ```no_run
//! let server = ringtrail_testkit::tls::server();
//! let db = server.database();
//! let url = server.url("localhost", &db, &format!(
//!     "sslmode=verify-full&sslrootcert={}", server.ca.display()
//! ));
//! # let _ = url;
//! ```

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use ringtrail_cluster::{ClusterOptions, TempCluster};

/// The database that requires a client certificate (see the module docs).
pub const CLIENT_CERT_DB: &str = "rt_clientcert";

/// The TLS server and the files a client needs.
#[derive(Debug)]
pub struct TlsServer {
    cluster: TempCluster,
    /// The CA that signed the server's (and the client's) certificate.
    pub ca: PathBuf,
    /// A CA that signed nothing here.
    pub wrong_ca: PathBuf,
    /// A client certificate for user `postgres`, signed by [`ca`](Self::ca).
    pub client_cert: PathBuf,
    /// Its key.
    pub client_key: PathBuf,
}

/// The process-wide TLS server, started on the first call. It is never
/// dropped: the cluster's watchdog removes it after the process exits.
pub fn server() -> &'static TlsServer {
    static SERVER: OnceLock<TlsServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        // Its own thread: the synchronous client must not run inside a
        // caller's tokio runtime.
        std::thread::spawn(start)
            .join()
            .expect("the TLS server starts")
    })
}

impl TlsServer {
    /// The TCP port (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.cluster.port()
    }

    /// A brand-new database; its name.
    pub fn database(&self) -> String {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!("rt_tls_{}", N.fetch_add(1, Ordering::Relaxed));
        self.cluster
            .create_database(&name)
            .expect("CREATE DATABASE");
        name
    }

    /// `postgres://postgres@{host}:{port}/{database}?{params}`. Give
    /// `localhost` for a host the certificate names (it resolves to the
    /// server's 127.0.0.1 through `hostaddr`), or `127.0.0.1` for one it
    /// does not.
    pub fn url(&self, host: &str, database: &str, params: &str) -> String {
        let hostaddr = if host == "127.0.0.1" {
            ""
        } else {
            "hostaddr=127.0.0.1&"
        };
        format!(
            "postgres://postgres@{host}:{}/{database}?{hostaddr}{params}",
            self.port()
        )
    }

    /// A plaintext URL of `database`, for the tests' own checks.
    pub fn plain_url(&self, database: &str) -> String {
        format!("{}?sslmode=disable", self.cluster.url_for(database))
    }
}

fn start() -> TlsServer {
    let cluster = TempCluster::start_with(&ClusterOptions {
        fsync: false,
        settings: Vec::new(),
    })
    .expect("a cluster for the TLS tests");
    let data = cluster.data_dir().to_owned();
    let owner = fs::metadata(&data).expect("the data directory");
    let write = |name: &str, text: &str| {
        let path = data.join(name);
        fs::write(&path, text).expect("write a TLS file");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        std::os::unix::fs::chown(&path, Some(owner.uid()), Some(owner.gid())).expect("chown");
        path
    };

    let (ca_pem, ca) = new_ca("ringtrail test CA");
    let (wrong_ca_pem, _) = new_ca("ringtrail wrong CA");
    let (server_pem, server_key) = leaf(&ca, "localhost", ExtendedKeyUsagePurpose::ServerAuth);
    let (client_pem, client_key) = leaf(&ca, "postgres", ExtendedKeyUsagePurpose::ClientAuth);
    write("server.crt", &server_pem);
    write("server.key", &server_key);
    write("root.crt", &ca_pem);
    let server = TlsServer {
        ca: write("test-ca.pem", &ca_pem),
        wrong_ca: write("test-wrong-ca.pem", &wrong_ca_pem),
        client_cert: write("test-client.crt", &client_pem),
        client_key: write("test-client.key", &client_key),
        cluster,
    };

    let hba = data.join("pg_hba.conf");
    let rules = fs::read_to_string(&hba).expect("pg_hba.conf");
    fs::write(
        &hba,
        format!(
            "hostssl {CLIENT_CERT_DB} all 127.0.0.1/32 trust clientcert=verify-ca\n\
             host {CLIENT_CERT_DB} all 0.0.0.0/0 reject\n{rules}"
        ),
    )
    .expect("pg_hba.conf");
    let admin = format!("{}?sslmode=disable", server.cluster.admin_url());
    let mut client = postgres::Client::connect(&admin, postgres::NoTls).expect("connect");
    for sql in [
        "ALTER SYSTEM SET ssl = on",
        "ALTER SYSTEM SET ssl_ca_file = 'root.crt'",
        "SELECT pg_reload_conf()",
    ] {
        client.batch_execute(sql).expect("turn TLS on");
    }
    server
        .cluster
        .create_database(CLIENT_CERT_DB)
        .expect("CREATE DATABASE");
    wait_for_ssl(&admin, &data);
    server
}

/// Waits until new sessions see `ssl = on` (the reload is asynchronous).
fn wait_for_ssl(admin: &str, data: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut client = postgres::Client::connect(admin, postgres::NoTls).expect("connect");
        let on: String = client.query_one("SHOW ssl", &[]).expect("SHOW ssl").get(0);
        if on == "on" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not turn TLS on; see its log beside {}",
            data.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A self-signed CA: its PEM and its issuer.
fn new_ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().expect("a key");
    let cert = params.self_signed(&key).expect("a CA certificate");
    (cert.pem(), Issuer::new(params, key))
}

/// A certificate for `name` (its common name, and its DNS name for a
/// server) signed by `ca`: its PEM and its key's PEM.
fn leaf(
    ca: &Issuer<'static, KeyPair>,
    name: &str,
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let names = match usage {
        ExtendedKeyUsagePurpose::ServerAuth => vec![name.to_owned()],
        _ => Vec::new(),
    };
    let mut params = CertificateParams::new(names).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().expect("a key");
    let cert = params.signed_by(&key, ca).expect("a certificate");
    (cert.pem(), key.serialize_pem())
}

/// A test CA and a server certificate for `localhost` it signed, as PEM
/// files in a directory of their own: for a TLS server under test
/// (`ringtrail serve --tls-cert --tls-key`).
#[derive(Debug)]
pub struct Certs {
    /// The CA's certificate, for the client to trust.
    pub ca_cert: PathBuf,
    /// The server's certificate (for `localhost`).
    pub server_cert: PathBuf,
    /// The server's private key.
    pub server_key: PathBuf,
}

impl Certs {
    /// Makes the files in a new directory under the temp dir.
    pub fn new() -> Certs {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ringtrail-certs-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).expect("a directory for the certificates");
        let (ca_pem, ca) = new_ca("ringtrail test CA");
        let (server_pem, server_key) = leaf(&ca, "localhost", ExtendedKeyUsagePurpose::ServerAuth);
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            fs::write(&path, text).expect("write a certificate file");
            path
        };
        Certs {
            ca_cert: write("ca.pem", &ca_pem),
            server_cert: write("server.crt", &server_pem),
            server_key: write("server.key", &server_key),
        }
    }
}

impl Default for Certs {
    fn default() -> Certs {
        Certs::new()
    }
}
