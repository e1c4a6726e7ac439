//! The checkpoint signing key: Ed25519, named, in the text forms of C2SP
//! signed notes (the Go `golang.org/x/mod/sumdb/note` keys).
//!
//! | form | text |
//! |---|---|
//! | private key | `PRIVATE+KEY+<name>+<key id, 8 hex>+<base64(0x01 ‖ 32-byte seed)>` |
//! | public (verifier) key | `<name>+<key id, 8 hex>+<base64(0x01 ‖ 32-byte public key)>` |
//!
//! The key id is the first 4 bytes of `SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)`
//! (0x01 is Ed25519's signature type). A name is non-empty, without `+`
//! and without white space.
//!
//! Where the key comes from, in the writer's order:
//!
//! 1. the Builder ([`SigningKey::parse`] or [`SigningKey::from_seed`]);
//! 2. the environment variable [`KEY_ENV`], `RINGTRAIL_CHECKPOINT_KEY`,
//!    holding either the private-key form above or the base64 of a bare
//!    32-byte seed (named [`DEFAULT_KEY_NAME`] then);
//! 3. a key file ([`SigningKey::load_or_generate`]): read when it exists
//!    (either form; refused when it is a symbolic link, not a regular
//!    file, owned by another user, or when group or others have any
//!    access to it), else generated from the operating system's
//!    randomness and written with mode 0600 (created atomically: two
//!    processes starting at once end up with one key; a missing directory
//!    is made 0700), its public key written beside it as `<path>.pub`
//!    (mode 0644: a public key is for anyone to read; never written
//!    through a symbolic link). The writer's default key file is
//!    [`default_key_path`], in a per-user directory, never beside the
//!    checkpoint file.
//!
//! The secret never leaves this module as text except into that file:
//! [`SigningKey`]'s `Debug` shows the name and the public key only. Print
//! [`VerifierKey`] (its `Display`) to tell people the public key.
//!
//! ```
//! use ringtrail::chain::key::{SigningKey, VerifierKey};
//!
//! let key = SigningKey::from_seed("ringtrail", [7; 32]).unwrap();
//! let public = key.verifier().to_string();
//! assert!(public.starts_with("ringtrail+"));
//! let verifier: VerifierKey = public.parse().unwrap();
//! let sig = key.sign(b"hello\n");
//! assert!(verifier.verify(b"hello\n", &sig));
//! assert!(!verifier.verify(b"hellO\n", &sig));
//! assert!(!format!("{key:?}").contains("PRIVATE"));
//! ```

use std::fmt;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::Signer as _;
use sha2::{Digest, Sha256};

use crate::files::{
    check_owned_file, create_private_dir_all, is_symlink_error, private_nonblocking_options,
    private_options, NotPrivate,
};

/// The environment variable the writer reads a signing key from.
pub const KEY_ENV: &str = "RINGTRAIL_CHECKPOINT_KEY";

/// The key name of a bare seed (from [`KEY_ENV`] or a key file).
pub const DEFAULT_KEY_NAME: &str = "ringtrail";

/// The largest key file read: a key is some 100 bytes.
const MAX_KEY_FILE: u64 = 4096;

/// The per-user signing key the writer uses with a checkpoint file when no
/// other is given: `$XDG_DATA_HOME/ringtrail/checkpoint.key`, else
/// `$HOME/.local/share/ringtrail/checkpoint.key` (only absolute values
/// count, as the XDG base directory specification says); `None` when
/// neither is set. Its directory is made 0700. Kept away from the
/// checkpoint file on purpose: whoever may write where the checkpoints are
/// kept must not be able to swap, or read, the key that signs them.
pub fn default_key_path() -> Option<PathBuf> {
    let absolute = |var: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    let data = absolute("XDG_DATA_HOME")
        .or_else(|| absolute("HOME").map(|home| home.join(".local/share")))?;
    Some(data.join("ringtrail").join("checkpoint.key"))
}

/// C2SP signed-note signature type of Ed25519.
const ALG_ED25519: u8 = 0x01;

/// Why a key could not be had.
#[derive(Debug)]
#[non_exhaustive]
pub enum KeyError {
    /// The text is not a key in either accepted form (says which part;
    /// never quotes the text, which may hold a secret).
    Malformed(&'static str),
    /// The key name is empty, or has `+` or white space.
    BadName,
    /// The key file may be read by group or others (its mode is given):
    /// it is not used.
    Permissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file (or its `.pub`) is a symbolic link, not a regular
    /// file, or owned by another user: it is not used.
    NotPrivate {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading or writing the key file failed.
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The operating system gave no randomness for a new key.
    Random(getrandom::Error),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Malformed(what) => write!(f, "not a checkpoint key: {what}"),
            KeyError::BadName => {
                f.write_str("a key name must be non-empty, without '+' or white space")
            }
            KeyError::Permissions { path, mode } => write!(
                f,
                "key file {} has mode {mode:o}; it must be readable by its owner only (chmod 600)",
                path.display()
            ),
            KeyError::NotPrivate { path, reason } => write!(
                f,
                "key file {} {reason}; it must be a regular file of this user's, not a link",
                path.display()
            ),
            KeyError::Io { path, .. } => write!(f, "key file {}", path.display()),
            KeyError::Random(e) => write!(f, "no randomness for a new key: {e}"),
        }
    }
}

impl std::error::Error for KeyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KeyError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn check_name(name: &str) -> Result<(), KeyError> {
    if name.is_empty() || name.contains('+') || name.chars().any(char::is_whitespace) {
        return Err(KeyError::BadName);
    }
    Ok(())
}

/// The 4-byte key id of `name`'s Ed25519 `public` key.
fn key_id(name: &str, public: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ALG_ED25519]);
    h.update(public);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// `<name>+<id hex>+<base64(0x01 ‖ key)>` split and checked: the name,
/// the id and the 32 key bytes.
fn split_key(text: &str) -> Result<(&str, [u8; 4], [u8; 32]), KeyError> {
    let mut parts = text.splitn(3, '+');
    let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(KeyError::Malformed("expected name+id+key"));
    };
    check_name(name)?;
    if id.len() != 8 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(KeyError::Malformed(
            "the key id is not 8 hexadecimal digits",
        ));
    }
    let id = u32::from_str_radix(id, 16)
        .map_err(|_| KeyError::Malformed("the key id is not 8 hexadecimal digits"))?
        .to_be_bytes();
    let raw = B64
        .decode(key)
        .map_err(|_| KeyError::Malformed("the key is not base64"))?;
    match raw.split_first() {
        Some((&ALG_ED25519, bytes)) => {
            let bytes: [u8; 32] = bytes
                .try_into()
                .map_err(|_| KeyError::Malformed("an Ed25519 key is 32 bytes"))?;
            Ok((name, id, bytes))
        }
        _ => Err(KeyError::Malformed("not an Ed25519 key (type 0x01)")),
    }
}

/// The key checkpoints are signed with (see the [module docs](self)).
pub struct SigningKey {
    name: String,
    key: ed25519_dalek::SigningKey,
    id: [u8; 4],
}

impl fmt::Debug for SigningKey {
    // Never the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("verifier", &self.verifier().to_string())
            .finish_non_exhaustive()
    }
}

/// A key read or made by [`SigningKey::load_or_generate`].
#[derive(Debug)]
pub struct LoadedKey {
    /// The key.
    pub key: SigningKey,
    /// True when it was generated (and written) just now: print
    /// [`SigningKey::verifier`] for people to keep.
    pub generated: bool,
    /// Where its public key is: `<path>.pub`.
    pub public_path: PathBuf,
}

impl SigningKey {
    /// The key of a 32-byte Ed25519 seed, named `name`.
    ///
    /// # Errors
    ///
    /// [`KeyError::BadName`].
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<SigningKey, KeyError> {
        check_name(name)?;
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let id = key_id(name, key.verifying_key().as_bytes());
        Ok(SigningKey {
            name: name.to_owned(),
            key,
            id,
        })
    }

    /// A new random key from the operating system.
    ///
    /// # Errors
    ///
    /// [`KeyError::BadName`], [`KeyError::Random`].
    pub fn generate(name: &str) -> Result<SigningKey, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(KeyError::Random)?;
        let key = SigningKey::from_seed(name, seed);
        seed.fill(0);
        key
    }

    /// Parses `PRIVATE+KEY+<name>+<id>+<base64>`, or the base64 of a bare
    /// 32-byte seed, which is named `default_name`. White space around the
    /// text is ignored.
    ///
    /// # Errors
    ///
    /// [`KeyError::Malformed`] (a key id that does not match counts), or
    /// [`KeyError::BadName`].
    pub fn parse(text: &str, default_name: &str) -> Result<SigningKey, KeyError> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix("PRIVATE+KEY+") {
            let (name, id, seed) = split_key(rest)?;
            let key = SigningKey::from_seed(name, seed)?;
            if key.id != id {
                return Err(KeyError::Malformed("the key id does not match the key"));
            }
            return Ok(key);
        }
        let seed = B64
            .decode(text)
            .map_err(|_| KeyError::Malformed("neither PRIVATE+KEY+… nor base64"))?;
        let seed: [u8; 32] = seed
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::Malformed("a bare seed is 32 bytes of base64"))?;
        SigningKey::from_seed(default_name, seed)
    }

    /// The key in [`KEY_ENV`], if that variable is set (and not empty).
    ///
    /// # Errors
    ///
    /// As [`parse`](Self::parse), when the variable holds no key.
    pub fn from_env(default_name: &str) -> Result<Option<SigningKey>, KeyError> {
        match std::env::var(KEY_ENV) {
            Ok(text) if !text.trim().is_empty() => SigningKey::parse(&text, default_name).map(Some),
            _ => Ok(None),
        }
    }

    /// Reads the key file at `path` (see [`load`](Self::load) for what is
    /// refused), or, when there is none, generates a key named `name`,
    /// writes it there with mode 0600 (a missing directory made 0700) and
    /// its public key to `<path>.pub` (written again when it is missing
    /// beside an existing key).
    ///
    /// # Errors
    ///
    /// [`KeyError::Io`], [`KeyError::Permissions`],
    /// [`KeyError::NotPrivate`], a malformed file.
    pub fn load_or_generate(path: &Path, name: &str) -> Result<LoadedKey, KeyError> {
        let public_path = public_path(path);
        let io = |source| KeyError::Io {
            path: path.to_owned(),
            source,
        };
        // Not followed: a link is there, and `load` refuses it.
        match std::fs::symlink_metadata(path) {
            Ok(_) => {
                let key = SigningKey::load(path, name)?;
                if std::fs::symlink_metadata(&public_path).is_err() {
                    write_public(&public_path, &key)?;
                }
                return Ok(LoadedKey {
                    key,
                    generated: false,
                    public_path,
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let key = SigningKey::generate(name)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir_all(dir).map_err(io)?;
        }
        // Written whole to a private temporary file, then linked into
        // place: the path never shows a half-written key, and if another
        // process got there first its key wins and is read back.
        let tmp = sibling(path, &format!(".tmp.{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let written = write_private(&tmp, &key.private_text()).and_then(|()| {
            let linked = std::fs::hard_link(&tmp, path);
            let _ = std::fs::remove_file(&tmp);
            linked
        });
        match written {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let key = SigningKey::load(path, name)?;
                return Ok(LoadedKey {
                    key,
                    generated: false,
                    public_path,
                });
            }
            Err(e) => return Err(io(e)),
        }
        write_public(&public_path, &key)?;
        Ok(LoadedKey {
            key,
            generated: true,
            public_path,
        })
    }

    /// Reads a key file (either text form; a bare seed is named
    /// `default_name`). It is opened without following a symbolic link,
    /// and refused unless it is a regular file owned by this process's
    /// user to which group and others have no access.
    ///
    /// # Errors
    ///
    /// [`KeyError::Io`], [`KeyError::Permissions`],
    /// [`KeyError::NotPrivate`], a malformed file.
    pub fn load(path: &Path, default_name: &str) -> Result<SigningKey, KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_owned(),
            source,
        };
        let not_private = |why: NotPrivate| match why {
            NotPrivate::Mode(mode) => KeyError::Permissions {
                path: path.to_owned(),
                mode,
            },
            why => KeyError::NotPrivate {
                path: path.to_owned(),
                reason: why.to_string(),
            },
        };
        let file = match private_nonblocking_options().read(true).open(path) {
            Ok(file) => file,
            Err(e) if is_symlink_error(&e) => return Err(not_private(NotPrivate::Symlink)),
            Err(e) => return Err(io(e)),
        };
        check_owned_file(&file.metadata().map_err(io)?, 0o077).map_err(not_private)?;
        let mut text = String::new();
        file.take(MAX_KEY_FILE)
            .read_to_string(&mut text)
            .map_err(io)?;
        SigningKey::parse(&text, default_name)
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key's 4-byte id.
    pub fn key_id(&self) -> [u8; 4] {
        self.id
    }

    /// Its public half, to verify with and to show people.
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            key: self.key.verifying_key(),
            id: self.id,
        }
    }

    /// The Ed25519 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }

    /// The private-key text form: only ever written to the key file.
    fn private_text(&self) -> String {
        let mut raw = [0u8; 33];
        raw[0] = ALG_ED25519;
        raw[1..].copy_from_slice(self.key.as_bytes());
        let text = format!(
            "PRIVATE+KEY+{}+{:08x}+{}\n",
            self.name,
            u32::from_be_bytes(self.id),
            B64.encode(raw)
        );
        raw.fill(0);
        text
    }
}

/// `<path>.pub`.
pub fn public_path(path: &Path) -> PathBuf {
    sibling(path, ".pub")
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Writes `key`'s public key to `path`, one line, mode 0644 (a public key
/// is for anyone to read). Never through a symbolic link, and never over a
/// file of another user's.
fn write_public(path: &Path, key: &SigningKey) -> Result<(), KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    #[allow(unused_mut)]
    let mut options = private_options();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o644);
    let mut file = match options.write(true).create(true).open(path) {
        Ok(file) => file,
        Err(e) if is_symlink_error(&e) => {
            return Err(KeyError::NotPrivate {
                path: path.to_owned(),
                reason: NotPrivate::Symlink.to_string(),
            })
        }
        Err(e) => return Err(io(e)),
    };
    check_owned_file(&file.metadata().map_err(io)?, 0o022).map_err(|why| KeyError::NotPrivate {
        path: path.to_owned(),
        reason: why.to_string(),
    })?;
    file.set_len(0).map_err(io)?;
    file.write_all(format!("{}\n", key.verifier()).as_bytes())
        .map_err(io)
}

/// Creates `path` (it must not exist; a link there is not followed)
/// readable by its owner only, with `text`, synced.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut file = private_options().write(true).create_new(true).open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// A public key that checks checkpoint signatures; its `Display` and
/// `FromStr` are the verifier-key text form (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    key: ed25519_dalek::VerifyingKey,
    id: [u8; 4],
}

impl VerifierKey {
    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key's 4-byte id.
    pub fn key_id(&self) -> [u8; 4] {
        self.id
    }

    /// Whether `signature` is this key's Ed25519 signature of `message`
    /// (strict verification: no malleable or small-order forms).
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let sig = ed25519_dalek::Signature::from_bytes(signature);
        self.key.verify_strict(message, &sig).is_ok()
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = [0u8; 33];
        raw[0] = ALG_ED25519;
        raw[1..].copy_from_slice(self.key.as_bytes());
        write!(
            f,
            "{}+{:08x}+{}",
            self.name,
            u32::from_be_bytes(self.id),
            B64.encode(raw)
        )
    }
}

impl FromStr for VerifierKey {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<Self, KeyError> {
        let (name, id, public) = split_key(text.trim())?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&public)
            .map_err(|_| KeyError::Malformed("not an Ed25519 public key"))?;
        if key_id(name, &public) != id {
            return Err(KeyError::Malformed("the key id does not match the key"));
        }
        Ok(VerifierKey {
            name: name.to_owned(),
            key,
            id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "ringtrail-key-{}-{name}-{}",
            std::process::id(),
            crate::time::clock::unix_nanos_now()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn private_text_round_trips_and_ids_are_checked() {
        let key = SigningKey::from_seed("audit-key", [3; 32]).unwrap();
        let text = key.private_text();
        assert!(text.starts_with("PRIVATE+KEY+audit-key+"));
        let back = SigningKey::parse(&text, "unused").unwrap();
        assert_eq!(back.verifier(), key.verifier());
        // A wrong id in either form is refused.
        let bad = text.replacen(
            &format!("{:08x}", u32::from_be_bytes(key.id)),
            "00000000",
            1,
        );
        assert!(matches!(
            SigningKey::parse(&bad, "x"),
            Err(KeyError::Malformed(_))
        ));
        let public = key.verifier().to_string();
        let bad = public.replacen(
            &format!("{:08x}", u32::from_be_bytes(key.id)),
            "00000000",
            1,
        );
        assert!(bad.parse::<VerifierKey>().is_err());
        assert_eq!(public.parse::<VerifierKey>().unwrap(), key.verifier());
    }

    #[test]
    fn bare_seed_and_names() {
        let seed = B64.encode([9u8; 32]);
        let key = SigningKey::parse(&format!("  {seed}\n"), DEFAULT_KEY_NAME).unwrap();
        assert_eq!(key.name(), "ringtrail");
        assert_eq!(
            key.verifier(),
            SigningKey::from_seed("ringtrail", [9; 32])
                .unwrap()
                .verifier()
        );
        for bad in ["", "a b", "a+b"] {
            assert!(matches!(
                SigningKey::from_seed(bad, [0; 32]),
                Err(KeyError::BadName)
            ));
        }
        assert!(SigningKey::parse(&B64.encode([1u8; 31]), "x").is_err());
        assert!(SigningKey::parse("not a key", "x").is_err());
    }

    #[test]
    fn key_id_follows_signed_note() {
        // The id is SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)[..4].
        let key = SigningKey::from_seed("example.com/log", [1; 32]).unwrap();
        let mut h = Sha256::new();
        h.update(b"example.com/log\n\x01");
        h.update(key.key.verifying_key().as_bytes());
        assert_eq!(key.key_id(), h.finalize()[..4]);
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let key = SigningKey::from_seed("k", [5; 32]).unwrap();
        let debug = format!("{key:?}");
        let seed_b64 = B64.encode([5u8; 32]);
        assert!(
            !debug.contains("PRIVATE") && !debug.contains(&seed_b64),
            "{debug}"
        );
        assert!(!key.private_text().is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn generated_once_owner_only_with_public_key_beside() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = temp_dir("gen");
        let path = dir.join("keys/checkpoint.key");
        let first = SigningKey::load_or_generate(&path, "ringtrail").unwrap();
        assert!(first.generated);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(first.public_path, dir.join("keys/checkpoint.key.pub"));
        let public = std::fs::read_to_string(&first.public_path).unwrap();
        assert_eq!(
            public.trim().parse::<VerifierKey>().unwrap(),
            first.key.verifier()
        );
        // The second start reads the same key (and puts back a lost .pub).
        std::fs::remove_file(&first.public_path).unwrap();
        let second = SigningKey::load_or_generate(&path, "ringtrail").unwrap();
        assert!(!second.generated);
        assert_eq!(second.key.verifier(), first.key.verifier());
        assert_eq!(
            std::fs::read_to_string(&second.public_path).unwrap(),
            public
        );
        // A key file others may read is refused.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            SigningKey::load_or_generate(&path, "ringtrail"),
            Err(KeyError::Permissions { mode: 0o644, .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[cfg(unix)]
    #[test]
    fn key_files_through_symlinks_or_of_another_user_are_refused() {
        use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
        let dir = temp_dir("links");
        let real = dir.join("real.key");
        SigningKey::load_or_generate(&real, "ringtrail").unwrap();
        // The key through a link: refused, loaded or not.
        let link = dir.join("link.key");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let refused = SigningKey::load(&link, "ringtrail").unwrap_err();
        assert!(refused.to_string().contains("symbolic link"), "{refused}");
        assert!(SigningKey::load_or_generate(&link, "ringtrail").is_err());
        // A .pub planted as a link is not written through.
        let other = dir.join("other.key");
        let victim = dir.join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        std::os::unix::fs::symlink(&victim, public_path(&other)).unwrap();
        assert!(SigningKey::load_or_generate(&other, "ringtrail").is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        // A key file owned by someone else (as root: chown it away).
        let me = std::fs::metadata(&real).unwrap().uid();
        let them = if me == 65534 { 65533 } else { 65534 };
        if std::os::unix::fs::chown(&real, Some(them), None).is_ok() {
            let refused = SigningKey::load(&real, "ringtrail").unwrap_err();
            assert!(refused.to_string().contains("owned by uid"), "{refused}");
        }
        // Group access of any kind, not only reading, is refused too.
        let w = dir.join("w.key");
        SigningKey::load_or_generate(&w, "ringtrail").unwrap();
        std::fs::set_permissions(&w, std::fs::Permissions::from_mode(0o620)).unwrap();
        assert!(matches!(
            SigningKey::load(&w, "ringtrail"),
            Err(KeyError::Permissions { mode: 0o620, .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn signatures_verify_only_for_their_key_and_message() {
        let a = SigningKey::from_seed("a", [1; 32]).unwrap();
        let b = SigningKey::from_seed("b", [2; 32]).unwrap();
        let sig = a.sign(b"m");
        assert!(a.verifier().verify(b"m", &sig));
        assert!(!b.verifier().verify(b"m", &sig));
        let mut flipped = sig;
        flipped[10] ^= 1;
        assert!(!a.verifier().verify(b"m", &flipped));
    }
}
