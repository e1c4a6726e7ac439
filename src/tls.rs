//! TLS to PostgreSQL: the one place a connection URL becomes connection
//! settings and a TLS connector.
//!
//! [`ConnectOptions::parse`] is used by every connection ringtrail makes:
//! the writer's pool, its probes and partition upkeep, every `ringtrail`
//! command ([`read::connect`](crate::read::connect)). It reads the URL's
//! TLS parameters the way libpq does, which `tokio_postgres::Config` alone
//! cannot (it knows `sslmode` only as `disable`, `prefer` and `require`,
//! and no `sslrootcert`):
//!
//! | `sslmode` | TLS | server certificate checked |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` (the default) | if the server offers it, else plaintext | no (the chain, with `sslrootcert`) |
//! | `require` | always | no (the chain, with `sslrootcert`: libpq's rule) |
//! | `verify-ca` | always | its chain, to `sslrootcert` (else the system's roots) |
//! | `verify-full` | always | its chain, and that it names the host |
//!
//! - `sslrootcert=<file>`: the CA certificates (PEM) to trust. Without it,
//!   `verify-ca` and `verify-full` trust the system's roots (as
//!   `rustls-native-certs` finds them: `SSL_CERT_FILE`, `SSL_CERT_DIR`, the
//!   distribution's bundle), where libpq would read `~/.postgresql/root.crt`.
//!   `sslrootcert=system` names the system's roots explicitly and, as in
//!   libpq 16, makes `verify-full` the default and anything weaker an
//!   error.
//! - `sslcert=<file>` and `sslkey=<file>` (PEM; together): a client
//!   certificate, for `clientcert=` in `pg_hba.conf` or `cert`
//!   authentication. Encrypted keys (`sslpassword`) are not supported.
//! - TLS is never used on a Unix socket (as in libpq): a URL whose hosts
//!   are all socket directories connects in plaintext whatever `sslmode`
//!   says.
//! - The `PGSSLMODE`-style environment variables are not read, and nothing
//!   is read from `~/.postgresql/`.
//!
//! rustls does the TLS, on the `aws-lc-rs` provider, offering TLS 1.2 and
//! 1.3 (with post-quantum key exchange where the server has it), and
//! SCRAM channel binding (`tls-server-end-point`). A connection that
//! goes out in plaintext to anything but a loopback address or a Unix
//! socket (`sslmode=disable`, or `prefer` to a server without TLS) prints
//! one `ringtrail: …` warning line on stderr, once per host and process.
//!
//! ```
//! use ringtrail::tls::{ConnectOptions, SslMode};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The production setup: TLS, the chain checked against your CA, and
//! // the certificate checked to name the host.
//! # let ca = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tls_fixtures/ca.pem");
//! let url = format!(
//!     "postgres://app@db.internal/app?sslmode=verify-full&sslrootcert={}",
//!     ca.display()
//! );
//! let options = ConnectOptions::parse(&url)?;
//! assert_eq!(options.ssl_mode(), SslMode::VerifyFull);
//! // What tokio-postgres sees: TLS required (the checks are the connector's).
//! assert_eq!(
//!     options.config().get_ssl_mode(),
//!     tokio_postgres::config::SslMode::Require
//! );
//!
//! // A missing CA file is a configuration error, found before connecting.
//! assert!(ConnectOptions::parse("postgres://db/app?sslmode=verify-ca&sslrootcert=/nope.pem").is_err());
//! # Ok(()) }
//! ```

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::config::Host;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{Client, Connection, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::Error;

/// How much TLS a connection needs, and what of the server's certificate
/// is checked: libpq's `sslmode` (see the [module docs](self)).
///
/// ```
/// use ringtrail::tls::SslMode;
///
/// assert_eq!("verify-full".parse::<SslMode>(), Ok(SslMode::VerifyFull));
/// assert_eq!(SslMode::default(), SslMode::Prefer);
/// assert_eq!(SslMode::VerifyCa.to_string(), "verify-ca");
/// assert!("allow".parse::<SslMode>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS if the server offers it, else plaintext; the certificate is not
    /// checked (its chain is, given `sslrootcert`). libpq's default.
    #[default]
    Prefer,
    /// TLS or no connection; the certificate is not checked (its chain is,
    /// given `sslrootcert`).
    Require,
    /// TLS, and the certificate's chain leads to a trusted root.
    VerifyCa,
    /// TLS, the chain leads to a trusted root, and the certificate names
    /// the host connected to. The one mode a man in the middle cannot
    /// pass.
    VerifyFull,
}

impl SslMode {
    /// The name in a URL: `disable`, `prefer`, `require`, `verify-ca` or
    /// `verify-full`.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An `sslmode` that is none of libpq's five (`allow` included: it would
/// try plaintext first, which ringtrail does not offer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSslMode(String);

impl fmt::Display for UnknownSslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown sslmode {:?} (disable, prefer, require, verify-ca or verify-full)",
            self.0
        )
    }
}

impl std::error::Error for UnknownSslMode {}

impl FromStr for SslMode {
    type Err = UnknownSslMode;

    fn from_str(s: &str) -> Result<SslMode, UnknownSslMode> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => return Err(UnknownSslMode(other.to_owned())),
        })
    }
}

/// The stream of a connection made through a [`Connector`].
pub type TlsStream = <Connector as MakeTlsConnect<Socket>>::Stream;

/// Where and how to connect: the `tokio_postgres::Config` and the TLS
/// [`Connector`] that carries out the URL's `sslmode`, `sslrootcert`,
/// `sslcert` and `sslkey`. Made by [`parse`](Self::parse), the one place
/// ringtrail reads a connection URL.
///
/// ```
/// use ringtrail::tls::{ConnectOptions, SslMode};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let url = ringtrail_cluster::fresh_database()?;
/// let options = ConnectOptions::parse(&url)?;
/// assert_eq!(options.ssl_mode(), SslMode::Prefer);
///
/// let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// rt.block_on(async {
///     let (client, connection) = options.connect().await?;
///     tokio::spawn(connection);
///     client.simple_query("SELECT 1").await?;
///     Ok::<_, tokio_postgres::Error>(())
/// })?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ConnectOptions {
    config: tokio_postgres::Config,
    connector: Connector,
    mode: SslMode,
}

impl ConnectOptions {
    /// Reads a `postgres://` (or `postgresql://`) URL or a `key=value`
    /// connection string: everything tokio-postgres reads, plus `sslmode`'s
    /// `verify-ca` and `verify-full`, `sslrootcert`, `sslcert` and
    /// `sslkey` (see the [module docs](self)). The certificate files are
    /// read now, so a missing one fails here rather than at each connect.
    ///
    /// ```
    /// use ringtrail::tls::{ConnectOptions, SslMode};
    ///
    /// let options = ConnectOptions::parse("host=db.internal dbname=app sslmode=require")?;
    /// assert_eq!(options.ssl_mode(), SslMode::Require);
    /// assert_eq!(options.config().get_dbname(), Some("app"));
    ///
    /// // TLS is never used on a Unix socket, as in libpq.
    /// let local = ConnectOptions::parse("postgres://app@%2Frun%2Fpostgresql/app?sslmode=require")?;
    /// assert_eq!(local.config().get_ssl_mode(), tokio_postgres::config::SslMode::Disable);
    ///
    /// // libpq's `sslmode=allow` is not offered.
    /// assert!(ConnectOptions::parse("postgres://db/app?sslmode=allow").is_err());
    /// # Ok::<(), ringtrail::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the URL does not parse, names an unknown
    /// `sslmode`, has `sslcert` without `sslkey` (or the other way round),
    /// or a certificate or key file cannot be read or holds none; the
    /// message never repeats the URL (it may hold a password).
    pub fn parse(url: &str) -> crate::Result<ConnectOptions> {
        let (rest, params) = take_tls_params(url)?;
        let mut config: tokio_postgres::Config = rest.parse().map_err(|e| {
            Error::Config(format!("bad PostgreSQL URL: {}", crate::error::chain(&e)))
        })?;
        let system_roots = params.rootcert.as_deref() == Some("system");
        let mode = match (params.mode, system_roots) {
            (None, true) => SslMode::VerifyFull,
            (Some(mode), true) if mode != SslMode::VerifyFull => {
                return Err(Error::Config(format!(
                    "sslrootcert=system needs sslmode=verify-full, not {mode}"
                )))
            }
            (mode, _) => mode.unwrap_or_default(),
        };
        let roots = match (&params.rootcert, mode) {
            (_, SslMode::Disable) => None,
            (Some(path), _) if path != "system" => Some(roots_from_file(path)?),
            (_, SslMode::VerifyCa | SslMode::VerifyFull) => Some(system_roots_store()?),
            _ => None,
        };
        let check = match (mode, roots) {
            (SslMode::VerifyFull, Some(roots)) => Check::Full(roots),
            (_, Some(roots)) => Check::Chain(roots),
            (_, None) => Check::Nothing,
        };
        let identity = match (&params.cert, &params.key) {
            (Some(cert), Some(key)) => Some(client_identity(cert, key)?),
            (None, None) => None,
            _ => {
                return Err(Error::Config(
                    "sslcert and sslkey go together: give both, or neither".to_owned(),
                ))
            }
        };
        let only_sockets = !config.get_hosts().is_empty()
            && config.get_hostaddrs().is_empty()
            && config.get_hosts().iter().all(is_socket);
        config.ssl_mode(match mode {
            _ if only_sockets => tokio_postgres::config::SslMode::Disable,
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        Ok(ConnectOptions {
            config,
            connector: Connector::new(check, identity, mode)?,
            mode,
        })
    }

    /// The URL's `sslmode` (`prefer` when it names none).
    pub fn ssl_mode(&self) -> SslMode {
        self.mode
    }

    /// The settings tokio-postgres connects with (its `sslmode` is
    /// `require` for `verify-*`: the checks are the [`Connector`]'s).
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// The settings, to change (an `application_name`, timeouts) before
    /// connecting.
    ///
    /// ```
    /// let mut options = ringtrail::tls::ConnectOptions::parse("postgres://db/app")?;
    /// options.config_mut().application_name("my-tool");
    /// assert_eq!(options.config().get_application_name(), Some("my-tool"));
    /// # Ok::<(), ringtrail::Error>(())
    /// ```
    pub fn config_mut(&mut self) -> &mut tokio_postgres::Config {
        &mut self.config
    }

    /// The TLS connector, for a pool or `tokio_postgres::Config::connect`.
    pub fn connector(&self) -> &Connector {
        &self.connector
    }

    /// The settings and the connector, apart.
    pub fn into_parts(self) -> (tokio_postgres::Config, Connector) {
        (self.config, self.connector)
    }

    /// Connects; the returned connection must be polled (spawned) for the
    /// client to make progress.
    ///
    /// # Errors
    ///
    /// The `tokio_postgres::Error` of a failed connect, TLS handshake
    /// (`sslmode=require` and a server without TLS, a certificate that
    /// fails its check) or login.
    pub async fn connect(
        &self,
    ) -> Result<(Client, Connection<Socket, TlsStream>), tokio_postgres::Error> {
        self.config.connect(self.connector.clone()).await
    }
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // tokio-postgres's Debug leaves the password out.
        f.debug_struct("ConnectOptions")
            .field("config", &self.config)
            .field("ssl_mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl FromStr for ConnectOptions {
    type Err = Error;

    fn from_str(url: &str) -> crate::Result<ConnectOptions> {
        ConnectOptions::parse(url)
    }
}

/// A `tokio_postgres::Config` made in code, with its own `sslmode`
/// (`disable`, `prefer` or `require`), and the certificate unchecked, as
/// libpq does without a root certificate. Parse a URL with
/// [`ConnectOptions::parse`] to check it.
///
/// ```
/// let mut config = tokio_postgres::Config::new();
/// config.host("db.internal").dbname("app").ssl_mode(tokio_postgres::config::SslMode::Require);
/// let options = ringtrail::tls::ConnectOptions::from(&config);
/// assert_eq!(options.ssl_mode(), ringtrail::tls::SslMode::Require);
/// ```
impl From<&tokio_postgres::Config> for ConnectOptions {
    fn from(config: &tokio_postgres::Config) -> ConnectOptions {
        let mode = match config.get_ssl_mode() {
            tokio_postgres::config::SslMode::Disable => SslMode::Disable,
            tokio_postgres::config::SslMode::Prefer => SslMode::Prefer,
            _ => SslMode::Require,
        };
        ConnectOptions {
            config: config.clone(),
            connector: Connector::new(Check::Nothing, None, mode)
                .expect("aws-lc-rs offers TLS 1.2 and 1.3, and no client certificate is set"),
            mode,
        }
    }
}

/// The TLS connector of a [`ConnectOptions`]: rustls, with the server
/// certificate checked as its `sslmode` says. Cheap to clone (the rustls
/// configuration is shared); hand it to `tokio_postgres::Config::connect`
/// or a pool.
#[derive(Clone)]
pub struct Connector {
    inner: MakeRustlsConnect,
    mode: SslMode,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("ssl_mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Connector {
    fn new(check: Check, identity: Option<Identity>, mode: SslMode) -> crate::Result<Connector> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let algorithms = provider.signature_verification_algorithms;
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Config(format!("TLS: {e}")))?;
        let builder = match check {
            Check::Full(roots) => builder.with_root_certificates(roots),
            Check::Chain(roots) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Verifier {
                    roots: Some(roots),
                    algorithms,
                })),
            Check::Nothing => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Verifier {
                    roots: None,
                    algorithms,
                })),
        };
        let mut config = match identity {
            Some((chain, key)) => builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::Config(format!("sslcert/sslkey: {e}")))?,
            None => builder.with_no_client_auth(),
        };
        // PostgreSQL 17's protocol name; older servers ignore it.
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(Connector {
            inner: MakeRustlsConnect::new(config),
            mode,
        })
    }
}

impl<S> MakeTlsConnect<S> for Connector
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = <MakeRustlsConnect as MakeTlsConnect<S>>::Stream;
    type TlsConnect = Attempt<<MakeRustlsConnect as MakeTlsConnect<S>>::TlsConnect>;
    type Error = <MakeRustlsConnect as MakeTlsConnect<S>>::Error;

    fn make_tls_connect(&mut self, host: &str) -> Result<Self::TlsConnect, Self::Error> {
        Ok(Attempt {
            inner: Some(MakeTlsConnect::<S>::make_tls_connect(
                &mut self.inner,
                host,
            )?),
            host: host.to_owned(),
            mode: self.mode,
        })
    }
}

/// One connection's TLS handshake, made by a [`Connector`] for each host
/// tokio-postgres tries. tokio-postgres makes it once the TCP connection
/// is up, and drops it unused when the session goes on in plaintext
/// (`sslmode=disable`, or `prefer` and a server without TLS): then it
/// warns, unless the host is a loopback address or a socket.
pub struct Attempt<T> {
    inner: Option<T>,
    host: String,
    mode: SslMode,
}

impl<S, T: TlsConnect<S>> TlsConnect<S> for Attempt<T> {
    type Stream = T::Stream;
    type Error = T::Error;
    type Future = T::Future;

    fn connect(mut self, stream: S) -> T::Future {
        self.inner
            .take()
            .expect("tokio-postgres connects an attempt once")
            .connect(stream)
    }
}

impl<T> Drop for Attempt<T> {
    fn drop(&mut self) {
        if self.inner.is_some() && matches!(self.mode, SslMode::Disable | SslMode::Prefer) {
            warn_plaintext(&self.host, self.mode);
        }
    }
}

/// One `ringtrail: …` line on stderr for a plaintext connection to `host`
/// (once per host and process), unless it is local.
fn warn_plaintext(host: &str, mode: SslMode) {
    static WARNED: Mutex<Vec<String>> = Mutex::new(Vec::new());
    if is_local(host) {
        return;
    }
    let mut warned = WARNED.lock().unwrap_or_else(PoisonError::into_inner);
    if warned.iter().any(|h| h == host) {
        return;
    }
    warned.push(host.to_owned());
    let why = match mode {
        SslMode::Disable => "sslmode=disable",
        _ => "sslmode=prefer, and the server offers no TLS",
    };
    eprintln!(
        "ringtrail: the connection to {host} is not encrypted ({why}): \
         use sslmode=verify-full (docs/tls.md)"
    );
}

/// A Unix socket (tokio-postgres names no host for one), `localhost`, or
/// a loopback address.
fn is_local(host: &str) -> bool {
    host.is_empty()
        || host.starts_with('/')
        || host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(unix)]
fn is_socket(host: &Host) -> bool {
    matches!(host, Host::Unix(_))
}

#[cfg(not(unix))]
fn is_socket(_: &Host) -> bool {
    false
}

/// What of the server's certificate is checked.
enum Check {
    /// Nothing (`prefer`, `require`): encryption against a passive
    /// listener only.
    Nothing,
    /// Its chain, to these roots, but not the name (`verify-ca`).
    Chain(Arc<RootCertStore>),
    /// Chain and name (`verify-full`): rustls' own WebPKI verifier.
    Full(Arc<RootCertStore>),
}

/// A client certificate chain and its key.
type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// The certificate check of `Check::Nothing` and `Check::Chain`. The
/// handshake's signatures are verified either way, so the server holds
/// the key of the certificate it shows.
#[derive(Debug)]
struct Verifier {
    /// `None`: any certificate.
    roots: Option<Arc<RootCertStore>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
            rustls::client::verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The CA certificates in the PEM file at `path`.
fn roots_from_file(path: &str) -> crate::Result<Arc<RootCertStore>> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path)
        .map_err(|e| Error::Config(format!("sslrootcert {path}: {e}")))?
    {
        let cert = cert.map_err(|e| Error::Config(format!("sslrootcert {path}: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| Error::Config(format!("sslrootcert {path}: {e}")))?;
    }
    if roots.is_empty() {
        return Err(Error::Config(format!(
            "sslrootcert {path}: no PEM certificate in it"
        )));
    }
    Ok(Arc::new(roots))
}

/// The system's trusted roots.
fn system_roots_store() -> crate::Result<Arc<RootCertStore>> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let why = found
            .errors
            .first()
            .map_or_else(|| "none found".to_owned(), ToString::to_string);
        return Err(Error::Config(format!(
            "no system root certificates to verify the server with ({why}): \
             name the CA with sslrootcert"
        )));
    }
    Ok(Arc::new(roots))
}

/// The certificate chain in `cert` and the private key in `key` (PEM).
fn client_identity(cert: &str, key: &str) -> crate::Result<Identity> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| Error::Config(format!("sslcert {cert}: {e}")))?;
    if chain.is_empty() {
        return Err(Error::Config(format!(
            "sslcert {cert}: no PEM certificate in it"
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| Error::Config(format!("sslkey {key}: {e}")))?;
    Ok((chain, key))
}

/// The URL's TLS parameters, which tokio-postgres does not read.
#[derive(Debug, Default, PartialEq, Eq)]
struct TlsParams {
    mode: Option<SslMode>,
    rootcert: Option<String>,
    cert: Option<String>,
    key: Option<String>,
}

impl TlsParams {
    /// Keeps `key`'s value if it is one of ours (a later one wins, as in
    /// tokio-postgres); false when it is not.
    fn take(&mut self, key: &str, value: String) -> crate::Result<bool> {
        match key {
            "sslmode" => {
                let mode = value
                    .parse()
                    .map_err(|e: UnknownSslMode| Error::Config(e.to_string()))?;
                self.mode = Some(mode);
            }
            "sslrootcert" => self.rootcert = Some(value),
            "sslcert" => self.cert = Some(value),
            "sslkey" => self.key = Some(value),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// `url` without the TLS parameters, and those parameters. A string that
/// does not parse is handed back whole, for tokio-postgres to say why.
fn take_tls_params(url: &str) -> crate::Result<(String, TlsParams)> {
    let mut params = TlsParams::default();
    let rest = ["postgres://", "postgresql://"]
        .iter()
        .find_map(|scheme| url.strip_prefix(scheme));
    let Some(rest) = rest else {
        let Some(pairs) = key_value_pairs(url) else {
            return Ok((url.to_owned(), params));
        };
        let mut kept = Vec::with_capacity(pairs.len());
        for (key, value) in pairs {
            if !params.take(key, value.clone())? {
                kept.push(format!(
                    "{key}='{}'",
                    value.replace('\\', "\\\\").replace('\'', "\\'")
                ));
            }
        }
        return Ok((kept.join(" "), params));
    };
    // As tokio-postgres reads a URL: the user info ends at the first `@`,
    // the query starts at the first `?` after it.
    let after_user = rest.find('@').map_or(0, |at| at + 1);
    let Some(question) = rest[after_user..].find('?') else {
        return Ok((url.to_owned(), params));
    };
    let question = url.len() - rest.len() + after_user + question;
    let mut kept = Vec::new();
    for pair in url[question + 1..].split('&') {
        let ours = match pair.split_once('=') {
            Some((key, value)) => match (percent_decode(key), percent_decode(value)) {
                (Some(key), Some(value)) => params.take(&key, value)?,
                _ => false,
            },
            None => false,
        };
        if !ours {
            kept.push(pair);
        }
    }
    let mut rebuilt = url[..question].to_owned();
    if !kept.is_empty() {
        rebuilt.push('?');
        rebuilt.push_str(&kept.join("&"));
    }
    Ok((rebuilt, params))
}

/// `%XX` escapes decoded (no `+` for a space, as in tokio-postgres);
/// `None` for a bad escape or text that is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The pairs of a `key=value` connection string, read as tokio-postgres
/// reads them (values bare or single-quoted, `\` escaping the next
/// character); `None` when it does not parse.
fn key_value_pairs(s: &str) -> Option<Vec<(&str, String)>> {
    let mut pairs = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Some(pairs);
        }
        let end = rest.find(|c: char| c.is_whitespace() || c == '=')?;
        let key = &rest[..end];
        rest = rest[end..].trim_start().strip_prefix('=')?.trim_start();
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let quoted = rest.starts_with('\'');
        if quoted {
            chars.next();
        }
        let mut consumed = rest.len();
        let mut closed = !quoted;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => value.push(chars.next()?.1),
                '\'' if quoted => {
                    consumed = i + 1;
                    closed = true;
                    break;
                }
                c if !quoted && c.is_whitespace() => {
                    consumed = i;
                    break;
                }
                c => value.push(c),
            }
        }
        if !closed || (!quoted && value.is_empty()) || key.is_empty() {
            return None;
        }
        pairs.push((key, value));
        rest = &rest[consumed..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(url: &str) -> (String, TlsParams) {
        take_tls_params(url).unwrap()
    }

    #[test]
    fn a_url_loses_its_tls_parameters_and_keeps_the_rest() {
        let (rest, params) = split(
            "postgres://u:p%3Fw@db:5433/app?application_name=x&sslmode=verify-full\
             &sslrootcert=%2Fetc%2Fca.pem&connect_timeout=3",
        );
        assert_eq!(
            rest,
            "postgres://u:p%3Fw@db:5433/app?application_name=x&connect_timeout=3"
        );
        assert_eq!(params.mode, Some(SslMode::VerifyFull));
        assert_eq!(params.rootcert.as_deref(), Some("/etc/ca.pem"));

        // A `?` in the password is not the query.
        let (rest, params) = split("postgres://u:a?b@db/app?sslmode=require");
        assert_eq!(rest, "postgres://u:a?b@db/app");
        assert_eq!(params.mode, Some(SslMode::Require));

        let (rest, params) = split("postgresql://db/app");
        assert_eq!(
            (rest.as_str(), params),
            ("postgresql://db/app", TlsParams::default())
        );
        let (rest, _) = split("postgres://db/app?sslcert=a&sslkey=b");
        assert_eq!(rest, "postgres://db/app");
    }

    #[test]
    fn a_key_value_string_is_rewritten_quoted() {
        let (rest, params) = split(
            " host=db  dbname = 'my app' password='it\\'s' sslmode=verify-ca sslrootcert=/ca.pem ",
        );
        assert_eq!(rest, r"host='db' dbname='my app' password='it\'s'");
        assert_eq!(params.mode, Some(SslMode::VerifyCa));
        assert_eq!(params.rootcert.as_deref(), Some("/ca.pem"));
        let config: tokio_postgres::Config = rest.parse().unwrap();
        assert_eq!(config.get_dbname(), Some("my app"));
        assert_eq!(config.get_password(), Some(&b"it's"[..]));

        // Malformed: handed back whole for tokio-postgres to refuse.
        for bad in ["host", "host=", "host='db", "=db"] {
            assert_eq!(split(bad).0, bad);
        }
    }

    #[test]
    fn modes_map_to_what_tokio_postgres_knows() {
        use tokio_postgres::config::SslMode as Pg;
        for (mode, pg) in [
            ("disable", Pg::Disable),
            ("prefer", Pg::Prefer),
            ("require", Pg::Require),
            ("verify-full", Pg::Require),
        ] {
            let url = format!("postgres://127.0.0.1/app?sslmode={mode}");
            let options = ConnectOptions::parse(&url).unwrap();
            assert_eq!(options.ssl_mode().as_str(), mode);
            assert_eq!(options.config().get_ssl_mode(), pg, "{mode}");
        }
        let options = ConnectOptions::parse("postgres://127.0.0.1/app").unwrap();
        assert_eq!(options.ssl_mode(), SslMode::Prefer);
    }

    #[test]
    fn socket_directory_hosts_never_use_tls() {
        use std::path::Path;
        use tokio_postgres::config::{Host, SslMode as Pg};
        // The local store's form (crates/cluster: `LocalStore::url`), and
        // the same as a URL with the directory percent-encoded.
        for url in [
            "host='/var/lib/my store/run' port=5432 user='postgres' password='it\\'s' \
             dbname='ringtrail' sslmode=disable",
            "host=/var/lib/ringtrail/run port=5432 dbname=ringtrail sslmode=prefer",
            "postgresql://postgres:pw@%2Fvar%2Flib%2Fringtrail%2Frun:5432/ringtrail?sslmode=prefer",
            "postgresql://postgres@%2Fvar%2Flib%2Fringtrail%2Frun/ringtrail",
        ] {
            let options = ConnectOptions::parse(url).unwrap();
            let config = options.config();
            assert!(
                matches!(config.get_hosts(), [Host::Unix(dir)] if dir.starts_with("/var/lib")),
                "{url}: {:?}",
                config.get_hosts()
            );
            assert_eq!(config.get_ssl_mode(), Pg::Disable, "{url}");
            assert_eq!(config.get_dbname(), Some("ringtrail"), "{url}");
        }
        let options = ConnectOptions::parse(
            "host='/var/lib/my store/run' user=postgres password='it\\'s' dbname=ringtrail",
        )
        .unwrap();
        assert_eq!(
            options.config().get_hosts(),
            [Host::Unix(Path::new("/var/lib/my store/run").into())]
        );
        assert_eq!(options.config().get_password(), Some(&b"it's"[..]));
    }

    #[test]
    fn bad_tls_parameters_are_configuration_errors_without_the_url() {
        for (url, needle) in [
            (
                "postgres://u:secret@db/app?sslmode=allow",
                "unknown sslmode \"allow\"",
            ),
            (
                "postgres://u:secret@db/app?sslmode=verify-ca&sslrootcert=/no/such.pem",
                "sslrootcert /no/such.pem",
            ),
            (
                "postgres://u:secret@db/app?sslcert=/a.pem",
                "sslcert and sslkey go together",
            ),
            (
                "postgres://u:secret@db/app?sslrootcert=system&sslmode=require",
                "needs sslmode=verify-full",
            ),
            ("postgres://u:secret@db:port/app", "bad PostgreSQL URL"),
        ] {
            let err = ConnectOptions::parse(url).unwrap_err();
            let text = err.to_string();
            assert!(matches!(err, Error::Config(_)), "{url}: {err:?}");
            assert!(text.contains(needle), "{url}: {text}");
            assert!(!text.contains("secret"), "{text}");
        }
    }

    #[test]
    fn local_hosts_are_not_warned_about() {
        for host in [
            "",
            "/run/postgresql",
            "localhost",
            "127.0.0.1",
            "::1",
            "[::1]",
        ] {
            assert!(is_local(host), "{host}");
        }
        for host in ["db.internal", "10.0.0.5", "::2"] {
            assert!(!is_local(host), "{host}");
        }
    }
}
