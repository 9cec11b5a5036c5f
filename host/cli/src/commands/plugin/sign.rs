//! The CLI's supply-chain commands: `plugin keygen|sign|verify` (ed25519
//! signatures over a component's digest, keel-sign) and `plugin trust
//! add|ls|rm` (the store's trust policy, enforced by keel-ops on add and deploy).

use crate::commands::Globals;
use crate::exit::{self, Failure, fail};
use anyhow::{Context, Result, bail};
use keel_sign::{PublicKey, SecretKey, Signature};
use keel_store::Store;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct KeygenArgs {
    /// Where to write the secret key; the public key goes to OUT.pub.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace existing key files.
    #[arg(long)]
    pub force: bool,
}

#[derive(clap::Args)]
pub struct SignArgs {
    pub file: PathBuf,
    /// The secret key (from `keel plugin keygen`).
    #[arg(long)]
    pub key: PathBuf,
    /// Where to write the signature [default: FILE.sig].
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    pub file: PathBuf,
    /// A public key to accept (repeatable) [default: the keys the store trusts].
    #[arg(long)]
    pub pubkey: Vec<PathBuf>,
    /// The signature [default: FILE.sig].
    #[arg(long)]
    pub sig: Option<PathBuf>,
}

#[derive(clap::Subcommand)]
pub enum TrustCommand {
    /// Trust KEY.pub to sign plugins. While any key is trusted, `plugin add` and
    /// `pipeline deploy` refuse plugins without a valid signature by one.
    Add {
        pubkey: PathBuf,
        /// Whose key it is.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// List the trusted keys.
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Stop trusting a key (by id, `ed25519:…`, or its .pub file). With none
    /// left, the policy is off.
    Rm { key: String },
}

impl KeygenArgs {
    pub fn run(self) -> Result<(), Failure> {
        Ok(keygen(&self)?)
    }
}

impl SignArgs {
    pub fn run(self) -> Result<(), Failure> {
        Ok(sign(&self)?)
    }
}

impl VerifyArgs {
    /// Prints the verdict; exit 5 when the signature is not good, 2 when it
    /// cannot be checked.
    pub fn run(self, globals: &Globals) -> Result<(), Failure> {
        match verify(&self, || globals.store().map_err(|f| f.error))
            .map_err(|e| fail(exit::USAGE, e))?
        {
            Ok(message) => {
                outln!("{message}");
                Ok(())
            }
            Err(e) => Err(fail(exit::INTEGRITY, e)),
        }
    }
}

impl TrustCommand {
    pub fn run(self, globals: &Globals) -> Result<(), Failure> {
        Ok(trust(&globals.store()?, &self)?)
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn pub_path(key: &Path) -> PathBuf {
    let mut p = key.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

/// `keel plugin keygen --out KEY`.
fn keygen(a: &KeygenArgs) -> Result<()> {
    let public_path = pub_path(&a.out);
    for p in [&a.out, &public_path] {
        if p.exists() && !a.force {
            bail!("{} exists; pass --force to replace it", p.display());
        }
    }
    let key = SecretKey::generate()?;
    write_secret(&a.out, key.to_text().as_bytes(), a.force)?;
    std::fs::write(&public_path, key.public().to_text())
        .with_context(|| format!("writing {}", public_path.display()))?;
    outln!(
        "{} (secret: {}, public: {})",
        key.public().id(),
        a.out.display(),
        public_path.display()
    );
    Ok(())
}

fn write_secret(path: &Path, bytes: &[u8], replace: bool) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if replace {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Only the owner may read a secret key.
        options.mode(0o600);
    }
    let mut f = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// `keel plugin sign FILE --key KEY`.
fn sign(a: &SignArgs) -> Result<()> {
    let key = SecretKey::parse(&read(&a.key)?, &a.key.display().to_string())?;
    let bytes = std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    let sig = key.sign(&bytes);
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| keel_ops::trust::sig_path(&a.file));
    std::fs::write(&out, sig.to_text()).with_context(|| format!("writing {}", out.display()))?;
    outln!(
        "{} signed {} by {} → {}",
        a.file.display(),
        sig.digest,
        sig.key,
        out.display()
    );
    Ok(())
}

/// `keel plugin verify FILE`: `Ok(Err(why))` when the signature is not good.
fn verify(a: &VerifyArgs, store: impl FnOnce() -> Result<Store>) -> Result<Result<String>> {
    let keys: Vec<PublicKey> = if a.pubkey.is_empty() {
        let keys = keel_ops::trust::trusted_keys(&store()?)?;
        if keys.is_empty() {
            bail!(
                "no --pubkey given and the store trusts no key (`keel plugin trust add KEY.pub`)"
            );
        }
        keys
    } else {
        a.pubkey
            .iter()
            .map(|p| Ok(PublicKey::parse(&read(p)?, &p.display().to_string())?))
            .collect::<Result<_>>()?
    };
    let sig_path = a
        .sig
        .clone()
        .unwrap_or_else(|| keel_ops::trust::sig_path(&a.file));
    let sig = Signature::parse(&read(&sig_path)?, &sig_path.display().to_string())?;
    let bytes = std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    Ok(match keel_sign::verify_trusted(&bytes, &sig, &keys) {
        Ok(k) => Ok(format!(
            "{}: good signature by {} over {}",
            a.file.display(),
            k.id(),
            sig.digest
        )),
        Err(e) => Err(anyhow::anyhow!("{}: {e}", a.file.display())),
    })
}

fn key_id(key: &str) -> Result<String> {
    if key.starts_with("ed25519:") {
        return Ok(key.to_string());
    }
    Ok(PublicKey::parse(&read(Path::new(key))?, key)?.id())
}

/// `keel plugin trust …`.
fn trust(store: &Store, c: &TrustCommand) -> Result<()> {
    match c {
        TrustCommand::Add { pubkey, label } => {
            let text = read(pubkey)?;
            let key = PublicKey::parse(&text, &pubkey.display().to_string())?;
            let added = store.trust_key(&key.id(), &key.to_text(), label)?;
            let n = store.trusted_keys()?.len();
            outln!(
                "{} {} ({n} trusted key{}; unsigned plugins are now refused)",
                key.id(),
                if added {
                    "trusted"
                } else {
                    "was already trusted"
                },
                if n == 1 { "" } else { "s" }
            );
        }
        TrustCommand::Ls { json } => {
            let keys = store.trusted_keys()?;
            if *json {
                outln!("{}", serde_json::to_string_pretty(&keys)?);
            } else if keys.is_empty() {
                outln!(
                    "no trusted keys: any plugin that loads may be added (trust one with `keel plugin trust add KEY.pub`)"
                );
            } else {
                for k in keys {
                    outln!("{}  {}  {}", k.id, k.added, k.label);
                }
            }
        }
        TrustCommand::Rm { key } => {
            let id = key_id(key)?;
            if !store.untrust_key(&id)? {
                bail!("key {id} is not trusted (see `keel plugin trust ls`)");
            }
            let n = store.trusted_keys()?.len();
            outln!(
                "{id} no longer trusted ({})",
                if n == 0 {
                    "no keys left: the signature policy is off".to_string()
                } else {
                    format!("{n} trusted")
                }
            );
        }
    }
    Ok(())
}
