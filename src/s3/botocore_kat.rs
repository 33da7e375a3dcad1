//! Known answers from botocore: `tests/fixtures/s3/sigv4_botocore.py` signed four requests
//! with botocore's `S3SigV4Auth` at a fixed time; its output is committed as
//! `sigv4_botocore.jsonl`. Each case here is signed by [`sign`] and must reproduce botocore's
//! canonical request, string to sign and `Authorization` header exactly. A second test
//! re-runs the script where botocore is installed (target/tools/venv, by
//! scripts/install-test-deps.sh) and checks the committed answers are still botocore's.

use std::path::Path;
use std::process::Command;

use super::credentials::Credentials;
use super::location::S3Location;
use super::sign::{sign, Method, SignedRequest};
use crate::test_child::tools_python;

const ANSWERS: &str = include_str!("../../tests/fixtures/s3/sigv4_botocore.jsonl");
const TIMESTAMP: &str = "20261205T083000Z";

fn example() -> Credentials {
    Credentials {
        access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        session_token: None,
    }
}

/// The script's cases, built through [`S3Location`] where the address is an `s3://` origin.
fn cases() -> Vec<(&'static str, SignedRequest)> {
    let local = S3Location::parse("s3://media?endpoint=http://127.0.0.1:9000").unwrap();
    let paris =
        S3Location::parse("s3://media?endpoint=http://127.0.0.1:9000&region=eu-west-3").unwrap();
    let aws = S3Location::parse("s3://media?region=us-west-2").unwrap();
    let custom = S3Location::parse("s3://my-bucket?endpoint=https://s3.example.test").unwrap();
    let temporary = Credentials {
        access_key_id: "ASIAIOSFODNN7EXAMPLE".into(),
        session_token: Some("FwoGZXIvYXdzEXAMPLE//////////SESSIONTOKEN+/=".into()),
        ..example()
    };
    let at = |loc: &S3Location, creds: &Credentials, m: Method, key: &str, range| {
        sign(
            creds,
            &loc.region,
            m,
            &loc.host_header(),
            loc.object_target(key).unwrap(),
            range,
            TIMESTAMP,
        )
    };
    vec![
        ("get-path-style", at(&local, &example(), Method::Get, "video/a.mp4", None)),
        ("get-range", at(&paris, &example(), Method::Get, "video/a.mp4", Some("bytes=0-1048575"))),
        ("head-virtual-host", at(&aws, &example(), Method::Head, "seg/0001.ts", None)),
        (
            "get-encoded-key-session-token",
            at(&custom, &temporary, Method::Get, "a b/ü+c~d.bin", Some("bytes=100-")),
        ),
    ]
}

/// A JSON string literal of `s` (the signed texts hold newlines, never quotes or backslashes).
fn json_string(s: &str) -> String {
    assert!(!s.contains(['"', '\\']), "{s}");
    format!("\"{}\"", s.replace('\n', "\\n"))
}

#[test]
fn signatures_match_botocore() {
    let cases = cases();
    assert_eq!(cases.len(), ANSWERS.lines().count());
    for (name, req) in cases {
        let line = ANSWERS
            .lines()
            .find(|l| l.contains(&format!("\"name\": \"{name}\"")))
            .unwrap_or_else(|| panic!("{name}: no botocore answer"));
        let auth = &req.headers.last().unwrap();
        assert_eq!(auth.0, "authorization");
        for (field, ours) in [
            ("canonical_request", &req.canonical_request),
            ("string_to_sign", &req.string_to_sign),
            ("authorization", &auth.1),
        ] {
            let want = format!("\"{field}\": {}", json_string(ours));
            assert!(line.contains(&want), "{name}: {field}\nours: {ours}\nbotocore: {line}");
        }
    }
}

#[test]
fn committed_answers_are_botocores() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = tools_python();
    let has_botocore = python.is_file()
        && Command::new(&python)
            .args(["-c", "import botocore"])
            .status()
            .is_ok_and(|s| s.success());
    if !has_botocore {
        eprintln!("SKIP committed_answers_are_botocores: no botocore in target/tools/venv (scripts/install-test-deps.sh)");
        return;
    }
    let out = Command::new(&python)
        .arg(root.join("tests/fixtures/s3/sigv4_botocore.py"))
        .output()
        .expect("run the botocore script");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), ANSWERS);
}
