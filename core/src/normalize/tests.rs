use std::fmt::Write as _;

use proptest::prelude::*;

use super::*;
use crate::id::{IdKind, IdReason};

fn us() -> PhoneOptions {
    PhoneOptions {
        default_country_code: Some(CountryCode::try_from(1).unwrap()),
    }
}

/// The reference vectors of the foundation issue; digests computed independently with
/// `printf %s VALUE | sha256sum` (and `| openssl dgst -sha256 -binary | base64`).
#[test]
fn reference_vectors() {
    let cases: &[(Profile, &str, &str, &str)] = &[
        (
            Profile::AdobeV1,
            " Test@Example.COM ",
            "test@example.com",
            "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b",
        ),
        (
            Profile::AdobeV1,
            " John.Doe+x@GoogleMail.com",
            "john.doe+x@googlemail.com",
            "4ee81182a289904a64e4afa274f4fbb5cdc9a7e2e22b18ac7a75bf947f06507f",
        ),
        (
            Profile::GoogleV1,
            " John.Doe+x@GoogleMail.com",
            "johndoe@googlemail.com",
            "f07280f43150f779598094600662ad3c94d7c0a78c78b15c4056e4a38df260b9",
        ),
        (
            Profile::Uid2V1,
            " John.Doe+x@GoogleMail.com",
            "john.doe+x@googlemail.com",
            "TugRgqKJkEpk5K+idPT7tc3Jp+LiKxisenW/lH8GUH8=",
        ),
        (
            Profile::Uid2V1,
            "Jane.Doe@gmail.com",
            "janedoe@gmail.com",
            "1hFzBkhe0OUK+rOshx6Y+BaZFR8wKBUn1j/18jNlbGk=",
        ),
    ];
    for &(profile, raw, value, digest) in cases {
        let n = profile.normalize_email(raw).unwrap();
        assert_eq!(
            (n.value.as_str(), n.digest_text().as_str()),
            (value, digest),
            "{profile} {raw:?}"
        );
    }

    let phones: &[(Profile, &str, &str)] = &[
        (
            Profile::GoogleV1,
            "+18005550100",
            "fb4f73a6ec5fdb7077d564cdd22c3554b43ce49168550c3b12c547b78c517b30",
        ),
        (
            Profile::MetaV1,
            "18005550100",
            "92cfdc5fbcd4a20fbe5d3857af6c1aba31762105bba7f21a17155e920653046c",
        ),
        (
            Profile::AdobeV1,
            "+18005550100",
            "fb4f73a6ec5fdb7077d564cdd22c3554b43ce49168550c3b12c547b78c517b30",
        ),
        (
            Profile::Uid2V1,
            "+18005550100",
            "+09zpuxf23B31WTN0iw1VLQ85JFoVQw7EsVHt4xRezA=",
        ),
    ];
    for &(profile, value, digest) in phones {
        let n = profile.normalize_phone("(800) 555-0100", &us()).unwrap();
        assert_eq!(
            (n.value.as_str(), n.digest_text().as_str()),
            (value, digest),
            "{profile}"
        );
    }
}

#[test]
fn email_rejections() {
    let cases: &[(&str, IdReason, Option<usize>)] = &[
        ("", IdReason::Empty, None),
        (" \t ", IdReason::Empty, None),
        ("plainaddress", IdReason::InvalidEmail, None),
        ("@example.com", IdReason::InvalidEmail, None),
        ("a@b@example.com", IdReason::InvalidEmail, Some(3)),
        ("john doe@example.com", IdReason::InvalidEmail, Some(4)),
        (" john\u{0}@example.com", IdReason::InvalidEmail, Some(5)),
        ("a@example", IdReason::InvalidEmail, None),
        ("a@.example", IdReason::InvalidEmail, None),
        ("a@example.", IdReason::InvalidEmail, None),
        ("a@.", IdReason::InvalidEmail, None),
        ("a@", IdReason::InvalidEmail, None),
    ];
    for profile in [Profile::AdobeV1, Profile::Uid2V1, Profile::MetaV1] {
        for &(raw, reason, offset) in cases {
            let err = profile.normalize_email(raw).unwrap_err();
            assert_eq!(
                (err.kind, err.reason, err.offset),
                (IdKind::Email, reason, offset),
                "{profile} {raw:?}"
            );
        }
    }
}

#[test]
fn gmail_rule_differs_by_profile() {
    let raw = "J.o.h.n+news@GMail.com";
    let got: Vec<_> = Profile::ALL
        .iter()
        .map(|p| p.normalize_email(raw).unwrap().value)
        .collect();
    assert_eq!(
        got,
        [
            "j.o.h.n+news@gmail.com",
            "john@gmail.com",
            "john@gmail.com",
            "j.o.h.n+news@gmail.com"
        ]
    );
    // Dots and +tags elsewhere are kept, and only the local part is touched.
    assert_eq!(
        Profile::GoogleV1
            .normalize_email("a.b+c@mail.gmail.com")
            .unwrap()
            .value,
        "a.b+c@mail.gmail.com"
    );
    assert_eq!(
        Profile::GoogleV1
            .normalize_email("a.b+c@example.com")
            .unwrap()
            .value,
        "a.b+c@example.com"
    );
    // Nothing left of the local part once the rule ran.
    for raw in ["+tag@gmail.com", "...@gmail.com", ".+x@gmail.com"] {
        assert_eq!(
            Profile::GoogleV1.normalize_email(raw).unwrap_err().reason,
            IdReason::InvalidEmail,
            "{raw}"
        );
        assert_eq!(
            Profile::Uid2V1.normalize_email(raw).unwrap_err().reason,
            IdReason::InvalidEmail,
            "{raw}"
        );
        assert!(Profile::AdobeV1.normalize_email(raw).is_ok(), "{raw}");
    }
}

#[test]
fn google_removes_all_whitespace_others_reject_it() {
    assert_eq!(
        Profile::GoogleV1
            .normalize_email(" jo hn@Exam ple.com ")
            .unwrap()
            .value,
        "john@example.com"
    );
    for profile in [Profile::AdobeV1, Profile::Uid2V1, Profile::MetaV1] {
        let err = profile.normalize_email(" jo hn@example.com").unwrap_err();
        assert_eq!(
            (err.reason, err.offset),
            (IdReason::InvalidEmail, Some(3)),
            "{profile}"
        );
    }
    // Control characters are invalid for every profile, google-v1 included.
    assert_eq!(
        Profile::GoogleV1
            .normalize_email("jo\u{7}hn@example.com")
            .unwrap_err()
            .offset,
        Some(2)
    );
}

#[test]
fn lowercases_beyond_ascii() {
    assert_eq!(
        Profile::AdobeV1
            .normalize_email("ÉLODIE@Exemple.FR")
            .unwrap()
            .value,
        "élodie@exemple.fr"
    );
}

#[test]
fn phone_forms() {
    let fr = PhoneOptions {
        default_country_code: Some("+33".parse().unwrap()),
    };
    let cases: &[(&str, &PhoneOptions, &str)] = &[
        ("+1 800 555 0100", &PhoneOptions::default(), "+18005550100"),
        ("001-800-555-0100", &PhoneOptions::default(), "+18005550100"),
        ("06 12 34 56 78", &fr, "+33612345678"),
        ("06.12.34.56.78", &fr, "+33612345678"),
        ("(+33) 6 12 34 56 78", &fr, "+33612345678"),
        ("+44 20/7946 0958", &fr, "+442079460958"),
        (
            "  +123456789012345 ",
            &PhoneOptions::default(),
            "+123456789012345",
        ),
    ];
    for &(raw, options, value) in cases {
        assert_eq!(
            Profile::AdobeV1
                .normalize_phone(raw, options)
                .unwrap()
                .value,
            value,
            "{raw:?}"
        );
        assert_eq!(
            Profile::MetaV1.normalize_phone(raw, options).unwrap().value,
            &value[1..],
            "{raw:?}"
        );
    }
}

#[test]
fn phone_rejections() {
    let cases: &[(&str, IdReason, Option<usize>)] = &[
        ("", IdReason::Empty, None),
        ("   ", IdReason::Empty, None),
        ("(800) 555-0100", IdReason::NoCountryCode, None),
        ("+1 800 CALL-NOW", IdReason::InvalidPhone, Some(7)),
        ("+1 800 555 0100 ext 12", IdReason::InvalidPhone, Some(16)),
        ("1+800", IdReason::InvalidPhone, Some(1)),
        ("++18005550100", IdReason::InvalidPhone, Some(1)),
        ("+1234567", IdReason::InvalidPhone, None),
        ("+1234567890123456", IdReason::InvalidPhone, None),
        ("+01234567890", IdReason::InvalidPhone, None),
        ("0001234567890", IdReason::InvalidPhone, None),
        ("+", IdReason::InvalidPhone, None),
        ("()", IdReason::NoCountryCode, None),
        ("١٢٣٤٥٦٧٨٩", IdReason::InvalidPhone, Some(0)),
        (
            "+1 2222222222222222222222222222222222222222",
            IdReason::InvalidPhone,
            None,
        ),
    ];
    for profile in Profile::ALL {
        for &(raw, reason, offset) in cases {
            let err = profile
                .normalize_phone(raw, &PhoneOptions::default())
                .unwrap_err();
            assert_eq!(
                (err.kind, err.reason, err.offset),
                (IdKind::Phone, reason, offset),
                "{profile} {raw:?}"
            );
        }
    }
}

#[test]
fn country_codes() {
    for ok in ["1", "+1", "33", "+358", "999"] {
        assert!(ok.parse::<CountryCode>().is_ok(), "{ok}");
    }
    for bad in ["", "+", "0", "01", "1000", "+-1", "1a", " 1", "++1"] {
        assert!(bad.parse::<CountryCode>().is_err(), "{bad:?}");
    }
    assert!(CountryCode::try_from(0).is_err());
    assert_eq!(
        serde_json::from_str::<PhoneOptions>(r#"{"default_country_code":44}"#)
            .unwrap()
            .default_country_code
            .map(CountryCode::get),
        Some(44)
    );
    assert!(serde_json::from_str::<PhoneOptions>(r#"{"default_country_code":1000}"#).is_err());
}

#[test]
fn profile_names_round_trip() {
    for profile in Profile::ALL {
        assert_eq!(profile.name().parse::<Profile>().unwrap(), profile);
        let json = serde_json::to_string(&profile).unwrap();
        assert_eq!(json, format!("\"{}\"", profile.name()));
        assert_eq!(serde_json::from_str::<Profile>(&json).unwrap(), profile);
    }
    assert_eq!(Profile::default(), Profile::AdobeV1);
    let err = "adobe-v2".parse::<Profile>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown normalization profile \"adobe-v2\" (known: adobe-v1, google-v1, uid2-v1, meta-v1)"
    );
    assert!(serde_json::from_str::<Profile>("\"ADOBE-V1\"").is_err());
}

/// Every profile applied to a fixed set of raw emails and phones, as a reviewable snapshot.
#[test]
fn profile_matrix_snapshot() {
    let emails = [
        " Test@Example.COM ",
        "first.last+promo@gmail.com",
        "First.Last+promo@GoogleMail.com",
        "a b@example.com",
        "ÉLODIE@Exemple.FR",
        "no-at-sign.example.com",
    ];
    let phones = [
        "(800) 555-0100",
        "+44 20 7946 0958",
        "0033 6 12 34 56 78",
        "555-0100",
        "+1 800 FLOWERS",
    ];
    let options = us();
    let mut out = String::new();
    for profile in Profile::ALL {
        writeln!(out, "[{profile}]").unwrap();
        let rows = emails
            .iter()
            .map(|raw| ("email", raw, profile.normalize_email(raw)))
            .chain(
                phones
                    .iter()
                    .map(|raw| ("phone", raw, profile.normalize_phone(raw, &options))),
            );
        for (kind, raw, result) in rows {
            match result {
                Ok(n) => writeln!(out, "{kind} {raw:?} -> {:?} {}", n.value, n.digest_text()),
                Err(e) => writeln!(out, "{kind} {raw:?} -> {} ({})", e.reason, e.detail),
            }
            .unwrap();
        }
    }
    insta::assert_snapshot!(out);
}

fn email_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ \t]{0,2}[A-Za-z0-9._+-]{0,12}@[A-Za-z0-9.-]{0,10}(\\.[A-Za-z]{2,4})?[ \t]{0,2}",
        "[ \t]{0,2}[A-Za-z0-9._+-]{0,12}@(gmail|GMail|googlemail)\\.com[ \t]{0,2}",
        "\\PC{0,20}@\\PC{0,12}",
        "\\PC{0,30}",
        ".{0,30}",
    ]
}

fn phone_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ ]?(\\+|00)?[0-9 ().-]{0,22}",
        "[0-9+ ().xX/-]{0,24}",
        ".{0,20}",
    ]
}

proptest! {
    #[test]
    fn email_normalization_is_idempotent_with_fixed_output(raw in email_like()) {
        for profile in Profile::ALL {
            if let Ok(first) = profile.normalize_email(&raw) {
                let again = profile.normalize_email(&first.value).unwrap();
                prop_assert_eq!(&again, &first);
                prop_assert_eq!(first.digest, Profile::hash(&first.value));
                let text = first.digest_text();
                match profile.encoding() {
                    DigestEncoding::Hex => prop_assert_eq!(text.len(), 64),
                    DigestEncoding::Base64 => prop_assert_eq!(text.len(), 44),
                }
                // The output obeys the validity rules it was checked against.
                prop_assert_eq!(first.value.matches('@').count(), 1);
                prop_assert!(!first.value.chars().any(|c| c.is_whitespace() || c.is_control()));
                prop_assert!(!first.value.starts_with('@'));
            }
        }
    }

    #[test]
    fn phone_normalization_is_idempotent_with_fixed_output(raw in phone_like(), code in proptest::option::of(1u16..=999)) {
        let options = PhoneOptions { default_country_code: code.map(|c| CountryCode::try_from(c).unwrap()) };
        for profile in Profile::ALL {
            if let Ok(first) = profile.normalize_phone(&raw, &options) {
                // meta-v1 drops the '+': its output is re-read as the E.164 it came from.
                let e164 = if first.value.starts_with('+') { first.value.clone() } else { format!("+{}", first.value) };
                let digits = &e164[1..];
                prop_assert!(digits.bytes().all(|b| b.is_ascii_digit()));
                prop_assert!((8..=15).contains(&digits.len()));
                prop_assert!(!digits.starts_with('0'));
                let again = profile.normalize_phone(&e164, &options).unwrap();
                prop_assert_eq!(&again, &first);
                if profile != Profile::MetaV1 {
                    prop_assert_eq!(&profile.normalize_phone(&first.value, &PhoneOptions::default()).unwrap(), &first);
                }
            }
        }
    }

    #[test]
    fn buffer_reuse_gives_the_same_result(a in email_like(), b in email_like()) {
        let mut buf = String::new();
        for profile in Profile::ALL {
            for raw in [&a, &b] {
                let fresh = profile.normalize_email(raw);
                let reused = profile.normalize_email_into(raw, &mut buf);
                prop_assert_eq!(fresh.as_ref().map(|n| n.value.as_str()).map_err(Clone::clone), reused.map(|()| buf.as_str()));
            }
        }
    }
}
