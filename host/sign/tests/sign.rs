//! Keys, signatures and their verification, including tampered bytes, forged
//! signatures, untrusted keys and malformed files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use keel_sign::{PublicKey, SecretKey, SignError, Signature, digest_of, verify_trusted};

const COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0 pretend component bytes";

#[test]
fn a_signature_verifies_and_survives_its_text_form() {
    let key = SecretKey::generate().unwrap();
    let key = SecretKey::parse(&key.to_text(), "KEY").unwrap();
    let public = PublicKey::parse(&key.public().to_text(), "KEY.pub").unwrap();
    assert_eq!(public, key.public());
    let sig = Signature::parse(&key.sign(COMPONENT).to_text(), "c.wasm.sig").unwrap();
    assert_eq!(sig.digest, digest_of(COMPONENT));
    assert_eq!(sig.key, public.id());
    public.verify(COMPONENT, &sig).unwrap();
    let trusted = [SecretKey::generate().unwrap().public(), public];
    assert_eq!(verify_trusted(COMPONENT, &sig, &trusted).unwrap(), &public);
}

#[test]
fn every_tampered_byte_is_caught() {
    let key = SecretKey::generate().unwrap();
    let sig = key.sign(COMPONENT);
    for i in 0..COMPONENT.len() {
        let mut bytes = COMPONENT.to_vec();
        bytes[i] ^= 0x01;
        let e = key.public().verify(&bytes, &sig).unwrap_err();
        assert!(
            matches!(e, SignError::DigestMismatch { .. }),
            "byte {i}: {e}"
        );
        assert!(e.to_string().contains("changed after it was signed"), "{e}");
    }
    // Truncated and extended bytes too.
    assert!(
        key.public()
            .verify(&COMPONENT[..COMPONENT.len() - 1], &sig)
            .is_err()
    );
    let mut longer = COMPONENT.to_vec();
    longer.push(0);
    assert!(key.public().verify(&longer, &sig).is_err());
}

#[test]
fn a_forged_signature_or_a_rewritten_digest_does_not_verify() {
    let key = SecretKey::generate().unwrap();
    let text = key.sign(COMPONENT).to_text();
    // Flip one bit of the signature.
    let line = text.lines().find(|l| l.starts_with("signature ")).unwrap();
    let hex = &line["signature ".len()..];
    let mut bytes = hex::decode(hex).unwrap();
    bytes[10] ^= 0x80;
    let forged = text.replace(hex, &hex::encode(bytes));
    let sig = Signature::parse(&forged, "forged.sig").unwrap();
    let e = key.public().verify(COMPONENT, &sig).unwrap_err();
    assert!(matches!(e, SignError::BadSignature { .. }), "{e}");

    // An attacker who swaps in other bytes and rewrites the digest line to
    // match still cannot produce the signature.
    let other = b"\0asm other component";
    let rewritten = text.replace(&digest_of(COMPONENT), &digest_of(other));
    let sig = Signature::parse(&rewritten, "rewritten.sig").unwrap();
    let e = key.public().verify(other, &sig).unwrap_err();
    assert!(matches!(e, SignError::BadSignature { .. }), "{e}");
}

#[test]
fn a_signature_by_another_key_is_untrusted() {
    let trusted = SecretKey::generate().unwrap().public();
    let stranger = SecretKey::generate().unwrap();
    let sig = stranger.sign(COMPONENT);
    let e = verify_trusted(COMPONENT, &sig, &[trusted]).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, SignError::UntrustedKey { .. }), "{msg}");
    assert!(
        msg.contains(&stranger.public().id()) && msg.contains(&trusted.id()),
        "{msg}"
    );
    // Naming the trusted key's id does not help: the bytes are the stranger's.
    let mut lie = sig.to_text();
    lie = lie.replace(&stranger.public().id(), &trusted.id());
    let sig = Signature::parse(&lie, "lie.sig").unwrap();
    let e = verify_trusted(COMPONENT, &sig, &[trusted]).unwrap_err();
    assert!(matches!(e, SignError::BadSignature { .. }), "{e}");
}

#[test]
fn keys_differ_and_the_secret_is_never_printed() {
    let a = SecretKey::generate().unwrap();
    let b = SecretKey::generate().unwrap();
    assert_ne!(a.public(), b.public());
    let seed = a.to_text().lines().nth(1).unwrap().to_string();
    assert!(!format!("{a:?}").contains(&seed));
}

#[test]
fn malformed_files_are_named_with_their_line() {
    let key = SecretKey::generate().unwrap();
    let good_sig = key.sign(COMPONENT).to_text();
    let cases: Vec<(&str, String, &str)> = vec![
        ("KEY.pub", String::new(), "KEY.pub:1: empty file"),
        (
            "KEY.pub",
            "ssh-ed25519 AAAA\n".into(),
            "KEY.pub:1: expected `keel-ed25519-public-key-v1`",
        ),
        (
            "KEY.pub",
            "keel-ed25519-public-key-v1\nzz\n".into(),
            "KEY.pub:2: public key",
        ),
        (
            "KEY.pub",
            "keel-ed25519-public-key-v1\nabcd\n".into(),
            "KEY.pub:2: public key: expected 32 bytes",
        ),
        (
            "KEY.pub",
            "keel-ed25519-public-key-v1\n".into(),
            "KEY.pub:2: missing the public key line",
        ),
        (
            "KEY",
            key.public().to_text(),
            "KEY:1: expected `keel-ed25519-secret-key-v1`",
        ),
        (
            "s.sig",
            good_sig.replace("digest ", "digets "),
            "s.sig:3: unknown field `digets`",
        ),
        (
            "s.sig",
            good_sig.replace("sha256:", "md5:"),
            "s.sig:3: digest `md5:",
        ),
        (
            "s.sig",
            good_sig.replace("ed25519:", "rsa:"),
            "s.sig:2: key `rsa:",
        ),
        (
            "s.sig",
            good_sig.lines().take(3).collect::<Vec<_>>().join("\n"),
            "s.sig:4: missing field `signature`",
        ),
        (
            "s.sig",
            format!("{good_sig}key ed25519:0000000000000000\n"),
            "s.sig:5: field `key` given twice",
        ),
        (
            "s.sig",
            good_sig.replace("signature ", "signature 00"),
            "s.sig:4: signature: expected 64 bytes",
        ),
    ];
    for (name, text, want) in cases {
        let e = match name {
            "KEY.pub" => PublicKey::parse(&text, name).map(|_| ()),
            "KEY" => SecretKey::parse(&text, name).map(|_| ()),
            _ => Signature::parse(&text, name).map(|_| ()),
        }
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with(want),
            "{name} {text:?}: got `{e}`, want `{want}…`"
        );
    }
}
